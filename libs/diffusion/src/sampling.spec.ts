import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng';
import { ddimSample, ddimTimesteps, heunSample, sampleUNet, type Denoiser, type EpsPredictor } from './sampling';
import { ddpmAlphaBar, karrasSigmas } from './schedules';
import { UNet, type UNetModelConfig } from './unet';

const SHAPE = { imageSize: 4, imageChannels: 1 };
const D = 16;
const N = 5;
/** Known clean images in [-1, 1]. */
const X0 = new Rng(3).normal(N * D).map((v) => Math.tanh(v));

/** The true eps for x_t built from X0: eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t). */
function oracleEps(x0: Float32Array): EpsPredictor {
  const ab = ddpmAlphaBar();
  return (xt, t) => tf.div(tf.sub(xt, tf.mul(tf.tensor4d(x0.subarray(0, xt.shape[0] * D), xt.shape), Math.sqrt(ab[t]))), Math.sqrt(1 - ab[t]));
}

/** A denoiser that always knows the answer: D(x) = x0 (batch-wise slices of X0). */
function oracleDenoiser(x0: Float32Array, calls: number[] = []): Denoiser {
  return (x, sigma) => {
    calls.push(sigma);
    return tf.tensor4d(x0.subarray(0, x.shape[0] * D), x.shape);
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const tinyCfg: UNetModelConfig = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4, imageSize: 8, imageChannels: 1 };

describe('sampling', () => {
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('spaces DDIM timesteps evenly from T down, each >= 1', () => {
    expect(ddimTimesteps(4)).toEqual([1000, 750, 500, 250]);
    expect(ddimTimesteps(50)).toHaveLength(50);
    expect(ddimTimesteps(50).at(-1)).toBe(20);
    expect(ddimTimesteps(1000).at(-1)).toBe(1);
    expect(() => ddimTimesteps(0)).toThrow(RangeError);
  });

  it('DDIM with the oracle eps reconstructs x0, deterministic, no leaked tensors', async () => {
    const before = tf.memory().numTensors;
    const a = await ddimSample(oracleEps(X0), SHAPE, { n: N, steps: 10, seed: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(a).toHaveLength(N * D);
    expect(maxAbsDiff(a, X0)).toBeLessThan(1e-4);
    // eta = 1 (stochastic) also lands on x0 with the oracle.
    const b = await ddimSample(oracleEps(X0), SHAPE, { n: N, steps: 7, seed: 2, eta: 1 });
    expect(maxAbsDiff(b, X0)).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('Heun with the oracle D(x) = x0 lands on x0 on the Karras grid (2N - 1 calls)', async () => {
    const before = tf.memory().numTensors;
    const calls: number[] = [];
    const out = await heunSample(oracleDenoiser(X0, calls), SHAPE, { n: N, steps: 18, seed: 0 });
    expect(tf.memory().numTensors).toBe(before);
    expect(maxAbsDiff(out, X0)).toBeLessThan(1e-4);
    expect(calls).toHaveLength(35);
    const grid = karrasSigmas(18);
    expect(calls[0]).toBeCloseTo(80, 6);
    expect(calls.at(-1)).toBeCloseTo(grid[17], 9);
    expect(grid[17]).toBeCloseTo(0.002, 9);
  });

  it('starts from seeded noise of the right scale, independent of the batch size', async () => {
    // D(x) = 0: the Heun ODE scales x_T linearly to 0; one step of Euler to sigma = 0 gives exactly 0,
    // so read the start noise through a denoiser that records its first input.
    let first: Float32Array | undefined;
    const recorder: Denoiser = (x) => {
      if (!first) first = x.dataSync() as Float32Array;
      return tf.zerosLike(x);
    };
    await heunSample(recorder, SHAPE, { n: 64, steps: 2, seed: 4 });
    const xs = first as Float32Array;
    const std = Math.sqrt(xs.reduce((s, v) => s + v * v, 0) / xs.length);
    expect(std).toBeGreaterThan(70);
    expect(std).toBeLessThan(90);

    const eps: EpsPredictor = (x) => tf.mul(x, 0.9);
    const whole = await ddimSample(eps, SHAPE, { n: 6, steps: 5, seed: 9, batchSize: 6 });
    const split = await ddimSample(eps, SHAPE, { n: 6, steps: 5, seed: 9, batchSize: 4 });
    expect(maxAbsDiff(whole, split)).toBeLessThan(1e-5);
    const other = await ddimSample(eps, SHAPE, { n: 6, steps: 5, seed: 10, batchSize: 6 });
    expect(maxAbsDiff(whole, other)).toBeGreaterThan(1e-3);
  });

  it('clips the final images to [-1, 1]: predictors that overshoot land exactly on the bounds', async () => {
    // eps = -5 x_t puts every x0 estimate far outside [-1, 1]; D(x) = 2x drives the ODE outwards.
    const ddim = await ddimSample((x) => tf.mul(x, -5), SHAPE, { n: 4, steps: 5, seed: 3 });
    const heun = await heunSample((x) => tf.mul(x, 2), SHAPE, { n: 4, steps: 5, seed: 3 });
    for (const out of [ddim, heun]) {
      expect(Array.from(out).every((v) => Math.abs(v) === 1)).toBe(true);
      expect(out.some((v) => v === 1) && out.some((v) => v === -1)).toBe(true);
    }
  });

  it('samples a UNet (DDIM and Heun): shape, finite and clipped to [-1, 1], determinism, no leaked tensors', async () => {
    const unet = new UNet(tinyCfg, 0);
    const before = tf.memory().numTensors;
    for (const method of ['ddpm', 'edm'] as const) {
      const a = await sampleUNet(unet, method, { n: 3, steps: 3, seed: 5, batchSize: 2 });
      const b = await sampleUNet(unet, method, { n: 3, steps: 3, seed: 5, batchSize: 2 });
      expect(a).toHaveLength(3 * 64);
      expect(Array.from(a).every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(tf.memory().numTensors).toBe(before);
    }
    unet.dispose();
  });

  it('rejects bad options', async () => {
    const eps: EpsPredictor = (x) => tf.zerosLike(x);
    await expect(ddimSample(eps, SHAPE, { n: 0 })).rejects.toThrow(/n must be/);
    await expect(ddimSample(eps, SHAPE, { n: 1, eta: 2 })).rejects.toThrow(/eta/);
    await expect(heunSample(oracleDenoiser(X0), SHAPE, { n: 1, steps: 1 })).rejects.toThrow(/at least 2/);
  });
});
