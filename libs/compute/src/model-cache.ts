import fs from 'node:fs';
import path from 'node:path';
import { loadForInference, type Backbone, type CheckpointManifest } from '@ddae/diffusion';

/** A checkpoint's network with its EMA weights, for feature extraction; `release()` when done with it. */
export interface InferenceModel {
  unet: Backbone;
  manifest: CheckpointManifest;
  /** Whether it came from the cache (loaded by an earlier task of this process). */
  cached: boolean;
  release(): void;
}

interface Entry {
  key: string;
  unet: Backbone;
  manifest: CheckpointManifest;
  users: number;
  /** Out of the cache: disposed when its last user releases it. */
  evicted: boolean;
}

let capacity = 0;
/** Most recently used first. */
const entries: Entry[] = [];

/**
 * How many checkpoints a process keeps loaded across tasks (a warm compute child probing one
 * checkpoint at several noise levels loads its weights once). 0, the default: every model is
 * disposed when released, as a process that runs one task wants.
 */
export function setModelCacheSize(n: number): void {
  capacity = Math.max(0, Math.floor(n));
  trim();
}

/** Disposes every cached model not in use (tests, memory pressure). */
export function clearModelCache(): void {
  const keep = capacity;
  capacity = 0;
  trim();
  capacity = keep;
}

/** The cache's keys, most recently used first (tests). */
export function modelCacheKeys(): string[] {
  return entries.map((e) => e.key);
}

/**
 * A checkpoint's identity on disk: its resolved path and the inode, size and mtime of the files an
 * inference load reads. Checkpoints are written to a temporary directory and renamed into place,
 * so a rewritten one has new inodes; a file edited in place changes its mtime. Undefined when a
 * file cannot be stat'ed: the load then fails with the file system's own error (its code and path).
 */
function identity(ckptPath: string): string | undefined {
  const dir = path.resolve(ckptPath);
  try {
    const parts = ['manifest.json', 'ema.bin'].map((f) => {
      const s = fs.statSync(path.join(dir, f));
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    });
    return `${dir}\0${parts.join('\0')}`;
  } catch {
    return undefined;
  }
}

function trim(): void {
  while (entries.length > capacity) {
    const e = entries.pop() as Entry;
    e.evicted = true;
    if (e.users === 0) e.unet.dispose();
  }
}

/**
 * Loads a checkpoint for inference (verified, EMA weights), or reuses the copy an earlier task of
 * this process loaded while the checkpoint's files are the same ones (see `identity`). The caller
 * must not dispose the model: it calls `release()`.
 */
export function acquireInferenceModel(ckptPath: string): InferenceModel {
  const key = capacity > 0 ? identity(ckptPath) : undefined;
  const at = key === undefined ? -1 : entries.findIndex((e) => e.key === key);
  if (at >= 0) {
    const [e] = entries.splice(at, 1);
    entries.unshift(e);
    return handle(e, true);
  }
  const { unet, manifest } = loadForInference(ckptPath);
  const e: Entry = { key: key ?? '', unet, manifest, users: 0, evicted: key === undefined };
  if (key !== undefined) {
    entries.unshift(e);
    trim();
  }
  return handle(e, false);
}

function handle(e: Entry, cached: boolean): InferenceModel {
  e.users += 1;
  let released = false;
  return {
    unet: e.unet,
    manifest: e.manifest,
    cached,
    release() {
      if (released) return;
      released = true;
      e.users -= 1;
      if (e.evicted && e.users === 0) e.unet.dispose();
    },
  };
}
