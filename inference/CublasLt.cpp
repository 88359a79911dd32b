// cuBLASLt's entry points from the library LibTorch loaded (CublasLt.h says why not linked).
#include "inference/CublasLt.h"

#include <dlfcn.h>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>

namespace atlascope::inference::cuda {

const CublasLt& cublasLt() {
  static const CublasLt lt = [] {
    CublasLt l;
    // LibTorch's (loaded with it); else one of the header's major version from the search path.
    const std::string name = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) return l;
    auto bind = [h](auto& f, const char* symbol) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(h, symbol));
      return f != nullptr;
    };
    l.ok = bind(l.create, "cublasLtCreate") && bind(l.descCreate, "cublasLtMatmulDescCreate") &&
           bind(l.descDestroy, "cublasLtMatmulDescDestroy") && bind(l.descSet, "cublasLtMatmulDescSetAttribute") &&
           bind(l.layoutCreate, "cublasLtMatrixLayoutCreate") && bind(l.layoutDestroy, "cublasLtMatrixLayoutDestroy") &&
           bind(l.preferenceCreate, "cublasLtMatmulPreferenceCreate") &&
           bind(l.preferenceSet, "cublasLtMatmulPreferenceSetAttribute") &&
           bind(l.preferenceDestroy, "cublasLtMatmulPreferenceDestroy") &&
           bind(l.heuristic, "cublasLtMatmulAlgoGetHeuristic") && bind(l.matmul, "cublasLtMatmul");
    return l;
  }();
  return lt;
}

cublasLtHandle_t cublasLtHandle(int device) {
  static std::mutex mutex;
  static std::map<int, cublasLtHandle_t> handles;
  if (!cublasLt().ok) return nullptr;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cublasLtHandle_t h = nullptr;
  if (cublasLt().create(&h) != CUBLAS_STATUS_SUCCESS) return nullptr;
  handles.emplace(device, h);
  return h;
}

} // namespace atlascope::inference::cuda
