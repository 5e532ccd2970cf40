import { z } from 'zod';
import { ditConfigSchema } from './dit-layout';
import { DATASET_NAMES, METHODS, NOISE_PROTOCOLS, POOLINGS, RESULT_PROTOCOLS, unetConfigSchema, type Method } from './sweep-spec.schema';

/** Queue names. Never rename one: jobs already in Redis would be orphaned. */
export const QUEUES = {
  /** Every compute job (pretrain, probe, baseline): one worker process runs one at a time. */
  compute: 'ddae-compute',
} as const;

/** Job names on the compute queue. Never rename. */
export const JOB_NAMES = {
  pretrain: 'pretrain',
  probe: 'probe',
  baseline: 'baseline',
} as const;
export type JobName = (typeof JOB_NAMES)[keyof typeof JOB_NAMES];

/** Payloads carry ids only; configuration lives in Postgres. `v` is the payload schema version. */
export const pretrainPayloadSchema = z.object({ v: z.literal(1), runId: z.string().uuid() }).strict();
export const probePayloadSchema = z.object({ v: z.literal(1), probeTaskId: z.string().uuid() }).strict();
export const baselinePayloadSchema = z.object({ v: z.literal(1), baselineId: z.string().uuid() }).strict();
export type PretrainPayload = z.infer<typeof pretrainPayloadSchema>;
export type ProbePayload = z.infer<typeof probePayloadSchema>;
export type BaselinePayload = z.infer<typeof baselinePayloadSchema>;

export const PAYLOAD_SCHEMAS = {
  [JOB_NAMES.pretrain]: pretrainPayloadSchema,
  [JOB_NAMES.probe]: probePayloadSchema,
  [JOB_NAMES.baseline]: baselinePayloadSchema,
} as const;

/** Deterministic job ids: no ':' and never all digits (BullMQ rules). */
export const jobIds = {
  pretrain: (runId: string) => `pretrain-${runId}`,
  probe: (probeTaskId: string) => `probe-${probeTaskId}`,
  baseline: (baselineId: string) => `baseline-${baselineId}`,
};

/* ------------------------------------------------------------------------------------------------
 * Compute tasks: what the worker hands to the process that runs TensorFlow.js (and what the CLI
 * runs inline). Fully resolved: no defaults left, no database needed to run one.
 * --------------------------------------------------------------------------------------------- */

export const datasetSliceSchema = z.object({
  name: z.enum(DATASET_NAMES),
  /** Directory holding the data set's files; default from the data library. */
  dir: z.string().optional(),
});

/** What a generation-quality evaluation samples: how many images, with how many sampler steps, from which seed. */
export const generationQualitySpecSchema = z.object({
  /** Images sampled (a few thousand for FID; KID is the figure to read below ~1,000). */
  samples: z.number().int().min(2).max(20000),
  /** Sampler steps: DDIM steps (DDPM models) or Heun steps on the Karras grid (EDM models). */
  steps: z.number().int().min(2).max(1000),
  /** Seed of the sampler's noise. Default 0. */
  seed: z.number().int().min(0).default(0),
});
export type GenerationQualitySpec = z.infer<typeof generationQualitySpecSchema>;

