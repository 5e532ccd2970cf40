import * as tf from '@tensorflow/tfjs';
import { convDims, nhwcConv } from './conv-geometry';
import { allF32, f32, storage, type KernelFamily } from './native-kernel';

/** The convolution's gradients (native/conv2d.cc): with respect to its input and to its filter. */
export const conv2dGradKernels: KernelFamily = (addon) => ({
  Conv2DBackpropInput: (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (!allF32(dy, filter)) return undefined;
    const info = nhwcConv(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const dx = new Float32Array(tf.util.sizeFromShape(inputShape));
    addon.conv2dBackpropInput(f32(be, dy), f32(be, filter), dx, convDims(info));
    return be.makeTensorInfo(inputShape, 'float32', dx);
  },

  Conv2DBackpropFilter: (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (!allF32(x, dy)) return undefined;
    const info = nhwcConv(x.shape, filterShape, strides, 1, pad, dimRoundingMode, dataFormat);
    if (!info) return undefined;
    const be = storage(args);
    const dw = new Float32Array(tf.util.sizeFromShape(filterShape));
    addon.conv2dBackpropFilter(f32(be, x), f32(be, dy), dw, convDims(info));
    return be.makeTensorInfo(filterShape, 'float32', dw);
  },
});
