import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { workerSampleSpec, type PretrainTask, type TrainLossPoint } from '@ddae/contracts';
import { encodeIdx } from '@ddae/datasets';
import { selectBackend } from './backend';
import { runComputeTask } from './index';
import { sampleGridFile, withSampleGrid } from './sample-grid';
import { tinyPretrainTask } from './tiny-task.fixture';

jest.setTimeout(60_000);

/** 32 tiny Fashion-MNIST-shaped images (28x28) and labels, enough to take a few optimiser steps. */
function writeTinyFashion(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [n, prefix] of [[32, 'train'], [16, 't10k']] as const) {
    const images = new Uint8Array(n * 784).map((_, i) => (i * 37) % 256);
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx([n, 28, 28], images));
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx([n], new Uint8Array(n).map((_, i) => i % 10)));
  }
}

describe('the sample grid and the loss curve of a pretraining task', () => {
  let root: string;
  const task = (over: Partial<PretrainTask> = {}): PretrainTask =>
    tinyPretrainTask(root, { runId: 'run-s', steps: 3, checkpointEvery: 3, lossEvery: 2, samples: { n: 4, steps: 2, seed: 0 }, ...over });

  beforeAll(async () => {
    await selectBackend('wasm');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-samples-'));
    writeTinyFashion(path.join(root, 'data'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reports the mean loss per window of lossEvery steps and writes the grid beside the final checkpoint', async () => {
    const losses: TrainLossPoint[] = [];
    const r = await runComputeTask(task(), { trainLoss: (p) => losses.push(p) });
    if (r.kind !== 'pretrain') throw new Error(`expected a pretrain result, got ${r.kind}`);
    // Windows end at step 2 (steps 1-2) and at the last step (step 3 alone).
    expect(losses.map((p) => p.step)).toEqual([2, 3]);
    for (const p of losses) expect(Number.isFinite(p.loss) && p.loss > 0).toBe(true);
    expect(r.samplesError).toBeUndefined();
    expect(r.samples).toMatchObject({ step: 3, n: 4, sampler: 'ddim', steps: 2, seed: 0 });
    expect(r.samples?.path).toBe(sampleGridFile(r.finalCheckpoint.path, 3));
    expect(path.dirname(r.samples?.path ?? '')).toBe(path.join(root, 'run'));
    // 2x2 images cropped back to 28x28 (the model's input is padded to 32), drawn at 2x, 2 px apart.
    const png = PNG.sync.read(fs.readFileSync(r.samples?.path ?? ''));
    expect([png.width, png.height]).toEqual([r.samples?.width, r.samples?.height]);
    expect(png.width).toBe(2 * 56 + 3 * 2);
    const first = fs.readFileSync(r.samples?.path ?? '');
    // A retried job (resumes at the final checkpoint) writes the same grid: sampling is seeded.
    const again = await runComputeTask(task());
    if (again.kind !== 'pretrain') throw new Error('expected a pretrain result');
    expect(fs.readFileSync(again.samples?.path ?? '')).toEqual(first);
  });

  it('samples nothing for the untrained control or without the option, and never fails a run over its samples', async () => {
    const untrained = await runComputeTask(task({ steps: 0, checkpointEvery: 1, checkpointDir: path.join(root, 'untrained') }));
    expect(untrained.kind === 'pretrain' && untrained.samples).toBeUndefined();
    const plain = await runComputeTask(task({ samples: undefined, checkpointDir: path.join(root, 'plain') }));
    expect(plain.kind === 'pretrain' && plain.samples).toBeUndefined();
    expect(fs.readdirSync(path.join(root, 'plain')).filter((f) => f.endsWith('.png'))).toEqual([]);
    // The checkpoint vanished before sampling: the result stands, with the reason.
    if (plain.kind !== 'pretrain') throw new Error('expected a pretrain result');
    const broken = await withSampleGrid(task(), { ...plain, finalCheckpoint: { ...plain.finalCheckpoint, path: path.join(root, 'missing', 'step-00000003') } });
    expect(broken.samples).toBeUndefined();
    expect(broken.samplesError).toBeDefined();
  });

  it('asks workers for a small grid: 16 images, 20 DDIM or 10 Heun steps', () => {
    expect(workerSampleSpec('ddpm')).toEqual({ n: 16, steps: 20, seed: 0 });
    expect(workerSampleSpec('edm')).toEqual({ n: 16, steps: 10, seed: 0 });
  });
});
