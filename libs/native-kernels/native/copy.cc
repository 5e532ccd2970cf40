// Data movement: strided copies (transpose and any permuted or broadcast view) and row-block
// copies (concat and split along any axis).
#include <omp.h>

#include <cstring>
#include <vector>

#include "common.h"

namespace ddae {
namespace {

// stridedCopy(src, out, shape, srcStrides): out (contiguous, shape) = src read through strides:
// a transpose, or any permuted / broadcast view.
napi_value StridedCopy(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 4, &a)) return nullptr;
  std::vector<int64_t> shape, ss;
  if (!I32s(env, a.v[2], &shape, 0, "shape") || !I32s(env, a.v[3], &ss, shape.size(), "srcStrides")) return nullptr;
  if (shape.empty()) return Fail(env, "stridedCopy: rank 0 is handled in JavaScript"), nullptr;
  int64_t total = 1;
  for (auto d : shape) total *= d;
  float *src, *out;
  if (!F32(env, a.v[0], &src, total ? Extent(shape, ss) : 0, "src") || !F32(env, a.v[1], &out, total, "out")) return nullptr;
  if (total == 0) return Undefined(env);
  const size_t R = shape.size();
  const int64_t D = shape[R - 1], is = ss[R - 1], rows = total / D;
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const float* p = src + RowOffset(r, shape, ss);
    float* o = out + r * D;
    for (int64_t i = 0; i < D; i++) o[i] = p[i * is];
  }
  return Undefined(env);
}

// copyRows(src, srcOffset, srcStride, dst, dstOffset, dstStride, rowLength, rows): the strided
// block copy under concat and split along any axis.
napi_value CopyRows(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 8, &a)) return nullptr;
  double so, ss, dof, ds, len, rows;
  if (!Num(env, a.v[1], &so, "srcOffset") || !Num(env, a.v[2], &ss, "srcStride") || !Num(env, a.v[4], &dof, "dstOffset") ||
      !Num(env, a.v[5], &ds, "dstStride") || !Num(env, a.v[6], &len, "rowLength") || !Num(env, a.v[7], &rows, "rows"))
    return nullptr;
  const int64_t SO = static_cast<int64_t>(so), SS = static_cast<int64_t>(ss), DO = static_cast<int64_t>(dof), DS = static_cast<int64_t>(ds),
                L = static_cast<int64_t>(len), R = static_cast<int64_t>(rows);
  if (SO < 0 || SS < 0 || DO < 0 || DS < 0 || L < 0 || R < 0) return Fail(env, "copyRows: negative argument"), nullptr;
  if (R == 0 || L == 0) return Undefined(env);
  float *src, *dst;
  if (!F32(env, a.v[0], &src, SO + (R - 1) * SS + L, "src") || !F32(env, a.v[3], &dst, DO + (R - 1) * DS + L, "dst")) return nullptr;
#pragma omp parallel for schedule(static) if (R * L > 262144)
  for (int64_t r = 0; r < R; r++) std::memcpy(dst + DO + r * DS, src + SO + r * SS, sizeof(float) * L);
  return Undefined(env);
}

}  // namespace

std::span<const Export> CopyExports() {
  static constexpr Export fns[] = {
      {"stridedCopy", StridedCopy},
      {"copyRows", CopyRows},
  };
  return fns;
}

}  // namespace ddae
