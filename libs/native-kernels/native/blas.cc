// The BLAS, found at run time (dlopen, so the addon builds with only g++ and Node's headers and
// loads wherever an OpenBLAS is present), and the kernel family on it alone: gemm (matMul).
#include <dlfcn.h>
#include <omp.h>

#include <cstring>

#include "common.h"

namespace ddae {
namespace {

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

}  // namespace

std::string LoadBlas(const std::vector<std::string>& candidates, int threads) {
  std::string tried;
  for (size_t i = 0; i < candidates.size() && !g_sgemm; i++) {
    const char* name = candidates[i].c_str();
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
    if (set && threads >= 1) set(threads);
    if (config) g_blas_config = config();
  }
  if (!g_sgemm) return "no BLAS with cblas_sgemm could be loaded (" + tried + ")";
  if (threads >= 1) {
    omp_set_num_threads(threads);
    g_threads = threads;
  }
  return "";
}

bool BlasLoaded() { return g_sgemm != nullptr; }
const std::string& BlasLibrary() { return g_blas_library; }
const std::string& BlasConfig() { return g_blas_config; }
int BlasThreads() { return g_blas_get_threads ? g_blas_get_threads() : omp_get_max_threads(); }

bool RequireBlas(napi_env env) {
  if (!g_sgemm) return Fail(env, "native kernels: init() has not found a BLAS");
  return true;
}

void Gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.f)
      for (int i = 0; i < m; i++) std::memset(c + static_cast<size_t>(i) * ldc, 0, sizeof(float) * n);
    return;
  }
  g_sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
}

SerialBlas::SerialBlas() {
  if (g_blas_set_threads && g_threads > 1) g_blas_set_threads(1);
}
SerialBlas::~SerialBlas() {
  if (g_blas_set_threads && g_threads > 1) g_blas_set_threads(g_threads);
}

std::span<const Export> BlasExports() {
  static constexpr Export fns[] = {{"gemm", GemmJs}};
  return fns;
}

}  // namespace ddae
