import * as tf from '@tensorflow/tfjs';
import { createRng } from '@ddae/datasets';
import { adamStep } from '@ddae/diffusion';
import { trainLinearProbe, trainLinearProbes, type LinearProbeOptions, type ProbeSplit } from './linear-probe';

// The probe's training loop against a reference written out from its description (standardisation
// in float64, PyTorch's nn.Linear init, seeded batch order, cosine-annealed Adam, closed-form
// softmax-regression gradients), on a few dozen rows, the pure-JS cpu backend: milliseconds a test,
// so the mutation run can afford it (probe.spec.ts has the wasm and Fashion-MNIST checks).
// The probe returns only accuracies, so the test split is labelled with the reference probe's own
// predictions, on points close to its decision boundaries: the probe under test must score exactly 1
// there, and a probe whose weights differ in the last digits does not.

const CLASSES = 3;
const OPTS: LinearProbeOptions = { epochs: 3, batchSize: 8, learningRate: 0.05, seed: 7, standardize: true, classes: CLASSES };

/** A deterministic uniform [0, 1) stream, independent of the generator under test. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * `n` rows of `dim` features, each feature on its own offset and scale (standardisation matters),
 * the last one constant when `constantLast` (standardisation must only centre it); noisy labels.
 */
function features(n: number, dim: number, seed: number, constantLast = false): ProbeSplit {
  const r = lcg(seed);
  const x = new Float32Array(n * dim);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = Math.floor(r() * CLASSES);
    for (let d = 0; d < dim; d++) {
      const last = constantLast && d === dim - 1;
      x[i * dim + d] = last ? 7 : (d + 1) * (r() - 0.5 + (d % CLASSES === y[i] ? 0.4 : 0)) + 3 * d - 2;
    }
  }
  return { x, y, n, dim };
}

interface ReferenceProbe {
  /** Predicted classes of raw (unstandardised) rows. */
  predict(x: Float32Array, rows: number): Int32Array;
  /** The gap between the two largest logits of each row. */
  margins(x: Float32Array, rows: number): Float32Array;
  trainAccuracy: number;
  dispose(): void;
}

