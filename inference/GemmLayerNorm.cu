// An encoder layer's product and the LayerNorm after it as one CUTLASS GEMM (see
// gemmAddLayerNormBf16 in FusedKernels.h): out = LN(r + (x W^T + b)) for rows of 384, the
// released width. Before, the product wrote its [R, 384] output, and the add + LayerNorm kernel
// read it back with the residual and wrote the result: 8 of its calls per embedding batch, 1.6 ms
// of ~18.5 on the H200, at the memory's speed. Here a tile holds whole rows (128 x 384), so the
// epilogue adds the bias and the residual and normalises the rows from the accumulators' registers:
// the product's output never reaches memory. Built with CUTLASS's headers for sm_90a, as
// GemmGelu.cu.
//
// The same numbers as the two kernels, bit for bit: the product rounded to bf16 with its bias (as
// cuBLASLt's bias epilogue writes it), the sum with the residual rounded to bf16 (as the add +
// LayerNorm kernel reads both), and the row statistics added in that kernel's order. There a warp
// holds a row, lane l the column pairs l + 32 i (i = 0..5), summed in i order, then a butterfly
// over the lanes (xor 16, 8, 4, 2, 1). Here the row's column pairs p = 4 j + t lie with the four
// threads of a quad (t, j = 0..47): lane l's pairs are thread t = l % 4's j = l / 4 + 8 i, so a
// thread forms the sums of its 8 lanes in that order, the first three butterfly steps (lanes
// differing in j) are additions within the thread, the last two shuffles within the quad.
// Floating-point addition commutes: each step's pair holds the same value as the warp's lanes.
#include "inference/FusedKernels.h"
#include "inference/GemmEpilogues.cuh"

#include <algorithm>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/detail.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>
#include <type_traits>

namespace atlascope::inference::cuda::gemm_gelu {

using namespace cute;

namespace {

constexpr int kRowWidth = 384;

__device__ __forceinline__ float2 pairOf(const Element* p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}
// A pair rounded to bf16 and back (one conversion of the pair: the same rounding per value).
__device__ __forceinline__ float2 rounded(float a, float b) { return __bfloat1622float2(__floats2bfloat162_rn(a, b)); }

// The warp-wide sum of the add + LayerNorm kernel from a thread's 8 lanes' sums s (lane 4 jm + t
// of the row's virtual warp, t this thread's place in its quad): see the file's comment.
__device__ __forceinline__ float rowSum(const float (&s)[8]) {
  float a[4], b[2];
#pragma unroll
  for (int jm = 0; jm < 4; ++jm) a[jm] = s[jm] + s[jm + 4]; // xor 16
#pragma unroll
  for (int jm = 0; jm < 2; ++jm) b[jm] = a[jm] + a[jm + 2]; // xor 8
  float c = b[0] + b[1];                                    // xor 4
  c += __shfl_xor_sync(0xffffffffu, c, 2);
  c += __shfl_xor_sync(0xffffffffu, c, 1);
  return c;
}

struct ProductNormEpilogue {
  using ElementC = Element;
  using ElementD = Element;
  using StrideC = cutlass::detail::TagToStrideC_t<cutlass::layout::RowMajor>;
  using StrideD = StrideC;
  using ThreadEpilogueOp = void;
  struct SharedStorage {};
  struct Arguments {
    const Element* bias = nullptr;     // [384], the product's
    const Element* residual = nullptr; // [M, 384]
    const Element* gamma = nullptr;    // [384], LayerNorm's weight
    const Element* beta = nullptr;     // [384], its bias
    Element* d = nullptr;              // [M, 384]
    float eps = 1e-5f;
  };
  using Params = Arguments;

  template <class ProblemShape>
  static constexpr Params to_underlying_arguments(ProblemShape const&, Arguments const& a, void*) {
    return a;
  }
  template <class ProblemShape> static std::size_t get_workspace_size(ProblemShape const&, Arguments const&) {
    return 0;
  }
  template <class ProblemShape>
  static cutlass::Status initialize_workspace(ProblemShape const&, Arguments const&, void*, cudaStream_t,
                                              cutlass::CudaHostAdapter* = nullptr) {
    return cutlass::Status::kSuccess;
  }
  template <class ProblemShape> static bool can_implement(ProblemShape const& shape, Arguments const& a) {
    auto aligned = [](const void* p) { return p != nullptr && reinterpret_cast<std::uintptr_t>(p) % 4 == 0; };
    return get<1>(shape) == kRowWidth && aligned(a.bias) && aligned(a.residual) && aligned(a.gamma) &&
           aligned(a.beta) && aligned(a.d);
  }

  CUTLASS_HOST_DEVICE explicit ProductNormEpilogue(Params const& p) : params(p) {}
  CUTLASS_DEVICE bool is_source_needed() { return false; }

