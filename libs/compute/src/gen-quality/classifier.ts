import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { createRng, loadDataset, seededOrder, toModelInput, type LabeledImages } from '@ddae/datasets';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '@ddae/diffusion';

/**
 * The feature extractor of the project's generation-quality metrics (FID, KID): a small CNN trained
 * once on the Fashion-MNIST training split by `npm run -s train-fid-classifier` (fixed seed) and
 * committed as a safetensors file beside this library. Its sha256 is pinned here, so a metric names
 * exactly the weights it was computed with; nothing is downloaded.
 *
 * Architecture (v1): 28x28x1 input in [-1, 1] (the model-input scaling, uncropped of its padding) ->
 * conv 3x3 16 + ReLU + max-pool 2 -> conv 3x3 32 + ReLU + max-pool 2 -> conv 3x3 64 + ReLU +
 * max-pool 2 (3x3x64) -> dense 128 + ReLU (the features: "penultimate", 128-d) -> dense 10 (logits).
 */
export const FID_CLASSIFIER_ID = 'ddae-fmnist-cnn-v1';
/** The feature dimension (the penultimate dense layer). */
export const FID_FEATURE_DIM = 128;
/** How metrics name their feature extractor, e.g. in `FID (ddae-fmnist-cnn-v1 penultimate, 128-d)`. */
export const FID_EXTRACTOR = `${FID_CLASSIFIER_ID} penultimate, ${FID_FEATURE_DIM}-d`;
/** The committed artifact. */
export const FID_CLASSIFIER_FILE = path.resolve(__dirname, '../../assets', `${FID_CLASSIFIER_ID}.safetensors`);
/** sha256 of the committed artifact: loading refuses any other bytes. */
export const FID_CLASSIFIER_SHA256 = 'bb25946a0c7f44f73134d6c3d4fe55019aeb8167253088914fb0f71ab7c73f31';
/** The image size the classifier reads (Fashion-MNIST's, without the model's padding). */
export const FID_IMAGE_SIZE = 28;

const CONVS = [
  { name: 'conv1', in: 1, out: 16 },
  { name: 'conv2', in: 16, out: 32 },
  { name: 'conv3', in: 32, out: 64 },
] as const;
const FLAT = 3 * 3 * 64;
const CLASSES = 10;

/** Parameter names and shapes, in file order (conv kernels HWIO, dense kernels in x out). */
export const FID_CLASSIFIER_SHAPES: ReadonlyArray<[string, number[]]> = [
  ...CONVS.flatMap((c): Array<[string, number[]]> => [
    [`${c.name}.weight`, [3, 3, c.in, c.out]],
    [`${c.name}.bias`, [c.out]],
  ]),
  ['fc1.weight', [FLAT, FID_FEATURE_DIM]],
  ['fc1.bias', [FID_FEATURE_DIM]],
  ['fc2.weight', [FID_FEATURE_DIM, CLASSES]],
  ['fc2.bias', [CLASSES]],
];

export type ClassifierParams = Map<string, tf.Tensor>;

/** Features (post-ReLU penultimate) and logits of a batch [n, 28, 28, 1]. */
export function classifierForward(params: ClassifierParams, x: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
  const p = (name: string): tf.Tensor => {
    const t = params.get(name);
    if (!t) throw new Error(`FID classifier: parameter ${name} missing`);
    return t;
  };
  let h: tf.Tensor4D = x;
  for (const c of CONVS) {
    h = tf.relu(tf.add(tf.conv2d(h, p(`${c.name}.weight`) as tf.Tensor4D, 1, 'same'), p(`${c.name}.bias`)));
    h = tf.maxPool(h, 2, 2, 'valid');
  }
  const flat = tf.reshape(h, [x.shape[0], FLAT]) as tf.Tensor2D;
  const features = tf.relu(tf.add(tf.matMul(flat, p('fc1.weight') as tf.Tensor2D), p('fc1.bias'))) as tf.Tensor2D;
  const logits = tf.add(tf.matMul(features, p('fc2.weight') as tf.Tensor2D), p('fc2.bias')) as tf.Tensor2D;
  return { features, logits };
}

