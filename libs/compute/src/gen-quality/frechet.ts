import { createRng } from '@ddae/datasets';

/**
 * Generation-quality statistics on feature vectors (rows of a row-major `count x dim` matrix):
 * the Frechet distance between the Gaussians fitted to two feature sets (FID when the features come
 * from an image classifier) and the kernel inception distance (KID: the unbiased MMD^2 estimate with
 * the cubic polynomial kernel of Binkowski et al., mean and std over random subsets).
 * Everything in float64; no tensors (128-d features make this cheap).
 */

/** Mean (dim) and covariance (dim x dim, row-major, unbiased: divided by count - 1) of `count` rows. */
export function meanAndCovariance(features: Float32Array | Float64Array, count: number, dim: number): { mean: Float64Array; cov: Float64Array } {
  if (features.length !== count * dim) throw new RangeError(`meanAndCovariance: ${features.length} values for ${count} x ${dim}`);
  if (count < 2) throw new RangeError(`meanAndCovariance: needs at least 2 rows, got ${count}`);
  const mean = new Float64Array(dim);
  for (let r = 0; r < count; r++) for (let j = 0; j < dim; j++) mean[j] += features[r * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dim; j++) centred[j] = features[r * dim + j] - mean[j];
    for (let i = 0; i < dim; i++) {
      const ci = centred[i];
      if (ci === 0) continue;
      const row = i * dim;
      for (let j = i; j < dim; j++) cov[row + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j] / (count - 1);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  }
  return { mean, cov };
}

/**
 * Eigen decomposition of a symmetric n x n matrix by the cyclic Jacobi method: `values[k]` and the
 * k-th column of `vectors` (row-major n x n) with A = V diag(values) V^T. Accurate to rounding for
 * the small (a few hundred) dimensions used here; the input is not modified.
 */
export function symmetricEigen(a: Float64Array, n: number, opts: { maxSweeps?: number } = {}): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values for ${n} x ${n}`);
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += m[i] * m[i];
  const tol = 1e-30 * Math.max(scale, Number.MIN_VALUE);
  const maxSweeps = opts.maxSweeps ?? 60;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= tol) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const app = m[p * n + p];
        const aqq = m[q * n + q];
        // The rotation that zeroes (p, q): t = tan(theta), the smaller root (Numerical Recipes 11.1).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p];
          const akq = m[k * n + q];
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k];
          const aqk = m[q * n + k];
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i];
  return { values, vectors: v };
}

/** The symmetric positive semi-definite square root of a symmetric matrix (negative eigenvalues, rounding noise of a PSD matrix, clipped to 0). */
export function sqrtPsd(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]));
    if (s === 0) continue;
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k] * s;
      if (vik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += vik * vectors[j * n + k];
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/**
 * The Frechet (2-Wasserstein) distance between N(mu1, C1) and N(mu2, C2):
 * |mu1 - mu2|^2 + tr C1 + tr C2 - 2 tr sqrt(C1^1/2 C2 C1^1/2)
 * (the last trace equals tr sqrt(C1 C2); the symmetric form keeps every step a symmetric eigen problem).
 */
export function frechetDistance(a: { mean: Float64Array; cov: Float64Array }, b: { mean: Float64Array; cov: Float64Array }): number {
  const n = a.mean.length;
  if (b.mean.length !== n || a.cov.length !== n * n || b.cov.length !== n * n) throw new RangeError('frechetDistance: the two Gaussians differ in dimension');
  let d2 = 0;
  let trA = 0;
  let trB = 0;
  for (let i = 0; i < n; i++) {
    d2 += (a.mean[i] - b.mean[i]) ** 2;
    trA += a.cov[i * n + i];
    trB += b.cov[i * n + i];
  }
  const s = sqrtPsd(a.cov, n);
  const m = matmul(matmul(s, b.cov, n), s, n);
  // Symmetrise away rounding before the eigen solve.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = (m[i * n + j] + m[j * n + i]) / 2;
      m[i * n + j] = v;
      m[j * n + i] = v;
    }
  }
  const { values } = symmetricEigen(m, n);
  let trSqrt = 0;
  for (const v of values) trSqrt += Math.sqrt(Math.max(0, v));
  // Rounding can take a distance of two identical Gaussians a hair below 0.
  return Math.max(0, d2 + trA + trB - 2 * trSqrt);
}

/** KID's result: the unbiased MMD^2 estimate averaged over subsets, its std over them, and how they were drawn. */
export interface KidResult {
  mean: number;
  std: number;
  subsets: number;
  subsetSize: number;
}

/**
 * Kernel inception distance: the unbiased estimate of MMD^2 with the polynomial kernel
 * k(x, y) = (x.y / dim + 1)^3, on `subsets` random subsets of `subsetSize` rows of each set
 * (drawn without replacement, seeded), reported as mean and std over subsets (population std).
 * Unbiased: for two samples of one distribution its expectation is 0, so small negative values occur.
 */
export function kernelInceptionDistance(
  x: Float32Array | Float64Array,
  nx: number,
  y: Float32Array | Float64Array,
  ny: number,
  dim: number,
  opts: { subsets?: number; subsetSize?: number; seed?: number } = {},
): KidResult {
  if (x.length !== nx * dim || y.length !== ny * dim) throw new RangeError(`kernelInceptionDistance: ${x.length} and ${y.length} values for ${nx} and ${ny} rows of ${dim}`);
  const subsetSize = Math.min(opts.subsetSize ?? 500, nx, ny);
  if (subsetSize < 2) throw new RangeError(`kernelInceptionDistance: needs at least 2 rows in each set, got ${nx} and ${ny}`);
  const subsets = opts.subsets ?? 20;
  const rng = createRng(opts.seed ?? 0);
  const pick = (count: number): Uint32Array => {
    // Partial Fisher-Yates: the first subsetSize entries of a seeded permutation.
    const idx = new Uint32Array(count);
    for (let i = 0; i < count; i++) idx[i] = i;
    for (let i = 0; i < subsetSize; i++) {
      const j = i + Math.floor(rng() * (count - i));
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    return idx.subarray(0, subsetSize);
  };
  const k = (a: Float32Array | Float64Array, ia: number, b: Float32Array | Float64Array, ib: number): number => {
    let dot = 0;
    const oa = ia * dim;
    const ob = ib * dim;
    for (let j = 0; j < dim; j++) dot += a[oa + j] * b[ob + j];
    const base = dot / dim + 1;
    return base * base * base;
  };
  const m = subsetSize;
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const ix = pick(nx);
    const iy = pick(ny);
    let kxx = 0;
    let kyy = 0;
    let kxy = 0;
    for (let i = 0; i < m; i++) {
      for (let j = i + 1; j < m; j++) {
        kxx += k(x, ix[i], x, ix[j]);
        kyy += k(y, iy[i], y, iy[j]);
      }
      for (let j = 0; j < m; j++) kxy += k(x, ix[i], y, iy[j]);
    }
    values.push((2 * kxx) / (m * (m - 1)) + (2 * kyy) / (m * (m - 1)) - (2 * kxy) / (m * m));
  }
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std, subsets, subsetSize };
}
