import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FeatureCache, type FeatureCacheKey } from './feature-cache';

describe('FeatureCache: listing and pruning', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-cache-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const key = (checkpoint: string, noiseLevel: number, layer = 'out_1'): FeatureCacheKey => ({
    checkpoint,
    method: 'ddpm',
    noiseLevel,
    noiseSeed: 0,
    split: 'train',
    slice: 'first=4',
    pooling: 'avg4',
    layer,
  });
  const values = (n: number, v: number) => new Float32Array(n).fill(v);
  const age = (cache: FeatureCache, k: FeatureCacheKey, days: number) => {
    const e = cache.entries().find((x) => x.key.includes(`ckpt=${k.checkpoint};`) && x.noiseLevel === k.noiseLevel && x.layer === k.layer);
    if (!e) throw new Error('no such entry');
    const when = new Date(Date.now() - days * 86_400_000);
    for (const f of e.files) fs.utimesSync(f, when, when);
  };

  it('lists entries with their checkpoint, level, layer, size and last use', () => {
    const cache = new FeatureCache(dir);
    // File times may be coarser than the clock (whole seconds on some file systems).
    const before = Math.floor(Date.now() / 1000) * 1000;
    cache.put(key('aaaa', 4), values(8, 1));
    cache.put(key('bbbb', 11, 'out_2'), values(16, 2));
    const after = Date.now();
    const list = cache.entries().sort((a, b) => a.noiseLevel - b.noiseLevel);
    expect(list.map((e) => [e.checkpoint, e.noiseLevel, e.layer, e.pooling])).toEqual([
      ['aaaa', 4, 'out_1', 'avg4'],
      ['bbbb', 11, 'out_2', 'avg4'],
    ]);
    expect(list[1].bytes).toBeGreaterThan(16 * 4);
    // Last use: the write, between the moments before and after it.
    for (const e of list) {
      expect(e.lastUsed.getTime()).toBeGreaterThanOrEqual(before);
      expect(e.lastUsed.getTime()).toBeLessThanOrEqual(after);
    }
  });

  it('prunes what was last used before the cut-off, and a hit counts as a use', () => {
    const cache = new FeatureCache(dir);
    const [old, used, fresh] = [key('aaaa', 1), key('aaaa', 2), key('aaaa', 3)];
    for (const k of [old, used, fresh]) cache.put(k, values(8, k.noiseLevel));
    age(cache, old, 10);
    age(cache, used, 10);
    expect(cache.get(used, 8)).toEqual(values(8, 2)); // refreshes its last use
    const cutoff = new Date(Date.now() - 7 * 86_400_000);
    expect(cache.prune({ olderThan: cutoff, dryRun: true })).toMatchObject({ entries: 1 });
    expect(cache.entries()).toHaveLength(3);
    const r = cache.prune({ olderThan: cutoff });
    expect(r.entries).toBe(1);
    expect(r.bytes).toBeGreaterThan(8 * 4);
    expect(cache.get(old, 8)).toBeNull();
    expect(cache.get(used, 8)).toEqual(values(8, 2));
    expect(cache.get(fresh, 8)).toEqual(values(8, 3));
  });

  it('prunes one checkpoint only when asked, and removes leftovers of interrupted writes', () => {
    const cache = new FeatureCache(dir);
    cache.put(key('aaaa1111', 4), values(8, 1));
    cache.put(key('bbbb2222', 4), values(8, 2));
    // A writer killed between the data and the metadata, and one killed mid-write, an hour ago.
    const shard = path.join(dir, 'zz');
    fs.mkdirSync(shard);
    const orphan = path.join(shard, 'deadbeef.f32');
    const tmp = path.join(shard, 'deadbeef.json.tmp-123-abcd1234');
    fs.writeFileSync(orphan, Buffer.alloc(32));
    fs.writeFileSync(tmp, '{');
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    for (const f of [orphan, tmp]) fs.utimesSync(f, hourAgo, hourAgo);
    const r = cache.prune({ olderThan: new Date(Date.now() + 1000), checkpoint: 'aaaa' });
    expect(r).toMatchObject({ entries: 1, leftovers: 2 });
    expect(cache.get(key('aaaa1111', 4), 8)).toBeNull();
    expect(cache.get(key('bbbb2222', 4), 8)).toEqual(values(8, 2));
    expect(fs.existsSync(orphan) || fs.existsSync(tmp)).toBe(false);
  });

  it('a flipped byte in the data (same length, valid metadata) is a miss, and a put replaces the entry', () => {
    const cache = new FeatureCache(dir);
    const k = key('cccc', 7);
    cache.put(k, values(8, 0.5));
    const [entry] = cache.entries();
    const data = entry.files.find((f) => f.endsWith('.f32')) as string;
    const bytes = fs.readFileSync(data);
    bytes[5] ^= 0x80;
    fs.writeFileSync(data, bytes);
    expect(cache.get(k, 8)).toBeNull();
    expect(cache.stats).toEqual({ hits: 0, misses: 1 });
    cache.put(k, values(8, 0.5));
    expect(cache.get(k, 8)).toEqual(values(8, 0.5));
    expect(cache.stats).toEqual({ hits: 1, misses: 1 });
  });

  it('is empty, not an error, where the directory does not exist', () => {
    const cache = new FeatureCache(path.join(dir, 'nowhere'));
    expect(cache.entries()).toEqual([]);
    expect(cache.prune({ olderThan: new Date() })).toEqual({ entries: 0, bytes: 0, leftovers: 0 });
  });
});