  template <class ProblemShapeMNKL, class BlockShapeMNK, class BlockCoordMNKL, class FrgEngine, class FrgLayout,
            class TiledMma, class ResidueMNK>
  CUTLASS_DEVICE void operator()(ProblemShapeMNKL, BlockShapeMNK blockShape, BlockCoordMNKL blockCoord,
                                 cute::Tensor<FrgEngine, FrgLayout>& acc, TiledMma tiledMma, ResidueMNK residue,
                                 int thread, char*) {
    static_assert(is_static<BlockShapeMNK>::value, "static tile shape");
    static_assert(decltype(size(acc))::value == 2 * kRowWidth / 4, "two rows of 384 over a quad per thread");
    const auto mBlock = get<0>(blockCoord);
    const std::int64_t m0 = static_cast<std::int64_t>(mBlock) * size<0>(blockShape);
    // Each accumulator's (row, column) within the tile: the MMA's own partition of the tile.
    const Tensor coords = tiledMma.get_thread_slice(thread).partition_C(make_identity_tensor(take<0, 2>(blockShape)));
    const int rows = static_cast<int>(get<0>(residue));
    constexpr float kInvCols = 1.0f / kRowWidth;
    // Accumulator (value) index of column group j (8 columns, 0..47) and row half r: wgmma's
    // m64n192 fragment (2 columns, 2 rows, 24 groups), then the tile's two n192 halves.
    auto at = [](int j, int r) { return 2 * r + 4 * (j % 24) + 96 * (j / 24); };
    // The residual rows' 128-byte lines asked of L2 up front (a quad's threads share a row: thread
    // t the lines t and t + 4 of each of its two rows), so that the first pass's loads do not wait
    // on DRAM one after another: the accumulators leave few registers for loads in flight.
    const int t = (get<1>(coords(0)) / 2) % 4;
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      const int m = get<0>(coords(at(0, r)));
      if (m < rows)
        for (int line = t; line < kRowWidth * 2 / 128; line += 4)
          asm volatile("prefetch.global.L2 [%0];" ::"l"(params.residual + (m0 + m) * kRowWidth + line * 64));
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      const int m = get<0>(coords(at(0, r)));
      const bool valid = m < rows;
      const std::int64_t row = (m0 + m) * kRowWidth;
      // v = bf16(r + bf16(x W^T + b)), in place of the accumulators.
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < 48; ++j) {
        const int i = at(j, r), col = get<1>(coords(i));
        const float2 b = pairOf(params.bias + col);
        const float2 y = rounded(acc(i) + b.x, acc(i + 1) + b.y);
        const float2 x = valid ? pairOf(params.residual + row + col) : make_float2(0.f, 0.f);
        const float2 v = rounded(x.x + y.x, x.y + y.y);
        acc(i) = v.x;
        acc(i + 1) = v.y;
      }
      float s[8];
      CUTLASS_PRAGMA_UNROLL
      for (int jm = 0; jm < 8; ++jm) {
        s[jm] = 0.f;
        CUTLASS_PRAGMA_UNROLL
        for (int k = 0; k < 6; ++k) {
          const int i = at(jm + 8 * k, r);
          s[jm] += acc(i) + acc(i + 1);
        }
      }
      const float mean = rowSum(s) * kInvCols;
      CUTLASS_PRAGMA_UNROLL
      for (int jm = 0; jm < 8; ++jm) {
        s[jm] = 0.f;
        CUTLASS_PRAGMA_UNROLL
        for (int k = 0; k < 6; ++k) {
          const int i = at(jm + 8 * k, r);
          const float dx = acc(i) - mean, dy = acc(i + 1) - mean;
          s[jm] += dx * dx + dy * dy;
        }
      }
      const float rstd = rsqrtf(rowSum(s) * kInvCols + params.eps);
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < 48; ++j) {
        const int i = at(j, r), col = get<1>(coords(i));
        const float2 w = pairOf(params.gamma + col), b = pairOf(params.beta + col);
        const float2 n = make_float2((acc(i) - mean) * rstd, (acc(i + 1) - mean) * rstd);
        if (valid)
          *reinterpret_cast<__nv_bfloat162*>(params.d + row + col) =
              __floats2bfloat162_rn(n.x * w.x + b.x, n.y * w.y + b.y);
      }
    }
  }

  Params params;
};

