/** DDPM (VP) and EDM (VE) noise schedules and constants of the reference code. */

/** DDPM timesteps; t runs 1..T. */
export const DDPM_T = 1000;
export const DDPM_BETA_START = 1e-4;
export const DDPM_BETA_END = 0.02;

/** beta_t for t = 1..T at index t (index 0 unused, 0). */
export function ddpmBetas(T = DDPM_T): Float64Array {
  const betas = new Float64Array(T + 1);
  for (let t = 1; t <= T; t++) betas[t] = DDPM_BETA_START + ((DDPM_BETA_END - DDPM_BETA_START) * (t - 1)) / (T - 1);
  return betas;
}

/** alpha_bar_t = prod_{s<=t} (1 - beta_s), at index t; alphaBar[0] = 1 (the clean image). */
export function ddpmAlphaBar(T = DDPM_T): Float64Array {
  const betas = ddpmBetas(T);
  const ab = new Float64Array(T + 1);
  ab[0] = 1;
  for (let t = 1; t <= T; t++) ab[t] = ab[t - 1] * (1 - betas[t]);
  return ab;
}

const ALPHA_BAR = ddpmAlphaBar();

/** Coefficients of x_t = a x0 + b eps at integer t in 0..T (t = 0: clean). */
export function ddpmCoefficients(t: number): { a: number; b: number } {
  if (!Number.isInteger(t) || t < 0 || t > DDPM_T) throw new RangeError(`DDPM t must be an integer in 0..${DDPM_T}, got ${t}`);
  const ab = ALPHA_BAR[t];
  return { a: Math.sqrt(ab), b: Math.sqrt(1 - ab) };
}

/**
 * Noises a batch in plain arrays: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, with one t per image.
 * @param x0 N x D values.
 * @param t one timestep per image.
 * @param eps N x D standard normal noise.
 */
export function ddpmNoise(x0: Float32Array, t: ArrayLike<number>, eps: Float32Array): Float32Array {
  const n = t.length;
  const d = x0.length / n;
  const out = new Float32Array(x0.length);
  for (let i = 0; i < n; i++) {
    const { a, b } = ddpmCoefficients(t[i]);
    for (let j = i * d; j < (i + 1) * d; j++) out[j] = a * x0[j] + b * eps[j];
  }
  return out;
}

/** The network's time input: t / 1000, as in the reference code (not the integer t). */
export function ddpmTimeInput(t: number): number {
  return t / DDPM_T;
}

/* EDM (Karras et al. 2022) */
export const EDM_SIGMA_DATA = 0.5;
export const EDM_P_MEAN = -1.2;
export const EDM_P_STD = 1.2;
export const EDM_SIGMA_MIN = 0.002;
export const EDM_SIGMA_MAX = 80;
export const EDM_RHO = 7;

export interface EdmPrecond {
  cSkip: number;
  cOut: number;
  cIn: number;
  cNoise: number;
  /** Loss weight (s^2 + sd^2) / (s sd)^2. */
  weight: number;
}

export function edmPrecond(sigma: number, sigmaData = EDM_SIGMA_DATA): EdmPrecond {
  const s2 = sigma * sigma;
  const d2 = sigmaData * sigmaData;
  return {
    cSkip: d2 / (s2 + d2),
    cOut: (sigma * sigmaData) / Math.sqrt(s2 + d2),
    cIn: 1 / Math.sqrt(s2 + d2),
    cNoise: Math.log(sigma) / 4,
    weight: (s2 + d2) / (s2 * d2),
  };
}

/** The Karras sigma grid, sigma_max down to sigma_min (18 steps by default). */
export function karrasSigmas(steps = 18, sigmaMin = EDM_SIGMA_MIN, sigmaMax = EDM_SIGMA_MAX, rho = EDM_RHO): Float64Array {
  const out = new Float64Array(steps);
  const a = sigmaMax ** (1 / rho);
  const b = sigmaMin ** (1 / rho);
  for (let i = 0; i < steps; i++) out[i] = (a + (i / (steps - 1)) * (b - a)) ** rho;
  return out;
}