/** One probe trained as its documentation says, one epoch's features after another. */
function reference(n: number, y: Uint8Array, dim: number, epochFeatures: (e: number) => Float32Array, opts: LinearProbeOptions): ReferenceProbe {
  const { epochs, batchSize, learningRate, seed, standardize, classes } = opts;
  const first = epochFeatures(0);
  const mean = new Float32Array(dim);
  const invStd = new Float32Array(dim).fill(1);
  if (standardize) {
    for (let d = 0; d < dim; d++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += first[i * dim + d];
      mean[d] = s / n;
      let q = 0;
      for (let i = 0; i < n; i++) q += (first[i * dim + d] - mean[d]) ** 2;
      const std = Math.sqrt(q / n);
      invStd[d] = std < 1e-6 ? 1 : 1 / std;
    }
  }
  const scaled = (x: Float32Array) => (standardize ? Float32Array.from(x, (v, j) => (v - mean[j % dim]) * invStd[j % dim]) : x);

  const rng = createRng(seed);
  const bound = 1 / Math.sqrt(dim);
  const initSeed = Math.floor(rng() * 2 ** 31);
  const w = tf.variable(tf.randomUniform([dim, classes], -bound, bound, 'float32', initSeed));
  const b = tf.variable(tf.randomUniform([1, classes], -bound, bound, 'float32', initSeed + 1));
  const moments = [w, b].map((p) => ({ m: tf.variable(tf.zerosLike(p)), v: tf.variable(tf.zerosLike(p)) }));
  const order = Array.from({ length: n }, (_, i) => i);
  const perEpoch = Math.ceil(n / batchSize);
  let raw = first;
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    raw = epochFeatures(e);
    const x = scaled(raw);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let k = 0; k < perEpoch; k++) {
      const idx = order.slice(k * batchSize, (k + 1) * batchSize);
      const lr = (learningRate / 2) * (1 + Math.cos((Math.PI * step) / (epochs * perEpoch)));
      step += 1;
      tf.tidy(() => {
        const xb = tf.tensor2d(idx.flatMap((i) => [...x.subarray(i * dim, (i + 1) * dim)]), [idx.length, dim]);
        const yb = tf.oneHot(tf.tensor1d(idx.map((i) => y[i]), 'int32'), classes).toFloat();
        const g = tf.div(tf.sub(tf.softmax(tf.add(tf.matMul(xb, w), b)), yb), idx.length);
        adamStep(
          [
            { param: w, ...moments[0] },
            { param: b, ...moments[1] },
          ],
          [tf.matMul(xb, g, true, false), tf.sum(g, 0, true)],
          { step, lr, epsilon: 'folded' },
        );
      });
    }
  }
  const logits = (raw: Float32Array, rows: number) => tf.tidy(() => tf.add(tf.matMul(tf.tensor2d(scaled(raw), [rows, dim]), w), b));
  const predict = (raw: Float32Array, rows: number) => {
    const l = logits(raw, rows);
    const p = tf.tidy(() => tf.argMax(l, 1));
    const out = Int32Array.from(p.dataSync());
    tf.dispose([l, p]);
    return out;
  };
  const trainPred = predict(raw, n);
  return {
    predict,
    margins: (raw, rows) => {
      const l = logits(raw, rows);
      const top = tf.topk(l, 2);
      const v = top.values.dataSync();
      tf.dispose([l, top.values, top.indices]);
      return Float32Array.from({ length: rows }, (_, i) => v[2 * i] - v[2 * i + 1]);
    },
    // On the last epoch's features.
    trainAccuracy: trainPred.reduce((c, p, i) => c + (p === y[i] ? 1 : 0), 0) / n,
    dispose: () => tf.dispose([w, b, ...moments.flatMap((s) => [s.m, s.v])]),
  };
}

/**
 * A test split of `rows` points (more than the probe's evaluation chunk of 4,096) near the
 * reference's decision boundaries, labelled with its predictions.
 */
function boundarySplit(ref: ReferenceProbe, like: ProbeSplit, rows: number, seed: number, spread = (d: number) => 1 + d): ProbeSplit {
  const pool = 4 * rows;
  const r = lcg(seed);
  const { dim } = like;
  // Around the training rows: the region the probe was fitted on.
  const candidates = Float32Array.from({ length: pool * dim }, (_, j) => like.x[(Math.floor(r() * like.n) * dim) + (j % dim)] + (r() - 0.5) * spread(j % dim));
  const margins = ref.margins(candidates, pool);
  const closest = Array.from({ length: pool }, (_, i) => i)
    .filter((i) => margins[i] > 1e-4)
    .sort((a, c) => margins[a] - margins[c])
    .slice(0, rows);
  expect(closest).toHaveLength(rows);
  const x = new Float32Array(rows * dim);
  closest.forEach((i, k) => x.set(candidates.subarray(i * dim, (i + 1) * dim), k * dim));
  const y = Uint8Array.from(ref.predict(x, rows));
  return { x, y, n: rows, dim };
}

const ROWS = 4200;

