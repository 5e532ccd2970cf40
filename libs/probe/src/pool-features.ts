import * as tf from '@tensorflow/tfjs';
import type { Pooling } from '@ddae/contracts';
import { poolTap } from '@ddae/diffusion';

// The pooling is written once, in libs/diffusion beside `poolTap`: the grid sides and the feature
// length of an H x W x C tap under each pooling.
export { POOLING_GRID, pooledTapDim as pooledFeatureDim } from '@ddae/diffusion';

/** Pools a feature tap [N, H, W, C] to [N, D] inside its own tidy: libs/diffusion's `poolTap`, which says how. */
export function poolFeatures(tap: tf.Tensor4D, pooling: Pooling): tf.Tensor2D {
  return tf.tidy(() => poolTap(tap, pooling));
}
