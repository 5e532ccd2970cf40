// Convolutions as im2col + sgemm: the forward pass (fused with its bias and a per-image or
// residual addend; the direct kernel of conv2d-direct.cc takes the shapes it covers) and both
// gradients. Work is split by image across OpenMP threads, each running single-threaded sgemm on
// a small im2col block that stays in its core's cache (a whole-batch im2col runs at memory speed:
// ~4x slower on 2 cores). BLAS threading is switched off around these regions and back on after.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "conv2d.h"

namespace ddae {

bool ReadConv(napi_env env, napi_value dims, Conv* c) {
  std::vector<int64_t> d;
  if (!I32s(env, dims, &d, 13, "dims")) return false;
  *c = Conv{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12]};
  if (c->sh < 1 || c->sw < 1) return Fail(env, "dims: strides must be >= 1");
  return true;
}

namespace {

// Rows [r0, r0 + rows) of image n's im2col matrix (one row per output pixel, K columns).
void Im2col(const Conv& c, const float* x, int64_t n, int64_t r0, int64_t rows, float* col) {
  const int64_t K = c.K();
  const float* xn = x + n * c.h * c.w * c.cin;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t oy = (r0 + r) / c.wo, ox = (r0 + r) % c.wo;
    float* dst = col + r * K;
    for (int64_t ky = 0; ky < c.kh; ky++) {
      const int64_t iy = oy * c.sh - c.pt + ky;
      for (int64_t kx = 0; kx < c.kw; kx++, dst += c.cin) {
        const int64_t ix = ox * c.sw - c.pl + kx;
        if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) {
          for (int64_t ch = 0; ch < c.cin; ch++) dst[ch] = 0.f;
        } else {
          const float* src = xn + (iy * c.w + ix) * c.cin;
          for (int64_t ch = 0; ch < c.cin; ch++) dst[ch] = src[ch];
        }
      }
    }
  }
}

// Scatter-adds rows [r0, r0 + rows) of image n's column gradient onto dx.
void Col2im(const Conv& c, const float* col, int64_t n, int64_t r0, int64_t rows, float* dx) {
  const int64_t K = c.K();
  float* dxn = dx + n * c.h * c.w * c.cin;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t oy = (r0 + r) / c.wo, ox = (r0 + r) % c.wo;
    const float* src = col + r * K;
    for (int64_t ky = 0; ky < c.kh; ky++) {
      const int64_t iy = oy * c.sh - c.pt + ky;
      for (int64_t kx = 0; kx < c.kw; kx++, src += c.cin) {
        const int64_t ix = ox * c.sw - c.pl + kx;
        if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
        float* dst = dxn + (iy * c.w + ix) * c.cin;
        for (int64_t ch = 0; ch < c.cin; ch++) dst[ch] += src[ch];
      }
    }
  }
}

// conv2dForward(x, w, y, dims[n,h,w,cin,kh,kw,cout,sh,sw,padTop,padLeft,ho,wo], bias?, addend?):
// y = conv(x, w) + bias + addend; the addend is [n, cout] (per image) or y's full shape.
napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  if (!GetArgs(env, info, 6, &a) || !RequireBlas(env) || !ReadConv(env, a.v[3], &c)) return nullptr;
  float *x, *w, *y, *bias = nullptr, *addend = nullptr;
  const int64_t hw = c.ho * c.wo;
  if (!F32(env, a.v[0], &x, c.n * c.h * c.w * c.cin, "x") || !F32(env, a.v[1], &w, c.K() * c.cout, "w") ||
      !F32(env, a.v[2], &y, c.n * hw * c.cout, "y") || !OptionalF32(env, a.v[4], &bias, c.cout, "bias"))
    return nullptr;
  ConvInit init;
  init.bias = bias;
  napi_valuetype addendType;
  napi_typeof(env, a.v[5], &addendType);
  if (addendType != napi_undefined && addendType != napi_null) {
    size_t length = 0;
    if (!GetTypedF32(env, a.v[5], &addend, &length, "addend")) return nullptr;
    if (length == static_cast<size_t>(c.n * hw * c.cout))
      init.full = addend;
    else if (length == static_cast<size_t>(c.n * c.cout))
      init.perImage = addend;
    else
      return Fail(env, "addend: " + std::to_string(length) + " elements, need n*cout or n*ho*wo*cout"), nullptr;
  }
  const float beta = init.any() ? 1.f : 0.f;
  if (c.pointwise()) {
    if (init.any()) {
#pragma omp parallel for schedule(static) if (c.n * hw * c.cout > 65536)
      for (int64_t n = 0; n < c.n; n++) {
        std::vector<float> scratch(c.cout);
        FillInit(init, ImageInitRow(init, n, c.cout, scratch.data()), y + n * hw * c.cout, n, hw, 0, hw, c.cout);
      }
    }
    Gemm(false, false, c.n * c.h * c.w, c.cout, c.cin, x, c.cin, w, c.cout, beta, y, c.cout);
    return Undefined(env);
  }
  if (DirectConvForward(c, x, w, y, init)) return Undefined(env);
  const int64_t K = c.K(), block = c.blockRows();
  SerialBlas serial;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < c.n; n++) {
    float* col = Scratch(static_cast<size_t>(block * K + c.cout));
    const float* row = ImageInitRow(init, n, c.cout, col + block * K);
    for (int64_t r0 = 0; r0 < hw; r0 += block) {
      const int64_t rows = std::min(block, hw - r0);
      float* out = y + (n * hw + r0) * c.cout;
      Im2col(c, x, n, r0, rows, col);
      if (init.any()) FillInit(init, row, out, n, hw, r0, rows, c.cout);
      Gemm(false, false, rows, c.cout, K, col, K, w, c.cout, beta, out, c.cout);
    }
  }
  return Undefined(env);
}

