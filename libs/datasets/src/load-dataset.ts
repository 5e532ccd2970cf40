import { rawEnv } from '@ddae/config';
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { DATASET_SHAPES, type DatasetName } from '@ddae/contracts';
import { IdxFormatError, parseIdx } from './idx';

const gunzipAsync = promisify(gunzip);

/** A decoded split: images NHWC as unsigned bytes, one label byte per image. */
export interface LabeledImages {
  /** count x height x width x channels bytes (NHWC). Shared by the in-process cache: treat as read-only. */
  images: Uint8Array;
  /** count labels in 0..classes-1. Shared by the in-process cache: treat as read-only. */
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

export type DatasetSplit = 'train' | 'test';

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /**
   * Directory holding the data set's files. Default: `$DDAE_DATA_DIR/<name>` when the env var
   * `DDAE_DATA_DIR` is set, else {@link DEFAULT_DATA_DIRS}`[name]`.
   */
  dir?: string;
}

/** Where each data set is looked for when neither `opts.dir` nor `DDAE_DATA_DIR` is given. */
export const DEFAULT_DATA_DIRS: Record<DatasetName, string> = {
  'fashion-mnist': '/usr/share/datasets/fashion-mnist',
  mnist: '/usr/share/datasets/mnist',
  cifar10: '/usr/share/datasets/cifar10',
};

/** The IDX files of the MNIST-format data sets, per split. */
export const IDX_FILES: Record<DatasetSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
};

/** The CIFAR-10 binary batches, per split. */
export const CIFAR10_FILES: Record<DatasetSplit, string[]> = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';

