import { z } from 'zod';
import { backboneDefaultLayers, backboneTappableLayers, type BackboneSpec } from './backbone';
import { DIT_PRESETS, ditConfigProblem, ditConfigSchema, resolveDiT, type DiTConfig, type DiTPreset } from './dit-layout';
import { unetLayout } from './unet-layout';

/**
 * The sweep spec: what a researcher writes, keeps in git and submits (JSON or YAML).
 * Every field is documented with its default; the README shows a full example.
 */

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Native shape of each data set; images are padded to `imageSize` for the UNet. */
export const DATASET_SHAPES: Record<DatasetName, { size: number; channels: number; classes: number; train: number; test: number }> = {
  'fashion-mnist': { size: 28, channels: 1, classes: 10, train: 60000, test: 10000 },
  mnist: { size: 28, channels: 1, classes: 10, train: 60000, test: 10000 },
  cifar10: { size: 32, channels: 3, classes: 10, train: 50000, test: 10000 },
};

export const METHODS = ['ddpm', 'edm'] as const;
export type Method = (typeof METHODS)[number];

/** Hard limits: a spec above them is refused with 400 rather than run for weeks. */
export const SPEC_LIMITS = {
  /** Pretraining runs (models x seeds; untrained controls come on top, one per model). */
  maxRuns: 1000,
  maxModels: 64,
  maxSeeds: 32,
  maxSteps: 1_000_000,
  /** Probe cells (runs x noise levels x layers). */
  maxProbeCells: 100_000,
  /**
   * Probe tasks (runs x noise levels; each covers its layers): the rows a submit writes. Postgres
   * spends ~43 us of CPU per task row (4 indexes, 2 foreign keys), so 8,192 keep the largest submit
   * near 1 s (docs/results.md).
   */
  maxProbeTasks: 8192,
  /** Probing during pretraining is a small grid: layers x noise levels per probed checkpoint. */
  maxProgressProbeCells: 64,
  maxBaseChannels: 256,
} as const;

export const UNET_PRESETS = {
  /** ~0.1 M parameters: tests and the CPU demo. */
  tiny: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 },
  /** ~1 M parameters: the Fashion-MNIST model of the PyTorch twin at base 16. */
  small: { baseChannels: 16, channelMults: [1, 2, 2], blocksPerLevel: 2, attentionResolutions: [], dropout: 0.1, groups: 8 },
  /** ~4 M parameters: base 32, (1,2,2), the twin's calibration model. */
  base: { baseChannels: 32, channelMults: [1, 2, 2], blocksPerLevel: 2, attentionResolutions: [], dropout: 0.1, groups: 8 },
  /** The reference CIFAR-10 UNet (35.7 M parameters). */
  reference: { baseChannels: 128, channelMults: [1, 2, 2, 2], blocksPerLevel: 2, attentionResolutions: [16], dropout: 0.1, groups: 32 },
} as const;
export type UNetPreset = keyof typeof UNET_PRESETS;

const positiveInt = z.number().int().positive();

export const unetConfigSchema = z
  .object({
    /** Channels of the first level. */
    baseChannels: positiveInt.max(SPEC_LIMITS.maxBaseChannels),
    /** Channel multiplier per level; the number of levels. */
    channelMults: z.array(positiveInt.max(8)).min(1).max(5),
    /** Residual blocks per encoder level. */
    blocksPerLevel: positiveInt.max(4),
    /** Resolutions that get self-attention. Default none. */
    attentionResolutions: z.array(positiveInt).default([]),
    /** Dropout in residual blocks during pretraining (off for features). Default 0.1. */
    dropout: z.number().min(0).max(0.9).default(0.1),
    /** GroupNorm groups; must divide every block's channels. Default 8. */
    groups: positiveInt.default(8),
  })
  .strict();
export type UNetConfig = z.infer<typeof unetConfigSchema>;

const ditPresetSchema = z.enum(Object.keys(DIT_PRESETS) as [DiTPreset, ...DiTPreset[]]);

const ditPresetObjectSchema = z.object({ preset: ditPresetSchema }).strict();

/** A DiT as a sweep names it: a preset (`dit-tiny`, `dit-small`), `{ preset }`, or a full configuration. */
export type DiTSpec = z.input<typeof ditPresetSchema> | z.input<typeof ditPresetObjectSchema> | z.input<typeof ditConfigSchema>;

/**
 * The schema of one form of `dit`, chosen by the value's shape, so that an issue names the bad
 * field (`models.0.dit.width`) rather than "no form of the union matched".
 */
export function ditSpecFormSchema(value: unknown): z.ZodType {
  if (typeof value === 'string') return ditPresetSchema;
  if (value && typeof value === 'object' && 'preset' in value) return ditPresetObjectSchema;
  return ditConfigSchema;
}

