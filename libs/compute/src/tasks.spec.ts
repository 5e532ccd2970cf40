import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { probeTaskSchema, type PretrainTask, type ProbeTask } from '@ddae/contracts';
import { encodeIdx } from '@ddae/datasets';
import { selectBackend } from './backend';
import { tinyPretrainTask } from './tiny-task.fixture';
import { acquireInferenceModel, modelCacheKeys, plateaued, runComputeTask, runPretrainTask, runProbeTask, setModelCacheSize } from './index';

jest.setTimeout(60_000);

/** A tiny synthetic Fashion-MNIST: class c images are bright in row band c (linearly separable). */
function writeSyntheticFashion(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [split, n, prefix] of [['train', 64, 'train'], ['test', 32, 't10k']] as const) {
    void split;
    const images = new Uint8Array(n * 28 * 28);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % 10;
      labels[i] = c;
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) images[i * 784 + y * 28 + x] = Math.floor(y / 3) === c ? 220 : (i * 7 + x * 13 + y * 5) % 40;
    }
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx([n, 28, 28], images));
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx([n], labels));
  }
}

describe('compute tasks on wasm', () => {
  let root: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-tasks-'));
    writeSyntheticFashion(path.join(root, 'data'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('pretrains, then probes every requested layer from the checkpoint', async () => {
    const pre: PretrainTask = tinyPretrainTask(root, { runId: 'run-1', checkpointEvery: 1, checkpointDir: path.join(root, 'ckpt') });
    const before = tf.memory().numTensors;
    const r = await runComputeTask(pre);
    expect(r.kind).toBe('pretrain');
    if (r.kind !== 'pretrain') return;
    expect(r.steps).toBe(2);
    expect(r.finalCheckpoint.path).toBe(path.join(root, 'ckpt', 'step-00000002'));
    // Rerunning a finished task returns the same final checkpoint.
    expect((await runPretrainTask(pre)).finalCheckpoint.sha256).toBe(r.finalCheckpoint.sha256);

    const probe: ProbeTask = probeTaskSchema.parse({
      kind: 'probe',
      probeTaskId: 'p-1',
      method: 'ddpm',
      unet: pre.unet,
      dataset: pre.dataset,
      checkpointPath: r.finalCheckpoint.path,
      noiseLevel: 11,
      layers: ['out_1', 'out_4'],
      protocol: { pooling: 'avg2', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 2, batchSize: 16, learningRate: 1e-3, standardize: true, trainSize: 40, testSize: 20, probeSeed: 0 },
    });
    const progress: number[] = [];
    const p = await runProbeTask(probe, { progress: (f) => progress.push(f) });
    expect(p.layers.map((l) => l.layer)).toEqual(['out_1', 'out_4']);
    expect(p.layers[0].featureDim).toBe(2 * 2 * 16);
    expect(p.layers[1].featureDim).toBe(2 * 2 * 8);
    for (const l of p.layers) {
      expect(l.accuracy).toBeGreaterThanOrEqual(0);
      expect(l.accuracy).toBeLessThanOrEqual(1);
    }
    expect(progress[progress.length - 1]).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    await expect(runProbeTask(probe, { shouldStop: () => true })).rejects.toHaveProperty('name', 'StoppedError');
    checkpointPath = r.finalCheckpoint.path;
    baseProbe = probe;
  });

  let checkpointPath = '';
  let baseProbe: ProbeTask;

  it('a warm process keeps a checkpoint loaded across probes while its files are the same, and gives the same answer', async () => {
    const before = tf.memory().numTensors;
    const cold = await runProbeTask(baseProbe);
    expect(tf.memory().numTensors).toBe(before);
    setModelCacheSize(1);
    try {
      const first = acquireInferenceModel(checkpointPath);
      first.release();
      const again = acquireInferenceModel(checkpointPath);
      expect({ first: first.cached, again: again.cached, same: again.unet === first.unet }).toEqual({ first: false, again: true, same: true });
      again.release();
      // Probes on the cached weights answer exactly as from a fresh load.
      expect((await runProbeTask(baseProbe)).layers).toEqual(cold.layers);
      expect(modelCacheKeys()).toHaveLength(1);
      // The same checkpoint rewritten (its EMA file touched): loaded again, the old copy disposed.
      const ema = path.join(checkpointPath, 'ema.bin');
      const later = new Date(Date.now() + 5_000);
      fs.utimesSync(ema, later, later);
      const reloaded = acquireInferenceModel(checkpointPath);
      expect(reloaded.cached).toBe(false);
      reloaded.release();
      expect(modelCacheKeys()).toHaveLength(1);
    } finally {
      setModelCacheSize(0);
    }
    // Nothing held once the cache is off: no tensor leaks from cached models.
    expect(tf.memory().numTensors).toBe(before);
  });

  it('caches features: a second probe of the same features hits, another key misses, results agree', async () => {
    const cacheDir = path.join(root, 'features');
    const task = { ...baseProbe, checkpointPath, featureCacheDir: cacheDir };
    const first = await runProbeTask(task);
    // 2 layers x (train + test): all computed, then all read back.
    expect(first.featureCache).toEqual({ hits: 0, misses: 2 });
    const second = await runProbeTask(task);
    expect(second.featureCache).toEqual({ hits: 4, misses: 0 });
    expect(second.layers).toEqual(first.layers);
    // Another linear protocol on the same features: only the linear training is new.
    const moreEpochs = await runProbeTask({ ...task, protocol: { ...task.protocol, epochs: 3 } });
    expect(moreEpochs.featureCache).toEqual({ hits: 4, misses: 0 });
    // Another noise level, noise seed or slice: misses.
    expect((await runProbeTask({ ...task, noiseLevel: 12 })).featureCache?.hits).toBe(0);
    expect((await runProbeTask({ ...task, protocol: { ...task.protocol, noiseSeed: 1 } })).featureCache?.hits).toBe(0);
    const otherSlice = await runProbeTask({ ...task, protocol: { ...task.protocol, trainSize: 30 } });
    expect(otherSlice.featureCache).toEqual({ hits: 2, misses: 1 }); // the test split is the same slice
    // A torn entry (data without a valid index) is a miss, then rewritten.
    const metas: string[] = [];
    const walk = (d: string): void => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.json') && metas.push(path.join(d, e.name))));
    walk(cacheDir);
    for (const m of metas) fs.writeFileSync(m, '{"key":"x"');
    const torn = await runProbeTask(task);
    expect(torn.featureCache?.hits).toBe(0);
    expect(torn.layers).toEqual(first.layers);
    expect(fs.readdirSync(cacheDir, { recursive: true }).some((f) => String(f).includes('.tmp-'))).toBe(false);
  });

  it('probes every label budget on ONE feature pass: all as without budgets, each budget its own probes, deterministic', async () => {
    const task = { ...baseProbe, checkpointPath, featureCacheDir: path.join(root, 'features-labels') };
    const all = await runProbeTask(task);
    const budgets = await runProbeTask({ ...task, featureCacheDir: path.join(root, 'features-labels-2'), labels: [10, 20, 'all'] });
    // The same misses as one budget: the training features are extracted once for all three.
    expect(budgets.featureCache).toEqual(all.featureCache);
    expect(budgets.layers.map((l) => [l.layer, l.labels])).toEqual([['out_1', 10], ['out_4', 10], ['out_1', 20], ['out_4', 20], ['out_1', undefined], ['out_4', undefined]]);
    expect(budgets.layers.slice(4)).toEqual(all.layers);
    // Fewer labels train another probe (its training accuracy is over its own rows).
    expect(budgets.layers.slice(0, 2).map((l) => l.trainAccuracy)).not.toEqual(all.layers.map((l) => l.trainAccuracy));
    const again = await runProbeTask({ ...task, labels: [10, 20, 'all'] });
    expect(again.featureCache).toEqual({ hits: 4, misses: 0 });
    expect(again.layers).toEqual(budgets.layers);
    await expect(runProbeTask({ ...task, labels: [5] })).rejects.toThrow(/cannot cover 10 classes/);
  });

  it('a cached matrix with one flipped byte fails its checksum: a miss, recomputed and replaced by the right bytes', async () => {
    const cacheDir = path.join(root, 'features-flip');
    const task = { ...baseProbe, checkpointPath, featureCacheDir: cacheDir };
    const first = await runProbeTask(task);
    const data: string[] = [];
    const walk = (d: string): void => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.f32') && data.push(path.join(d, e.name))));
    walk(cacheDir);
    // 2 layers x (train + test) matrices; corrupt each one in turn (same length, one bit off).
    expect(data).toHaveLength(4);
    for (const file of data) {
      const good = fs.readFileSync(file);
      const bad = Buffer.from(good);
      bad[bad.length >> 1] ^= 0x01;
      fs.writeFileSync(file, bad);
      const again = await runProbeTask(task);
      // The corrupted matrix is not read as a hit: its split is recomputed (both layers in one pass)...
      expect(again.featureCache?.misses).toBe(1);
      expect(again.featureCache?.hits).toBeLessThan(4);
      expect(again.layers).toEqual(first.layers);
      // ...and written back: the file holds the right bytes again, and the next probe hits everything.
      expect(fs.readFileSync(file).equals(good)).toBe(true);
      expect((await runProbeTask(task)).featureCache).toEqual({ hits: 4, misses: 0 });
    }
  });

  it('runs the reference protocol (per-epoch augmented features) with fixed and fresh noise', async () => {
    const reference = { ...baseProbe, checkpointPath, noiseLevel: 400, featureCacheDir: path.join(root, 'features-ref'), protocol: { ...baseProbe.protocol, probe: 'reference' as const, epochs: 4, learningRate: 0.05 } };
    const progress: string[] = [];
    const fixed = await runProbeTask(reference, { progress: (_f, d) => progress.push(d.message ?? '') });
    expect(progress.filter((m) => m.includes('augmented features'))).toHaveLength(4);
    // With a budget: its probe augments and extracts its own rows; `all` is as without budgets.
    const budgeted = await runProbeTask({ ...reference, labels: [10, 'all'] });
    expect(budgeted.layers.slice(2)).toEqual(fixed.layers);
    expect(budgeted.layers.slice(0, 2).every((l) => l.labels === 10)).toBe(true);
    // Only the test features are cacheable under the reference protocol.
    expect(fixed.featureCache).toEqual({ hits: 0, misses: 1 });
    const fresh = await runProbeTask({ ...reference, protocol: { ...reference.protocol, noise: 'fresh' as const } });
    expect(fresh.featureCache).toEqual({ hits: 2, misses: 0 });
    const fast = await runProbeTask({ ...baseProbe, checkpointPath, noiseLevel: 400, protocol: { ...reference.protocol, probe: 'fast' as const } });
    // Augmentation and fresh noise change the training features, hence the trained probes.
    const scores = (r: typeof fast) => r.layers.flatMap((l) => [l.accuracy, l.trainAccuracy]);
    expect(scores(fixed)).not.toEqual(scores(fast));
    expect(scores(fresh)).not.toEqual(scores(fixed));
    // Deterministic all the same.
    expect((await runProbeTask({ ...reference, protocol: { ...reference.protocol, noise: 'fresh' as const } })).layers).toEqual(fresh.layers);
    await expect(runProbeTask({ ...baseProbe, checkpointPath, protocol: { ...baseProbe.protocol, noise: 'fresh' as const } })).rejects.toThrow(/reference protocol/);
  });

  it('probes during pretraining every N steps and stops early at a plateau, also after a restart', async () => {
    const progressProbe = {
      every: 1,
      noiseLevels: [11],
      layers: ['out_1'],
      protocol: { ...baseProbe.protocol, epochs: 1, trainSize: 20, testSize: 10 },
      // No probe can gain a whole point of accuracy: it plateaus as soon as patience allows.
      earlyStop: { patience: 1, minDelta: 1 },
    };
    const task: PretrainTask = { ...tinyPretrainTask(root, { runId: 'run-pp', unet: baseProbe.unet, dataset: baseProbe.dataset, steps: 5, checkpointEvery: 5, checkpointDir: path.join(root, 'ckpt-pp') }), progressProbe };
    const points: number[] = [];
    const r = await runPretrainTask(task, { progressProbe: (p) => points.push(p.step) });
    expect(points).toEqual([1, 2]);
    expect(r).toMatchObject({ kind: 'pretrain', steps: 2, stoppedEarly: true });
    expect(r.finalCheckpoint.path).toBe(path.join(root, 'ckpt-pp', 'step-00000002'));
    expect(r.progress?.map((p) => p.step)).toEqual([1, 2]);
    // Restarted (a retried job): it ends where it stopped, without training or probing again; the
    // points measured before are reported again, marked replayed (the worker upserts them).
    const replayed: { step: number; replayed?: boolean; accuracy: number }[] = [];
    const historyFile = path.join(root, 'ckpt-pp', 'progress-probes.json');
    const written = fs.statSync(historyFile).mtimeMs;
    const again = await runPretrainTask(task, { progressProbe: (p) => replayed.push(p) });
    expect(again).toMatchObject({ steps: 2, stoppedEarly: true, finalCheckpoint: r.finalCheckpoint, seconds: 0 });
    expect(replayed.map((p) => [p.step, p.replayed])).toEqual([[1, true], [2, true]]);
    expect(replayed.map((p) => p.accuracy)).toEqual(r.progress?.map((p) => p.accuracy));
    expect(fs.statSync(historyFile).mtimeMs).toBe(written);
    // Without early stop it trains to the end, probing every 2 steps; the final checkpoint is the
    // same as training in one go (segments resume exactly).
    const noStop = { ...task, checkpointDir: path.join(root, 'ckpt-pp2'), steps: 3, progressProbe: { ...progressProbe, every: 2, earlyStop: undefined } };
    const full = await runPretrainTask(noStop);
    expect(full).toMatchObject({ steps: 3, stoppedEarly: false });
    expect(full.progress?.map((p) => p.step)).toEqual([2]);
    const plain = await runPretrainTask({ ...noStop, checkpointDir: path.join(root, 'ckpt-plain'), checkpointEvery: 2, progressProbe: undefined });
    expect(fs.readFileSync(path.join(full.finalCheckpoint.path, 'weights.bin'))).toEqual(fs.readFileSync(path.join(plain.finalCheckpoint.path, 'weights.bin')));
  });

  it('after a kill between a segment\'s checkpoint and its probe, probes that checkpoint first: no point lost', async () => {
    const progressProbe = { every: 2, noiseLevels: [11], layers: ['out_1'], protocol: { ...baseProbe.protocol, epochs: 1, trainSize: 20, testSize: 10 } };
    const base = tinyPretrainTask(root, { runId: 'run-kill', unet: baseProbe.unet, dataset: baseProbe.dataset, steps: 4, checkpointEvery: 4, checkpointDir: path.join(root, 'ckpt-kill') });
    // What a kill right after the step-2 checkpoint leaves: the checkpoint, no probe of it.
    await runPretrainTask({ ...base, steps: 2 });
    const points: { step: number; replayed?: boolean }[] = [];
    const r = await runPretrainTask({ ...base, progressProbe }, { progressProbe: (p) => points.push(p) });
    expect(points.map((p) => [p.step, p.replayed ?? false])).toEqual([[2, false], [4, false]]);
    expect(r).toMatchObject({ steps: 4, stoppedEarly: false });
    expect(r.progress?.map((p) => p.step)).toEqual([2, 4]);
    // Same point as an uninterrupted run's.
    const straight = await runPretrainTask({ ...base, checkpointDir: path.join(root, 'ckpt-straight'), progressProbe });
    expect(r.progress).toEqual(straight.progress);
  });

  it('calls a plateau when the last probes do not beat the best before them by min delta', () => {
    expect(plateaued([0.5], 1, 0)).toBe(false);
    expect(plateaued([0.5, 0.6], 1, 0.01)).toBe(false);
    expect(plateaued([0.5, 0.6, 0.605], 1, 0.01)).toBe(true);
    expect(plateaued([0.5, 0.6, 0.605, 0.62], 2, 0.01)).toBe(false);
    expect(plateaued([0.5, 0.6, 0.59, 0.6], 2, 0.01)).toBe(true);
  });
});
