// Native float32 kernels for TensorFlow.js (our "native" backend): convolutions as im2col + sgemm
// on a BLAS found at run time (dlopen, so the addon builds with only g++ and Node's headers and
// loads wherever an OpenBLAS is present), fused GroupNorm(+SiLU) forward and backward, and
// broadcasting elementwise / reduction loops. All shapes are row-major, NHWC, HWIO.
//
// Every function takes Float32Arrays owned by JavaScript; outputs are written in place. Outputs
// that accumulate (conv input gradient, reductions) expect zero-filled arrays, which is what a
// fresh Float32Array is.
#include <dlfcn.h>
#include <node_api.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// ---- BLAS, resolved at run time -------------------------------------------------------------
enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
using GetConfigFn = char* (*)();

SgemmFn g_sgemm = nullptr;
GetThreadsFn g_blas_get_threads = nullptr;
SetThreadsFn g_blas_set_threads = nullptr;
// Threads asked for at init (BLAS and OpenMP).
int g_threads = 1;
std::string g_blas_library;
std::string g_blas_config;

void Gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.f)
      for (int i = 0; i < m; i++) std::memset(c + static_cast<size_t>(i) * ldc, 0, sizeof(float) * n);
    return;
  }
  g_sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
}

// ---- N-API helpers ------------------------------------------------------------------------------
struct Args {
  napi_env env;
  std::vector<napi_value> v;
  bool failed = false;
};

bool Fail(napi_env env, const std::string& msg) {
  napi_throw_error(env, "DDAE_NATIVE", msg.c_str());
  return false;
}

bool GetArgs(napi_env env, napi_callback_info info, size_t want, Args* out) {
  size_t argc = want;
  out->env = env;
  out->v.assign(want, nullptr);
  if (napi_get_cb_info(env, info, &argc, out->v.data(), nullptr, nullptr) != napi_ok) return Fail(env, "bad call");
  if (argc < want) return Fail(env, "expected " + std::to_string(want) + " arguments, got " + std::to_string(argc));
  return true;
}

template <typename T>
bool GetTyped(napi_env env, napi_value value, napi_typedarray_type want, T** data, size_t* length, const char* what) {
  bool is = false;
  napi_is_typedarray(env, value, &is);
  if (!is) return Fail(env, std::string(what) + ": expected a typed array");
  napi_typedarray_type type;
  void* ptr = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, length, &ptr, &buffer, &offset) != napi_ok) return Fail(env, std::string(what) + ": unreadable");
  if (type != want) return Fail(env, std::string(what) + ": wrong element type");
  *data = static_cast<T*>(ptr);
  return true;
}

bool F32(napi_env env, napi_value value, float** data, size_t need, const char* what) {
  size_t length = 0;
  if (!GetTyped(env, value, napi_float32_array, data, &length, what)) return false;
  if (length < need) return Fail(env, std::string(what) + ": " + std::to_string(length) + " elements, need " + std::to_string(need));
  return true;
}

bool I32s(napi_env env, napi_value value, std::vector<int64_t>* out, size_t need, const char* what) {
  int32_t* data = nullptr;
  size_t length = 0;
  if (!GetTyped(env, value, napi_int32_array, &data, &length, what)) return false;
  if (need && length != need) return Fail(env, std::string(what) + ": expected " + std::to_string(need) + " integers");
  out->assign(data, data + length);
  for (auto d : *out)
    if (d < 0) return Fail(env, std::string(what) + ": negative value");
  return true;
}

bool Num(napi_env env, napi_value value, double* out, const char* what) {
  if (napi_get_value_double(env, value, out) != napi_ok) return Fail(env, std::string(what) + ": expected a number");
  return true;
}

bool Bool(napi_env env, napi_value value, bool* out, const char* what) {
  if (napi_get_value_bool(env, value, out) != napi_ok) return Fail(env, std::string(what) + ": expected a boolean");
  return true;
}

bool RequireBlas(napi_env env) {
  if (!g_sgemm) return Fail(env, "native kernels: init() has not found a BLAS");
  return true;
}

napi_value Undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// ---- init -------------------------------------------------------------------------------------
const char* DirectConvIsa();
bool DirectConvEnabled();

