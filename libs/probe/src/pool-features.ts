import * as tf from '@tensorflow/tfjs';
import type { Pooling } from '@ddae/contracts';

/** The grid side of each pooling: 1 (global), 2 or 4. */
export const POOLING_GRID: Record<Pooling, number> = { gap: 1, avg2: 2, avg4: 4 };

/** Grid cells along an axis of `length` pixels: the pooling's grid, or `length` when the tap is smaller. */
function cellsAlong(length: number, grid: number): number {
  return Math.min(length, grid);
}

/** Length of the features {@link poolFeatures} returns for an H x W x C tap. */
export function pooledFeatureDim(height: number, width: number, channels: number, pooling: Pooling): number {
  const g = POOLING_GRID[pooling];
  return cellsAlong(height, g) * cellsAlong(width, g) * channels;
}

/** [cells, length] averaging matrix of PyTorch's AdaptiveAvgPool1d: cell i averages [floor(i*L/g), ceil((i+1)*L/g)). */
function adaptiveMatrix(length: number, cells: number): Float32Array {
  const m = new Float32Array(cells * length);
  for (let i = 0; i < cells; i++) {
    const from = Math.floor((i * length) / cells);
    const to = Math.ceil(((i + 1) * length) / cells);
    for (let j = from; j < to; j++) m[i * length + j] = 1 / (to - from);
  }
  return m;
}

/**
 * Pools a feature tap [N, H, W, C] to [N, D]:
 * - `gap`: global average over H x W per channel, D = C (the reference's pooling);
 * - `avg2` / `avg4`: average over a 2x2 / 4x4 grid of equal cells, flattened cell-major
 *   (feature index = (gridRow * g + gridCol) * C + channel), D = g*g*C.
 *
 * When H or W is not divisible by the grid, cells follow PyTorch's AdaptiveAvgPool2d (boundaries
 * floor(i*L/g) .. ceil((i+1)*L/g), neighbours may share a pixel). When the tap is smaller than the
 * grid along an axis (e.g. a 2x2 or 1x1 tap with avg4), that axis is not pooled: each pixel is its own
 * cell, so D = min(H, g) * min(W, g) * C (see {@link pooledFeatureDim}); no feature is duplicated.
 */
export function poolFeatures(tap: tf.Tensor4D, pooling: Pooling): tf.Tensor2D {
  const [n, h, w, c] = tap.shape;
  const g = POOLING_GRID[pooling];
  if (g === undefined) throw new RangeError(`unknown pooling "${String(pooling)}"`);
  return tf.tidy(() => {
    if (g === 1) return tf.mean(tap, [1, 2]) as tf.Tensor2D;
    const gh = cellsAlong(h, g);
    const gw = cellsAlong(w, g);
    if (h % gh === 0 && w % gw === 0) {
      const pooled = tf.avgPool(tap, [h / gh, w / gw], [h / gh, w / gw], 'valid');
      return tf.reshape(pooled, [n, gh * gw * c]);
    }
    // Separable adaptive pooling: rows, then columns.
    const rows = tf.tensor2d(adaptiveMatrix(h, gh), [gh, h]);
    const cols = tf.tensor2d(adaptiveMatrix(w, gw), [gw, w]);
    // [N, H, W, C] -> [H, N*W*C], pool rows -> [gh, N, W, C]
    const byRow = tf.reshape(tf.matMul(rows, tf.reshape(tf.transpose(tap, [1, 0, 2, 3]), [h, n * w * c])), [gh, n, w, c]);
    // -> [W, gh*N*C], pool columns -> [gw, gh, N, C] -> [N, gh, gw, C]
    const byCol = tf.matMul(cols, tf.reshape(tf.transpose(byRow, [2, 0, 1, 3]), [w, gh * n * c]));
    return tf.reshape(tf.transpose(tf.reshape(byCol, [gw, gh, n, c]), [2, 1, 0, 3]), [n, gh * gw * c]);
  });
}
