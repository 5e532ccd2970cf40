import { z } from 'zod';
import { BACKENDS } from '../jobs.schema';
import { DATASET_NAMES } from '../sweep-spec.schema';
import { LEADERBOARD_PER, SWEEP_STATUSES } from './api-query.schema';

/**
 * The responses of the REST API, as they are on the wire (JSON: instants are ISO 8601 strings).
 * The API parses every body it sends with these (but two that Postgres builds as JSON text, a
 * sweep's status and its heatmap, which their integration tests parse with these instead), and
 * clients parse every body they read with them.
 * Objects strip what they do not name, so a client keeps working when the API adds a field.
 */
const instant = z.iso.datetime({ offset: true });
const status = z.enum(SWEEP_STATUSES);
const statusCounts = z.object({ QUEUED: z.number().int(), RUNNING: z.number().int(), SUCCEEDED: z.number().int(), FAILED: z.number().int(), CANCELLED: z.number().int() });
/** A sweep spec with every default applied (its schema: the request body of `POST /api/sweeps`). */
const specJson = z.record(z.string(), z.unknown()).describe('the sweep spec with every default applied');
/** Provenance of an imported model (null: pretrained by its sweep): the safetensors file and its sha256 (null until the import verified it). */
const modelSource = z.object({ path: z.string(), sha256: z.string().nullable() }).nullable();
const backend = z.string().describe(`the compute backend, one of ${BACKENDS.join(', ')}`);

// ---- health -------------------------------------------------------------------------------------
/**
 * How long `GET /health` waits for each dependency (Postgres, Redis) before calling it down. Probes
 * that call it (infra/k8s) must give it longer than this, or they time out before it can answer 503.
 */
export const HEALTH_DEPENDENCY_TIMEOUT_MS = 2_000;
export const healthSchema = z.object({ status: z.literal('ok'), postgres: z.literal('up'), redis: z.literal('up') });

/** A label budget as the API writes it: labelled training images in total (class-balanced), or `all`. */
export const labelBudgetSchema = z.union([z.number().int().positive(), z.literal('all')]);
/** A stored budget (null: all) as the API writes it. */
export const labelBudgetOf = (labels: number | null | undefined): number | 'all' => labels ?? 'all';

// ---- sweeps -------------------------------------------------------------------------------------
export const planCountsSchema = z.object({
  runs: z.number().int(),
  probeTasks: z.number().int(),
  probeCells: z.number().int(),
  baselines: z.number().int(),
  pretrainSteps: z.number().int(),
});

export const sweepPlanSchema = z.object({
  runs: z.array(
    z.object({
      key: z.string(),
      method: z.string(),
      model: z.string(),
      untrained: z.boolean(),
      seed: z.number().int(),
      steps: z.number().int(),
      backbone: z.enum(['unet', 'dit']),
      /** The UNet's configuration (backbone unet) or the DiT's (backbone dit). */
      unet: z.record(z.string(), z.unknown()).optional(),
      dit: z.record(z.string(), z.unknown()).optional(),
      progressProbe: z.record(z.string(), z.unknown()).nullable(),
      /** A model pretrained elsewhere: the file it is imported from (never trained). */
      checkpoint: z.object({ path: z.string(), sha256: z.string().optional() }).optional(),
    }),
  ),
  /** `labels`: the label budgets each task's cells are probed at (counts in total, class-balanced, and/or all). */
  probeTasks: z.array(z.object({ run: z.string(), noiseLevel: z.number(), layers: z.array(z.string()), labels: z.array(labelBudgetSchema) })),
  /** One per kind and label budget. */
  baselines: z.array(z.object({ dataset: z.string(), kind: z.string(), labels: labelBudgetSchema })),
  /** Only on a plan bigger than a dry run lists: how many runs and probe tasks are shown (the first, in plan order) of how many planned. */
  sampled: z
    .object({ runs: z.object({ shown: z.number().int(), of: z.number().int() }), probeTasks: z.object({ shown: z.number().int(), of: z.number().int() }) })
    .optional(),
});

/** `POST /api/sweeps?dryRun=true` (200): the plan, nothing stored. */
export const sweepDryRunSchema = z.object({ dryRun: z.literal(true), counts: planCountsSchema, plan: sweepPlanSchema, spec: specJson });

/**
 * `POST /api/sweeps`: 201 created (queued: true), 202 stored but not queued (Redis unreachable;
 * the reconciler queues it), 200 a replay of an earlier submission with the same Idempotency-Key.
 */
