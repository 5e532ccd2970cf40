import { createHash } from 'node:crypto';
import { coarseLevels } from './noise-search';
import {
  DATASET_SHAPES,
  backboneDefaultLayers,
  backboneFields,
  modelImageSize,
  probeLabelBudgets,
  protocolAtBudget,
  protocolKey,
  resolveModelBackbone,
  type LabelBudget,
  type BackboneSpec,
  type BaselineKind,
  type DiTConfig,
  type DatasetName,
  type Method,
  type ProbeProtocol,
  type PretrainTask,
  type ProgressProbeConfig,
  type SweepSpec,
  type UNetConfig,
} from '@ddae/contracts';

/** Resolved pretraining hyper-parameters of one run: no default left to interpret. */
export interface RunHyper {
  steps: number;
  batchSize: number;
  learningRate: number;
  warmupSteps: number;
  gradClip: number;
  emaDecayCap: number;
  checkpointEvery: number;
  trainSize: number | null;
  /**
   * Probing during pretraining, resolved for this run's model (its layers and noise levels), or
   * absent: off. The worker passes it to the pretraining task as is.
   */
  progressProbe?: ProgressProbeConfig;
  /** Steps per point of the training-loss curve; absent: the default (50). */
  lossEvery?: number;
  /** Side of the model input (the spec's `models[].imageSize`); absent: the data set's padded size (28 -> 32). */
  imageSize?: number;
  /** A model pretrained elsewhere (the spec's `models[].checkpoint`): imported, never trained (0 steps). */
  importFrom?: { path: string; sha256?: string };
  /** FID/KID of the final checkpoint (the spec's `pretrain.fid`); absent: off. */
  fid?: { samples: number; steps: number; seed: number };
  /** The sample grid after pretraining (the spec's `pretrain.samples`): `false` none; absent: the worker's default grid. */
  samples?: false | { n: number; steps: number; seed: number };
}

/**
 * The pretraining task's settings that come from a run's resolved hyper-parameters: one place for
 * the worker (a stored run) and the CLI's inline `pretrain` (a one-run plan) to build them from.
 */
export function pretrainSettings(hyper: RunHyper): Pick<PretrainTask, 'trainSize' | 'imageSize' | 'steps' | 'batchSize' | 'learningRate' | 'warmupSteps' | 'gradClip' | 'emaDecayCap' | 'checkpointEvery' | 'lossEvery'> {
  return {
    ...(hyper.trainSize !== null ? { trainSize: hyper.trainSize } : {}),
    ...(hyper.imageSize !== undefined ? { imageSize: hyper.imageSize } : {}),
    steps: hyper.steps,
    batchSize: hyper.batchSize,
    learningRate: hyper.learningRate,
    warmupSteps: hyper.warmupSteps,
    gradClip: hyper.gradClip,
    emaDecayCap: hyper.emaDecayCap,
    checkpointEvery: hyper.checkpointEvery,
    ...(hyper.lossEvery !== undefined ? { lossEvery: hyper.lossEvery } : {}),
  };
}

export interface PlannedRun {
  key: string;
  modelName: string;
  /** The untrained-network baseline of its model: 0 steps. */
  untrained: boolean;
  method: Method;
  /** The network: a UNet (`unet`) or a DiT (`dit`); exactly one is set. */
  backbone: BackboneSpec['backbone'];
  unet?: UNetConfig;
  dit?: DiTConfig;
  dataset: DatasetName;
  seed: number;
  hyper: RunHyper;
}

export interface PlannedProbeTask {
  runKey: string;
  noiseLevel: number;
  layers: string[];
  protocol: ProbeProtocol;
  protocolKey: string;
  /** The label budgets its probes are trained at on its features, each a result of its own; absent: just all. */
  labels?: LabelBudget[];
}

export interface PlannedBaseline {
  dataset: DatasetName;
  /** Baselines computed once per data set, protocol and label budget (the untrained network is a run instead). */
  kind: Exclude<BaselineKind, 'untrained'>;
  /** The protocol at the baseline's budget (its `labels`; none for all). */
  protocol: ProbeProtocol;
  protocolKey: string;
}

