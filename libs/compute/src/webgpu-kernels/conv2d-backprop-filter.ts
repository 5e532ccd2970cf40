import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { flatProgram, type ProgramBase } from './program';

/**
 * Conv2DBackpropFilter (a convolution's weight gradient) for webgpu: tfjs-webgpu runs one GPU thread
 * per filter element, each looping over batch x output height x output width: 36,864 threads of
 * 65,536 products each for a 3x3, 64 -> 64 convolution at 32x32 and batch 64. Measured on an H200
 * (docs/results.md) that one kernel was 83 % of a training step's GPU time, 56x slower than the
 * input gradient of the same convolutions. Ours splits the sum over (image, output row) into
 * chunks: one thread per (chunk, filter element) writes a partial sum, and a second dispatch adds
 * the chunks up in a fixed order (deterministic: no atomics). Same arithmetic, about a thousand
 * times more threads in flight.
 */

/** About this many threads in the first dispatch (enough to fill a large GPU), when the sum is long enough. */
const TARGET_THREADS = 1 << 21;
/** A thread sums at least this many output rows (a chunk shorter than that costs more in partial sums than it saves). */
const MIN_ROWS_PER_CHUNK = 2;

/** How the sum over (image, output row) is cut: `rowsPerChunk` rows per partial sum, `chunks` of them. */
export function planFilterGradChunks(batch: number, outHeight: number, filterSize: number): { rowsPerChunk: number; chunks: number } {
  const rows = batch * outHeight;
  const wanted = Math.max(1, Math.floor(TARGET_THREADS / Math.max(1, filterSize)));
  const rowsPerChunk = Math.min(rows, Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(rows / wanted)));
  return { rowsPerChunk, chunks: Math.ceil(rows / rowsPerChunk) };
}

/** Partial weight gradients [chunks, kh, kw, inC, outC] of a channels-last convolution. */
function partialFilterGradProgram(chunks: number, filterShape: [number, number, number, number]): ProgramBase {
  return flatProgram(
    [chunks, ...filterShape],
    'ddaeConv2DDerFilterPartial',
    ['x', 'dy'],
    'pads : vec2<i32>, strides : vec2<i32>, rows : i32, rowsPerChunk : i32, outHeight : i32, outWidth : i32, inHeight : i32, inWidth : i32,',
    `
          // Rank-5 coordinates are tfjs-webgpu's struct vec5 (fields x, y, z, w, u), not an array.
          let coords = getCoordsFromIndex(index);
          let chunk = coords.x;
          let wR = coords.y;
          let wC = coords.z;
          let d1 = coords.w;
          let d2 = coords.u;
          let first = chunk * uniforms.rowsPerChunk;
          let last = min(first + uniforms.rowsPerChunk, uniforms.rows);
          var dotProd = 0.0;
          for (var r = first; r < last; r = r + 1) {
            let b = r / uniforms.outHeight;
            let yR = r - b * uniforms.outHeight;
            let xR = wR + yR * uniforms.strides[0] - uniforms.pads[0];
            if (xR < 0 || xR >= uniforms.inHeight) {
              continue;
            }
            for (var yC = 0; yC < uniforms.outWidth; yC = yC + 1) {
              let xC = wC + yC * uniforms.strides[1] - uniforms.pads[1];
              if (xC < 0 || xC >= uniforms.inWidth) {
                continue;
              }
              dotProd = dotProd + getX(b, xR, xC, d1) * getDy(b, yR, yC, d2);
            }
          }
          setOutputAtIndex(index, dotProd);`,
  );
}

/** The sum over the leading axis of [chunks, ...shape], in chunk order: one thread per output element. */
function sumLeadingAxisProgram(shape: number[]): ProgramBase {
  return flatProgram(
    shape,
    'ddaeSumLeadingAxis',
    ['partial'],
    'chunks : i32,',
    `
          var total = 0.0;
          for (var c = 0; c < uniforms.chunks; c = c + 1) {
            total = total + partial[c * uniforms.size + index];
          }
          setOutputAtIndex(index, total);`,
  );
}

/** Our kernel, falling back to `original` (tfjs-webgpu's) for what it does not cover (NCHW, non-float32). */
export function conv2dBackpropFilterConfig(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'webgpu',
    kernelFunc: function ddaeConv2DBackpropFilter(args) {
      const { inputs, attrs } = args;
      const backend = args.backend as unknown as WebGPUBackend;
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as { strides: [number, number] | number; pad: 'valid' | 'same' | number; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
      if (a.dataFormat === 'NCHW' || x.dtype !== 'float32') return original.kernelFunc(args);
      const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const filterSize = a.filterShape.reduce((p, d) => p * d, 1);
      const { rowsPerChunk, chunks } = planFilterGradChunks(info.batchSize, info.outHeight, filterSize);
      const partial = backend.runWebGPUProgram(partialFilterGradProgram(chunks, a.filterShape) as WebGPUProgram, [x, dy], 'float32', [
        { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
        { type: 'int32', data: [info.strideHeight, info.strideWidth] },
        { type: 'int32', data: [info.batchSize * info.outHeight] },
        { type: 'int32', data: [rowsPerChunk] },
        { type: 'int32', data: [info.outHeight] },
        { type: 'int32', data: [info.outWidth] },
        { type: 'int32', data: [info.inHeight] },
        { type: 'int32', data: [info.inWidth] },
      ]);
      const summed = backend.runWebGPUProgram(sumLeadingAxisProgram(a.filterShape) as WebGPUProgram, [partial], 'float32', [{ type: 'int32', data: [chunks] }]);
      backend.disposeData(partial.dataId);
      return summed;
    },
  };
}
