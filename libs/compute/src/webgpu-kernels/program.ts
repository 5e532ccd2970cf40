import * as tf from '@tensorflow/tfjs';
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

/** The parts of tfjs-webgpu 4.22's WebGPUBackend that a dispatch of our own records into (its internals: STACK.md pins the version). */
interface BackendInternals {
  device: {
    limits: Record<string, number>;
    createShaderModule(d: { code: string }): unknown;
    createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string } }): { getBindGroupLayout(i: number): unknown };
    createBindGroup(d: { layout: unknown; entries: { binding: number; resource: { buffer: unknown; offset?: number; size?: number } }[] }): unknown;
  };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBuffer, dataOffset: number, size: number): void };
  tensorMap: { get(dataId: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): unknown };
  uniformPendingDisposal: unknown[];
  commandQueueOwnedIds: WeakSet<object>;
  commandEncoder: { beginComputePass(d: object): ComputePassLike } | null;
  computePassEncoder: ComputePassLike | null;
  dispatchCountInPass: number;
  uploadToGPU(dataId: object): void;
  incRef(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}
/** tfjs-webgpu 4.22's record of one dataId: its buffer, how many tensors hold it, its CPU copy (cached by a read), and whether the buffer is the caller's own (zero-copy). */
interface TensorData {
  resource: unknown;
  refCount: number;
  values: unknown;
  external?: boolean;
  complexTensorInfos?: unknown;
}
interface ComputePassLike {
  setPipeline(p: unknown): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
}

/** Threads per workgroup of a multi-output program (one thread per element). */
export const MULTI_THREADS = 64;

const pipelines = new WeakMap<object, Map<string, { getBindGroupLayout(i: number): unknown }>>();

/** Storage buffers a shader of this backend's device may bind. */
export function storageBuffersPerShader(backend: unknown): number {
  return (backend as BackendInternals).device.limits['maxStorageBuffersPerShaderStage'];
}

/**
 * One dispatch of a WGSL program with SEVERAL outputs, which tfjs-webgpu's programs cannot have
 * (one output buffer each): recorded into the backend's own command encoder and compute pass, with
 * its buffers, submit batching and deferred release, as its runWebGPUProgram does. `code` binds
 * the uniform struct at binding 0, then `inputs` (read) and one output per `outputShapes` entry
 * (read_write, new float32 tensors) in order, each bound to exactly its tensor's size (arrayLength()
 * is the element count), and runs `workgroups` workgroups of its entry point `main`.
 */
export function dispatchMultiOutput(backendIn: unknown, key: string, code: string, inputs: tf.TensorInfo[], outputShapes: number[][], uniforms: ArrayBuffer, workgroups: [number, number]): tf.TensorInfo[] {
  const backend = backendIn as BackendInternals;
  const storage = inputs.length + outputShapes.length;
  if (storage > storageBuffersPerShader(backend)) throw new Error(`${key}: ${storage} storage buffers exceed the device's ${storageBuffersPerShader(backend)} per shader`);
  const outputs = outputShapes.map((shape) => backend.makeTensorInfo(shape, 'float32'));
  recordDispatch(backend, key, code, [...inputs, ...outputs], uniforms, [workgroups[0], workgroups[1], 1]);
  return outputs;
}

/**
 * A webgpu backend that counts the reads in flight per dataId (webgpu.ts's backend does): the
 * condition for writing a buffer in place, since a read that completes after the write would
 * cache the old values on the CPU as the tensor's (tfjs-webgpu keeps a read's values as the
 * tensor's from then on: it assumes a buffer never changes).
 */
export interface ReadTracking {
  readsInFlight: Map<object, number>;
}

/**
 * Whether `t`'s buffer may be written in place: nothing but `t` can see it. tfjs-webgpu gives every
 * dataId its own buffer (the zero-copy `external` ones aside) and counts the tensors that share a
 * dataId (reshape, clone, a variable initialised from another tensor) in its refCount; the only
 * other ways to its contents are a read in flight and the CPU copy a finished read keeps (dropped
 * by dispatchInPlace). So: a backend that counts its reads, refCount 1, not external, no read in
 * flight, float32.
 */
