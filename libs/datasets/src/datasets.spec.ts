import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CIFAR10_RECORD_BYTES,
  DatasetMissingError,
  IdxFormatError,
  augmentationFor,
  clearDatasetCache,
  createRng,
  datasetInfo,
  datasetProblem,
  encodeIdx,
  flattenPixels,
  loadDataset,
  parseIdx,
  randomCropFlip,
  readableDatasets,
  seededOrder,
  selectLabels,
  toModelInput,
  type LabeledImages,
} from './index';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ddae-datasets-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => clearDatasetCache());

/** Writes a tiny 28x28 IDX data set (gzip) of `count` images whose pixels are (n + y + x) % 256. */
function writeTinyIdx(dir: string, count: number, labels: number[]): void {
  mkdirSync(dir, { recursive: true });
  const pixels = new Uint8Array(count * 28 * 28);
  for (let n = 0; n < count; n++) for (let p = 0; p < 784; p++) pixels[n * 784 + p] = (n + Math.floor(p / 28) + (p % 28)) % 256;
  for (const split of [
    ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'],
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
  ]) {
    writeFileSync(path.join(dir, split[0]), gzipSync(encodeIdx([count, 28, 28], pixels)));
    writeFileSync(path.join(dir, split[1]), gzipSync(encodeIdx([count], Uint8Array.from(labels))));
  }
}

