import * as tf from '@tensorflow/tfjs';
import { DATASET_SHAPES, type ComputeHooks, type Method, type Pooling, type ProbeResult, type ProbeTask } from '@ddae/contracts';
import { augmentationFor, balancedSubset, createRng, loadDataset, randomCropFlip, seededOrder, toModelInput, type AugmentationOptions, type LabeledImages } from '@ddae/datasets';
import { adamStep, extractFeatures, fixedNoise, loadForInference, noiseInputCoefficients, pooledDim, poolTap, type AdamSlot, type Backbone } from '@ddae/diffusion';
import { ProbeStoppedError, freshNoiseSeed } from './probe.task';

/** Offset of the test split's noise seed, as the linear probe's (train image i and test image i never share a draw). */
const TEST_NOISE_OFFSET = 0x7e57;
/** Images per evaluation pass. */
const EVAL_BATCH = 64;

/** Training and test images of one fine-tuning, at the model's input size. */
export interface FinetuneData {
  /** Training images, NHWC in [-1, 1] (un-augmented). */
  trainX: Float32Array;
  trainY: Uint8Array;
  /** Noise key of each training image (its index in the split): fixed noise depends only on it. */
  trainKeys: ArrayLike<number>;
  testX: Float32Array;
  testY: Uint8Array;
  testKeys: ArrayLike<number>;
  classes: number;
}

export interface FinetuneOptions {
  method: Method;
  noiseLevel: number;
  layer: string;
  pooling: Pooling;
  /** `fixed`: one draw per image (its key); `fresh`: a new draw per epoch. */
  noise: 'fixed' | 'fresh';
  noiseSeed: number;
  epochs: number;
  batchSize: number;
  /** Peak Adam learning rate of every parameter (network and head), annealed to 0 by a cosine schedule over all steps. */
  learningRate: number;
  /** Random crop (pad) and flip every epoch; null: the images as they are. */
  augment: AugmentationOptions | null;
  /** Standardise the pooled tap with the statistics of the network's features before fine-tuning (a fixed affine map in front of the head). */
  standardize: boolean;
  /** Seed of the batch order and the augmentation. */
  seed: number;
  /** Called before every batch: a stop request ends the fine-tuning (throws {@link ProbeStoppedError}). */
  shouldStop?: () => boolean;
  progress?: (fraction: number, message: string) => void;
}

export interface FinetuneOutcome {
  accuracy: number;
  /** Accuracy on the training batches of the last epoch, as they were seen (augmented, noised). */
  trainAccuracy: number;
  featureDim: number;
}

/** Per-dimension mean and 1 / std of `x` (n x dim); dimensions whose std is below 1e-6 are only centred. */
function standardization(x: Float32Array, n: number, dim: number): { mean: Float32Array; invStd: Float32Array } {
  const mean = new Float32Array(dim);
  const invStd = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * dim + j];
    const m = s / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i * dim + j] - m) ** 2;
    const sd = Math.sqrt(v / n);
    mean[j] = m;
    invStd[j] = sd < 1e-6 ? 1 : 1 / sd;
  }
  return { mean, invStd };
}

/**
 * Fine-tunes `net` in place at one (layer, noise level): the network up to `layer` (`forward`'s
 * `until`: the blocks after it are never run, so they get no gradient and keep their weights), the
 * tap pooled as the linear probe pools it, standardised by the statistics of the features before
 * fine-tuning, then a linear head (zeros at the start) trained with them end to end on the mean
 * cross-entropy. Every image is noised as the feature pass noises it (`a x + b eps`, the time input
 * fixed at the noise level); `eps` is the image's fixed noise, or under `fresh` a new draw per epoch.
 * Dropout is off (the features the probe chose are those of the network without it).
 * Optimiser: Adam through the diffusion trainer's {@link adamStep} in its `corrected` form
 * (PyTorch's, the pretraining's: fine-tuning updates the same network, and on the native backend
 * that is the fused kernel), no weight decay, no clipping, a cosine schedule from `learningRate`.
 * Test accuracy: the fine-tuned network's features of the test images (one fixed noise draw,
 * seeded apart from training's), through the same standardisation and head.
 */
