// GroupNorm with an optional SiLU after it, forward and backward, fused (one pass over the
// activations each way). Per image: per-channel sums over H*W (contiguous channel vectors, so the
// loops vectorise), then group statistics from channel sums. Images run in parallel; the
// per-image loops are cloned for AVX2 (DDAE_SIMD_CLONES).
#include <omp.h>

#include <bit>
#include <cmath>
#include <vector>

#include "common.h"

namespace ddae {
namespace {

// exp(x) to ~2e-7 relative error, written so that loops over it vectorise (std::exp does not).
inline float ExpApprox(float x) {
  x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  const float t = x * 1.44269504088896341f;
  const int32_t ni = static_cast<int32_t>(t + std::copysign(0.5f, t));
  const float n = static_cast<float>(ni);
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}
inline float Sigmoid(float z) { return 1.f / (1.f + ExpApprox(-z)); }

// y = y * sigmoid(y) over a contiguous buffer.
DDAE_SIMD_CLONES void SiluInPlace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = y[i] * Sigmoid(y[i]);
}

struct NormShape {
  int64_t N, HW, C, G, Cg;
};

bool ReadNorm(napi_env env, napi_value dims, NormShape* s) {
  std::vector<int64_t> d;
  if (!I32s(env, dims, &d, 4, "dims")) return false;
  *s = NormShape{d[0], d[1], d[2], d[3], d[3] ? d[2] / d[3] : 0};
  if (s->G < 1 || s->C % s->G != 0) return Fail(env, "groups must divide channels");
  return true;
}

// Per-channel mean and rstd of image n's groups (each channel gets its group's values).
void ChannelStats(const NormShape& s, const float* mean, const float* rstd, float* mc, float* rc) {
  for (int64_t c = 0; c < s.C; c++) {
    mc[c] = mean[c / s.Cg];
    rc[c] = rstd[c / s.Cg];
  }
}

// One image of the forward pass (cloned for AVX2+FMA where the CPU has it).
DDAE_SIMD_CLONES void GnForwardImage(const float* x, float* y, int64_t n, int64_t HW, int64_t C, int64_t G, int64_t Cg, double count, double eps,
                                     const float* gamma, const float* beta, float* mean, float* rstd, bool silu) {
  const float* xn = x + n * HW * C;
  float* yn = y + n * HW * C;
  std::vector<double> acc(C, 0.0);
  std::vector<float> mc(C), ac(C), bc(C);
  for (int64_t p = 0; p < HW; p++) {
    const float* row = xn + p * C;
    for (int64_t c = 0; c < C; c++) acc[c] += row[c];
  }
  for (int64_t g = 0; g < G; g++) {
    double t = 0;
    for (int64_t k = 0; k < Cg; k++) t += acc[g * Cg + k];
    mean[n * G + g] = static_cast<float>(t / count);
  }
  for (int64_t c = 0; c < C; c++) {
    mc[c] = mean[n * G + c / Cg];
    acc[c] = 0.0;
  }
  for (int64_t p = 0; p < HW; p++) {
    const float* row = xn + p * C;
    for (int64_t c = 0; c < C; c++) {
      const float d = row[c] - mc[c];
      acc[c] += d * d;
    }
  }
  for (int64_t g = 0; g < G; g++) {
    double t = 0;
    for (int64_t k = 0; k < Cg; k++) t += acc[g * Cg + k];
    rstd[n * G + g] = static_cast<float>(1.0 / std::sqrt(t / count + eps));
  }
  // y = x * a + b with a = rstd * gamma, b = beta - mean * a (per channel).
  for (int64_t c = 0; c < C; c++) {
    ac[c] = rstd[n * G + c / Cg] * gamma[c];
    bc[c] = beta[c] - mc[c] * ac[c];
  }
  for (int64_t p = 0; p < HW; p++) {
    const float* row = xn + p * C;
    float* out = yn + p * C;
    for (int64_t c = 0; c < C; c++) out[c] = row[c] * ac[c] + bc[c];
  }
  if (silu) SiluInPlace(yn, HW * C);
}

// groupNormForward(x, gamma, beta, y, mean, rstd, dims[n, hw, c, groups], eps, silu)
napi_value GroupNormForward(napi_env env, napi_callback_info info) {
  Args a;
  NormShape s;
  if (!GetArgs(env, info, 9, &a) || !ReadNorm(env, a.v[6], &s)) return nullptr;
  double eps;
  bool silu;
  if (!Num(env, a.v[7], &eps, "eps") || !Bool(env, a.v[8], &silu, "silu")) return nullptr;
  const int64_t N = s.N, HW = s.HW, C = s.C, G = s.G, Cg = s.Cg;
  float *x, *gamma, *beta, *y, *mean, *rstd;
  if (!F32(env, a.v[0], &x, N * HW * C, "x") || !F32(env, a.v[1], &gamma, C, "gamma") || !F32(env, a.v[2], &beta, C, "beta") ||
      !F32(env, a.v[3], &y, N * HW * C, "y") || !F32(env, a.v[4], &mean, N * G, "mean") || !F32(env, a.v[5], &rstd, N * G, "rstd"))
    return nullptr;
  const double count = static_cast<double>(HW * Cg);
#pragma omp parallel for schedule(static) if (N * HW * C > 32768)
  for (int64_t n = 0; n < N; n++) GnForwardImage(x, y, n, HW, C, G, Cg, count, eps, gamma, beta, mean, rstd, silu);
  return Undefined(env);
}

// One image of the backward pass; its dgamma/dbeta partial sums go to pg/pb (row n).
DDAE_SIMD_CLONES void GnBackwardImage(const float* dy, const float* x, int64_t n, const NormShape& s, double count, const float* gamma, const float* beta,
                                      const float* mean, const float* rstd, float* dx, double* pgAll, double* pbAll, bool silu) {
  const int64_t HW = s.HW, C = s.C, G = s.G, Cg = s.Cg;
  const int64_t base = n * HW * C;
  std::vector<float> mc(C), rc(C), sdz(C, 0.f), sdzx(C, 0.f), k1(C), k2(C);
  ChannelStats(s, mean + n * G, rstd + n * G, mc.data(), rc.data());
  // Pass 1: dz (the gradient at the affine output, through SiLU) into dx, then per-channel sums
  // of dz and dz * xhat (double totals). Separate loops so each vectorises.
  std::vector<double> tdz(C, 0.0), tdzx(C, 0.0);
  for (int64_t p = 0; p < HW; p++) {
    const float* xr = x + base + p * C;
    const float* dyr = dy + base + p * C;
    float* dxr = dx + base + p * C;
    if (silu) {
      for (int64_t c = 0; c < C; c++) {
        const float z = (xr[c] - mc[c]) * rc[c] * gamma[c] + beta[c];
        const float sg = Sigmoid(z);
        dxr[c] = dyr[c] * (sg * (1.f + z * (1.f - sg)));
      }
    } else {
      for (int64_t c = 0; c < C; c++) dxr[c] = dyr[c];
    }
    for (int64_t c = 0; c < C; c++) {
      const float xh = (xr[c] - mc[c]) * rc[c];
      sdz[c] = dxr[c];
      sdzx[c] = dxr[c] * xh;
    }
    for (int64_t c = 0; c < C; c++) {
      tdz[c] += sdz[c];
      tdzx[c] += sdzx[c];
    }
  }
  for (int64_t c = 0; c < C; c++) {
    pgAll[n * C + c] = tdzx[c];
    pbAll[n * C + c] = tdz[c];
  }
  // sum(dxhat) and sum(dxhat * xhat) per group, with dxhat = dz * gamma.
  for (int64_t g = 0; g < G; g++) {
    double s1 = 0, s2 = 0;
    for (int64_t k = 0; k < Cg; k++) {
      const int64_t c = g * Cg + k;
      s1 += gamma[c] * tdz[c];
      s2 += gamma[c] * tdzx[c];
    }
    for (int64_t k = 0; k < Cg; k++) {
      k1[g * Cg + k] = static_cast<float>(s1 / count);
      k2[g * Cg + k] = static_cast<float>(s2 / count);
    }
  }
  // Pass 2: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
  for (int64_t p = 0; p < HW; p++) {
    const float* xr = x + base + p * C;
    float* dxr = dx + base + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float xh = (xr[c] - mc[c]) * rc[c];
      dxr[c] = rc[c] * (dxr[c] * gamma[c] - k1[c] - xh * k2[c]);
    }
  }
}

