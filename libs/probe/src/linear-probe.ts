import * as tf from '@tensorflow/tfjs';
import { createRng } from '@ddae/datasets';
import { adamStep } from '@ddae/diffusion';

/** A feature matrix with its labels: `n` rows of `dim` float features, row-major. */
export interface ProbeSplit {
  x: Float32Array;
  y: Uint8Array;
  n: number;
  dim: number;
}

/** Options of {@link trainLinearProbe} (the reference protocol: 15 epochs, batch 128, lr 1e-3, cosine). */
export interface LinearProbeOptions {
  /** Passes over the training split. The reference uses 15. */
  epochs: number;
  /** Rows per step; the last batch of an epoch may be smaller. The reference uses 128. */
  batchSize: number;
  /** Peak Adam learning rate, annealed to 0 by a cosine schedule over all steps. The reference uses 1e-3. */
  learningRate: number;
  /** Seeds the weight initialisation and the batch order of every epoch. */
  seed: number;
  /**
   * Standardise each feature with the training split's mean and standard deviation (features whose
   * standard deviation is below 1e-6 are only centred).
   */
  standardize: boolean;
  /** Number of classes (output units); labels must lie in 0..classes-1. */
  classes: number;
}

/** Test and training top-1 accuracy of the trained probe. */
export interface LinearProbeResult {
  accuracy: number;
  trainAccuracy: number;
}

/** Standard deviations below this count as constant features: centred, not scaled. */
const STD_FLOOR = 1e-6;
/** Rows per forward pass when evaluating. */
const EVAL_CHUNK = 4096;

/** sfc32 seeded through splitmix32: the probe's own small generator (uniform in [0, 1)). */
function shuffleInPlace(order: Int32Array, rng: () => number): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

function checkSplit(split: ProbeSplit, name: string, classes: number): void {
  if (!Number.isInteger(split.n) || split.n <= 0 || !Number.isInteger(split.dim) || split.dim <= 0) {
    throw new RangeError(`${name}: n and dim must be positive integers, got n=${split.n} dim=${split.dim}`);
  }
  if (split.x.length !== split.n * split.dim) throw new RangeError(`${name}: x has ${split.x.length} values, expected ${split.n}x${split.dim}`);
  if (split.y.length !== split.n) throw new RangeError(`${name}: y has ${split.y.length} labels, expected ${split.n}`);
  for (let i = 0; i < split.n; i++) {
    if (split.y[i] >= classes) throw new RangeError(`${name}: label ${split.y[i]} at row ${i} is outside 0..${classes - 1}`);
  }
}

/**
 * Per-feature mean and 1/std (population std) of the rows of `x`, accumulated in float64; 1/std is 1
 * for (near-)constant features, which are then only centred.
 */
function standardization(x: Float32Array, n: number, dim: number): { mean: Float32Array; invStd: Float32Array } {
  const sum = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const row = r * dim;
    for (let d = 0; d < dim; d++) sum[d] += x[row + d];
  }
  const mean = new Float32Array(dim);
  for (let d = 0; d < dim; d++) mean[d] = sum[d] / n;
  const sq = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const row = r * dim;
    for (let d = 0; d < dim; d++) {
      const c = x[row + d] - mean[d];
      sq[d] += c * c;
    }
  }
  const invStd = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    const std = Math.sqrt(sq[d] / n);
    invStd[d] = std < STD_FLOOR ? 1 : 1 / std;
  }
  return { mean, invStd };
}

/** (x - mean) * invStd, row by row, into a new array (the caller's features are never modified). */
function applyStandardization(x: Float32Array, n: number, dim: number, s: { mean: Float32Array; invStd: Float32Array }): Float32Array {
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const row = r * dim;
    for (let d = 0; d < dim; d++) out[row + d] = (x[row + d] - s.mean[d]) * s.invStd[d];
  }
  return out;
}

/**
 * Training features that may change from epoch to epoch (the reference protocol recomputes them from
 * augmented images, with fresh noise): one `n x dims[k]` matrix per probe, asked once per epoch in
 * order. Returning the same arrays every epoch is the fast protocol on cached features.
 */
