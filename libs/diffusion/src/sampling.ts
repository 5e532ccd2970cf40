import * as tf from '@tensorflow/tfjs';
import type { Method } from '@ddae/contracts';
import { imagesPerPass } from './device-limits';
import { Rng } from './rng';
import { DDPM_T, ddpmAlphaBar, ddpmTimeInput, edmPrecond, karrasSigmas } from './schedules';
import type { Backbone } from './backbone';

/**
 * Samplers of trained diffusion models: DDIM for DDPM (epsilon-prediction) models and Heun's
 * second-order method for EDM models (Karras et al. 2022, Algorithm 1 without churn). The network
 * is injected as a function, so tests can substitute an oracle.
 */

/** DDPM: the predicted noise eps_hat(x_t, t) at integer t in 1..1000 (a tensor the caller owns). */
export type EpsPredictor = (xt: tf.Tensor4D, t: number) => tf.Tensor4D;
/** EDM: the denoiser D(x; sigma), an estimate of the clean image (a tensor the caller owns). */
export type Denoiser = (x: tf.Tensor4D, sigma: number) => tf.Tensor4D;

/** Shape of the generated images. */
export interface SampleShape {
  imageSize: number;
  imageChannels: number;
}

export interface SampleOptions {
  /** Images to generate. */
  n: number;
  /** Sampler steps: DDIM steps (default 50) or Heun steps on the Karras grid (default 18, 35 network calls). */
  steps?: number;
  /** Seed: image i depends only on (seed, i), whatever the batch size. Default 0. */
  seed?: number;
  /** Images per network call. Default 64. */
  batchSize?: number;
  /** DDIM only: 0 (default) is deterministic DDIM, 1 is DDPM-like ancestral noise. */
  eta?: number;
  /** Called after every sampler step of every batch. */
  onProgress?(done: number, total: number): void;
}

/** The per-image random stream: depends only on (seed, index). */
function imageRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed + 1, 0x2545f491) ^ Math.imul(index + 1, 0x9e3779b1) ^ 0x5a3c) >>> 0);
}

/** Standard normal noise for images [start, start + n), one stream per image, as a tensor. */
function drawNoise(rngs: Rng[], d: number, shape: [number, number, number, number], scale = 1): tf.Tensor4D {
  const out = new Float32Array(rngs.length * d);
  rngs.forEach((r, i) => {
    const z = r.normal(d);
    for (let j = 0; j < d; j++) out[i * d + j] = z[j] * scale;
  });
  return tf.tensor4d(out, shape);
}

/**
 * DDIM timesteps over the T-step schedule, descending: T, T - T/steps, ... (rounded), each >= 1;
 * the step after the last one goes to t = 0 (the clean image).
 */
export function ddimTimesteps(steps: number, T = DDPM_T): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new RangeError(`DDIM steps must be an integer in 1..${T}, got ${steps}`);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(Math.max(1, Math.round(T - (i * T) / steps)));
  return out;
}

function checkOptions(opts: SampleOptions, defaultSteps: number): { n: number; steps: number; seed: number; batch: number } {
  const n = opts.n;
  const steps = opts.steps ?? defaultSteps;
  const batch = opts.batchSize ?? 64;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batchSize must be a positive integer, got ${batch}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  return { n, steps, seed: opts.seed ?? 0, batch };
}

/**
 * DDIM (Song et al. 2021) over the linear-beta schedule: from x_T ~ N(0, I),
 * x0_hat = clip((x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), -1, 1),
 * x_t' = sqrt(ab_t') x0_hat + sqrt(1 - ab_t' - s^2) eps_hat + s z, s = eta sqrt((1 - ab_t')/(1 - ab_t)) sqrt(1 - ab_t/ab_t').
 * The last step lands on t' = 0, i.e. returns x0_hat.
 * @returns n images NHWC in [-1, 1]
 */
export async function ddimSample(eps: EpsPredictor, shape: SampleShape, opts: SampleOptions): Promise<Float32Array> {
  const { n, steps, seed, batch } = checkOptions(opts, 50);
  const eta = opts.eta ?? 0;
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`eta must be in [0, 1], got ${eta}`);
  const ab = ddpmAlphaBar();
  const ts = ddimTimesteps(steps);
  const { imageSize: s, imageChannels: c } = shape;
  const d = s * s * c;
  const out = new Float32Array(n * d);
  const total = Math.ceil(n / batch) * steps;
  let done = 0;
  for (let start = 0; start < n; start += batch) {
    const nb = Math.min(batch, n - start);
    const shp: [number, number, number, number] = [nb, s, s, c];
    const rngs = Array.from({ length: nb }, (_, i) => imageRng(seed, start + i));
    let x = drawNoise(rngs, d, shp);
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i];
      const tNext = i + 1 < ts.length ? ts[i + 1] : 0;
      const a = ab[t];
      const aNext = ab[tNext];
      const sigma = eta > 0 && tNext > 0 ? eta * Math.sqrt((1 - aNext) / (1 - a)) * Math.sqrt(1 - a / aNext) : 0;
      const z = sigma > 0 ? drawNoise(rngs, d, shp) : undefined;
      const next = tf.tidy(() => {
        const e = eps(x, t);
        const x0 = tf.clipByValue(tf.div(tf.sub(x, tf.mul(e, Math.sqrt(1 - a))), Math.sqrt(a)), -1, 1);
        if (tNext === 0) return x0;
        let y = tf.add(tf.mul(x0, Math.sqrt(aNext)), tf.mul(e, Math.sqrt(Math.max(0, 1 - aNext - sigma * sigma))));
        if (z) y = tf.add(y, tf.mul(z, sigma));
        return y;
      }) as tf.Tensor4D;
      z?.dispose();
      x.dispose();
      x = next;
      opts.onProgress?.(++done, total);
    }
    try {
      out.set((await x.data()) as Float32Array, start * d);
    } finally {
      x.dispose();
    }
  }
  return out;
}

