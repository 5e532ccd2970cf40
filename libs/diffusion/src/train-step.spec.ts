import * as tf from '@tensorflow/tfjs';
import { DIT_PRESETS, UNET_PRESETS, ditLayout, unetLayout, type PretrainTask } from '@ddae/contracts';
import { createBackbone, modelConfigOf } from './backbone';
import { readCheckpointData } from './checkpoint';
import { adamStep, type AdamSlot } from './optimizer';
import { Rng } from './rng';
import { DDPM_T, EDM_P_MEAN, EDM_P_STD, ddpmNoise, edmPrecond } from './schedules';
import type { DiTModelConfig } from './dit';
import type { UNetModelConfig } from './unet';
import { BatchOrder, autoMicroBatch, emaDecay, pretrain, sumScalars } from './train';
import { TINY_PRETRAIN_BASE, usePretrainTasks } from './training.fixture';

// The training step against a reference built from the pieces it is made of (the schedules'
// noise, the network's forward pass, Adam), on a network small enough for ~0.1 s a step on the
// pure-JS backend. train.spec.ts has the slower end-to-end checks (checkpoints, NaN, leaks).
const SIZE = 4;
const D = SIZE * SIZE;
const B = 4;
const UNET = { baseChannels: 4, channelMults: [1], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 2 };
// Every image the same: the step's result does not depend on the batch order (tested below, on its
// own). The trainer gets more images than a batch (COUNT > B), so its batch is the task's batchSize.
const IMAGE = new Rng(5).normal(D).map((v) => Math.tanh(v));
const COUNT = 6;
const IMAGES = Float32Array.from({ length: COUNT * D }, (_, i) => IMAGE[i % D]);
const BATCH = IMAGES.subarray(0, B * D);

/** The trainer's task: the tiny defaults with UNET, 2 steps of batch B, lr 1e-2 warmed up over 4 steps, seed 3. */
const TASK = { ...TINY_PRETRAIN_BASE, unet: UNET, steps: 2, batchSize: B, learningRate: 1e-2, warmupSteps: 4, seed: 3 };

interface Result {
  losses: number[];
  weights: Float32Array;
  ema: Float32Array;
  /** The global gradient norm of each step (reference only). */
  norms: number[];
}

/** `steps` optimiser steps written out from the building blocks: full batch, no micro-batches. */
function reference(t: PretrainTask): Result {
  // Computed once per configuration: several tests compare against the same one (each mutant of the
  // mutation run re-runs these tests, ~0.5 s a step on the pure-JS backend).
  const key = JSON.stringify({ ...t, checkpointDir: '', runId: '' });
  const known = references.get(key);
  if (known) return known;
  const out = computeReference(t);
  references.set(key, out);
  return out;
}
const references = new Map<string, Result>();

