import { cliEnvSchema, loadEnv } from '@ddae/config';
import fs from 'node:fs';
import path from 'node:path';
import {
  DATASET_NAMES,
  DATASET_SHAPES,
  NOISE_PROTOCOLS,
  POOLINGS,
  RESULT_PROTOCOLS,
  backboneDefaultLayers,
  backboneFields,
  backboneOfModelConfig,
  backboneTappableLayers,
  labelBudgetIssues,
  protocolAtBudget,
  protocolKey,
  type DatasetName,
  type LabelBudget,
  type ProbeProtocol,
  type ProbeTask,
  finetuneSpecSchema,
  probeSpecSchema,
} from '@ddae/contracts';
import { CliError } from '../api-client';
import { numberOption, parseBackend, parseGpu, withInlineBackend } from './pretrain.command';

/** The raw option values of `probe` (strings as typed). */
export interface ProbeArgs {
  features?: string;
  dataset?: string;
  checkpoint?: string;
  layers?: string;
  noise?: string;
  pooling?: string;
  epochs?: string;
  batch?: string;
  lr?: string;
  seed?: string;
  'noise-seed'?: string;
  'train-size'?: string;
  'test-size'?: string;
  standardize?: string;
  protocol?: string;
  'noise-protocol'?: string;
  labels?: string;
  augment?: string;
  cache?: string;
  'data-dir'?: string;
  backend?: string;
  gpu?: string;
}

const EXAMPLES = [
  'npm run -s ddae -- probe --features pixels --dataset fashion-mnist --json',
  'npm run -s ddae -- probe --checkpoint tmp/ddpm-small --layers all --noise 5,25,100 --json',
  'npm run -s ddae -- probe --checkpoint tmp/ddpm-small --layers out_4 --noise 8 --pooling avg4 --protocol finetune --json',
];

/**
 * The probe protocol from options, with the reference defaults (15 epochs, batch 128, Adam 1e-3);
 * `--protocol finetune` (the network up to the layer and a linear head trained end to end) takes the
 * spec's `probe.finetune` defaults instead (10 epochs, Adam 1e-3, augmentation on), as the workers do.
 */
export function protocolFromArgs(a: ProbeArgs, dataset: DatasetName): ProbeProtocol {
  const shape = DATASET_SHAPES[dataset];
  const pooling = (a.pooling ?? 'gap').trim();
  if (!(POOLINGS as readonly string[]).includes(pooling)) throw new CliError(`--pooling must be one of ${POOLINGS.join(', ')}, got "${pooling}"`);
  const standardize = (a.standardize ?? 'true').trim();
  if (standardize !== 'true' && standardize !== 'false') throw new CliError(`--standardize must be true or false, got "${standardize}"`);
  const probe = (a.protocol ?? 'fast').trim();
  if (!(RESULT_PROTOCOLS as readonly string[]).includes(probe)) throw new CliError(`--protocol must be one of ${RESULT_PROTOCOLS.join(', ')}, got "${probe}"`);
  const finetune = probe === 'finetune';
  const noise = (a['noise-protocol'] ?? 'fixed').trim();
  if (!(NOISE_PROTOCOLS as readonly string[]).includes(noise)) throw new CliError(`--noise-protocol must be one of ${NOISE_PROTOCOLS.join(', ')}, got "${noise}"`);
  if (noise === 'fresh' && probe === 'fast') throw new CliError('--noise-protocol fresh draws new noise every epoch, so features cannot be cached: add --protocol reference (or finetune)');
  const augment = a.augment?.trim();
  if (augment !== undefined && !finetune) throw new CliError(`--augment applies to --protocol finetune only (the reference protocol always augments, fast never does)`);
  if (augment !== undefined && augment !== 'true' && augment !== 'false') throw new CliError(`--augment must be true or false, got "${augment}"`);
  const epochs = numberOption('epochs', a.epochs, { int: true, positive: true, max: 200, example: finetune ? '10' : '15' });
  const learningRate = numberOption('lr', a.lr, { positive: true, max: 1, example: '1e-3' });
  // The sweep spec's probe defaults (epochs, batch, learning rate, noise seed), written once there;
  // fine-tuning's own (epochs, learning rate, augmentation) from the spec's probe.finetune.
  const spec = probeSpecSchema.parse({
    pooling,
    noise: finetune ? 'fixed' : noise,
    protocol: finetune ? 'fast' : probe,
    noiseSeed: numberOption('noise-seed', a['noise-seed'], { int: true, min: 0, example: '0' }),
    batchSize: numberOption('batch', a.batch, { int: true, positive: true, max: 4096, example: '128' }),
    ...(finetune ? {} : { epochs, learningRate }),
  });
  const ft = finetune ? finetuneSpecSchema.parse({ noise, epochs, learningRate, ...(augment !== undefined ? { augment: augment === 'true' } : {}) }) : null;
  return {
    pooling: spec.pooling,
    noise: ft ? ft.noise : spec.noise,
    probe: ft ? 'finetune' : spec.protocol,
    noiseSeed: spec.noiseSeed,
    epochs: ft ? ft.epochs : spec.epochs,
    batchSize: spec.batchSize,
    learningRate: ft ? ft.learningRate : spec.learningRate,
    standardize: standardize === 'true',
    // Inline, the whole split by default (a sweep's default is the first 10000 training images).
    trainSize: numberOption('train-size', a['train-size'], { int: true, positive: true, max: shape.train, example: String(shape.train) }) ?? shape.train,
    testSize: numberOption('test-size', a['test-size'], { int: true, positive: true, max: shape.test, example: String(shape.test) }) ?? shape.test,
    probeSeed: numberOption('seed', a.seed, { int: true, min: 0, example: '0' }) ?? 0,
    ...(ft ? { augment: ft.augment } : {}),
  };
}