// init(candidates: string[], threads: number) -> { library, blasConfig, threads }
napi_value Init(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 2, &a)) return nullptr;
  double threads = 0;
  if (!Num(env, a.v[1], &threads, "threads")) return nullptr;
  uint32_t count = 0;
  if (napi_get_array_length(env, a.v[0], &count) != napi_ok) return Fail(env, "candidates: expected an array"), nullptr;
  std::string tried;
  for (uint32_t i = 0; i < count && !g_sgemm; i++) {
    napi_value item;
    napi_get_element(env, a.v[0], i, &item);
    char name[1024];
    size_t len = 0;
    if (napi_get_value_string_utf8(env, item, name, sizeof(name), &len) != napi_ok) continue;
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += std::string(tried.empty() ? "" : "; ") + dlerror();
      continue;
    }
    auto sgemm = reinterpret_cast<SgemmFn>(dlsym(handle, "cblas_sgemm"));
    if (!sgemm) {
      tried += std::string(tried.empty() ? "" : "; ") + name + ": no cblas_sgemm";
      dlclose(handle);
      continue;
    }
    g_sgemm = sgemm;
    g_blas_library = name;
    auto set = reinterpret_cast<SetThreadsFn>(dlsym(handle, "openblas_set_num_threads"));
    g_blas_get_threads = reinterpret_cast<GetThreadsFn>(dlsym(handle, "openblas_get_num_threads"));
    auto config = reinterpret_cast<GetConfigFn>(dlsym(handle, "openblas_get_config"));
    g_blas_set_threads = set;
    if (set && threads >= 1) set(static_cast<int>(threads));
    if (config) g_blas_config = config();
  }
  if (!g_sgemm) return Fail(env, "no BLAS with cblas_sgemm could be loaded (" + tried + ")"), nullptr;
  if (threads >= 1) {
    omp_set_num_threads(static_cast<int>(threads));
    g_threads = static_cast<int>(threads);
  }
  napi_value result, lib, cfg, th, direct;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, DirectConvEnabled() ? DirectConvIsa() : "off", NAPI_AUTO_LENGTH, &direct);
  napi_set_named_property(env, result, "directConv", direct);
  napi_create_string_utf8(env, g_blas_library.c_str(), NAPI_AUTO_LENGTH, &lib);
  napi_create_string_utf8(env, g_blas_config.c_str(), NAPI_AUTO_LENGTH, &cfg);
  napi_create_int32(env, g_blas_get_threads ? g_blas_get_threads() : omp_get_max_threads(), &th);
  napi_set_named_property(env, result, "library", lib);
  napi_set_named_property(env, result, "blasConfig", cfg);
  napi_set_named_property(env, result, "threads", th);
  return result;
}

// ---- gemm -------------------------------------------------------------------------------------
// gemm(transA, transB, m, n, k, a, b, c, beta): C[m,n] = op(A) op(B) + beta C, all row-major dense.
napi_value GemmJs(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 9, &a) || !RequireBlas(env)) return nullptr;
  bool ta, tb;
  double m, n, k, beta;
  float *pa, *pb, *pc;
  if (!Bool(env, a.v[0], &ta, "transA") || !Bool(env, a.v[1], &tb, "transB") || !Num(env, a.v[2], &m, "m") || !Num(env, a.v[3], &n, "n") ||
      !Num(env, a.v[4], &k, "k") || !Num(env, a.v[8], &beta, "beta"))
    return nullptr;
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if (!F32(env, a.v[5], &pa, static_cast<size_t>(M) * K, "a") || !F32(env, a.v[6], &pb, static_cast<size_t>(K) * N, "b") ||
      !F32(env, a.v[7], &pc, static_cast<size_t>(M) * N, "c"))
    return nullptr;
  Gemm(ta, tb, M, N, K, pa, ta ? M : K, pb, tb ? K : N, static_cast<float>(beta), pc, N);
  return Undefined(env);
}

// ---- convolution ------------------------------------------------------------------------------
// Work is split by image across OpenMP threads, each running single-threaded sgemm on a small
// im2col block that stays in its core's cache (a whole-batch im2col runs at memory speed: ~4x
// slower on 2 cores). BLAS threading is switched off around these regions and back on after.
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

// Single-threaded BLAS for the lifetime of the guard (JS calls kernels one at a time).
struct SerialBlas {
  SerialBlas() {
    if (g_blas_set_threads && g_threads > 1) g_blas_set_threads(1);
  }
  ~SerialBlas() {
    if (g_blas_set_threads && g_threads > 1) g_blas_set_threads(g_threads);
  }
};

