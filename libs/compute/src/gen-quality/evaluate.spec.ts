import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PretrainTask } from '@ddae/contracts';
import { encodeIdx, loadDataset, toModelInput } from '@ddae/datasets';
import { selectBackend } from '../backend';
import { runComputeTask } from '../index';
import { tinyPretrainTask } from '../tiny-task.fixture';
import { evaluateGenerationQuality, imageQuality } from './evaluate';

jest.setTimeout(120_000);

/** 32 training and 24 test images, Fashion-MNIST-shaped, with some structure. */
function writeTinyFashion(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [n, prefix] of [[32, 'train'], [24, 't10k']] as const) {
    const images = new Uint8Array(n * 784).map((_, i) => ((i % 784) * 7 + Math.floor(i / 784) * 31) % 256);
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx([n, 28, 28], images));
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx([n], new Uint8Array(n).map((_, i) => i % 10)));
  }
}

describe('generation quality (FID, KID) of a checkpoint', () => {
  let root: string;
  const task = (over: Partial<PretrainTask> = {}): PretrainTask => tinyPretrainTask(root, { runId: 'run-g', fid: { samples: 8, steps: 2 }, ...over });

  beforeAll(async () => {
    await selectBackend('wasm');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-fid-'));
    writeTinyFashion(path.join(root, 'data'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('is about 0 for the test images themselves and large for noise (the real test split)', async () => {
    const test = await loadDataset('fashion-mnist', 'test');
    const idx = Array.from({ length: 1000 }, (_, i) => i * 10);
    const same = await imageQuality(toModelInput(test, idx, 32), idx.length, 32, { seed: 0, kidSubsets: 5, kidSubsetSize: 200 });
    const noise = new Float32Array(200 * 28 * 28).map((_, i) => Math.sin(i * 12.9898) * 0.9);
    const bad = await imageQuality(noise, 200, 28, { seed: 0, kidSubsets: 5, kidSubsetSize: 200 });
    expect(same).toMatchObject({ extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', reference: 'fashion-mnist test', referenceCount: 10_000 });
    // A tenth of the reference itself: only the finite-sample gap is left.
    expect(bad.fid).toBeGreaterThan(20 * same.fid);
    expect(Math.abs(same.kid.mean)).toBeLessThan(bad.kid.mean / 50);
  });

  it('adds FID and KID to a pretraining result when asked, deterministically, and never fails the run over them', async () => {
    const r = await runComputeTask(task());
    if (r.kind !== 'pretrain') throw new Error(`expected a pretrain result, got ${r.kind}`);
    expect(r.generationError).toBeUndefined();
    expect(r.generation).toMatchObject({ extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', step: 2, samples: 8, sampler: 'ddim', steps: 2, seed: 0, reference: 'fashion-mnist test', referenceCount: 24 });
    expect(r.generation?.kid).toMatchObject({ subsets: 20, subsetSize: 8 });
    expect(Number.isFinite(r.generation?.fid) && (r.generation?.fid ?? -1) > 0).toBe(true);
    const again = await evaluateGenerationQuality(r.finalCheckpoint.path, { samples: 8, steps: 2, seed: 0, datasetDir: path.join(root, 'data') });
    expect(again.fid).toBe(r.generation?.fid);
    expect(again.kid).toEqual(r.generation?.kid);

    const plain = await runComputeTask(task({ fid: undefined }));
    expect(plain.kind === 'pretrain' && plain.generation).toBeUndefined();
    const mnist = await runComputeTask(task({ dataset: { name: 'mnist', dir: path.join(root, 'data') }, checkpointDir: path.join(root, 'mnist') }));
    if (mnist.kind !== 'pretrain') throw new Error('expected a pretrain result');
    expect(mnist.generation).toBeUndefined();
    expect(mnist.generationError).toMatch(/GenerationQualityError: .*fashion-mnist only; this run trains on mnist/);
  });
});