/** Where a model pretrained elsewhere is: a safetensors file the workers can read. */
export const modelCheckpointSchema = z
  .object({
    /** The file: absolute, or relative to the workers' ARTIFACT_DIR. */
    path: z.string().min(1).max(1024).regex(/^[^\0]*$/, 'no NUL characters').regex(/\.safetensors$/, 'a .safetensors file'),
    /** Its sha256 (64 hex digits); when given, a worker refuses a file that does not hash to it. Default: not checked (the hash found is recorded). */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits').optional(),
  })
  .strict();
export type ModelCheckpointSpec = z.output<typeof modelCheckpointSchema>;

export const modelSpecSchema = z
  .object({
    /** A label for the leaderboard; default `<method>-<preset or size>`. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, ".", "_" and "-"').optional(),
    /** Diffusion formulation: `ddpm` (VP, epsilon) or `edm` (VE, preconditioned). */
    method: z.enum(METHODS),
    /**
     * The network: `unet` (the reference's) or `dit` (a transformer, Peebles and Xie). Default unet
     * (no default written into the stored spec, so the hash of a UNet sweep is what it was).
     */
    backbone: z.enum(['unet', 'dit']).optional(),
    /** The UNet (backbone unet, required there): a preset name (tiny, small, base, reference) or a full UNet configuration. */
    unet: z.union([z.enum(Object.keys(UNET_PRESETS) as [UNetPreset, ...UNetPreset[]]), unetConfigSchema]).optional(),
    /** The DiT (backbone dit, required there): a preset (dit-tiny, dit-small), `{ preset }`, or `{ depth, width, heads, patch, mlpRatio? }`. */
    dit: z.custom<DiTSpec>(() => true).optional(),
    /**
     * Side of the square images the model trains and probes on: the data set's images are centred
     * on a canvas this size (padding black). At least the images' own size, and every UNet level must
     * halve it exactly (28 with 3 levels: 28, 14, 7), a DiT's patch divide it. Default: the next power of two (28 -> 32).
     */
    imageSize: z.number().int().min(8).max(256).optional(),
    /**
     * A model pretrained elsewhere: weights in the safetensors format under the PyTorch twin's names
     * (docs/import.md), of the architecture (`unet` / `dit`) and `method` this model names. The sweep
     * imports and probes it on the grid and never trains it (`pretrain` does not apply to it; one run,
     * the first seed). Default: none (the model is pretrained by the sweep).
     */
    checkpoint: modelCheckpointSchema.optional(),
  })
  .strict();
export type ModelSpec = z.output<typeof modelSpecSchema>;

/**
 * Adaptive noise search: instead of probing every level of the grid (`timesteps` / `sigmas`), each
 * run's probes start at `coarse` evenly spread levels of the grid, then refine around the best
 * (accuracy against noise is single-peaked), until the levels on either side of the best are
 * adjacent in the grid or closer than `minStep`.
 */
export const noiseSearchSpecSchema = z
  .object({
    /** `adaptive`: coarse-to-fine search over the grid; `grid`: every level (the default without this block). */
    search: z.enum(['adaptive', 'grid']),
    /** Levels probed in the first round, evenly spread over the grid (both ends included). Default 4. */
    coarse: z.number().int().min(2).max(32).default(4),
    /** Stop refining when both neighbours of the best level are within this distance of it (noise-level units). Default 0: adjacent in the grid. */
    minStep: z.number().min(0).default(0),
  })
  .strict();
export type NoiseSearchSpec = z.output<typeof noiseSearchSpecSchema>;

/**
 * Probing during pretraining: every `every` steps the run's checkpoint is probed on a small fixed
 * grid (fast protocol, fixed noise), inside the pretraining job; accuracy against step is stored.
 * With `earlyStop`, training stops once the best accuracy has not improved by `minDelta` for
 * `patience` consecutive probes.
 */
