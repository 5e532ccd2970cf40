import * as tf from '@tensorflow/tfjs';

/**
 * Fused kernels a backend MAY provide (our native backend does). The model asks for them by name
 * and falls back to composite tf ops where the active backend lacks them, so this library never
 * depends on a native package. The lookup is `tf.getKernel(name, tf.getBackend())`: WGSL kernels
 * registered for `webgpu` under these names (tf.registerKernel) are used with no change here.
 * On a GPU, `adamEma`'s `gradScale` attribute would cost a read of the gradient norm every step
 * (see train.ts): a GPU kernel should take the norm as a tensor input instead.
 */
export const FUSED_KERNELS = {
  /** inputs {x [N,H,W,C], gamma [C], beta [C]}; attrs {groups, eps, silu}; outputs [y, mean [N,G], rstd [N,G]]. */
  groupNorm: 'DdaeGroupNorm',
  /** inputs {dy, x, gamma, beta, mean, rstd}; attrs as groupNorm; outputs [dx, dgamma, dbeta]. */
  groupNormGrad: 'DdaeGroupNormGrad',
  /** inputs {p, g, m, v, ema}; attrs AdamEmaAttrs; outputs [p, m, v, ema] after one step. */
  adamEma: 'DdaeAdamEma',
  /** inputs {x, filter, bias [Cout], addend [N,1,1,Cout] or [N,Ho,Wo,Cout]}; attrs ConvAddAttrs; output conv + bias + addend. */
  convAdd: 'DdaeConv2DAdd',
} as const;

/** Fused kernels a GPU backend MAY provide (webgpu does: libs/compute src/webgpu-kernels/); the CPU backends do not. */
export const GPU_FUSED_KERNELS = {
  /**
   * Adam + EMA with the clipping scale as a scalar tensor input (a GPU never waits for the norm):
   * inputs {p, g, m, v, scale [], ema?}; attrs AdamEmaAttrs without gradScale; outputs [p, m, v]
   * plus ema when given.
   */
  adamEmaScaled: 'DdaeAdamEmaScaled',
  /**
   * The global-norm clipping scale min(1, clip / (sqrt(sum of every input's squares) + 1e-6)) as a
   * scalar tensor (what adamEmaScaled takes): inputs {0: g0, 1: g1, ...} (any shapes, float32);
   * attrs ClipScaleAttrs; output scale [].
   */
  clipScale: 'DdaeClipScale',
  /**
   * adamEmaScaled over many parameters at once, writing each parameter's p, m, v and EMA into its
   * own buffers where nothing else can see them (several parameters per dispatch): inputs {scale [],
   * p0, g0, m0, v0, e0?, p1, ...}; attrs as adamEmaScaled; outputs p, m, v[, ema] of each parameter
   * in order, the same tensors (dataIds) where updated in place, new ones elsewhere.
   */
  adamEmaInPlace: 'DdaeAdamEmaInPlace',
} as const;

/** The gradient norm above which gradients are scaled down (the task's `gradClip`). */
export interface ClipScaleAttrs {
  clip: number;
}

/** Whether the active backend computes the clipping scale as one kernel. */
export function hasFusedClipScale(): boolean {
  return tf.getKernel(GPU_FUSED_KERNELS.clipScale, tf.getBackend()) !== undefined;
}

/** min(1, clip / (global L2 norm of `grads` + 1e-6)), on the device, never read on the host. */
export function fusedClipScale(grads: readonly tf.Tensor[], clip: number): tf.Scalar {
  const inputs = Object.fromEntries(grads.map((g, i) => [String(i), g])) as tf.NamedTensorMap;
  return tf.engine().runKernel(GPU_FUSED_KERNELS.clipScale, inputs, { clip } as unknown as tf.NamedAttrMap) as tf.Scalar;
}

/**
 * Backends whose `_FusedMatMul` adds the bias inside the matrix product's own kernel: webgpu (one
 * dispatch instead of a BatchMatMul and an Add). Not the cpu backend's, nor so our native one's,
 * which inherits it: that composes the cpu backend's JavaScript matMul with an add, bypassing the
 * native BLAS sgemm (BatchMatMul) that the composite below reaches. wasm keeps the composite too
 * (not measured there).
 */
