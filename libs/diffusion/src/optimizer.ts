import * as tf from '@tensorflow/tfjs';
import { fusedAdamEma, fusedAdamEmaInPlace, fusedAdamEmaScaled, hasFusedAdamEma, hasFusedAdamEmaInPlace, hasFusedAdamEmaScaled, type AdamEmaAttrs } from './fused';

/**
 * Adam, written once: the diffusion trainer and the linear probes (libs/probe) step through
 * {@link adamStep}. Where the backend registers our fused `DdaeAdamEma` kernel (libs/native-kernels)
 * a parameter's whole `corrected` update (clipping scale, moments, step, EMA) is that one kernel;
 * on webgpu it is `DdaeAdamEmaInPlace` (WGSL, the clipping scale a tensor: several parameters per
 * dispatch, written into their own buffers where nothing else holds them, else one dispatch per
 * parameter, instead of about 18 per parameter); elsewhere (cpu, wasm, tfjs-node) it is composed of tf ops, the same ops in the same order
 * as the two trainers used before this module existed, so no number changed. The probes' `folded`
 * form always composes tf ops: the kernel rounds its constants differently (1 - b1 in float32), so
 * fusing it would move the probes' weights by an ulp a step on the native backend, for no speed
 * that matters on their [dim x classes] parameters.
 */

/** Adam's constants, as both trainers use them (PyTorch's and tf.train.adam's defaults; no weight decay). */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;

/** One parameter and its optimiser state. */
export interface AdamSlot {
  param: tf.Variable;
  /** First and second moments, zero at the start. */
  m: tf.Variable;
  v: tf.Variable;
  /** The exponential moving average of the parameter, updated after the step when given. */
  ema?: tf.Variable;
}

/**
 * Where epsilon enters, which changes the last bits of every update (both are Adam):
 * - `corrected`: `p -= lr * m̂ / (sqrt(v̂) + eps)` with `m̂ = m / (1 - b1^t)`, `v̂ = v / (1 - b2^t)`:
 *   PyTorch's form, the reference's pretraining; the diffusion trainer's.
 * - `folded`: `p -= (lr * sqrt(1 - b2^t) / (1 - b1^t)) * m / (sqrt(v) + eps)`: Kingma & Ba's
 *   "efficient" form (tf.train.adam's); the linear probes'.
 */
export type AdamEpsilon = 'corrected' | 'folded';

export interface AdamStepOptions {
  /** The step being taken, 1-based (bias corrections use it). */
  step: number;
  /** Learning rate of this step (after warm-up or annealing). */
  lr: number;
  /**
   * Factor applied to every gradient first (global-norm clipping). A number, or a scalar tensor so
   * that a GPU never waits for the norm to be read; the fused kernel takes only a number. Default: none.
   */
  gradScale?: number | tf.Scalar;
  /** EMA decay of this step, for the slots that have an `ema`. Default 0 (the EMA copies the weights). */
  emaDecay?: number;
  /** See {@link AdamEpsilon}. Default `corrected`. */
  epsilon?: AdamEpsilon;
}

/**
 * Whether {@link adamStep} runs as our fused kernel on the active backend for this form: it then
 * needs the gradient scale as a number (read on the host, cheap on the CPU backends that have it).
 */
export function adamIsFused(epsilon: AdamEpsilon = 'corrected'): boolean {
  return epsilon === 'corrected' && hasFusedAdamEma();
}

/**
 * One Adam step on every slot: `grads[i]` is the gradient of `slots[i].param`. Assigns the new
 * parameters, moments and EMAs; disposes every tensor it makes (the caller owns the gradients).
 */
export function adamStep(slots: readonly AdamSlot[], grads: readonly tf.Tensor[], options: AdamStepOptions): void {
  if (grads.length !== slots.length) throw new RangeError(`adamStep: ${grads.length} gradients for ${slots.length} parameters`);
  const { beta1: b1, beta2: b2, epsilon: eps } = ADAM;
  const t = options.step;
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  const decay = options.emaDecay ?? 0;
  const folded = options.epsilon === 'folded';
  const scale = options.gradScale;
  if (!folded && hasFusedAdamEmaInPlace()) {
    // A GPU's fused step over all parameters (webgpu): buffers nothing else holds are updated in
    // place, several parameters per dispatch; a new tensor comes back for any other (assigned).
    const attrs = { lr: options.lr, b1, b2, eps, bc1, bc2, decay };
    tf.tidy(() => {
      const scaleT = typeof scale === 'object' ? scale : tf.scalar(scale ?? 1);
      const out = fusedAdamEmaInPlace(slots.map((s, i) => ({ p: s.param, g: grads[i], m: s.m, v: s.v, ema: s.ema })), scaleT, attrs);
      slots.forEach((s, i) => {
        const [p, m, v, e] = out[i];
        for (const [variable, value] of [[s.param, p], [s.m, m], [s.v, v], ...(s.ema ? [[s.ema, e]] : [])] as [tf.Variable, tf.Tensor][]) {
          if (value.dataId !== variable.dataId) variable.assign(value);
        }
      });
    });
    return;
  }
  if (!folded && hasFusedAdamEmaScaled()) {
    // A GPU's fused step (webgpu): the clipping scale stays a tensor, one kernel call per output.
    const attrs = { lr: options.lr, b1, b2, eps, bc1, bc2, decay };
    tf.tidy(() => {
      const scaleT = typeof scale === 'object' ? scale : tf.scalar(scale ?? 1);
      slots.forEach((s, i) => {
        const [p, m, v, e] = fusedAdamEmaScaled(s.param, grads[i], s.m, s.v, scaleT, s.ema, attrs);
        s.param.assign(p);
        s.m.assign(m);
        s.v.assign(v);
        if (s.ema) s.ema.assign(e);
      });
    });
    return;
  }
  if (!folded && hasFusedAdamEma() && typeof scale !== 'object') {
    const attrs: AdamEmaAttrs = { gradScale: scale ?? 1, lr: options.lr, b1, b2, eps, bc1, bc2, decay };
    tf.tidy(() => {
      slots.forEach((s, i) => {
        // Without an EMA the kernel's EMA output (decay 1: the old values) is discarded.
        const [p, m, v, e] = fusedAdamEma(s.param, grads[i], s.m, s.v, s.ema ?? s.param, s.ema ? attrs : { ...attrs, decay: 1 });
        s.param.assign(p);
        s.m.assign(m);
        s.v.assign(v);
        if (s.ema) s.ema.assign(e);
      });
    });
    return;
  }
  tf.tidy(() => {
    slots.forEach((s, i) => {
      const g = scale === undefined ? grads[i] : tf.mul(grads[i], scale);
      s.m.assign(tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1)));
      s.v.assign(tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2)));
      if (folded) {
        const alpha = (options.lr * Math.sqrt(bc2)) / bc1;
        s.param.assign(tf.sub(s.param, tf.mul(tf.div(s.m, tf.add(tf.sqrt(s.v), eps)), alpha)));
      } else {
        const update = tf.div(tf.div(s.m, bc1), tf.add(tf.sqrt(tf.div(s.v, bc2)), eps));
        s.param.assign(tf.sub(s.param, tf.mul(update, options.lr)));
      }
      if (s.ema) s.ema.assign(tf.add(tf.mul(s.ema, decay), tf.mul(s.param, 1 - decay)));
    });
  });
}
