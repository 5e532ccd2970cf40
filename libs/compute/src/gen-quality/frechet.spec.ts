import { createRng } from '@ddae/datasets';
import { frechetDistance, kernelInceptionDistance, meanAndCovariance, sqrtPsd, symmetricEigen } from './frechet';

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** A deterministic symmetric positive definite n x n matrix (A A^T / n + 0.05 I), mirrored in the numpy reference below. */
function spd(seed: number, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = Math.sin(seed * (i + 1) + 0.7 * j) + 0.3 * Math.cos(i * j + seed);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += a[i * n + k] * a[j * n + k];
    c[i * n + j] = s / n + (i === j ? 0.05 : 0);
  }
  return c;
}

function diag(values: number[]): Float64Array {
  const n = values.length;
  const m = new Float64Array(n * n);
  values.forEach((v, i) => (m[i * n + i] = v));
  return m;
}

describe('symmetricEigen (Jacobi)', () => {
  it('reconstructs a symmetric matrix as V diag(values) V^T with orthonormal V', () => {
    const n = 7;
    const a = spd(3, n);
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let r = 0;
        let o = 0;
        for (let k = 0; k < n; k++) {
          r += vectors[i * n + k] * values[k] * vectors[j * n + k];
          o += vectors[k * n + i] * vectors[k * n + j];
        }
        expect(r).toBeCloseTo(a[i * n + j], 10);
        expect(o).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
  });

  it('sqrtPsd squares back to its input', () => {
    const n = 5;
    const a = spd(4, n);
    const s = sqrtPsd(a, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let v = 0;
      for (let k = 0; k < n; k++) v += s[i * n + k] * s[k * n + j];
      expect(v).toBeCloseTo(a[i * n + j], 10);
    }
  });
});

describe('frechetDistance', () => {
  it('matches the closed form for diagonal covariances: |mu1-mu2|^2 + sum (sqrt a_i - sqrt b_i)^2', () => {
    const a = [1, 4, 0.25, 9];
    const b = [4, 1, 1, 0.01];
    const mu1 = Float64Array.from([0, 1, 2, 3]);
    const mu2 = Float64Array.from([1, 1, 0, 3]);
    const expected = 1 + 0 + 4 + 0 + a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i])) ** 2, 0);
    expect(frechetDistance({ mean: mu1, cov: diag(a) }, { mean: mu2, cov: diag(b) })).toBeCloseTo(expected, 10);
  });

  it('is invariant under a common rotation (non-diagonal covariances keep the diagonal closed form)', () => {
    const a = [1, 4, 0.25];
    const b = [4, 1, 1];
    const t = 0.6;
    const q = [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1];
    const rot = (d: number[]): Float64Array => {
      const out = new Float64Array(9);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) out[i * 3 + j] += q[i * 3 + k] * d[k] * q[j * 3 + k];
      return out;
    };
    const zero = new Float64Array(3);
    const expected = a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i])) ** 2, 0);
    expect(frechetDistance({ mean: zero, cov: rot(a) }, { mean: zero, cov: rot(b) })).toBeCloseTo(expected, 10);
  });

  it('matches scipy.linalg.sqrtm on general covariances', () => {
    // numpy/scipy 2.4 / 1.17: C1 = spd(1, 6), C2 = spd(2, 6), m1_i = cos i, m2_i = 0.5 sin i;
    // |m1-m2|^2 + tr C1 + tr C2 - 2 tr sqrtm(C1 @ C2).real
    const n = 6;
    const m1 = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
    const m2 = Float64Array.from({ length: n }, (_, i) => 0.5 * Math.sin(i));
    expect(frechetDistance({ mean: m1, cov: spd(1, n) }, { mean: m2, cov: spd(2, n) })).toBeCloseTo(7.512955275839955, 8);
  });

  it('is 0 for identical Gaussians and grows with a mean shift of sampled features', () => {
    const rng = createRng(1);
    const n = 2000;
    const d = 8;
    const x = Float64Array.from({ length: n * d }, () => gaussian(rng));
    const g = meanAndCovariance(x, n, d);
    expect(frechetDistance(g, g)).toBeCloseTo(0, 8);
    const shifted = x.map((v) => v + 1);
    // A shift of 1 in each of 8 dimensions: |mu1 - mu2|^2 = 8, same covariance.
    expect(frechetDistance(g, meanAndCovariance(shifted, n, d))).toBeCloseTo(8, 6);
  });
});

describe('kernelInceptionDistance', () => {
  const d = 16;
  const sample = (seed: number, n: number, shift = 0): Float64Array => {
    const rng = createRng(seed);
    return Float64Array.from({ length: n * d }, () => gaussian(rng) + shift);
  };

  it('is about 0 (unbiased) for two samples of one distribution, clearly positive for different ones', () => {
    const n = 400;
    const x = sample(2, n);
    const y = sample(3, n);
    const same = kernelInceptionDistance(x, n, y, n, d, { subsets: 10, subsetSize: 100, seed: 0 });
    const differ = kernelInceptionDistance(x, n, sample(4, n, 0.5), n, d, { subsets: 10, subsetSize: 100, seed: 0 });
    // The biased (V-statistic) estimate of the same pair: the diagonal terms k(x, x) add about
    // 2 E[k(x, x)] / m, here ~2 * (1 + 1)^3 / 100 = 0.16; the unbiased one stays within its noise.
    expect(Math.abs(same.mean)).toBeLessThan(0.03);
    expect(differ.mean).toBeGreaterThan(10 * Math.abs(same.mean) + 3 * same.std / Math.sqrt(10));
    expect(differ.mean).toBeGreaterThan(0.1);
    expect(same).toMatchObject({ subsets: 10, subsetSize: 100 });
  });

  it('averages to 0 over many disjoint pairs of one distribution (the estimator is unbiased)', () => {
    let sum = 0;
    const pairs = 40;
    for (let p = 0; p < pairs; p++) sum += kernelInceptionDistance(sample(100 + p, 50), 50, sample(200 + p, 50), 50, d, { subsets: 1, seed: p }).mean;
    // The V-statistic's bias at m = 50 is ~0.3; the mean of 40 unbiased estimates sits near 0.
    expect(Math.abs(sum / pairs)).toBeLessThan(0.03);
  });

  it('is seeded and caps the subset size at the smaller set', () => {
    const x = sample(5, 30);
    const y = sample(6, 20);
    const a = kernelInceptionDistance(x, 30, y, 20, d, { subsets: 3, seed: 9 });
    expect(a.subsetSize).toBe(20);
    expect(kernelInceptionDistance(x, 30, y, 20, d, { subsets: 3, seed: 9 })).toEqual(a);
  });
});