export const pretrainTaskSchema = z.object({
  kind: z.literal('pretrain'),
  runId: z.string(),
  method: z.enum(METHODS),
  /** The network: a UNet (`unet`) or a DiT (`dit`), exactly one of them (see `backboneOf`). */
  unet: unetConfigSchema.required().optional(),
  dit: ditConfigSchema.required().optional(),
  dataset: datasetSliceSchema,
  /** Train on the first N images of the seeded training order; undefined: all. */
  trainSize: z.number().int().positive().optional(),
  /** Side of the square model input (images centred, padded black); undefined: the data set's padded size (28 -> 32). */
  imageSize: z.number().int().min(8).max(256).optional(),
  /** 0: write the initial weights as the only checkpoint (the untrained-network baseline). */
  steps: z.number().int().min(0),
  batchSize: z.number().int().positive(),
  learningRate: z.number().positive(),
  warmupSteps: z.number().int().min(0),
  gradClip: z.number().positive(),
  emaDecayCap: z.number().min(0).max(1),
  checkpointEvery: z.number().int().positive(),
  seed: z.number().int().min(0),
  /** Directory the run's checkpoints go to (created; resumed from when it holds one). */
  checkpointDir: z.string(),
  /** Steps per point of the training-loss curve (`ComputeHooks.trainLoss`). Default 50. */
  lossEvery: z.number().int().positive().optional(),
  /**
   * A model pretrained elsewhere: instead of training, import this safetensors file (the PyTorch
   * twin's names) as the run's only checkpoint (step 0), refusing it when `sha256` is given and differs.
   * `path` is absolute (the worker resolves a spec's relative path against its ARTIFACT_DIR).
   */
  importFrom: z.object({ path: z.string(), sha256: z.string().optional() }).optional(),
  /**
   * After training, sample a small grid from the final checkpoint's EMA weights and write it as a
   * PNG beside the checkpoints (`samples-step-XXXXXXXX.png`). Default: no samples.
   */
  samples: z
    .object({
      /** Images in the grid. */
      n: z.number().int().min(1).max(256),
      /** Sampler steps: DDIM steps (DDPM models) or Heun steps on the Karras grid (EDM models, 2 x steps - 1 network calls). */
      steps: z.number().int().min(2).max(1000),
      /** Seed of the sampler's noise. */
      seed: z.number().int().min(0),
    })
    .optional(),
  /**
   * After training, FID and KID of the final checkpoint's samples against the test split, in the
   * feature space of the committed Fashion-MNIST classifier (Fashion-MNIST runs only). Default: none.
   */
  fid: generationQualitySpecSchema.optional(),
});
export type PretrainTask = z.infer<typeof pretrainTaskSchema> & { progressProbe?: ProgressProbeConfig };

/**
 * The sample grid a worker writes after pretraining a run: 16 images (a 4x4 grid), DDIM with 20
 * steps for DDPM models, Heun with 10 Karras steps (19 network calls) for EDM models, seed 0. Small
 * on purpose: on UNet `small` (native kernels, 2 threads) it took 4.5-7.1 s (DDPM) and 6.0-8.1 s
 * (EDM) on a 2-core machine at load average 20, against ~15 minutes of the demo's pretraining.
 */
export function workerSampleSpec(method: Method): NonNullable<PretrainTask['samples']> {
  return { n: 16, steps: method === 'ddpm' ? 20 : 10, seed: 0 };
}

/** How a result was produced, stored with it: the exact probe protocol. */
export const probeProtocolSchema = z.object({
  pooling: z.enum(POOLINGS),
  /**
   * `fixed`: one seeded noise draw per image (features are cacheable); `fresh`: a new draw at every
   * epoch of the probe's training (the reference protocol; needs `probe: 'reference'`).
   */
  noise: z.enum(NOISE_PROTOCOLS),
  noiseSeed: z.number().int().min(0),
  /**
   * `reference`: training features recomputed at every epoch from augmented images (random crop,
   * flip where it applies) and, with fresh noise, new noise; `fast`: features extracted once
   * (cached) and the linear layer trained on them. Both: Adam, cosine schedule, `epochs`, `batchSize`.
   * `finetune`: the network up to the tapped block and a linear head trained end to end at the
   * task's noise level (compute's runFinetuneTask), with `augment` saying whether its training
   * images are randomly cropped and flipped every epoch.
   */
  probe: z.enum(RESULT_PROTOCOLS),
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  learningRate: z.number().positive(),
  /** Features standardised with training-split statistics before the linear layer. */
  standardize: z.boolean(),
  trainSize: z.number().int().positive(),
  testSize: z.number().int().positive(),
  /** Seed of the probe's initialisation and batch order. */
  probeSeed: z.number().int().min(0),
  /**
   * The label budget of a result: the linear layer trained on this many labelled images in total,
   * class-balanced out of the `trainSize` training images (see `balancedSubset` in @ddae/datasets).
   * Absent: every one of the `trainSize` images (the budget `all`). A probe task's protocol has none
   * (it lists its budgets apart); each of its results has its own.
   */
  labels: z.number().int().positive().optional(),
  /** Fine-tuning only (`probe: 'finetune'`): random crop (pad 4) and flip (except digits) of the training images every epoch. */
  augment: z.boolean().optional(),
});
export type ProbeProtocol = z.infer<typeof probeProtocolSchema>;

