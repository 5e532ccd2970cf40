import * as tf from '@tensorflow/tfjs';
import { fusedConvAdd, hasFusedConvAdd } from './fused';

/**
 * A 2-D convolution (NHWC input, HWIO kernel, square odd kernel, symmetric zero padding). On a
 * backend without a Conv2DBackpropFilter kernel (wasm) its gradients are computed as forward
 * convolutions / matMuls, so it trains there (and skips wasm's slow input-gradient kernel).
 *
 * @param x input [N, H, W, Cin]
 * @param w kernel [k, k, Cin, Cout]
 * @param stride 1 or 2
 * @param pad zero padding on each side (1 for 3x3 "same" and the stride-2 downsample, 0 for 1x1)
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2, pad: number): tf.Tensor4D {
  // Backends with both gradient kernels (our native one, tfjs-node, cpu) use them directly.
  if (tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) !== undefined) return tf.conv2d(x, w, stride, pad === 0 ? 'valid' : padSpec(pad, pad, pad, pad));
  return conv2dWithCustomGradients(x, w, stride, pad);
}

/** conv2d plus a per-channel bias: one fused kernel (bias added inside the GEMM) where the backend has both gradient kernels. */
export function conv2dBias(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, stride: 1 | 2, pad: number): tf.Tensor4D {
  if (tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) !== undefined) {
    return tf.fused.conv2d({ x, filter: w, bias: b, strides: stride, pad: pad === 0 ? 'valid' : padSpec(pad, pad, pad, pad) });
  }
  return tf.add(conv2dWithCustomGradients(x, w, stride, pad), b);
}

/**
 * conv2d + bias + an addend: per image ([N,1,1,Cout], a time embedding) or the full output (a
 * residual). One kernel where the backend fuses it (the GEMM accumulates onto bias + addend),
 * else conv2dBias then an add (the same maths; the rounding order differs).
 */
export function conv2dBiasAdd(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, addend: tf.Tensor4D, stride: 1 | 2, pad: number): tf.Tensor4D {
  if (hasFusedConvAdd()) return fusedConvAdd(x, w, b, addend, { stride, pad });
  return tf.add(conv2dBias(x, w, b, stride, pad), addend);
}

/** The same convolution, always with the gradients below (what the wasm backend runs). */
export function conv2dWithCustomGradients(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2, pad: number): tf.Tensor4D {
  return customConv(stride, pad)(x, w) as tf.Tensor4D;
}

type ConvFn = (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
const cache = new Map<string, ConvFn>();

function padSpec(top: number, bottom: number, left: number, right: number): [[0, 0], [number, number], [number, number], [0, 0]] {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

function customConv(stride: 1 | 2, pad: number): ConvFn {
  const key = `${stride}:${pad}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor4D;
    const w = args[1] as tf.Tensor4D;
    const save = args[2] as tf.GradSaveFunc;
    save([x, w]);
    const value = tf.conv2d(x, w, stride, pad === 0 ? 'valid' : padSpec(pad, pad, pad, pad));
    const gradFunc = (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
      const dy = dyIn as tf.Tensor4D;
      const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
      return [inputGrad(dy, sw, sx.shape, stride, pad), filterGrad(sx, dy, sw.shape, stride, pad)];
    };
    return { value, gradFunc };
  }) as unknown as ConvFn;
  cache.set(key, fn);
  return fn;
}

/** dx as a stride-1 forward conv of the (zero-dilated, padded) output gradient with the flipped, transposed kernel. */
function inputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: number[], stride: number, pad: number): tf.Tensor4D {
  const [n, h, wd] = xShape;
  const [k] = w.shape;
  const [, ho, wo, cout] = dy.shape;
  const wFlip = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  let d: tf.Tensor4D = dy;
  if (stride > 1) {
    // Put dy on a stride-spaced grid with zeros between (a broadcast multiply keeps this a
    // plain elementwise op on every backend), then trim the trailing zeros.
    const mask = tf.tensor6d([1, 0, 0, 0], [1, 1, 2, 1, 2, 1]);
    const both = tf.mul(tf.reshape(dy, [n, ho, 1, wo, 1, cout]), mask);
    d = tf.slice(tf.reshape(both, [n, ho * 2, wo * 2, cout]) as tf.Tensor4D, [0, 0, 0, 0], [n, (ho - 1) * 2 + 1, (wo - 1) * 2 + 1, cout]);
  }
  const [, ld, lw] = d.shape;
  const top = k - 1 - pad;
  const left = k - 1 - pad;
  const bottom = h + k - 1 - top - ld;
  const right = wd + k - 1 - left - lw;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) throw new Error(`conv2d gradient: unsupported geometry k=${k} stride=${stride} pad=${pad}`);
  return tf.conv2d(d, wFlip, 1, padSpec(top, bottom, left, right)) as tf.Tensor4D;
}

/**
 * dw as ONE forward convolution: the batch becomes the contraction axis. The padded input,
 * transposed to [Cin, Hp, Wp, N], is convolved with dy transposed to [Ho, Wo, N, Cout] (dilated by
 * the stride), giving [Cin, k, k, Cout]. Transposes and convs are native wasm kernels, whereas the
 * slices/concat of an im2col run in JavaScript there.
 */
function filterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, wShape: number[], stride: number, pad: number): tf.Tensor4D {
  const [k, , cin, cout] = wShape;
  const [n, ho, wo] = dy.shape;
  if (k === 1 && pad === 0 && stride === 1) {
    const m = n * ho * wo;
    // An explicit transpose + plain matMul is ~3x faster on wasm than matMul(transposeA).
    return tf.reshape(tf.matMul(tf.transpose(tf.reshape(x, [m, x.shape[3]])), tf.reshape(dy, [m, cout])), [1, 1, cin, cout]);
  }
  const xp = pad > 0 ? tf.pad(x, padSpec(pad, pad, pad, pad)) : x;
  const xt = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
  const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  let g = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', stride) as tf.Tensor4D;
  if (g.shape[1] !== k || g.shape[2] !== k) g = tf.slice(g, [0, 0, 0, 0], [cin, k, k, cout]);
  return tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D;
}
