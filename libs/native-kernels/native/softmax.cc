// Row-wise softmax over the last axis.
#include <omp.h>

#include <cmath>

#include "common.h"

namespace ddae {
namespace {

// softmax(x, out, rows, cols): row-wise softmax over the last axis (max-subtracted, exact exp).
napi_value Softmax(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 4, &a)) return nullptr;
  double rows, cols;
  if (!Num(env, a.v[2], &rows, "rows") || !Num(env, a.v[3], &cols, "cols")) return nullptr;
  const int64_t R = static_cast<int64_t>(rows), D = static_cast<int64_t>(cols);
  if (R < 0 || D < 1) return Fail(env, "softmax: bad shape"), nullptr;
  float *x, *out;
  if (!F32(env, a.v[0], &x, R * D, "x") || !F32(env, a.v[1], &out, R * D, "out")) return nullptr;
#pragma omp parallel for schedule(static) if (R * D > 65536)
  for (int64_t r = 0; r < R; r++) {
    const float* xr = x + r * D;
    float* o = out + r * D;
    float m = xr[0];
    for (int64_t i = 1; i < D; i++) m = xr[i] > m ? xr[i] : m;
    double sum = 0;
    for (int64_t i = 0; i < D; i++) {
      o[i] = std::exp(xr[i] - m);
      sum += o[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < D; i++) o[i] *= inv;
  }
  return Undefined(env);
}

}  // namespace

std::span<const Export> SoftmaxExports() {
  static constexpr Export fns[] = {
      {"softmax", Softmax},
  };
  return fns;
}

}  // namespace ddae
