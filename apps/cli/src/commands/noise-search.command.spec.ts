import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheCommand, parseAge } from './cache.command';
import { noiseSearchInline } from './noise-search.command';
import { pretrainInline } from './pretrain.command';
import { probeInline } from './probe.command';

// Inline probe (feature cache) and the adaptive-search measurement on wasm: a synthetic
// Fashion-MNIST (class c bright in row band c), the tiny preset, 2 steps.
jest.setTimeout(120_000);

let root: string;
let checkpoint: string;
const quiet = { json: true, log: () => undefined };

beforeAll(async () => {
  const { IDX_FILES, encodeIdx } = await import('@ddae/datasets');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-cli-search-'));
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  for (const [split, n] of [['train', 48], ['test', 24]] as const) {
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 10;
      for (let k = 0; k < 784; k++) images[i * 784 + k] = Math.floor(Math.floor(k / 28) / 3) === i % 10 ? 220 : (i * 7 + k * 13) % 40;
    }
    fs.writeFileSync(path.join(data, IDX_FILES[split].images.replace(/\.gz$/, '')), encodeIdx([n, 28, 28], images));
    fs.writeFileSync(path.join(data, IDX_FILES[split].labels.replace(/\.gz$/, '')), encodeIdx([n], labels));
  }
  checkpoint = path.join(root, 'run');
  await pretrainInline({ dataset: 'fashion-mnist', method: 'ddpm', unet: 'tiny', steps: '2', batch: '4', 'checkpoint-every': '2', 'data-dir': data, out: checkpoint, backend: 'wasm' }, quiet);
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const probeArgs = () => ({ checkpoint, dataset: 'fashion-mnist', 'data-dir': path.join(root, 'data'), layers: 'out_1,out_2', epochs: '2', batch: '16', 'train-size': '48', 'test-size': '24', cache: path.join(root, 'cache'), backend: 'wasm' });

describe('inline probe with the feature cache', () => {
  it('hits the cache on a second probe of the same features, also under another linear protocol', async () => {
    const first = JSON.parse(await probeInline({ ...probeArgs(), noise: '5,50' }, quiet)) as { featureCache: { hits: number; misses: number }; cells: unknown[] };
    expect(first.featureCache).toMatchObject({ hits: 0, misses: 4 });
    const again = JSON.parse(await probeInline({ ...probeArgs(), noise: '5,50' }, quiet)) as typeof first;
    expect(again.featureCache).toMatchObject({ hits: 8, misses: 0 });
    expect(again.cells).toEqual(first.cells);
    const reference = JSON.parse(await probeInline({ ...probeArgs(), noise: '5', protocol: 'reference', 'noise-protocol': 'fresh' }, quiet)) as typeof first & { protocolKey: string };
    expect(reference.featureCache).toMatchObject({ hits: 2, misses: 0 }); // the test split's features
    expect(reference.protocolKey).toContain('noise=fresh:0;probe=reference');
  });
});

describe('noise-search', () => {
  it('runs the adaptive search round by round, then the rest of the grid, and compares them', async () => {
    const grid = [1, 3, 5, 10, 20, 50, 100, 200, 400, 700];
    const r = JSON.parse(await noiseSearchInline({ ...probeArgs(), noise: grid.join(','), coarse: '3' }, quiet)) as {
      grid: { jobs: number; best: { noiseLevel: number; accuracy: number }; accuracies: { noiseLevel: number; accuracy: number }[] };
      adaptive: { jobs: number; rounds: number[][]; best: { noiseLevel: number; accuracy: number } };
      foundGridBest: boolean;
      accuracyGap: number;
      accuracy: number;
      layers: string[];
      cells: { layer: string; noiseLevel: number; accuracy: number }[];
    };
    expect(r.grid.jobs).toBe(grid.length);
    expect(r.grid.accuracies.map((a) => a.noiseLevel)).toEqual(grid);
    expect(r.adaptive.rounds[0]).toEqual([1, 50, 700]);
    const searched = r.adaptive.rounds.flat();
    expect(new Set(searched).size).toBe(searched.length);
    expect(r.adaptive.jobs).toBe(searched.length);
    expect(r.adaptive.jobs).toBeLessThan(grid.length);
    // The search's best is the best of what it measured, and the grid's best is the overall best.
    const at = new Map(r.grid.accuracies.map((a) => [a.noiseLevel, a.accuracy]));
    expect(r.adaptive.best.accuracy).toBe(Math.max(...searched.map((l) => at.get(l) as number)));
    // Round by round: each later round refines around a best level so far, i.e. every new level
    // lies strictly between the measured levels on either side of one of the best so far.
    const measured: number[] = [...r.adaptive.rounds[0]];
    for (const round of r.adaptive.rounds.slice(1)) {
      const top = Math.max(...measured.map((l) => at.get(l) as number));
      const sorted = [...measured].sort((a, b) => a - b);
      const brackets = sorted.filter((l) => at.get(l) === top).map((b) => [sorted.filter((l) => l < b).at(-1) ?? -Infinity, sorted.find((l) => l > b) ?? Infinity]);
      for (const level of round) expect(brackets.some(([lo, hi]) => level > lo && level < hi)).toBe(true);
      measured.push(...round);
    }
    expect(r.adaptive.rounds.length).toBeGreaterThan(1);
    expect(r.grid.best.accuracy).toBe(Math.max(...at.values()));
    expect(r.accuracyGap).toBeCloseTo(r.grid.best.accuracy - r.adaptive.best.accuracy, 12);
    expect(r.foundGridBest).toBe(r.adaptive.best.noiseLevel === r.grid.best.noiseLevel);
    expect(r.accuracy).toBe(r.adaptive.best.accuracy);
    // Every layer at every grid level, in probe --json's shape (what heatmap --from reads).
    expect(r.cells).toHaveLength(grid.length * r.layers.length);
    for (const level of grid) expect(Math.max(...r.cells.filter((c) => c.noiseLevel === level).map((c) => c.accuracy))).toBe(at.get(level));
  });

  it('needs a checkpoint and a grid of at least two levels', async () => {
    await expect(noiseSearchInline({}, quiet)).rejects.toThrow(/--checkpoint/);
    await expect(noiseSearchInline({ ...probeArgs(), noise: '5' }, quiet)).rejects.toThrow(/at least 2 levels/);
  });
});

describe('cache list / cache prune (the feature cache the probes above fill)', () => {
  it('lists what a probe cached, by checkpoint, and prunes one checkpoint\'s entries (dry run first)', async () => {
    const cache = path.join(root, 'cache-prune');
    await probeInline({ ...probeArgs(), noise: '5,100', cache }, quiet);
    const list = JSON.parse(await cacheCommand('list', { cache }, { json: true })) as { entries: number; checkpoints: { checkpoint: string; entries: number; noiseLevels: number[]; poolings: string[] }[] };
    // 2 layers x 2 levels x (train, test)
    expect(list.entries).toBe(8);
    expect(list.checkpoints).toHaveLength(1);
    expect(list.checkpoints[0]).toMatchObject({ entries: 8, noiseLevels: [5, 100], poolings: ['gap'] });
    expect(await cacheCommand('list', { cache }, { json: false })).toMatch(/1 checkpoint\(s\)[\s\S]*levels 5,100/);

    // Nothing is older than a day; a dry run of "everything of this checkpoint" deletes nothing.
    expect(JSON.parse(await cacheCommand('prune', { cache, 'older-than': '1d' }, { json: true }))).toMatchObject({ entries: 0 });
    expect(JSON.parse(await cacheCommand('prune', { cache, 'older-than': '0', checkpoint, 'dry-run': true }, { json: true }))).toMatchObject({ entries: 8, dryRun: true });
    expect(JSON.parse(await cacheCommand('list', { cache }, { json: true })).entries).toBe(8);
    const pruned = JSON.parse(await cacheCommand('prune', { cache, 'older-than': '0', checkpoint }, { json: true })) as { entries: number; checkpoint: string };
    expect(pruned.entries).toBe(8);
    expect(pruned.checkpoint).toBe(list.checkpoints[0].checkpoint);
    expect(await cacheCommand('list', { cache }, { json: false })).toMatch(/: empty$/);
    // The next probe recomputes (misses) and gives the same numbers.
    const again = JSON.parse(await probeInline({ ...probeArgs(), noise: '5', cache }, quiet)) as { featureCache: { hits: number; misses: number } };
    expect(again.featureCache.hits).toBe(0);
    expect(again.featureCache.misses).toBeGreaterThan(0);
  });

  it('names the fix for a bad sub-command or age', async () => {
    await expect(cacheCommand(undefined, {}, { json: false })).rejects.toThrow(/cache needs list or prune/);
    await expect(cacheCommand('prune', { cache: path.join(root, 'c') }, { json: false })).rejects.toThrow(/needs --older-than AGE/);
    expect(() => parseAge('14')).toThrow(/with a unit \(m, h, d\)/);
    expect(() => parseAge('two weeks')).toThrow(/--older-than must be/);
    expect(parseAge('14d')).toBe(14 * 86_400_000);
    expect(parseAge('0')).toBe(0);
    await expect(cacheCommand('prune', { cache: path.join(root, 'c'), 'older-than': '1d', checkpoint: path.join(root, 'nowhere') }, { json: false })).rejects.toThrow(/holds no valid checkpoint/);
  });
});

