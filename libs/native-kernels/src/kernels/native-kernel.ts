import * as tf from '@tensorflow/tfjs';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelsAddon } from '../addon';

export type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = tf.TensorInfo | tf.TensorInfo[];

/** A native kernel: its result, or undefined to let the cpu kernel (`fallback`) handle the case. */
export type NativeKernel = (args: KernelArgs, fallback: tf.KernelFunc) => KernelResult | undefined;

/**
 * One kernel family (one file under kernels/, one .cc file under native/ where it has its own
 * native code): the tf kernels it implements, by kernel name, on the loaded addon.
 */
export type KernelFamily = (addon: KernelsAddon) => Record<string, NativeKernel>;

/** The backend's storage: the cpu backend's typed arrays in the JS heap. */
export function storage(args: KernelArgs): MathBackendCPU {
  return args.backend as MathBackendCPU;
}

export function f32(be: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  const v = be.data.get(t.dataId)?.values;
  if (!(v instanceof Float32Array)) throw new Error(`native kernels: expected float32 data for a ${t.dtype} tensor`);
  return v;
}

export const allF32 = (...ts: tf.TensorInfo[]) => ts.every((t) => t.dtype === 'float32');

export const i32 = (xs: number[]) => Int32Array.from(xs);

export function unreachable(name: string): never {
  throw new Error(`native kernel ${name} has no fallback`);
}

export function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Merges adjacent axes that every operand walks contiguously (and drops size-1 axes), so a
 * broadcast over [N,H,W,C] + [C] becomes a 2-D loop. strides[k] is each operand's stride list.
 */
export function collapse(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[k] * shape[k])) {
      outShape[last] *= shape[k];
      strides.forEach((s, j) => (outStrides[j][last] = s[k]));
    } else {
      outShape.push(shape[k]);
      strides.forEach((s, j) => outStrides[j].push(s[k]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [1]) };
  return { shape: outShape, strides: outStrides };
}

/** Strides of `shape` read as broadcast to `out` (0 on broadcast axes, leading axes padded). */
export function broadcastStrides(shape: number[], out: number[]): number[] {
  const padded = [...new Array<number>(out.length - shape.length).fill(1), ...shape];
  const s = contiguousStrides(padded);
  return padded.map((d, i) => (d === 1 && out[i] !== 1 ? 0 : s[i]));
}
