import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BaselineTask } from '@ddae/contracts';
import { BaselineStoppedError, runBaselineTask } from './baseline.task';

const task = (over: Partial<BaselineTask['protocol']> = {}, dir?: string): BaselineTask => ({
  kind: 'baseline',
  baselineId: 'b1',
  baseline: 'pixels',
  dataset: dir ? { name: 'fashion-mnist', dir } : { name: 'fashion-mnist' },
  protocol: { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 5, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 2000, testSize: 1000, probeSeed: 0, ...over },
});

beforeAll(async () => {
  setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
  await tf.setBackend('wasm');
});

describe('runBaselineTask', () => {
  it('runs the pixel baseline on a Fashion-MNIST slice, reporting progress', async () => {
    const progress: number[] = [];
    const r = await runBaselineTask(task(), { progress: (f) => progress.push(f) });
    expect(r).toMatchObject({ kind: 'baseline', featureDim: 784 });
    expect(r.accuracy).toBeGreaterThan(0.7);
    expect(r.seconds).toBeGreaterThan(0);
    expect(progress[0]).toBe(0);
    expect(progress[progress.length - 1]).toBe(1);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('is deterministic for a probe seed', async () => {
    const a = await runBaselineTask(task({ trainSize: 500, testSize: 200, epochs: 2 }), {});
    const b = await runBaselineTask(task({ trainSize: 500, testSize: 200, epochs: 2 }), {});
    expect(b.accuracy).toBe(a.accuracy);
  });

  it('trains on a class-balanced label budget of the pool: fewer labels, another (deterministic) accuracy', async () => {
    const progress: string[] = [];
    const few = await runBaselineTask(task({ trainSize: 500, testSize: 200, epochs: 2, labels: 20 }), { progress: (_f, d) => progress.push(d.message ?? '') });
    expect(progress.some((m) => m.includes('pixel probe: 20 train'))).toBe(true);
    const all = await runBaselineTask(task({ trainSize: 500, testSize: 200, epochs: 2 }), {});
    expect(few.accuracy).not.toBe(all.accuracy);
    expect((await runBaselineTask(task({ trainSize: 500, testSize: 200, epochs: 2, labels: 20 }), {})).accuracy).toBe(few.accuracy);
  });

  it('augments the training pixels at every epoch under the reference protocol', async () => {
    const fast = await runBaselineTask(task({ epochs: 2 }), {});
    const reference = await runBaselineTask(task({ epochs: 2, probe: 'reference' }), {});
    // Shifted crops are harder for a linear model on pixels (measured: 0.48 against 0.70 here).
    expect(reference.accuracy).toBeLessThan(fast.accuracy - 0.05);
    expect(reference.accuracy).toBeGreaterThan(0.35);
    expect((await runBaselineTask(task({ epochs: 2, probe: 'reference' }), {})).accuracy).toBe(reference.accuracy);
  });

  it('stops when asked, rejects oversized protocols and missing data', async () => {
    await expect(runBaselineTask(task(), { shouldStop: () => true })).rejects.toBeInstanceOf(BaselineStoppedError);
    await expect(runBaselineTask(task({ testSize: 10001 }), {})).rejects.toThrow(/testSize 10001 exceeds the 10000 test images/);
    await expect(runBaselineTask(task({}, '/nonexistent/fm'), {})).rejects.toMatchObject({ name: 'DatasetMissingError' });
  });
});
