import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Method } from '@ddae/contracts';
import type { RngState } from './rng';
import { createBackbone, type Backbone, type ModelConfig } from './backbone';

export const CHECKPOINT_FORMAT = 'ddae-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface ParamEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements into weights.bin / ema.bin (optimizer.bin: m at offset, v at total + offset). */
  offset: number;
  size: number;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Optimiser steps completed. */
  step: number;
  method: Method;
  /** The network's configuration: a UNet's, or a DiT's (tagged `backbone: 'dit'`). */
  config: ModelConfig;
  params: ParamEntry[];
  /** Total float32 elements of weights.bin. */
  totalSize: number;
  rngState: RngState;
  loss?: number;
  /** Set when the weights were imported (`ddae import`) rather than trained here: the source file and its sha256. */
  imported?: { format: 'safetensors'; source: string; sha256: string };
  /** sha256 (hex) of each data file. */
  files: Record<string, string>;
  createdAt: string;
}

/** The tensors a checkpoint holds, as flat float32 arrays in manifest order. */
export interface CheckpointData {
  weights: Float32Array;
  ema: Float32Array;
  /** m then v, each `totalSize` long. */
  optimizer: Float32Array;
}

export interface FoundCheckpoint {
  path: string;
  step: number;
  manifest: CheckpointManifest;
  /** sha256 of manifest.json. */
  manifestSha256: string;
}

const DATA_FILES = ['weights.bin', 'ema.bin', 'optimizer.bin'] as const;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function toBuffer(a: Float32Array): Buffer {
  // Float32Array is platform-endian; every supported host is little-endian.
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function writeSynced(file: string, data: Buffer | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

/**
 * Writes `<dir>/step-<8 digits>/` atomically: files go to a temp dir next to it, are fsynced, and
 * the temp dir is renamed into place, so a reader never sees a half-written checkpoint.
 */
export function writeCheckpoint(
  dir: string,
  meta: Omit<CheckpointManifest, 'format' | 'version' | 'files' | 'createdAt'>,
  data: CheckpointData,
): FoundCheckpoint {
  fs.mkdirSync(dir, { recursive: true });
  const final = path.join(dir, checkpointDirName(meta.step));
  const tmp = path.join(dir, `.tmp-${checkpointDirName(meta.step)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmp);
  const files: Record<string, string> = {};
  const bufs: Record<(typeof DATA_FILES)[number], Buffer> = {
    'weights.bin': toBuffer(data.weights),
    'ema.bin': toBuffer(data.ema),
    'optimizer.bin': toBuffer(data.optimizer),
  };
  for (const f of DATA_FILES) {
    writeSynced(path.join(tmp, f), bufs[f]);
    files[f] = sha256(bufs[f]);
  }
  const manifest: CheckpointManifest = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...meta, files, createdAt: new Date().toISOString() };
  const text = JSON.stringify(manifest, null, 2);
  writeSynced(path.join(tmp, 'manifest.json'), text);
  fsyncDir(tmp);
  // A checkpoint of this step may exist from an earlier attempt (resumed run): replace it.
  if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  fsyncDir(dir);
  return { path: final, step: meta.step, manifest, manifestSha256: sha256(Buffer.from(text)) };
}

/** Reads and verifies one checkpoint directory; throws when torn or corrupt. */
export function verifyCheckpoint(ckptPath: string): FoundCheckpoint {
  const text = fs.readFileSync(path.join(ckptPath, 'manifest.json'));
  const manifest = JSON.parse(text.toString('utf8')) as CheckpointManifest;
  if (manifest.format !== CHECKPOINT_FORMAT || manifest.version !== CHECKPOINT_VERSION) throw new Error(`${ckptPath}: unknown checkpoint format`);
  for (const f of DATA_FILES) {
    const buf = fs.readFileSync(path.join(ckptPath, f));
    const expected = f === 'optimizer.bin' ? manifest.totalSize * 8 : manifest.totalSize * 4;
    if (buf.length !== expected) throw new Error(`${ckptPath}/${f}: ${buf.length} bytes, expected ${expected}`);
    if (sha256(buf) !== manifest.files[f]) throw new Error(`${ckptPath}/${f}: checksum mismatch`);
  }
  return { path: ckptPath, step: manifest.step, manifest, manifestSha256: sha256(text) };
}

/** The newest checkpoint under `dir` that verifies (torn or corrupt ones are skipped), or undefined. */
export function latestCheckpoint(dir: string): FoundCheckpoint | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const names = fs
    .readdirSync(dir)
    .filter((n) => /^step-\d{8}$/.test(n))
    .sort()
    .reverse();
  for (const n of names) {
    try {
      return verifyCheckpoint(path.join(dir, n));
    } catch {
      // Torn (killed mid-write before the atomic rename existed, disk full, bit rot): try older.
    }
  }
  return undefined;
}

function readFloats(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  const out = new Float32Array(buf.length / 4);
  Buffer.from(out.buffer).set(buf);
  return out;
}

/** Reads the data files of a verified checkpoint. */
export function readCheckpointData(ckptPath: string): CheckpointData {
  return {
    weights: readFloats(path.join(ckptPath, 'weights.bin')),
    ema: readFloats(path.join(ckptPath, 'ema.bin')),
    optimizer: readFloats(path.join(ckptPath, 'optimizer.bin')),
  };
}

/** Copies flat arrays into a model's named parameters (names and shapes must match). */
export function assignParams(unet: Backbone, entries: ParamEntry[], flat: Float32Array): void {
  if (entries.length !== unet.params.size) throw new Error(`checkpoint has ${entries.length} parameters, model ${unet.params.size}`);
  for (const e of entries) {
    const v = unet.params.get(e.name);
    if (!v || v.shape.join('x') !== e.shape.join('x')) throw new Error(`checkpoint parameter ${e.name} [${e.shape}] does not match the model`);
    tf.tidy(() => v.assign(tf.tensor(flat.subarray(e.offset, e.offset + e.size), e.shape)));
  }
}


/**
 * Loads a checkpoint for feature extraction: its network (UNet or DiT) holding the EMA weights.
 * The caller owns the model and must `dispose()` it.
 * @param ckptPath a checkpoint directory (`.../step-00001000`)
 */
export function loadForInference(ckptPath: string): { unet: Backbone; manifest: CheckpointManifest } {
  const found = verifyCheckpoint(ckptPath);
  const unet = createBackbone(found.manifest.config, 0);
  const ema = readFloats(path.join(ckptPath, 'ema.bin'));
  assignParams(unet, found.manifest.params, ema);
  return { unet, manifest: found.manifest };
}
