import * as tf from '@tensorflow/tfjs';
import type { Pooling } from '@ddae/contracts';
import { POOLING_GRID, pooledTapDim, poolTap } from '@ddae/diffusion';

/** The grid side of each pooling (the one definition is libs/diffusion's, beside {@link poolTap}). */
export { POOLING_GRID };

/** Length of the features {@link poolFeatures} returns for an H x W x C tap. */
export function pooledFeatureDim(height: number, width: number, channels: number, pooling: Pooling): number {
  return pooledTapDim(height, width, channels, pooling);
}

/** Pools a feature tap [N, H, W, C] to [N, D] inside its own tidy: libs/diffusion's `poolTap`, which says how. */
export function poolFeatures(tap: tf.Tensor4D, pooling: Pooling): tf.Tensor2D {
  return tf.tidy(() => poolTap(tap, pooling));
}