function computeReference(t: PretrainTask): Result {
  const config = modelConfigOf(t, SIZE, 1);
  const net = createBackbone(config, t.seed);
  const rng = new Rng(t.seed ^ 0x5eed);
  const names = [...net.params.keys()];
  const vars = names.map((n) => net.params.get(n) as tf.Variable);
  const slots: AdamSlot[] = vars.map((param) => ({ param, m: tf.variable(tf.zerosLike(param)), v: tf.variable(tf.zerosLike(param)), ema: tf.variable(param.clone()) }));
  const shp: [number, number, number, number] = [B, SIZE, SIZE, 1];
  const losses: number[] = [];
  const norms: number[] = [];
  for (let step = 0; step < t.steps; step++) {
    let lossFn: () => tf.Scalar;
    if (t.method === 'ddpm') {
      const ts = Int32Array.from({ length: B }, () => rng.uniformInt(1, DDPM_T));
      const eps = rng.normal(B * D);
      const xt = ddpmNoise(BATCH, ts, eps);
      lossFn = () => tf.mean(tf.squaredDifference(net.forward(tf.tensor4d(xt, shp), tf.tensor1d(Float32Array.from(ts, (v) => v / DDPM_T)), { training: true, rng }).output, tf.tensor4d(eps, shp)));
    } else {
      const n = rng.normal(B);
      const eps = rng.normal(B * D);
      const pcs = Array.from(n, (v) => {
        const sigma = Math.exp(EDM_P_MEAN + EDM_P_STD * v);
        return { sigma, ...edmPrecond(sigma) };
      });
      // The network's input scaled on the host, in float32, as the trainer does.
      const xn = BATCH.map((x, j) => x + pcs[Math.floor(j / D)].sigma * eps[j]);
      const xin = xn.map((x, j) => pcs[Math.floor(j / D)].cIn * x);
      const per = (f: (p: (typeof pcs)[number]) => number) => tf.tensor4d(pcs.map(f), [B, 1, 1, 1]);
      lossFn = () => {
        const out = net.forward(tf.tensor4d(xin, shp), tf.tensor1d(pcs.map((p) => p.cNoise)), { training: true, rng }).output;
        const den = tf.add(tf.mul(per((p) => p.cSkip), tf.tensor4d(xn, shp)), tf.mul(per((p) => p.cOut), out));
        return tf.mean(tf.mul(per((p) => p.weight), tf.squaredDifference(den, tf.tensor4d(BATCH, shp))));
      };
    }
    const { value, grads } = tf.variableGrads(lossFn, vars);
    const g = names.map((n) => grads[(net.params.get(n) as tf.Variable).name]);
    const norm = Math.sqrt(g.reduce((s, x) => s + tf.sum(tf.square(x)).dataSync()[0], 0));
    losses.push(value.dataSync()[0]);
    norms.push(norm);
    adamStep(slots, g, {
      step: step + 1,
      lr: t.learningRate * (t.warmupSteps > 0 ? Math.min(1, (step + 1) / t.warmupSteps) : 1),
      emaDecay: Math.min(t.emaDecayCap, 1 - (1 + step) ** (-2 / 3)),
      gradScale: Math.min(1, t.gradClip / (norm + 1e-6)),
    });
    tf.dispose([value, grads]);
  }
  const flat = (xs: tf.Variable[]) => Float32Array.from(xs.flatMap((x) => [...(x.dataSync() as Float32Array)]));
  const out = { losses, norms, weights: flat(vars), ema: flat(slots.map((s) => s.ema as tf.Variable)) };
  for (const s of slots) tf.dispose([s.m, s.v, s.ema as tf.Variable]);
  net.dispose();
  return out;
}

