import * as tf from '@tensorflow/tfjs';
import { allF32, collapse, contiguousStrides, f32, i32, storage, type KernelFamily } from './native-kernel';

/** Transpose, Concat and SplitV as strided and row-block copies (native/copy.cc). */
export const dataMovementKernels: KernelFamily = (addon) => ({
  Transpose: (args) => {
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
  },

  Concat: (args) => {
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
  },

  SplitV: (args) => {
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
  },
});