/**
 * Heun's second-order sampler of EDM (Karras et al. 2022, Algorithm 1, no stochastic churn) on the
 * Karras grid sigma_0 = 80 > ... > sigma_{N-1} = 0.002, then sigma_N = 0: from x ~ N(0, sigma_0^2 I),
 * d = (x - D(x; s_i)) / s_i, x' = x + (s_{i+1} - s_i) d, corrected by the slope at x' unless s_{i+1} = 0.
 * @returns n images NHWC, clipped to [-1, 1]
 */
export async function heunSample(denoise: Denoiser, shape: SampleShape, opts: SampleOptions & { sigmaMin?: number; sigmaMax?: number; rho?: number }): Promise<Float32Array> {
  const { n, steps, seed, batch } = checkOptions(opts, 18);
  if (steps < 2) throw new RangeError(`Heun needs at least 2 steps on the Karras grid, got ${steps}`);
  const grid = karrasSigmas(steps, opts.sigmaMin, opts.sigmaMax, opts.rho);
  const sigmas = [...grid, 0];
  const { imageSize: s, imageChannels: c } = shape;
  const d = s * s * c;
  const out = new Float32Array(n * d);
  const total = Math.ceil(n / batch) * steps;
  let done = 0;
  for (let start = 0; start < n; start += batch) {
    const nb = Math.min(batch, n - start);
    const rngs = Array.from({ length: nb }, (_, i) => imageRng(seed, start + i));
    let x = drawNoise(rngs, d, [nb, s, s, c], sigmas[0]);
    for (let i = 0; i < steps; i++) {
      const cur = sigmas[i];
      const nxt = sigmas[i + 1];
      const next = tf.tidy(() => {
        const slope = tf.div(tf.sub(x, denoise(x, cur)), cur);
        const euler = tf.add(x, tf.mul(slope, nxt - cur)) as tf.Tensor4D;
        if (nxt === 0) return euler;
        const slope2 = tf.div(tf.sub(euler, denoise(euler, nxt)), nxt);
        return tf.add(x, tf.mul(tf.add(slope, slope2), 0.5 * (nxt - cur)));
      }) as tf.Tensor4D;
      x.dispose();
      x = next;
      opts.onProgress?.(++done, total);
    }
    const clipped = tf.tidy(() => tf.clipByValue(x, -1, 1));
    x.dispose();
    try {
      out.set((await clipped.data()) as Float32Array, start * d);
    } finally {
      clipped.dispose();
    }
  }
  return out;
}

/** The DDPM network as an eps predictor: time input t / 1000 as in training, dropout off. */
export function unetEpsPredictor(unet: Backbone): EpsPredictor {
  return (xt, t) => unet.forward(xt, tf.fill([xt.shape[0]], ddpmTimeInput(t)) as tf.Tensor1D, { training: false }).output;
}

/** The EDM network as its preconditioned denoiser D(x) = c_skip x + c_out F(c_in x, c_noise), exactly as in training; dropout off. */
export function unetDenoiser(unet: Backbone): Denoiser {
  return (x, sigma) => {
    const pc = edmPrecond(sigma);
    const f = unet.forward(tf.mul(x, pc.cIn), tf.fill([x.shape[0]], pc.cNoise) as tf.Tensor1D, { training: false }).output;
    return tf.add(tf.mul(x, pc.cSkip), tf.mul(f, pc.cOut));
  };
}

/**
 * Samples a trained network, UNet or DiT (load its EMA weights with `loadForInference`): DDIM for DDPM models,
 * Heun for EDM models, on whatever backend is active (each batch is read back once, at its end).
 * Image i depends only on (seed, i): the same seed gives the same images whatever `batchSize`.
 * @returns n images NHWC in [-1, 1] of the model's size, row-major (image i at i * size^2 * channels)
 */
export function sampleUNet(unet: Backbone, method: Method, opts: SampleOptions): Promise<Float32Array> {
  const shape = { imageSize: unet.config.imageSize, imageChannels: unet.config.imageChannels };
  const batched = { ...opts, batchSize: imagesPerPass(unet.config, opts.batchSize ?? 64) };
  return method === 'ddpm' ? ddimSample(unetEpsPredictor(unet), shape, batched) : heunSample(unetDenoiser(unet), shape, batched);
}

/** Default sampler steps of a method: 50 DDIM steps, 18 Heun steps (35 network calls). */
export function defaultSamplerSteps(method: Method): number {
  return method === 'ddpm' ? 50 : 18;
}
