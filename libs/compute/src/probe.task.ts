import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_SHAPES, type ComputeHooks, type ProbeResult, type ProbeTask } from '@ddae/contracts';
import { augmentationFor, balancedSubset, createRng, loadDataset, randomCropFlip, seededOrder, toModelInput, type LabeledImages } from '@ddae/datasets';
import { extractFeatures, pooledDim } from '@ddae/diffusion';
import { trainLinearProbes } from '@ddae/probe';
import { FeatureCache, type FeatureCacheKey } from './feature-cache';
import { acquireInferenceModel } from './model-cache';

/** Thrown when `hooks.shouldStop()` asks a probe task to stop: it has no partial result to keep. */
export class ProbeStoppedError extends Error {
  override name = 'StoppedError';
}

/** Images per feature forward pass. */
const FEATURE_BATCH = 64;
/** Offset of the test split's noise seed: train image i and test image i never share a noise draw. */
const TEST_NOISE_OFFSET = 0x7e57;

/** The rows `rows` of an `n x dim` row-major matrix. */
function selectRows(matrix: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let k = 0; k < rows.length; k++) out.set(matrix.subarray(rows[k] * dim, (rows[k] + 1) * dim), k * dim);
  return out;
}

function labelsOf(data: LabeledImages, indices: ArrayLike<number>): Uint8Array {
  const y = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) y[i] = data.labels[indices[i]];
  return y;
}

/** Noise seed of epoch `epoch` under fresh noise: a new draw per epoch, still reproducible. */
export function freshNoiseSeed(noiseSeed: number, epoch: number): number {
  return (Math.imul(noiseSeed + 1, 0x27d4eb2d) ^ Math.imul(epoch + 1, 0x165667b1)) >>> 0;
}

/** sha256 of a checkpoint's manifest.json: the checkpoint's identity (it lists every file's sha256). */
export function checkpointChecksum(checkpointPath: string): string {
  return createHash('sha256').update(fs.readFileSync(path.join(checkpointPath, 'manifest.json'))).digest('hex');
}

/**
 * Probes one checkpoint at one noise level: EMA weights from `task.checkpointPath`, features of
 * every requested layer from ONE forward pass per batch, then one linear probe per layer (trained
 * in lockstep) under the task's protocol.
 * - Train rows: first `protocol.trainSize` of `seededOrder(train.count, probeSeed)`; test rows: the
 *   first `protocol.testSize` of the test split. Noise is keyed by the image's index in its split.
 * - `fast`: training features extracted once (fixed noise) and read from / written to the feature
 *   cache when `task.featureCacheDir` is set.
 * - `reference`: training features recomputed every epoch from augmented images (random crop with
 *   pad 4, flip except on digits), with the fixed noise of each image or, under `fresh` noise, a new
 *   draw per epoch.
 * Test features (no augmentation, one noise draw) are cacheable under every protocol.
 * - Label budgets (`task.labels`, default [all]): one linear probe per layer and budget, a budget
 *   `N` trained on the class-balanced subset {@link balancedSubset} of N of the training rows. Under
 *   `fast` the training features are extracted ONCE and every budget reads its rows; under
 *   `reference` (features recomputed every epoch) each budget's probe extracts its own rows.
 *   Results come budget by budget, each with its `labels` (none for `all`).
 */
