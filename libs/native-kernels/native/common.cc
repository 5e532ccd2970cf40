// N-API argument helpers and per-thread scratch memory, shared by every kernel family.
#include "common.h"

#include <memory>

namespace ddae {
namespace {

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

}  // namespace

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

bool GetTypedF32(napi_env env, napi_value value, float** data, size_t* length, const char* what) {
  return GetTyped(env, value, napi_float32_array, data, length, what);
}

bool F32(napi_env env, napi_value value, float** data, size_t need, const char* what) {
  size_t length = 0;
  if (!GetTyped(env, value, napi_float32_array, data, &length, what)) return false;
  if (length < need) return Fail(env, std::string(what) + ": " + std::to_string(length) + " elements, need " + std::to_string(need));
  return true;
}

bool OptionalF32(napi_env env, napi_value value, float** data, size_t need, const char* what) {
  napi_valuetype t;
  napi_typeof(env, value, &t);
  if (t == napi_undefined || t == napi_null) return true;
  return F32(env, value, data, need, what);
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

napi_value Undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

float* Scratch(size_t n) {
  thread_local std::unique_ptr<float[]> buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf.reset(new float[n]);
    cap = n;
  }
  return buf.get();
}

}  // namespace ddae
