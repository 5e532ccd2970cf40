// The geometry and initial value shared by the two forward convolutions: im2col + sgemm
// (conv2d.cc) and the register-tiled direct kernel (conv2d-direct.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace ddae {

// dims[n, h, w, cin, kh, kw, cout, sh, sw, padTop, padLeft, ho, wo] of an NHWC x HWIO convolution.
struct Conv {
  int64_t n, h, w, cin, kh, kw, cout, sh, sw, pt, pl, ho, wo;
  int64_t K() const { return kh * kw * cin; }
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && ho == h && wo == w; }
  // Output pixels per im2col block: ~512 KB of scratch, whole output rows, at least one row.
  int64_t blockRows() const {
    const int64_t rows = std::max<int64_t>(1, (128 * 1024) / std::max<int64_t>(1, K()) / wo);
    return std::min(rows, ho) * wo;
  }
};

bool ReadConv(napi_env env, napi_value dims, Conv* c);

// What the GEMM accumulates onto: bias[c] + addend, where the addend is per image ([n, cout],
// e.g. a time embedding) or the full output ([n, ho, wo, cout], e.g. a residual), or nothing.
struct ConvInit {
  const float* bias = nullptr;
  const float* perImage = nullptr;
  const float* full = nullptr;
  bool any() const { return bias || perImage || full; }
};

// Image n's per-channel part of the initial value: bias + per-image addend (written into `scratch`
// when both are present), the bias alone, or null. Computed once per image.
inline const float* ImageInitRow(const ConvInit& init, int64_t n, int64_t cout, float* scratch) {
  if (!init.perImage) return init.bias;
  const float* pi = init.perImage + n * cout;
  if (!init.bias) return pi;
  for (int64_t c = 0; c < cout; c++) scratch[c] = init.bias[c] + pi[c];
  return scratch;
}

// Rows [r0, r0 + rows) of image n's output set to the initial value (the GEMM then adds onto it);
// `row` is ImageInitRow's result for image n.
inline void FillInit(const ConvInit& init, const float* row, float* out, int64_t n, int64_t hw, int64_t r0, int64_t rows, int64_t cout) {
  if (init.full) {
    const float* src = init.full + (n * hw + r0) * cout;
    for (int64_t r = 0; r < rows; r++) {
      float* o = out + r * cout;
      const float* a = src + r * cout;
      if (row)
        for (int64_t c = 0; c < cout; c++) o[c] = a[c] + row[c];
      else
        std::memcpy(o, a, sizeof(float) * cout);
    }
    return;
  }
  for (int64_t r = 0; r < rows; r++) std::memcpy(out + r * cout, row, sizeof(float) * cout);
}

// ---- the direct kernel (conv2d-direct.cc) ----
// Which direct-convolution build this CPU runs: "avx512", "avx2" or "baseline".
const char* DirectConvIsa();
// Direct convolution switch: DDAE_DIRECT_CONV=0 turns it off (im2col + sgemm everywhere).
bool DirectConvEnabled();
// Runs the direct kernel when it applies (output channels a multiple of 16, not 1x1); false otherwise.
bool DirectConvForward(const Conv& c, const float* x, const float* w, float* y, const ConvInit& init);

}  // namespace ddae
