import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { CheckpointInfo } from '@ddae/contracts';
import { StoppedError, extractFeatures, fixedNoise, latestCheckpoint, loadForInference, pretrain, readCheckpointData } from '@ddae/diffusion';
import { TINY_IMAGES as images, TINY_N as N, TINY_SHAPE as SHAPE, TINY_UNET_TASK, usePretrainTasks } from '@ddae/diffusion/training.fixture';
import { selectBackend } from './backend';

/**
 * The training contract on one backend: determinism, checkpoints, resume, inference round trip.
 * training.spec.ts runs it on wasm and training.native.spec.ts on the native kernels (jest gives
 * each file its own process state, and a process picks its backend once).
 */
export function describeTraining(backend: 'wasm' | 'native'): void {
describe(`pretrain on ${backend}`, () => {
  const task = usePretrainTasks('ddae-train-', TINY_UNET_TASK);
  beforeAll(async () => {
    expect((await selectBackend(backend)).backend).toBe(backend);
  });

  it('trains deterministically, leaks no tensors, and checkpoints every N steps', async () => {
    const before = tf.memory().numTensors;
    const seen: number[] = [];
    const counts: number[] = [];
    const a = await pretrain(task(), images, N, { checkpoint: (c) => seen.push(c.step), progress: () => counts.push(tf.memory().numTensors) }, SHAPE);
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(counts).size).toBe(1);
    expect(tf.getBackend()).toBe(backend);
    expect(seen).toEqual([2, 4]);
    expect(a.steps).toBe(4);
    expect(a.finalCheckpoint.path.endsWith('step-00000004')).toBe(true);
    const b = await pretrain(task(), images, N, {}, SHAPE);
    const wa = readCheckpointData(a.finalCheckpoint.path);
    const wb = readCheckpointData(b.finalCheckpoint.path);
    expect(Buffer.from(wa.weights.buffer).equals(Buffer.from(wb.weights.buffer))).toBe(true);
    expect(Buffer.from(wa.ema.buffer).equals(Buffer.from(wb.ema.buffer))).toBe(true);
    const c = await pretrain(task({ seed: 2 }), images, N, {}, SHAPE);
    expect(Buffer.from(readCheckpointData(c.finalCheckpoint.path).weights.buffer).equals(Buffer.from(wa.weights.buffer))).toBe(false);
  });

  it('resumes after a stop to the same weights as an uninterrupted run', async () => {
    const full = await pretrain(task({ steps: 5, checkpointEvery: 10 }), images, N, {}, SHAPE);
    const t = task({ steps: 5, checkpointEvery: 10 });
    let polls = 0;
    let stopped: unknown;
    try {
      await pretrain(t, images, N, { shouldStop: () => ++polls > 3 }, SHAPE);
    } catch (e) {
      stopped = e;
    }
    expect(stopped).toBeInstanceOf(StoppedError);
    expect((stopped as Error).name).toBe('StoppedError');
    expect((stopped as StoppedError).checkpoint.step).toBe(3);
    const reported: CheckpointInfo[] = [];
    const resumed = await pretrain(t, images, N, { checkpoint: (c) => reported.push(c) }, SHAPE);
    expect(resumed.steps).toBe(5);
    expect(reported.map((r) => r.step)).toEqual([5]);
    const f = readCheckpointData(full.finalCheckpoint.path);
    const r = readCheckpointData(resumed.finalCheckpoint.path);
    expect(Buffer.from(r.weights.buffer).equals(Buffer.from(f.weights.buffer))).toBe(true);
    expect(Buffer.from(r.ema.buffer).equals(Buffer.from(f.ema.buffer))).toBe(true);
    expect(Buffer.from(r.optimizer.buffer).equals(Buffer.from(f.optimizer.buffer))).toBe(true);
    // A finished run returns its final checkpoint without training.
    const again = await pretrain(t, images, N, {}, SHAPE);
    expect(again.finalCheckpoint.sha256).toBe(resumed.finalCheckpoint.sha256);
  });

  it('skips a torn checkpoint and resumes from the previous one', async () => {
    const t = task({ steps: 4, checkpointEvery: 2 });
    await pretrain(t, images, N, {}, SHAPE);
    const last = path.join(t.checkpointDir, 'step-00000004');
    fs.truncateSync(path.join(last, 'ema.bin'), 10);
    expect(latestCheckpoint(t.checkpointDir)?.step).toBe(2);
    fs.rmSync(path.join(t.checkpointDir, 'step-00000002', 'manifest.json'));
    expect(latestCheckpoint(t.checkpointDir)).toBeUndefined();
  });

  it('round-trips a checkpoint into an inference model with the EMA weights', async () => {
    const out = await pretrain(task({ steps: 2 }), images, N, {}, SHAPE);
    const { unet, manifest } = loadForInference(out.finalCheckpoint.path);
    const data = readCheckpointData(out.finalCheckpoint.path);
    const e = manifest.params.find((p) => p.name === 'out_4.conv2.w');
    expect(e).toBeDefined();
    if (!e) return;
    const got = (unet.params.get(e.name) as tf.Variable).dataSync();
    expect(Array.from(got)).toEqual(Array.from(data.ema.subarray(e.offset, e.offset + e.size)));
    // Features: one pass, per-layer dims, and slices agree (noise keyed by image index).
    const layers = ['out_1', 'out_4', 'in_1'];
    const all = await extractFeatures(unet, 'ddpm', images, N, 10, layers, { pooling: 'avg2', batchSize: 5, noiseSeed: 3 });
    expect(all.out_1.length).toBe(N * 2 * 2 * 16);
    expect(all.out_4.length).toBe(N * 2 * 2 * 8);
    const part = await extractFeatures(unet, 'ddpm', images.subarray(4 * 64), N - 4, 10, ['out_4'], { pooling: 'avg2', noiseSeed: 3, indexOffset: 4 });
    const full4 = all.out_4.subarray(4 * 32);
    for (let i = 0; i < part.out_4.length; i++) expect(part.out_4[i]).toBeCloseTo(full4[i], 4);
    const gap = await extractFeatures(unet, 'ddpm', images, N, 0, ['out_4'], { pooling: 'gap' });
    expect(gap.out_4.length).toBe(N * 8);
    expect(Array.from(fixedNoise(3, 5, 4))).toEqual(Array.from(fixedNoise(3, 5, 4)));
    unet.dispose();
  });

});
}