export interface SweepPlan {
  name: string;
  dataset: DatasetName;
  specHash: string;
  runs: PlannedRun[];
  probeTasks: PlannedProbeTask[];
  baselines: PlannedBaseline[];
  /** The label budgets of every cell and baseline (the spec's probe.labels; default [all]). */
  labels: LabelBudget[];
  /** probeCells: (run, noise level, layer) cells, each probed at every budget. */
  counts: { runs: number; probeTasks: number; probeCells: number; baselines: number; pretrainSteps: number };
}

/** The fine-tuning of a sweep's cells: its task protocol (no budget: the task lists it) and key, and its budget. */
export interface FinetunePlan {
  cells: 'best' | { layer: string; noiseLevel: number }[];
  protocol: ProbeProtocol;
  protocolKey: string;
  /** The task's budgets: [n] for a budget of n labels; absent: all. */
  labels?: LabelBudget[];
}

/**
 * The spec's `probe.finetune`, resolved (null: none): the linear probe's pooling, noise seed,
 * sizes and probe seed; fine-tuning's own learning rate, epochs, batch size (default the probe's),
 * augmentation and noise; standardised features (the statistics of the network before fine-tuning).
 */
export function resolveFinetune(spec: SweepSpec): FinetunePlan | null {
  const ft = spec.probe.finetune;
  if (!ft) return null;
  const protocol: ProbeProtocol = {
    pooling: spec.probe.pooling,
    noise: ft.noise,
    noiseSeed: spec.probe.noiseSeed,
    probe: 'finetune',
    epochs: ft.epochs,
    batchSize: ft.batchSize ?? spec.probe.batchSize,
    learningRate: ft.learningRate,
    standardize: true,
    trainSize: spec.probe.trainSize,
    testSize: spec.probe.testSize ?? DATASET_SHAPES[spec.dataset].test,
    probeSeed: 0,
    augment: ft.augment,
  };
  return { cells: ft.cells, protocol, protocolKey: protocolKey(protocol), ...(ft.labels === 'all' ? {} : { labels: [ft.labels] }) };
}

/** EMA caps of the reference code. */
const EMA_CAP: Record<Method, number> = { ddpm: 0.9999, edm: 0.9993 };

/** `<method>-<preset>` (ddpm-small, edm-dit-tiny), else `<method>-b<base channels>` (UNet) or `<method>-dit-d<depth>w<width>p<patch>`. */
export function defaultModelName(method: Method, model: Pick<SweepSpec['models'][number], 'backbone' | 'unet' | 'dit'>): string {
  if (model.backbone === 'dit') {
    const dit = model.dit;
    if (typeof dit === 'string') return `${method}-${dit}`;
    if (dit && 'preset' in dit) return `${method}-${dit.preset}`;
    return dit ? `${method}-dit-d${dit.depth}w${dit.width}p${dit.patch}` : `${method}-dit`;
  }
  const unet = model.unet;
  return typeof unet === 'string' ? `${method}-${unet}` : `${method}-b${unet?.baseChannels}`;
}

/** sha256 of the spec serialised with sorted keys: equal specs hash equally. */
export function specHash(spec: SweepSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Thrown for a spec that parses but cannot be planned; `path` names the field. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message);
  }
}

/**
 * Expands a validated spec into the rows a sweep is made of: one run per (model, seed), one probe
 * task per (run, noise level) covering every requested layer, and one baseline per kind.
 * Pure and deterministic: the same spec always gives the same plan.
 */
