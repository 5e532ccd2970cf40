import * as tf from '@tensorflow/tfjs';
import type { Method, Pooling } from '@ddae/contracts';
import { imagesPerPass } from './device-limits';
import { Rng } from './rng';
import { ddpmCoefficients, ddpmTimeInput, edmPrecond } from './schedules';
import type { Backbone } from './backbone';

export interface FeatureOptions {
  /** Spatial pooling: gap (global average, the reference), avg2 / avg4 (2x2 / 4x4 grid). Default gap. */
  pooling?: Pooling;
  /** Seed of the fixed per-image noise. Default 0. */
  noiseSeed?: number;
  /** Images per forward pass. Default 64 (fewer on webgpu where the adapter's buffer limit requires). */
  batchSize?: number;
  /** Index of `images[0]` in the data set the noise is keyed on (image i gets noise of index offset + i). Default 0. */
  indexOffset?: number;
  /** Noise key of each image (e.g. its index in the split); overrides `indexOffset`. Default offset + i. */
  noiseKeys?: ArrayLike<number>;
}

/** The fixed noise of image `index`: depends only on (noiseSeed, index), so any slice agrees. */
export function fixedNoise(noiseSeed: number, index: number, size: number): Float32Array {
  const seed = (Math.imul(noiseSeed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  return new Rng(seed).normal(size);
}

/**
 * How an image enters the network at a noise level: input `a * x + b * eps` and time input `tIn`.
 * DDPM: `sqrt(abar_t)`, `sqrt(1 - abar_t)`, t / 1000. EDM: `c_in`, `c_in * sigma`, `c_noise`;
 * sigma = 0 is the clean image, with the smallest Karras sigma's preconditioning (c_noise = ln(sigma)/4
 * is undefined at 0). The feature pass and fine-tuning both noise this way.
 */
export function noiseInputCoefficients(method: Method, noiseLevel: number): { a: number; b: number; tIn: number } {
  if (method === 'ddpm') {
    const { a, b } = ddpmCoefficients(noiseLevel);
    return { a, b, tIn: ddpmTimeInput(noiseLevel) };
  }
  if (noiseLevel > 0) {
    const pc = edmPrecond(noiseLevel);
    return { a: pc.cIn, b: pc.cIn * noiseLevel, tIn: pc.cNoise };
  }
  const pc = edmPrecond(0.002);
  return { a: pc.cIn, b: 0, tIn: pc.cNoise };
}

/** The grid side of each pooling: 1 (global), 2 or 4. */
export const POOLING_GRID: Record<Pooling, number> = { gap: 1, avg2: 2, avg4: 4 };

/** Grid cells along an axis of `length` pixels: the pooling's grid, or `length` when the tap is smaller. */
const cellsAlong = (length: number, grid: number): number => Math.min(length, grid);

/** Length of the features {@link poolTap} returns for an H x W x C tap. */
export function pooledTapDim(height: number, width: number, channels: number, pooling: Pooling): number {
  const g = POOLING_GRID[pooling];
  return cellsAlong(height, g) * cellsAlong(width, g) * channels;
}

/** Feature dimension of a square tap with `channels` channels at spatial size `resolution`. */
export function pooledDim(pooling: Pooling, resolution: number, channels: number): number {
  return pooledTapDim(resolution, resolution, channels, pooling);
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
 * Pools a feature tap [N, H, W, C] to [N, D], the one pooling of the project (feature pass, probes,
 * fine-tuning):
 * - `gap`: global average over H x W per channel, D = C (the reference's pooling);
 * - `avg2` / `avg4`: average over a 2x2 / 4x4 grid of cells, flattened cell-major
 *   (feature index = (gridRow * g + gridCol) * C + channel), D = g*g*C.
 *
 * When H or W is not divisible by the grid (a 7x7 or 14x14 tap of a 28x28 model under avg4), cells
 * follow PyTorch's AdaptiveAvgPool2d (boundaries floor(i*L/g) .. ceil((i+1)*L/g), neighbours may
 * share a pixel). When the tap is smaller than the grid along an axis (a 2x2 or 1x1 tap with avg4),
 * that axis is not pooled: each pixel is its own cell, so D = min(H, g) * min(W, g) * C (see
 * {@link pooledTapDim}); no feature is duplicated. Differentiable (fine-tuning backpropagates
 * through it).
 */
export function poolTap(x: tf.Tensor4D, pooling: Pooling): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  const g = POOLING_GRID[pooling];
  if (g === undefined) throw new RangeError(`unknown pooling "${String(pooling)}"`);
  if (g === 1) return tf.mean(x, [1, 2]) as tf.Tensor2D;
  const gh = cellsAlong(h, g);
  const gw = cellsAlong(w, g);
  if (h % gh === 0 && w % gw === 0) {
    const r = tf.reshape(x, [n, gh, h / gh, gw, w / gw, c]);
    return tf.reshape(tf.mean(r, [2, 4]), [n, gh * gw * c]);
  }
  // Separable adaptive pooling: [N, H, W, C] -> [H, N*W*C], pool rows -> [gh, N, W, C]; then
  // [W, gh*N*C], pool columns -> [gw, gh, N, C] -> [N, gh, gw, C].
  const rows = tf.tensor2d(adaptiveMatrix(h, gh), [gh, h]);
  const cols = tf.tensor2d(adaptiveMatrix(w, gw), [gw, w]);
  const byRow = tf.reshape(tf.matMul(rows, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, n * w * c])), [gh, n, w, c]);
  const byCol = tf.matMul(cols, tf.reshape(tf.transpose(byRow, [2, 0, 1, 3]), [w, gh * n * c]));
  return tf.reshape(tf.transpose(tf.reshape(byCol, [gw, gh, n, c]), [2, 1, 0, 3]), [n, gh * gw * c]);
}

