#pragma once
// The cuBLASLt LibTorch loaded, found at run time (dlopen with RTLD_NOLOAD, then dlsym): one library
// of that name in the process, the version LibTorch was built against. Linked to the toolkit's
// instead, the GPU machine would load whichever of the two its search path finds first for both
// (the same soname), perhaps older than the one LibTorch needs. Only the toolkit's header is used
// (ATLASCOPE_WITH_CUBLASLT); without it, or without a loaded cuBLASLt of its major version, `ok` is
// false and every caller declines. Shared by WeightBiasGradient.cpp and Matmul.cpp.
#include <cstdint>
#include <cublasLt.h>
#include <vector>

namespace atlascope::inference::cuda {

// The cuBLASLt functions Atlascope calls, from the library already in the process.
struct CublasLt {
  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtMatmulDescCreate) descCreate = nullptr;
  decltype(&cublasLtMatmulDescDestroy) descDestroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) descSet = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layoutCreate = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) layoutDestroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) preferenceCreate = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) preferenceSet = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) preferenceDestroy = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
  bool ok = false;
};

const CublasLt& cublasLt();

// One cuBLASLt handle per device, made on first use and kept for the process (as ATen's); null
// where cuBLASLt is missing or fails.
cublasLtHandle_t cublasLtHandle(int device);

// The heuristic's usable offers for a described product D = op(A) op(B) (C = D), at most `most`, in
// its order, with up to `workspaceBytes` of workspace and every operand 16-byte aligned (the
// callers' pointers, views of the caching allocator's blocks; the heuristic assumes 256 by
// default). Empty where the heuristic fails or offers none.
std::vector<cublasLtMatmulAlgo_t> cublasLtOffers(cublasLtHandle_t handle, cublasLtMatmulDesc_t op,
                                                 cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                 cublasLtMatrixLayout_t d, std::int64_t workspaceBytes, int most);

} // namespace atlascope::inference::cuda