float* Scratch(size_t n) {
  thread_local std::unique_ptr<float[]> buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf.reset(new float[n]);
    cap = n;
  }
  return buf.get();
}

bool ReadConv(napi_env env, napi_value dims, Conv* c) {
  std::vector<int64_t> d;
  if (!I32s(env, dims, &d, 13, "dims")) return false;
  *c = Conv{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12]};
  if (c->sh < 1 || c->sw < 1) return Fail(env, "dims: strides must be >= 1");
  return true;
}

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
const float* ImageInitRow(const ConvInit& init, int64_t n, int64_t cout, float* scratch) {
  if (!init.perImage) return init.bias;
  const float* pi = init.perImage + n * cout;
  if (!init.bias) return pi;
  for (int64_t c = 0; c < cout; c++) scratch[c] = init.bias[c] + pi[c];
  return scratch;
}

// Rows [r0, r0 + rows) of image n's output set to the initial value (the GEMM then adds onto it);
// `row` is ImageInitRow's result for image n.
void FillInit(const ConvInit& init, const float* row, float* out, int64_t n, int64_t hw, int64_t r0, int64_t rows, int64_t cout) {
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

bool OptionalF32(napi_env env, napi_value value, float** data, size_t need, const char* what) {
  napi_valuetype t;
  napi_typeof(env, value, &t);
  if (t == napi_undefined || t == napi_null) return true;
  return F32(env, value, data, need, what);
}

// ---- direct convolution (forward) --------------------------------------------------------------
// For output channels in multiples of 16: no im2col and no GEMM packing. Each image is copied
// once into a zero-padded scratch, then a register tile of PX output pixels x T*16 channels
// accumulates over (ky, kx, cin) with one weight-vector load per T*16 channels and one broadcast per
// pixel. On small channel counts (16-64) this beats im2col + sgemm, whose packing of the im2col
// block costs as much as the arithmetic there. Summation order is fixed per output (deterministic,
// independent of the thread count).
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
    if (!GetTyped(env, a.v[5], napi_float32_array, &addend, &length, "addend")) return nullptr;
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

// ---- GroupNorm (+ SiLU) -----------------------------------------------------------------------
// The elementwise loops are compiled twice on x86-64: for the build's baseline and for AVX2,
// chosen at load time by what the CPU supports (GCC function multi-versioning).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DDAE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DDAE_SIMD_CLONES
#endif
// Per image: per-channel sums over H*W (contiguous channel vectors, so the loops vectorise), then
// group statistics from channel sums. Images run in parallel.

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

// ---- broadcasting binary ops and sums ---------------------------------------------------------
enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

template <int OP>
inline float Apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  return a / b;
}

// Offset, through `strides`, of row r of a row-major `shape` (rows: every axis but the last).
inline int64_t RowOffset(int64_t r, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t k = shape.size() - 1; k-- > 0;) {
    off += (r % shape[k]) * strides[k];
    r /= shape[k];
  }
  return off;
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

int64_t Extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t i = 0; i < shape.size(); i++)
    if (shape[i] > 0) last += (shape[i] - 1) * strides[i];
  return last + 1;
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

// adamEma(p, g, m, v, ema, pOut, mOut, vOut, emaOut, hyper[gradScale, lr, b1, b2, eps, bc1, bc2, decay]):
// one Adam step (bias-corrected, gradient pre-scaled by the clipping factor) and the EMA update
// of the new weights, for one parameter tensor, in one pass.
napi_value AdamEma(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 10, &a)) return nullptr;
  float *p, *g, *m, *v, *e, *po, *mo, *vo, *eo, *hp;
  size_t n = 0;
  if (!GetTyped(env, a.v[0], napi_float32_array, &p, &n, "p")) return nullptr;
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

napi_value Register(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {
      {"init", Init},
      {"gemm", GemmJs},
      {"conv2dForward", Conv2dForward},
      {"conv2dBackpropInput", Conv2dBackpropInput},
      {"conv2dBackpropFilter", Conv2dBackpropFilter},
      {"groupNormForward", GroupNormForward},
      {"groupNormBackward", GroupNormBackward},
      {"binary", Binary},
      {"reduceSum", ReduceSum},
      {"copyRows", CopyRows},
      {"stridedCopy", StridedCopy},
      {"adamEma", AdamEma},
      {"softmax", Softmax},
  };
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Register)
