// Sums over any set of axes: reduceSum (the Sum and Mean kernels).
#include <vector>

#include "common.h"

namespace ddae {
namespace {

// reduceSum(x, out, shape, outStrides): out[sum_k idx_k * outStrides_k] += x[idx] over x's
// contiguous shape (outStrides 0 on reduced axes); out must be zero-filled.
napi_value ReduceSum(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 4, &a)) return nullptr;
  std::vector<int64_t> shape, so;
  if (!I32s(env, a.v[2], &shape, 0, "shape") || !I32s(env, a.v[3], &so, shape.size(), "outStrides")) return nullptr;
  if (shape.empty()) return Fail(env, "reduceSum: rank 0 is handled in JavaScript"), nullptr;
  int64_t total = 1;
  for (auto s : shape) total *= s;
  float *x, *out;
  if (!F32(env, a.v[0], &x, total, "x") || !F32(env, a.v[1], &out, total ? Extent(shape, so) : 0, "out")) return nullptr;
  if (total == 0) return Undefined(env);
  const size_t R = shape.size();
  const int64_t D = shape[R - 1], iso = so[R - 1];
  const int64_t rows = total / D;
  std::vector<int64_t> idx(R, 0);
  int64_t oo = 0;
  for (int64_t r = 0; r < rows; r++) {
    const float* px = x + r * D;
    if (iso == 0) {
      double acc = 0;
      for (int64_t i = 0; i < D; i++) acc += px[i];
      out[oo] += static_cast<float>(acc);
    } else {
      float* po = out + oo;
      for (int64_t i = 0; i < D; i++) po[i * iso] += px[i];
    }
    // Odometer over the outer axes.
    for (size_t k = R - 1; k-- > 0;) {
      oo += so[k];
      if (++idx[k] < shape[k]) break;
      oo -= so[k] * shape[k];
      idx[k] = 0;
    }
  }
  return Undefined(env);
}

}  // namespace

std::span<const Export> ReduceExports() {
  static constexpr Export fns[] = {
      {"reduceSum", ReduceSum},
  };
  return fns;
}

}  // namespace ddae