export const sweepSubmittedSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  status,
  created: z.boolean(),
  counts: planCountsSchema,
  queued: z.boolean().optional(),
  note: z.string().optional(),
});

export const sweepSummarySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  dataset: z.string(),
  specHash: z.string(),
  idempotencyKey: z.string().nullable(),
  status,
  priority: z.number().int(),
  maxConcurrency: z.number().int().nullable(),
  pausedAt: instant.nullable(),
  createdAt: instant,
  updatedAt: instant,
  finishedAt: instant.nullable(),
});
/** `GET /api/sweeps`. */
export const sweepListSchema = z.object({ sweeps: z.array(sweepSummarySchema) });

export const sweepProgressSchema = z.object({
  runs: statusCounts.extend({ stepsDone: z.number().int(), steps: z.number().int() }),
  probeTasks: statusCounts,
  baselines: statusCounts,
});

export const sweepRunSchema = z.object({
  id: z.uuid(),
  key: z.string(),
  method: z.string(),
  model: z.string(),
  untrained: z.boolean(),
  seed: z.number().int(),
  status,
  steps: z.number().int(),
  stepsDone: z.number().int(),
  lastLoss: z.number().nullable(),
  parameters: z.number().int().nullable(),
  attempts: z.number().int(),
  error: z.string().nullable(),
  workerId: z.string().nullable(),
  backend: z.string().nullable(),
  stoppedEarlyAt: z.number().int().nullable(),
  startedAt: instant.nullable(),
  finishedAt: instant.nullable(),
  /** A model pretrained elsewhere: the file it was imported from and its sha256; null: trained by the sweep. */
  source: modelSource,
});

export const sweepProbeTaskSchema = z.object({
  id: z.uuid(),
  run: z.string(),
  noiseLevel: z.number(),
  layers: z.array(z.string()),
  status,
  attempts: z.number().int(),
  error: z.string().nullable(),
  workerId: z.string().nullable(),
  finishedAt: instant.nullable(),
});

export const sweepBaselineSchema = z.object({
  id: z.uuid(),
  kind: z.string(),
  dataset: z.string(),
  protocolKey: z.string(),
  labels: labelBudgetSchema,
  status,
  accuracy: z.number().nullable(),
  attempts: z.number().int(),
  error: z.string().nullable(),
  workerId: z.string().nullable(),
  finishedAt: instant.nullable(),
});

/** `GET /api/sweeps/:id`: status, progress, its runs, probe tasks and baselines (with the reason of each failure). */
export const sweepDetailSchema = sweepSummarySchema.extend({
  spec: specJson,
  paused: z.boolean(),
  progress: sweepProgressSchema,
  runs: z.array(sweepRunSchema),
  probeTasks: z.array(sweepProbeTaskSchema),
  baselines: z.array(sweepBaselineSchema),
});

/** One (model, layer, noise level) cell of a sweep over its seeds; an untrained-network control's grid is named `<model> (untrained)`. */
export const heatmapCellSchema = z.object({
  modelName: z.string(),
  untrained: z.boolean(),
  method: z.string(),
  layer: z.string(),
  noiseLevel: z.number(),
  mean: z.number(),
  std: z.number().nullable(),
  min: z.number(),
  max: z.number(),
  n: z.number().int(),
  /** The label budget the cell's probes were trained at. */
  labels: labelBudgetSchema,
});
/** `GET /api/sweeps/:id/heatmap?labels=`: every cell at one label budget (`labels`), and the budgets the sweep has. */
export const heatmapSchema = z.object({ sweepId: z.uuid(), labels: labelBudgetSchema, budgets: z.array(labelBudgetSchema), cells: z.array(heatmapCellSchema) });

/** One (sweep, model config, layer, noise level, protocol) cell over its seeds. */
export const configRowSchema = z.object({
  mean: z.number(),
  std: z.number().nullable(),
  min: z.number(),
  max: z.number(),
  n: z.number().int(),
  seeds: z.array(z.number().int()),
  layer: z.string(),
  noiseLevel: z.number(),
  method: z.string(),
  dataset: z.string(),
  modelName: z.string(),
  parameters: z.number().int().nullable(),
  sweepId: z.uuid(),
  sweepName: z.string(),
  protocolKey: z.string(),
  noiseProtocol: z.string(),
  probeProtocol: z.string(),
  pooling: z.string(),
  /** Set when the model was pretrained elsewhere and imported: the source file and its sha256. */
  source: modelSource,
  /** The label budget: part of the protocol the mean is under. */
  labels: labelBudgetSchema,
  /**
   * "Probe to choose, fine-tune to deploy": on a linear cell, the same (model, layer, noise level)
   * fine-tuned end to end (the spec's probe.finetune), mean over its seeds at its own budget; null
   * when the cell was not fine-tuned, and on a fine-tuned row itself.
   */
  finetuned: z
    .object({ mean: z.number(), std: z.number().nullable(), n: z.number().int(), protocolKey: z.string(), labels: labelBudgetSchema })
    .nullable(),
});

