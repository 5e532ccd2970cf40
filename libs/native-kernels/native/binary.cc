// Broadcasting add, sub, mul and div: out (contiguous) = a op b, with a and b read through strides
// (0 on broadcast axes) that the caller has collapsed to as few axes as possible.
#include <omp.h>

#include <vector>

#include "common.h"

namespace ddae {
namespace {

enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

template <int OP>
inline float Apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  return a / b;
}

template <int OP>
void BinaryLoop(const float* a, const float* b, float* out, const std::vector<int64_t>& shape, const std::vector<int64_t>& sa,
                const std::vector<int64_t>& sb) {
  const size_t R = shape.size();
  const int64_t D = shape[R - 1], isa = sa[R - 1], isb = sb[R - 1];
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < R; i++) rows *= shape[i];
  const int64_t total = rows * D;
  if (rows == 1) {
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t i = 0; i < D; i++) out[i] = Apply<OP>(a[i * isa], b[i * isb]);
    return;
  }
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; r++) {
    float* o = out + r * D;
    const float* pa = a + RowOffset(r, shape, sa);
    const float* pb = b + RowOffset(r, shape, sb);
    if (isa == 1 && isb == 1)
      for (int64_t i = 0; i < D; i++) o[i] = Apply<OP>(pa[i], pb[i]);
    else if (isa == 1 && isb == 0)
      for (int64_t i = 0; i < D; i++) o[i] = Apply<OP>(pa[i], pb[0]);
    else if (isa == 0 && isb == 1)
      for (int64_t i = 0; i < D; i++) o[i] = Apply<OP>(pa[0], pb[i]);
    else
      for (int64_t i = 0; i < D; i++) o[i] = Apply<OP>(pa[i * isa], pb[i * isb]);
  }
}

// binary(op, a, b, out, shape, aStrides, bStrides): out (contiguous, shape) = a op b, where a and
// b are read through strides (0 on broadcast axes).
napi_value Binary(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 7, &a)) return nullptr;
  double op;
  std::vector<int64_t> shape, sa, sb;
  if (!Num(env, a.v[0], &op, "op") || !I32s(env, a.v[4], &shape, 0, "shape") || !I32s(env, a.v[5], &sa, shape.size(), "aStrides") ||
      !I32s(env, a.v[6], &sb, shape.size(), "bStrides"))
    return nullptr;
  if (shape.empty()) return Fail(env, "binary: rank 0 is handled in JavaScript"), nullptr;
  int64_t total = 1;
  for (auto s : shape) total *= s;
  float *pa, *pb, *po;
  if (!F32(env, a.v[1], &pa, total ? Extent(shape, sa) : 0, "a") || !F32(env, a.v[2], &pb, total ? Extent(shape, sb) : 0, "b") ||
      !F32(env, a.v[3], &po, total, "out"))
    return nullptr;
  if (total == 0) return Undefined(env);
  switch (static_cast<int>(op)) {
    case kAdd: BinaryLoop<kAdd>(pa, pb, po, shape, sa, sb); break;
    case kSub: BinaryLoop<kSub>(pa, pb, po, shape, sa, sb); break;
    case kMul: BinaryLoop<kMul>(pa, pb, po, shape, sa, sb); break;
    case kDiv: BinaryLoop<kDiv>(pa, pb, po, shape, sa, sb); break;
    default: return Fail(env, "binary: unknown op"), nullptr;
  }
  return Undefined(env);
}

}  // namespace

std::span<const Export> BinaryExports() {
  static constexpr Export fns[] = {
      {"binary", Binary},
  };
  return fns;
}

}  // namespace ddae