const FUSED_MATMUL_BIAS_BACKENDS: readonly string[] = ['webgpu'];

/** Whether `matMulBias` runs as tfjs's fused matMul + bias on the active backend. */
export function hasFusedMatMulBias(): boolean {
  return FUSED_MATMUL_BIAS_BACKENDS.includes(tf.getBackend());
}

/**
 * A dense layer, x w + b (x [M, K], w [K, N], b [N]): tfjs's fused matMul with the bias in the
 * product's epilogue where the backend fuses it (`hasFusedMatMulBias`), else matMul then add (the
 * same maths; the rounding order of the bias may differ). Gradients: tfjs's own for both (the
 * fused op's with a linear activation: the two products and the bias's sum over rows).
 */
export function matMulBias(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  if (hasFusedMatMulBias()) return tf.fused.matMul({ a: x, b: w as tf.Tensor2D, bias: b }) as tf.Tensor2D;
  return tf.add(tf.matMul(x, w as tf.Tensor2D), b) as tf.Tensor2D;
}

/** A square convolution's stride and symmetric zero padding. */
export interface ConvAddAttrs {
  stride: 1 | 2;
  pad: number;
}

/** Whether the active backend has the fused convolution + bias + addend kernel. */
export function hasFusedConvAdd(): boolean {
  return tf.getKernel(FUSED_KERNELS.convAdd, tf.getBackend()) !== undefined;
}

const convAddFns = new Map<string, (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, addend: tf.Tensor) => tf.Tensor>();

/**
 * conv2d(x, w) + b + addend as ONE kernel (the GEMM accumulates onto bias + addend), where the
 * addend is per image ([N,1,1,Cout]: a time embedding) or the whole output (a residual). Saves a
 * full pass over the activations per use. Gradients: the backend's two convolution gradient
 * kernels, the bias's sum, and dy (summed over H and W for a per-image addend).
 */
export function fusedConvAdd(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor, addend: tf.Tensor4D, attrs: ConvAddAttrs): tf.Tensor4D {
  const key = `${attrs.stride}:${attrs.pad}`;
  let fn = convAddFns.get(key);
  if (!fn) {
    const kernelAttrs = { ...attrs } as unknown as tf.NamedAttrMap;
    const pad = attrs.pad === 0 ? 'valid' : [[0, 0], [attrs.pad, attrs.pad], [attrs.pad, attrs.pad], [0, 0]];
    fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, wi, bi, ai] = args as tf.Tensor[];
      const save = args[4] as tf.GradSaveFunc;
      const y = tf.engine().runKernel(FUSED_KERNELS.convAdd, { x: xi, filter: wi, bias: bi, addend: ai }, kernelAttrs) as tf.Tensor;
      save([xi, wi]);
      const perImage = ai.shape[1] === 1 && ai.shape[2] === 1 && (y.shape[1] !== 1 || y.shape[2] !== 1);
      const gradFunc = (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
        const dy = dyIn as tf.Tensor4D;
        const [sx, sw] = saved;
        const convAttrs = { strides: attrs.stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
        const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: sw }, { ...convAttrs, inputShape: sx.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: sx, dy }, { ...convAttrs, filterShape: sw.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
        return [dx, dw, tf.sum(dy, [0, 1, 2]), perImage ? tf.sum(dy, [1, 2], true) : tf.reshape(dy, dy.shape)];
      };
      return { value: y, gradFunc };
    }) as unknown as (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, addend: tf.Tensor) => tf.Tensor;
    convAddFns.set(key, fn);
  }
  return fn(x, w, b, addend) as tf.Tensor4D;
}

/** One Adam step on a parameter (gradient times `gradScale`, bias-corrected) then its EMA update. */
export interface AdamEmaAttrs {
  gradScale: number;
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  /** 1 - b1^step and 1 - b2^step. */
  bc1: number;
  bc2: number;
  /** EMA decay at this step. */
  decay: number;
}

/** Whether the active backend has the fused optimiser kernel. */
export function hasFusedAdamEma(): boolean {
  return tf.getKernel(FUSED_KERNELS.adamEma, tf.getBackend()) !== undefined;
}

/** Whether the active backend has the fused optimiser kernel that takes the clipping scale as a tensor. */
export function hasFusedAdamEmaScaled(): boolean {
  return tf.getKernel(GPU_FUSED_KERNELS.adamEmaScaled, tf.getBackend()) !== undefined;
}