/** `GET /api/sweeps/:id/verdict`: the trained models' best cell beside the pixel baseline and the untrained network, same protocol. */
export const verdictSchema = z.object({
  sweepId: z.uuid(),
  /** The label budget of every number here. */
  labels: labelBudgetSchema,
  best: configRowSchema.nullable(),
  untrained: configRowSchema.nullable(),
  pixels: z.object({ accuracy: z.number(), featureDim: z.number().int().nullable(), protocolKey: z.string() }).nullable(),
  margins: z.object({ pixels: z.number().nullable(), untrained: z.number().nullable() }),
});

/**
 * `GET /api/sweeps/:id/labels`: accuracy against the number of labels. Per model (and untrained
 * control) the cell best at the largest budget, its mean over seeds at every budget; the raw-pixel
 * baseline at every budget.
 */
export const labelCurvesSchema = z.object({
  sweepId: z.uuid(),
  budgets: z.array(labelBudgetSchema),
  models: z.array(
    z.object({
      modelName: z.string(),
      untrained: z.boolean(),
      method: z.string(),
      layer: z.string(),
      noiseLevel: z.number(),
      /** The protocol of the cell's results, less the budget. */
      protocolKey: z.string(),
      points: z.array(z.object({ labels: labelBudgetSchema, mean: z.number(), std: z.number().nullable(), n: z.number().int() })),
    }),
  ),
  pixels: z.array(z.object({ labels: labelBudgetSchema, accuracy: z.number() })),
});

/**
 * The fields that head each run's curve (loss, progress): which run, and how far it trained. A
 * plain shape spread into each curve's object, not a schema of its own, so the OpenAPI document
 * inlines it as before.
 */
const runCurveHead = { runId: z.uuid(), run: z.string(), model: z.string(), method: z.string(), seed: z.number().int(), status, steps: z.number().int(), stepsDone: z.number().int() };

/** `GET /api/sweeps/:id/loss`: per trained run, the mean loss of each window of `lossEvery` steps. */
export const lossCurvesSchema = z.object({
  sweepId: z.uuid(),
  lossEvery: z.number().int(),
  runs: z.array(
    z.object({
      ...runCurveHead,
      points: z.array(z.object({ step: z.number().int(), loss: z.number() })),
    }),
  ),
});

/** `GET /api/sweeps/:id/samples`: the sample grid of each trained run's final checkpoint (the PNG at `url`). */
export const sampleListSchema = z.object({
  sweepId: z.uuid(),
  samples: z.array(
    z.object({
      runId: z.uuid(),
      run: z.string(),
      model: z.string(),
      method: z.string(),
      step: z.number().int(),
      n: z.number().int(),
      sampler: z.string(),
      samplerSteps: z.number().int(),
      samplerSeed: z.number().int(),
      width: z.number().int(),
      height: z.number().int(),
      seconds: z.number(),
      backend,
      /** The device that computed it: the GPU adapter on webgpu, else the worker's device label (the run's); null on rows from before it was recorded. */
      device: z.string().nullable(),
      path: z.string(),
      createdAt: instant,
      url: z.string(),
    }),
  ),
});

/**
 * Generation quality of a run's checkpoint, apart from its features: FID and KID of its samples
 * against the test split in a named classifier's feature space (lower is better for both).
 */
export const generationQualityViewSchema = z.object({
  /** The feature extractor, e.g. `ddae-fmnist-cnn-v1 penultimate, 128-d`, and its weights' sha256. */
  extractor: z.string(),
  extractorSha256: z.string(),
  /** Step of the checkpoint sampled. */
  step: z.number().int(),
  fid: z.number(),
  /** KID: the unbiased MMD^2 estimate (cubic polynomial kernel), mean and std over subsets. */
  kidMean: z.number(),
  kidStd: z.number(),
  kidSubsets: z.number().int(),
  kidSubsetSize: z.number().int(),
  /** Images sampled, and the reference they were compared with (e.g. `fashion-mnist test`, 10000). */
  samples: z.number().int(),
  reference: z.string(),
  referenceCount: z.number().int(),
  sampler: z.string(),
  samplerSteps: z.number().int(),
  seed: z.number().int(),
  seconds: z.number(),
  backend,
  /** The device that computed it: the GPU adapter on webgpu, else the worker's device label (the run's); null on rows from before it was recorded. */
  device: z.string().nullable(),
});

