import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** What our WGSL programs set of tfjs-webgpu's WebGPUProgram (the backend fills in the rest). */
export type ProgramBase = Pick<WebGPUProgram, 'outputShape' | 'shaderKey' | 'dispatchLayout' | 'dispatch' | 'variableNames' | 'uniforms' | 'workgroupSize' | 'size' | 'getUserCode'>;

function webgpuUtil(): typeof import('@tensorflow/tfjs-backend-webgpu').webgpu_util {
  // Required lazily: the package looks for navigator.gpu when it is imported (webgpu.ts sets it up first).
  return (require('@tensorflow/tfjs-backend-webgpu') as typeof import('@tensorflow/tfjs-backend-webgpu')).webgpu_util;
}

/**
 * A program with one thread per output element: `body` runs with `index`, the element's flat
 * index (tfjs-webgpu wraps it with the bindings, uniforms, getX/getDy accessors and
 * getCoordsFromIndex for the output's rank).
 */
export function flatProgram(outputShape: number[], shaderKey: string, variableNames: string[], uniforms: string, body: string): ProgramBase {
  const util = webgpuUtil();
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(outputShape);
  return {
    outputShape,
    shaderKey,
    variableNames,
    uniforms,
    workgroupSize,
    size: true,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`,
  };
}

/** Threads of a workgroup that reduces one group or channel (a power of two: the tree halves it). */
export const REDUCE_THREADS = 256;

/**
 * A program with one workgroup of REDUCE_THREADS per `workgroups` (each reduces one group or
 * channel): `body` runs with `wg` (the workgroup) and `lid` (the thread in it), and may call
 * reduceTwo() to sum partA and partB over the workgroup into their element 0, in a fixed order.
 */
export function reduceProgram(outputShape: number[], shaderKey: string, variableNames: string[], uniforms: string, workgroups: number, body: string): ProgramBase {
  const util = webgpuUtil();
  if (workgroups > 65535) throw new Error(`${shaderKey}: ${workgroups} workgroups exceed one dispatch dimension (65,535)`);
  return {
    outputShape,
    shaderKey,
    variableNames,
    uniforms,
    workgroupSize: [REDUCE_THREADS, 1, 1],
    size: true,
    dispatchLayout: util.flatDispatchLayout(outputShape),
    dispatch: [workgroups, 1, 1],
    getUserCode: () => `
      var<workgroup> partA : array<f32, ${REDUCE_THREADS}>;
      var<workgroup> partB : array<f32, ${REDUCE_THREADS}>;
      // Sums partA (and partB) over the workgroup into element 0, in a fixed order (deterministic).
      fn reduceTwo() {
        workgroupBarrier();
        for (var stride = ${REDUCE_THREADS / 2}u; stride > 0u; stride = stride / 2u) {
          if (localId.x < stride) {
            partA[localId.x] = partA[localId.x] + partA[localId.x + stride];
            partB[localId.x] = partB[localId.x] + partB[localId.x + stride];
          }
          workgroupBarrier();
        }
      }
      fn main(index : i32) {
        let wg = index / ${REDUCE_THREADS};
        let lid = i32(localId.x);
        ${body}
      }`,
  };
}