export async function runProbeTask(task: ProbeTask, hooks: ComputeHooks = {}): Promise<ProbeResult> {
  const started = Date.now();
  const p = task.protocol;
  if (p.noise === 'fresh' && p.probe === 'fast') throw new RangeError('fresh noise needs the reference protocol (features recomputed every epoch)');
  const stopIfAsked = (): void => {
    if (hooks.shouldStop?.()) throw new ProbeStoppedError('probe task stopped before finishing');
  };
  const dirOpt = task.dataset.dir !== undefined ? { dir: task.dataset.dir } : {};
  const [train, test] = await Promise.all([loadDataset(task.dataset.name, 'train', dirOpt), loadDataset(task.dataset.name, 'test', dirOpt)]);
  const trainIdx = seededOrder(train.count, p.probeSeed).subarray(0, Math.min(p.trainSize, train.count));
  const testN = Math.min(p.testSize, test.count);
  const testIdx = Uint32Array.from({ length: testN }, (_, i) => i);
  const shape = DATASET_SHAPES[task.dataset.name];
  const cache = task.featureCacheDir ? new FeatureCache(task.featureCacheDir) : null;
  const checkpoint = cache ? checkpointChecksum(task.checkpointPath) : '';
  // Loaded once per checkpoint by a warm compute child (see model-cache.ts); released, not disposed.
  const model = acquireInferenceModel(task.checkpointPath);
  const { unet, manifest } = model;
  // The images go in at the size the model was trained on (its manifest says; e.g. 28 unpadded, or 32).
  const size = manifest.config.imageSize;
  let featureMs = 0;
  try {
    if (manifest.method !== task.method) throw new Error(`checkpoint ${task.checkpointPath} is ${manifest.method}, task says ${task.method}`);
    const extract = async (images: Float32Array, indices: Uint32Array, noiseSeed: number): Promise<Record<string, Float32Array>> => {
      const t0 = Date.now();
      const out = await extractFeatures(unet, task.method, images, indices.length, task.noiseLevel, task.layers, { pooling: p.pooling, noiseSeed, batchSize: FEATURE_BATCH, noiseKeys: indices });
      featureMs += Date.now() - t0;
      return out;
    };
    const dims = Object.fromEntries(task.layers.map((l) => [l, 0]));
    /** Features of un-augmented images with one noise draw, through the cache when there is one. */
    const cachedFeatures = async (split: 'train' | 'test', data: LabeledImages, indices: Uint32Array, slice: string, noiseSeed: number): Promise<Record<string, Float32Array>> => {
      const keyOf = (layer: string): FeatureCacheKey => ({ checkpoint, method: task.method, noiseLevel: task.noiseLevel, noiseSeed, split, slice, pooling: p.pooling, layer });
      if (cache) {
        const found: Record<string, Float32Array> = {};
        for (const layer of task.layers) {
          const block = unet.layout.find((b) => b.name === layer);
          if (!block) throw new Error(`unknown layer "${layer}"`);
          const dim = pooledDim(p.pooling, block.resolution, block.channels);
          const hit = cache.get(keyOf(layer), indices.length * dim);
          if (!hit) break;
          found[layer] = hit;
        }
        if (Object.keys(found).length === task.layers.length) return found;
      }
      const out = await extract(toModelInput(data, indices, size), indices, noiseSeed);
      if (cache) for (const layer of task.layers) cache.put(keyOf(layer), out[layer]);
      return out;
    };

    stopIfAsked();
    hooks.progress?.(0, { message: 'test features' });
    const testX = await cachedFeatures('test', test, testIdx, `first=${testN}`, p.noiseSeed + TEST_NOISE_OFFSET);
    for (const l of task.layers) dims[l] = testX[l].length / testN;
    const trainY = labelsOf(train, trainIdx);
    const testY = labelsOf(test, testIdx);
    const budgets = task.labels ?? ['all'];
    /** Each budget's rows: positions in the training pool (`all`: every one). */
    const subsets = budgets.map((budget) => (budget === 'all' ? null : balancedSubset(trainY, budget, shape.classes)));

    let fixedTrain: Record<string, Float32Array> | null = null;
    if (p.probe === 'fast') {
      stopIfAsked();
      hooks.progress?.(0.2, { message: 'train features' });
      // ONE feature pass over the pool serves every budget: a budget's probe reads its rows.
      fixedTrain = await cachedFeatures('train', train, trainIdx, `order=${p.probeSeed};n=${trainIdx.length}`, p.noiseSeed);
    }
    const clean = p.probe === 'reference' ? toModelInput(train, trainIdx, size) : null;
    const augment = augmentationFor(task.dataset.name);
    const layers: ProbeResult['layers'] = [];
    for (const [b, budget] of budgets.entries()) {
      const rows = subsets[b];
      const n = rows ? rows.length : trainIdx.length;
      const fraction = (done: number) => 0.2 + (0.8 * (b + done)) / budgets.length;
      let epochFeatures: (epoch: number) => Float32Array[] | Promise<Float32Array[]>;
      if (fixedTrain) {
        const train0 = fixedTrain;
        const fixed = task.layers.map((l) => (rows ? selectRows(train0[l], dims[l], rows) : train0[l]));
        epochFeatures = () => fixed;
      } else {
        // The reference protocol recomputes features every epoch anyway: a budget's probe augments and extracts its own rows.
        if (!clean) throw new Error('no training images to augment');
        const images = rows ? selectRows(clean, size * size * shape.channels, rows) : clean;
        const keys = rows ? Uint32Array.from(rows, (r) => trainIdx[r]) : trainIdx;
        epochFeatures = async (epoch) => {
          stopIfAsked();
          hooks.progress?.(fraction(epoch / p.epochs), { message: `${budget === 'all' ? '' : `${budget} labels, `}epoch ${epoch + 1}/${p.epochs}: augmented features` });
          const augmented = randomCropFlip(images, n, size, shape.channels, augment, createRng(freshNoiseSeed(p.probeSeed, 1000 + epoch)));
          const seed = p.noise === 'fresh' ? freshNoiseSeed(p.noiseSeed, epoch) : p.noiseSeed;
          const x = await extract(augmented, keys, seed);
          return task.layers.map((l) => x[l]);
        };
      }
      stopIfAsked();
      if (budgets.length > 1) hooks.progress?.(fraction(0), { message: `probes on ${budget === 'all' ? `all ${trainIdx.length}` : budget} labels` });
      const results = await trainLinearProbes(
        { n, y: rows ? Uint8Array.from(rows, (r) => trainY[r]) : trainY, dims: task.layers.map((l) => dims[l]), epoch: epochFeatures },
        task.layers.map((l) => ({ x: testX[l], y: testY, n: testN, dim: dims[l] })),
        { epochs: p.epochs, batchSize: p.batchSize, learningRate: p.learningRate, seed: p.probeSeed, standardize: p.standardize, classes: shape.classes },
      );
      for (const [i, layer] of task.layers.entries()) {
        layers.push({ layer, ...(budget === 'all' ? {} : { labels: budget }), accuracy: results[i].accuracy, trainAccuracy: results[i].trainAccuracy, featureDim: dims[layer] });
      }
    }
    hooks.progress?.(1, { message: 'done' });
    const seconds = (Date.now() - started) / 1000;
    return {
      kind: 'probe',
      layers,
      seconds,
      ...(cache ? { featureCache: { ...cache.stats } } : {}),
      featureSeconds: featureMs / 1000,
      probeSeconds: Math.max(0, seconds - featureMs / 1000),
    };
  } finally {
    model.release();
  }
}