/**
 * `--labels 100,1000,all` -> [100, 1000, 'all']: label budgets in total (class-balanced), each from
 * the class count up to `--train-size`, ascending, `all` last. Absent: [all].
 */
export function parseLabelBudgets(raw: string | undefined, protocol: ProbeProtocol, dataset: DatasetName): LabelBudget[] {
  if (raw === undefined) return ['all'];
  const budgets = raw.split(',').map((s) => s.trim()).map((s): LabelBudget => {
    if (s === 'all') return 'all';
    if (!/^[1-9][0-9]{0,8}$/.test(s)) throw new CliError(`--labels "${raw}": "${s}" is neither all nor a positive number of labelled images (e.g. --labels 100,1000,all)`);
    return Number(s);
  });
  const [issue] = labelBudgetIssues(budgets, protocol.trainSize, DATASET_SHAPES[dataset].classes, dataset);
  if (issue) throw new CliError(`--labels "${raw}": ${issue.message.replace('(probe.trainSize)', '(--train-size)')}`);
  return budgets;
}

/** `--noise 5,25,100` -> [5, 25, 100]. */
export function parseNoiseLevels(raw: string | undefined): number[] {
  if (!raw) throw new CliError(`probe --checkpoint needs --noise: DDPM timesteps or EDM sigmas, comma-separated (e.g. --noise 5,25,100)`);
  const levels = raw.split(',').map((s) => s.trim());
  return levels.map((s) => {
    const v = Number(s);
    if (s === '' || !Number.isFinite(v) || v < 0) throw new CliError(`--noise "${raw}": "${s}" is not a non-negative number (e.g. --noise 5,25,100)`);
    return v;
  });
}

/**
 * `probe`: trains linear probes inline (no API, Redis or Postgres), with the same library code
 * the workers run. On raw pixels (`--features pixels`) or on a checkpoint's EMA features at each
 * noise level (one forward pass per level taps every requested layer). The last stdout line with
 * --json is one JSON object with at least `accuracy` (the best cell).
 */
