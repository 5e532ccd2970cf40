import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, type AdamEmaAttrs } from '@ddae/diffusion';
import { f32, storage, type KernelFamily } from './native-kernel';

/** Our fused Adam step + EMA update of one parameter tensor (native/adam-ema.cc). */
export const adamEmaKernels: KernelFamily = (addon) => ({
  [FUSED_KERNELS.adamEma]: (args) => {
    const { p, g, m, v, ema } = args.inputs as Record<'p' | 'g' | 'm' | 'v' | 'ema', tf.TensorInfo>;
    const h = args.attrs as unknown as AdamEmaAttrs;
    const be = storage(args);
    const n = tf.util.sizeFromShape(p.shape);
    const outs = [0, 1, 2, 3].map(() => new Float32Array(n));
    const hyper = Float32Array.of(h.gradScale, h.lr, h.b1, h.b2, h.eps, h.bc1, h.bc2, h.decay);
    addon.adamEma(f32(be, p), f32(be, g), f32(be, m), f32(be, v), f32(be, ema), outs[0], outs[1], outs[2], outs[3], hyper);
    return outs.map((o) => be.makeTensorInfo(p.shape, 'float32', o));
  },
});
