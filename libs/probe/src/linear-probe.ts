import * as tf from '@tensorflow/tfjs';
import { createRng } from '@ddae/datasets';

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

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;
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
  const { epochs, batchSize, learningRate, seed, standardize, classes } = opts;
  if (!Number.isInteger(epochs) || epochs <= 0) throw new RangeError(`epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!(learningRate > 0)) throw new RangeError(`learningRate must be positive, got ${learningRate}`);
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`classes must be an integer >= 2, got ${classes}`);
  checkSplit(train, 'train', classes);
  checkSplit(test, 'test', classes);
  if (test.dim !== train.dim) throw new RangeError(`test dim ${test.dim} differs from train dim ${train.dim}`);
  const dim = train.dim;

  const rng = createRng(seed);
  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    const stats = standardize ? standardization(train.x, train.n, dim) : undefined;
    const xTrain = stats ? applyStandardization(train.x, train.n, dim, stats) : train.x;
    const xTest = stats ? applyStandardization(test.x, test.n, dim, stats) : test.x;

    const bound = 1 / Math.sqrt(dim);
    const initSeed = Math.floor(rng() * 2 ** 31);
    // A variable shares its initial tensor's data; dispose the initial tensor so nothing leaks.
    const variable = (init: tf.Tensor2D): tf.Variable => {
      const v = tf.variable(init);
      init.dispose();
      return keep(v);
    };
    const w = variable(tf.randomUniform([dim, classes], -bound, bound, 'float32', initSeed));
    const b = variable(tf.randomUniform([1, classes], -bound, bound, 'float32', initSeed + 1));
    const mW = variable(tf.zeros([dim, classes]));
    const vW = variable(tf.zeros([dim, classes]));
    const mB = variable(tf.zeros([1, classes]));
    const vB = variable(tf.zeros([1, classes]));

    const stepsPerEpoch = Math.ceil(train.n / batchSize);
    const totalSteps = epochs * stepsPerEpoch;
    const order = Int32Array.from({ length: train.n }, (_, i) => i);
    let step = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      shuffleInPlace(order, rng);
      for (let start = 0; start < train.n; start += batchSize) {
        const idx = order.subarray(start, Math.min(start + batchSize, train.n));
        const lr = 0.5 * learningRate * (1 + Math.cos((Math.PI * step) / totalSteps));
        step++;
        // Adam's bias corrections folded into the step size.
        const alpha = (lr * Math.sqrt(1 - ADAM_BETA2 ** step)) / (1 - ADAM_BETA1 ** step);
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
          for (const [param, m, v, g] of [
            [w, mW, vW, gW],
            [b, mB, vB, gB],
          ] as const) {
            const m1 = tf.add(tf.mul(m, ADAM_BETA1), tf.mul(g, 1 - ADAM_BETA1));
            const v1 = tf.add(tf.mul(v, ADAM_BETA2), tf.mul(tf.square(g), 1 - ADAM_BETA2));
            m.assign(m1);
            v.assign(v1);
            param.assign(tf.sub(param, tf.mul(tf.div(m1, tf.add(tf.sqrt(v1), ADAM_EPSILON)), alpha)));
          }
        });
      }
      // Let the event loop run (IPC, timers) between epochs.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }

    const evaluate = (x: Float32Array, labels: Uint8Array): number => {
      let correct = 0;
      for (let start = 0; start < labels.length; start += EVAL_CHUNK) {
        const end = Math.min(start + EVAL_CHUNK, labels.length);
        const pred = tf.tidy(() => tf.argMax(tf.add(tf.matMul(tf.tensor2d(x.subarray(start * dim, end * dim), [end - start, dim]), w), b), 1));
        const p = pred.dataSync();
        pred.dispose();
        for (let i = 0; i < p.length; i++) if (p[i] === labels[start + i]) correct++;
      }
      return correct / labels.length;
    };
    const trainAccuracy = evaluate(xTrain, train.y);
    const accuracy = evaluate(xTest, test.y);
    return { accuracy, trainAccuracy };
  } finally {
    for (const t of owned) t.dispose();
  }
}