// conv2dBackpropInput(dy, w, dx, dims): dx must be zero-filled.
napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  if (!GetArgs(env, info, 4, &a) || !RequireBlas(env) || !ReadConv(env, a.v[3], &c)) return nullptr;
  float *dy, *w, *dx;
  if (!F32(env, a.v[0], &dy, c.n * c.ho * c.wo * c.cout, "dy") || !F32(env, a.v[1], &w, c.K() * c.cout, "w") ||
      !F32(env, a.v[2], &dx, c.n * c.h * c.w * c.cin, "dx"))
    return nullptr;
  if (c.pointwise()) {
    Gemm(false, true, c.n * c.h * c.w, c.cin, c.cout, dy, c.cout, w, c.cout, 0.f, dx, c.cin);
    return Undefined(env);
  }
  const int64_t K = c.K(), hw = c.ho * c.wo, block = c.blockRows();
  SerialBlas serial;
  // Each image's dx is written by one thread only.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < c.n; n++) {
    float* col = Scratch(static_cast<size_t>(block * K));
    for (int64_t r0 = 0; r0 < hw; r0 += block) {
      const int64_t rows = std::min(block, hw - r0);
      Gemm(false, true, rows, K, c.cout, dy + (n * hw + r0) * c.cout, c.cout, w, c.cout, 0.f, col, K);
      Col2im(c, col, n, r0, rows, dx);
    }
  }
  return Undefined(env);
}

// conv2dBackpropFilter(x, dy, dw, dims)
napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  if (!GetArgs(env, info, 4, &a) || !RequireBlas(env) || !ReadConv(env, a.v[3], &c)) return nullptr;
  float *x, *dy, *dw;
  if (!F32(env, a.v[0], &x, c.n * c.h * c.w * c.cin, "x") || !F32(env, a.v[1], &dy, c.n * c.ho * c.wo * c.cout, "dy") ||
      !F32(env, a.v[2], &dw, c.K() * c.cout, "dw"))
    return nullptr;
  if (c.pointwise()) {
    Gemm(true, false, c.cin, c.cout, c.n * c.h * c.w, x, c.cin, dy, c.cout, 0.f, dw, c.cout);
    return Undefined(env);
  }
  const int64_t K = c.K(), hw = c.ho * c.wo, block = c.blockRows(), size = K * c.cout;
  // One partial sum per thread, over a fixed (static) share of the images, added in thread order:
  // the same thread count gives the same bits.
  const int threads = std::max(1, std::min<int>(omp_get_max_threads(), static_cast<int>(c.n)));
  std::vector<float> partial(static_cast<size_t>(threads) * size, 0.f);
  SerialBlas serial;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* acc = partial.data() + static_cast<size_t>(t) * size;
    float* col = Scratch(static_cast<size_t>(block * K));
    const int64_t lo = c.n * t / threads, hi = c.n * (t + 1) / threads;
    for (int64_t n = lo; n < hi; n++)
      for (int64_t r0 = 0; r0 < hw; r0 += block) {
        const int64_t rows = std::min(block, hw - r0);
        Im2col(c, x, n, r0, rows, col);
        Gemm(true, false, K, c.cout, rows, col, K, dy + (n * hw + r0) * c.cout, c.cout, 1.f, acc, c.cout);
      }
  }
  std::memcpy(dw, partial.data(), sizeof(float) * size);
  for (int t = 1; t < threads; t++)
    for (int64_t i = 0; i < size; i++) dw[i] += partial[static_cast<size_t>(t) * size + i];
  return Undefined(env);
}

}  // namespace

std::span<const Export> Conv2dExports() {
  static constexpr Export fns[] = {
      {"conv2dForward", Conv2dForward},
      {"conv2dBackpropInput", Conv2dBackpropInput},
      {"conv2dBackpropFilter", Conv2dBackpropFilter},
  };
  return fns;
}

}  // namespace ddae
