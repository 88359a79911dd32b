// The feed-forward's first layer without gradients, GELU(x W^T + b), as one CUTLASS GEMM whose
// epilogue adds the bias and applies the erf GELU (see gemmBiasGeluBf16 in FusedKernels.h).
// cuBLASLt's GELU epilogue is the tanh approximation, so the model's erf GELU ran as a pass of
// its own over the [R, 2048] hidden activations: written, read and written again, 17% of an
// embedding batch on the H200. Built only with CUTLASS's headers (ATLASCOPE_CUTLASS_DIR) for
// sm_90a (Hopper's wgmma and TMA).
#include "inference/FusedKernels.h"
#include "inference/GemmEpilogues.cuh"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cuda_runtime.h>
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/epilogue/thread/activation.h>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>
#include <type_traits>

namespace atlascope::inference::cuda::gemm_gelu {

using namespace cute;

// `alpha`: null, or the per-column scales of a PerColAlpha kernel (float32 [N]).
template <class G>
typename G::Gemm::Arguments arguments(const void* x, const void* w, const void* bias, void* out, std::int64_t M, int N,
                                      int K, int device, const float* alpha = nullptr) {
  using Kernel = typename G::Kernel;
  using Gemm = typename G::Gemm;
  const auto sa = cutlass::make_cute_packed_stride(typename Kernel::StrideA{}, {static_cast<int>(M), K, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename Kernel::StrideB{}, {N, K, 1});
  const auto sd = cutlass::make_cute_packed_stride(typename Kernel::StrideD{}, {static_cast<int>(M), N, 1});
  cutlass::KernelHardwareInfo hw;
  hw.device_id = device;
  hw.sm_count = smCount(device);
  typename Gemm::Arguments a{
      cutlass::gemm::GemmUniversalMode::kGemm,
      {static_cast<int>(M), N, K, 1},
      {static_cast<const typename Kernel::ElementA*>(x), sa, static_cast<const typename Kernel::ElementB*>(w), sb},
      {{}, nullptr, sd, static_cast<Element*>(out), sd},
      hw};
  if constexpr (G::kBiasThenAct) {
    // BiasThenAct's tree: {{acc, bias, plus}, activation}.
    a.epilogue.thread = {{{}, {static_cast<const Element*>(bias), Element(0), {}}, {}}, {}};
  } else {
    a.epilogue.thread.alpha = 1.f;
    a.epilogue.thread.beta = 0.f;
    a.epilogue.thread.bias_ptr = static_cast<const Element*>(bias);
    a.epilogue.thread.alpha_ptr = alpha;
  }
  return a;
}

template <class G>
bool run(const void* x, const void* w, const std::uint16_t* bias, std::uint16_t* out, std::int64_t M, int N, int K,
         void* workspace, cudaStream_t stream, int device, const float* alpha = nullptr) {
  const auto a = arguments<G>(x, w, bias, out, M, N, K, device, alpha);
  typename G::Gemm gemm;
  if (gemm.can_implement(a) != cutlass::Status::kSuccess) return false;
  if (gemm.initialize(a, workspace, stream) != cutlass::Status::kSuccess) return false;
  return gemm.run(stream) == cutlass::Status::kSuccess;
}

// The largest workspace any of the kernels Gs needs for an M x N x K product (one buffer serves all).
template <class... Gs> std::int64_t workspaceOf(std::int64_t M, int N, int K, int device) {
  return std::max({static_cast<std::int64_t>(
      Gs::Gemm::get_workspace_size(arguments<Gs>(nullptr, nullptr, nullptr, nullptr, M, N, K, device)))...});
}

} // namespace atlascope::inference::cuda::gemm_gelu

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
// x W^T + b, then the activation, as an epilogue tree of its own (the default kernels'): CUTLASS's
// LinCombPerColBiasEltAct computes beta C + (alpha acc + b), and with no C it still adds beta * 0
// to every value, one instruction of the ~15 a value this epilogue issues; alpha is folded into
// the bias's addition there, so acc + b is the same sum. With GeluExp2Paired: `bench gemm-gelu`
// (H200, 393,216 x 384 -> 2,048) 1.536-1.627 ms against 1.722-1.784 for the kernel before (calls 5
// and 6 of docs/bench/gpu-embed-gelu-epilogue-2026-12-03.jsonl). Measured there and not kept: the
// pre-activation rounded with satfinite (+-inf to +-max) so that |x| needs no clamp at 16, 1.571
// against 1.536 (the clamp is one min with |x| as its operand; without it |x| still costs one).
template <template <class> class Act, class CtaTile>
using BiasThenAct = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<Act, Element, float, cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90EVT<
        cutlass::epilogue::fusion::Sm90Compute<cutlass::plus, float, float, cutlass::FloatRoundStyle::round_to_nearest>,
        cutlass::epilogue::fusion::Sm90AccFetch,
        cutlass::epilogue::fusion::Sm90RowBroadcast<0, CtaTile, Element, float, Stride<_0, _1, int64_t>, kAlign>>>;

// In: the inputs' element (bf16, or e4m3: 16 a 16-byte access, k-steps of 128). PerColAlpha:
// GELU(alpha_n (x W^T)_mn + b_n) with a float32 alpha per output column (the FP8 layer's scales).
// LinComb: CUTLASS's linear-combination epilogue (the kernels before BiasThenAct; the FP8 ones, whose
// alpha is per column, keep it).
template <template <class> class Gelu, class In = Element,
          class Schedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative, bool PerColAlpha = false,
          bool LinComb = PerColAlpha>
struct GemmOf {
  static_assert(LinComb || !PerColAlpha, "BiasThenAct has no alpha: per-column scales need the linear combination");
  static constexpr bool kBiasThenAct = !LinComb;
  static constexpr int kAlignIn = 16 / sizeof(In);
  using TileShape = Shape<_128, _256, Int<64 * 2 / sizeof(In)>>;
  using ClusterShape = Shape<_2, _1, _1>;
  using Fusion = std::conditional_t<
      PerColAlpha,
      cutlass::epilogue::fusion::PerColLinCombPerColBiasEltAct<Gelu, Element, float, Element, Element, float>,
      std::conditional_t<
          LinComb, cutlass::epilogue::fusion::LinCombPerColBiasEltAct<Gelu, Element, float, Element, Element, float>,
          BiasThenAct<Gelu, TileShape>>>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, cutlass::layout::RowMajor, kAlign, Element,
      cutlass::layout::RowMajor, kAlign, cutlass::epilogue::TmaWarpSpecializedCooperative, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, In, cutlass::layout::RowMajor, kAlignIn, In,
      cutlass::layout::ColumnMajor, kAlignIn, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      Schedule>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
};
// The default: BiasThenAct with the pre-activations rounded in pairs (GeluExp2Paired). GemmExp2LinComb:
// the kernel before both (`--lincomb-gelu`, for comparisons; the same bits). H200, `bench gemm-gelu`:
// see docs/performance/embedding.md.
using GemmExp2 = GemmOf<GeluExp2Paired>;
using GemmExp2LinComb = GemmOf<GeluExp2, Element, cutlass::gemm::KernelTmaWarpSpecializedCooperative, false, true>;
using GemmErff = GemmOf<GeluErff, Element, cutlass::gemm::KernelTmaWarpSpecializedCooperative, false, true>;
// Without GELU (bench gemm-gelu's "cutlass_bias"): the same tree; 1.16-1.21 ms in calls 5-7, as the
// linear combination's 1.157-1.180 before (the "without GELU" figures in the comments here).
using GemmBiasOnly = GemmOf<BiasOnly>;

// The FP8 first feed-forward layer (gemmBiasGeluE4m3): x and W in e4m3, one byte each and 128-byte
// k-steps, a scale per output column, CUTLASS's FP8 main loop with fast accumulation (no periodic
// promotion of the tensor cores' partial sums to float32; K is 384), GELU's tanh form (geluTanh:
// the path is approximate anyway, and its epilogue's instructions are what this kernel waits on);
// GemmE4m3Exp2 with the bf16 path's exact GELU, for comparisons (`--fp8-erf-gelu`). H200, `bench
// gemm-gelu`, 393,216 x 384 -> 2,048: 1.025 ms with the tanh form, 1.310 with the exact one, 1.560
// for bf16 (docs/bench/gpu-fp8-tanh-gelu-2026-12-02.jsonl). Before the scales, the cooperative main
// loop with promotion took 2.20 ms (it spills 858 bytes; gpu-gemm-gelu-fp8-timing-2026-12-02.jsonl).
using GemmE4m3 =
    GemmOf<GeluTanh, cutlass::float_e4m3_t, cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8FastAccum, true>;
using GemmE4m3Exp2 =
    GemmOf<GeluExp2, cutlass::float_e4m3_t, cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8FastAccum, true>;

// Epilogues tried beside this one on the H200 (`bench gemm-gelu --iterations 50`, 393,216 x 384 ->
// 2,048, each against this kernel in the same call), none faster, all removed (the register-store
// ones in git at 4821192, GemmGeluDirect.cu; the other two at 73f76d4):
// - Bf16 pairs stored straight from the accumulators' registers (no shared memory, no barrier):
//   cooperative 128 x 256 2.674 ms, ping-pong 64 x 256 3.726 and 128 x 128 3.356 against 1.601
//   (2.052, 2.559 and 2.136 against 1.185 without GELU). Nsight Compute: a third of their warps'
//   stalls waited on the bias loads from global memory; a warp's 4-byte stores wrote half-sectors.
// - The GELU on the loader's three idle warps (GemmGeluOverlap.cu): the product warp groups stage
//   each tile's bias-added bf16 values in a 64 KB swizzled tile and go on to the next tile:
//   1.840-1.847 ms against 1.588-1.606 (1.311 against 1.157-1.180 without GELU). Three warps
//   issue the GELU on a third of their cycles; the product warp groups waited for them 40% of the
//   time. With a fourth warp group and TMA stores (not committed): 1.689 against 1.601; end to
//   end 175,049 cells/s against 175,074-178,293.
// - The GELU of one tile between the next tile's k-steps on the product warps themselves, two
//   accumulators a thread, as FlashAttention-3 overlaps its softmax (GemmGeluPipelined.cu):
//   1.865-2.001 ms against 1.564-1.622 (1.498-1.563 against 1.143-1.226 without GELU). Two
//   accumulators fit only at 128 x 128 tiles, which cost ~0.3 ms without GELU (twice the tiles,
//   each with its barriers and pipeline fill), and the GELU still added ~0.36 ms: its
//   instructions filled the schedulers (Nsight Compute: the product warps waiting on other warps'
//   issue and the math pipes). Clusters of 2 x 2: slower again (2.186).
// The GELU's ~17 instructions a value cost about the same issue time wherever they run; what is
// left is fewer of them (docs/bench/gpu-gemm-gelu-epilogue-2026-12-01.jsonl,
// docs/bench/gpu-gemm-gelu-pipelined-2026-12-02.jsonl).

} // namespace