export const progressProbeSpecSchema = z
  .object({
    /** Probe every N optimiser steps (rounded up to a checkpoint: every checkpoint whose step is a multiple of N). */
    every: positiveInt,
    /** DDPM timesteps of the small grid. Default: the smallest of `probe.timesteps`. */
    timesteps: z.array(z.number().int().min(0).max(1000)).min(1).max(8).optional(),
    /** EDM sigmas of the small grid. Default: the smallest of `probe.sigmas`. */
    sigmas: z.array(z.number().min(0).max(80)).min(1).max(8).optional(),
    /** Blocks to tap: `all` (every decoder block) or names. Default all. */
    layers: z.union([z.literal('all'), z.array(z.string()).min(1)]).default('all'),
    /** Probe training images. Default 2000. */
    trainSize: positiveInt.default(2000),
    /** Probe test images. Default 1000. */
    testSize: positiveInt.default(1000),
    /** Linear-probe epochs. Default 5. */
    epochs: positiveInt.max(200).default(5),
    /** Stop pretraining when the probe plateaus. Default: never. */
    earlyStop: z
      .object({
        /** Consecutive probes without an improvement of at least `minDelta` before stopping. */
        patience: positiveInt.max(1000),
        /** Smallest accuracy gain that counts as an improvement. Default 0.002. */
        minDelta: z.number().min(0).max(1).default(0.002),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ProgressProbeSpec = z.output<typeof progressProbeSpecSchema>;

export const pretrainSpecSchema = z
  .object({
    /** Optimiser steps per run. */
    steps: positiveInt.max(SPEC_LIMITS.maxSteps),
    /** Images per step. Default 64. */
    batchSize: positiveInt.max(4096).default(64),
    /** Adam learning rate after warm-up. Default 2e-4. */
    learningRate: z.number().positive().max(1).default(2e-4),
    /** Linear learning-rate warm-up steps. Default min(1000, steps / 10). */
    warmupSteps: z.number().int().min(0).optional(),
    /** Gradient clipping by global norm. Default 1.0. */
    gradClip: z.number().positive().default(1.0),
    /** EMA decay cap; the warm-up rule is min(cap, 1 - (1 + step)^(-2/3)). Default 0.9999 (DDPM) / 0.9993 (EDM). */
    emaDecayCap: z.number().min(0).max(1).optional(),
    /** Write a checkpoint every N steps (a killed run loses at most this much). Default 500. */
    checkpointEvery: positiveInt.default(500),
    /** One run per seed and model. Default [0]. */
    seeds: z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1).max(SPEC_LIMITS.maxSeeds).default([0]),
    /** Train on the first N images of the (seeded, shuffled) training split. Default: all. */
    trainSize: positiveInt.optional(),
    /** Probe checkpoints while training (accuracy against step), optionally stopping at a plateau. Default: off. */
    progressProbe: progressProbeSpecSchema.optional(),
    /** Steps per point of the stored training-loss curve (each point: the mean loss over its steps). Default 50. */
    lossEvery: positiveInt.max(SPEC_LIMITS.maxSteps).optional(),
    /**
     * Generation quality of every run's final checkpoint (the untrained control's too): FID and KID
     * of `samples` images (sampled with `steps` DDIM / Heun steps from `seed`) against the test
     * split, in the feature space of the committed Fashion-MNIST classifier (Fashion-MNIST sweeps
     * only). Kept apart from probe accuracy. Default: off (a few thousand samples cost minutes).
     */
    /**
     * The sample grid every trained run writes after pretraining (shown on the page): `{n, steps,
     * seed}` (`steps`: DDIM steps for DDPM models, Heun steps for EDM models), or `false` for none.
     * Default: 16 images, 20 DDIM / 10 Heun steps, seed 0 (seconds on a CPU).
     */
    samples: z
      .union([
        z.literal(false),
        z
          .object({
            n: z.number().int().min(1).max(256),
            steps: z.number().int().min(2).max(1000),
            seed: z.number().int().min(0).default(0),
          })
          .strict(),
      ])
      .optional(),
    fid: z
      .object({
        samples: z.number().int().min(2).max(20000),
        steps: z.number().int().min(2).max(1000),
        seed: z.number().int().min(0).default(0),
      })
      .strict()
      .optional(),
  })
  .strict();

export const POOLINGS = ['gap', 'avg2', 'avg4'] as const;
export type Pooling = (typeof POOLINGS)[number];

/** `fixed`: one seeded noise draw per image (cacheable); `fresh`: new noise at every probe epoch (the reference). */
export const NOISE_PROTOCOLS = ['fixed', 'fresh'] as const;
export type NoiseProtocol = (typeof NOISE_PROTOCOLS)[number];

/** `reference`: features recomputed every epoch (augmentation, fresh noise); `fast`: the linear layer on cached features. */
export const PROBE_PROTOCOLS = ['reference', 'fast'] as const;
export type ProbeProtocolName = (typeof PROBE_PROTOCOLS)[number];

/**
 * The protocols a stored result can carry: the linear probes' (`fast`, `reference`) and
 * `finetune` (the network up to the tapped block and a linear head trained end to end; the spec's
 * `probe.finetune`). Its key says `probe=finetune`, so fine-tuned and linear numbers never share a
 * ranking.
 */
export const RESULT_PROTOCOLS = [...PROBE_PROTOCOLS, 'finetune'] as const;
export type ResultProtocolName = (typeof RESULT_PROTOCOLS)[number];

/**
 * "Probe to choose, fine-tune to deploy": after the linear probes of a run, the network up to the
 * tapped block and a linear head are trained end to end at chosen cells (compute's finetuneCell),
 * each result stored under the `finetune` protocol (its key says `probe=finetune`), beside the
 * linear result of the same cell and never ranked with it.
 */
export const finetuneSpecSchema = z
  .object({
    /**
     * `best`: each trained run's best linear cell (at the largest label budget of `probe.labels`),
     * planned once the run's linear probes (and its noise search) are done; or a list of
     * `{ layer, noiseLevel }` (DDPM timestep / EDM sigma by the model's method), planned with the
     * sweep. Default best.
     */
    cells: z
      .union([z.literal('best'), z.array(z.object({ layer: z.string().min(1), noiseLevel: z.number().min(0).max(1000) }).strict()).min(1).max(16)])
      .default('best'),
    /**
     * Adam learning rate of the network and the head (cosine schedule to 0). Default 1e-3: on
     * Fashion-MNIST (docs/results.md, "Fine-tuning the best cell") 1e-4 left the zero-initialised head
     * unfitted after 3 epochs (56.8 % against 72.0 % at 1e-3), and 10 epochs at 1e-3 reached the
     * linear probe.
     */
    learningRate: z.number().positive().max(1).default(1e-3),
    /** Epochs over the labelled images. Default 10. */
    epochs: positiveInt.max(200).default(10),
    /** Batch size. Default: the probe's batchSize. */
    batchSize: positiveInt.max(4096).optional(),
    /** Random crop (pad 4) and horizontal flip (not on digits) of the training images every epoch, as the reference protocol. Default true. */
    augment: z.boolean().default(true),
    /** `fixed`: each image's seeded noise; `fresh`: a new draw every epoch. Default fixed. */
    noise: z.enum(NOISE_PROTOCOLS).default('fixed'),
    /** The label budget: labelled training images in total (class-balanced, as `probe.labels`), or `all` of `probe.trainSize`. Default all. */
    labels: z.union([positiveInt, z.literal('all')]).default('all'),
  })
  .strict();
export type FinetuneSpec = z.output<typeof finetuneSpecSchema>;

export const probeSpecSchema = z
  .object({
    /** Blocks to tap: `all` (every decoder block) or a list of block names such as out_3. Default all. */
    layers: z.union([z.literal('all'), z.array(z.string()).min(1)]).default('all'),
    /** DDPM timesteps (1..1000) to probe at; required when a DDPM model is in the sweep. */
    timesteps: z.array(z.number().int().min(0).max(1000)).min(1).max(64).optional(),
    /** EDM noise levels sigma to probe at; required when an EDM model is in the sweep. */
    sigmas: z.array(z.number().min(0).max(80)).min(1).max(64).optional(),
    /** Spatial pooling of each tap: gap (global average, the reference), avg2, avg4. Default gap. */
    pooling: z.enum(POOLINGS).default('gap'),
    /** Linear-probe epochs. Default 15. */
    epochs: positiveInt.max(200).default(15),
    /** Probe batch size. Default 128. */
    batchSize: positiveInt.max(4096).default(128),
    /** Probe Adam learning rate (cosine schedule). Default 1e-3. */
    learningRate: z.number().positive().max(1).default(1e-3),
    /** Probe training images (first N of the seeded training order). Default 10000. */
    trainSize: positiveInt.default(10000),
    /** Probe test images (first N of the test split). Default: the whole test split. */
    testSize: positiveInt.optional(),
    /** Seed of the noise drawn for feature extraction. Default 0. */
    noiseSeed: z.number().int().min(0).default(0),
    /**
     * `fixed`: one seeded noise draw per image, features cacheable; `fresh`: new noise at every
     * epoch of the probe (the reference; needs `protocol: reference`). Default fixed.
     */
    noise: z.enum(NOISE_PROTOCOLS).default('fixed'),
    /**
     * `fast`: features extracted once (and cached), the linear probe trained on them; `reference`:
     * training features recomputed at every epoch from augmented images (random crop with pad 4,
     * horizontal flip except on digits), with fresh noise when `noise: fresh`. Default fast.
     */
    protocol: z.enum(PROBE_PROTOCOLS).default('fast'),
    /** Noise axis: every level of the grid (default) or an adaptive coarse-to-fine search over it. */
    noiseSearch: noiseSearchSpecSchema.optional(),
    /**
     * Label budgets: every cell (and every baseline) is probed once per budget, on features
     * extracted once. A number is the count of labelled training images IN TOTAL (not per class),
     * drawn class-balanced from the probe's training images (the first `trainSize` of the seeded
     * order): N / classes per class, the remainder one more each for the lowest class indices, each
     * class's images taken in that seeded order, so the same seed gives the same subset and a smaller
     * budget's subset is nested in a larger one's. `all`: every one of the `trainSize` images, as
     * without this field. Positive integers from the class count up to `trainSize`, and/or `all`;
     * unique, ascending, `all` last. Default: [all].
     */
    labels: z.array(z.union([positiveInt, z.literal('all')])).min(1).max(16).optional(),
    /**
     * Fine-tuning after the linear probe (`protocol` stays the linear probes' protocol: fine-tuning
     * every cell of a grid would cost a pretraining per cell; the probe chooses, this trains).
     * Default: none.
     */
    finetune: finetuneSpecSchema.optional(),
  })
  .strict();

/** A label budget: a count of labelled training images in total (class-balanced), or `all` of the probe's training images. */
export type LabelBudget = number | 'all';

/** The budgets of a parsed spec's probe: its `labels`, or just `all`. */
export function probeLabelBudgets(probe: { labels?: LabelBudget[] | undefined }): LabelBudget[] {
  return probe.labels && probe.labels.length > 0 ? [...probe.labels] : ['all'];
}

/** A budget as a query and the CLI write it: `all` or the count. */
export function formatLabelBudget(labels: number | null | undefined): string {
  return labels == null ? 'all' : String(labels);
}

/**
 * `pixels`: a linear probe on raw pixels. `untrained`: each model's UNet at initialisation (its
 * first seed), probed on the same (layer x noise) grid: what the architecture alone gives.
 */
export const BASELINE_KINDS = ['pixels', 'untrained'] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

const sweepSpecBase = z
  .object({
    /** A human name for the sweep. */
    name: z.string().min(1).max(120),
    /** The data set every run pretrains and probes on. */
    dataset: z.enum(DATASET_NAMES),
    /** The diffusion models to pretrain; each runs once per seed. */
    models: z.array(modelSpecSchema).min(1).max(SPEC_LIMITS.maxModels),
    pretrain: pretrainSpecSchema,
    probe: probeSpecSchema,
    /**
     * 1 (most urgent) .. 9 (background). Within one priority, sweeps share the workers fairly: each
     * sweep's k-th pretraining run waits behind every other sweep's (k-1)-th. Default 5.
     */
    priority: z.number().int().min(1).max(9).default(5),
    /** At most this many of the sweep's runs and probe tasks run at once. Default: no cap. */
    maxConcurrency: positiveInt.max(10_000).optional(),
    /** Baselines to compute on the same data and probe protocol (pixels, untrained). Default [pixels]. */
    baselines: z.array(z.enum(BASELINE_KINDS)).default(['pixels']),
  })
  .strict();

export const sweepSpecSchema = sweepSpecBase.superRefine((spec, ctx) => checkSweepSpec(spec, ctx));

type RefineContext = Parameters<Parameters<z.ZodObject['superRefine']>[0]>[1];

/**
 * Cross-field checks. Zod runs them even when some fields already failed (so that one answer
 * names every bad field), hence each check first makes sure the fields it reads are sound.
 */
function checkSweepSpec(spec: z.output<typeof sweepSpecBase>, ctx: RefineContext): void {
  const shape = DATASET_SHAPES[spec.dataset];
  if (!shape) return;
  const models = Array.isArray(spec.models) ? spec.models : [];
  const layers = spec.probe && Array.isArray(spec.probe.layers) ? spec.probe.layers : null;
  const progressLayers = spec.pretrain?.progressProbe && Array.isArray(spec.pretrain.progressProbe.layers) ? spec.pretrain.progressProbe.layers : null;
  const finetuneCells = spec.probe?.finetune && Array.isArray(spec.probe.finetune.cells) ? spec.probe.finetune.cells : null;
  /** One issue per unknown layer (its path), naming every model that lacks it. */
  const unknownLayers = new Map<string, { path: (string | number)[]; layer: string; models: { index: number; kind: string; known: string[] }[] }>();
  models.forEach((model, i) => {
    const own = model && typeof model.imageSize === 'number' ? model.imageSize : undefined;
    if (own !== undefined && own < shape.size) {
      ctx.addIssue({ code: 'custom', path: ['models', i, 'imageSize'], message: `${spec.dataset} images are ${shape.size}x${shape.size}: imageSize must be at least ${shape.size}` });
      return;
    }
    const imageSize = own ?? paddedImageSize(shape.size);
    const net = checkedBackbone(model, i, { imageSize, own: own !== undefined, minSize: shape.size }, shape.channels, ctx);
    if (!net) return;
    const known = backboneTappableLayers(net, imageSize, shape.channels);
    const cellLayers = finetuneCells?.map((c) => (c && typeof c === 'object' ? c.layer : undefined)) ?? null;
    for (const [list, at, tail] of [[layers, ['probe', 'layers'], []], [progressLayers, ['pretrain', 'progressProbe', 'layers'], []], [cellLayers, ['probe', 'finetune', 'cells'], ['layer']]] as const) {
      list?.forEach((layer, j) => {
        if (typeof layer !== 'string' || known.includes(layer)) return;
        const key = `${at.join('.')}.${j}`;
        const entry = unknownLayers.get(key) ?? { path: [...at, j, ...tail], layer, models: [] };
        entry.models.push({ index: i, kind: net.backbone === 'dit' ? 'DiT' : 'UNet', known });
        unknownLayers.set(key, entry);
      });
    }
    const pp = spec.pretrain?.progressProbe;
    if (pp && typeof pp === 'object') {
      const layerCount = pp.layers === 'all' ? backboneDefaultLayers(net, imageSize, shape.channels).length : Array.isArray(pp.layers) ? pp.layers.length : 0;
      const own = model.method === 'ddpm' ? pp.timesteps : pp.sigmas;
      const levelCount = Array.isArray(own) ? new Set(own).size : 1;
      if (layerCount * levelCount > SPEC_LIMITS.maxProgressProbeCells) {
        ctx.addIssue({
          code: 'custom',
          path: ['pretrain', 'progressProbe', pp.layers === 'all' ? 'layers' : model.method === 'ddpm' ? 'timesteps' : 'sigmas'],
          message: `model ${i}: ${layerCount} layers x ${levelCount} noise levels = ${layerCount * levelCount} cells per probe exceed the small grid's limit of ${SPEC_LIMITS.maxProgressProbeCells}`,
        });
      }
    }
  });
  for (const { path, layer, models: lacking } of unknownLayers.values()) {
    const where = lacking.map((m) => `model ${m.index} (a ${m.kind}; known: ${m.known.join(', ')})`).join('; ');
    ctx.addIssue({ code: 'custom', path, message: `unknown layer "${layer}" for ${where}` });
  }
  const progress = spec.pretrain?.progressProbe;
  if (progress && typeof progress === 'object') {
    for (const key of ['trainSize', 'testSize'] as const) {
      const limit = key === 'trainSize' ? shape.train : shape.test;
      if (typeof progress[key] === 'number' && progress[key] > limit) {
        ctx.addIssue({ code: 'custom', path: ['pretrain', 'progressProbe', key], message: `${spec.dataset} has ${limit} ${key === 'trainSize' ? 'training' : 'test'} images` });
      }
    }
    if (typeof progress.every === 'number' && typeof spec.pretrain.steps === 'number' && progress.every > spec.pretrain.steps) {
      ctx.addIssue({ code: 'custom', path: ['pretrain', 'progressProbe', 'every'], message: `probing every ${progress.every} steps never probes a run of ${spec.pretrain.steps} steps: use at most ${spec.pretrain.steps}` });
    }
  }
  const methods = new Set(models.map((m) => m?.method));
  if (spec.probe && typeof spec.probe === 'object') {
    if (methods.has('ddpm') && !spec.probe.timesteps) {
      ctx.addIssue({ code: 'custom', path: ['probe', 'timesteps'], message: 'required: the sweep has a DDPM model' });
    }
    if (methods.has('edm') && !spec.probe.sigmas) {
      ctx.addIssue({ code: 'custom', path: ['probe', 'sigmas'], message: 'required: the sweep has an EDM model' });
    }
    if (spec.probe.noise === 'fresh' && spec.probe.protocol === 'fast') {
      ctx.addIssue({ code: 'custom', path: ['probe', 'noise'], message: 'fresh noise needs features recomputed at every epoch: use protocol: reference (or noise: fixed)' });
    }
    if (typeof spec.probe.trainSize === 'number' && spec.probe.trainSize > shape.train) {
      ctx.addIssue({ code: 'custom', path: ['probe', 'trainSize'], message: `${spec.dataset} has ${shape.train} training images` });
    }
    if (typeof spec.probe.testSize === 'number' && spec.probe.testSize > shape.test) {
      ctx.addIssue({ code: 'custom', path: ['probe', 'testSize'], message: `${spec.dataset} has ${shape.test} test images` });
    }
    const ft = spec.probe.finetune;
    if (ft && typeof ft === 'object' && (typeof ft.labels === 'number' || ft.labels === 'all')) {
      const pool = Math.min(typeof spec.probe.trainSize === 'number' ? spec.probe.trainSize : shape.train, shape.train);
      for (const { message } of labelBudgetIssues([ft.labels], pool, shape.classes, spec.dataset)) ctx.addIssue({ code: 'custom', path: ['probe', 'finetune', 'labels'], message });
    }
    if (Array.isArray(spec.probe.labels)) checkLabelBudgets(spec.probe.labels, Math.min(typeof spec.probe.trainSize === 'number' ? spec.probe.trainSize : shape.train, shape.train), shape.classes, spec.dataset, ctx);
  }
  if (spec.pretrain && typeof spec.pretrain === 'object') {
    if (spec.pretrain.fid && spec.dataset !== 'fashion-mnist') {
      ctx.addIssue({ code: 'custom', path: ['pretrain', 'fid'], message: `FID/KID are measured with a classifier trained on fashion-mnist: not available for ${spec.dataset} (remove pretrain.fid)` });
    }
    if (typeof spec.pretrain.trainSize === 'number' && spec.pretrain.trainSize > shape.train) {
      ctx.addIssue({ code: 'custom', path: ['pretrain', 'trainSize'], message: `${spec.dataset} has ${shape.train} training images` });
    }
    const seeds = Array.isArray(spec.pretrain.seeds) ? spec.pretrain.seeds.length : 1;
    if (models.length * seeds > SPEC_LIMITS.maxRuns) {
      ctx.addIssue({ code: 'custom', path: ['pretrain', 'seeds'], message: `${models.length * seeds} runs exceed the limit of ${SPEC_LIMITS.maxRuns}` });
    }
  }
}

/** `probe.labels` checked in a spec: each issue at `probe.labels.i`. */
function checkLabelBudgets(labels: unknown[], pool: number, classes: number, dataset: string, ctx: RefineContext): void {
  for (const { index, message } of labelBudgetIssues(labels, pool, classes, dataset)) ctx.addIssue({ code: 'custom', path: ['probe', 'labels', index], message });
}

/**
 * Label budgets (a sweep's `probe.labels`, the inline probe's `--labels`): each between the class
 * count and the probe's training images (`pool`, its trainSize), unique, ascending with `all`
 * last; one issue per bad entry, with its index and the fix. Entries of another type are left to
 * the schema.
 */
export function labelBudgetIssues(labels: readonly unknown[], pool: number, classes: number, dataset: string): { index: number; message: string }[] {
  const issues: { index: number; message: string }[] = [];
  let previous: number | 'all' | undefined;
  labels.forEach((budget, index) => {
    if (budget !== 'all' && typeof budget !== 'number') return;
    if (typeof budget === 'number') {
      if (budget < classes) {
        issues.push({ index, message: `${budget} labels cannot cover the ${classes} classes of ${dataset} (a budget counts labelled images in total, class-balanced): use at least ${classes}` });
      } else if (budget > pool) {
        issues.push({ index, message: `${budget} labels exceed the probe's ${pool} training images (probe.trainSize): raise trainSize or use all` });
      }
    }
    if (previous !== undefined) {
      if (budget === previous) issues.push({ index, message: `${budget} is listed twice: list each budget once` });
      else if (previous === 'all' || (typeof budget === 'number' && budget < previous)) issues.push({ index, message: 'list the budgets in ascending order, all last' });
    }
    previous = budget;
  });
  return issues;
}

/**
 * The backbone of model `i`, resolved and checked against the image size; issues go to the
 * model's fields (`models.i.unet.groups`, `models.i.dit.width`, ...); undefined when it is unsound.
 */
function checkedBackbone(
  model: unknown,
  i: number,
  size: { imageSize: number; /** the spec names models[i].imageSize */ own: boolean; /** the data set's images' side */ minSize: number },
  imageChannels: number,
  ctx: RefineContext,
): BackboneSpec | undefined {
  const { imageSize } = size;
  if (!model || typeof model !== 'object') return undefined;
  const m = model as { backbone?: unknown; unet?: unknown; dit?: unknown };
  const backbone = m.backbone ?? 'unet';
  if (backbone === 'dit') {
    if (m.unet !== undefined) ctx.addIssue({ code: 'custom', path: ['models', i, 'unet'], message: 'a DiT model takes `dit`, not `unet` (or use backbone: unet)' });
    if (m.dit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['models', i, 'dit'], message: `required with backbone: dit: a preset (${Object.keys(DIT_PRESETS).join(', ')}) or { depth, width, heads, patch }` });
      return undefined;
    }
    const parsed = ditSpecFormSchema(m.dit).safeParse(m.dit);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['models', i, 'dit', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], message: issue.message });
      return undefined;
    }
    const dit = resolveDiTSpec(parsed.data as DiTSpec);
    const problem = ditConfigProblem(dit, imageSize);
    if (problem) {
      ctx.addIssue({ code: 'custom', path: ['models', i, 'dit', ...(typeof m.dit === 'object' && !('preset' in (m.dit as object)) ? [problem.field] : [])], message: `${problem.message} (images are ${imageSize}x${imageSize}${size.own ? '' : ' after padding'})` });
      return undefined;
    }
    return { backbone: 'dit', dit };
  }
  if (backbone !== 'unet') return undefined;
  if (m.dit !== undefined) ctx.addIssue({ code: 'custom', path: ['models', i, 'dit'], message: 'a DiT configuration needs backbone: dit' });
  if (m.unet === undefined) {
    ctx.addIssue({ code: 'custom', path: ['models', i, 'unet'], message: `required: a preset (${Object.keys(UNET_PRESETS).join(', ')}) or a UNet configuration (or backbone: dit with a dit)` });
    return undefined;
  }
  const unetParsed = modelSpecSchema.shape.unet.safeParse(m.unet);
  if (!unetParsed.success || unetParsed.data === undefined) return undefined;
  const unet = resolveUNet(unetParsed.data);
  const levels = unet.channelMults.length;
  if (imageSize % 2 ** (levels - 1) !== 0) {
    const sizes = divisibleSizes(size.minSize, levels);
    ctx.addIssue({
      code: 'custom',
      path: size.own ? ['models', i, 'imageSize'] : ['models', i, 'unet', 'channelMults'],
      message: `${levels} levels do not divide ${imageSize}x${imageSize} images (each level halves the size: ${levelSizes(imageSize, levels).join(', ')}); imageSize ${sizes.join(' or ')} would`,
    });
    return undefined;
  }
  const layout = unetLayout({ ...unet, imageSize, imageChannels });
  const badGroups = layout.find((b) => b.channels % unet.groups !== 0);
  if (badGroups) {
    ctx.addIssue({ code: 'custom', path: ['models', i, 'unet', 'groups'], message: `${unet.groups} groups do not divide the ${badGroups.channels} channels of ${badGroups.name}` });
  }
  return { backbone: 'unet', unet };
}

