// A linear layer's weight and bias gradients in one cuBLASLt product (cuda::weightBiasGradBf16,
// FusedKernels.h): dW = dy^T x with CUBLASLT_EPILOGUE_BGRADB, whose epilogue sums the columns of
// dy over the product's reduction (the rows) while the product reads them. Training's first
// feed-forward layer (CellTransformer's TrainFeedForward): its bias gradient was a pass of its own
// over dh [R, 2048] (biasGradBf16: ~0.1 ms a layer at ~105k rows on the H200, 0.43 ms of a ~17 ms
// step), after the product that reads the same dh. Whether cuBLASLt's BGRADB kernels are as fast as
// the product without it for this shape (M 384, N 2048, K ~105k: split-K territory) is what `bench
// gemm-gelu --train` measures: slower on the H200 (call s20-1: the feed-forward's forward + backward
// 1.800 ms against 1.705), so opt-in (CellTransformer::setBiasGradInProduct).
//
// cuBLASLt: LibTorch's, found at run time (CublasLt.h); without it every call declines.
#include "inference/FusedKernels.h"

#if defined(ATLASCOPE_WITH_CUBLASLT)
#include "inference/CublasLt.h"

#include <cuda_runtime.h>
#include <map>
#include <mutex>
#include <tuple>
#endif

namespace atlascope::inference::cuda {

#if defined(ATLASCOPE_WITH_CUBLASLT)
namespace {

// A shape's descriptors and the heuristic's algorithm, found once (a CUDA graph's capture and its
// replays then run the same kernels). Column-major, as cuBLASLt sees them: D [K, N] (row-major dW
// [N, K]) = A [K, rows] (row-major x) times op(B) with B stored [N, rows] (row-major dy) and
// transposed; BGRADB: the bias gradient has D's N columns, summed over the reduction.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};

// `bias`: the first call's bias-gradient pointer, set before the heuristic (which infers from it the
// alignment it may assume; weightBiasGradBf16 takes only 256-byte aligned ones).
bool makePlan(Plan& p, cublasLtHandle_t handle, std::int64_t rows, int n, int k, std::int64_t workspaceBytes,
              std::uint16_t* bias) {
  const CublasLt& lt = cublasLt();
  const cublasOperation_t transA = CUBLAS_OP_N, transB = CUBLAS_OP_T;
  const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BGRADB;
  const cudaDataType_t biasType = CUDA_R_16BF;
  if (lt.descCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof(biasType)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)) != CUBLAS_STATUS_SUCCESS)
    return false;
  const auto r = static_cast<std::uint64_t>(rows);
  if (lt.layoutCreate(&p.a, CUDA_R_16BF, static_cast<std::uint64_t>(k), r, k) != CUBLAS_STATUS_SUCCESS ||
      lt.layoutCreate(&p.b, CUDA_R_16BF, static_cast<std::uint64_t>(n), r, n) != CUBLAS_STATUS_SUCCESS ||
      lt.layoutCreate(&p.d, CUDA_R_16BF, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(n), k) !=
          CUBLAS_STATUS_SUCCESS)
    return false;
  const auto offers = cublasLtOffers(handle, p.op, p.a, p.b, p.d, workspaceBytes, 1);
  if (offers.empty()) return false;
  p.algo = offers.front();
  return true;
}

} // namespace
#endif

std::int64_t weightBiasGradWorkspace() { return 64LL << 20; }

bool weightBiasGradAvailable() {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  return cublasLt().ok;
#else
  return false;
#endif
}

bool weightBiasGradBf16([[maybe_unused]] const std::uint16_t* dy, [[maybe_unused]] const std::uint16_t* x,
                        [[maybe_unused]] std::uint16_t* dw, [[maybe_unused]] std::uint16_t* db,
                        [[maybe_unused]] std::int64_t rows, [[maybe_unused]] int n, [[maybe_unused]] int k,
                        [[maybe_unused]] void* workspace, [[maybe_unused]] std::int64_t workspaceBytes,
                        [[maybe_unused]] void* stream) {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if (!dy || !x || !dw || !db || rows <= 0 || n <= 0 || k <= 0 || n % 8 != 0 || k % 8 != 0 || !aligned(dy) ||
      !aligned(x) || !aligned(dw) || reinterpret_cast<std::uintptr_t>(db) % 256 != 0 ||
      (workspaceBytes > 0 && !aligned(workspace)) || workspaceBytes < 0)
    return false;
  const CublasLt& lt = cublasLt();
  int device = 0;
  if (!lt.ok || cudaGetDevice(&device) != cudaSuccess) return false;
  const cublasLtHandle_t handle = cublasLtHandle(device);
  if (!handle) return false;
  static std::mutex mutex;
  static std::map<std::tuple<int, std::int64_t, int, int, std::int64_t>, Plan> plans;
  // Held through the call: the shared descriptor takes this call's bias pointer.
  const std::lock_guard<std::mutex> lock(mutex);
  Plan& p = plans[{device, rows, n, k, workspaceBytes}];
  if (!p.ok && !p.op) p.ok = makePlan(p, handle, rows, n, k, workspaceBytes, db);
  if (!p.ok) return false;
  if (lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof(db)) != CUBLAS_STATUS_SUCCESS) return false;
  const float one = 1.f, zero = 0.f;
  return lt.matmul(handle, p.op, &one, x, p.a, dy, p.b, &zero, dw, p.d, dw, p.d, &p.algo, workspace,
                   static_cast<std::size_t>(workspaceBytes),
                   static_cast<cudaStream_t>(stream)) == CUBLAS_STATUS_SUCCESS;
#else
  return false;
#endif
}

} // namespace atlascope::inference::cuda
