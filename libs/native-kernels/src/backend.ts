import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { FUSED_KERNELS, type AdamEmaAttrs, type ConvAddAttrs, type GroupNormAttrs } from '@ddae/diffusion';
import { DEFAULT_BLAS_CANDIDATES, loadAddon, type KernelsAddon } from './addon';

/** The tf backend name under which the native kernels register. */
export const NATIVE_BACKEND = 'native';

/**
 * The pure-JS cpu backend's storage (plain typed arrays in the JS heap, so no 4 GB wasm heap and
 * no copies into the addon) with its hot kernels replaced by native code: convolutions and their
 * gradients (im2col + BLAS sgemm), matMul, fused GroupNorm(+SiLU), broadcasting add/sub/mul/div
 * and sums. Every other kernel is the cpu backend's.
 */
class NativeBackend extends MathBackendCPU {}

export interface NativeInfo {
  /** The BLAS library that was loaded, and its build description where it gives one. */
  library: string;
  blasConfig: string;
  /** Threads of BLAS and of the addon's OpenMP loops. */
  threads: number;
  /** The direct convolution kernel's instruction set (avx512, avx2, baseline), or off (DDAE_DIRECT_CONV=0). */
  directConv: string;
}

export interface NativeOptions {
  /** Threads (default DDAE_NATIVE_THREADS, else os.availableParallelism()). */
  threads?: number;
  /** BLAS libraries to try (default DDAE_BLAS_LIBRARY then DEFAULT_BLAS_CANDIDATES). */
  libraries?: string[];
}

let registered: NativeInfo | undefined;

/** Threads from DDAE_NATIVE_THREADS (a positive integer), else every core. */
export function nativeThreadsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['DDAE_NATIVE_THREADS']?.trim();
  if (!raw) return os.availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`DDAE_NATIVE_THREADS=${raw} must be a positive integer`);
  return n;
}

/**
 * Loads the addon and a BLAS, and registers the `native` tf backend (not selected: call
 * `tf.setBackend(NATIVE_BACKEND)`). Throws with the reason when either is missing. Idempotent.
 */
export function registerNativeBackend(options: NativeOptions = {}): NativeInfo {
  if (registered) return registered;
  const addon = loadAddon();
  const fromEnv = process.env['DDAE_BLAS_LIBRARY']?.trim();
  const libraries = options.libraries ?? [...(fromEnv ? [fromEnv] : []), ...DEFAULT_BLAS_CANDIDATES];
  const info = addon.init(libraries, options.threads ?? nativeThreadsFromEnv());
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 0);
  const overrides = nativeKernels(addon);
  for (const config of tf.getKernelsForBackend('cpu')) {
    const fallback = config.kernelFunc;
    const native = overrides.get(config.kernelName);
    tf.registerKernel({
      ...config,
      backendName: NATIVE_BACKEND,
      kernelFunc: native ? (args) => native(args, fallback) ?? fallback(args) : fallback,
    });
  }
  for (const name of Object.values(FUSED_KERNELS)) {
    const fn = overrides.get(name);
    if (!fn) throw new Error(`native kernels: ${name} missing`);
    tf.registerKernel({ kernelName: name, backendName: NATIVE_BACKEND, kernelFunc: (args) => fn(args, () => unreachable(name)) as tf.TensorInfo[] });
  }
  registered = info;
  return info;
}

function unreachable(name: string): never {
  throw new Error(`native kernel ${name} has no fallback`);
}

type Args = Parameters<tf.KernelFunc>[0];
type KernelResult = tf.TensorInfo | tf.TensorInfo[];
/** A native kernel: its result, or undefined to let the cpu kernel (`fallback`) handle the case. */
type NativeKernel = (args: Args, fallback: tf.KernelFunc) => KernelResult | undefined;

function storage(args: Args): MathBackendCPU {
  return args.backend as MathBackendCPU;
}

function f32(be: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  const v = be.data.get(t.dataId)?.values;
  if (!(v instanceof Float32Array)) throw new Error(`native kernels: expected float32 data for a ${t.dtype} tensor`);
  return v;
}

const allF32 = (...ts: tf.TensorInfo[]) => ts.every((t) => t.dtype === 'float32');

