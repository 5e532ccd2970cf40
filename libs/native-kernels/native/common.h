// What every kernel family of the addon shares: reading N-API arguments, the BLAS found at run
// time, per-thread scratch memory, strided-shape helpers, the SIMD-clone attribute and the export
// table each family hands to addon.cc. All shapes are row-major, NHWC, HWIO.
//
// Every kernel takes Float32Arrays owned by JavaScript; outputs are written in place. Outputs that
// accumulate (conv input gradient, reductions) expect zero-filled arrays, which is what a fresh
// Float32Array is.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ddae {

// ---- N-API arguments (common.cc) ----------------------------------------------------------------
struct Args {
  napi_env env;
  std::vector<napi_value> v;
};

// Throws a JavaScript error (code DDAE_NATIVE); returns false so callers can `return Fail(...)`.
bool Fail(napi_env env, const std::string& msg);
bool GetArgs(napi_env env, napi_callback_info info, size_t want, Args* out);
// A Float32Array of any length: its data and length.
bool GetTypedF32(napi_env env, napi_value value, float** data, size_t* length, const char* what);
// A Float32Array of at least `need` elements.
bool F32(napi_env env, napi_value value, float** data, size_t need, const char* what);
// F32, or leaves *data untouched when the value is undefined or null.
bool OptionalF32(napi_env env, napi_value value, float** data, size_t need, const char* what);
// An Int32Array of non-negative values (exactly `need` of them unless need is 0).
bool I32s(napi_env env, napi_value value, std::vector<int64_t>* out, size_t need, const char* what);
bool Num(napi_env env, napi_value value, double* out, const char* what);
bool Bool(napi_env env, napi_value value, bool* out, const char* what);
napi_value Undefined(napi_env env);

// ---- BLAS, resolved at run time (blas.cc) -------------------------------------------------------
// Loads the first candidate (dlopen name) that has cblas_sgemm and sets BLAS and OpenMP threads
// (threads >= 1). Returns "" on success, else what each candidate failed with.
std::string LoadBlas(const std::vector<std::string>& candidates, int threads);
bool BlasLoaded();
const std::string& BlasLibrary();
const std::string& BlasConfig();
// BLAS threads as the library reports them (OpenMP's maximum when it has no such call).
int BlasThreads();
// Throws unless LoadBlas has succeeded.
bool RequireBlas(napi_env env);
// C[m,n] = op(A) op(B) + beta C, row-major.
void Gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);

// Single-threaded BLAS for the lifetime of the guard, for kernels that split work across OpenMP
// threads themselves (JS calls kernels one at a time).
struct SerialBlas {
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

// ---- memory and shapes ----------------------------------------------------------------------------
// This thread's scratch buffer, at least n floats, reused across calls (common.cc).
float* Scratch(size_t n);

// Offset, through `strides`, of row r of a row-major `shape` (rows: every axis but the last).
inline int64_t RowOffset(int64_t r, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t k = shape.size() - 1; k-- > 0;) {
    off += (r % shape[k]) * strides[k];
    r /= shape[k];
  }
  return off;
}

// Elements spanned by `shape` walked through `strides` (the last index reached, plus one).
inline int64_t Extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t i = 0; i < shape.size(); i++)
    if (shape[i] > 0) last += (shape[i] - 1) * strides[i];
  return last + 1;
}

// Elementwise loops compiled twice on x86-64: for the build's baseline and for AVX2, chosen at
// load time by what the CPU supports (GCC function multi-versioning).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DDAE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DDAE_SIMD_CLONES
#endif

// ---- exports ----------------------------------------------------------------------------------------
// One JavaScript function of the addon.
struct Export {
  const char* name;
  napi_callback fn;
};

// Each kernel family's functions (one .cc file each); addon.cc exports them all.
std::span<const Export> BlasExports();
std::span<const Export> Conv2dExports();
std::span<const Export> GroupNormExports();
std::span<const Export> BinaryExports();
std::span<const Export> ReduceExports();
std::span<const Export> CopyExports();
std::span<const Export> SoftmaxExports();
std::span<const Export> AdamEmaExports();

}  // namespace ddae
