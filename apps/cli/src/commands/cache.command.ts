import fs from 'node:fs';
import path from 'node:path';
import { CliError } from '../api-client';
import { featureCacheDirOf } from './probe.command';

export interface CacheArgs {
  cache?: string;
  checkpoint?: string;
  'older-than'?: string;
  'dry-run'?: boolean;
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `7d`, `12h`, `30m` or `0` (everything) as milliseconds. */
export function parseAge(raw: string | undefined): number {
  if (raw === undefined) throw new CliError('cache prune needs --older-than AGE: e.g. --older-than 14d (days), 12h, 30m, or 0 for every entry');
  const m = /^(\d+(?:\.\d+)?)([mhd])?$/.exec(raw.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) throw new CliError(`--older-than must be a number with a unit (m, h, d), e.g. 14d; or 0 for every entry; got "${raw}"`);
  return Number(m[1]) * (m[2] ? UNITS[m[2]] : 0);
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The sha256 prefix of `--checkpoint DIR`'s manifest (the newest checkpoint under a pretrain --out directory). */
async function checkpointId(dir: string): Promise<string> {
  const { latestCheckpoint, verifyCheckpoint } = await import('@ddae/diffusion');
  const { checkpointChecksum } = await import('@ddae/compute');
  const found = fs.existsSync(path.join(dir, 'manifest.json')) ? verifyCheckpoint(dir) : latestCheckpoint(dir);
  if (!found) throw new CliError(`${dir} holds no valid checkpoint (step-XXXXXXXX directories with a manifest.json)`);
  return checkpointChecksum(found.path);
}

/**
 * `cache list` and `cache prune`: the feature cache the workers and the inline probes share
 * (`--cache DIR`, default `$ARTIFACT_DIR/features`). Entries age by their last use; pruning is
 * safe beside running workers (a reader meanwhile sees a miss and recomputes).
 */
export async function cacheCommand(sub: string | undefined, a: CacheArgs, opts: { json: boolean }): Promise<string> {
  if (sub !== 'list' && sub !== 'prune') throw new CliError(`cache needs list or prune: npm run ddae -- cache list | cache prune --older-than 14d [--checkpoint DIR] [--dry-run]`);
  const dir = featureCacheDirOf(a.cache);
  if (!dir) throw new CliError('which cache? give --cache DIR, or set ARTIFACT_DIR to use $ARTIFACT_DIR/features (the workers\' cache)');
  const { FeatureCache } = await import('@ddae/compute');
  const cache = new FeatureCache(dir);
  if (sub === 'list') {
    const byCheckpoint = new Map<string, { checkpoint: string; entries: number; bytes: number; noiseLevels: Set<number>; poolings: Set<string>; lastUsed: Date }>();
    for (const e of cache.entries()) {
      const g = byCheckpoint.get(e.checkpoint) ?? { checkpoint: e.checkpoint, entries: 0, bytes: 0, noiseLevels: new Set<number>(), poolings: new Set<string>(), lastUsed: e.lastUsed };
      g.entries++;
      g.bytes += e.bytes;
      g.noiseLevels.add(e.noiseLevel);
      g.poolings.add(e.pooling);
      if (e.lastUsed > g.lastUsed) g.lastUsed = e.lastUsed;
      byCheckpoint.set(e.checkpoint, g);
    }
    const groups = [...byCheckpoint.values()].sort((x, y) => y.lastUsed.getTime() - x.lastUsed.getTime());
    const total = groups.reduce((s, g) => s + g.bytes, 0);
    if (opts.json) {
      return JSON.stringify({
        dir,
        entries: groups.reduce((s, g) => s + g.entries, 0),
        bytes: total,
        checkpoints: groups.map((g) => ({ ...g, noiseLevels: [...g.noiseLevels].sort((x, y) => x - y), poolings: [...g.poolings].sort(), lastUsed: g.lastUsed.toISOString() })),
      });
    }
    if (!groups.length) return `${dir}: empty`;
    return [
      `${dir}: ${mb(total)} in ${groups.length} checkpoint(s)`,
      ...groups.map(
        (g) =>
          `  ${g.checkpoint.slice(0, 12)}  ${String(g.entries).padStart(5)} entries  ${mb(g.bytes).padStart(10)}  levels ${[...g.noiseLevels].sort((x, y) => x - y).join(',')}  ${[...g.poolings].join(',')}  last used ${g.lastUsed.toISOString().slice(0, 16)}Z`,
      ),
    ].join('\n');
  }
  if (sub === 'prune') {
    const ageMs = parseAge(a['older-than']);
    const checkpoint = a.checkpoint ? await checkpointId(a.checkpoint) : undefined;
    const r = cache.prune({ olderThan: new Date(Date.now() - ageMs), ...(checkpoint ? { checkpoint } : {}), dryRun: a['dry-run'] === true });
    const verb = a['dry-run'] ? 'would delete' : 'deleted';
    if (opts.json) return JSON.stringify({ dir, dryRun: a['dry-run'] === true, ...(checkpoint ? { checkpoint } : {}), ...r });
    return `${dir}: ${verb} ${r.entries} entries and ${r.leftovers} leftover file(s), ${mb(r.bytes)}`;
  }
  throw new CliError(`cache needs list or prune: npm run ddae -- cache list | cache prune --older-than 14d [--checkpoint DIR] [--dry-run]`);
}
