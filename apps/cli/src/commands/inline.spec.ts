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

  it('names the fix when the checkpoint directory holds no checkpoint', async () => {
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    await expect(sampleInline({ checkpoint: empty, backend: 'wasm' }, quiet)).rejects.toThrow(CliError);
    await expect(sampleInline({ checkpoint: empty, backend: 'wasm' }, quiet)).rejects.toThrow(/holds no valid checkpoint.*pretrain/);
  });
});
