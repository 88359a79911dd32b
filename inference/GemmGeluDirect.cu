// The fused GEMM + GELU's kernels whose epilogue stores from registers (variants 1.. of
// gemmGeluVariantName; GemmGelu.cu has the default and the reasons). Built with it, from CUTLASS's
// headers, for sm_90a.
#include "inference/GemmGeluKernels.cuh"

namespace atlascope::inference::cuda::gemm_gelu {

namespace {

// An epilogue without shared memory: each consumer thread adds the bias to its accumulators, applies
// the GELU and writes the bf16 pairs (two adjacent columns, one 4-byte store) straight from its
// registers, with the same arithmetic as GemmOf's epilogue (the same bits out, but for one sign:
// where x W^T + b is exactly -0, a -0 bias on products summing to -0, GemmOf's epilogue adds its
// beta * C = +0 and writes +0, this one -0; the same value). Why: with the K of
// 384, a 128 x 256 tile's main loop is ~4 us on the H200 at 790 TFLOP/s, so that GemmOf's epilogue
// takes ~2.3 us without GELU and ~4.5 with it (`bench gemm-gelu`: 1.202 and 1.613 ms for 186 tiles
// per multiprocessor), while its arithmetic is ~1/3 of that: it works through 128 x 32 subtiles, each through shared
// memory, a barrier of the 256 threads and a TMA store, so that a thread holds 16 values at a time and waits at every
// subtile. Here a thread's 128 values are independent work for the scheduler, and the stores are fire-and-forget (the
// L2 merges a warp's 16-byte row pieces into whole sectors). Under the ping-pong schedules this is the epilogue that
// can run beside the other warp group's products, which their TMA-store epilogue measured not to (see GemmOf).
template <Epi E> struct DirectEpilogue {
  using ElementC = Element;
  using ElementD = Element;
  using StrideC = cutlass::detail::TagToStrideC_t<cutlass::layout::RowMajor>;
  using StrideD = StrideC;
  using ThreadEpilogueOp = void;
  struct SharedStorage {};
  struct Arguments {
    const Element* bias = nullptr; // [N]
    Element* d = nullptr;          // [M, N] row-major
    std::int64_t ldd = 0;
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
  // The pairs' 4-byte loads and stores: an even N and 4-byte aligned pointers.
  template <class ProblemShape> static bool can_implement(ProblemShape const& shape, Arguments const& a) {
    auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 4 == 0; };
    return a.bias != nullptr && a.d != nullptr && get<1>(shape) % 2 == 0 && a.ldd % 2 == 0 && aligned(a.bias) &&
           aligned(a.d);
  }

  CUTLASS_HOST_DEVICE explicit DirectEpilogue(Params const& p) : params(p) {}
  CUTLASS_DEVICE bool is_source_needed() { return false; }

  template <class ProblemShapeMNKL, class BlockShapeMNK, class BlockCoordMNKL, class FrgEngine, class FrgLayout,
            class TiledMma, class ResidueMNK>
  CUTLASS_DEVICE void operator()(ProblemShapeMNKL, BlockShapeMNK blockShape, BlockCoordMNKL blockCoord,
                                 cute::Tensor<FrgEngine, FrgLayout> const& acc, TiledMma tiledMma, ResidueMNK residue,
                                 int thread, char*) {
    static_assert(is_static<BlockShapeMNK>::value, "static tile shape");
    const auto [mBlock, nBlock, kBlock, lBlock] = blockCoord;
    const std::int64_t m0 = static_cast<std::int64_t>(mBlock) * size<0>(blockShape);
    const int n0 = static_cast<int>(nBlock) * size<1>(blockShape);
    // Each accumulator's (row, column) within the tile: the MMA's own partition of the tile.
    const Tensor coords = tiledMma.get_thread_slice(thread).partition_C(make_identity_tensor(take<0, 2>(blockShape)));
    CUTE_STATIC_ASSERT_V(size(coords) == size(acc), "one coordinate per accumulator");
    static_assert(decltype(size(acc))::value % 2 == 0, "accumulators in pairs");
    const int rows = static_cast<int>(get<0>(residue)), cols = static_cast<int>(get<1>(residue));
    typename RoundedGeluOf<E>::template Op<float> f;
    // A bias pair is loaded for each of a thread's two rows (L1 hits): __restrict__ copies of the
    // pointers did not make nvcc load it once.
    const Element* const bias = params.bias;
    Element* const d = params.d;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < size(acc); i += 2) {
      const auto c = coords(i), next = coords(i + 1);
      const int m = get<0>(c), n = get<1>(c);
      if (m >= rows || n >= cols) continue;
      Element* const out = d + (m0 + m) * params.ldd + n0 + n;
      if (get<0>(next) == m && get<1>(next) == n + 1) { // wgmma's layout: adjacent columns (folded at compile time)
        const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(bias + n0 + n));
        *reinterpret_cast<__nv_bfloat162*>(out) = pair(acc(i) + b.x, acc(i + 1) + b.y);
      } else {
        out[0] = Element(f(acc(i) + static_cast<float>(bias[n0 + n])));
        const int m1 = get<0>(next), n1 = get<1>(next);
        if (m1 < rows && n1 < cols)
          d[(m0 + m1) * params.ldd + n0 + n1] = Element(f(acc(i + 1) + static_cast<float>(bias[n0 + n1])));
      }
    }
  }