/** `GET /api/sweeps/:id/generation`: FID and KID of each run's evaluated checkpoints (the untrained control's too). */
export const generationListSchema = z.object({
  sweepId: z.uuid(),
  runs: z.array(
    generationQualityViewSchema.extend({
      runId: z.uuid(),
      run: z.string(),
      model: z.string(),
      method: z.string(),
      untrained: z.boolean(),
      workerId: z.string(),
      createdAt: instant,
    }),
  ),
});

/** `GET /api/sweeps/:id/progress`: accuracy against step per run (probing during pretraining). */
export const progressSchema = z.object({
  sweepId: z.uuid(),
  runs: z.array(
    z.object({
      ...runCurveHead,
      every: z.number().int().nullable(),
      stoppedEarlyAt: z.number().int().nullable(),
      points: z.array(
        z.object({
          step: z.number().int(),
          accuracy: z.number(),
          /** The device that computed the point: the GPU adapter on webgpu, else the worker's device label (the run's); null on points from before it was recorded. */
          device: z.string().nullable(),
          cells: z.array(z.object({ layer: z.string(), noiseLevel: z.number(), accuracy: z.number(), featureDim: z.number().int() })),
        }),
      ),
    }),
  ),
});

/** `POST /api/sweeps/:id/pause` and `/resume`. */
export const sweepPausedSchema = z.object({ id: z.uuid(), status, paused: z.boolean() });
/** `POST /api/sweeps/:id/retry-failed`: how many of each were sent again. */
export const sweepRetriedSchema = z.object({
  id: z.uuid(),
  status,
  retried: z.object({ runs: z.number().int(), probeTasks: z.number().int(), baselines: z.number().int() }),
});
/** `POST /api/sweeps/:id/cancel`. */
export const sweepCancelledSchema = z.object({ id: z.uuid(), status });

// ---- leaderboard --------------------------------------------------------------------------------
/** One probe result (per=cell), or a run's best one (per=run). */
export const leaderboardCellRowSchema = z.object({
  rank: z.number().int(),
  resultId: z.uuid(),
  accuracy: z.number(),
  layer: z.string(),
  noiseLevel: z.number(),
  method: z.string(),
  dataset: z.string(),
  modelName: z.string(),
  runKey: z.string(),
  seed: z.number().int(),
  parameters: z.number().int().nullable(),
  step: z.number().int(),
  sweepId: z.uuid(),
  sweepName: z.string(),
  runId: z.uuid(),
  checkpointId: z.uuid(),
  protocolKey: z.string(),
  noiseProtocol: z.string(),
  probeProtocol: z.string(),
  pooling: z.string(),
  /** The label budget the probe was trained at. */
  labels: labelBudgetSchema,
  backend,
  /** The device that computed it: the GPU adapter on webgpu, else the worker's device label; null on rows from before it was recorded. */
  device: z.string().nullable(),
  /** Set when the model was pretrained elsewhere and imported (`models[].checkpoint`): the source file and its sha256. */
  source: modelSource,
  createdAt: instant,
  /**
   * Generation quality of the row's run (its newest evaluated checkpoint), beside the accuracy and
   * never mixed into it: present only when the sweep measured it (`pretrain.fid`).
   */
  generation: z.object({ fid: z.number(), kidMean: z.number(), kidStd: z.number(), samples: z.number().int(), step: z.number().int(), extractor: z.string() }).optional(),
});
/** per=config: mean and spread over seeds. */
export const leaderboardConfigRowSchema = configRowSchema.extend({ rank: z.number().int() });

export const leaderboardBaselineSchema = z.union([
  z.object({
    dataset: z.string(),
    kind: z.literal('untrained'),
    method: z.string(),
    model: z.string(),
    layer: z.string(),
    noiseLevel: z.number(),
    accuracy: z.number(),
    featureDim: z.number().int(),
    protocolKey: z.string(),
    labels: labelBudgetSchema,
    backend,
    device: z.string().nullable(),
  }),
  z.object({
    dataset: z.string(),
    kind: z.string(),
    accuracy: z.number().nullable(),
    featureDim: z.number().int().nullable(),
    protocolKey: z.string(),
    labels: labelBudgetSchema,
    backend: z.string().nullable(),
    device: z.string().nullable(),
  }),
]);