export function exclusivelyOwned(backendIn: unknown, t: tf.TensorInfo): boolean {
  const backend = backendIn as BackendInternals & Partial<ReadTracking>;
  if (!(backend.readsInFlight instanceof Map) || t.dtype !== 'float32') return false;
  const data = backend.tensorMap.get(t.dataId);
  return data !== undefined && data.refCount === 1 && data.external !== true && data.complexTensorInfos == null && !backend.readsInFlight.has(t.dataId);
}

/**
 * One dispatch that updates `written` in place: `code` binds the uniform struct at binding 0, then
 * `bound` in order (read or read_write as it declares them), each bound to exactly its tensor's
 * size. Every tensor of `written` must be in `bound`, exclusively owned (exclusivelyOwned) and
 * bound once (a buffer bound twice where one binding writes is invalid); their CPU copies, if a
 * read left one, are dropped after the write.
 */
export function dispatchInPlace(backendIn: unknown, key: string, code: string, bound: tf.TensorInfo[], written: tf.TensorInfo[], uniforms: ArrayBuffer, workgroups: [number, number, number]): void {
  const backend = backendIn as BackendInternals;
  if (bound.length > storageBuffersPerShader(backend)) throw new Error(`${key}: ${bound.length} storage buffers exceed the device's ${storageBuffersPerShader(backend)} per shader`);
  for (const w of written) {
    if (!exclusivelyOwned(backend, w)) throw new Error(`${key}: a buffer written in place is shared, being read or not float32`);
    if (bound.filter((b) => b.dataId === w.dataId).length !== 1) throw new Error(`${key}: a buffer written in place must be bound exactly once`);
  }
  recordDispatch(backend, key, code, bound, uniforms, workgroups);
  for (const w of written) (backend.tensorMap.get(w.dataId) as TensorData).values = null;
}

/** `t` again as a kernel's output (as tfjs's Identity returns its input: one more tensor holds the dataId). */
export function sameTensor(backendIn: unknown, t: tf.TensorInfo): tf.TensorInfo {
  (backendIn as BackendInternals).incRef(t.dataId);
  return { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
}

/** Binds `bound` (bindings 1..n, after the uniforms at 0) and records one dispatch of `code` into the backend's compute pass. */
function recordDispatch(backend: BackendInternals, key: string, code: string, bound: tf.TensorInfo[], uniforms: ArrayBuffer, workgroups: [number, number, number]): void {
  let cache = pipelines.get(backend);
  if (!cache) pipelines.set(backend, (cache = new Map()));
  let pipeline = cache.get(key);
  if (!pipeline) {
    pipeline = backend.device.createComputePipeline({ layout: 'auto', compute: { module: backend.device.createShaderModule({ code }), entryPoint: 'main' } });
    cache.set(key, pipeline);
  }
  const entries = bound.map((t, i) => {
    backend.uploadToGPU(t.dataId);
    backend.commandQueueOwnedIds.add(t.dataId);
    const bytes = 4 * t.shape.reduce((p, d) => p * d, 1);
    return { binding: i + 1, resource: { buffer: backend.tensorMap.get(t.dataId)?.resource, offset: 0, size: bytes } };
  });
  // GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM (the constants, as tfjs-webgpu's own uniforms are released after the submit).
  const uniformBuffer = backend.bufferManager.acquireBuffer(uniforms.byteLength, 0x0008 | 0x0040);
  backend.queue.writeBuffer(uniformBuffer, 0, uniforms, 0, uniforms.byteLength);
  backend.uniformPendingDisposal.push(uniformBuffer);
  const bindGroup = backend.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: uniformBuffer } }, ...entries] });
  backend.ensureCommandEncoderReady();
  if (!backend.computePassEncoder) backend.computePassEncoder = (backend.commandEncoder as NonNullable<BackendInternals['commandEncoder']>).beginComputePass({});
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  backend.dispatchCountInPass++;
  if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

/** A 2-D grid of MULTI_THREADS-thread workgroups covering `size` elements: element gid.x + gid.y * nwg.x * MULTI_THREADS. */
export function elementGrid(backend: unknown, size: number): [number, number] {
  const groups = Math.max(1, Math.ceil(size / MULTI_THREADS));
  const perRow = Math.min(groups, (backend as BackendInternals).device.limits['maxComputeWorkgroupsPerDimension']);
  return [perRow, Math.ceil(groups / perRow)];
}
