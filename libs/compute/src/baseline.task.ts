import { DATASET_SHAPES, type BaselineResult, type BaselineTask, type ComputeHooks } from '@ddae/contracts';
import { augmentationFor, balancedSubset, createRng, flattenPixels, loadDataset, randomCropFlip, seededOrder, selectLabels } from '@ddae/datasets';
import { trainLinearProbes } from '@ddae/probe';
import { freshNoiseSeed } from './probe.task';

/** Thrown when `hooks.shouldStop()` asks a baseline to stop: it has no partial result to keep. */
export class BaselineStoppedError extends Error {
  override name = 'BaselineStoppedError';
}

/**
 * The raw-pixel baseline: a linear probe on pixels scaled to [0, 1], under the task's protocol.
 * Training rows are the first `protocol.trainSize` images of `seededOrder(train.count, probeSeed)`
 * (with `protocol.labels`: their class-balanced subset of that many, see `balancedSubset`),
 * test rows the first `protocol.testSize` images of the test split; the probe uses the protocol's
 * epochs, batch size, learning rate, standardisation, and `probeSeed` as its seed. Pooling and noise
 * settings of the protocol do not apply to pixels; under the `reference` protocol the training
 * pixels are augmented anew at every epoch (random crop with pad 4, flip except on digits), as the
 * diffusion features are.
 *
 * Runs on the TensorFlow.js backend the caller has selected. `hooks.shouldStop` is polled before
 * loading and before training (a stop rejects with {@link BaselineStoppedError}).
 */
export async function runBaselineTask(task: BaselineTask, hooks: ComputeHooks = {}): Promise<BaselineResult> {
  const started = performance.now();
  const { protocol: p, dataset } = task;
  const stopIfAsked = (): void => {
    if (hooks.shouldStop?.()) throw new BaselineStoppedError(`baseline ${task.baselineId} stopped before it finished`);
  };
  stopIfAsked();
  hooks.progress?.(0, { message: `loading ${dataset.name}` });
  const opts = dataset.dir ? { dir: dataset.dir } : {};
  const [train, test] = await Promise.all([loadDataset(dataset.name, 'train', opts), loadDataset(dataset.name, 'test', opts)]);
  if (p.trainSize > train.count) throw new RangeError(`protocol.trainSize ${p.trainSize} exceeds the ${train.count} training images of ${dataset.name}`);
  if (p.testSize > test.count) throw new RangeError(`protocol.testSize ${p.testSize} exceeds the ${test.count} test images of ${dataset.name}`);

  const pool = seededOrder(train.count, p.probeSeed).subarray(0, p.trainSize);
  // A label budget: its class-balanced subset of the pool, as the diffusion features' probes take it.
  const trainIdx = p.labels === undefined ? pool : Uint32Array.from(balancedSubset(selectLabels(train, pool), p.labels, DATASET_SHAPES[dataset.name].classes), (r) => pool[r]);
  const n = trainIdx.length;
  const testIdx = Uint32Array.from({ length: p.testSize }, (_, i) => i);
  const featureDim = train.height * train.width * train.channels;
  stopIfAsked();
  hooks.progress?.(0.05, { message: `pixel probe: ${n} train / ${p.testSize} test images, ${featureDim} features` });
  const pixels = flattenPixels(train, trainIdx);
  const augment = { ...augmentationFor(dataset.name), fill: 0 };
  const epochPixels = (epoch: number): Float32Array[] =>
    p.probe === 'reference' ? [randomCropFlip(pixels, n, train.height, train.channels, augment, createRng(freshNoiseSeed(p.probeSeed, 1000 + epoch)))] : [pixels];
  const [result] = await trainLinearProbes(
    { n, y: selectLabels(train, trainIdx), dims: [featureDim], epoch: epochPixels },
    [{ x: flattenPixels(test, testIdx), y: selectLabels(test, testIdx), n: p.testSize, dim: featureDim }],
    {
      epochs: p.epochs,
      batchSize: p.batchSize,
      learningRate: p.learningRate,
      seed: p.probeSeed,
      standardize: p.standardize,
      classes: DATASET_SHAPES[dataset.name].classes,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  hooks.progress?.(1, { message: `pixel probe accuracy ${result.accuracy.toFixed(4)} (train ${result.trainAccuracy.toFixed(4)})` });
  return { kind: 'baseline', accuracy: result.accuracy, featureDim, seconds };
}
