import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Method, Pooling } from '@ddae/contracts';

/**
 * What identifies one cached feature matrix: the same key always means the same numbers (fixed,
 * seeded noise keyed by the image's index in its split; EMA weights of the checkpoint whose
 * manifest has this sha256; no augmentation).
 */
export interface FeatureCacheKey {
  /** sha256 of the checkpoint's manifest.json (which lists the sha256 of every weight file). */
  checkpoint: string;
  method: Method;
  /** DDPM t or EDM sigma. */
  noiseLevel: number;
  noiseSeed: number;
  split: 'train' | 'test';
  /** Which images, in which order: e.g. `order=0;n=2000` (seeded order) or `first=1000`. */
  slice: string;
  pooling: Pooling;
  layer: string;
}

export interface FeatureCacheStats {
  hits: number;
  misses: number;
}

/** Bumped whenever feature extraction changes what it computes for the same key. */
const CACHE_VERSION = 1;

function canonicalKey(key: FeatureCacheKey): string {
  return [
    `v=${CACHE_VERSION}`,
    `ckpt=${key.checkpoint}`,
    `method=${key.method}`,
    `noise=${key.noiseLevel}`,
    `noiseSeed=${key.noiseSeed}`,
    `split=${key.split}`,
    `slice=${key.slice}`,
    `pool=${key.pooling}`,
    `layer=${key.layer}`,
  ].join(';');
}

/** Write to a temporary file beside `file`, then rename: readers never see a partial file. */
function writeAtomic(file: string, data: Buffer | string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Feature matrices on disk (the artifact directory, which may be a mount shared by many workers):
 * one `<hash>.f32` of raw little-endian float32 values per (checkpoint, noise level, noise seed,
 * split, slice, pooling, layer), and a `<hash>.json` that names the key, the length and the data's
 * sha256. Both are written atomically, data first: an entry is valid only when its JSON exists and
 * the data matches it, so a writer killed half-way, or two workers writing the same entry at once,
 * leave either a miss or a correct entry. Probing the same features under another protocol then
 * costs only the linear training.
 */
export class FeatureCache {
  readonly stats: FeatureCacheStats = { hits: 0, misses: 0 };

  constructor(readonly dir: string) {}

  private files(key: FeatureCacheKey): { data: string; meta: string; canonical: string } {
    const canonical = canonicalKey(key);
    const hash = createHash('sha256').update(canonical).digest('hex');
    const base = path.join(this.dir, hash.slice(0, 2), hash);
    return { data: `${base}.f32`, meta: `${base}.json`, canonical };
  }

  /** The cached matrix of `length` values, or null (a miss: absent, torn or of another length). */
  get(key: FeatureCacheKey, length: number): Float32Array | null {
    const { data, meta, canonical } = this.files(key);
    try {
      const info = JSON.parse(fs.readFileSync(meta, 'utf8')) as { key: string; length: number; sha256: string };
      if (info.key !== canonical || info.length !== length) return this.miss();
      const buf = fs.readFileSync(data);
      if (buf.byteLength !== length * 4 || createHash('sha256').update(buf).digest('hex') !== info.sha256) return this.miss();
      const out = new Float32Array(length);
      Buffer.from(out.buffer).set(buf);
      this.stats.hits++;
      return out;
    } catch {
      return this.miss();
    }
  }

  put(key: FeatureCacheKey, values: Float32Array): void {
    const { data, meta, canonical } = this.files(key);
    fs.mkdirSync(path.dirname(data), { recursive: true });
    const buf = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    writeAtomic(data, buf);
    writeAtomic(meta, JSON.stringify({ key: canonical, length: values.length, sha256: createHash('sha256').update(buf).digest('hex') }));
  }

  private miss(): null {
    this.stats.misses++;
    return null;
  }
}