describe('IDX files', () => {
  it('parses a tiny gzip IDX data set written to a temp dir', async () => {
    const dir = path.join(tmp, 'tiny');
    writeTinyIdx(dir, 3, [7, 0, 9]);
    const data = await loadDataset('fashion-mnist', 'train', { dir });
    expect(data).toMatchObject({ count: 3, height: 28, width: 28, channels: 1 });
    expect(Array.from(data.labels)).toEqual([7, 0, 9]);
    expect(data.images.length).toBe(3 * 784);
    expect(data.images[2 * 784 + 5 * 28 + 4]).toBe(2 + 5 + 4);
    // Cached: the same object again.
    expect(await loadDataset('fashion-mnist', 'train', { dir })).toBe(data);
  });

  it('serves a cached split only while its directory holds the same files: a rewritten or vanished set is read again', async () => {
    const dir = path.join(tmp, 'changing');
    writeTinyIdx(dir, 3, [7, 0, 9]);
    const first = await loadDataset('fashion-mnist', 'train', { dir });
    writeTinyIdx(dir, 2, [4, 5]);
    const second = await loadDataset('fashion-mnist', 'train', { dir });
    expect(second).not.toBe(first);
    expect(Array.from(second.labels)).toEqual([4, 5]);
    expect(await loadDataset('fashion-mnist', 'train', { dir })).toBe(second);
    rmSync(dir, { recursive: true });
    await expect(loadDataset('fashion-mnist', 'train', { dir })).rejects.toMatchObject({ name: 'DatasetMissingError' });
  });

  it('rejects a bad magic number, a wrong dimension count and a size mismatch with clear errors', () => {
    const good = encodeIdx([2, 2, 2], new Uint8Array(8));
    const badMagic = good.slice();
    badMagic[2] = 0x0d; // float type
    expect(() => parseIdx(gzipSync(badMagic), 3, 'x.gz')).toThrow(/x\.gz: bad IDX magic number 0x00000d03/);
    expect(() => parseIdx(good, 1, 'labels.gz')).toThrow(/declares 3 dimensions, expected 1/);
    expect(() => parseIdx(good.subarray(0, good.length - 1), 3, 'short')).toThrow(/size mismatch: dimensions 2x2x2 need 24 bytes, the file has 23/);
    expect(() => parseIdx(badMagic, 3)).toThrow(IdxFormatError);
  });

  it('rejects labels outside the class range and a wrong image size', async () => {
    const dir = path.join(tmp, 'badlabel');
    writeTinyIdx(dir, 2, [3, 10]);
    await expect(loadDataset('mnist', 'test', { dir })).rejects.toThrow(/label 10 at index 1 is outside 0..9/);
    const dir2 = path.join(tmp, 'badsize');
    mkdirSync(dir2);
    writeFileSync(path.join(dir2, 't10k-images-idx3-ubyte.gz'), gzipSync(encodeIdx([1, 32, 32], new Uint8Array(1024))));
    writeFileSync(path.join(dir2, 't10k-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([1], new Uint8Array(1))));
    await expect(loadDataset('fashion-mnist', 'test', { dir: dir2 })).rejects.toThrow(/images are 32x32, fashion-mnist images are 28x28/);
  });

  it('reads the real Fashion-MNIST files: 60000 / 10000 images of 28x28x1, labels 0..9, 10% per class', async () => {
    const [train, test] = await Promise.all([loadDataset('fashion-mnist', 'train'), loadDataset('fashion-mnist', 'test')]);
    for (const [data, count] of [
      [train, 60000],
      [test, 10000],
    ] as const) {
      expect(data).toMatchObject({ count, height: 28, width: 28, channels: 1 });
      expect(data.images.length).toBe(count * 784);
      expect(data.labels.length).toBe(count);
      const perClass = new Array<number>(10).fill(0);
      data.labels.forEach((l) => perClass[l]++);
      expect(perClass).toEqual(new Array<number>(10).fill(count / 10));
    }
    expect(Math.max(...test.images.subarray(0, 784))).toBeGreaterThan(200);
    expect(datasetInfo('fashion-mnist').classNames[train.labels[0]]).toBe('Ankle boot'); // the well-known first training image
  });

  it('names the missing file and the apt package when the directory is missing', async () => {
    const dir = path.join(tmp, 'nowhere');
    const err = await loadDataset('fashion-mnist', 'test', { dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetMissingError);
    expect((err as DatasetMissingError).name).toBe('DatasetMissingError');
    expect((err as Error).message).toContain(path.join(dir, 't10k-images-idx3-ubyte.gz'));
    expect((err as Error).message).toContain('apt-get install -y dataset-fashion-mnist');
    const cifar = await loadDataset('cifar10', 'train', { dir }).catch((e: unknown) => e);
    expect(cifar).toBeInstanceOf(DatasetMissingError);
    expect((cifar as Error).message).toContain(path.join(dir, 'data_batch_1.bin'));
    expect((cifar as Error).message).toContain('cifar-10-binary.tar.gz');
  });

  it('uses DDAE_DATA_DIR/<name> when no dir is given', async () => {
    writeTinyIdx(path.join(tmp, 'root', 'mnist'), 2, [1, 2]);
    const saved = process.env['DDAE_DATA_DIR'];
    process.env['DDAE_DATA_DIR'] = path.join(tmp, 'root');
    try {
      expect((await loadDataset('mnist', 'train')).count).toBe(2);
    } finally {
      if (saved === undefined) delete process.env['DDAE_DATA_DIR'];
      else process.env['DDAE_DATA_DIR'] = saved;
    }
  });
});

describe('readableDatasets', () => {
  it('lists the data sets whose every file can be read under DDAE_DATA_DIR, and names the first missing file of the others', async () => {
    const root = path.join(tmp, 'readable');
    writeTinyIdx(path.join(root, 'mnist'), 2, [1, 2]);
    // Fashion-MNIST decompressed (accepted as the loader accepts it), but for one file.
    const fm = path.join(root, 'fashion-mnist');
    mkdirSync(fm, { recursive: true });
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte']) writeFileSync(path.join(fm, f), 'x');
    mkdirSync(path.join(root, 'cifar10'));
    const saved = process.env['DDAE_DATA_DIR'];
    process.env['DDAE_DATA_DIR'] = root;
    try {
      expect(await readableDatasets()).toEqual(['mnist']);
      const missing = await datasetProblem('fashion-mnist');
      expect(missing).toBeInstanceOf(DatasetMissingError);
      expect(missing?.path).toBe(path.join(fm, 't10k-labels-idx1-ubyte.gz'));
      expect(missing?.message).toContain('apt-get install -y dataset-fashion-mnist');
      expect((await datasetProblem('cifar10'))?.path).toBe(path.join(root, 'cifar10', 'data_batch_1.bin'));
      writeFileSync(path.join(fm, 't10k-labels-idx1-ubyte'), 'x');
      expect(await readableDatasets()).toEqual(['fashion-mnist', 'mnist']);
    } finally {
      if (saved === undefined) delete process.env['DDAE_DATA_DIR'];
      else process.env['DDAE_DATA_DIR'] = saved;
    }
  });
});

describe('CIFAR-10 binary batches', () => {
  it('decodes 3073-byte CHW records to HWC and concatenates the five training batches', async () => {
    const dir = path.join(tmp, 'cifar');
    mkdirSync(dir);
    const record = (label: number, base: number): Uint8Array => {
      const r = new Uint8Array(CIFAR10_RECORD_BYTES);
      r[0] = label;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) r[1 + c * 1024 + p] = (base + c * 50 + (p % 7)) % 256;
      return r;
    };
    for (let b = 1; b <= 5; b++) writeFileSync(path.join(dir, `data_batch_${b}.bin`), record(b, b));
    writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.concat([record(9, 0), record(0, 1)]));
    const train = await loadDataset('cifar10', 'train', { dir });
    expect(train).toMatchObject({ count: 5, height: 32, width: 32, channels: 3 });
    expect(Array.from(train.labels)).toEqual([1, 2, 3, 4, 5]);
    // image 2 (base 3), pixel p = 10 (row 0, col 10): channels R, G, B.
    const at = (2 * 1024 + 10) * 3;
    expect(Array.from(train.images.subarray(at, at + 3))).toEqual([3 + 3, 53 + 3, 103 + 3]);
    const test = await loadDataset('cifar10', 'test', { dir });
    expect(test.count).toBe(2);
    writeFileSync(path.join(dir, 'test_batch.bin'), new Uint8Array(100));
    clearDatasetCache();
    await expect(loadDataset('cifar10', 'test', { dir })).rejects.toThrow(/not a whole number of 3073-byte/);
  });
});

describe('seededOrder', () => {
  it('is a deterministic permutation that depends on the seed', () => {
    const a = seededOrder(1000, 42);
    expect(Array.from(seededOrder(1000, 42))).toEqual(Array.from(a));
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(seededOrder(1000, 43))).not.toEqual(Array.from(a));
    expect(Array.from(a.subarray(0, 10))).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seededOrder(0, 1).length).toBe(0);
    const rng = createRng(7);
    const xs = Array.from({ length: 10000 }, () => rng());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
  });
});

