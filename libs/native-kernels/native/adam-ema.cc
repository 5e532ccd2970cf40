// One Adam step and the EMA of the new weights, fused in one pass over a parameter tensor.
#include <omp.h>

#include <cmath>

#include "common.h"

namespace ddae {
namespace {

// adamEma(p, g, m, v, ema, pOut, mOut, vOut, emaOut, hyper[gradScale, lr, b1, b2, eps, bc1, bc2, decay]):
// one Adam step (bias-corrected, gradient pre-scaled by the clipping factor) and the EMA update
// of the new weights, for one parameter tensor, in one pass.
napi_value AdamEma(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 10, &a)) return nullptr;
  float *p, *g, *m, *v, *e, *po, *mo, *vo, *eo, *hp;
  size_t n = 0;
  if (!GetTypedF32(env, a.v[0], &p, &n, "p")) return nullptr;
  if (!F32(env, a.v[1], &g, n, "g") || !F32(env, a.v[2], &m, n, "m") || !F32(env, a.v[3], &v, n, "v") || !F32(env, a.v[4], &e, n, "ema") ||
      !F32(env, a.v[5], &po, n, "pOut") || !F32(env, a.v[6], &mo, n, "mOut") || !F32(env, a.v[7], &vo, n, "vOut") ||
      !F32(env, a.v[8], &eo, n, "emaOut") || !F32(env, a.v[9], &hp, 8, "hyper"))
    return nullptr;
  const float scale = hp[0], lr = hp[1], b1 = hp[2], b2 = hp[3], eps = hp[4], bc1 = hp[5], bc2 = hp[6], decay = hp[7];
  const int64_t N = static_cast<int64_t>(n);
#pragma omp parallel for schedule(static) if (N > 65536)
  for (int64_t i = 0; i < N; i++) {
    const float gi = g[i] * scale;
    const float mi = m[i] * b1 + gi * (1.f - b1);
    const float vi = v[i] * b2 + gi * gi * (1.f - b2);
    const float upd = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    const float pi = p[i] - upd * lr;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = pi;
    eo[i] = e[i] * decay + pi * (1.f - decay);
  }
  return Undefined(env);
}

}  // namespace

std::span<const Export> AdamEmaExports() {
  static constexpr Export fns[] = {
      {"adamEma", AdamEma},
  };
  return fns;
}

}  // namespace ddae
