import type { DatasetName } from '@ddae/contracts';
import type { Rng } from './seeded-order';

/** Training augmentation of the reference probe: random crop after padding, optional horizontal flip. */
export interface AugmentationOptions {
  /** Pixels of padding on each side before a random size x size crop (offset uniform in -pad..pad). The reference uses 4. */
  pad: number;
  /** Flip each image horizontally with probability 1/2. Off for digits (MNIST). */
  flip: boolean;
  /** Value of the padding; default -1 (black in the [-1, 1] model input). */
  fill?: number;
}

/**
 * The augmentation to use for a data set: pad 4 crop for all; horizontal flip for CIFAR-10 and
 * Fashion-MNIST (garments and shoes keep their class when mirrored), never for MNIST digits.
 */
export function augmentationFor(name: DatasetName): AugmentationOptions {
  return { pad: 4, flip: name !== 'mnist' };
}

/**
 * Random crop (with padding) and optional horizontal flip of a batch of NHWC images, as torchvision's
 * RandomCrop(size, padding=pad) followed by RandomHorizontalFlip. Returns a new array of the same
 * shape; `batch` is not modified. Per image, draws from `rng` in order: dy, dx, then flip (only when
 * `opts.flip`), so a seeded rng gives reproducible batches.
 *
 * @param batch n x size x size x channels float values (e.g. from toModelInput).
 */
export function randomCropFlip(batch: Float32Array, n: number, size: number, channels: number, opts: AugmentationOptions, rng: Rng): Float32Array {
  const imageLen = size * size * channels;
  if (batch.length !== n * imageLen) throw new RangeError(`batch has ${batch.length} values, expected ${n}x${size}x${size}x${channels}`);
  const pad = opts.pad;
  const fill = opts.fill ?? -1;
  const out = new Float32Array(batch.length);
  for (let i = 0; i < n; i++) {
    const dy = Math.floor(rng() * (2 * pad + 1)) - pad;
    const dx = Math.floor(rng() * (2 * pad + 1)) - pad;
    const flip = opts.flip && rng() < 0.5;
    const base = i * imageLen;
    for (let y = 0; y < size; y++) {
      const sy = y + dy;
      for (let x = 0; x < size; x++) {
        // Crop first, then mirror the crop: output column x shows crop column (size-1-x).
        const sx = (flip ? size - 1 - x : x) + dx;
        const d = base + (y * size + x) * channels;
        if (sy < 0 || sy >= size || sx < 0 || sx >= size) {
          for (let c = 0; c < channels; c++) out[d + c] = fill;
        } else {
          const s = base + (sy * size + sx) * channels;
          for (let c = 0; c < channels; c++) out[d + c] = batch[s + c];
        }
      }
    }
  }
  return out;
}