/**
 * Features of `count` images at one noise level, for every requested layer from ONE forward pass
 * per batch (EMA weights are whatever `unet` holds; dropout off). Each batch's features are read
 * from the backend before the next batch starts (`await`: GPU backends have no synchronous read).
 * @param images NHWC in [-1, 1], padded to the model size
 * @param noiseLevel DDPM: integer t in 0..1000 (0: clean); EDM: sigma (0: clean)
 * @returns layer -> count x dim, row-major
 */
export async function extractFeatures(unet: Backbone, method: Method, images: Float32Array, count: number, noiseLevel: number, layers: string[], opts: FeatureOptions = {}): Promise<Record<string, Float32Array>> {
  const pooling = opts.pooling ?? 'gap';
  const noiseSeed = opts.noiseSeed ?? 0;
  const batchSize = imagesPerPass(unet.config, opts.batchSize ?? 64);
  const offset = opts.indexOffset ?? 0;
  const { imageSize: s, imageChannels: c } = unet.config;
  const d = s * s * c;
  if (opts.noiseKeys && opts.noiseKeys.length !== count) throw new Error('noiseKeys: one key per image');
  if (images.length !== count * d) throw new Error(`images: ${images.length} values, expected ${count} x ${d}`);
  const info = new Map(unet.layout.map((b) => [b.name, b]));
  const out: Record<string, Float32Array> = {};
  const dims: Record<string, number> = {};
  for (const l of layers) {
    const b = info.get(l);
    if (!b) throw new Error(`unknown layer "${l}"`);
    dims[l] = pooledDim(pooling, b.resolution, b.channels);
    out[l] = new Float32Array(count * dims[l]);
  }
  const { a, b: nb, tIn } = noiseInputCoefficients(method, noiseLevel);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const key = opts.noiseKeys ? opts.noiseKeys[start + i] : offset + start + i;
      const eps = nb !== 0 ? fixedNoise(noiseSeed, key, d) : undefined;
      const base = (start + i) * d;
      for (let j = 0; j < d; j++) x[i * d + j] = a * images[base + j] + (eps ? nb * eps[j] : 0);
    }
    const pooled = tf.tidy(() => {
      const { taps } = unet.forward(tf.tensor4d(x, [n, s, s, c]), tf.fill([n], tIn) as tf.Tensor1D, { training: false, taps: layers });
      return layers.map((l) => poolTap(taps[l], pooling));
    });
    try {
      const values = await Promise.all(pooled.map((t) => t.data() as Promise<Float32Array>));
      layers.forEach((l, k) => out[l].set(values[k], start * dims[l]));
    } finally {
      tf.dispose(pooled);
    }
  }
  return out;
}
