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

std::vector<cublasLtMatmulAlgo_t> cublasLtOffers(cublasLtHandle_t handle, cublasLtMatmulDesc_t op,
                                                 cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                 cublasLtMatrixLayout_t d, std::int64_t workspaceBytes, int most) {
  std::vector<cublasLtMatmulAlgo_t> offers;
  const CublasLt& lt = cublasLt();
  cublasLtMatmulPreference_t pref = nullptr;
  if (!lt.ok || most < 1 || workspaceBytes < 0 || lt.preferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return offers;
  const auto bytes = static_cast<std::uint64_t>(workspaceBytes);
  const std::uint32_t align = 16;
  bool ok =
      lt.preferenceSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof(bytes)) == CUBLAS_STATUS_SUCCESS;
  for (const auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    ok = ok && lt.preferenceSet(pref, attribute, &align, sizeof(align)) == CUBLAS_STATUS_SUCCESS;
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(most));
  int found = 0;
  ok = ok && lt.heuristic(handle, op, a, b, d, d, pref, most, results.data(), &found) == CUBLAS_STATUS_SUCCESS;
  lt.preferenceDestroy(pref);
  for (int i = 0; ok && i < found && i < most; ++i)
    if (results[static_cast<std::size_t>(i)].state == CUBLAS_STATUS_SUCCESS)
      offers.push_back(results[static_cast<std::size_t>(i)].algo);
  return offers;
}

} // namespace atlascope::inference::cuda
