import * as tf from '@tensorflow/tfjs';

/**
 * Fused kernels a backend MAY provide (our native backend does). The model asks for them by name
 * and falls back to composite tf ops where the active backend lacks them, so this library never
 * depends on a native package.
 */
export const FUSED_KERNELS = {
  /** inputs {x [N,H,W,C], gamma [C], beta [C]}; attrs {groups, eps, silu}; outputs [y, mean [N,G], rstd [N,G]]. */
  groupNorm: 'DdaeGroupNorm',
  /** inputs {dy, x, gamma, beta, mean, rstd}; attrs as groupNorm; outputs [dx, dgamma, dbeta]. */
  groupNormGrad: 'DdaeGroupNormGrad',
  /** inputs {p, g, m, v, ema}; attrs AdamEmaAttrs; outputs [p, m, v, ema] after one step. */
  adamEma: 'DdaeAdamEma',
} as const;

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
