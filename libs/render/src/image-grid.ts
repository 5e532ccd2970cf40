import { PNG } from 'pngjs';

export interface ImageGridOptions {
  /** Images per row. Default ceil(sqrt(n)). */
  cols?: number;
  /** Pixels between images and around the grid. Default 2. */
  pad?: number;
  /** Integer upscaling of every image pixel (nearest). Default 1. */
  scale?: number;
  /** Grey level (0..255) of the padding. Default 128. */
  background?: number;
  /** Keep only the central `crop` x `crop` pixels of each image (e.g. 28 of a 32x32 model input padded from 28x28). Default: the whole image. */
  crop?: number;
}

export interface ImageGrid {
  png: Buffer;
  width: number;
  height: number;
  cols: number;
  rows: number;
}

/**
 * Lays out n images NHWC with values in [-1, 1] (1 channel: greyscale, 3: RGB) as a grid and
 * encodes it as an RGB PNG: v -> round((v + 1) / 2 * 255), out-of-range values clipped.
 */
export function imageGridPng(images: Float32Array, n: number, size: number, channels: number, opts: ImageGridOptions = {}): ImageGrid {
  if (channels !== 1 && channels !== 3) throw new Error(`imageGridPng: 1 or 3 channels, got ${channels}`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`imageGridPng: n must be a positive integer, got ${n}`);
  if (images.length !== n * size * size * channels) throw new Error(`imageGridPng: ${images.length} values, expected ${n} x ${size} x ${size} x ${channels}`);
  const cols = Math.max(1, Math.min(n, opts.cols ?? Math.ceil(Math.sqrt(n))));
  const rows = Math.ceil(n / cols);
  const pad = opts.pad ?? 2;
  const scale = Math.max(1, Math.floor(opts.scale ?? 1));
  const bg = opts.background ?? 128;
  const crop = opts.crop ?? size;
  if (!Number.isInteger(crop) || crop < 1 || crop > size) throw new Error(`imageGridPng: crop must be an integer in 1..${size}, got ${crop}`);
  const offset = Math.floor((size - crop) / 2);
  const cell = crop * scale;
  const width = cols * cell + (cols + 1) * pad;
  const height = rows * cell + (rows + 1) * pad;
  const png = new PNG({ width, height, colorType: 2, inputColorType: 6 });
  for (let i = 0; i < width * height; i++) png.data.set([bg, bg, bg, 255], i * 4);
  const toByte = (v: number): number => (Number.isFinite(v) ? Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5) : 0);
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (cell + pad);
    const y0 = pad + Math.floor(k / cols) * (cell + pad);
    const base = k * size * size * channels;
    for (let y = 0; y < cell; y++) {
      for (let x = 0; x < cell; x++) {
        const src = base + ((offset + Math.floor(y / scale)) * size + offset + Math.floor(x / scale)) * channels;
        const o = ((y0 + y) * width + x0 + x) * 4;
        for (let ch = 0; ch < 3; ch++) png.data[o + ch] = toByte(images[src + (channels === 3 ? ch : 0)]);
      }
    }
  }
  return { png: PNG.sync.write(png, { colorType: 2 }), width, height, cols, rows };
}