  // f of two values, as bf16: the pre-activations rounded to bf16 by one conversion of the pair
  // instead of two (the same rounding, to nearest even, per value), then the GELU in float32.
  CUTLASS_DEVICE static __nv_bfloat162 pair(float a, float b) {
    if constexpr (E == Epi::BiasOnly) {
      return __floats2bfloat162_rn(a, b);
    } else {
      const float2 r = __bfloat1622float2(__floats2bfloat162_rn(a, b));
      return E == Epi::Erff ? __floats2bfloat162_rn(geluErff(r.x), geluErff(r.y))
                            : __floats2bfloat162_rn(geluExp2(r.x), geluExp2(r.y));
    }
  }

  Params params;
};

// GemmOf's main loop under `Schedule` with DirectEpilogue, tiles of `Tile` (per warp group under the
// ping-pong schedule, per pair of them under the cooperative one), clusters of 2 along M.
template <Epi E, class Tile, class Schedule> struct DirectGemmOf {
  using TileShape = Tile;
  using ClusterShape = Shape<_2, _1, _1>;
  using Epilogue = cutlass::epilogue::collective::detail::Sm90TmaWarpSpecializedAdapter<DirectEpilogue<E>>;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, cutlass::layout::RowMajor, kAlign, Element,
      cutlass::layout::ColumnMajor, kAlign, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      Schedule>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
  using IsDirect = std::true_type; // arguments<>: DirectEpilogue's
};
using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
template <Epi E> using DirectCooperative = DirectGemmOf<E, Shape<_128, _256, _64>, Cooperative>;
template <Epi E> using DirectPingpong64x256 = DirectGemmOf<E, Shape<_64, _256, _64>, Pingpong>;
template <Epi E> using DirectPingpong128x128 = DirectGemmOf<E, Shape<_128, _128, _64>, Pingpong>;

} // namespace

std::int64_t directWorkspace(std::int64_t M, int N, int K, int device) {
  return workspaceOf<DirectCooperative<Epi::Exp2>, DirectCooperative<Epi::BiasOnly>, DirectPingpong64x256<Epi::Exp2>,
                     DirectPingpong64x256<Epi::BiasOnly>, DirectPingpong128x128<Epi::Exp2>,
                     DirectPingpong128x128<Epi::BiasOnly>>(M, N, K, device);
}

bool runDirect(int variant, bool biasOnly, const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias,
               std::uint16_t* out, std::int64_t M, int N, int K, void* workspace, cudaStream_t stream, int device) {
  switch (variant * 2 + (biasOnly ? 1 : 0)) {
  case 2: return run<DirectCooperative<Epi::Exp2>>(x, w, bias, out, M, N, K, workspace, stream, device);
  case 3: return run<DirectCooperative<Epi::BiasOnly>>(x, w, bias, out, M, N, K, workspace, stream, device);
  case 4: return run<DirectPingpong64x256<Epi::Exp2>>(x, w, bias, out, M, N, K, workspace, stream, device);
  case 5: return run<DirectPingpong64x256<Epi::BiasOnly>>(x, w, bias, out, M, N, K, workspace, stream, device);
  case 6: return run<DirectPingpong128x128<Epi::Exp2>>(x, w, bias, out, M, N, K, workspace, stream, device);
  case 7: return run<DirectPingpong128x128<Epi::BiasOnly>>(x, w, bias, out, M, N, K, workspace, stream, device);
  default: return false;
  }
}

} // namespace atlascope::inference::cuda::gemm_gelu
