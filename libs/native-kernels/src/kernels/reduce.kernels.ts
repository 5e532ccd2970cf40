import * as tf from '@tensorflow/tfjs';
import { allF32, collapse, contiguousStrides, f32, i32, storage, unreachable, type KernelFamily, type NativeKernel } from './native-kernel';

/** Sum and Mean over any axes (native/reduce.cc). */
export const reduceKernels: KernelFamily = (addon) => {
  const sum: NativeKernel = (args) => {
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
  };

  return {
    Sum: sum,
    Mean: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      if (!allF32(x) || x.shape.length === 0) return undefined;
      const total = sum(args, () => unreachable('Sum')) as tf.TensorInfo | undefined;
      if (!total) return undefined;
      const be = storage(args);
      const values = f32(be, total);
      const count = tf.util.sizeFromShape(x.shape) / Math.max(1, tf.util.sizeFromShape(total.shape));
      for (let i = 0; i < values.length; i++) values[i] /= count;
      return total;
    },
  };
};