export function planSweep(spec: SweepSpec): SweepPlan {
  const shape = DATASET_SHAPES[spec.dataset];
  const protocol: ProbeProtocol = {
    pooling: spec.probe.pooling,
    noise: spec.probe.noise,
    noiseSeed: spec.probe.noiseSeed,
    probe: spec.probe.protocol,
    epochs: spec.probe.epochs,
    batchSize: spec.probe.batchSize,
    learningRate: spec.probe.learningRate,
    standardize: true,
    trainSize: spec.probe.trainSize,
    testSize: spec.probe.testSize ?? shape.test,
    probeSeed: 0,
  };
  const key = protocolKey(protocol);
  const labels = probeLabelBudgets(spec.probe);
  // Only when the spec names budgets: the tasks of earlier specs are stored as they were.
  const taskLabels = spec.probe.labels ? { labels } : {};

  const finetune = resolveFinetune(spec);

  const names = new Set<string>();
  const runs: PlannedRun[] = [];
  const probeTasks: PlannedProbeTask[] = [];
  spec.models.forEach((model, i) => {
    const modelName = model.name ?? defaultModelName(model.method, model);
    if (names.has(modelName)) {
      throw new PlanError(['models', i, 'name'], `duplicate model name "${modelName}": give each model a distinct name`);
    }
    names.add(modelName);
    const net = resolveModelBackbone(model);
    const network = { backbone: net.backbone, ...backboneFields(net) };
    const imageSize = modelImageSize(spec.dataset, model);
    const steps = spec.pretrain.steps;
    const hyper: RunHyper = {
      steps,
      batchSize: spec.pretrain.batchSize,
      learningRate: spec.pretrain.learningRate,
      warmupSteps: spec.pretrain.warmupSteps ?? Math.min(1000, Math.floor(steps / 10)),
      gradClip: spec.pretrain.gradClip,
      emaDecayCap: spec.pretrain.emaDecayCap ?? EMA_CAP[model.method],
      checkpointEvery: Math.min(spec.pretrain.checkpointEvery, steps),
      trainSize: spec.pretrain.trainSize ?? null,
      ...(spec.pretrain.lossEvery !== undefined ? { lossEvery: spec.pretrain.lossEvery } : {}),
      ...(spec.pretrain.fid ? { fid: { ...spec.pretrain.fid } } : {}),
      ...(spec.pretrain.samples !== undefined ? { samples: spec.pretrain.samples === false ? false : { ...spec.pretrain.samples } } : {}),
      // Only when the spec names it: the rows of earlier sweeps (no imageSize) mean the padded size.
      ...(model.imageSize !== undefined ? { imageSize: model.imageSize } : {}),
    };
    const progressProbe = resolveProgressProbe(spec, model.method, net, imageSize, shape.channels);
    if (progressProbe) hyper.progressProbe = progressProbe;
    const layers =
      spec.probe.layers === 'all'
        ? backboneDefaultLayers(net, imageSize, shape.channels)
        : [...spec.probe.layers];
    const grid = model.method === 'ddpm' ? (spec.probe.timesteps ?? []) : (spec.probe.sigmas ?? []);
    // An adaptive search starts with its coarse levels; the orchestrator adds the rest as results come.
    const search = spec.probe.noiseSearch;
    const noiseLevels = search?.search === 'adaptive' ? coarseLevels(grid, search.coarse) : grid;
    const addRun = (run: PlannedRun) => {
      runs.push(run);
      for (const noiseLevel of [...new Set(noiseLevels)]) {
        probeTasks.push({ runKey: run.key, noiseLevel, layers, protocol, protocolKey: key, ...taskLabels });
      }
      // Cells named in the spec are fine-tuned as soon as the run is done (`best` waits for its linear results: the orchestrator).
      if (finetune && Array.isArray(finetune.cells) && !run.untrained) {
        const byLevel = new Map<number, string[]>();
        for (const c of finetune.cells) byLevel.set(c.noiseLevel, [...new Set([...(byLevel.get(c.noiseLevel) ?? []), c.layer])]);
        for (const [noiseLevel, cellLayers] of byLevel) {
          probeTasks.push({ runKey: run.key, noiseLevel, layers: cellLayers, protocol: finetune.protocol, protocolKey: finetune.protocolKey, ...(finetune.labels ? { labels: finetune.labels } : {}) });
        }
      }
    };
    if (model.checkpoint) {
      // Pretrained elsewhere: one run (seeds would give the same weights), imported as its step-0
      // checkpoint and probed like any other; pretraining's settings do not apply to it.
      const seed = spec.pretrain.seeds[0];
      const imported: RunHyper = {
        steps: 0,
        batchSize: hyper.batchSize,
        learningRate: hyper.learningRate,
        warmupSteps: 0,
        gradClip: hyper.gradClip,
        emaDecayCap: hyper.emaDecayCap,
        checkpointEvery: 1,
        trainSize: null,
        ...(model.imageSize !== undefined ? { imageSize: model.imageSize } : {}),
        importFrom: { path: model.checkpoint.path, ...(model.checkpoint.sha256 !== undefined ? { sha256: model.checkpoint.sha256 } : {}) },
      };
      addRun({ key: `${modelName}-s${seed}`, modelName, untrained: false, method: model.method, ...network, dataset: spec.dataset, seed, hyper: imported });
    } else {
      for (const seed of spec.pretrain.seeds) {
        addRun({ key: `${modelName}-s${seed}`, modelName, untrained: false, method: model.method, ...network, dataset: spec.dataset, seed, hyper });
      }
    }
    if (spec.baselines.includes('untrained')) {
      const seed = spec.pretrain.seeds[0];
      // 0 steps: nothing to probe during pretraining.
      const { progressProbe: _none, ...trained } = hyper;
      const untrained: RunHyper = { ...trained, steps: 0, warmupSteps: 0, checkpointEvery: 1 };
      addRun({ key: `${modelName}-untrained-s${seed}`, modelName, untrained: true, method: model.method, ...network, dataset: spec.dataset, seed, hyper: untrained });
    }
  });

  const baselines: PlannedBaseline[] = [...new Set(spec.baselines)]
    .flatMap((kind) => (kind === 'untrained' ? [] : [kind]))
    .flatMap((kind) =>
      labels.map((budget) => {
        const at = protocolAtBudget(protocol, budget);
        return { dataset: spec.dataset, kind, protocol: at, protocolKey: protocolKey(at) };
      }),
    );

  return {
    name: spec.name,
    dataset: spec.dataset,
    specHash: specHash(spec),
    runs,
    probeTasks,
    baselines,
    labels,
    counts: {
      runs: runs.length,
      probeTasks: probeTasks.length,
      probeCells: probeTasks.reduce((n, t) => n + t.layers.length, 0),
      baselines: baselines.length,
      pretrainSteps: runs.reduce((n, r) => n + r.hyper.steps, 0),
    },
  };
}