export interface EpochFeatureSource {
  n: number;
  y: Uint8Array;
  dims: number[];
  epoch(epoch: number): Float32Array[] | Promise<Float32Array[]>;
}

/**
 * Trains one linear layer (softmax regression, cross-entropy loss) on `train` and reports top-1
 * accuracy on `test` and on `train`. Adam (beta 0.9 / 0.999, eps 1e-8, no weight decay) with the
 * learning rate annealed by a cosine schedule over all epochs x ceil(n / batchSize) steps; weights
 * and bias initialised uniformly in +-1/sqrt(dim) (PyTorch's nn.Linear default) from `seed`, which
 * also fixes each epoch's batch order. Gradients are the closed-form softmax-regression ones.
 *
 * Runs on the active TensorFlow.js backend (the caller selects it); leaves no tensors behind.
 * Features stay in host memory (standardised into one copy when asked); each batch's rows are
 * copied into a fresh array and uploaded, which is faster than a backend gather on wasm and cpu and
 * keeps the backend's memory small (the wasm heap holds only the weights and one batch).
 */
export async function trainLinearProbe(train: ProbeSplit, test: ProbeSplit, opts: LinearProbeOptions): Promise<LinearProbeResult> {
  checkSplit(train, 'train', Math.max(2, opts.classes));
  const [result] = await trainLinearProbes({ n: train.n, y: train.y, dims: [train.dim], epoch: () => [train.x] }, [test], opts);
  return result;
}

/**
 * Trains one linear probe per feature matrix of `train` in lockstep, epoch by epoch, so that one
 * feature pass per epoch (one forward pass tapping every layer) serves every probe. Each probe is
 * exactly {@link trainLinearProbe} with the same options: its own generator seeded with `seed`,
 * standardisation statistics from the first epoch's features, training accuracy on the last
 * epoch's features, test accuracy on `tests[k]`.
 */
