import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
// Test-only: the spec picks its backend itself; production code gets it from @ddae/compute.
// eslint-disable-next-line no-restricted-imports
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { Pooling } from '@ddae/contracts';
import { flattenPixels, loadDataset, seededOrder, selectLabels } from '@ddae/datasets';
import { accuracy, meanAndSpread, poolFeatures, pooledFeatureDim, trainLinearProbe, trainLinearProbes, type ProbeSplit } from './index';

const OPTS = { epochs: 15, batchSize: 128, learningRate: 1e-3, seed: 0, standardize: true, classes: 10 };

beforeAll(async () => {
  setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
  tf.enableProdMode();
  expect(await tf.setBackend('wasm')).toBe(true);
  await tf.ready();
});

/** Gaussian blobs around well-separated class centres: linearly separable with a wide margin. */
function blobs(n: number, dim: number, classes: number, seed: number): ProbeSplit {
  let s = seed + 1;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const x = new Float32Array(n * dim);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let d = 0; d < dim; d++) x[i * dim + d] = 0.3 * gauss() + (d % classes === y[i] ? 2 : 0) + 5; // offset: standardisation matters
  }
  return { x, y, n, dim };
}

describe('trainLinearProbe', () => {
  it('learns a linearly separable problem to ~100%, with and without standardisation, leaking no tensors', async () => {
    const before = tf.memory().numTensors;
    for (const standardize of [true, false]) {
      const r = await trainLinearProbe(blobs(1000, 12, 4, 1), blobs(500, 12, 4, 2), { ...OPTS, classes: 4, epochs: 40, learningRate: 1e-2, standardize });
      expect(r.accuracy).toBeGreaterThanOrEqual(0.99);
      expect(r.trainAccuracy).toBeGreaterThanOrEqual(0.99);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is deterministic for a seed, and the seed matters', async () => {
    // A hard, noisy problem and one epoch, so that the seed shows in the result.
    const train = blobs(300, 40, 10, 3);
    train.x.forEach((v, i) => (train.x[i] = v + 4 * Math.sin(i)));
    const test = blobs(300, 40, 10, 4);
    const opts = { ...OPTS, epochs: 1, batchSize: 16 };
    const a = await trainLinearProbe(train, test, opts);
    expect(await trainLinearProbe(train, test, opts)).toEqual(a);
    const others = await Promise.all([1, 2, 3].map((seed) => trainLinearProbe(train, test, { ...opts, seed })));
    expect(others.some((o) => o.trainAccuracy !== a.trainAccuracy || o.accuracy !== a.accuracy)).toBe(true);
  });

  it('reaches > 0.7 on a 2000 / 1000 Fashion-MNIST pixel slice', async () => {
    const [train, test] = await Promise.all([loadDataset('fashion-mnist', 'train'), loadDataset('fashion-mnist', 'test')]);
    const trainIdx = seededOrder(train.count, 0).subarray(0, 2000);
    const testIdx = Uint32Array.from({ length: 1000 }, (_, i) => i);
    const before = tf.memory().numTensors;
    const r = await trainLinearProbe(
      { x: flattenPixels(train, trainIdx), y: selectLabels(train, trainIdx), n: 2000, dim: 784 },
      { x: flattenPixels(test, testIdx), y: selectLabels(test, testIdx), n: 1000, dim: 784 },
      OPTS,
    );
    expect(r.accuracy).toBeGreaterThan(0.7);
    expect(r.trainAccuracy).toBeGreaterThan(r.accuracy - 0.02);
    expect(tf.memory().numTensors).toBe(before);
    // Decoding the IDX files and 2,000 x 784 of training take ~2 s idle and over 5 s (jest's default
    // limit) on two busy cores: the limit is not what this test is about.
  }, 60_000);

  it('trains several probes in lockstep exactly as one at a time, on per-epoch features too', async () => {
    const a = blobs(300, 6, 3, 1);
    const b = blobs(300, 10, 3, 3);
    const [ta, tb] = [blobs(100, 6, 3, 2), blobs(100, 10, 3, 4)];
    const opts = { ...OPTS, classes: 3, epochs: 3 };
    const one = [await trainLinearProbe(a, ta, opts), await trainLinearProbe(b, tb, opts)];
    const asked: number[] = [];
    const before = tf.memory().numTensors;
    const both = await trainLinearProbes({ n: 300, y: a.y, dims: [6, 10], epoch: (e) => (asked.push(e), [a.x, b.x]) }, [ta, tb], opts);
    expect(tf.memory().numTensors).toBe(before);
    expect(both).toEqual(one);
    expect(asked).toEqual([0, 1, 2]);
    // Features that change every epoch (augmentation, fresh noise) change the result.
    const noisy = await trainLinearProbes({ n: 300, y: a.y, dims: [6], epoch: (e) => [e === 0 ? a.x : a.x.map((v, i) => v + 0.5 * Math.sin(i * (e + 1)))] }, [ta], opts);
    expect(noisy[0].trainAccuracy).not.toBe(one[0].trainAccuracy);
  });

  it('rejects inconsistent inputs before allocating anything', async () => {
    const before = tf.memory().numTensors;
    const ok = blobs(10, 3, 2, 0);
    await expect(trainLinearProbe({ ...ok, n: 11 }, ok, { ...OPTS, classes: 2 })).rejects.toThrow(/x has 30 values, expected 11x3/);
    await expect(trainLinearProbe(ok, { ...ok, y: new Uint8Array(10).fill(2) }, { ...OPTS, classes: 2 })).rejects.toThrow(/label 2 at row 0/);
    await expect(trainLinearProbe(ok, blobs(10, 4, 2, 0), { ...OPTS, classes: 2 })).rejects.toThrow(/test dim 4 differs/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs on the pure-JS cpu backend too', async () => {
    await tf.setBackend('cpu');
    try {
      const before = tf.memory().numTensors;
      const r = await trainLinearProbe(blobs(200, 6, 3, 5), blobs(100, 6, 3, 6), { ...OPTS, classes: 3, epochs: 10, batchSize: 32, learningRate: 1e-2 });
      expect(r.accuracy).toBeGreaterThanOrEqual(0.99);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

describe('poolFeatures', () => {
  // [1, 4, 4, 2]: channel 0 = row * 4 + col, channel 1 = 100.
  const tap = (): tf.Tensor4D => {
    const v = new Float32Array(32);
    for (let p = 0; p < 16; p++) {
      v[2 * p] = p;
      v[2 * p + 1] = 100;
    }
    return tf.tensor4d(v, [1, 4, 4, 2]);
  };

  it('gap averages over H x W per channel', () => {
    const t = tap();
    const before = tf.memory().numTensors;
    const f = poolFeatures(t, 'gap');
    expect(f.shape).toEqual([1, 2]);
    expect(Array.from(f.dataSync())).toEqual([7.5, 100]);
    f.dispose();
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
  });

  it('avg2 averages 2x2 cells, flattened cell-major (cell * C + channel); avg4 on 4x4 keeps every pixel', () => {
    const t = tap();
    const f = poolFeatures(t, 'avg2');
    expect(f.shape).toEqual([1, 8]);
    // cells: top-left (0,1,4,5) -> 2.5, top-right (2,3,6,7) -> 4.5, bottom-left -> 10.5, bottom-right -> 12.5
    expect(Array.from(f.dataSync())).toEqual([2.5, 100, 4.5, 100, 10.5, 100, 12.5, 100]);
    const f4 = poolFeatures(t, 'avg4');
    expect(Array.from(f4.dataSync())).toEqual(Array.from(t.dataSync()));
    expect(pooledFeatureDim(4, 4, 2, 'avg2')).toBe(8);
    tf.dispose([t, f, f4]);
  });

  it('pools batches of several images independently', () => {
    const t = tf.concat([tap(), tf.mul(tap(), 2)]) as tf.Tensor4D;
    const f = poolFeatures(t, 'avg2');
    expect(f.shape).toEqual([2, 8]);
    expect(Array.from(f.dataSync().subarray(8))).toEqual([5, 200, 9, 200, 21, 200, 25, 200]);
    tf.dispose([t, f]);
  });

  it('uses adaptive (PyTorch) cells for non-divisible sizes and keeps each pixel of a tap smaller than the grid', () => {
    // 1 x 3 x 3 x 1, values 0..8, avg2: cells rows/cols [0,2) and [1,3).
    const t = tf.tensor4d(Float32Array.from({ length: 9 }, (_, i) => i), [1, 3, 3, 1]);
    const f = poolFeatures(t, 'avg2');
    expect(Array.from(f.dataSync())).toEqual([2, 3, 5, 6]);
    // 2 x 2 tap with avg4: no pooling, 2*2*C features.
    const small = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const g = poolFeatures(small, 'avg4');
    expect(g.shape).toEqual([1, pooledFeatureDim(2, 2, 2, 'avg4')]);
    expect(Array.from(g.dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // 6 x 6 with avg4: adaptive cells (PyTorch's: rows/cols [0,2), [1,3), [3,5), [4,6)), 16 * C
    // features in (y, x, channel) order, each the mean of its cell.
    const six = tf.randomUniform([2, 6, 6, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const h = poolFeatures(six, 'avg4');
    expect(h.shape).toEqual([2, 48]);
    const x = six.dataSync();
    const cells = [[0, 2], [1, 3], [3, 5], [4, 6]];
    const expected: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (const [y0, y1] of cells) {
        for (const [x0, x1] of cells) {
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) sum += x[((n * 6 + y) * 6 + xx) * 3 + c];
            expected.push(sum / ((y1 - y0) * (x1 - x0)));
          }
        }
      }
    }
    Array.from(h.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    tf.dispose([t, f, small, g, six, h]);
  });

  it('pools adaptively along the one axis that does not divide (4 x 3 with avg2), and refuses an unknown pooling', () => {
    // Rows [0,2) and [2,4) (divisible), columns [0,2) and [1,3) (adaptive); values row * 3 + col.
    const t = tf.tensor4d(Float32Array.from({ length: 12 }, (_, i) => i), [1, 4, 3, 1]);
    const f = poolFeatures(t, 'avg2');
    const mean = (rows: number[], cols: number[]) => rows.reduce((s, r) => s + cols.reduce((c, k) => c + r * 3 + k, 0), 0) / (rows.length * cols.length);
    Array.from(f.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([mean([0, 1], [0, 1]), mean([0, 1], [1, 2]), mean([2, 3], [0, 1]), mean([2, 3], [1, 2])][i], 5));
    // And the other way round: 3 x 4, rows adaptive ([0,2) and [1,3)), columns divisible.
    const u = tf.tensor4d(Float32Array.from({ length: 12 }, (_, i) => i), [1, 3, 4, 1]);
    const mean4 = (rows: number[], cols: number[]) => rows.reduce((s, r) => s + cols.reduce((c, k) => c + r * 4 + k, 0), 0) / (rows.length * cols.length);
    const fu = poolFeatures(u, 'avg2');
    Array.from(fu.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([mean4([0, 1], [0, 1]), mean4([0, 1], [2, 3]), mean4([1, 2], [0, 1]), mean4([1, 2], [2, 3])][i], 5));
    expect(() => poolFeatures(t, 'avg3' as Pooling)).toThrow(/unknown pooling "avg3"/);
    tf.dispose([t, f, u, fu]);
  });
});

describe('metrics', () => {
  it('accuracy takes logits, class tensors or arrays', async () => {
    const logits = tf.tensor2d([
      [0, 1],
      [2, 0],
      [0, 3],
    ]);
    expect(await accuracy(logits, [1, 0, 0])).toBeCloseTo(2 / 3);
    const classes = tf.tensor1d([1, 1, 0], 'int32');
    expect(await accuracy(classes, Uint8Array.from([1, 0, 0]))).toBeCloseTo(2 / 3);
    expect(await accuracy([3, 2], [3, 2])).toBe(1);
    await expect(accuracy([1], [1, 2])).rejects.toThrow(/^1 predictions for 2 labels$/);
    await expect(accuracy([], [])).rejects.toThrow(/accuracy of an empty set/);
    tf.dispose([logits, classes]);
  });

  it('accuracy disposes the argmax it makes and never the tensor it was given', async () => {
    const logits = tf.tensor2d([[0, 1], [2, 0]]);
    const classes = tf.tensor1d([1, 0], 'int32');
    const before = tf.memory().numTensors;
    expect(await accuracy(logits, [1, 0])).toBe(1);
    expect(await accuracy(classes, [1, 1])).toBe(0.5);
    expect(tf.memory().numTensors).toBe(before);
    expect(classes.isDisposed).toBe(false);
    tf.dispose([logits, classes]);
  });

  it('meanAndSpread gives mean, sample std, min, max and n', () => {
    const s = meanAndSpread([0.8, 0.82, 0.84]);
    expect(s.mean).toBeCloseTo(0.82, 10);
    expect(s.std).toBeCloseTo(0.02, 10);
    expect(s).toMatchObject({ min: 0.8, max: 0.84, n: 3 });
    expect(meanAndSpread([0.5])).toEqual({ mean: 0.5, std: 0, min: 0.5, max: 0.5, n: 1 });
    // Two values: the sample std is |a - b| / sqrt(2).
    expect(meanAndSpread([1, 3]).std).toBeCloseTo(Math.SQRT2, 12);
    expect(() => meanAndSpread([])).toThrow(/meanAndSpread of no values/);
  });
});