/** New values of (p, m, v[, ema]) after one step, the gradient scaled by the scalar tensor `scale`. */
export function fusedAdamEmaScaled(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, scale: tf.Scalar, ema: tf.Tensor | undefined, attrs: Omit<AdamEmaAttrs, 'gradScale'>): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = ema ? { p, g, m, v, scale, ema } : { p, g, m, v, scale };
  return tf.engine().runKernel(GPU_FUSED_KERNELS.adamEmaScaled, inputs, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/** Whether the active backend has the fused optimiser kernel that updates many parameters in place. */
export function hasFusedAdamEmaInPlace(): boolean {
  return tf.getKernel(GPU_FUSED_KERNELS.adamEmaInPlace, tf.getBackend()) !== undefined;
}

/** One parameter's tensors for {@link fusedAdamEmaInPlace}. */
export interface AdamEmaTensors {
  p: tf.Tensor;
  g: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  ema?: tf.Tensor | undefined;
}

/**
 * One step of every parameter given, the gradients scaled by `scale`: per parameter its new
 * [p, m, v] (plus ema when given), each either the input tensor itself (its buffer updated in
 * place: a tensor sharing that dataId) or a new tensor; the caller assigns those that differ.
 */
export function fusedAdamEmaInPlace(params: readonly AdamEmaTensors[], scale: tf.Scalar, attrs: Omit<AdamEmaAttrs, 'gradScale'>): tf.Tensor[][] {
  const inputs: tf.NamedTensorMap = { scale };
  params.forEach((t, i) => {
    Object.assign(inputs, { [`p${i}`]: t.p, [`g${i}`]: t.g, [`m${i}`]: t.m, [`v${i}`]: t.v });
    if (t.ema) inputs[`e${i}`] = t.ema;
  });
  const flat = tf.engine().runKernel(GPU_FUSED_KERNELS.adamEmaInPlace, inputs, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  let at = 0;
  return params.map((t) => {
    const n = t.ema ? 4 : 3;
    at += n;
    return flat.slice(at - n, at);
  });
}

/** New values of (p, m, v, ema) after one step; the caller assigns them to its variables. */
export function fusedAdamEma(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, ema: tf.Tensor, attrs: AdamEmaAttrs): [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(FUSED_KERNELS.adamEma, { p, g, m, v, ema }, attrs as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
}

export interface GroupNormAttrs {
  groups: number;
  eps: number;
  /** Apply SiLU to the normalised output (its gradient included). */
  silu: boolean;
}

/** Whether the active backend has the fused GroupNorm kernel. */
export function hasFusedGroupNorm(): boolean {
  return tf.getKernel(FUSED_KERNELS.groupNorm, tf.getBackend()) !== undefined;
}

const fns = new Map<string, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>();

/**
 * GroupNorm (optionally followed by SiLU) as one kernel forward and one backward, on backends that
 * provide `FUSED_KERNELS`. Same maths as the composite: per (image, group) mean and biased
 * variance over H, W and the group's channels, then the per-channel affine.
 */
export function fusedGroupNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, attrs: GroupNormAttrs): tf.Tensor4D {
  const key = `${attrs.groups}:${attrs.eps}:${attrs.silu}`;
  let fn = fns.get(key);
  if (!fn) {
    const kernelAttrs = { ...attrs } as unknown as tf.NamedAttrMap;
    fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, gi, bi] = args as tf.Tensor[];
      const save = args[3] as tf.GradSaveFunc;
      const [y, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.groupNorm, { x: xi, gamma: gi, beta: bi }, kernelAttrs) as tf.Tensor[];
      save([xi, gi, bi, mean, rstd]);
      const gradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
        const [sx, sg, sb, sm, sr] = saved;
        return tf.engine().runKernel(FUSED_KERNELS.groupNormGrad, { dy: dy as tf.Tensor, x: sx, gamma: sg, beta: sb, mean: sm, rstd: sr }, kernelAttrs) as tf.Tensor[];
      };
      return { value: y, gradFunc };
    }) as unknown as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
    fns.set(key, fn);
  }
  return fn(x, gamma, beta) as tf.Tensor4D;
}