export async function trainLinearProbes(train: EpochFeatureSource, tests: ProbeSplit[], opts: LinearProbeOptions): Promise<LinearProbeResult[]> {
  const { epochs, batchSize, learningRate, seed, standardize, classes } = opts;
  if (!Number.isInteger(epochs) || epochs <= 0) throw new RangeError(`epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!(learningRate > 0)) throw new RangeError(`learningRate must be positive, got ${learningRate}`);
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`classes must be an integer >= 2, got ${classes}`);
  if (tests.length !== train.dims.length) throw new RangeError(`${train.dims.length} training feature sets but ${tests.length} test sets`);
  tests.forEach((t, k) => {
    checkSplit(t, `test[${k}]`, classes);
    if (t.dim !== train.dims[k]) throw new RangeError(`test dim ${t.dim} differs from train dim ${train.dims[k]}`);
  });
  const n = train.n;

  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  // A variable shares its initial tensor's data; dispose the initial tensor so nothing leaks.
  const variable = (init: tf.Tensor2D): tf.Variable => {
    const v = tf.variable(init);
    init.dispose();
    return keep(v);
  };
  interface ProbeState {
    dim: number;
    rng: () => number;
    order: Int32Array;
    stats?: { mean: Float32Array; invStd: Float32Array };
    /** The last raw features seen and their standardised copy (reused while the source repeats them). */
    raw?: Float32Array;
    x?: Float32Array;
    w: tf.Variable;
    b: tf.Variable;
    mW: tf.Variable;
    vW: tf.Variable;
    mB: tf.Variable;
    vB: tf.Variable;
  }
  try {
    const probes: ProbeState[] = [];
    const stepsPerEpoch = Math.ceil(n / batchSize);
    const totalSteps = epochs * stepsPerEpoch;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const features = await train.epoch(epoch);
      if (features.length !== train.dims.length) throw new RangeError(`epoch ${epoch}: ${features.length} feature sets, expected ${train.dims.length}`);
      features.forEach((x, k) => checkSplit({ x, y: train.y, n, dim: train.dims[k] }, `train[${k}]`, classes));
      if (epoch === 0) {
        for (const [k, x] of features.entries()) {
          const dim = train.dims[k];
          const rng = createRng(seed);
          const stats = standardize ? standardization(x, n, dim) : undefined;
          const bound = 1 / Math.sqrt(dim);
          const initSeed = Math.floor(rng() * 2 ** 31);
          probes.push({
            dim,
            rng,
            order: Int32Array.from({ length: n }, (_, i) => i),
            stats,
            w: variable(tf.randomUniform([dim, classes], -bound, bound, 'float32', initSeed)),
            b: variable(tf.randomUniform([1, classes], -bound, bound, 'float32', initSeed + 1)),
            mW: variable(tf.zeros([dim, classes])),
            vW: variable(tf.zeros([dim, classes])),
            mB: variable(tf.zeros([1, classes])),
            vB: variable(tf.zeros([1, classes])),
          });
        }
      }
      for (const [k, p] of probes.entries()) {
        const raw = features[k];
        if (raw !== p.raw) {
          p.raw = raw;
          p.x = p.stats ? applyStandardization(raw, n, p.dim, p.stats) : raw;
        }
        const xTrain = p.x as Float32Array;
        const { dim, order, w, b, mW, vW, mB, vB } = p;
        shuffleInPlace(order, p.rng);
        let step = epoch * stepsPerEpoch;
        for (let start = 0; start < n; start += batchSize) {
          const idx = order.subarray(start, Math.min(start + batchSize, n));
          const lr = 0.5 * learningRate * (1 + Math.cos((Math.PI * step) / totalSteps));
          step++;
          const rows = idx.length;
          const xBatch = new Float32Array(rows * dim);
          const yBatch = new Float32Array(rows * classes);
          for (let r = 0; r < rows; r++) {
            const from = idx[r] * dim;
            xBatch.set(xTrain.subarray(from, from + dim), r * dim);
            yBatch[r * classes + train.y[idx[r]]] = 1;
          }
          tf.tidy(() => {
            const xb = tf.tensor2d(xBatch, [rows, dim]);
            const yb = tf.tensor2d(yBatch, [rows, classes]);
            const probs = tf.softmax(tf.add(tf.matMul(xb, w), b));
            // d(mean cross-entropy)/d(logits) = (softmax - onehot) / batch.
            const gLogits = tf.div(tf.sub(probs, yb), rows);
            const gW = tf.matMul(xb, gLogits, true, false);
            const gB = tf.sum(gLogits, 0, true);
            adamStep(
              [
                { param: w, m: mW, v: vW },
                { param: b, m: mB, v: vB },
              ],
              [gW, gB],
              { step, lr, epsilon: 'folded' },
            );
          });
        }
      }
      // Let the event loop run (IPC, timers) between epochs.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }

    const evaluate = async (p: ProbeState, x: Float32Array, labels: Uint8Array): Promise<number> => {
      const { dim, w, b } = p;
      let correct = 0;
      for (let start = 0; start < labels.length; start += EVAL_CHUNK) {
        const end = Math.min(start + EVAL_CHUNK, labels.length);
        const pred = tf.tidy(() => tf.argMax(tf.add(tf.matMul(tf.tensor2d(x.subarray(start * dim, end * dim), [end - start, dim]), w), b), 1));
        let got: ArrayLike<number>;
        try {
          got = (await pred.data()) as ArrayLike<number>;
        } finally {
          pred.dispose();
        }
        for (let i = 0; i < got.length; i++) if (got[i] === labels[start + i]) correct++;
      }
      return correct / labels.length;
    };
    const results: LinearProbeResult[] = [];
    for (const [k, p] of probes.entries()) {
      const test = tests[k];
      const xTest = p.stats ? applyStandardization(test.x, test.n, p.dim, p.stats) : test.x;
      results.push({ accuracy: await evaluate(p, xTest, test.y), trainAccuracy: await evaluate(p, p.x as Float32Array, train.y) });
    }
    return results;
  } finally {
    for (const t of owned) t.dispose();
  }
}
