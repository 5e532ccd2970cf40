import { DDPM_T, EDM_P_MEAN, EDM_P_STD, EDM_RHO, EDM_SIGMA_DATA, EDM_SIGMA_MAX, EDM_SIGMA_MIN, ddpmAlphaBar, ddpmCoefficients, ddpmNoise, ddpmTimeInput, edmPrecond, karrasSigmas } from './schedules';
import { Rng } from './rng';

describe('DDPM schedule', () => {
  const ab = ddpmAlphaBar();
  it('has alphaBar_1 = 1 - 1e-4 and decreases monotonically', () => {
    expect(ab.length).toBe(DDPM_T + 1);
    expect(ab[0]).toBe(1);
    expect(ab[1]).toBeCloseTo(1 - 1e-4, 12);
    expect(ab[2]).toBeCloseTo((1 - 1e-4) * (1 - (1e-4 + (0.02 - 1e-4) / 999)), 12);
    for (let t = 1; t <= DDPM_T; t++) expect(ab[t]).toBeLessThan(ab[t - 1]);
    // Known value of the linear schedule: alphaBar_1000 ~ 4.04e-5.
    expect(ab[1000]).toBeGreaterThan(3.9e-5);
    expect(ab[1000]).toBeLessThan(4.2e-5);
  });
  it('keeps a^2 + b^2 = 1', () => {
    for (const t of [0, 1, 11, 250, 1000]) {
      const { a, b } = ddpmCoefficients(t);
      expect(a * a + b * b).toBeCloseTo(1, 12);
    }
    expect(() => ddpmCoefficients(1001)).toThrow(RangeError);
    expect(() => ddpmCoefficients(-1)).toThrow(RangeError);
    expect(() => ddpmCoefficients(2.5)).toThrow(RangeError);
    expect(ddpmCoefficients(DDPM_T).a).toBeCloseTo(Math.sqrt(ab[DDPM_T]), 12);
    expect(ddpmTimeInput(250)).toBe(0.25);
  });
  it('noises per image', () => {
    const x0 = new Float32Array([1, 1, 0.5, 0.5]);
    const eps = new Rng(1).normal(4);
    const xt = ddpmNoise(x0, [0, 1000], eps);
    expect(xt[0]).toBeCloseTo(1, 6);
    const { a, b } = ddpmCoefficients(1000);
    expect(xt[3]).toBeCloseTo(a * 0.5 + b * eps[3], 6);
  });
});

describe('EDM', () => {
  it('preconditions as Karras et al.', () => {
    const p = edmPrecond(0.5);
    expect(p.cSkip).toBeCloseTo(0.5, 12);
    expect(p.cOut).toBeCloseTo(0.25 / Math.sqrt(0.5), 12);
    expect(p.cIn).toBeCloseTo(1 / Math.sqrt(0.5), 12);
    expect(p.cNoise).toBeCloseTo(Math.log(0.5) / 4, 12);
    expect(p.weight).toBeCloseTo(0.5 / 0.0625, 12);
  });
  it('keeps the constants of Karras et al. (2022), Table 1: the training sigmas\' log-normal, sigma_data and the sampling grid', () => {
    expect({ EDM_P_MEAN, EDM_P_STD, EDM_SIGMA_DATA, EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO }).toEqual({ EDM_P_MEAN: -1.2, EDM_P_STD: 1.2, EDM_SIGMA_DATA: 0.5, EDM_SIGMA_MIN: 0.002, EDM_SIGMA_MAX: 80, EDM_RHO: 7 });
  });
  it('builds the 18-step Karras grid from 80 to 0.002', () => {
    const s = karrasSigmas();
    expect(s.length).toBe(18);
    expect(s[0]).toBeCloseTo(80, 9);
    expect(s[17]).toBeCloseTo(0.002, 12);
    for (let i = 1; i < 18; i++) expect(s[i]).toBeLessThan(s[i - 1]);
  });
});

describe('Rng', () => {
  it('is deterministic and resumable from its state', () => {
    const a = new Rng(42);
    a.normal(5);
    const st = a.getState();
    const x = a.normal(7);
    const b = new Rng(0);
    b.setState(st);
    expect(Array.from(b.normal(7))).toEqual(Array.from(x));
    expect(Array.from(new Rng(3).permutation(10)).sort((p, q) => p - q)).toEqual([...Array(10).keys()]);
  });
  it('draws standard normals', () => {
    const x = new Rng(5).normal(20000);
    let m = 0;
    let v = 0;
    for (const z of x) m += z / x.length;
    for (const z of x) v += (z - m) ** 2 / x.length;
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    const r = new Rng(9);
    for (let i = 0; i < 1000; i++) {
      const k = r.uniformInt(1, 1000);
      expect(k >= 1 && k <= 1000).toBe(true);
    }
  });
});