async function trained(t: PretrainTask, microBatchSize?: number): Promise<Result> {
  const losses: number[] = [];
  // Every tensor of the run is disposed by its end (the step's gradients and partial sums too).
  const before = tf.memory().numTensors;
  const out = await pretrain(t, IMAGES, COUNT, { trainLoss: (p) => losses.push(p.loss) }, { imageSize: SIZE, imageChannels: 1, lossEvery: 1, ...(microBatchSize ? { microBatchSize } : {}) });
  expect(tf.memory().numTensors).toBe(before);
  const data = readCheckpointData(out.finalCheckpoint.path);
  return { losses, weights: data.weights, ema: data.ema, norms: [] };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Weights after micro-batches: the gradient sums in another order, and Adam's first step divides
 * each gradient by its own magnitude, which turns float32 rounding of near-zero gradients into
 * differences of ~3e-4 (lr is 1e-2). The losses, summed in float32 too, agree to 1e-5 whatever the order.
 */
const MICRO_TOLERANCE = 1e-3;

/** Same losses (every step), weights and EMA; the full-batch trainer matches the reference exactly (float32 rounding aside). */
function expectSame(got: Result, want: Result, tolerance = 1e-6): void {
  expect(got.losses).toHaveLength(want.losses.length);
  got.losses.forEach((l, i) => expect(l).toBeCloseTo(want.losses[i], 5));
  expect(maxDiff(got.weights, want.weights)).toBeLessThan(tolerance);
  expect(maxDiff(got.ema, want.ema)).toBeLessThan(tolerance);
}

jest.setTimeout(120_000);

describe('the training step (cpu backend, tiny network)', () => {
  const task = usePretrainTasks('ddae-train-step-', TASK);
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('takes DDPM steps as written out: noise, epsilon loss, clipping, warm-up, Adam, EMA', async () => {
    const t = task();
    const want = reference(t);
    // The clip is active (a weaker clip would change the second step), the warm-up too (lr x 1/4, 2/4).
    expect(Math.max(...want.norms)).toBeGreaterThan(t.gradClip);
    expectSame(await trained(t), want);
  });

  it('sums micro-batches of uneven sizes to the full-batch step', async () => {
    const t = task();
    const want = reference(t);
    expectSame(await trained(task(), 3), want, MICRO_TOLERANCE);
    expectSame(await trained(task(), 1), want, MICRO_TOLERANCE);
  });

  it('takes EDM steps as written out: log-normal sigmas, preconditioning, weighted loss', async () => {
    const want = reference(task({ method: 'edm' }));
    expectSame(await trained(task({ method: 'edm' }), 3), want, MICRO_TOLERANCE);
    // With dropout: the trainer's forward pass is a training one, its masks drawn from the run's rng
    // (full batch: micro-batches draw the masks in another order).
    const dropout = task({ method: 'edm', unet: { ...UNET, dropout: 0.5 } });
    const withDropout = reference(dropout);
    // The same losses; the weights to MICRO_TOLERANCE, not 1e-6: the clipping norm summed in another
    // order sends near-zero gradients through Adam's first steps differently (5.9e-4 here), while
    // the masks themselves move the weights by 1.5e-2.
    expect(maxDiff(withDropout.weights, want.weights)).toBeGreaterThan(10 * MICRO_TOLERANCE);
    expectSame(await trained(dropout), withDropout, MICRO_TOLERANCE);
  });

  it('without warm-up, and with a clip that never bites, the step is plain Adam at the full rate (dropout on)', async () => {
    const t = task({ warmupSteps: 0, gradClip: 1e6, unet: { ...UNET, dropout: 0.5 } });
    const want = reference(t);
    expect(Math.max(...want.norms)).toBeLessThan(t.gradClip);
    expectSame(await trained(t), want);
    // And it is not the warmed-up, clipped step of the first test.
    expect(maxDiff(want.weights, reference(task()).weights)).toBeGreaterThan(1e-3);
  });

  it('warms the EMA decay up as min(cap, 1 - (1 + step)^(-2/3))', () => {
    expect(emaDecay(0, 0.9999)).toBe(0);
    expect(emaDecay(7, 0.9999)).toBeCloseTo(1 - 8 ** (-2 / 3), 12);
    expect(emaDecay(1e9, 0.9993)).toBe(0.9993);
  });

  it('sizes wasm micro-batches from the activation estimate: 1.5e9 bytes / (320 bytes x floats), within [1, batch]', () => {
    const unet: UNetModelConfig = { ...UNET_PRESETS.base, channelMults: [...UNET_PRESETS.base.channelMults], attentionResolutions: [], imageSize: 32, imageChannels: 1 };
    // UNet: the stem's imageSize^2 x baseChannels plus resolution^2 x channels of every block.
    const unetFloats = 32 * 32 * 32 + unetLayout(unet).reduce((s, b) => s + b.resolution ** 2 * b.channels, 0);
    expect(autoMicroBatch(unet, 64, 'wasm')).toBe(Math.floor(1.5e9 / (320 * unetFloats)));
    expect(autoMicroBatch(unet, 3, 'wasm')).toBe(3);
    expect(autoMicroBatch({ ...unet, baseChannels: 512, imageSize: 128 }, 64, 'wasm')).toBe(1);
    expect(autoMicroBatch(unet, 64, 'cpu')).toBe(64);
    // DiT: (5 + mlpRatio) x tokens x width floats and heads x tokens^2 scores per block.
    const dit: DiTModelConfig = { backbone: 'dit', ...DIT_PRESETS['dit-tiny'], imageSize: 32, imageChannels: 1 };
    const ditFloats = ditLayout(dit).reduce((s, b) => s + b.resolution ** 2 * (b.channels * (5 + dit.mlpRatio) + dit.heads * b.resolution ** 2), 0);
    const want = Math.floor(1.5e9 / (320 * ditFloats));
    expect(want).toBeGreaterThan(1);
    expect(want).toBeLessThan(256);
    expect(autoMicroBatch(dit, 256, 'wasm')).toBe(want);
  });

  it('draws batches epoch by epoch, each epoch a seeded permutation, the same when resumed at any step', () => {
    const count = 6;
    const order = new BatchOrder(3, count);
    // 6 steps of 4: 24 positions, 4 epochs, batches that straddle epochs.
    const drawn = Array.from({ length: 6 }, (_, step) => [...order.indices(step, 4)]);
    const epochs = [0, 1, 2, 3].map((e) => drawn.flat().slice(e * count, (e + 1) * count));
    for (const e of epochs) expect([...e].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(epochs.map((e) => e.join())).size).toBe(4);
    // A resumed run starts with a fresh order at its step: the same batches.
    drawn.forEach((batch, step) => expect([...new BatchOrder(3, count).indices(step, 4)]).toEqual(batch));
    expect([...new BatchOrder(4, count).indices(0, count)]).not.toEqual(epochs[0]);
  });

  it('sums many scalars in chunks, to the plain sum', () => {
    expect(sumScalars([]).dataSync()[0]).toBe(0);
    for (const n of [1, 3, 4, 5, 17]) {
      const xs = Array.from({ length: n }, (_, i) => tf.scalar(2 ** i));
      expect(sumScalars(xs).dataSync()[0]).toBe(2 ** n - 1);
    }
  });
});