/** A data set file is not where it is looked for; the message says how to get it. */
export class DatasetMissingError extends Error {
  override name = 'DatasetMissingError';
  constructor(
    /** The exact path that was looked for. */
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** The directory a data set is read from (see {@link LoadDatasetOptions.dir}). */
export function datasetDir(name: DatasetName, opts: LoadDatasetOptions = {}): string {
  if (opts.dir) return path.resolve(opts.dir);
  const root = rawEnv()['DDAE_DATA_DIR'];
  if (root) return path.resolve(root, name);
  return DEFAULT_DATA_DIRS[name];
}

function howToGet(name: DatasetName, dir: string): string {
  const envHint = `(or set DDAE_DATA_DIR to a directory holding ${name}/, or pass dataset.dir)`;
  switch (name) {
    case 'fashion-mnist':
      return (
        `Install it with \`apt-get install -y dataset-fashion-mnist\` (puts the four IDX gzip files in ${DEFAULT_DATA_DIRS[name]}/), ` +
        `or copy ${Object.values(IDX_FILES).flatMap((f) => [f.images, f.labels]).join(', ')} into ${dir}/ ${envHint}.`
      );
    case 'mnist':
      return (
        `Debian has no MNIST package here: copy the four MNIST IDX gzip files ` +
        `(${Object.values(IDX_FILES).flatMap((f) => [f.images, f.labels]).join(', ')}) into ${dir}/ ${envHint}.`
      );
    case 'cifar10':
      return (
        `Download the CIFAR-10 binary version (${CIFAR10_URL}) and extract its data_batch_1.bin..data_batch_5.bin ` +
        `and test_batch.bin into ${dir}/: \`mkdir -p ${dir} && tar xzf cifar-10-binary.tar.gz --strip-components=1 -C ${dir}\` ${envHint}.`
      );
  }
}

/** Reads the first of `candidates` that exists; a DatasetMissingError naming `candidates[0]` when none does. */
async function readFirst(name: DatasetName, dir: string, candidates: string[]): Promise<{ file: string; bytes: Uint8Array }> {
  for (const file of candidates) {
    try {
      return { file, bytes: new Uint8Array(await readFile(file)) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new DatasetMissingError(candidates[0], datasetMissingMessage(name, dir, candidates[0]));
}

/** What a {@link DatasetMissingError} says: the file that was looked for, and how to get the data set. */
export function datasetMissingMessage(name: DatasetName, dir: string, file: string): string {
  const label = { 'fashion-mnist': 'Fashion-MNIST', mnist: 'MNIST', cifar10: 'CIFAR-10' }[name];
  return `${label} file not found: ${file}. ${howToGet(name, dir)}`;
}

async function readIdx(name: DatasetName, dir: string, gzName: string, expectedDims: number): Promise<{ dims: number[]; data: Uint8Array; file: string }> {
  const gzPath = path.join(dir, gzName);
  // The gzip file, or the same file already decompressed (name without .gz).
  const { file, bytes } = await readFirst(name, dir, [gzPath, gzPath.replace(/\.gz$/, '')]);
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(await gunzipAsync(bytes)) : bytes;
  return { ...parseIdx(raw, expectedDims, file), file };
}

/**
 * Waits for all reads at once, but reports a failure in a fixed order (the first file in the list that
 * failed): with Promise.all the error named whichever file failed first, which varied from run to run.
 */
async function allInOrder<T extends readonly unknown[]>(reads: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(reads);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

async function loadIdxSplit(name: DatasetName, split: DatasetSplit, dir: string): Promise<LabeledImages> {
  const shape = DATASET_SHAPES[name];
  const [images, labels] = await allInOrder([readIdx(name, dir, IDX_FILES[split].images, 3), readIdx(name, dir, IDX_FILES[split].labels, 1)] as const);
  const [count, height, width] = images.dims;
  if (height !== shape.size || width !== shape.size) {
    throw new IdxFormatError(`${images.file}: images are ${height}x${width}, ${name} images are ${shape.size}x${shape.size}`);
  }
  if (labels.dims[0] !== count) {
    throw new IdxFormatError(`${labels.file}: ${labels.dims[0]} labels for ${count} images in ${images.file}`);
  }
  checkLabels(labels.data, shape.classes, labels.file);
  return { images: images.data, labels: labels.data, count, height, width, channels: 1 };
}

const CIFAR_SIZE = 32;
const CIFAR_PLANE = CIFAR_SIZE * CIFAR_SIZE;
/** One CIFAR-10 binary record: a label byte, then 1024 red, 1024 green and 1024 blue bytes (row-major). */
export const CIFAR10_RECORD_BYTES = 1 + 3 * CIFAR_PLANE;

/** Decodes CIFAR-10 binary records (CHW planes) into NHWC images and labels. */
export function decodeCifar10(bytes: Uint8Array, source = 'CIFAR-10 data'): { images: Uint8Array; labels: Uint8Array; count: number } {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new IdxFormatError(`${source}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records`);
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(count * 3 * CIFAR_PLANE);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const rec = n * CIFAR10_RECORD_BYTES;
    labels[n] = bytes[rec];
    const out = n * 3 * CIFAR_PLANE;
    for (let c = 0; c < 3; c++) {
      const plane = rec + 1 + c * CIFAR_PLANE;
      for (let p = 0; p < CIFAR_PLANE; p++) images[out + 3 * p + c] = bytes[plane + p];
    }
  }
  checkLabels(labels, DATASET_SHAPES.cifar10.classes, source);
  return { images, labels, count };
}

async function loadCifarSplit(split: DatasetSplit, dir: string): Promise<LabeledImages> {
  const parts = await allInOrder(
    CIFAR10_FILES[split].map(async (f) => {
      const { file, bytes } = await readFirst('cifar10', dir, [path.join(dir, f), path.join(dir, 'cifar-10-batches-bin', f)]);
      return decodeCifar10(bytes, file);
    }),
  );
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Uint8Array(count * 3 * CIFAR_PLANE);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * 3 * CIFAR_PLANE);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3 };
}

function checkLabels(labels: Uint8Array, classes: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) throw new IdxFormatError(`${source}: label ${labels[i]} at index ${i} is outside 0..${classes - 1}`);
  }
}

/** Decoded splits, with the signature of their directory when they were read. */
const cache = new Map<string, { pending: Promise<LabeledImages>; signature: string }>();

/**
 * The files of a data set directory as they are now: each entry's name, inode, size and mtime (a
 * few entries; a stat each). A file replaced, rewritten, added or removed changes it; a directory
 * that cannot be read gives its error code, so a cached split is not served from a vanished copy.
 */
function directorySignature(dir: string): string {
  try {
    return readdirSync(dir)
      .sort()
      .map((name) => {
        const s = statSync(path.join(dir, name));
        return `${name}:${s.ino}:${s.size}:${s.mtimeMs}`;
      })
      .join('|');
  } catch (error) {
    return `unreadable:${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/**
 * Loads one split of a data set, decoded to NHWC bytes.
 *
 * Fashion-MNIST and MNIST come from the four IDX gzip files (a decompressed copy without `.gz` is
 * accepted too); CIFAR-10 from its binary batches (also found under `cifar-10-batches-bin/`). Magic
 * numbers, sizes, image shape and label range are validated. A missing file rejects with a
 * {@link DatasetMissingError} naming the path and how to get the file.
 *
 * Decoded splits are cached in-process per (name, split, directory) while the directory holds the
 * same files (names, inodes, sizes, mtimes); concurrent calls share one read. The cached arrays are
 * shared: do not modify them.
 */
export function loadDataset(name: DatasetName, split: DatasetSplit, opts: LoadDatasetOptions = {}): Promise<LabeledImages> {
  if (!(name in DATASET_SHAPES)) return Promise.reject(new RangeError(`unknown data set "${String(name)}"`));
  if (split !== 'train' && split !== 'test') return Promise.reject(new RangeError(`unknown split "${String(split)}"`));
  const dir = datasetDir(name, opts);
  const key = `${name}\0${split}\0${dir}`;
  // A long-lived process (a warm compute child) reuses a split while its directory holds the same files.
  const signature = directorySignature(dir);
  const hit = cache.get(key);
  if (hit && hit.signature === signature) return hit.pending;
  const pending = name === 'cifar10' ? loadCifarSplit(split, dir) : loadIdxSplit(name, split, dir);
  const entry = { pending, signature };
  cache.set(key, entry);
  // A failed load is not cached: the files may be installed later.
  pending.catch(() => {
    if (cache.get(key) === entry) cache.delete(key);
  });
  return pending;
}

/** Empties the in-process cache of {@link loadDataset} (tests, memory pressure). */
export function clearDatasetCache(): void {
  cache.clear();
}
