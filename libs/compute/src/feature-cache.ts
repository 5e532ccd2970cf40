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

/** One cached matrix as `FeatureCache.entries` lists it. */
export interface FeatureCacheEntry {
  /** The canonical key (version, checkpoint, method, noise, seed, split, slice, pooling, layer). */
  key: string;
  /** sha256 of the checkpoint's manifest. */
  checkpoint: string;
  noiseLevel: number;
  pooling: string;
  layer: string;
  /** Data and metadata together. */
  bytes: number;
  /** Last hit, else when it was written. */
  lastUsed: Date;
  files: string[];
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
      // The metadata file's mtime is the entry's last use: what `prune` ages entries by.
      try {
        const now = new Date();
        fs.utimesSync(meta, now, now);
      } catch {
        // read-only mount or pruned meanwhile: the hit stands
      }
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

  /** Every complete entry on disk (unreadable or foreign files are skipped), with its size and last use. */
  entries(): FeatureCacheEntry[] {
    const out: FeatureCacheEntry[] = [];
    for (const file of this.walk()) {
      if (!file.endsWith('.json')) continue;
      try {
        const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { key: string; length: number };
        const data = `${file.slice(0, -'.json'.length)}.f32`;
        const fields = Object.fromEntries(info.key.split(';').map((kv) => kv.split('=') as [string, string]));
        out.push({
          key: info.key,
          checkpoint: fields['ckpt'] ?? '',
          noiseLevel: Number(fields['noise']),
          pooling: fields['pool'] ?? '',
          layer: fields['layer'] ?? '',
          bytes: fs.statSync(data).size + fs.statSync(file).size,
          lastUsed: fs.statSync(file).mtime,
          files: [file, data],
        });
      } catch {
        // torn or foreign: prune's leftovers pass handles it
      }
    }
    return out;
  }

  /**
   * Deletes the entries last used (or written) before `olderThan`, optionally only those of one
   * checkpoint (a prefix of its manifest's sha256), plus leftovers of interrupted writes older than
   * an hour. Safe beside running workers: the metadata file goes first, so a reader meanwhile sees
   * a miss and recomputes. With `dryRun` nothing is deleted.
   */
  prune(opts: { olderThan: Date; checkpoint?: string; dryRun?: boolean }): { entries: number; bytes: number; leftovers: number } {
    let entries = 0;
    let bytes = 0;
    let leftovers = 0;
    const remove = (file: string) => {
      if (opts.dryRun) return;
      try {
        fs.rmSync(file, { force: true });
      } catch {
        // gone already
      }
    };
    for (const e of this.entries()) {
      if (e.lastUsed >= opts.olderThan || (opts.checkpoint && !e.checkpoint.startsWith(opts.checkpoint))) continue;
      e.files.forEach(remove);
      entries++;
      bytes += e.bytes;
    }
    // Leftovers: data without metadata, and temporary files of writers killed half-way.
    const hourAgo = Date.now() - 3600_000;
    for (const file of this.walk()) {
      const isTmp = /\.tmp-\d+-[0-9a-f]+$/.test(file);
      const orphan = file.endsWith('.f32') && !fs.existsSync(`${file.slice(0, -'.f32'.length)}.json`);
      if (!isTmp && !orphan) continue;
      try {
        const st = fs.statSync(file);
        if (st.mtimeMs > hourAgo) continue;
        bytes += st.size;
      } catch {
        continue;
      }
      remove(file);
      leftovers++;
    }
    return { entries, bytes, leftovers };
  }

  private *walk(): Generator<string> {
    let shards: string[];
    try {
      shards = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const shard of shards) {
      const sub = path.join(this.dir, shard);
      let names: string[];
      try {
        names = fs.readdirSync(sub);
      } catch {
        continue;
      }
      for (const name of names) yield path.join(sub, name);
    }
  }

  private miss(): null {
    this.stats.misses++;
    return null;
  }
}