export async function finetuneCell(net: Backbone, data: FinetuneData, opts: FinetuneOptions): Promise<FinetuneOutcome> {
  const block = net.layout.find((b) => b.name === opts.layer);
  if (!block) throw new Error(`unknown layer "${opts.layer}"; known: ${net.layout.map((b) => b.name).join(', ')}`);
  const dim = pooledDim(opts.pooling, block.resolution, block.channels);
  const { imageSize: s, imageChannels: c } = net.config;
  const d = s * s * c;
  const n = data.trainY.length;
  const classes = data.classes;
  if (data.trainX.length !== n * d) throw new Error(`trainX: ${data.trainX.length} values, expected ${n} x ${d}`);
  const { a, b: nb, tIn } = noiseInputCoefficients(opts.method, opts.noiseLevel);

  const before = await extractFeatures(net, opts.method, data.trainX, n, opts.noiseLevel, [opts.layer], { pooling: opts.pooling, noiseSeed: opts.noiseSeed, noiseKeys: data.trainKeys });
  const stats = opts.standardize ? standardization(before[opts.layer], n, dim) : { mean: new Float32Array(dim), invStd: new Float32Array(dim).fill(1) };
  const mean = tf.tensor2d(stats.mean, [1, dim]);
  const invStd = tf.tensor2d(stats.invStd, [1, dim]);
  // tf.variable keeps its initial value's data alive: made in a tidy, the initial tensor goes.
  const zeros = (shape: number[]): tf.Variable => tf.tidy(() => tf.variable(tf.zeros(shape), true));
  const w = zeros([dim, classes]);
  const bias = zeros([1, classes]);
  const vars = [...net.params.values(), w, bias];
  /** Adam slots of the parameters that receive a gradient (those up to the tap, and the head), made at the first step. */
  const slots = new Map<string, AdamSlot>();
  const stepsPerEpoch = Math.ceil(n / opts.batchSize);
  const totalSteps = opts.epochs * stepsPerEpoch;
  let step = 0;
  let correct = 0;
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const images = opts.augment ? randomCropFlip(data.trainX, n, s, c, opts.augment, createRng(freshNoiseSeed(opts.seed, 1000 + epoch))) : data.trainX;
      const order = seededOrder(n, freshNoiseSeed(opts.seed, 2000 + epoch));
      const noiseSeed = opts.noise === 'fresh' ? freshNoiseSeed(opts.noiseSeed, epoch) : opts.noiseSeed;
      correct = 0;
      for (let start = 0; start < n; start += opts.batchSize) {
        if (opts.shouldStop?.()) throw new ProbeStoppedError('fine-tuning stopped before finishing');
        const rows = order.subarray(start, Math.min(start + opts.batchSize, n));
        const m = rows.length;
        const x = new Float32Array(m * d);
        const y = new Float32Array(m * classes);
        for (let r = 0; r < m; r++) {
          const i = rows[r];
          const eps = nb !== 0 ? fixedNoise(noiseSeed, data.trainKeys[i], d) : undefined;
          for (let j = 0; j < d; j++) x[r * d + j] = a * images[i * d + j] + (eps ? nb * eps[j] : 0);
          y[r * classes + data.trainY[i]] = 1;
        }
        const lr = 0.5 * opts.learningRate * (1 + Math.cos((Math.PI * step) / totalSteps));
        step++;
        let predicted: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const { output } = net.forward(tf.tensor4d(x, [m, s, s, c]), tf.fill([m], tIn) as tf.Tensor1D, { training: false, until: opts.layer });
          const z = tf.mul(tf.sub(poolTap(output, opts.pooling), mean), invStd);
          const logits = tf.add(tf.matMul(z, w), bias);
          predicted = tf.keep(tf.argMax(logits, 1));
          return tf.losses.softmaxCrossEntropy(tf.tensor2d(y, [m, classes]), logits) as tf.Scalar;
        }, vars);
        try {
          const names = Object.keys(grads);
          for (const name of names) {
            if (slots.has(name)) continue;
            const param = vars.find((v) => v.name === name);
            if (!param) throw new Error(`a gradient for an unknown variable ${name}`);
            slots.set(name, tf.tidy(() => ({ param, m: tf.variable(tf.zerosLike(param), false), v: tf.variable(tf.zerosLike(param), false) })));
          }
          adamStep(
            names.map((k) => slots.get(k) as AdamSlot),
            names.map((k) => grads[k]),
            { step, lr, epsilon: 'corrected' },
          );
          const loss = (await value.data())[0];
          if (!Number.isFinite(loss)) throw new Error(`fine-tuning diverged (loss ${loss} at step ${step}): lower the learning rate`);
          const p = (await (predicted as tf.Tensor).data()) as Int32Array;
          for (let r = 0; r < m; r++) if (p[r] === data.trainY[rows[r]]) correct++;
        } finally {
          tf.dispose([value, predicted as tf.Tensor, ...Object.values(grads)]);
        }
        opts.progress?.(step / totalSteps, `epoch ${epoch + 1}/${opts.epochs}`);
      }
    }
    const testN = data.testY.length;
    const after = await extractFeatures(net, opts.method, data.testX, testN, opts.noiseLevel, [opts.layer], { pooling: opts.pooling, noiseSeed: opts.noiseSeed + TEST_NOISE_OFFSET, noiseKeys: data.testKeys, batchSize: EVAL_BATCH });
    const predictedTest = tf.tidy(() => tf.argMax(tf.add(tf.matMul(tf.mul(tf.sub(tf.tensor2d(after[opts.layer], [testN, dim]), mean), invStd), w), bias), 1));
    const labels = (await predictedTest.data()) as Int32Array;
    predictedTest.dispose();
    let right = 0;
    for (let i = 0; i < testN; i++) if (labels[i] === data.testY[i]) right++;
    return { accuracy: testN ? right / testN : 0, trainAccuracy: n ? correct / n : 0, featureDim: dim };
  } finally {
    tf.dispose([mean, invStd, w, bias]);
    for (const slot of slots.values()) tf.dispose([slot.m, slot.v]);
  }
}

