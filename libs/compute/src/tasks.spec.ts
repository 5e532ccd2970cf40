import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { probeTaskSchema, pretrainTaskSchema, type PretrainTask, type ProbeTask } from '@ddae/contracts';
import { encodeIdx } from '@ddae/datasets';
import { selectBackend } from './backend';
import { runComputeTask, runPretrainTask, runProbeTask } from './index';

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
    const pre: PretrainTask = pretrainTaskSchema.parse({
      kind: 'pretrain',
      runId: 'run-1',
      method: 'ddpm',
      unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 },
      dataset: { name: 'fashion-mnist', dir: path.join(root, 'data') },
      trainSize: 16,
      steps: 2,
      batchSize: 4,
      learningRate: 2e-4,
      warmupSteps: 1,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 1,
      seed: 0,
      checkpointDir: path.join(root, 'ckpt'),
    });
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
      protocol: { pooling: 'avg2', noise: 'fixed', noiseSeed: 0, epochs: 2, batchSize: 16, learningRate: 1e-3, standardize: true, trainSize: 40, testSize: 20, probeSeed: 0 },
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
  });
});
