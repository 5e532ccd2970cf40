import * as tf from '@tensorflow/tfjs';
import type { KernelsAddon } from '../addon';
import { allF32, broadcastStrides, collapse, f32, i32, storage, type KernelFamily, type NativeKernel } from './native-kernel';

/** The addon's op codes (native/binary.cc). */
const OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;

const binary =
  (addon: KernelsAddon, op: number): NativeKernel =>
  (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!allF32(a, b)) return undefined;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const be = storage(args);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    if (out.length > 0) {
      const c = collapse(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)]);
      addon.binary(op, f32(be, a), f32(be, b), out, i32(c.shape), i32(c.strides[0]), i32(c.strides[1]));
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  };

/** Broadcasting add, sub, multiply and divide (native/binary.cc). */
export const binaryKernels: KernelFamily = (addon) => Object.fromEntries(Object.entries(OPS).map(([name, op]) => [name, binary(addon, op)]));