function contiguousStrides(shape: number[]): number[] {
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
function collapse(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
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
function broadcastStrides(shape: number[], out: number[]): number[] {
  const padded = [...new Array<number>(out.length - shape.length).fill(1), ...shape];
  const s = contiguousStrides(padded);
  return padded.map((d, i) => (d === 1 && out[i] !== 1 ? 0 : s[i]));
}

const i32 = (xs: number[]) => Int32Array.from(xs);

function convDims(info: tf.backend_util.Conv2DInfo): Int32Array {
  return i32([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.outHeight,
    info.outWidth,
  ]);
}

/** The geometry of an NHWC, undilated convolution, or undefined for what the addon does not cover. */
function nhwcConv(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: tf.Conv2DAttrs['pad'],
  dimRoundingMode: tf.Conv2DAttrs['dimRoundingMode'],
  dataFormat: 'NHWC' | 'NCHW',
): tf.backend_util.Conv2DInfo | undefined {
  const info = tf.backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, dilations, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
  return info.dataFormat === 'channelsLast' && info.dilationHeight === 1 && info.dilationWidth === 1 ? info : undefined;
}

type Shape4 = [number, number, number, number];

function nativeKernels(addon: KernelsAddon): Map<string, NativeKernel> {
  const k = new Map<string, NativeKernel>();

  k.set('Conv2D', (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as tf.Conv2DAttrs;
    if (!allF32(x, filter)) return undefined;
    const info = nhwcConv(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const y = new Float32Array(tf.util.sizeFromShape(info.outShape));
    addon.conv2dForward(f32(be, x), f32(be, filter), y, convDims(info), undefined, undefined);
    return be.makeTensorInfo(info.outShape, 'float32', y);
  });

  k.set('FusedConv2D', (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as unknown as tf.FusedConv2DInputs;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as tf.FusedConv2DAttrs;
    if (!bias || preluActivationWeights || activation !== 'linear' || !allF32(x, filter, bias) || bias.shape.length !== 1) return undefined;
    const info = nhwcConv(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode, dataFormat);
    if (!info || bias.shape[0] !== info.outChannels) return undefined;
    const be = storage(args);
    const y = new Float32Array(tf.util.sizeFromShape(info.outShape));
    addon.conv2dForward(f32(be, x), f32(be, filter), y, convDims(info), f32(be, bias), undefined);
    return be.makeTensorInfo(info.outShape, 'float32', y);
  });

  k.set(FUSED_KERNELS.convAdd, (args) => {
    const { x, filter, bias, addend } = args.inputs as Record<'x' | 'filter' | 'bias' | 'addend', tf.TensorInfo>;
    const { stride, pad } = args.attrs as unknown as ConvAddAttrs;
    const info = nhwcConv(x.shape, filter.shape, stride, 1, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]], undefined, 'NHWC');
    const [n, ho, wo, cout] = info?.outShape ?? [];
    const perImage = addend.shape.join() === [n, 1, 1, cout].join();
    if (!info || !allF32(x, filter, bias, addend) || bias.shape.join() !== `${cout}` || (!perImage && addend.shape.join() !== [n, ho, wo, cout].join())) {
      throw new Error(`${FUSED_KERNELS.convAdd}: unsupported shapes x [${x.shape}] filter [${filter.shape}] bias [${bias.shape}] addend [${addend.shape}]`);
    }
    const be = storage(args);
    const y = new Float32Array(tf.util.sizeFromShape(info.outShape));
    addon.conv2dForward(f32(be, x), f32(be, filter), y, convDims(info), f32(be, bias), f32(be, addend));
    return be.makeTensorInfo(info.outShape, 'float32', y);
  });

  k.set('Transpose', (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    if (!allF32(x) || x.shape.length === 0) return undefined;
    const be = storage(args);
    const outShape = perm.map((p) => x.shape[p]);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    if (out.length > 0) {
      const xs = contiguousStrides(x.shape);
      const c = collapse(outShape, [perm.map((p) => xs[p]), contiguousStrides(outShape)]);
      addon.stridedCopy(f32(be, x), out, i32(c.shape), i32(c.strides[0]));
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  });

  k.set('Conv2DBackpropInput', (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (!allF32(dy, filter)) return undefined;
    const info = nhwcConv(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const dx = new Float32Array(tf.util.sizeFromShape(inputShape));
    addon.conv2dBackpropInput(f32(be, dy), f32(be, filter), dx, convDims(info));
    return be.makeTensorInfo(inputShape, 'float32', dx);
  });

  k.set('Conv2DBackpropFilter', (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (!allF32(x, dy)) return undefined;
    const info = nhwcConv(x.shape, filterShape, strides, 1, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const dw = new Float32Array(tf.util.sizeFromShape(filterShape));
    addon.conv2dBackpropFilter(f32(be, x), f32(be, dy), dw, convDims(info));
    return be.makeTensorInfo(filterShape, 'float32', dw);
  });

  k.set('BatchMatMul', (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (!allF32(a, b) || a.shape.length < 2 || b.shape.length < 2) return undefined;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const kk = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (kk !== kb) return undefined; // let the cpu kernel raise its own shape error
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const na = tf.util.sizeFromShape(batchA);
    const nb = tf.util.sizeFromShape(batchB);
    // Same batch, or one side unbatched (size 1); other broadcasts go to the cpu kernel.
    if (na !== nb && na !== 1 && nb !== 1) return undefined;
    if (na === nb && na > 1 && batchA.join() !== batchB.join()) return undefined;
    const batchShape = na >= nb ? batchA : batchB;
    const batches = Math.max(na, nb);
    const be = storage(args);
    const av = f32(be, a);
    const bv = f32(be, b);
    const out = new Float32Array(batches * m * n);
    if (nb === 1 && !transposeA && batches > 1) {
      // [batch*m, k] x [k, n] in one call.
      addon.gemm(false, transposeB, batches * m, n, kk, av, bv, out, 0);
    } else {
      for (let i = 0; i < batches; i++) {
        const ai = na === 1 ? av : av.subarray(i * m * kk, (i + 1) * m * kk);
        const bi = nb === 1 ? bv : bv.subarray(i * kk * n, (i + 1) * kk * n);
        addon.gemm(transposeA, transposeB, m, n, kk, ai, bi, out.subarray(i * m * n, (i + 1) * m * n), 0);
      }
    }
    return be.makeTensorInfo([...batchShape, m, n], 'float32', out);
  });

  const binary = (op: number): NativeKernel => (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!allF32(a, b)) return undefined;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const be = storage(args);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    if (out.length > 0) {
      const c = collapse(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)]);
      addon.binary(op, f32(be, a), f32(be, b), out, i32(c.shape), i32(c.strides[0]), i32(c.strides[1]));
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  };
  k.set('Add', binary(0));
  k.set('Sub', binary(1));
  k.set('Multiply', binary(2));
  k.set('RealDiv', binary(3));

  k.set('Concat', (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const { axis } = args.attrs as unknown as tf.ConcatAttrs;
    if (inputs.length === 0 || !allF32(...inputs) || inputs[0].shape.length === 0) return undefined;
    const ax = tf.util.parseAxisParam(axis, inputs[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), ax);
    const be = storage(args);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    const outer = tf.util.sizeFromShape(outShape.slice(0, ax));
    const inner = tf.util.sizeFromShape(outShape.slice(ax + 1));
    const dstStride = outShape[ax] * inner;
    let offset = 0;
    for (const t of inputs) {
      const len = t.shape[ax] * inner;
      addon.copyRows(f32(be, t), 0, len, out, offset, dstStride, len, len === 0 ? 0 : outer);
      offset += len;
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  });

  k.set('SplitV', (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    if (!allF32(x) || x.shape.length === 0) return undefined;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const be = storage(args);
    const src = f32(be, x);
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    const srcStride = x.shape[ax] * inner;
    let offset = 0;
    return sizes.map((size) => {
      const shape = x.shape.slice();
      shape[ax] = size;
      const len = size * inner;
      const out = new Float32Array(outer * len);
      addon.copyRows(src, offset, srcStride, out, 0, len, len, len === 0 ? 0 : outer);
      offset += len;
      return be.makeTensorInfo(shape, 'float32', out);
    });
  });

  k.set('Softmax', (args) => {
    const { logits } = args.inputs as { logits: tf.TensorInfo };
    const { dim } = args.attrs as unknown as tf.SoftmaxAttrs;
    const rank = logits.shape.length;
    if (!allF32(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return undefined;
    const be = storage(args);
    const cols = logits.shape[rank - 1];
    const out = new Float32Array(tf.util.sizeFromShape(logits.shape));
    if (out.length > 0) addon.softmax(f32(be, logits), out, out.length / cols, cols);
    return be.makeTensorInfo(logits.shape, 'float32', out);
  });

  k.set('Sum', (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    if (!allF32(x) || x.shape.length === 0) return undefined;
    const axes = new Set(tf.util.parseAxisParam(axis, x.shape));
    const kept = x.shape.map((d, i) => (axes.has(i) ? 1 : d));
    const outShape = keepDims ? kept : x.shape.filter((_, i) => !axes.has(i));
    const be = storage(args);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    if (tf.util.sizeFromShape(x.shape) > 0) {
      const keptStrides = contiguousStrides(kept).map((s, i) => (axes.has(i) ? 0 : s));
      const c = collapse(x.shape, [contiguousStrides(x.shape), keptStrides]);
      addon.reduceSum(f32(be, x), out, i32(c.shape), i32(c.strides[1]));
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  });

  k.set('Mean', (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!allF32(x) || x.shape.length === 0) return undefined;
    const sum = k.get('Sum')?.(args, () => unreachable('Sum')) as tf.TensorInfo | undefined;
    if (!sum) return undefined;
    const be = storage(args);
    const values = f32(be, sum);
    const count = tf.util.sizeFromShape(x.shape) / Math.max(1, tf.util.sizeFromShape(sum.shape));
    for (let i = 0; i < values.length; i++) values[i] /= count;
    return sum;
  });

  const normDims = (x: tf.TensorInfo, groups: number) => {
    const [n, h, w, c] = x.shape;
    return i32([n, h * w, c, groups]);
  };

  k.set(FUSED_KERNELS.groupNorm, (args) => {
    const { x, gamma, beta } = args.inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
    const { groups, eps, silu } = args.attrs as unknown as GroupNormAttrs;
    if (x.shape.length !== 4 || !allF32(x, gamma, beta)) throw new Error(`${FUSED_KERNELS.groupNorm}: needs float32 [N,H,W,C] input, got ${x.dtype} [${x.shape}]`);
    const be = storage(args);
    const n = x.shape[0];
    const y = new Float32Array(tf.util.sizeFromShape(x.shape));
    const mean = new Float32Array(n * groups);
    const rstd = new Float32Array(n * groups);
    addon.groupNormForward(f32(be, x), f32(be, gamma), f32(be, beta), y, mean, rstd, normDims(x, groups), eps, silu);
    return [be.makeTensorInfo(x.shape, 'float32', y), be.makeTensorInfo([n, groups], 'float32', mean), be.makeTensorInfo([n, groups], 'float32', rstd)];
  });

  k.set(FUSED_KERNELS.groupNormGrad, (args) => {
    const { dy, x, gamma, beta, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'rstd', tf.TensorInfo>;
    const { groups, silu } = args.attrs as unknown as GroupNormAttrs;
    const be = storage(args);
    const c = x.shape[3];
    const dx = new Float32Array(tf.util.sizeFromShape(x.shape));
    const dgamma = new Float32Array(c);
    const dbeta = new Float32Array(c);
    addon.groupNormBackward(f32(be, dy), f32(be, x), f32(be, gamma), f32(be, beta), f32(be, mean), f32(be, rstd), dx, dgamma, dbeta, normDims(x, groups), silu);
    return [be.makeTensorInfo(x.shape, 'float32', dx), be.makeTensorInfo([c], 'float32', dgamma), be.makeTensorInfo([c], 'float32', dbeta)];
  });

  k.set(FUSED_KERNELS.adamEma, (args) => {
    const { p, g, m, v, ema } = args.inputs as Record<'p' | 'g' | 'm' | 'v' | 'ema', tf.TensorInfo>;
    const h = args.attrs as unknown as AdamEmaAttrs;
    const be = storage(args);
    const n = tf.util.sizeFromShape(p.shape);
    const outs = [0, 1, 2, 3].map(() => new Float32Array(n));
    const hyper = Float32Array.of(h.gradScale, h.lr, h.b1, h.b2, h.eps, h.bc1, h.bc2, h.decay);
    addon.adamEma(f32(be, p), f32(be, g), f32(be, m), f32(be, v), f32(be, ema), outs[0], outs[1], outs[2], outs[3], hyper);
    return outs.map((o) => be.makeTensorInfo(p.shape, 'float32', o));
  });

  return k;
}