bool gemmBiasGeluBuilt() { return true; }

std::int64_t gemmBiasGeluWorkspace(std::int64_t M, int N, int K) {
  if (M <= 0 || M >= (1LL << 31)) return -1;
  int device = 0;
  cudaGetDevice(&device);
  // One workspace for every kernel.
  return workspaceOf<GemmErff, GemmExp2, GemmExp2LinComb, GemmBiasOnly, GemmE4m3, GemmE4m3Exp2>(M, N, K, device);
}

bool gemmBiasGeluBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                      std::int64_t M, int N, int K, void* workspace, void* stream, bool erff, bool linComb) {
  if (!fits(x, w, bias, out, M, N, K)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  return erff      ? run<GemmErff>(x, w, bias, out, M, N, K, workspace, s, device)
         : linComb ? run<GemmExp2LinComb>(x, w, bias, out, M, N, K, workspace, s, device)
                   : run<GemmExp2>(x, w, bias, out, M, N, K, workspace, s, device);
}

bool gemmBiasBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                  std::int64_t M, int N, int K, void* workspace, void* stream) {
  if (!fits(x, w, bias, out, M, N, K)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  return run<GemmBiasOnly>(x, w, bias, out, M, N, K, workspace, static_cast<cudaStream_t>(stream), device);
}

bool gemmBiasGeluE4m3(const std::uint8_t* x, const std::uint8_t* w, const float* alpha, const std::uint16_t* bias,
                      std::uint16_t* out, std::int64_t M, int N, int K, void* workspace, void* stream, bool exp2) {
  if (!fits(x, w, bias, out, M, N, K) || K % GemmE4m3::kAlignIn != 0 || N % 4 != 0 || !alpha ||
      reinterpret_cast<std::uintptr_t>(alpha) % 16 != 0)
    return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  return exp2 ? run<GemmE4m3Exp2>(x, w, bias, out, M, N, K, workspace, s, device, alpha)
              : run<GemmE4m3>(x, w, bias, out, M, N, K, workspace, s, device, alpha);
}

} // namespace atlascope::inference::cuda