/** The artifact's bytes, hash-checked. */
export class FidClassifierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FidClassifierError';
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses classifier weights from safetensors bytes, checking every tensor's name and shape. */
export function classifierParamsFromSafetensors(bytes: Uint8Array): { params: ClassifierParams; metadata: Record<string, string> } {
  const file = readSafetensors(bytes);
  const params: ClassifierParams = new Map();
  for (const [name, shape] of FID_CLASSIFIER_SHAPES) {
    const t = file.tensors.get(name);
    if (!t) throw new FidClassifierError(`FID classifier: tensor ${name} missing`);
    if (t.shape.join('x') !== shape.join('x')) throw new FidClassifierError(`FID classifier: tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    params.set(name, tf.tensor(t.data, shape));
  }
  return { params, metadata: file.metadata };
}

/**
 * Loads the committed classifier, refusing bytes whose sha256 is not the pinned one (a retrained
 * classifier is a new extractor: a new id and a new pin, never a silent swap).
 */
export function loadFidClassifier(file = FID_CLASSIFIER_FILE, expectedSha256 = FID_CLASSIFIER_SHA256): { params: ClassifierParams; metadata: Record<string, string>; sha256: string } {
  if (!fs.existsSync(file)) throw new FidClassifierError(`FID classifier ${file} is missing: it is committed with the repository (npm run -s train-fid-classifier rebuilds it)`);
  const bytes = fs.readFileSync(file);
  const hash = sha256(bytes);
  if (hash !== expectedSha256) throw new FidClassifierError(`FID classifier ${file} has sha256 ${hash}, expected ${expectedSha256} (the pinned ${FID_CLASSIFIER_ID})`);
  return { ...classifierParamsFromSafetensors(bytes), sha256: hash };
}

export function disposeParams(params: ClassifierParams): void {
  for (const t of params.values()) t.dispose();
}

/**
 * Classifier features of `n` images, NHWC float32 in [-1, 1] of size `size` x `size` x 1 (a model's
 * samples or `toModelInput`), centre-cropped to 28x28 and clipped to [-1, 1]: `n x 128`. Read
 * asynchronously: on webgpu (Dawn in Node) a synchronous read of a GPU tensor throws.
 */
export async function classifierFeatures(params: ClassifierParams, images: Float32Array, n: number, size: number, opts: { batch?: number } = {}): Promise<Float32Array> {
  if (images.length !== n * size * size) throw new RangeError(`classifierFeatures: ${images.length} values for ${n} images of ${size}x${size}x1 (the classifier reads one channel)`);
  if (size < FID_IMAGE_SIZE) throw new RangeError(`classifierFeatures: images of ${size}x${size} are smaller than the classifier's ${FID_IMAGE_SIZE}x${FID_IMAGE_SIZE}`);
  const off = Math.floor((size - FID_IMAGE_SIZE) / 2);
  const batch = opts.batch ?? 256;
  const out = new Float32Array(n * FID_FEATURE_DIM);
  for (let start = 0; start < n; start += batch) {
    const m = Math.min(batch, n - start);
    const feats = tf.tidy(() => {
      let x = tf.tensor4d(images.subarray(start * size * size, (start + m) * size * size), [m, size, size, 1]);
      if (off > 0 || size !== FID_IMAGE_SIZE) x = tf.slice(x, [0, off, off, 0], [m, FID_IMAGE_SIZE, FID_IMAGE_SIZE, 1]);
      return classifierForward(params, tf.clipByValue(x, -1, 1)).features;
    });
    try {
      out.set((await feats.data()) as Float32Array, start * FID_FEATURE_DIM);
    } finally {
      feats.dispose();
    }
  }
  return out;
}

/** Top-1 accuracy of the classifier on labelled images (read asynchronously, as {@link classifierFeatures}). */
export async function classifierAccuracy(params: ClassifierParams, data: LabeledImages, indices: ArrayLike<number>, batch = 500): Promise<number> {
  let correct = 0;
  for (let start = 0; start < indices.length; start += batch) {
    const idx = Array.from({ length: Math.min(batch, indices.length - start) }, (_, i) => indices[start + i]);
    const pred = tf.tidy(() => tf.argMax(classifierForward(params, tf.tensor4d(toModelInput(data, idx, FID_IMAGE_SIZE), [idx.length, FID_IMAGE_SIZE, FID_IMAGE_SIZE, 1])).logits, 1));
    let p: Int32Array;
    try {
      p = (await pred.data()) as Int32Array;
    } finally {
      pred.dispose();
    }
    for (let i = 0; i < idx.length; i++) if (p[i] === data.labels[idx[i]]) correct++;
  }
  return correct / indices.length;
}

export interface TrainClassifierOptions {
  seed: number;
  epochs: number;
  batch: number;
  learningRate: number;
  /** Train on the first `trainLimit` images of the seeded order (all 60,000 when undefined). */
  trainLimit?: number;
  log?: (line: string) => void;
}

/**
 * Trains the classifier from a seeded He-normal initialisation with Adam on the Fashion-MNIST
 * training split (seeded order per epoch), then measures its test accuracy. Returns the safetensors
 * bytes (metadata: id, seed, recipe, test accuracy) ready to commit.
 */
export async function trainFidClassifier(o: TrainClassifierOptions): Promise<{ bytes: Buffer; testAccuracy: number; trainImages: number }> {
  const log = o.log ?? (() => undefined);
  const train = await loadDataset('fashion-mnist', 'train');
  const test = await loadDataset('fashion-mnist', 'test');
  const rng = createRng(o.seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const vars = new Map<string, tf.Variable>();
  for (const [name, shape] of FID_CLASSIFIER_SHAPES) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('.weight')) {
      const fanIn = shape.length === 4 ? shape[0] * shape[1] * shape[2] : shape[0];
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < size; i++) data[i] = gauss() * std;
    }
    vars.set(name, tf.variable(tf.tensor(data, shape), true, name));
  }
  const params: ClassifierParams = vars;
  const optimizer = tf.train.adam(o.learningRate);
  const count = Math.min(o.trainLimit ?? train.count, train.count);
  const started = Date.now();
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = seededOrder(train.count, o.seed + 1 + epoch).subarray(0, count);
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start + o.batch <= count; start += o.batch) {
      const idx = order.subarray(start, start + o.batch);
      const xs = tf.tensor4d(toModelInput(train, idx, FID_IMAGE_SIZE), [idx.length, FID_IMAGE_SIZE, FID_IMAGE_SIZE, 1]);
      const ys = tf.oneHot(tf.tensor1d(Array.from(idx, (i) => train.labels[i]), 'int32'), CLASSES);
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, classifierForward(params, xs).logits) as tf.Scalar, true, [...vars.values()]);
      lossSum += loss ? (await loss.data())[0] : NaN;
      loss?.dispose();
      xs.dispose();
      ys.dispose();
      batches++;
      if (batches % 50 === 0) log(`epoch ${epoch + 1}/${o.epochs} batch ${batches}: loss ${(lossSum / batches).toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    log(`epoch ${epoch + 1}/${o.epochs}: mean loss ${(lossSum / batches).toFixed(4)}`);
  }
  const testAccuracy = await classifierAccuracy(params, test, Array.from({ length: test.count }, (_, i) => i));
  log(`test accuracy ${(testAccuracy * 100).toFixed(2)} % on ${test.count} images`);
  const tensors = new Map<string, TensorToWrite>();
  // Read asynchronously: the script selects the backend with `auto`, which may be webgpu.
  for (const [name, shape] of FID_CLASSIFIER_SHAPES) tensors.set(name, { shape, data: (await (vars.get(name) as tf.Variable).data()) as Float32Array });
  const bytes = writeSafetensors(tensors, {
    id: FID_CLASSIFIER_ID,
    architecture: 'conv3x3(16)-relu-maxpool2, conv3x3(32)-relu-maxpool2, conv3x3(64)-relu-maxpool2, dense(128)-relu [features], dense(10); input 28x28x1 in [-1, 1]',
    trainedOn: `fashion-mnist train split, first ${count} of seeded order`,
    recipe: `seed ${o.seed}, adam lr ${o.learningRate}, batch ${o.batch}, epochs ${o.epochs}, He-normal init`,
    testAccuracy: testAccuracy.toFixed(4),
  });
  for (const v of vars.values()) v.dispose();
  optimizer.dispose();
  return { bytes, testAccuracy, trainImages: count };
}