/** A 2-image 28x28x1 set: image 0 all 255, image 1 all 0, with a marked pixel. */
function twoImages(): LabeledImages {
  const images = new Uint8Array(2 * 784);
  images.fill(255, 0, 784);
  images[784 + 0] = 51; // image 1, row 0, col 0
  return { images, labels: Uint8Array.from([4, 6]), count: 2, height: 28, width: 28, channels: 1 };
}

describe('model input and pixels', () => {
  it('toModelInput centres the image in [-1, 1] with -1 padding, in index order', () => {
    const x = toModelInput(twoImages(), [1, 0], 32);
    expect(x.length).toBe(2 * 32 * 32);
    expect(Math.min(...x)).toBe(-1);
    expect(Math.max(...x)).toBe(1);
    // first output = image 1: marked pixel at (2, 2), everything else -1.
    expect(x[2 * 32 + 2]).toBeCloseTo(51 / 127.5 - 1, 6);
    expect(x[2 * 32 + 3]).toBe(-1);
    // second output = image 0: 1 inside rows/cols 2..29, -1 on the border.
    const img0 = x.subarray(1024);
    expect(img0[2 * 32 + 2]).toBe(1);
    expect(img0[29 * 32 + 29]).toBe(1);
    expect(img0[1 * 32 + 5]).toBe(-1);
    expect(img0[30 * 32 + 5]).toBe(-1);
    expect(img0.filter((v) => v === 1).length).toBe(784);
    expect(toModelInput(twoImages(), [0], 28).every((v) => v === 1)).toBe(true);
    expect(() => toModelInput(twoImages(), [0], 16)).toThrow(RangeError);
    expect(() => toModelInput(twoImages(), [2], 32)).toThrow(/index 2 outside 0..1/);
  });

  it('flattenPixels gives [0, 1] values, count x (h*w*c), and selectLabels follows the indices', () => {
    const data = twoImages();
    const x = flattenPixels(data, [1, 0, 1]);
    expect(x.length).toBe(3 * 784);
    expect(x[0]).toBeCloseTo(51 / 255, 6);
    expect(x[784]).toBe(1);
    expect(x[2 * 784 + 1]).toBe(0);
    expect(Array.from(selectLabels(data, [1, 0, 1]))).toEqual([6, 4, 6]);
  });
});