/** A canonical, order-stable key for a protocol: part of every result's natural unique key. */
export function protocolKey(p: ProbeProtocol): string {
  return [
    `pool=${p.pooling}`,
    `noise=${p.noise}:${p.noiseSeed}`,
    `probe=${p.probe}`,
    `ep=${p.epochs}`,
    `bs=${p.batchSize}`,
    `lr=${p.learningRate}`,
    `std=${p.standardize ? 1 : 0}`,
    `n=${p.trainSize}/${p.testSize}`,
    `seed=${p.probeSeed}`,
    // Only with a budget: the keys of results on every training image stay what they were.
    ...(p.labels !== undefined ? [`labels=${p.labels}`] : []),
    ...(p.augment !== undefined ? [`aug=${p.augment ? 1 : 0}`] : []),
  ].join(';');
}

/** The protocol of a result at `budget` (`all`: the protocol as is, without `labels`). */
export function protocolAtBudget(p: ProbeProtocol, budget: number | 'all'): ProbeProtocol {
  const { labels: _none, ...base } = p;
  return budget === 'all' ? base : { ...base, labels: budget };
}

/**
 * Probing during pretraining, resolved: every `every` steps the pretraining task writes a checkpoint,
 * probes it at `noiseLevels` on `layers` under `protocol` (fast, fixed noise, a small slice), and
 * with `earlyStop` ends training once the best accuracy has not improved by `minDelta` for
 * `patience` consecutive probes.
 */
export const progressProbeConfigSchema = z.object({
  every: z.number().int().positive(),
  noiseLevels: z.array(z.number().min(0)).min(1),
  layers: z.array(z.string()).min(1),
  protocol: probeProtocolSchema,
  earlyStop: z.object({ patience: z.number().int().positive(), minDelta: z.number().min(0) }).optional(),
});
export type ProgressProbeConfig = z.infer<typeof progressProbeConfigSchema>;

/** One probed checkpoint during pretraining: the best accuracy over its layers and noise levels, and every cell. */
export const progressPointSchema = z.object({
  step: z.number().int().min(0),
  accuracy: z.number().min(0).max(1),
  cells: z.array(z.object({ layer: z.string(), noiseLevel: z.number(), accuracy: z.number().min(0).max(1), featureDim: z.number().int().positive() })),
  /** Measured before a restart and reported again so that whoever stores the points has them all (store idempotently). */
  replayed: z.boolean().optional(),
});
export type ProgressPoint = z.infer<typeof progressPointSchema>;

export const probeTaskSchema = z.object({
  kind: z.literal('probe'),
  probeTaskId: z.string(),
  method: z.enum(METHODS),
  /** The network that wrote the checkpoint, as in the pretraining task: `unet` or `dit`. */
  unet: unetConfigSchema.required().optional(),
  dit: ditConfigSchema.required().optional(),
  dataset: datasetSliceSchema,
  /** Checkpoint directory (its EMA weights are probed). */
  checkpointPath: z.string(),
  /** DDPM timestep t, or EDM sigma. */
  noiseLevel: z.number().min(0),
  layers: z.array(z.string()).min(1),
  protocol: probeProtocolSchema,
  /**
   * Label budgets: one linear probe per layer and budget on the same features (counts in total,
   * class-balanced, or `all`). Default [all].
   */
  labels: z.array(z.union([z.number().int().positive(), z.literal('all')])).min(1).optional(),
  /**
   * Directory of the feature cache (see compute's FeatureCache); features that the protocol allows
   * to cache (fixed noise, no augmentation) are read from and written to it. Undefined: no cache.
   */
  featureCacheDir: z.string().optional(),
});
export type ProbeTask = z.infer<typeof probeTaskSchema>;