export async function probeInline(a: ProbeArgs, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  parseBackend(a.backend);
  parseGpu(a.gpu);
  if (a.features !== undefined && a.features !== 'pixels') throw new CliError(`--features "${a.features}": only "pixels" is known; for diffusion features pass --checkpoint <dir>`);
  if ((a.features === 'pixels') === (a.checkpoint !== undefined)) throw new CliError(`probe needs exactly one of --features pixels or --checkpoint <dir>:\n  ${EXAMPLES.join('\n  ')}`);

  const { runBaselineTask, runFinetuneTask, runProbeTask } = await import('@ddae/compute');
  if (a.features === 'pixels') {
    if (!a.dataset || !(DATASET_NAMES as readonly string[]).includes(a.dataset)) throw new CliError(`probe --features pixels needs --dataset ${DATASET_NAMES.join('|')}: ${EXAMPLES[0]}`);
    const dataset = a.dataset as DatasetName;
    const protocol = protocolFromArgs(a, dataset);
    if (protocol.probe === 'finetune') throw new CliError('--protocol finetune trains a network: it needs --checkpoint <dir>, not --features pixels');
    const budgets = parseLabelBudgets(a.labels, protocol, dataset);
    return withInlineBackend(a, async (backend) => {
      log(`raw pixels of ${dataset}: ${protocol.trainSize} train / ${protocol.testSize} test images, backend ${backend.backend}`);
      // One probe per label budget; the largest is the headline (`accuracy`, `protocol`).
      const runs: { labels: LabelBudget; accuracy: number; featureDim: number; seconds: number; protocol: ProbeProtocol }[] = [];
      for (const budget of budgets) {
        const at = protocolAtBudget(protocol, budget);
        const r = await runBaselineTask({ kind: 'baseline', baselineId: 'cli', baseline: 'pixels', dataset: { name: dataset }, protocol: at }, {});
        runs.push({ labels: budget, accuracy: r.accuracy, featureDim: r.featureDim, seconds: r.seconds, protocol: at });
        if (budgets.length > 1) log(`  ${budget} labels: ${(100 * r.accuracy).toFixed(2)} % (${r.seconds.toFixed(1)} s)`);
      }
      const top = runs[runs.length - 1];
      const result = {
        features: 'pixels', dataset, accuracy: top.accuracy, featureDim: top.featureDim, seconds: runs.reduce((s, r) => s + r.seconds, 0), backend: backend.backend, protocol: top.protocol, protocolKey: protocolKey(top.protocol),
        ...(a.labels !== undefined ? { labels: top.labels, budgets: runs.map((r) => ({ labels: r.labels, accuracy: r.accuracy, protocolKey: protocolKey(r.protocol) })) } : {}),
      };
      if (opts.json) return JSON.stringify(result);
      if (budgets.length === 1 && a.labels === undefined) return `pixels on ${dataset}: accuracy ${(100 * top.accuracy).toFixed(2)} % (${top.featureDim} features, ${top.seconds.toFixed(1)} s, ${backend.backend})`;
      return runs.map((r) => `pixels on ${dataset} with ${r.labels} labels: accuracy ${(100 * r.accuracy).toFixed(2)} %`).join('\n');
    });
  }

  const target = await probeTarget(a);
  const { found, method, step, dataset, layers, levels, protocol } = target;
  const budgets = parseLabelBudgets(a.labels, protocol, dataset);
  const largest = budgets[budgets.length - 1];
  const labelsOf = (l: { labels?: number }): LabelBudget => l.labels ?? 'all';
  const finetune = protocol.probe === 'finetune';
  if (finetune && a.cache !== undefined && a.cache !== 'none') throw new CliError('--cache: fine-tuning changes the network, so its features are never cached; drop --cache');
  return withInlineBackend(a, async (backend) => {
    log(`${finetune ? 'fine-tuning' : 'probing'} ${found.path} (${method}, step ${step}) on ${dataset}: layers ${layers.join(',')} at ${method === 'ddpm' ? 't' : 'sigma'} = ${levels.join(', ')}${a.labels !== undefined ? `; labels ${budgets.join(', ')}` : ''}; backend ${backend.backend}`);
    const featureCacheDir = finetune ? undefined : featureCacheDirOf(a.cache);
    // Every budget's cells (one feature pass per level serves them all); `cells` is the largest budget's.
    const all: { layer: string; labels?: number; noiseLevel: number; accuracy: number; trainAccuracy?: number; featureDim: number }[] = [];
    let seconds = 0;
    const featureCache = { hits: 0, misses: 0 };
    for (const noiseLevel of levels) {
      const task = { ...target.task(noiseLevel, featureCacheDir), ...(a.labels !== undefined ? { labels: budgets } : {}) };
      // Fine-tuning reports every batch: one line per epoch (a new message) is enough.
      let said = '';
      const progress = (f: number, d: { message?: string }) => {
        if (d.message && d.message !== said) log(`  ${(said = d.message)} (${(100 * f).toFixed(0)} %)`);
      };
      const r = finetune ? await runFinetuneTask(task, { progress }) : await runProbeTask(task, {});
      seconds += r.seconds;
      featureCache.hits += r.featureCache?.hits ?? 0;
      featureCache.misses += r.featureCache?.misses ?? 0;
      for (const l of r.layers) all.push({ ...l, noiseLevel });
      const best = r.layers.filter((l) => labelsOf(l) === largest).sort((x, y) => y.accuracy - x.accuracy)[0];
      const cached = r.featureCache ? `, cache ${r.featureCache.hits} hit / ${r.featureCache.misses} miss` : '';
      log(`  ${method === 'ddpm' ? 't' : 'sigma'}=${noiseLevel}: best ${best.layer} ${(100 * best.accuracy).toFixed(2)} % (${r.seconds.toFixed(1)} s${cached})`);
    }
    const cellsAt = (budget: LabelBudget) => all.filter((c) => labelsOf(c) === budget).map(({ labels: _labels, ...c }) => c);
    const bestOf = (cs: ReturnType<typeof cellsAt>) => [...cs].sort((x, y) => y.accuracy - x.accuracy)[0];
    const cells = cellsAt(largest);
    const best = bestOf(cells);
    const top = protocolAtBudget(protocol, largest);
    const result = {
      checkpoint: found.path, method, step, dataset, accuracy: best.accuracy, best, cells, seconds, backend: backend.backend, protocol: top, protocolKey: protocolKey(top),
      ...(featureCacheDir ? { featureCache: { dir: featureCacheDir, ...featureCache } } : {}),
      // With --labels: `cells` and `best` are the largest budget's; each budget's here.
      ...(a.labels !== undefined
        ? { labels: largest, budgets: budgets.map((labels) => ({ labels, accuracy: bestOf(cellsAt(labels)).accuracy, best: bestOf(cellsAt(labels)), cells: cellsAt(labels), protocolKey: protocolKey(protocolAtBudget(protocol, labels)) })) }
        : {}),
    };
    if (opts.json) return JSON.stringify(result);
    if (a.labels === undefined) {
      const lines = cells.map((c) => `${c.layer.padEnd(7)} ${String(c.noiseLevel).padStart(6)}  ${(100 * c.accuracy).toFixed(2)} %`);
      return [`layer    noise  accuracy`, ...lines, `best: ${best.layer} at ${best.noiseLevel}: ${(100 * best.accuracy).toFixed(2)} %`].join('\n');
    }
    const lines = budgets.flatMap((labels) => cellsAt(labels).map((c) => `${String(labels).padStart(6)} ${c.layer.padEnd(7)} ${String(c.noiseLevel).padStart(6)}  ${(100 * c.accuracy).toFixed(2)} %`));
    const bests = budgets.map((labels) => {
      const b = bestOf(cellsAt(labels));
      return `best with ${labels} labels: ${b.layer} at ${b.noiseLevel}: ${(100 * b.accuracy).toFixed(2)} %`;
    });
    return [`labels layer    noise  accuracy`, ...lines, ...bests].join('\n');
  });
}