describe('augmentation', () => {
  const size = 8;
  const ramp = (n: number, channels: number): Float32Array => {
    const b = new Float32Array(n * size * size * channels);
    b.forEach((_, i) => (b[i] = i / b.length));
    return b;
  };

  it('keeps the shape, leaves the input alone and is reproducible with a seeded rng', () => {
    const batch = ramp(5, 3);
    const copy = batch.slice();
    const a = randomCropFlip(batch, 5, size, 3, { pad: 4, flip: true }, createRng(1));
    const b = randomCropFlip(batch, 5, size, 3, { pad: 4, flip: true }, createRng(1));
    expect(a.length).toBe(batch.length);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(batch)).toEqual(Array.from(copy));
    expect(() => randomCropFlip(batch, 4, size, 3, { pad: 4, flip: true }, createRng(1))).toThrow(RangeError);
  });

  it('pad 0 without flip is the identity; flip alone mirrors columns; padding is -1', () => {
    const batch = ramp(4, 2);
    expect(Array.from(randomCropFlip(batch, 4, size, 2, { pad: 0, flip: false }, createRng(3)))).toEqual(Array.from(batch));
    const alwaysFlip = (): number => 0; // dy = dx = 0 with pad 0, and flip since 0 < 0.5
    const flipped = randomCropFlip(batch, 4, size, 2, { pad: 0, flip: true }, alwaysFlip);
    const at = (img: number, y: number, x: number, c: number): number => ((img * size + y) * size + x) * 2 + c;
    expect(flipped[at(2, 3, 0, 1)]).toBe(batch[at(2, 3, size - 1, 1)]);
    // rng 0 with pad 4 -> shift -4 in both axes: the top-left 4x4 is padding.
    const shifted = randomCropFlip(batch, 4, size, 2, { pad: 4, flip: false }, () => 0);
    expect(shifted[at(0, 0, 0, 0)]).toBe(-1);
    expect(shifted[at(0, 4, 4, 1)]).toBe(batch[at(0, 0, 0, 1)]);
  });

  it('never flips digits and flips CIFAR-10 and Fashion-MNIST', () => {
    expect(augmentationFor('mnist')).toEqual({ pad: 4, flip: false });
    expect(augmentationFor('cifar10')).toEqual({ pad: 4, flip: true });
    expect(augmentationFor('fashion-mnist').flip).toBe(true);
    const batch = ramp(50, 1);
    const out = randomCropFlip(batch, 50, size, 1, { pad: 0, flip: false }, () => 0.1);
    expect(Array.from(out)).toEqual(Array.from(batch));
  });
});

describe('datasetInfo', () => {
  it('re-exports the contract shapes with class names', () => {
    expect(datasetInfo('fashion-mnist')).toMatchObject({ size: 28, channels: 1, classes: 10, train: 60000, test: 10000 });
    expect(datasetInfo('fashion-mnist').classNames).toHaveLength(10);
    expect(datasetInfo('cifar10')).toMatchObject({ size: 32, channels: 3, train: 50000 });
  });
});