/**
 * The spec's `pretrain.progressProbe` for a run of `method` on `net`: its layers (`all`: every
 * decoder block of a UNet, every block of a DiT), its noise levels (default: the smallest level of the probe grid), and the small
 * fixed protocol (fast, fixed noise, the probe's pooling and optimiser, its own sizes and epochs).
 * Null when the spec does not ask for it.
 */
export function resolveProgressProbe(spec: SweepSpec, method: Method, net: BackboneSpec, imageSize: number, imageChannels: number): ProgressProbeConfig | null {
  const pp = spec.pretrain.progressProbe;
  if (!pp) return null;
  const grid = method === 'ddpm' ? spec.probe.timesteps : spec.probe.sigmas;
  const own = method === 'ddpm' ? pp.timesteps : pp.sigmas;
  const noiseLevels = own ? [...new Set(own)] : grid?.length ? [Math.min(...grid)] : [];
  if (!noiseLevels.length) throw new PlanError(['pretrain', 'progressProbe', method === 'ddpm' ? 'timesteps' : 'sigmas'], `give the ${method === 'ddpm' ? 'timesteps' : 'sigmas'} to probe during pretraining`);
  return {
    every: pp.every,
    noiseLevels,
    layers: pp.layers === 'all' ? backboneDefaultLayers(net, imageSize, imageChannels) : [...pp.layers],
    protocol: {
      pooling: spec.probe.pooling,
      noise: 'fixed',
      noiseSeed: spec.probe.noiseSeed,
      probe: 'fast',
      epochs: pp.epochs,
      batchSize: spec.probe.batchSize,
      learningRate: spec.probe.learningRate,
      standardize: true,
      trainSize: pp.trainSize,
      testSize: pp.testSize,
      probeSeed: 0,
    },
    ...(pp.earlyStop ? { earlyStop: { patience: pp.earlyStop.patience, minDelta: pp.earlyStop.minDelta } } : {}),
  };
}
