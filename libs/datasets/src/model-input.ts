import type { LabeledImages } from './load-dataset';

function checkIndex(data: LabeledImages, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= data.count) {
    throw new RangeError(`image index ${index} outside 0..${data.count - 1}`);
  }
}

/**
 * The selected images as the UNet's input: NHWC float32 in [-1, 1] (x / 127.5 - 1), centred in a
 * `size` x `size` canvas whose padding is -1 (black), in the order of `indices`.
 * For 28x28 images and size 32 the image sits at rows/cols 2..29.
 *
 * @param size output height = width; at least the images' height and width.
 */
export function toModelInput(data: LabeledImages, indices: ArrayLike<number>, size: number): Float32Array {
  const { height: h, width: w, channels: c } = data;
  if (!Number.isInteger(size) || size < h || size < w) throw new RangeError(`size ${size} is smaller than the ${h}x${w} images`);
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  const imageLen = h * w * c;
  const outLen = size * size * c;
  const out = new Float32Array(indices.length * outLen).fill(-1);
  const rowLen = w * c;
  for (let n = 0; n < indices.length; n++) {
    const index = indices[n];
    checkIndex(data, index);
    const src = index * imageLen;
    for (let y = 0; y < h; y++) {
      const s = src + y * rowLen;
      const d = n * outLen + ((top + y) * size + left) * c;
      for (let k = 0; k < rowLen; k++) out[d + k] = data.images[s + k] / 127.5 - 1;
    }
  }
  return out;
}

/** The selected images' raw pixels scaled to [0, 1] (x / 255), `indices.length` x (h*w*c), row-major. */
export function flattenPixels(data: LabeledImages, indices: ArrayLike<number>): Float32Array {
  const imageLen = data.height * data.width * data.channels;
  const out = new Float32Array(indices.length * imageLen);
  for (let n = 0; n < indices.length; n++) {
    const index = indices[n];
    checkIndex(data, index);
    const src = index * imageLen;
    const dst = n * imageLen;
    for (let k = 0; k < imageLen; k++) out[dst + k] = data.images[src + k] / 255;
  }
  return out;
}

/** The labels of the selected images, in the order of `indices`. */
export function selectLabels(data: LabeledImages, indices: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(indices.length);
  for (let n = 0; n < indices.length; n++) {
    checkIndex(data, indices[n]);
    out[n] = data.labels[indices[n]];
  }
  return out;
}