/** A DiT as the spec names it, as a configuration. */
export function resolveDiTSpec(dit: DiTSpec): DiTConfig {
  if (typeof dit === 'string') return resolveDiT(dit);
  if ('preset' in dit) return resolveDiT(dit.preset);
  return ditConfigSchema.parse(dit);
}

/**
 * The backbone of a parsed model spec (defaults applied, validated): its UNet or DiT, resolved.
 * Throws on a model that names neither (the schema refuses those).
 */
export function resolveModelBackbone(model: ModelSpec): BackboneSpec {
  if (model.backbone === 'dit') {
    if (!model.dit) throw new Error('a DiT model needs `dit`');
    return { backbone: 'dit', dit: resolveDiTSpec(model.dit) };
  }
  if (!model.unet) throw new Error('a UNet model needs `unet`');
  return { backbone: 'unet', unet: resolveUNet(model.unet) };
}

/** The spec as written (defaults not yet applied). */
export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
/** The spec with every default applied: what is stored. */
export type SweepSpec = z.output<typeof sweepSpecSchema>;

/** Images are zero-padded (in [-1, 1]: to -1) up to a size each level can halve: 28 -> 32. */
export function paddedImageSize(size: number): number {
  return 2 ** Math.ceil(Math.log2(size));
}

/** The image side a model trains and probes on: its `imageSize`, else the data set's padded size. */
export function modelImageSize(dataset: DatasetName, model: { imageSize?: number | undefined }): number {
  return model.imageSize ?? paddedImageSize(DATASET_SHAPES[dataset].size);
}

/** The resolution of each of `levels` UNet levels on `size`-pixel images (30, 3 levels: 30, 15, 7.5: the last is not whole). */
function levelSizes(size: number, levels: number): number[] {
  return Array.from({ length: levels }, (_, k) => size / 2 ** k);
}

/** The two smallest image sizes >= `min` that `levels` levels halve exactly (for the error message). */
function divisibleSizes(min: number, levels: number): number[] {
  const step = 2 ** (levels - 1);
  const first = Math.ceil(min / step) * step;
  return [first, first + step];
}

export function resolveUNet(unet: NonNullable<ModelSpec['unet']>): UNetConfig {
  if (typeof unet === 'string') {
    const preset = UNET_PRESETS[unet];
    return { ...preset, channelMults: [...preset.channelMults], attentionResolutions: [...preset.attentionResolutions] };
  }
  return unet;
}
