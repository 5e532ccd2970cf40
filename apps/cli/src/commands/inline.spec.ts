import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { CliError } from '../api-client';
import { pretrainInline } from './pretrain.command';
import { sampleInline } from './sample.command';

// The inline commands end to end on wasm (the cpu backend needs ~40 s for this): a synthetic
// 8-image Fashion-MNIST, the tiny preset, a few steps.
jest.setTimeout(120_000);

let root: string;
const quiet = { json: true, log: () => undefined };

beforeAll(async () => {
  // Lazily, as the CLI itself loads the ML libraries.
  const { IDX_FILES, encodeIdx } = await import('@ddae/datasets');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-cli-inline-'));
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  const pixels = new Uint8Array(8 * 28 * 28).map((_, i) => (i * 37) % 256);
  // Uncompressed IDX files under the names without .gz (the loader accepts both).
  fs.writeFileSync(path.join(data, IDX_FILES.train.images.replace(/\.gz$/, '')), encodeIdx([8, 28, 28], pixels));
  fs.writeFileSync(path.join(data, IDX_FILES.train.labels.replace(/\.gz$/, '')), encodeIdx([8], new Uint8Array(8).map((_, i) => i)));
  // A test split too, for probing during pretraining.
  fs.writeFileSync(path.join(data, IDX_FILES.test.images.replace(/\.gz$/, '')), encodeIdx([8, 28, 28], pixels.map((v) => 255 - v)));
  fs.writeFileSync(path.join(data, IDX_FILES.test.labels.replace(/\.gz$/, '')), encodeIdx([8], new Uint8Array(8).map((_, i) => i)));
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('inline pretrain and sample', () => {
  it('trains, resumes, and samples a PNG grid from the EMA weights', async () => {
    const out = path.join(root, 'run');
    const args = { dataset: 'fashion-mnist', method: 'edm', unet: 'tiny', steps: '2', batch: '2', 'checkpoint-every': '1', 'data-dir': path.join(root, 'data'), out, backend: 'wasm' };
    const first = JSON.parse(await pretrainInline(args, quiet)) as Record<string, unknown>;
    expect(first).toMatchObject({ checkpoint: path.join(out, 'step-00000002'), steps: 2, backend: 'wasm' });
    expect(first.parameters).toBeGreaterThan(1000);
    const lines: string[] = [];
    const resumed = JSON.parse(await pretrainInline({ ...args, steps: '3' }, { json: true, log: (l) => lines.push(l) })) as Record<string, unknown>;
    expect(resumed).toMatchObject({ checkpoint: path.join(out, 'step-00000003'), steps: 3 });
    expect(lines.join('\n')).toMatch(/resuming from step 2 of 3/);
    await expect(pretrainInline({ ...args, method: 'ddpm', steps: '4' }, quiet)).rejects.toThrow(/holds checkpoints of another model/);

    const png = path.join(root, 'grid.png');
    const summary = JSON.parse(await sampleInline({ checkpoint: out, n: '4', steps: '2', out: png, backend: 'wasm' }, quiet)) as Record<string, unknown>;
    expect(summary).toMatchObject({ out: png, step: 3, method: 'edm', sampler: 'heun', steps: 2, n: 4 });
    const decoded = PNG.sync.read(fs.readFileSync(png));
    // 2x2 grid of 32x32 images at scale 2 with 2-pixel padding.
    expect([decoded.width, decoded.height]).toEqual([2 * 64 + 3 * 2, 2 * 64 + 3 * 2]);
  });

  it('probes during pretraining with --probe-every and stops at the plateau with --patience', async () => {
    const out = path.join(root, 'run-probed');
    // No probe can gain a whole point of accuracy (--min-delta 1): the second probe is a plateau.
    const args = {
      dataset: 'fashion-mnist', method: 'ddpm', unet: 'tiny', steps: '4', batch: '2', 'data-dir': path.join(root, 'data'), out, backend: 'wasm',
      'probe-every': '1', 'probe-noise': '11', 'probe-layers': 'out_1', 'probe-train-size': '8', 'probe-test-size': '8', 'probe-epochs': '1', patience: '1', 'min-delta': '1',
    };
    const lines: string[] = [];
    const r = JSON.parse(await pretrainInline(args, { json: true, log: (l) => lines.push(l) })) as { steps: number; stoppedEarly: boolean; progress: { step: number; accuracy: number }[]; checkpoint: string };
    expect(r).toMatchObject({ steps: 2, stoppedEarly: true, checkpoint: path.join(out, 'step-00000002') });
    expect(r.progress.map((p) => p.step)).toEqual([1, 2]);
    expect(lines.filter((l) => l.startsWith('probe at step')).map((l) => l.split(':')[0])).toEqual(['probe at step 1', 'probe at step 2']);
    // Run again: it ends where it stopped, and shows the points it had.
    lines.length = 0;
    const text = await pretrainInline(args, { json: false, log: (l) => lines.push(l) });
    expect(text).toMatch(/^trained 2 steps .*stopped early: the probe plateaued before --steps 4/);
    expect(text).toMatch(/probe accuracy by step: 1: [\d.]+ %, 2: [\d.]+ %/);
    expect(lines.filter((l) => l.includes('(measured before the restart)'))).toHaveLength(2);
  });

  it('trains a DiT (the acceptance command: --backbone dit --preset dit-tiny), probes its blocks and samples it', async () => {
    const out = path.join(root, 'run-dit');
    const args = {
      dataset: 'fashion-mnist', method: 'ddpm', backbone: 'dit', preset: 'dit-tiny', steps: '2', batch: '8', 'data-dir': path.join(root, 'data'), out, backend: 'wasm',
      'probe-every': '2', 'probe-noise': '11', 'probe-train-size': '8', 'probe-test-size': '8', 'probe-epochs': '1',
    };
    const text = await pretrainInline(args, quiet);
    expect(text).toContain('"backbone":"dit"');
    const r = JSON.parse(text) as { steps: number; parameters: number; progress: { step: number }[] };
    expect(r).toMatchObject({ steps: 2, backbone: 'dit', progress: [{ step: 2 }] });
    expect(r.parameters).toBeGreaterThan(100_000);
    await expect(pretrainInline({ ...args, preset: undefined, backbone: undefined, unet: 'tiny', steps: '3' }, quiet)).rejects.toThrow(/holds checkpoints of another model/);
    const { probeInline } = await import('./probe.command');
    const probed = JSON.parse(await probeInline({ checkpoint: out, dataset: 'fashion-mnist', 'data-dir': path.join(root, 'data'), noise: '11', 'train-size': '8', 'test-size': '8', epochs: '1', pooling: 'avg2', cache: 'none', backend: 'wasm' }, quiet)) as { cells: { layer: string; featureDim: number }[] };
    expect(probed.cells.map((c) => c.layer)).toEqual(['blk_1', 'blk_2', 'blk_3', 'blk_4']);
    // avg2 over the 8x8 token grid: 2 x 2 x width 48.
    expect(probed.cells[0].featureDim).toBe(4 * 48);
    const png = path.join(root, 'dit-grid.png');
    const summary = JSON.parse(await sampleInline({ checkpoint: out, n: '4', steps: '2', out: png, backend: 'wasm' }, quiet)) as Record<string, unknown>;
    expect(summary).toMatchObject({ step: 2, method: 'ddpm', sampler: 'ddim', n: 4 });
  });

  it('fine-tunes a cell end to end with probe --protocol finetune (the spec\'s probe.finetune, inline)', async () => {
    const out = path.join(root, 'run-ft');
    const data = path.join(root, 'data');
    await pretrainInline({ dataset: 'fashion-mnist', method: 'ddpm', unet: 'tiny', steps: '0', 'data-dir': data, out, backend: 'wasm' }, quiet);
    const { probeInline } = await import('./probe.command');
    const cell = { checkpoint: out, dataset: 'fashion-mnist', 'data-dir': data, layers: 'out_1', noise: '4', 'train-size': '8', 'test-size': '8', pooling: 'avg2', backend: 'wasm' };
    const lines: string[] = [];
    const ft = JSON.parse(await probeInline({ ...cell, protocol: 'finetune', epochs: '2', lr: '1e-2', augment: 'false' }, { json: true, log: (l) => lines.push(l) })) as {
      protocol: Record<string, unknown>; protocolKey: string; cells: { layer: string; noiseLevel: number; accuracy: number; trainAccuracy: number }[];
    };
    expect(ft.protocol).toMatchObject({ probe: 'finetune', epochs: 2, learningRate: 1e-2, augment: false, pooling: 'avg2', trainSize: 8, testSize: 8 });
    expect(ft.protocolKey).toContain('probe=finetune');
    expect(ft.cells.map((c) => [c.layer, c.noiseLevel])).toEqual([['out_1', 4]]);
    // The fine-tuning's own progress (one line per epoch), not a linear probe's.
    expect(lines.filter((l) => /fine-tuning out_1: epoch \d\/2/.test(l))).toHaveLength(2);
    expect(ft.cells[0].trainAccuracy).toBeGreaterThanOrEqual(0);
    await expect(probeInline({ ...cell, protocol: 'finetune', cache: path.join(root, 'cache') }, quiet)).rejects.toThrow(/never cached; drop --cache/);
  });

  it('names the fix when the checkpoint directory holds no checkpoint', async () => {
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    const out = path.join(root, 'never.png');
    await expect(sampleInline({ checkpoint: empty, out, backend: 'wasm' }, quiet)).rejects.toThrow(CliError);
    await expect(sampleInline({ checkpoint: empty, out, backend: 'wasm' }, quiet)).rejects.toThrow(/holds no valid checkpoint.*pretrain/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