/** `GET /api/leaderboard`: one page of the ranking, with the baselines beside it (never in it). */
export const leaderboardSchema = z.object({
  filter: z.object({
    dataset: z.string().optional(),
    method: z.string().optional(),
    sweep: z.uuid().optional(),
    per: z.enum(LEADERBOARD_PER),
    limit: z.number().int(),
    cursor: z.string().optional(),
    /** The label budget of every row and baseline. */
    labels: labelBudgetSchema,
  }),
  rows: z.array(z.union([leaderboardConfigRowSchema, leaderboardCellRowSchema])),
  nextCursor: z.string().nullable(),
  baselines: z.array(leaderboardBaselineSchema),
});

/** A leaderboard row of per=cell or per=run (a probe result), not of per=config (a mean over seeds). */
export const isLeaderboardCellRow = (row: LeaderboardCellRow | LeaderboardConfigRowView): row is LeaderboardCellRow => !('mean' in row);
/** A leaderboard row of per=config: a mean over seeds. */
export const isLeaderboardConfigRow = (row: LeaderboardCellRow | LeaderboardConfigRowView): row is LeaderboardConfigRowView => 'mean' in row;

// ---- workers ------------------------------------------------------------------------------------
export const workerSchema = z.object({
  id: z.string(),
  hostname: z.string(),
  pid: z.number().int(),
  backend,
  device: z.string(),
  state: z.string().describe('starting | idle | busy | stopping | unhealthy'),
  unhealthyReason: z.string().nullable().describe('why an unhealthy worker takes no jobs: the environment fault it met during a job (its artifact directory, a data set, its compute backend); null when healthy'),
  datasets: z
    .array(z.string())
    .describe(`the data sets (of ${DATASET_NAMES.join(', ')}) the worker could read at its last heartbeat: a job needing one a worker lacks is handed to a live worker that has it, and fails only when none has`),
  gpuMemory: z
    .object({ allocatedBytes: z.number().int().nullable(), usedBytes: z.number().int().nullable() })
    .nullable()
    .describe("on a GPU: the bytes tfjs's buffer pool held (allocated, and in use by tensors) at the end of the worker's last job, beside its adapter (`device`); a figure the backend did not report is null; null before its first GPU job"),
  currentJobId: z.string().nullable(),
  startedAt: instant,
  lastHeartbeatAt: instant,
});
/** `GET /api/workers`: workers that sent a heartbeat recently. */
export const workerListSchema = z.object({ workers: z.array(workerSchema) });

export type Health = z.infer<typeof healthSchema>;
export type PlanCounts = z.infer<typeof planCountsSchema>;
export type SweepDryRun = z.infer<typeof sweepDryRunSchema>;
export type SweepSubmitted = z.infer<typeof sweepSubmittedSchema>;
export type SweepSummary = z.infer<typeof sweepSummarySchema>;
export type SweepList = z.infer<typeof sweepListSchema>;
export type SweepDetail = z.infer<typeof sweepDetailSchema>;
export type SweepProgressView = z.infer<typeof sweepProgressSchema>;
export type HeatmapCellView = z.infer<typeof heatmapCellSchema>;
export type HeatmapView = z.infer<typeof heatmapSchema>;
export type VerdictView = z.infer<typeof verdictSchema>;
export type LabelCurvesView = z.infer<typeof labelCurvesSchema>;
export type LossCurves = z.infer<typeof lossCurvesSchema>;
export type SampleList = z.infer<typeof sampleListSchema>;
export type GenerationList = z.infer<typeof generationListSchema>;
export type GenerationQualityView = z.infer<typeof generationQualityViewSchema>;
export type ProgressView = z.infer<typeof progressSchema>;
export type SweepPaused = z.infer<typeof sweepPausedSchema>;
export type SweepRetried = z.infer<typeof sweepRetriedSchema>;
export type SweepCancelled = z.infer<typeof sweepCancelledSchema>;
export type LeaderboardView = z.infer<typeof leaderboardSchema>;
export type LeaderboardCellRow = z.infer<typeof leaderboardCellRowSchema>;
export type LeaderboardConfigRowView = z.infer<typeof leaderboardConfigRowSchema>;
export type WorkerView = z.infer<typeof workerSchema>;
export type WorkerList = z.infer<typeof workerListSchema>;
