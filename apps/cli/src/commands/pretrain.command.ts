import { rawEnv } from '@ddae/config';
import path from 'node:path';
import {
  BACKENDS,
  DATASET_NAMES,
  DIT_PRESETS,
  DATASET_SHAPES,
  METHODS,
  POOLINGS,
  SPEC_LIMITS,
  UNET_PRESETS,
  backboneDefaultLayers,
  backboneTappableLayers,
  ditConfigProblem,
  ditConfigSchema,
  isDiTPreset,
  paddedImageSize,
  pretrainTaskSchema,
  resolveDiT,
  resolveUNet,
  unetConfigSchema,
  parseGpuSelector,
  type BackboneSpec,
  type BackendName,
  type DiTConfig,
  type GpuSelector,
  type PretrainTask,
  type DatasetName,
  type Method,
  type Pooling,
  type SweepSpecInput,
  type UNetConfig,
} from '@ddae/contracts';

type ProgressProbeSpecInput = NonNullable<NonNullable<SweepSpecInput['pretrain']>['progressProbe']>;
import type { SelectedBackend } from '@ddae/compute';
import { CliError } from '../api-client';

/**
 * Inline commands (`pretrain`, `sample`): they run the compute library in this process, without the
 * API, Redis or Postgres. TensorFlow.js is only loaded inside them (lazy imports), so the API
 * commands stay fast.
 */

/** The raw option values of `pretrain` (strings as typed). */
export interface PretrainArgs {
  dataset?: string;
  method?: string;
  /** `unet` (default) or `dit`. */
  backbone?: string;
  /** A model preset of either backbone (tiny, small, base, reference; dit-tiny, dit-small). */
  preset?: string;
  unet?: string;
  /** A DiT as JSON ({"depth","width","heads","patch"}). */
  dit?: string;
  steps?: string;
  batch?: string;
  lr?: string;
  warmup?: string;
  'ema-cap'?: string;
  seed?: string;
  'train-size'?: string;
  'image-size'?: string;
  'checkpoint-every'?: string;
  'data-dir'?: string;
  out?: string;
  /** Probing during pretraining (off without --probe-every). */
  'probe-every'?: string;
  'probe-noise'?: string;
  'probe-layers'?: string;
  'probe-train-size'?: string;
  'probe-test-size'?: string;
  'probe-epochs'?: string;
  'probe-pooling'?: string;
  patience?: string;
  'min-delta'?: string;
}

const EXAMPLE = 'npm run ddae -- pretrain --dataset fashion-mnist --method ddpm --unet small --steps 2000 --out tmp/ddpm-small';

/** Parses a numeric option; throws a CliError naming the option and an example on anything else. */
export function numberOption(name: string, raw: string | undefined, kind: { int?: boolean; min?: number; max?: number; positive?: boolean; example: string }): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw.trim());
  const ok = raw.trim() !== '' && Number.isFinite(v) && (!kind.int || Number.isInteger(v)) && (!kind.positive || v > 0) && (kind.min === undefined || v >= kind.min) && (kind.max === undefined || v <= kind.max);
  if (!ok) {
    const range = kind.min !== undefined && kind.max !== undefined ? ` in [${kind.min}, ${kind.max}]` : `${kind.min !== undefined ? ` >= ${kind.min}` : ''}${kind.max !== undefined ? ` <= ${kind.max}` : ''}`;
    const what = `${kind.positive ? 'a positive ' : kind.int ? 'an ' : 'a '}${kind.int ? 'integer' : 'number'}${range}`;
    throw new CliError(`--${name} must be ${what}, got "${raw}" (e.g. --${name} ${kind.example})`);
  }
  return v;
}

