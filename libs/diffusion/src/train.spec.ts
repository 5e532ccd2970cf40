import * as tf from '@tensorflow/tfjs';
import type { PretrainTask } from '@ddae/contracts';
import { NonFiniteLossError, autoMicroBatch, createTrainer, emaDecay, pretrain } from './train';
import { readCheckpointData } from './checkpoint';
import { UNET_PRESETS } from '@ddae/contracts';
import { TINY_IMAGES as images, TINY_N as N, TINY_SHAPE as SHAPE, TINY_UNET_TASK, usePretrainTasks } from './training.fixture';

// The pure-JS cpu backend is ~1 s per tiny step: the heavier training tests (determinism, resume,
// torn checkpoints, features) run on wasm in libs/compute/src/training.spec.ts.
jest.setTimeout(30_000);

describe('pretrain (cpu backend)', () => {
  const task = usePretrainTasks('ddae-train-', TINY_UNET_TASK);
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('computes the EMA warm-up decay', () => {
    expect(emaDecay(0, 0.9999)).toBe(0);
    expect(emaDecay(7, 0.9999)).toBeCloseTo(1 - 8 ** (-2 / 3), 12);
    expect(emaDecay(1e9, 0.9993)).toBe(0.9993);
  });

  it('leaks no tensors across steps and reports each checkpoint', async () => {
    const before = tf.memory().numTensors;
    const seen: number[] = [];
    const counts: number[] = [];
    const out = await pretrain(task({ steps: 2, checkpointEvery: 1 }), images, N, { checkpoint: (c) => seen.push(c.step), progress: () => counts.push(tf.memory().numTensors) }, SHAPE);
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(counts).size).toBe(1);
    expect(seen).toEqual([1, 2]);
    expect(out.finalCheckpoint.path.endsWith('step-00000002')).toBe(true);
  });

  it('sizes micro-batches for the wasm heap only', () => {
    const cfg = (p: 'tiny' | 'base') => ({ ...UNET_PRESETS[p], channelMults: [...UNET_PRESETS[p].channelMults], attentionResolutions: [], imageSize: 32, imageChannels: 1 });
    const base = autoMicroBatch(cfg('base'), 64, 'wasm');
    // STACK.md: batch 16 fits, 64 does not.
    expect(base).toBeGreaterThanOrEqual(8);
    expect(base).toBeLessThanOrEqual(16);
    expect(autoMicroBatch(cfg('tiny'), 32, 'wasm')).toBe(32);
    expect(autoMicroBatch(cfg('base'), 64, 'tensorflow')).toBe(64);
  });

  it('accumulates micro-batch gradients to the full-batch step', async () => {
    const losses: number[][] = [[], []];
    const outs = [];
    for (const [k, micro] of [4, 1].entries()) {
      const t = task({ steps: 1, unet: { ...(task().unet as NonNullable<PretrainTask['unet']>), dropout: 0 } });
      outs.push(await pretrain(t, images, N, { progress: (_f, dd) => losses[k].push(dd.loss ?? NaN) }, { ...SHAPE, microBatchSize: micro }));
    }
    expect(Math.abs(losses[0][0] - losses[1][0])).toBeLessThan(1e-5);
    const a = readCheckpointData(outs[0].finalCheckpoint.path).weights;
    const b = readCheckpointData(outs[1].finalCheckpoint.path).weights;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    // One Adam step moves each weight by about lr = 1e-3 x warm-up; agreement far below that.
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('createTrainer takes the same steps as pretrain, without checkpoints', async () => {
    const t = task({ steps: 2, checkpointEvery: 2 });
    const losses: number[] = [];
    const out = await pretrain(t, images, N, { progress: (_f, dd) => losses.push(dd.loss ?? NaN) }, SHAPE);
    const before = tf.memory().numTensors;
    const trainer = createTrainer(t, images, N, SHAPE);
    expect(trainer.microBatch).toBe(4);
    const mine = [await trainer.step(), await trainer.step()];
    expect(trainer.steps).toBe(2);
    expect(mine[1]).toBe(losses[losses.length - 1]);
    const flat = Float32Array.from([...trainer.unet.params.values()].flatMap((v) => [...(v.dataSync() as Float32Array)]));
    expect(Buffer.from(flat.buffer).equals(Buffer.from(readCheckpointData(out.finalCheckpoint.path).weights.buffer))).toBe(true);
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws NonFiniteLossError on a NaN loss', async () => {
    const bad = images.slice();
    bad.fill(Number.NaN);
    const err = await pretrain(task(), bad, N, {}, SHAPE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect(err).toHaveProperty('name', 'NonFiniteLossError');
  });

  it('trains EDM too', async () => {
    const out = await pretrain(task({ method: 'edm', steps: 1 }), images, N, {}, SHAPE);
    expect(Number.isFinite(out.finalCheckpoint.loss)).toBe(true);
  });
});
