// The direct forward convolution: for output channels in multiples of 16, no im2col and no GEMM
// packing. Each image is copied once into a zero-padded scratch, then a register tile of PX output
// pixels x T*16 channels accumulates over (ky, kx, cin) with one weight-vector load per T*16
// channels and one broadcast per pixel. On small channel counts (16-64) this beats im2col + sgemm,
// whose packing of the im2col block costs as much as the arithmetic there. Summation order is
// fixed per output (deterministic, independent of the thread count). Built three times on x86-64
// (AVX-512, AVX2, baseline), chosen at load by what the CPU supports.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "conv2d.h"

namespace ddae {
namespace {

// V16 values never cross a non-inlined call between differently compiled functions, so GCC's note
// about the AVX-512 vector ABI does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float V16 __attribute__((vector_size(64)));

inline V16 LoadV(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void StoreV(float* p, V16 v) { std::memcpy(p, &v, sizeof(v)); }

struct DirectGeometry {
  int64_t hp, wp;  // padded scratch size
};

// One image: pad into `xp` (hp x wp x cin), then every output row. Inlined into one function per
// instruction set below.
template <int PX, int T>
__attribute__((always_inline)) inline void DirectConvImage(const Conv& c, const DirectGeometry& g, const float* x, const float* w, float* y,
                                                           const ConvInit& init, int64_t n, float* xp, float* row) {
  const int64_t cin = c.cin, cout = c.cout, hw = c.ho * c.wo;
  std::memset(xp, 0, sizeof(float) * g.hp * g.wp * cin);
  const float* xn = x + n * c.h * c.w * cin;
  for (int64_t iy = 0; iy < c.h; iy++) {
    const int64_t py = iy + c.pt;
    if (py >= g.hp) break;
    const int64_t cols = std::min<int64_t>(c.w, g.wp - c.pl);
    if (cols > 0) std::memcpy(xp + (py * g.wp + c.pl) * cin, xn + iy * c.w * cin, sizeof(float) * cols * cin);
  }
  const float* rowInit = ImageInitRow(init, n, cout, row);
  float* yn = y + n * hw * cout;
  const float* full = init.full ? init.full + n * hw * cout : nullptr;
  for (int64_t oy = 0; oy < c.ho; oy++) {
    for (int64_t ox0 = 0; ox0 < c.wo; ox0 += PX) {
      const int64_t valid = std::min<int64_t>(PX, c.wo - ox0);
      for (int64_t c0 = 0; c0 < cout; c0 += 16 * T) {
        V16 acc[PX][T];
        for (int p = 0; p < PX; p++)
          for (int t = 0; t < T; t++) {
            const int64_t o = (oy * c.wo + ox0 + std::min<int64_t>(p, valid - 1)) * cout + c0 + 16 * t;
            V16 v = {};
            if (rowInit) v = LoadV(rowInit + c0 + 16 * t);
            if (full) v += LoadV(full + o);
            acc[p][t] = v;
          }
        for (int64_t ky = 0; ky < c.kh; ky++) {
          const float* xrow = xp + ((oy * c.sh + ky) * g.wp) * cin;
          for (int64_t kx = 0; kx < c.kw; kx++) {
            const float* xs = xrow + (ox0 * c.sw + kx) * cin;
            const float* ws = w + (ky * c.kw + kx) * cin * cout + c0;
            const int64_t pstride = c.sw * cin;
            for (int64_t ci = 0; ci < cin; ci++) {
              V16 wv[T];
              for (int t = 0; t < T; t++) wv[t] = LoadV(ws + ci * cout + 16 * t);
              for (int p = 0; p < PX; p++) {
                const float xv = xs[p * pstride + ci];
                for (int t = 0; t < T; t++) acc[p][t] += wv[t] * xv;
              }
            }
          }
        }
        for (int p = 0; p < valid; p++)
          for (int t = 0; t < T; t++) StoreV(yn + (oy * c.wo + ox0 + p) * cout + c0 + 16 * t, acc[p][t]);
      }
    }
  }
}

// One image per call; the OpenMP loop stays outside (an outlined parallel region would not
// inherit the target attribute). Register tiles: 8 pixels x 16 channels or 4 pixels x 32 channels
// (8 accumulators of 16 floats: 8 zmm on AVX-512, 16 ymm on AVX2).
using DirectImageFn = void (*)(const Conv&, const DirectGeometry&, const float*, const float*, float*, const ConvInit&, int64_t, float*, float*);
#define DDAE_DIRECT_BODY                                             \
  if (c.cout % 32 == 0)                                              \
    DirectConvImage<4, 2>(c, g, x, w, y, init, n, xp, row);          \
  else                                                               \
    DirectConvImage<8, 1>(c, g, x, w, y, init, n, xp, row);
#define DDAE_DIRECT_ARGS \
  const Conv &c, const DirectGeometry &g, const float *x, const float *w, float *y, const ConvInit &init, int64_t n, float *xp, float *row
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// AVX-512 has 32 vector registers: twice the pixels per tile when 32 channels fit.
__attribute__((target("avx512f,avx512vl,fma"))) void DirectImageAvx512(DDAE_DIRECT_ARGS) {
  if (c.cout % 32 == 0)
    DirectConvImage<8, 2>(c, g, x, w, y, init, n, xp, row);
  else
    DirectConvImage<8, 1>(c, g, x, w, y, init, n, xp, row);
}
__attribute__((target("avx2,fma"))) void DirectImageAvx2(DDAE_DIRECT_ARGS) { DDAE_DIRECT_BODY }
#endif
void DirectImageBaseline(DDAE_DIRECT_ARGS) { DDAE_DIRECT_BODY }
#undef DDAE_DIRECT_BODY
#undef DDAE_DIRECT_ARGS

}  // namespace

// Which direct-convolution build this CPU runs: "avx512", "avx2" or "baseline".
const char* DirectConvIsa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
  return "baseline";
}

// Direct convolution switch: DDAE_DIRECT_CONV=0 turns it off (im2col + sgemm everywhere).
bool DirectConvEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("DDAE_DIRECT_CONV");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

// Runs the direct kernel when it applies (output channels a multiple of 16, not 1x1); false otherwise.
bool DirectConvForward(const Conv& c, const float* x, const float* w, float* y, const ConvInit& init) {
  if (!DirectConvEnabled() || c.cout % 16 != 0 || c.pointwise()) return false;
  const int64_t pxMax = 8;  // the widest tile of any build: the scratch is padded for it
  const int64_t woRound = (c.wo + pxMax - 1) / pxMax * pxMax;
  DirectGeometry g{(c.ho - 1) * c.sh + c.kh, (woRound - 1) * c.sw + c.kw};
  static const DirectImageFn image = [] {
    const std::string isa = DirectConvIsa();
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    if (isa == "avx512") return &DirectImageAvx512;
    if (isa == "avx2") return &DirectImageAvx2;
#endif
    return &DirectImageBaseline;
  }();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < c.n; n++) {
    float* xp = Scratch(static_cast<size_t>(g.hp * g.wp * c.cin + c.cout));
    image(c, g, x, w, y, init, n, xp, xp + g.hp * g.wp * c.cin);
  }
  return true;
}

}  // namespace ddae
