import { DATASET_SHAPES, type DatasetName, type GenerationQuality, type GenerationQualitySpec, type PretrainResult, type PretrainTask } from '@ddae/contracts';
import { loadDataset, toModelInput } from '@ddae/datasets';
import { loadForInference, sampleUNet } from '@ddae/diffusion';
import { FID_CLASSIFIER_FILE, FID_CLASSIFIER_SHA256, FID_EXTRACTOR, FID_FEATURE_DIM, FID_IMAGE_SIZE, classifierFeatures, disposeParams, loadFidClassifier, type ClassifierParams } from './classifier';
import { frechetDistance, kernelInceptionDistance, meanAndCovariance } from './frechet';

/** The data set the extractor was trained on: the only one whose samples it measures. */
export const GENERATION_QUALITY_DATASET: DatasetName = 'fashion-mnist';

/** A request the metric cannot serve (another data set, colour images); the message names the fix. */
export class GenerationQualityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GenerationQualityError';
  }
}

interface Reference {
  stats: { mean: Float64Array; cov: Float64Array };
  features: Float32Array;
  count: number;
}

/** The test split's features, once per process (10,000 images through a small CNN). */
const references = new Map<string, Promise<Reference>>();

function reference(params: ClassifierParams, sha256: string, dir: string | undefined): Promise<Reference> {
  const key = `${sha256}:${dir ?? ''}`;
  let ref = references.get(key);
  if (!ref) {
    ref = (async () => {
      const test = await loadDataset(GENERATION_QUALITY_DATASET, 'test', dir === undefined ? {} : { dir });
      const indices = Array.from({ length: test.count }, (_, i) => i);
      const features = await classifierFeatures(params, toModelInput(test, indices, FID_IMAGE_SIZE), test.count, FID_IMAGE_SIZE);
      return { stats: meanAndCovariance(features, test.count, FID_FEATURE_DIM), features, count: test.count };
    })();
    references.set(key, ref);
    ref.catch(() => references.delete(key));
  }
  return ref;
}

export interface GenerationQualityOptions extends GenerationQualitySpec {
  /** Images per network call while sampling. Default 64. */
  batch?: number;
  /** Where the Fashion-MNIST files are (the task's `dataset.dir`); default: the usual place (`DDAE_DATA_DIR`...). */
  datasetDir?: string;
  /** KID subsets (default 20) of up to `kidSubsetSize` (default 500) images of each set. */
  kidSubsets?: number;
  kidSubsetSize?: number;
  onProgress?(done: number, total: number): void;
}

/**
 * FID and KID of a checkpoint: samples `samples` images from its EMA weights (DDIM for DDPM, Heun
 * for EDM), centre-crops them to 28x28, and compares their classifier features with those of the
 * whole Fashion-MNIST test split. Deterministic for a checkpoint, spec and backend. What `ddae fid`
 * and the worker (after pretraining, when the task asks for `fid`) both call.
 */
export async function evaluateGenerationQuality(checkpointPath: string, o: GenerationQualityOptions): Promise<GenerationQuality> {
  const started = Date.now();
  const { unet, manifest } = loadForInference(checkpointPath);
  let images: Float32Array;
  try {
    const { imageSize, imageChannels } = manifest.config;
    if (imageChannels !== 1 || imageSize < FID_IMAGE_SIZE) {
      throw new GenerationQualityError(`FID/KID use ${FID_EXTRACTOR}, trained on ${GENERATION_QUALITY_DATASET}: they need 1-channel images of at least ${FID_IMAGE_SIZE}x${FID_IMAGE_SIZE}, this checkpoint makes ${imageChannels}-channel ${imageSize}x${imageSize} ones`);
    }
    images = await sampleUNet(unet, manifest.method, { n: o.samples, steps: o.steps, seed: o.seed, batchSize: o.batch ?? 64, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  } finally {
    unet.dispose();
  }
  const q = await imageQuality(images, o.samples, manifest.config.imageSize, o);
  return { ...q, step: manifest.step, samples: o.samples, sampler: manifest.method === 'ddpm' ? 'ddim' : 'heun', steps: o.steps, seed: o.seed, seconds: (Date.now() - started) / 1000 };
}

/**
 * FID and KID of `n` images (NHWC, 1 channel, `size` x `size`, in [-1, 1]: a model's samples or
 * `toModelInput`) against the Fashion-MNIST test split, in the committed classifier's feature space.
 */
export async function imageQuality(
  images: Float32Array,
  n: number,
  size: number,
  o: Pick<GenerationQualityOptions, 'seed' | 'kidSubsets' | 'kidSubsetSize' | 'datasetDir'>,
): Promise<Pick<GenerationQuality, 'extractor' | 'extractorSha256' | 'reference' | 'referenceCount' | 'fid' | 'kid'>> {
  const { params, sha256 } = loadFidClassifier(FID_CLASSIFIER_FILE, FID_CLASSIFIER_SHA256);
  try {
    const features = await classifierFeatures(params, images, n, size);
    const ref = await reference(params, sha256, o.datasetDir);
    const fid = frechetDistance(meanAndCovariance(features, n, FID_FEATURE_DIM), ref.stats);
    const kid = kernelInceptionDistance(features, n, ref.features, ref.count, FID_FEATURE_DIM, { subsets: o.kidSubsets ?? 20, subsetSize: o.kidSubsetSize ?? 500, seed: o.seed });
    return { extractor: FID_EXTRACTOR, extractorSha256: sha256, reference: `${GENERATION_QUALITY_DATASET} test`, referenceCount: ref.count, fid, kid };
  } finally {
    disposeParams(params);
  }
}

/**
 * Adds the FID/KID a pretraining task asked for to its result. A failure is reported in
 * `generationError` and never fails the run (its checkpoint, what probes need, is good).
 */
export async function withGenerationQuality(task: PretrainTask, result: PretrainResult): Promise<PretrainResult> {
  if (!task.fid) return result;
  try {
    if (task.dataset.name !== GENERATION_QUALITY_DATASET) {
      throw new GenerationQualityError(`FID/KID are measured with ${FID_EXTRACTOR} on ${GENERATION_QUALITY_DATASET} only; this run trains on ${task.dataset.name} (${DATASET_SHAPES[task.dataset.name].size}x${DATASET_SHAPES[task.dataset.name].size})`);
    }
    return { ...result, generation: await evaluateGenerationQuality(result.finalCheckpoint.path, { ...task.fid, ...(task.dataset.dir !== undefined ? { datasetDir: task.dataset.dir } : {}) }) };
  } catch (error) {
    return { ...result, generationError: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}
