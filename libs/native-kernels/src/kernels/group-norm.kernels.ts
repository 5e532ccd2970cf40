import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, type GroupNormAttrs } from '@ddae/diffusion';
import { allF32, f32, i32, storage, type KernelFamily } from './native-kernel';

const normDims = (x: tf.TensorInfo, groups: number) => {
  const [n, h, w, c] = x.shape;
  return i32([n, h * w, c, groups]);
};

/** Our fused GroupNorm (+ SiLU) and its gradient (native/group-norm.cc). */
export const groupNormKernels: KernelFamily = (addon) => ({
  [FUSED_KERNELS.groupNorm]: (args) => {
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
  },

  [FUSED_KERNELS.groupNormGrad]: (args) => {
    const { dy, x, gamma, beta, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'rstd', tf.TensorInfo>;
    const { groups, silu } = args.attrs as unknown as GroupNormAttrs;
    const be = storage(args);
    const c = x.shape[3];
    const dx = new Float32Array(tf.util.sizeFromShape(x.shape));
    const dgamma = new Float32Array(c);
    const dbeta = new Float32Array(c);
    addon.groupNormBackward(f32(be, dy), f32(be, x), f32(be, gamma), f32(be, beta), f32(be, mean), f32(be, rstd), dx, dgamma, dbeta, normDims(x, groups), silu);
    return [be.makeTensorInfo(x.shape, 'float32', dx), be.makeTensorInfo([c], 'float32', dgamma), be.makeTensorInfo([c], 'float32', dbeta)];
  },
});
