import * as tf from '@tensorflow/tfjs';
import { allF32, f32, storage, type KernelFamily } from './native-kernel';

/** Softmax over the last axis (native/softmax.cc). */
export const softmaxKernels: KernelFamily = (addon) => ({
  Softmax: (args) => {
    const { logits } = args.inputs as { logits: tf.TensorInfo };
    const { dim } = args.attrs as unknown as tf.SoftmaxAttrs;
    const rank = logits.shape.length;
    if (!allF32(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return undefined;
    const be = storage(args);
    const cols = logits.shape[rank - 1];
    const out = new Float32Array(tf.util.sizeFromShape(logits.shape));
    if (out.length > 0) addon.softmax(f32(be, logits), out, out.length / cols, cols);
    return be.makeTensorInfo(logits.shape, 'float32', out);
  },
});
