import { setEnvDefault } from '@ddae/config';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The compiled addon's functions (native/kernels.cc). Arrays are written in place. */
export interface KernelsAddon {
  /** directConv: the instruction set of the direct 3x3 convolution kernel (avx512, avx2, baseline) or off (DDAE_DIRECT_CONV=0). */
  init(candidates: string[], threads: number): { library: string; blasConfig: string; threads: number; directConv: string };
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array, beta: number): void;
  /** y = conv(x, w) + bias + addend; the addend is per image ([n, cout]) or y's full shape. */
  conv2dForward(x: Float32Array, w: Float32Array, y: Float32Array, dims: Int32Array, bias: Float32Array | undefined, addend: Float32Array | undefined): void;
  stridedCopy(src: Float32Array, out: Float32Array, shape: Int32Array, srcStrides: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, dims: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, dims: Int32Array): void;
  groupNormForward(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, mean: Float32Array, rstd: Float32Array, dims: Int32Array, eps: number, silu: boolean): void;
  groupNormBackward(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    dims: Int32Array,
    silu: boolean,
  ): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array): void;
  reduceSum(x: Float32Array, out: Float32Array, shape: Int32Array, outStrides: Int32Array): void;
  adamEma(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, ema: Float32Array, pOut: Float32Array, mOut: Float32Array, vOut: Float32Array, emaOut: Float32Array, hyper: Float32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  copyRows(src: Float32Array, srcOffset: number, srcStride: number, dst: Float32Array, dstOffset: number, dstStride: number, rowLength: number, rows: number): void;
}

/** Where `npm ci` (scripts/build-native.mjs, node-gyp) puts the addon. */
export const ADDON_PATH = path.resolve(__dirname, '..', 'build', 'Release', 'ddae_kernels.node');

/** BLAS libraries tried in order (dlopen names); DDAE_BLAS_LIBRARY, when set, goes first. */
export const DEFAULT_BLAS_CANDIDATES = ['libopenblas.so.0', 'libopenblas.so', 'libblis.so.4', 'libmkl_rt.so', 'libblas.so.3'];

/** Loads the addon; throws an Error whose message says how to get it where it is missing. */
export function loadAddon(file = ADDON_PATH): KernelsAddon {
  if (!fs.existsSync(file)) {
    throw new Error(`native kernels not built (${path.relative(process.cwd(), file)} is missing): they build at npm ci with g++ and Node's headers; run "npm run build:native" to see why they did not`);
  }
  // OpenMP threads that spin between parallel regions steal cores from other processes on a
  // shared machine (two workers on two cores); sleeping costs microseconds per region here.
  // Read by libgomp when the addon loads, so set before; an explicit setting wins.
  setEnvDefault('OMP_WAIT_POLICY', 'PASSIVE');
  // A compiled module is loaded with require: there is no other way to load N-API code.
  return require(file) as KernelsAddon;
}
