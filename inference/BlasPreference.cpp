#include "inference/BlasPreference.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <mutex>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ATLASCOPE_BLAS_PREFERENCE 1
#endif

namespace atlascope::inference {

namespace {
std::mutex gMutex;
int gHolders = 0;
#ifdef ATLASCOPE_BLAS_PREFERENCE
at::BlasBackend gBefore = at::BlasBackend::Cublas;
#endif
} // namespace

PreferCublasLt::PreferCublasLt([[maybe_unused]] bool on) {
#ifdef ATLASCOPE_BLAS_PREFERENCE
  if (!on) return;
  std::lock_guard<std::mutex> lock(gMutex);
  if (gHolders == 0) {
    gBefore = at::globalContext().blasPreferredBackend();
    try {
      at::globalContext().setBlasPreferredBackend(at::BlasBackend::Cublaslt);
    } catch (const c10::Error&) { // a LibTorch built without cuBLASLt: its products as they were
      return;
    }
  }
  ++gHolders;
  held_ = true;
#endif
}

PreferCublasLt::~PreferCublasLt() {
#ifdef ATLASCOPE_BLAS_PREFERENCE
  if (!held_) return;
  std::lock_guard<std::mutex> lock(gMutex);
  if (--gHolders == 0) at::globalContext().setBlasPreferredBackend(gBefore);
#endif
}

bool PreferCublasLt::active() {
#ifdef ATLASCOPE_BLAS_PREFERENCE
  return at::globalContext().blasPreferredBackend() == at::BlasBackend::Cublaslt;
#else
  return false;
#endif
}

} // namespace atlascope::inference
