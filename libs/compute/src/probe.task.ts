import { DATASET_SHAPES, paddedImageSize, type ComputeHooks, type ProbeResult, type ProbeTask } from '@ddae/contracts';
import { loadDataset, seededOrder, toModelInput, type LabeledImages } from '@ddae/datasets';
import { extractFeatures, loadForInference } from '@ddae/diffusion';
import { trainLinearProbe } from '@ddae/probe';

/** Thrown when `hooks.shouldStop()` asks a probe task to stop: it has no partial result to keep. */
export class ProbeStoppedError extends Error {
  override name = 'StoppedError';
}

/** Images per feature forward pass. */
const FEATURE_BATCH = 64;

function labelsOf(data: LabeledImages, indices: ArrayLike<number>): Uint8Array {
  const y = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) y[i] = data.labels[indices[i]];
  return y;
}

/**
 * Probes one checkpoint at one noise level: EMA weights from `task.checkpointPath`, features of
 * every requested layer from ONE forward pass per batch (fixed seeded noise per image), then a
 * linear probe per layer under the task's protocol.
 * Train rows: first `protocol.trainSize` of `seededOrder(train.count, probeSeed)`; test rows: the
 * first `protocol.testSize` of the test split.
 */
export async function runProbeTask(task: ProbeTask, hooks: ComputeHooks = {}): Promise<ProbeResult> {
  const started = Date.now();
  const p = task.protocol;
  const stopIfAsked = (): void => {
    if (hooks.shouldStop?.()) throw new ProbeStoppedError('probe task stopped before finishing');
  };
  const dirOpt = task.dataset.dir !== undefined ? { dir: task.dataset.dir } : {};
  const [train, test] = await Promise.all([loadDataset(task.dataset.name, 'train', dirOpt), loadDataset(task.dataset.name, 'test', dirOpt)]);
  const trainIdx = seededOrder(train.count, p.probeSeed).subarray(0, Math.min(p.trainSize, train.count));
  const testN = Math.min(p.testSize, test.count);
  const testIdx = Uint32Array.from({ length: testN }, (_, i) => i);
  const size = paddedImageSize(DATASET_SHAPES[task.dataset.name].size);
  const { unet, manifest } = loadForInference(task.checkpointPath);
  try {
    if (manifest.method !== task.method) throw new Error(`checkpoint ${task.checkpointPath} is ${manifest.method}, task says ${task.method}`);
    const featureOpts = { pooling: p.pooling, noiseSeed: p.noiseSeed, batchSize: FEATURE_BATCH };
    stopIfAsked();
    hooks.progress?.(0, { message: 'train features' });
    // Noise is keyed by the image's index in its split, so an image's features are the same
    // whatever slice or order asks for them; the test split uses a derived noise seed so that
    // train image i and test image i do not share a noise draw.
    const trainX = featuresByIndex(unet, task, train, trainIdx, size, featureOpts);
    stopIfAsked();
    hooks.progress?.(0.4, { message: 'test features' });
    const testX = featuresByIndex(unet, task, test, testIdx, size, { ...featureOpts, noiseSeed: featureOpts.noiseSeed + 0x7e57 });
    const trainY = labelsOf(train, trainIdx);
    const testY = labelsOf(test, testIdx);
    const classes = DATASET_SHAPES[task.dataset.name].classes;
    const layers: ProbeResult['layers'] = [];
    for (const [i, layer] of task.layers.entries()) {
      stopIfAsked();
      hooks.progress?.(0.5 + (0.5 * i) / task.layers.length, { message: `probe ${layer}` });
      const dim = trainX[layer].length / trainIdx.length;
      const r = await trainLinearProbe(
        { x: trainX[layer], y: trainY, n: trainIdx.length, dim },
        { x: testX[layer], y: testY, n: testN, dim },
        { epochs: p.epochs, batchSize: p.batchSize, learningRate: p.learningRate, seed: p.probeSeed, standardize: p.standardize, classes },
      );
      layers.push({ layer, accuracy: r.accuracy, trainAccuracy: r.trainAccuracy, featureDim: dim });
    }
    hooks.progress?.(1, { message: 'done' });
    return { kind: 'probe', layers, seconds: (Date.now() - started) / 1000 };
  } finally {
    unet.dispose();
  }
}

function featuresByIndex(
  unet: ReturnType<typeof loadForInference>['unet'],
  task: ProbeTask,
  data: LabeledImages,
  indices: Uint32Array,
  size: number,
  opts: { pooling: ProbeTask['protocol']['pooling']; noiseSeed: number; batchSize: number },
): Record<string, Float32Array> {
  const images = toModelInput(data, indices, size);
  return extractFeatures(unet, task.method, images, indices.length, task.noiseLevel, task.layers, { ...opts, noiseKeys: indices });
}
