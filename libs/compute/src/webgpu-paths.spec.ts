import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { pretrainTaskSchema, type PretrainResult, type PretrainTask } from '@ddae/contracts';
import { loadDataset, type LabeledImages } from '@ddae/datasets';
import { releaseBackend, selectBackend } from './backend';
import { evaluateGenerationQuality, imageQuality } from './gen-quality/evaluate';
import { runComputeTask } from './index';
import { onCpu, writeFashionSubset } from './webgpu.fixture';

/**
 * The worker's paths that webgpu.spec.ts does not run, on the webgpu backend (Dawn on lavapipe,
 * as there): FID/KID. Under Dawn in Node a synchronous read of a GPU tensor
 * (`dataSync`, `arraySync`, `bufferSync`) throws ("OffscreenCanvas is not defined"), so a path
 * that runs to the end here reads nothing synchronously. Shapes are tiny (lavapipe is slow): the
 * tiny UNet on 28x28 images (the classifier's size).
 *
 * Deterministic on one adapter (see webgpu.spec.ts); against the CPU (our native backend) the
 * order of float operations differs, so values are compared within the tolerances stated below.
 */
jest.setTimeout(600_000);

const UNET = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 };
/** Real Fashion-MNIST written to disk for the tasks that load a data set: train and test images. */
const DISK_TRAIN = 16;
const DISK_TEST = 16;
/** Adam's learning rate of the step-for-step comparisons (as webgpu.spec.ts). */
const LR = 2e-3;
/**
 * FID and KID (mean, std), relative: measured 1.9e-7 (FID) and 7e-7 (KID mean) of a checkpoint's
 * samples, 8.6e-8 and 4.7e-7 of real images (the classifier alone).
 */
const METRIC_TOL = 1e-4;

const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

describe('worker paths on webgpu (Dawn on lavapipe)', () => {
  let root: string;
  let train: LabeledImages;
  let test: LabeledImages;
  /** Real images for the tasks (webgpu reads it); a byte-identical copy for the CPU's runs. */
  let dataDir: string;
  let cpuDataDir: string;
  let counter = 0;

  const pretrainTask = (over: Partial<PretrainTask> = {}, dir = dataDir): PretrainTask =>
    pretrainTaskSchema.parse({
      kind: 'pretrain',
      runId: 'webgpu-paths',
      method: 'ddpm',
      unet: UNET,
      dataset: { name: 'fashion-mnist', dir },
      imageSize: 28,
      trainSize: DISK_TRAIN,
      steps: 2,
      batchSize: 4,
      learningRate: LR,
      warmupSteps: 0,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 2,
      seed: 0,
      checkpointDir: path.join(root, `run-${counter++}`),
      ...over,
    });

  /** The worker's pretraining task with `fid`, on webgpu: its result holds the 28x28 checkpoint later tests reuse. */
  let fidRun: Promise<PretrainResult> | undefined;
  const pretrainedWithFid = (): Promise<PretrainResult> =>
    (fidRun ??= (async () => {
      const r = await runComputeTask(pretrainTask({ fid: { samples: 8, steps: 2, seed: 0 } }));
      if (r.kind !== 'pretrain') throw new Error(`expected a pretrain result, got ${r.kind}`);
      return r;
    })());

  beforeAll(async () => {
    expect((await selectBackend('webgpu')).backend).toBe('webgpu');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-webgpu-paths-'));
    [train, test] = await Promise.all([loadDataset('fashion-mnist', 'train'), loadDataset('fashion-mnist', 'test')]);
    dataDir = path.join(root, 'data');
    cpuDataDir = path.join(root, 'data-cpu');
    writeFashionSubset(dataDir, train, test, DISK_TRAIN, DISK_TEST);
    writeFashionSubset(cpuDataDir, train, test, DISK_TRAIN, DISK_TEST);
  });

  afterAll(async () => {
    await releaseBackend();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('computes FID and KID after pretraining (the worker) and of a checkpoint (`ddae fid`), like the CPU', async () => {
    const r = await pretrainedWithFid();
    // withGenerationQuality reports a failure here rather than failing the run: a sync read would land in it.
    expect(r.generationError).toBeUndefined();
    expect(r.generation).toMatchObject({ extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', step: 2, samples: 8, sampler: 'ddim', steps: 2, reference: 'fashion-mnist test', referenceCount: DISK_TEST });
    const spec = { samples: 8, steps: 2, seed: 0 };
    const gpu = await evaluateGenerationQuality(r.finalCheckpoint.path, { ...spec, datasetDir: dataDir });
    // The CPU's reference features come from its own copy of the data (the reference is cached per directory).
    const cpu = await onCpu(() => evaluateGenerationQuality(r.finalCheckpoint.path, { ...spec, datasetDir: cpuDataDir }));
    expect(gpu.fid).toBe(r.generation?.fid);
    expect(gpu.kid).toEqual(r.generation?.kid);
    expect(gpu.fid).toBeGreaterThan(0);
    expect(relDiff(gpu.fid, cpu.fid)).toBeLessThan(METRIC_TOL);
    expect(relDiff(gpu.kid.mean, cpu.kid.mean)).toBeLessThan(METRIC_TOL);
    expect(relDiff(gpu.kid.std, cpu.kid.std)).toBeLessThan(METRIC_TOL);
    // The classifier alone on real images (no sampler in between): 8 test images against the 16.
    const images = Float32Array.from(test.images.subarray(0, 8 * 784), (v) => v / 127.5 - 1);
    const o = { seed: 0, kidSubsets: 3, kidSubsetSize: 8 };
    const tensors = tf.memory().numTensors;
    const qg = await imageQuality(images, 8, 28, { ...o, datasetDir: dataDir });
    expect(tf.memory().numTensors).toBe(tensors);
    const qc = await onCpu(() => imageQuality(images, 8, 28, { ...o, datasetDir: cpuDataDir }));
    expect(relDiff(qg.fid, qc.fid)).toBeLessThan(METRIC_TOL);
    expect(relDiff(qg.kid.mean, qc.kid.mean)).toBeLessThan(METRIC_TOL);
  });

});