export const baselineTaskSchema = z.object({
  kind: z.literal('baseline'),
  baselineId: z.string(),
  baseline: z.literal('pixels'),
  dataset: datasetSliceSchema,
  protocol: probeProtocolSchema,
});
export type BaselineTask = z.infer<typeof baselineTaskSchema>;

const pretrainTaskWithProgressSchema = pretrainTaskSchema.extend({ progressProbe: progressProbeConfigSchema.optional() });
export const computeTaskSchema = z.discriminatedUnion('kind', [pretrainTaskWithProgressSchema, probeTaskSchema, baselineTaskSchema]);
export type ComputeTask = z.infer<typeof computeTaskSchema>;

/**
 * The backend that computed a result, recorded with it. The order is a worker's order of preference
 * (`auto`): tfjs-node-gpu, WebGPU on a hardware adapter, tfjs-node, our native kernels, wasm, cpu.
 */
export const BACKENDS = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** The WebGPU adapter a `webgpu` backend computes on: what WebGPU's GPUAdapterInfo says, and the limits that size work. */
export const gpuAdapterSchema = z.object({
  /** Position in the list of adapters Dawn offers for its backend (what `DDAE_GPU` indexes). */
  index: z.number().int().min(0),
  /** The driver's device name (e.g. `NVIDIA H200`, `llvmpipe (LLVM 15.0.6, 256 bits)`). */
  name: z.string(),
  /** Dawn's backend: `vulkan` on Linux. */
  api: z.string(),
  vendor: z.string(),
  architecture: z.string(),
  /** Driver description (driver name and version). */
  description: z.string(),
  /** A software adapter (a CPU rasteriser such as Mesa's lavapipe): never chosen unless asked for. */
  fallback: z.boolean(),
  /** The PCI address the adapter was isolated by (`DDAE_GPU=pci-…`), when it was. */
  pci: z.string().optional(),
  limits: z.object({
    /** Largest GPU buffer, in bytes. */
    maxBufferSize: z.number(),
    /** Largest buffer a shader may bind, in bytes: the largest tensor the backend can compute on. */
    maxStorageBufferBindingSize: z.number(),
    /** Storage buffers one shader may bind: a kernel with more inputs + outputs fails. */
    maxStorageBuffersPerShaderStage: z.number(),
    maxComputeWorkgroupStorageSize: z.number(),
    maxComputeInvocationsPerWorkgroup: z.number(),
  }),
});
export type GpuAdapter = z.infer<typeof gpuAdapterSchema>;