// A = x [M, K] row-major; B = W^T [K, 384] row-major (the weight transposed once: a 384-row tile of W
// itself, K-major, would need a TMA box of 384 rows, past its 256); D = [M, 384]; clusters of 2
// along M sharing W's tile by TMA multicast. Each warp group holds 64 whole rows by two m64n192
// wgmma atoms (192 accumulators a thread). Cooperative: 128 x 384 tiles, both warp groups on one
// tile, the epilogue after the products. Ping-pong: a 64 x 384 tile per warp group, one warp
// group's epilogue beside the other's products.
template <class Schedule, int TILE_M> struct ProductNormGemmOf {
  static constexpr bool kCooperative = std::is_same_v<Schedule, cutlass::gemm::KernelTmaWarpSpecializedCooperative>;
  using TileShape = Shape<Int<TILE_M>, Int<kRowWidth>, _64>;
  using ClusterShape = Shape<_2, _1, _1>;
  using StrideA = cutlass::detail::TagToStrideA_t<cutlass::layout::RowMajor>;
  using StrideB = cutlass::detail::TagToStrideB_t<cutlass::layout::RowMajor>;
  using Epilogue = cutlass::epilogue::collective::detail::Sm90TmaWarpSpecializedAdapter<ProductNormEpilogue>;
  using TiledMma = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, _192, _64>, GMMA::Major::K, GMMA::Major::MN>(),
      Layout<Shape<Int<kCooperative ? 2 : 1>, _1, _1>>{}));
  using SmemAtomA =
      decltype(cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::K, Element, Int<TILE_M>, _64>());
  using SmemAtomB =
      decltype(cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::MN, Element, Int<kRowWidth>, _64>());
  static constexpr int kStages = cutlass::gemm::collective::detail::compute_stage_count_or_override<
      cutlass::gemm::collective::detail::sm90_smem_capacity_bytes, Element, Element, TileShape>(
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>{});
  using Mainloop = cutlass::gemm::collective::CollectiveMma<
      cutlass::gemm::MainloopSm90TmaGmmaWarpSpecialized<kStages, ClusterShape, Schedule>, TileShape, Element, StrideA,
      Element, StrideB, TiledMma, SM90_TMA_LOAD, SmemAtomA, void, cute::identity, SM90_TMA_LOAD_MULTICAST, SmemAtomB,
      void, cute::identity>;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
};
using ProductNormCooperative = ProductNormGemmOf<cutlass::gemm::KernelTmaWarpSpecializedCooperative, 128>;
using ProductNormPingpong = ProductNormGemmOf<cutlass::gemm::KernelTmaWarpSpecializedPingpong, 64>;

template <class G>
typename G::Gemm::Arguments productNormArguments(const void* x, const void* wT, const void* bias, const void* residual,
                                                 const void* gamma, const void* beta, void* out, std::int64_t M, int K,
                                                 float eps, int device) {
  const auto sa = cutlass::make_cute_packed_stride(typename G::StrideA{}, {static_cast<int>(M), K, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename G::StrideB{}, {kRowWidth, K, 1});
  cutlass::KernelHardwareInfo hw;
  hw.device_id = device;
  hw.sm_count = smCount(device);
  ProductNormEpilogue::Arguments e;
  e.bias = static_cast<const Element*>(bias);
  e.residual = static_cast<const Element*>(residual);
  e.gamma = static_cast<const Element*>(gamma);
  e.beta = static_cast<const Element*>(beta);
  e.d = static_cast<Element*>(out);
  e.eps = eps;
  return typename G::Gemm::Arguments{cutlass::gemm::GemmUniversalMode::kGemm,
                                     {static_cast<int>(M), kRowWidth, K, 1},
                                     {static_cast<const Element*>(x), sa, static_cast<const Element*>(wT), sb},
                                     e,
                                     hw};
}

template <class G>
bool runProductNorm(const std::uint16_t* x, const std::uint16_t* wT, const std::uint16_t* bias,
                    const std::uint16_t* residual, const std::uint16_t* gamma, const std::uint16_t* beta,
                    std::uint16_t* out, std::int64_t M, int K, float eps, void* workspace, cudaStream_t stream,
                    int device) {
  const auto a = productNormArguments<G>(x, wT, bias, residual, gamma, beta, out, M, K, eps, device);
  typename G::Gemm gemm;
  if (gemm.can_implement(a) != cutlass::Status::kSuccess) return false;
  if (gemm.initialize(a, workspace, stream) != cutlass::Status::kSuccess) return false;
  return gemm.run(stream) == cutlass::Status::kSuccess;
}

template <class G> std::int64_t productNormWorkspace(std::int64_t M, int K, int device) {
  return static_cast<std::int64_t>(G::Gemm::get_workspace_size(
      productNormArguments<G>(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, M, K, 1e-5f, device)));
}

} // namespace

} // namespace atlascope::inference::cuda::gemm_gelu

namespace atlascope::inference::cuda {

using namespace gemm_gelu;

std::int64_t gemmAddLayerNormWorkspace(std::int64_t M, int K) {
  if (M <= 0 || M >= (1LL << 31) || K <= 0) return -1;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return -1;
  return std::max(productNormWorkspace<ProductNormCooperative>(M, K, device),
                  productNormWorkspace<ProductNormPingpong>(M, K, device));
}

bool gemmAddLayerNormBf16(const std::uint16_t* x, const std::uint16_t* wT, const std::uint16_t* bias,
                          const std::uint16_t* residual, const std::uint16_t* gamma, const std::uint16_t* beta,
                          std::uint16_t* out, std::int64_t M, int N, int K, float eps, void* workspace, void* stream,
                          bool pingpong) {
  if (N != kRowWidth || !fits(x, wT, bias, out, M, N, K) || !residual || !gamma || !beta) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  return pingpong ? runProductNorm<ProductNormPingpong>(x, wT, bias, residual, gamma, beta, out, M, K, eps, workspace,
                                                        s, device)
                  : runProductNorm<ProductNormCooperative>(x, wT, bias, residual, gamma, beta, out, M, K, eps,
                                                           workspace, s, device);
}

} // namespace atlascope::inference::cuda
