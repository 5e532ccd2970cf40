import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, type ConvAddAttrs } from '@ddae/diffusion';
import { convDims, nhwcConv } from './conv-geometry';
import { allF32, f32, storage, type KernelFamily } from './native-kernel';

/**
 * Forward convolutions (native/conv2d.cc, native/conv2d-direct.cc): Conv2D, FusedConv2D with a
 * bias and a linear activation, and our fused conv + bias + addend.
 */
export const conv2dKernels: KernelFamily = (addon) => ({
  Conv2D: (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as tf.Conv2DAttrs;
    if (!allF32(x, filter)) return undefined;
    const info = nhwcConv(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const y = new Float32Array(tf.util.sizeFromShape(info.outShape));
    addon.conv2dForward(f32(be, x), f32(be, filter), y, convDims(info), undefined, undefined);
    return be.makeTensorInfo(info.outShape, 'float32', y);
  },

  FusedConv2D: (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as unknown as tf.FusedConv2DInputs;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as tf.FusedConv2DAttrs;
    if (!bias || preluActivationWeights || activation !== 'linear' || !allF32(x, filter, bias) || bias.shape.length !== 1) return undefined;
    const info = nhwcConv(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode, dataFormat);
    if (!info || bias.shape[0] !== info.outChannels) return undefined;
    const be = storage(args);
    const y = new Float32Array(tf.util.sizeFromShape(info.outShape));
    addon.conv2dForward(f32(be, x), f32(be, filter), y, convDims(info), f32(be, bias), undefined);
    return be.makeTensorInfo(info.outShape, 'float32', y);
  },

  [FUSED_KERNELS.convAdd]: (args) => {
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
  },
});