describe('trainLinearProbe against its reference (cpu backend, tiny data)', () => {
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('standardised, with a constant feature and a short last batch: the same probe as the reference', async () => {
    // 26 rows in batches of 8: 4 steps an epoch, the last of 2 rows; the constant feature is only centred.
    const train = features(26, 4, 1, true);
    const ref = reference(train.n, train.y, train.dim, () => train.x, OPTS);
    const test = boundarySplit(ref, train, ROWS, 2);
    // The test rows vary the constant feature: its scale (1, not 1/0) shows in the predictions.
    const before = tf.memory().numTensors;
    const got = await trainLinearProbe(train, test, OPTS);
    expect(tf.memory().numTensors).toBe(before);
    expect(got).toEqual({ accuracy: 1, trainAccuracy: ref.trainAccuracy });
    expect(ref.trainAccuracy).toBeGreaterThan(0.4);
    expect(ref.trainAccuracy).toBeLessThan(1);
    // The labels are not all one class, and a slightly different probe misses some of them.
    expect(new Set(test.y).size).toBe(CLASSES);
    const other = await trainLinearProbe(train, test, { ...OPTS, learningRate: OPTS.learningRate * 1.01 });
    expect(other.accuracy).toBeLessThan(0.99);
    ref.dispose();
  });

  it('unstandardised, over many epochs and another seed: the same probe as the reference', async () => {
    const train = features(20, 3, 3);
    const opts = { ...OPTS, standardize: false, epochs: 5, batchSize: 6, seed: 11, learningRate: 0.02 };
    const ref = reference(train.n, train.y, train.dim, () => train.x, opts);
    const test = boundarySplit(ref, train, ROWS, 4);
    expect(await trainLinearProbe(train, test, opts)).toEqual({ accuracy: 1, trainAccuracy: ref.trainAccuracy });
    ref.dispose();
  });

  it("takes Adam's step with epsilon folded into the step size, as the reference does (it shows on a feature with tiny gradients)", async () => {
    // Unstandardised, the third feature is ~1e-9: its gradients are far below Adam's epsilon (1e-8),
    // where the folded and the bias-corrected placements of epsilon move its weight differently. The
    // test rows spread that feature widely, so its weight shows in their predictions.
    const train = features(20, 3, 13);
    for (let i = 0; i < train.n; i++) train.x[i * 3 + 2] *= 1e-9;
    const opts = { ...OPTS, standardize: false };
    const ref = reference(train.n, train.y, train.dim, () => train.x, opts);
    const test = boundarySplit(ref, train, ROWS, 14, (d) => (d === 2 ? 1e3 : 1 + d));
    expect(await trainLinearProbe(train, test, opts)).toEqual({ accuracy: 1, trainAccuracy: ref.trainAccuracy });
    ref.dispose();
  });

  it('trains probes in lockstep on features that change every epoch: statistics of the first epoch, training accuracy on the last', async () => {
    const a = features(24, 4, 5);
    const b = features(24, 2, 6);
    const shifted = (x: Float32Array, e: number) => (e === 0 ? x : x.map((v, i) => v + 0.3 * e * Math.sin(i + e)));
    const refs = [a, b].map((f) => reference(f.n, a.y, f.dim, (e) => shifted(f.x, e), OPTS));
    const tests = [boundarySplit(refs[0], a, ROWS, 7), boundarySplit(refs[1], b, ROWS, 8)];
    const asked: number[] = [];
    const before = tf.memory().numTensors;
    const got = await trainLinearProbes({ n: 24, y: a.y, dims: [4, 2], epoch: (e) => (asked.push(e), [shifted(a.x, e), shifted(b.x, e)]) }, tests, OPTS);
    expect(tf.memory().numTensors).toBe(before);
    expect(asked).toEqual([0, 1, 2]);
    expect(got).toEqual(refs.map((r) => ({ accuracy: 1, trainAccuracy: r.trainAccuracy })));
    refs.forEach((r) => r.dispose());
  });

  it('refuses bad options and inconsistent splits, naming the field, before allocating anything', async () => {
    const ok = features(6, 2, 9);
    ok.y.set([0, 1, 2, 0, 1, 2]);
    const before = tf.memory().numTensors;
    const refuse = (train: ProbeSplit, test: ProbeSplit, opts: Partial<LinearProbeOptions>) => expect(trainLinearProbe(train, test, { ...OPTS, ...opts })).rejects.toThrow(RangeError);
    const message = (train: ProbeSplit, test: ProbeSplit, opts: Partial<LinearProbeOptions>) => trainLinearProbe(train, test, { ...OPTS, ...opts }).then(() => 'resolved', (e: Error) => e.message);
    expect(await message(ok, ok, { epochs: 0 })).toBe('epochs must be a positive integer, got 0');
    expect(await message(ok, ok, { epochs: 1.5 })).toBe('epochs must be a positive integer, got 1.5');
    expect(await message(ok, ok, { batchSize: 0 })).toBe('batchSize must be a positive integer, got 0');
    expect(await message(ok, ok, { batchSize: 2.5 })).toBe('batchSize must be a positive integer, got 2.5');
    expect(await message(ok, ok, { learningRate: 0 })).toBe('learningRate must be positive, got 0');
    expect(await message(ok, ok, { learningRate: Number.NaN })).toBe('learningRate must be positive, got NaN');
    expect(await message(ok, ok, { classes: 2.5 })).toBe('classes must be an integer >= 2, got 2.5');
    // One class: the training labels (all 0 here) pass the check against 2, the option does not.
    const zeros = { ...ok, y: new Uint8Array(6) };
    expect(await message(zeros, zeros, { classes: 1 })).toBe('classes must be an integer >= 2, got 1');
    // The training split is checked first, by its own name.
    expect(await message({ ...ok, n: 0 }, ok, {})).toBe('train: n and dim must be positive integers, got n=0 dim=2');
    expect(await message({ ...ok, n: 2.5 }, ok, {})).toBe('train: n and dim must be positive integers, got n=2.5 dim=2');
    expect(await message({ ...ok, dim: 0 }, ok, {})).toBe('train: n and dim must be positive integers, got n=6 dim=0');
    expect(await message({ ...ok, dim: 1.5 }, ok, {})).toBe('train: n and dim must be positive integers, got n=6 dim=1.5');
    expect(await message({ ...ok, n: 5 }, ok, {})).toBe('train: x has 12 values, expected 5x2');
    expect(await message({ ...ok, y: new Uint8Array(5) }, ok, {})).toBe('train: y has 5 labels, expected 6');
    expect(await message(ok, ok, { classes: 2 })).toBe('train: label 2 at row 2 is outside 0..1');
    expect(await message(ok, { ...ok, y: Uint8Array.from([0, 1, 2, 3, 0, 1]) }, {})).toBe('test[0]: label 3 at row 3 is outside 0..2');
    expect(await message(ok, features(6, 3, 9), {})).toBe('test dim 3 differs from train dim 2');
    await refuse(ok, { ...ok, n: 5 }, {});
    // Several probes: one test split each, and one feature matrix each per epoch, of the right size.
    const source = (epoch: (e: number) => Float32Array[], dims = [2]) => ({ n: 6, y: ok.y, dims, epoch });
    expect(await trainLinearProbes(source(() => [ok.x]), [ok, ok], OPTS).then(() => 'resolved', (e: Error) => e.message)).toBe('1 training feature sets but 2 test sets');
    expect(await trainLinearProbes(source(() => []), [ok], OPTS).then(() => 'resolved', (e: Error) => e.message)).toBe('epoch 0: 0 feature sets, expected 1');
    expect(await trainLinearProbes(source((e) => [e === 0 ? ok.x : ok.x.subarray(2)]), [ok], OPTS).then(() => 'resolved', (e: Error) => e.message)).toBe('train[0]: x has 10 values, expected 6x2');
    expect(tf.memory().numTensors).toBe(before);
    // Labels up to classes - 1 are fine, and two classes are enough.
    await expect(trainLinearProbe(ok, ok, { ...OPTS, epochs: 1 })).resolves.toMatchObject({ accuracy: expect.any(Number) });
    const two = { ...ok, y: Uint8Array.from([0, 1, 0, 1, 0, 1]) };
    await expect(trainLinearProbe(two, two, { ...OPTS, epochs: 1, classes: 2 })).resolves.toMatchObject({ accuracy: expect.any(Number) });
  });
});
