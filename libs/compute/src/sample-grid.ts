import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DATASET_SHAPES, type DatasetName, type PretrainResult, type PretrainTask, type SampleGridInfo } from '@ddae/contracts';
import { loadForInference, sampleUNet } from '@ddae/diffusion';
import { imageGridPng } from '@ddae/render';

/** `samples-step-00000400.png`: beside the run's `step-00000400` checkpoint directory. */
export function sampleGridFile(checkpointPath: string, step: number): string {
  return path.join(path.dirname(checkpointPath), `samples-step-${String(step).padStart(8, '0')}.png`);
}

/**
 * Samples `spec.n` images from a checkpoint's EMA weights (DDIM for DDPM, Heun for EDM), crops them
 * back to the data set's image size (the model's input is padded) and writes the grid atomically
 * beside the checkpoint. Deterministic: the same checkpoint and seed give the same file.
 */
export async function writeSampleGrid(checkpointPath: string, dataset: DatasetName, spec: NonNullable<PretrainTask['samples']>): Promise<SampleGridInfo> {
  const started = Date.now();
  const { unet, manifest } = loadForInference(checkpointPath);
  let images: Float32Array;
  try {
    // `await` whether sampling is synchronous or returns a promise (asynchronous GPU reads).
    images = await sampleUNet(unet, manifest.method, { n: spec.n, steps: spec.steps, seed: spec.seed, batchSize: spec.n });
  } finally {
    unet.dispose();
  }
  const { imageSize, imageChannels } = manifest.config;
  const grid = imageGridPng(images, spec.n, imageSize, imageChannels, { scale: 2, pad: 2, crop: Math.min(imageSize, DATASET_SHAPES[dataset].size) });
  const file = sampleGridFile(checkpointPath, manifest.step);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, grid.png);
  fs.renameSync(tmp, file);
  return {
    path: file,
    step: manifest.step,
    n: spec.n,
    sampler: manifest.method === 'ddpm' ? 'ddim' : 'heun',
    steps: spec.steps,
    seed: spec.seed,
    width: grid.width,
    height: grid.height,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Adds the sample grid a pretraining task asked for to its result. A failure to sample is reported
 * in `samplesError` and never fails the run: its checkpoint, the thing probes need, is good.
 */
export async function withSampleGrid(task: PretrainTask, result: PretrainResult): Promise<PretrainResult> {
  if (!task.samples || result.steps === 0) return result;
  try {
    return { ...result, samples: await writeSampleGrid(result.finalCheckpoint.path, task.dataset.name, task.samples) };
  } catch (error) {
    return { ...result, samplesError: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}
