import * as tf from '@tensorflow/tfjs';
import { allF32, f32, storage, type KernelFamily } from './native-kernel';

/** BatchMatMul on the BLAS's sgemm (native/blas.cc). */
export const batchMatMulKernels: KernelFamily = (addon) => ({
  BatchMatMul: (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (!allF32(a, b) || a.shape.length < 2 || b.shape.length < 2) return undefined;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const kk = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (kk !== kb) return undefined; // let the cpu kernel raise its own shape error
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const na = tf.util.sizeFromShape(batchA);
    const nb = tf.util.sizeFromShape(batchB);
    // Same batch, or one side unbatched (size 1); other broadcasts go to the cpu kernel.
    if (na !== nb && na !== 1 && nb !== 1) return undefined;
    if (na === nb && na > 1 && batchA.join() !== batchB.join()) return undefined;
    const batchShape = na >= nb ? batchA : batchB;
    const batches = Math.max(na, nb);
    const be = storage(args);
    const av = f32(be, a);
    const bv = f32(be, b);
    const out = new Float32Array(batches * m * n);
    if (nb === 1 && !transposeA && batches > 1) {
      // [batch*m, k] x [k, n] in one call.
      addon.gemm(false, transposeB, batches * m, n, kk, av, bv, out, 0);
    } else {
      for (let i = 0; i < batches; i++) {
        const ai = na === 1 ? av : av.subarray(i * m * kk, (i + 1) * m * kk);
        const bi = nb === 1 ? bv : bv.subarray(i * kk * n, (i + 1) * kk * n);
        addon.gemm(transposeA, transposeB, m, n, kk, ai, bi, out.subarray(i * m * n, (i + 1) * m * n), 0);
      }
    }
    return be.makeTensorInfo([...batchShape, m, n], 'float32', out);
  },
});