function labelsOf(data: LabeledImages, indices: ArrayLike<number>): Uint8Array {
  const y = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) y[i] = data.labels[indices[i]];
  return y;
}

/**
 * A probe task under the `finetune` protocol: for every layer and label budget of the task, the
 * checkpoint's EMA weights loaded afresh and fine-tuned with {@link finetuneCell} at the task's
 * noise level. Rows as the linear probe's: training images the first `trainSize` of the seeded
 * order (a budget: its class-balanced subset of them), test images the first `testSize` of the
 * test split. Results come layer by layer and budget by budget, each with its `labels` (none for all).
 */
export async function runFinetuneTask(task: ProbeTask, hooks: ComputeHooks = {}): Promise<ProbeResult> {
  const started = Date.now();
  const p = task.protocol;
  if (p.probe !== 'finetune') throw new RangeError(`runFinetuneTask: the task's protocol is ${p.probe}, not finetune`);
  const dirOpt = task.dataset.dir !== undefined ? { dir: task.dataset.dir } : {};
  const [train, test] = await Promise.all([loadDataset(task.dataset.name, 'train', dirOpt), loadDataset(task.dataset.name, 'test', dirOpt)]);
  const shape = DATASET_SHAPES[task.dataset.name];
  const trainIdx = seededOrder(train.count, p.probeSeed).subarray(0, Math.min(p.trainSize, train.count));
  const testN = Math.min(p.testSize, test.count);
  const testIdx = Uint32Array.from({ length: testN }, (_, i) => i);
  const trainY = labelsOf(train, trainIdx);
  const testY = labelsOf(test, testIdx);
  const budgets = task.labels ?? (p.labels !== undefined ? [p.labels] : ['all']);
  let testX: Float32Array | null = null;
  const layers: ProbeResult['layers'] = [];
  const cells = task.layers.length * budgets.length;
  let done = 0;
  for (const layer of task.layers) {
    for (const budget of budgets) {
      const { unet: net, manifest } = loadForInference(task.checkpointPath);
      try {
        if (manifest.method !== task.method) throw new Error(`checkpoint ${task.checkpointPath} is ${manifest.method}, task says ${task.method}`);
        const size = manifest.config.imageSize;
        const rows = budget === 'all' ? null : balancedSubset(trainY, budget, shape.classes);
        const keys = rows ? Uint32Array.from(rows, (r) => trainIdx[r]) : trainIdx;
        const data: FinetuneData = {
          trainX: toModelInput(train, keys, size),
          trainY: rows ? Uint8Array.from(rows, (r) => trainY[r]) : trainY,
          trainKeys: keys,
          testX: (testX ??= toModelInput(test, testIdx, size)),
          testY,
          testKeys: testIdx,
          classes: shape.classes,
        };
        const cell = done;
        const outcome = await finetuneCell(net, data, {
          method: task.method,
          noiseLevel: task.noiseLevel,
          layer,
          pooling: p.pooling,
          noise: p.noise,
          noiseSeed: p.noiseSeed,
          epochs: p.epochs,
          batchSize: p.batchSize,
          learningRate: p.learningRate,
          augment: p.augment ? augmentationFor(task.dataset.name) : null,
          standardize: p.standardize,
          seed: p.probeSeed,
          ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
          progress: (f, message) => hooks.progress?.((cell + f) / cells, { message: `fine-tuning ${layer}${budget === 'all' ? '' : ` on ${budget} labels`}: ${message}` }),
        });
        layers.push({ layer, ...(budget === 'all' ? {} : { labels: budget }), accuracy: outcome.accuracy, trainAccuracy: outcome.trainAccuracy, featureDim: outcome.featureDim });
      } finally {
        net.dispose();
      }
      done++;
    }
  }
  hooks.progress?.(1, { message: 'done' });
  const seconds = (Date.now() - started) / 1000;
  return { kind: 'probe', layers, seconds, probeSeconds: seconds };
}
