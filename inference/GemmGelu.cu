// The feed-forward's first layer without gradients, GELU(x W^T + b), as one CUTLASS GEMM whose
// epilogue adds the bias and applies the erf GELU (see gemmBiasGeluBf16 in FusedKernels.h).
// cuBLASLt's GELU epilogue is the tanh approximation, so the model's erf GELU ran as a pass of
// its own over the [R, 2048] hidden activations: written, read and written again, 17% of an
// embedding batch on the H200. Built only with CUTLASS's headers (ATLASCOPE_CUTLASS_DIR) for
// sm_90a (Hopper's wgmma and TMA). This file: the kernel with CUTLASS's TMA-store epilogue
// (variant 0, the default); GemmGeluOverlap.cu: one whose epilogue runs on warps of its own.
#include "inference/FusedKernels.h"
#include "inference/GemmGeluKernels.cuh"

namespace atlascope::inference::cuda {

using namespace gemm_gelu;

namespace {

// A = x [M, K] row-major; B = W [N, K] row-major, i.e. K x N column-major (PyTorch's Linear);
// D = [M, N] row-major; no C. A 128 x 256 tile per pair of consumer warp groups (cooperative),
// clusters of 2 along M sharing W's tile by TMA multicast. With erff the epilogue cost about as
// much as the 6-step main loop (K 384): 8.2 ms per embedding batch for the 8 layers, 6.5 with
// geluExp2. Measured and not kept (H200, 393,216 x 384 -> 2048, `bench gemm-gelu`): an epilogue
// subtile of 128 x 64 (1.671 ms against 1.627), tiles of 256 x 128 in clusters of 1 x 2 (1.722),
// no cluster (1.643), clusters of 2 along N sharing x's tile as cuBLASLt's kernel for these
// shapes (1.764 against 1.697 with GELU though 1.216 against 1.272 without; end to end 165,353 and
// 165,923 against 165,763 and 168,359 cells/s); the ping-pong schedule, one warp group's epilogue beside the other's
// products, measured slower end to end with either GELU: with erff (4M cells on the H200, tiles
// 128 x 128 140,970 and 64 x 256 139,856 cells/s against 155,756 for this one, same call), and
// with geluExp2 (128 x 128: model phase 24.5 s against 23.2 s, same call): a tile's epilogue on 4
// warps instead of 8 runs at half the rate. Again as kernels, with geluExp2 (`bench gemm-gelu`,
// 2026-12-01): ping-pong 64 x 256 1.975 ms and 128 x 128 1.875 against 1.613 for this one, and
// ping-pong 64 x 256 without GELU 1.235 against 1.202: its products alone are slower already.
template <template <class> class Gelu> struct GemmOf {
  using TileShape = Shape<_128, _256, _64>;
  using ClusterShape = Shape<_2, _1, _1>;
  using Fusion = cutlass::epilogue::fusion::LinCombPerColBiasEltAct<Gelu, Element, float, Element, Element, float>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, cutlass::layout::RowMajor, kAlign, Element,
      cutlass::layout::RowMajor, kAlign, cutlass::epilogue::TmaWarpSpecializedCooperative, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, cutlass::layout::RowMajor, kAlign, Element,
      cutlass::layout::ColumnMajor, kAlign, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
};
using GemmErff = GemmOf<GeluErff>;
using GemmExp2 = GemmOf<GeluExp2>;
using GemmBiasOnly = GemmOf<BiasOnly>;

// The kernels by variant (gemmGeluVariantName): 0 GemmOf, 1 GemmGeluOverlap.cu's, 2
// GemmGeluPipelined.cu's. Measured and
// removed (H200, `bench gemm-gelu`, 2026-12-01, 50 iterations): epilogues that store bf16 pairs
// straight from the accumulators' registers, no shared memory, no barrier: cooperative 128 x 256
// 2.674 ms, ping-pong 64 x 256 3.726 and 128 x 128 3.356 against 1.601 for GemmOf (2.052, 2.559
// and 2.136 against 1.185 without GELU); Nsight Compute: a third of their warps' stalls wait on
// the bias loads from global memory, and a warp's 4-byte stores write half-sectors of 8 rows.
constexpr const char* kVariantNames[] = {
    "cooperative 128x256, TMA-store epilogue",
    "cooperative 128x256, epilogue on the loader's idle warps",
    "cooperative 128x128, epilogue between the next tile's k-steps",
};
constexpr int kVariants = static_cast<int>(sizeof(kVariantNames) / sizeof(kVariantNames[0]));

} // namespace

bool gemmBiasGeluBuilt() { return true; }

const char* gemmGeluVariantName(int variant) {
  return variant >= 0 && variant < kVariants ? kVariantNames[variant] : nullptr;
}

std::int64_t gemmBiasGeluWorkspace(std::int64_t M, int N, int K) {
  if (M <= 0 || M >= (1LL << 31)) return -1;
  int device = 0;
  cudaGetDevice(&device);
  // One workspace for every kernel.
  return workspaceOf<GemmErff, GemmExp2, GemmBiasOnly>(M, N, K, device); // variants 1 and 2 need none
}

bool gemmBiasGeluBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                      std::int64_t M, int N, int K, void* workspace, void* stream, bool erff, int variant) {
  if (!fits(x, w, bias, out, M, N, K) || !gemmGeluVariantName(variant)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  if (erff) return run<GemmErff>(x, w, bias, out, M, N, K, workspace, s, device);
  if (variant == 0) return run<GemmExp2>(x, w, bias, out, M, N, K, workspace, s, device);
  return variant == 1 ? runOverlap(false, x, w, bias, out, M, N, K, s, device)
                      : runPipelined(false, x, w, bias, out, M, N, K, s, device);
}

bool gemmBiasBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                  std::int64_t M, int N, int K, void* workspace, void* stream, int variant) {
  if (!fits(x, w, bias, out, M, N, K) || !gemmGeluVariantName(variant)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  if (variant == 0) return run<GemmBiasOnly>(x, w, bias, out, M, N, K, workspace, s, device);
  return variant == 1 ? runOverlap(true, x, w, bias, out, M, N, K, s, device)
                      : runPipelined(true, x, w, bias, out, M, N, K, s, device);
}

} // namespace atlascope::inference::cuda