/** A preset name or a JSON UNet config, validated with the spec's schema (defaults applied). */
export function parseUNet(raw: string | undefined): UNetConfig {
  const presets = Object.keys(UNET_PRESETS).join(', ');
  if (raw === undefined) throw new CliError(`pretrain needs --preset (UNet ${presets}; DiT ${Object.keys(DIT_PRESETS).join(', ')}) or --unet: a preset or a JSON config, e.g. --unet '{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1,"groups":8}'`);
  const text = raw.trim();
  if (!text.startsWith('{')) {
    if (!(text in UNET_PRESETS)) throw new CliError(`--unet "${raw}" is neither a preset (${presets}) nor a JSON config ('{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1}')`);
    return resolveUNet(text as keyof typeof UNET_PRESETS);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(`--unet is not valid JSON (${(error as Error).message}); quote it for the shell: --unet '{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1}'`);
  }
  const r = unetConfigSchema.safeParse(json);
  if (!r.success) throw new CliError(`--unet: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const DIT_EXAMPLE = `'{"depth":4,"width":64,"heads":4,"patch":4}'`;

/** A JSON DiT config, validated with the spec's schema (defaults applied). */
export function parseDiT(raw: string): DiTConfig {
  let json: unknown;
  try {
    json = JSON.parse(raw.trim());
  } catch (error) {
    throw new CliError(`--dit is not valid JSON (${(error as Error).message}); quote it for the shell: --dit ${DIT_EXAMPLE}`);
  }
  const r = ditConfigSchema.safeParse(json);
  if (!r.success) throw new CliError(`--dit: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')} (e.g. --dit ${DIT_EXAMPLE})`);
  return r.data;
}

/**
 * The network of `pretrain` from --backbone, --preset, --unet and --dit: a UNet (the default) from
 * --unet or a UNet preset, or a DiT from --dit or a DiT preset (which implies --backbone dit).
 */
export function parseBackboneArgs(a: Pick<PretrainArgs, 'backbone' | 'preset' | 'unet' | 'dit'>): { unet: UNetConfig } | { dit: DiTConfig } {
  const backbone = a.backbone?.trim();
  if (backbone !== undefined && backbone !== 'unet' && backbone !== 'dit') throw new CliError(`--backbone must be unet or dit, got "${a.backbone}"`);
  const preset = a.preset?.trim();
  const unetPresets = Object.keys(UNET_PRESETS).join(', ');
  const ditPresets = Object.keys(DIT_PRESETS).join(', ');
  if (preset !== undefined && a.unet !== undefined) throw new CliError('pass either --preset or --unet, not both');
  if (preset !== undefined && a.dit !== undefined) throw new CliError('pass either --preset or --dit, not both');
  if (a.unet !== undefined && a.dit !== undefined) throw new CliError('pass either --unet or --dit, not both');
  if (preset !== undefined && !(preset in UNET_PRESETS) && !isDiTPreset(preset)) throw new CliError(`--preset "${preset}" is not a model preset: UNet ${unetPresets}; DiT ${ditPresets}`);
  const dit = (preset !== undefined && isDiTPreset(preset)) || a.dit !== undefined;
  if (dit && backbone === 'unet') throw new CliError(`--backbone unet takes a UNet: --preset ${unetPresets} or --unet '{...}'`);
  if (!dit && backbone === 'dit') {
    if (a.unet !== undefined || preset !== undefined) throw new CliError(`--backbone dit takes a DiT: --preset ${ditPresets} or --dit ${DIT_EXAMPLE} (got a UNet)`);
    throw new CliError(`--backbone dit needs --preset ${ditPresets.replace(', ', '|')} or --dit ${DIT_EXAMPLE}`);
  }
  if (dit) return { dit: preset !== undefined && isDiTPreset(preset) ? resolveDiT(preset) : parseDiT(a.dit as string) };
  return { unet: parseUNet(preset ?? a.unet) };
}

/** The GPU of the webgpu backend named by --gpu (or DDAE_GPU when absent); `auto` by default. */
export function parseGpu(raw: string | undefined, env: NodeJS.ProcessEnv = rawEnv()): GpuSelector {
  try {
    return parseGpuSelector(raw ?? env['DDAE_GPU']);
  } catch (error) {
    throw new CliError(`${raw !== undefined ? '--gpu' : 'DDAE_GPU'}: ${(error as Error).message}`);
  }
}

/**
 * Selects the backend of an inline command (--backend, --gpu) and runs `work` on it; on webgpu the
 * device is released afterwards, so the process can end and a later command selects afresh.
 */
export async function withInlineBackend<T>(a: { backend?: string; gpu?: string }, work: (backend: SelectedBackend) => Promise<T>): Promise<T> {
  const prefer = parseBackend(a.backend);
  const gpu = parseGpu(a.gpu);
  const { selectBackend, releaseBackend, GpuSelectionError } = await import('@ddae/compute');
  let backend: SelectedBackend;
  try {
    backend = await selectBackend(prefer, { gpu });
  } catch (error) {
    if (error instanceof GpuSelectionError) throw new CliError(`${error.message}\n(--gpu or DDAE_GPU chooses the GPU; --backend or DDAE_BACKEND the backend)`);
    throw error;
  }
  try {
    return await work(backend);
  } finally {
    await releaseBackend();
  }
}

/** The backend named by --backend (or DDAE_BACKEND when absent); `auto` by default. */
export function parseBackend(raw: string | undefined, env: NodeJS.ProcessEnv = rawEnv()): BackendName | 'auto' {
  const v = (raw ?? env['DDAE_BACKEND'] ?? 'auto').trim();
  if (v === '' || v === 'auto') return 'auto';
  if ((BACKENDS as readonly string[]).includes(v)) return v as BackendName;
  throw new CliError(`${raw !== undefined ? '--backend' : 'DDAE_BACKEND'} "${v}" is not one of auto, ${BACKENDS.join(', ')}`);
}

/**
 * Builds the compute task of `pretrain` from its options: the options become a one-run sweep spec,
 * which the spec schema and `planSweep` resolve exactly as for a submitted sweep (batch, learning
 * rate, the warm-up formula, the EMA cap per method, checkpoint spacing, the small probe's
 * protocol), so no default is written twice. Every mistake is a CliError with the fix.
 */
export async function pretrainTaskFromArgs(a: PretrainArgs): Promise<PretrainTask> {
  if (!a.dataset || !(DATASET_NAMES as readonly string[]).includes(a.dataset)) throw new CliError(`pretrain needs --dataset ${DATASET_NAMES.join('|')}${a.dataset ? ` (got "${a.dataset}")` : ''}: ${EXAMPLE}`);
  const dataset = a.dataset as DatasetName;
  // --method defaults to ddpm (the reference's main method).
  if (a.method !== undefined && !(METHODS as readonly string[]).includes(a.method)) throw new CliError(`--method must be one of ${METHODS.join('|')} (got "${a.method}"): ${EXAMPLE}`);
  const method = (a.method ?? 'ddpm') as Method;
  const parsedNet = parseBackboneArgs(a);
  const net: BackboneSpec = 'dit' in parsedNet ? { backbone: 'dit', dit: parsedNet.dit } : { backbone: 'unet', unet: parsedNet.unet };
  // 0 writes the initial weights as the only checkpoint: the untrained network, to probe as a control.
  const steps = numberOption('steps', a.steps, { int: true, min: 0, max: 1_000_000, example: '2000' });
  if (steps === undefined) throw new CliError(`pretrain needs --steps N (optimiser steps): ${EXAMPLE}`);
  if (!a.out) throw new CliError(`pretrain needs --out <dir> for the checkpoints (a directory that already holds some is resumed): ${EXAMPLE}`);
  const untrained = steps === 0;
  const imageSize = imageSizeOption(a['image-size'], dataset, net.backbone === 'unet' ? net.unet.channelMults.length : 1);
  if (net.backbone === 'dit') {
    const size = imageSize ?? paddedImageSize(DATASET_SHAPES[dataset].size);
    const problem = ditConfigProblem(net.dit, size);
    if (problem) throw new CliError(`--${a.dit !== undefined ? 'dit' : 'preset'}: ${problem.message} (${dataset} images are ${imageSize === undefined ? 'padded to ' : ''}${size}x${size})`);
  }
  const progressProbe = progressProbeSpecFromArgs(a, { method, net, steps, dataset, imageSize });
  const grid = progressProbe?.noiseLevels ?? (method === 'ddpm' ? [1] : [0.002]);
  const spec: SweepSpecInput = {
    name: `inline-${path.basename(path.resolve(a.out))}`,
    dataset,
    models: [{ method, ...(net.backbone === 'dit' ? { backbone: 'dit' as const, dit: net.dit } : { unet: net.unet }), ...(imageSize !== undefined ? { imageSize } : {}) }],
    pretrain: {
      // The untrained control is planned as a sweep plans it: the baseline run of a one-step model.
      steps: untrained ? 1 : steps,
      batchSize: numberOption('batch', a.batch, { int: true, positive: true, max: 4096, example: '32' }),
      learningRate: numberOption('lr', a.lr, { positive: true, example: '2e-4' }),
      warmupSteps: numberOption('warmup', a.warmup, { int: true, min: 0, example: '100' }),
      emaDecayCap: numberOption('ema-cap', a['ema-cap'], { min: 0, max: 1, example: '0.9999' }),
      checkpointEvery: numberOption('checkpoint-every', a['checkpoint-every'], { int: true, positive: true, example: '100' }),
      seeds: [numberOption('seed', a.seed, { int: true, min: 0, example: '0' }) ?? 0],
      trainSize: numberOption('train-size', a['train-size'], { int: true, positive: true, example: '20000' }),
      ...(progressProbe ? { progressProbe: progressProbe.spec } : {}),
    },
    probe: { ...(method === 'ddpm' ? { timesteps: grid } : { sigmas: grid }), ...(progressProbe ? { pooling: progressProbe.pooling } : {}) },
    baselines: untrained ? ['untrained'] : [],
  };
  // Lazy: @ddae/sweeps brings Prisma and BullMQ along, which the other commands need not load.
  const { pretrainSettings, validateSweepSpec } = await import('@ddae/sweeps');
  const planned = validateSweepSpec(spec);
  if (!planned.ok) throw new CliError(`pretrain: ${planned.issues.map((i) => `${flagOf(i.path)}: ${i.message}`).join('; ')}`);
  const run = planned.plan.runs.find((r) => r.untrained === untrained);
  if (!run) throw new Error('the one-run plan has no run');
  const { hyper } = run;
  const task = pretrainTaskSchema.parse({
    kind: 'pretrain',
    runId: `cli-${path.basename(path.resolve(a.out))}`,
    method,
    ...(run.unet ? { unet: unetConfigSchema.required().parse(run.unet) } : { dit: run.dit }),
    dataset: { name: dataset, ...(a['data-dir'] ? { dir: a['data-dir'] } : {}) },
    ...pretrainSettings(hyper),
    seed: run.seed,
    checkpointDir: path.resolve(a.out),
  });
  return hyper.progressProbe ? { ...task, progressProbe: hyper.progressProbe } : task;
}

/** The option behind a path of the one-run spec, for error messages. */
const FLAG_OF: Record<string, string> = {
  'pretrain.steps': '--steps',
  'pretrain.batchSize': '--batch',
  'pretrain.learningRate': '--lr',
  'pretrain.warmupSteps': '--warmup',
  'pretrain.emaDecayCap': '--ema-cap',
  'pretrain.checkpointEvery': '--checkpoint-every',
  'pretrain.seeds.0': '--seed',
  'pretrain.trainSize': '--train-size',
  'pretrain.progressProbe.every': '--probe-every',
  'pretrain.progressProbe.layers': '--probe-layers',
  'pretrain.progressProbe.trainSize': '--probe-train-size',
  'pretrain.progressProbe.testSize': '--probe-test-size',
  'pretrain.progressProbe.epochs': '--probe-epochs',
};
const flagOf = (specPath: string): string => FLAG_OF[specPath] ?? specPath;

/**
 * `--image-size N`: the side of the model input (images centred, padded black); absent: the data
 * set's padded size (28 -> 32). At least the images' size, and halved exactly by every UNet level.
 */
export function imageSizeOption(raw: string | undefined, dataset: DatasetName, levels: number): number | undefined {
  const shape = DATASET_SHAPES[dataset];
  const size = numberOption('image-size', raw, { int: true, min: shape.size, max: 256, example: String(shape.size) });
  if (size === undefined) return undefined;
  const step = 2 ** (levels - 1);
  if (size % step !== 0) {
    const first = Math.ceil(shape.size / step) * step;
    throw new CliError(`--image-size ${size}: the UNet's ${levels} levels must halve it exactly (a multiple of ${step}): use ${first} or ${first + step}`);
  }
  return size;
}

const PROBE_EXAMPLE = '--probe-every 200 --probe-noise 11 --probe-layers out_2,out_4 --patience 3';

/**
 * Probing during pretraining from `--probe-every N` and its companions, as the spec's
 * `pretrain.progressProbe` (its defaults: the spec schema's) and the probe's pooling; the options
 * are checked here so that each mistake names its option. Null without `--probe-every`.
 */
export function progressProbeSpecFromArgs(
  a: PretrainArgs,
  run: { method: Method; net: BackboneSpec; steps: number; dataset: DatasetName; imageSize?: number },
): { spec: ProgressProbeSpecInput; noiseLevels: number[]; pooling: Pooling } | null {
  const every = numberOption('probe-every', a['probe-every'], { int: true, positive: true, example: '200' });
  if (every === undefined) {
    const stray = (['probe-noise', 'probe-layers', 'probe-train-size', 'probe-test-size', 'probe-epochs', 'probe-pooling', 'patience', 'min-delta'] as const).find((k) => a[k] !== undefined);
    if (stray) throw new CliError(`--${stray} needs --probe-every N (probe every N steps): ${PROBE_EXAMPLE}`);
    return null;
  }
  if (every > run.steps) throw new CliError(`--probe-every ${every} never probes a run of --steps ${run.steps}: use at most ${run.steps}`);
  const ddpm = run.method === 'ddpm';
  if (a['probe-noise'] === undefined) throw new CliError(`--probe-every needs --probe-noise: the ${ddpm ? 'DDPM timesteps t' : 'EDM sigmas'} to probe at, e.g. ${ddpm ? '--probe-noise 11' : '--probe-noise 0.06'}`);
  const noiseLevels = [
    ...new Set(
      a['probe-noise'].split(',').map((v) => numberOption('probe-noise', v, ddpm ? { int: true, min: 0, max: 1000, example: '5,50' } : { min: 0, max: 80, example: '0.06,0.5' }) as number),
    ),
  ];
  const shape = DATASET_SHAPES[run.dataset];
  const imageSize = run.imageSize ?? paddedImageSize(shape.size);
  const net = run.net;
  const known = backboneTappableLayers(net, imageSize, shape.channels);
  const rawLayers = (a['probe-layers'] ?? 'all').trim();
  const layers = rawLayers === 'all' ? backboneDefaultLayers(net, imageSize, shape.channels) : rawLayers.split(',').map((l) => l.trim());
  const unknown = layers.find((l) => !known.includes(l));
  if (unknown !== undefined) throw new CliError(`--probe-layers: unknown layer "${unknown}" for this ${net.backbone === 'dit' ? 'DiT' : 'UNet'}; known: ${known.join(', ')}`);
  if (layers.length * noiseLevels.length > SPEC_LIMITS.maxProgressProbeCells) {
    throw new CliError(`--probe-layers x --probe-noise: ${layers.length} x ${noiseLevels.length} cells per probe exceed the small grid's limit of ${SPEC_LIMITS.maxProgressProbeCells}`);
  }
  const patience = numberOption('patience', a.patience, { int: true, positive: true, max: 1000, example: '3' });
  const minDelta = numberOption('min-delta', a['min-delta'], { min: 0, max: 1, example: '0.002' });
  if (minDelta !== undefined && patience === undefined) throw new CliError(`--min-delta needs --patience N (stop after N probes without a gain of --min-delta): ${PROBE_EXAMPLE}`);
  const pooling = (a['probe-pooling'] ?? 'gap').trim();
  if (!(POOLINGS as readonly string[]).includes(pooling)) throw new CliError(`--probe-pooling must be one of ${POOLINGS.join(', ')} (global average, 2x2 or 4x4 grid), got "${pooling}"`);
  const trainSize = numberOption('probe-train-size', a['probe-train-size'], { int: true, positive: true, example: '2000' });
  const testSize = numberOption('probe-test-size', a['probe-test-size'], { int: true, positive: true, example: '1000' });
  return {
    spec: {
      every,
      ...(ddpm ? { timesteps: noiseLevels } : { sigmas: noiseLevels }),
      layers: rawLayers === 'all' ? 'all' : layers,
      ...(trainSize !== undefined ? { trainSize: Math.min(trainSize, shape.train) } : {}),
      ...(testSize !== undefined ? { testSize: Math.min(testSize, shape.test) } : {}),
      epochs: numberOption('probe-epochs', a['probe-epochs'], { int: true, positive: true, max: 200, example: '5' }),
      ...(patience !== undefined ? { earlyStop: { patience, minDelta } } : {}),
    },
    noiseLevels,
    pooling: pooling as Pooling,
  };
}

/** `ddae pretrain`: trains inline with the library the workers use (resuming from --out), prints progress to stderr. */
export async function pretrainInline(a: PretrainArgs & { backend?: string; gpu?: string }, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const task = await pretrainTaskFromArgs(a);
  parseBackend(a.backend);
  parseGpu(a.gpu);
  return withInlineBackend(a, (backend) => pretrainOn(backend, task, opts));
}

async function pretrainOn(backend: SelectedBackend, task: PretrainTask, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { runPretrainTask } = await import('@ddae/compute');
  const { latestCheckpoint, NonFiniteLossError, StoppedError, DeviceLimitError } = await import('@ddae/diffusion');
  const { DatasetMissingError } = await import('@ddae/datasets');
  log(`backend: ${backend.backend} (${backend.detail})`);
  const found = latestCheckpoint(task.checkpointDir);
  if (found) {
    const held = found.manifest.config as unknown as Record<string, unknown>;
    const size = task.imageSize ?? paddedImageSize(DATASET_SHAPES[task.dataset.name].size);
    const want: Record<string, unknown> = task.dit ? { backbone: 'dit', ...task.dit } : { ...task.unet };
    const same =
      found.manifest.method === task.method &&
      held['imageSize'] === size &&
      (held['backbone'] === 'dit') === (task.dit !== undefined) &&
      Object.keys(want).every((k) => JSON.stringify(held[k]) === JSON.stringify(want[k]));
    if (!same) throw new CliError(`${task.checkpointDir} holds checkpoints of another model (${found.manifest.method}, ${JSON.stringify(found.manifest.config)}): pass another --out, or the same --method, model (--preset, --unet or --dit) and --image-size to resume it`);
  }
  log(
    found && found.step >= task.steps
      ? `already trained: step ${found.step} >= --steps ${task.steps} (${found.path}); raise --steps to train further`
      : found
      ? `resuming from step ${found.step} of ${task.steps} (${found.path})`
      : `${task.method} on ${task.dataset.name}: ${task.steps} steps of batch ${task.batchSize}, lr ${task.learningRate} (warm-up ${task.warmupSteps}), seed ${task.seed}, checkpoints every ${task.checkpointEvery} to ${task.checkpointDir}`,
  );
  const pp = task.progressProbe;
  if (pp) {
    const stop = pp.earlyStop ? `; stops when ${pp.earlyStop.patience} probe(s) in a row gain less than ${pp.earlyStop.minDelta}` : '';
    log(`probing every ${pp.every} steps: ${pp.layers.join(',')} at ${task.method === 'ddpm' ? 't' : 'sigma'}=${pp.noiseLevels.join(',')} (${pp.protocol.trainSize}/${pp.protocol.testSize} images, ${pp.protocol.epochs} epochs)${stop}`);
  }

  let stop = false;
  const onSignal = (sig: string) => {
    log(`${sig}: writing a checkpoint and stopping (rerun the same command to resume)`);
    stop = true;
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);

  const started = Date.now();
  let lastLog = 0;
  let firstStep: number | undefined;
  let sum = 0;
  let count = 0;
  try {
    const r = await runPretrainTask(task, {
      shouldStop: () => stop,
      checkpoint: (c) => log(`checkpoint step ${c.step}${c.loss !== undefined ? ` (loss ${c.loss.toFixed(4)})` : ''}: ${c.path}`),
      progressProbe: (p) => {
        const best = p.cells.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
        log(`probe at step ${p.step}${p.replayed ? ' (measured before the restart)' : ''}: best ${(100 * p.accuracy).toFixed(2)} % (${best.layer} at ${best.noiseLevel})`);
      },
      progress: (_f, d) => {
        if (d.message && !d.message.startsWith('resumed')) log(d.message);
        if (d.step === undefined || d.loss === undefined) return;
        firstStep ??= d.step;
        sum += d.loss;
        count += 1;
        const now = Date.now();
        if (now - lastLog < 10_000 && d.step !== task.steps) return;
        lastLog = now;
        const secs = (now - started) / 1000;
        const perStep = d.step > firstStep ? secs / (d.step - firstStep + 1) : secs;
        const left = Math.max(0, (task.steps - d.step) * perStep);
        log(`step ${d.step}/${task.steps}  loss ${d.loss.toFixed(4)}  mean of ${count} samples ${(sum / count).toFixed(4)}  ${perStep.toFixed(2)} s/step  ~${Math.round(left / 60)} min left`);
        sum = 0;
        count = 0;
      },
    });
    const out = {
      checkpoint: r.finalCheckpoint.path,
      steps: r.steps,
      seconds: Math.round(r.seconds * 10) / 10,
      parameters: r.parameters,
      backbone: task.dit ? 'dit' : 'unet',
      backend: backend.backend,
      ...(backend.gpu ? { gpu: backend.gpu } : {}),
      ...(r.finalCheckpoint.loss !== undefined ? { loss: r.finalCheckpoint.loss } : {}),
      ...(r.progress ? { progress: r.progress, stoppedEarly: r.stoppedEarly ?? false } : {}),
    };
    if (opts.json) return JSON.stringify(out);
    const stopped = r.stoppedEarly ? ` (stopped early: the probe plateaued before --steps ${task.steps})` : '';
    const curve = r.progress?.length ? `\nprobe accuracy by step: ${r.progress.map((p) => `${p.step}: ${(100 * p.accuracy).toFixed(2)} %`).join(', ')}` : '';
    return `trained ${out.steps} steps in ${out.seconds} s (${out.backbone === 'dit' ? 'DiT' : 'UNet'}, ${out.parameters} parameters, ${out.backend})${stopped}; checkpoint ${out.checkpoint}${curve}`;
  } catch (error) {
    if (error instanceof StoppedError) throw new CliError(`${error.message}; rerun the same command to resume`);
    if (error instanceof NonFiniteLossError) throw new CliError(`training diverged (${error.message}): lower --lr or raise --warmup, and use a fresh --out`);
    if (error instanceof DatasetMissingError) throw new CliError(`${error.message} (or pass --data-dir)`);
    if (error instanceof DeviceLimitError) throw new CliError(error.message);
    if (error instanceof Error && /holds another model/.test(error.message)) throw new CliError(`${error.message}: pass another --out`);
    throw error;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
