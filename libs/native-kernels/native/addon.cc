// The addon's entry point: init() (the BLAS and the thread count) and every kernel family's
// functions as one module. A new family is one .cc file exporting `<Family>Exports()` (declared in
// common.h), one line below and one line in binding.gyp.
#include <omp.h>

#include <string>
#include <vector>

#include "common.h"
#include "conv2d.h"

namespace ddae {
namespace {

// init(candidates: string[], threads: number) -> { library, blasConfig, threads, directConv }
napi_value Init(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, 2, &a)) return nullptr;
  double threads = 0;
  if (!Num(env, a.v[1], &threads, "threads")) return nullptr;
  uint32_t count = 0;
  if (napi_get_array_length(env, a.v[0], &count) != napi_ok) return Fail(env, "candidates: expected an array"), nullptr;
  std::vector<std::string> candidates;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_get_element(env, a.v[0], i, &item);
    char name[1024];
    size_t len = 0;
    if (napi_get_value_string_utf8(env, item, name, sizeof(name), &len) != napi_ok) continue;
    candidates.emplace_back(name, len);
  }
  const std::string error = LoadBlas(candidates, threads >= 1 ? static_cast<int>(threads) : 0);
  if (!error.empty()) return Fail(env, error), nullptr;
  napi_value result, lib, cfg, th, direct;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, DirectConvEnabled() ? DirectConvIsa() : "off", NAPI_AUTO_LENGTH, &direct);
  napi_set_named_property(env, result, "directConv", direct);
  napi_create_string_utf8(env, BlasLibrary().c_str(), NAPI_AUTO_LENGTH, &lib);
  napi_create_string_utf8(env, BlasConfig().c_str(), NAPI_AUTO_LENGTH, &cfg);
  napi_create_int32(env, BlasThreads(), &th);
  napi_set_named_property(env, result, "library", lib);
  napi_set_named_property(env, result, "blasConfig", cfg);
  napi_set_named_property(env, result, "threads", th);
  return result;
}

napi_value Register(napi_env env, napi_value exports) {
  const Export init[] = {{"init", Init}};
  for (const auto family : {std::span<const Export>(init), BlasExports(), Conv2dExports(), GroupNormExports(), BinaryExports(), ReduceExports(),
                            CopyExports(), SoftmaxExports(), AdamEmaExports()}) {
    for (const auto& f : family) {
      napi_value v;
      napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
      napi_set_named_property(env, exports, f.name, v);
    }
  }
  return exports;
}

}  // namespace
}  // namespace ddae

NAPI_MODULE(NODE_GYP_MODULE_NAME, ddae::Register)