/** A byte count as MiB (or GiB beyond 4 GiB), for messages. */
function formatBytes(bytes: number): string {
  return bytes >= 4 * 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

/**
 * One line naming an adapter and its key limits, e.g.
 * `GPU 0 "NVIDIA H200" (nvidia hopper, vulkan; max buffer 4.0 GiB, max binding 2.0 GiB, 8 storage buffers/shader)`.
 */
export function describeGpuAdapter(a: GpuAdapter): string {
  const kind = a.fallback ? 'software adapter, ' : '';
  const arch = [a.vendor, a.architecture].filter(Boolean).join(' ');
  return (
    `GPU ${a.index}${a.pci ? ` [${a.pci}]` : ''} "${a.name}" (${kind}${arch ? `${arch}, ` : ''}${a.api}; ${a.description}; ` +
    `max buffer ${formatBytes(a.limits.maxBufferSize)}, max binding ${formatBytes(a.limits.maxStorageBufferBindingSize)}, ` +
    `${a.limits.maxStorageBuffersPerShaderStage} storage buffers/shader)`
  );
}

/**
 * The adapter as stored with every result it computed (`device` of runs, probe results and
 * baselines): which GPU, whether it is a software one, its vendor and driver, without the limits, e.g.
 * `GPU 0 "NVIDIA H200" (nvidia hopper, vulkan; NVIDIA 570.124.06)`.
 */
export function gpuDeviceLabel(a: GpuAdapter): string {
  const kind = a.fallback ? 'software adapter, ' : '';
  const arch = [a.vendor, a.architecture].filter(Boolean).join(' ');
  return `GPU ${a.index}${a.pci ? ` [${a.pci}]` : ''} "${a.name}" (${kind}${arch ? `${arch}, ` : ''}${a.api}${a.description ? `; ${a.description}` : ''})`;
}

/** The backend a result was computed on, as the compute side reports it with the result. */
export const computeDeviceSchema = z.object({
  backend: z.enum(BACKENDS),
  /** Human-readable how/why (package, threads, adapter, fallback reasons). */
  detail: z.string(),
  /** On webgpu: the adapter. */
  gpu: gpuAdapterSchema.optional(),
  /**
   * Backend memory when the task ended (tf.memory()): live tensors and their bytes; on webgpu also
   * the bytes of GPU buffers in use and allocated (the buffer pool keeps freed buffers for reuse).
   */
  memory: z
    .object({
      numTensors: z.number().int(),
      numBytes: z.number(),
      gpuBytesUsed: z.number().optional(),
      gpuBytesAllocated: z.number().optional(),
    })
    .optional(),
});
export type ComputeDevice = z.infer<typeof computeDeviceSchema>;

/** A checkpoint as the compute side reports it. */
export const checkpointInfoSchema = z.object({
  step: z.number().int().min(0),
  /** Directory of the checkpoint (absolute, or relative to the artifact root). */
  path: z.string(),
  /** sha256 of the manifest, which itself lists the sha256 of every file. */
  sha256: z.string(),
  loss: z.number().optional(),
});
export type CheckpointInfo = z.infer<typeof checkpointInfoSchema>;

export const layerAccuracySchema = z.object({
  layer: z.string(),
  /** The label budget it was trained on (a count, class-balanced); absent: all of the protocol's training images. */
  labels: z.number().int().positive().optional(),
  accuracy: z.number().min(0).max(1),
  trainAccuracy: z.number().min(0).max(1).optional(),
  featureDim: z.number().int().positive(),
});

/** A sample grid written after pretraining. */
export const sampleGridInfoSchema = z.object({
  /** The PNG (absolute, or relative to the artifact root). */
  path: z.string(),
  /** Step of the checkpoint sampled. */
  step: z.number().int().min(0),
  n: z.number().int().positive(),
  /** `ddim` (DDPM models) or `heun` (EDM models). */
  sampler: z.enum(['ddim', 'heun']),
  steps: z.number().int().positive(),
  seed: z.number().int().min(0),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  seconds: z.number().min(0),
});
export type SampleGridInfo = z.infer<typeof sampleGridInfoSchema>;

/**
 * Generation quality of one checkpoint: the Frechet distance (FID) and KID of its samples against
 * a data set's test split, in a named feature extractor's space. Never mixed with probe accuracy.
 */
export const generationQualitySchema = z.object({
  /** The feature extractor, e.g. `ddae-fmnist-cnn-v1 penultimate, 128-d`. */
  extractor: z.string(),
  /** sha256 of the extractor's weights. */
  extractorSha256: z.string(),
  /** Step of the checkpoint sampled. */
  step: z.number().int().min(0),
  samples: z.number().int().positive(),
  /** The reference images, e.g. `fashion-mnist test`, and how many. */
  reference: z.string(),
  referenceCount: z.number().int().positive(),
  sampler: z.enum(['ddim', 'heun']),
  steps: z.number().int().positive(),
  seed: z.number().int().min(0),
  fid: z.number().min(0),
  /** Unbiased MMD^2 with the cubic polynomial kernel: mean and std over random subsets. */
  kid: z.object({ mean: z.number(), std: z.number().min(0), subsets: z.number().int().positive(), subsetSize: z.number().int().positive() }),
  seconds: z.number().min(0),
});
export type GenerationQuality = z.infer<typeof generationQualitySchema>;

export const pretrainResultSchema = z.object({
  kind: z.literal('pretrain'),
  finalCheckpoint: checkpointInfoSchema,
  steps: z.number().int(),
  seconds: z.number(),
  /** Trainable parameters of the network. */
  parameters: z.number().int().positive().optional(),
  /** Probing during pretraining: accuracy against step, and whether its plateau stopped training. */
  progress: z.array(z.object({ step: z.number().int(), accuracy: z.number() })).optional(),
  stoppedEarly: z.boolean().optional(),
  /** The backend (and adapter) that computed it. */
  device: computeDeviceSchema.optional(),
  /** The sample grid of the final checkpoint (when the task asked for `samples`), or why there is none. */
  samples: sampleGridInfoSchema.optional(),
  samplesError: z.string().optional(),
  /** FID and KID of the final checkpoint (when the task asked for `fid`), or why there are none. */
  generation: generationQualitySchema.optional(),
  generationError: z.string().optional(),
  /** An imported run's source: the file and the sha256 it hashed to. */
  source: z.object({ path: z.string(), sha256: z.string() }).optional(),
});

export const probeResultSchema = z.object({
  kind: z.literal('probe'),
  layers: z.array(layerAccuracySchema),
  seconds: z.number(),
  /** Feature matrices (one per layer and split) read from the cache, and computed. */
  featureCache: z.object({ hits: z.number().int().min(0), misses: z.number().int().min(0) }).optional(),
  /** Seconds spent extracting features, and training the linear probes. */
  featureSeconds: z.number().optional(),
  probeSeconds: z.number().optional(),
  /** The backend (and adapter) that computed it. */
  device: computeDeviceSchema.optional(),
});
export const baselineResultSchema = z.object({
  kind: z.literal('baseline'),
  accuracy: z.number().min(0).max(1),
  featureDim: z.number().int().positive(),
  seconds: z.number(),
  /** The backend (and adapter) that computed it. */
  device: computeDeviceSchema.optional(),
});
export const computeResultSchema = z.discriminatedUnion('kind', [pretrainResultSchema, probeResultSchema, baselineResultSchema]);
export type PretrainResult = z.infer<typeof pretrainResultSchema>;
export type ProbeResult = z.infer<typeof probeResultSchema>;
export type BaselineResult = z.infer<typeof baselineResultSchema>;
export type ComputeResult = z.infer<typeof computeResultSchema>;

/** One point of a run's training-loss curve. */
export interface TrainLossPoint {
  /** Optimiser step that ends the window. */
  step: number;
  /** Mean loss over the window's steps. */
  loss: number;
}

/** Hooks a compute task reports through (the child process turns them into IPC messages). */
export interface ComputeHooks {
  /** Progress in [0, 1] with a short message; called at most a few times a second. */
  progress?(fraction: number, detail: { step?: number; loss?: number; message?: string }): void;
  /** A checkpoint was written atomically and can be resumed from. */
  checkpoint?(info: CheckpointInfo): void;
  /**
   * Probing during pretraining measured a checkpoint. A resumed task first reports again every
   * point measured before it stopped (`replayed: true`): store them idempotently (natural key).
   */
  progressProbe?(point: ProgressPoint): void;
  /**
   * The mean training loss over the steps of one window of `lossEvery` optimiser steps, reported
   * at the window's last step (deterministic: same seed, same points). After a resume the first
   * window holds only the steps taken since: store points on (run, step).
   */
  trainLoss?(point: TrainLossPoint): void;
  /** Polled between steps; true stops the task early with a checkpoint (cancel, shutdown). */
  shouldStop?(): boolean;
}