/** A checkpoint, its layers, noise levels and protocol, from the options of `probe` (and `noise-search`). */
export async function probeTarget(a: ProbeArgs) {
  const { latestCheckpoint, verifyCheckpoint } = await import('@ddae/diffusion');
  const dir = a.checkpoint as string;
  if (!fs.existsSync(dir)) throw new CliError(`--checkpoint ${dir} does not exist: pass the --out directory of a pretrain run (npm run ddae -- pretrain ... --out ${dir})`);
  const found = fs.existsSync(path.join(dir, 'manifest.json')) ? verifyCheckpoint(dir) : latestCheckpoint(dir);
  if (!found) throw new CliError(`${dir} holds no valid checkpoint (step-XXXXXXXX directories with a manifest.json)`);
  const { config, method, step } = found.manifest;
  const dataset = (a.dataset ?? datasetOfShape(config.imageChannels)) as DatasetName;
  if (!(DATASET_NAMES as readonly string[]).includes(dataset)) throw new CliError(`--dataset must be one of ${DATASET_NAMES.join(', ')}`);
  const net = backboneOfModelConfig(config);
  const known = backboneTappableLayers(net, config.imageSize, config.imageChannels);
  const layers = !a.layers || a.layers === 'all' ? backboneDefaultLayers(net, config.imageSize, config.imageChannels) : a.layers.split(',').map((s) => s.trim());
  const unknown = layers.filter((l) => !known.includes(l));
  if (unknown.length) throw new CliError(`unknown layer(s) ${unknown.join(', ')}; this ${net.backbone === 'dit' ? 'DiT' : 'UNet'} has ${known.join(', ')}`);
  const levels = parseNoiseLevels(a.noise);
  const protocol = protocolFromArgs(a, dataset);
  const dataDir = a['data-dir'];
  const task = (noiseLevel: number, featureCacheDir?: string): ProbeTask => ({
    kind: 'probe', probeTaskId: 'cli', method, ...backboneFields(net), dataset: dataDir ? { name: dataset, dir: dataDir } : { name: dataset }, checkpointPath: found.path, noiseLevel, layers, protocol,
    ...(featureCacheDir ? { featureCacheDir } : {}),
  });
  return { found, method, step, dataset, layers, levels, protocol, task };
}

/**
 * `--cache DIR` (or `none`); default `$ARTIFACT_DIR/features` (the workers' cache) when ARTIFACT_DIR
 * is set, else no cache: a command never writes where it was not told to.
 */
export function featureCacheDirOf(raw: string | undefined): string | undefined {
  if (raw === 'none') return undefined;
  if (raw !== undefined) return path.resolve(raw);
  const { ARTIFACT_DIR } = loadEnv(cliEnvSchema);
  return ARTIFACT_DIR ? path.resolve(ARTIFACT_DIR, 'features') : undefined;
}

/** The data set a checkpoint was most likely trained on, from its channels (say --dataset to be sure). */
function datasetOfShape(channels: number): DatasetName {
  return channels === 3 ? 'cifar10' : 'fashion-mnist';
}
