import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { encodeIdx, toModelInput, type LabeledImages } from '@ddae/datasets';
import { NATIVE_BACKEND, registerNativeBackend } from '@ddae/native-kernels';

/**
 * Helpers of the webgpu tests that compare a path with the CPU: the 16x16 input of the tiny
 * models, the largest difference of two arrays, a call made on the CPU (our native backend), and a
 * small real Fashion-MNIST on disk.
 */

/** The 32x32 model input of `indices` averaged 2x2 down to 16x16 ([-1, 1], one channel). */
export function imagesAt16(data: LabeledImages, indices: ArrayLike<number>): Float32Array {
  const size = 16;
  const full = toModelInput(data, indices, 32);
  const out = new Float32Array(indices.length * size * size);
  for (let i = 0; i < indices.length; i++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const b = i * 1024 + 2 * y * 32 + 2 * x;
        out[i * size * size + y * size + x] = (full[b] + full[b + 1] + full[b + 32] + full[b + 33]) / 4;
      }
    }
  }
  return out;
}

export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Largest absolute value (at least 1): what a difference is measured against. */
export function scaleOf(a: ArrayLike<number>): number {
  let m = 1;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Runs `fn` on the CPU (our native backend), then returns to webgpu. */
export async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  registerNativeBackend();
  expect(await tf.setBackend(NATIVE_BACKEND)).toBe(true);
  try {
    return await fn();
  } finally {
    expect(await tf.setBackend('webgpu')).toBe(true);
  }
}

/** Writes the first `trainCount` / `testCount` images of real Fashion-MNIST splits as IDX files under `dir` (a task's `dataset.dir`). */
export function writeFashionSubset(dir: string, train: LabeledImages, test: LabeledImages, trainCount: number, testCount: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [data, n, prefix] of [[train, trainCount, 'train'], [test, testCount, 't10k']] as const) {
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx([n, 28, 28], data.images.subarray(0, n * 784)));
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx([n], data.labels.subarray(0, n)));
  }
}
