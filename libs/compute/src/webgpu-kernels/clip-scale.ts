import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { ClipScaleAttrs } from '@ddae/diffusion';
import { REDUCE_THREADS, reduceProgram, type ProgramBase } from './program';

/**
 * DdaeClipScale for webgpu (libs/diffusion fused.ts, GPU_FUSED_KERNELS.clipScale): the global-norm
 * clipping scale min(1, clip / (sqrt(sum of every gradient's squares) + 1e-6)) as a scalar tensor,
 * which DdaeAdamEmaScaled consumes without the host ever reading it. Composed of tf ops it was a
 * Square and a Sum per parameter plus an AddN chain (about 505 dispatches for the base-32 UNet's
 * 214 parameters); here it is one dispatch per `inputsPerDispatch` gradients (as many as a shader
 * may bind, less the output) writing partial sums into one buffer, then one that adds them up.
 * Every sum runs in a fixed order (workgroup trees, no atomics): deterministic.
 */

/** A workgroup sums at least this many elements per thread before another workgroup is added to an input. */
const ELEMENTS_PER_THREAD = 16;
/** At most this many workgroups per input (the final dispatch adds inputs x this many partial sums). */
const MAX_WORKGROUPS_PER_INPUT = 64;
/** At most this many inputs per dispatch, whatever the adapter allows (the shader has one branch per input). */
const MAX_INPUTS_PER_DISPATCH = 15;

/** How the inputs are cut: `perDispatch` inputs per dispatch, `workgroups` per input. */
export function planClipScale(sizes: readonly number[], maxStorageBuffers: number): { perDispatch: number; workgroups: number; dispatches: number } {
  if (sizes.length === 0) throw new Error('DdaeClipScale needs at least one gradient');
  // One storage binding is the output (the partial sums); the rest are inputs.
  const perDispatch = Math.max(1, Math.min(MAX_INPUTS_PER_DISPATCH, maxStorageBuffers - 1));
  const largest = Math.max(...sizes);
  const workgroups = Math.max(1, Math.min(MAX_WORKGROUPS_PER_INPUT, Math.ceil(largest / (REDUCE_THREADS * ELEMENTS_PER_THREAD))));
  return { perDispatch, workgroups, dispatches: Math.ceil(sizes.length / perDispatch) + 1 };
}

/**
 * Partial sums of squares of `count` flat inputs x0..x{count-1}: workgroup (k, w) sums x_k's
 * elements w*256 + lid, then every `workgroups`*256, and writes slot base + k * workgroups + w.
 */
function partialSquaresProgram(count: number, workgroups: number, totalSlots: number): ProgramBase {
  const names = Array.from({ length: count }, (_, k) => `x${k}`);
  // One branch per input (a binding cannot be indexed); the barriers of reduceTwo stay outside them.
  const branches = names
    .map(
      (name, k) => `${k === 0 ? '' : ' else '}if (k == ${k}) {
          for (var i = start; i < uniforms.${name}Shape; i = i + stride) {
            let v = ${name}[i];
            a = a + v * v;
          }
        }`,
    )
    .join('');
  return reduceProgram([totalSlots], `ddaeClipScale_partial_${count}`, names, 'base : i32, workgroups : i32,', count * workgroups, `
        let k = wg / uniforms.workgroups;
        let w = wg - k * uniforms.workgroups;
        let start = w * ${REDUCE_THREADS} + lid;
        let stride = uniforms.workgroups * ${REDUCE_THREADS};
        var a = 0.0;
        ${branches}
        partA[lid] = a;
        partB[lid] = 0.0;
        reduceTwo();
        if (lid == 0) { setOutputAtIndex(uniforms.base + wg, partA[0]); }`);
}

/** min(1, clip / (sqrt(sum of the partial sums) + 1e-6)), one workgroup, the partials added in order. */
function clipScaleProgram(): ProgramBase {
  return reduceProgram([1], 'ddaeClipScale_scale', ['partial'], 'clip : f32,', 1, `
        var a = 0.0;
        for (var i = lid; i < uniforms.partialShape; i = i + ${REDUCE_THREADS}) {
          a = a + partial[i];
        }
        partA[lid] = a;
        partB[lid] = 0.0;
        reduceTwo();
        if (lid == 0) { setOutputAtIndex(0, min(1.0, uniforms.clip / (sqrt(partA[0]) + 1e-6))); }`);
}

export const clipScaleConfig: tf.KernelConfig = {
  kernelName: 'DdaeClipScale',
  backendName: 'webgpu',
  kernelFunc: function ddaeClipScale(args) {
    const backend = args.backend as unknown as WebGPUBackend;
    // Inputs are keyed 0..n-1 (as AddN's): integer keys enumerate in ascending order.
    const grads = Object.values(args.inputs as Record<string, tf.TensorInfo>);
    const { clip } = args.attrs as unknown as ClipScaleAttrs;
    if (!(clip > 0)) throw new Error(`DdaeClipScale: clip must be a positive number, got ${clip}`);
    for (const g of grads) if (g.dtype !== 'float32') throw new Error(`DdaeClipScale: gradients must be float32, got ${g.dtype}`);
    const sizes = grads.map((g) => g.shape.reduce((p, d) => p * d, 1));
    const limit = (backend as unknown as { device: { limits: Record<string, number> } }).device.limits['maxStorageBuffersPerShaderStage'];
    const plan = planClipScale(sizes, limit);
    const totalSlots = grads.length * plan.workgroups;
    // Every slot is written exactly once below (inputs x workgroups), so the pooled buffer needs no clearing.
    const partial = backend.makeTensorInfo([totalSlots], 'float32');
    try {
      for (let first = 0; first < grads.length; first += plan.perDispatch) {
        const chunk = grads.slice(first, first + plan.perDispatch).map((g, i) => ({ ...g, shape: [sizes[first + i]] }));
        const program = partialSquaresProgram(chunk.length, plan.workgroups, totalSlots);
        backend.runWebGPUProgram(program as WebGPUProgram, chunk, 'float32', [
          { type: 'int32', data: [first * plan.workgroups] },
          { type: 'int32', data: [plan.workgroups] },
        ], partial);
      }
      const scale = backend.runWebGPUProgram(clipScaleProgram() as WebGPUProgram, [partial], 'float32', [{ type: 'float32', data: [clip] }]);
      return { ...scale, shape: [] };
    } finally {
      backend.disposeData(partial.dataId);
    }
  },
};