// groupNormBackward(dy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, dims[n, hw, c, groups], silu)
napi_value GroupNormBackward(napi_env env, napi_callback_info info) {
  Args a;
  NormShape s;
  if (!GetArgs(env, info, 11, &a) || !ReadNorm(env, a.v[9], &s)) return nullptr;
  bool silu;
  if (!Bool(env, a.v[10], &silu, "silu")) return nullptr;
  const int64_t N = s.N, HW = s.HW, C = s.C, G = s.G, Cg = s.Cg;
  float *dy, *x, *gamma, *beta, *mean, *rstd, *dx, *dgamma, *dbeta;
  if (!F32(env, a.v[0], &dy, N * HW * C, "dy") || !F32(env, a.v[1], &x, N * HW * C, "x") || !F32(env, a.v[2], &gamma, C, "gamma") ||
      !F32(env, a.v[3], &beta, C, "beta") || !F32(env, a.v[4], &mean, N * G, "mean") || !F32(env, a.v[5], &rstd, N * G, "rstd") ||
      !F32(env, a.v[6], &dx, N * HW * C, "dx") || !F32(env, a.v[7], &dgamma, C, "dgamma") || !F32(env, a.v[8], &dbeta, C, "dbeta"))
    return nullptr;
  const double count = static_cast<double>(HW * Cg);
  // Per-image partial sums for dgamma/dbeta, reduced in a fixed order afterwards (deterministic).
  std::vector<double> pg(static_cast<size_t>(N * C), 0.0), pb(static_cast<size_t>(N * C), 0.0);
#pragma omp parallel for schedule(static) if (N * HW * C > 32768)
  for (int64_t n = 0; n < N; n++) GnBackwardImage(dy, x, n, s, count, gamma, beta, mean, rstd, dx, pg.data(), pb.data(), silu);
  for (int64_t c = 0; c < C; c++) {
    double sg = 0, sb = 0;
    for (int64_t n = 0; n < N; n++) {
      sg += pg[n * C + c];
      sb += pb[n * C + c];
    }
    dgamma[c] = static_cast<float>(sg);
    dbeta[c] = static_cast<float>(sb);
  }
  return Undefined(env);
}

}  // namespace

std::span<const Export> GroupNormExports() {
  static constexpr Export fns[] = {
      {"groupNormForward", GroupNormForward},
      {"groupNormBackward", GroupNormBackward},
  };
  return fns;
}

}  // namespace ddae
