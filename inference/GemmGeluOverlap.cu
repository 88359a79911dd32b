// The fused GEMM + GELU with the epilogue on warps of its own (variant 1 of gemmGeluVariantName,
// `--gemm-gelu-kernel 1`; GemmGelu.cu has the default). Built with it, from CUTLASS's headers, for
// sm_90a. Slower than the default as measured; kept, with its profile below, as the base for the
// next attempt at running the GELU beside the products.
//
// Why: in the default kernel (CUTLASS's cooperative schedule) the two warp groups that issue the
// tensor-core products also run the epilogue, so the tensor cores wait while the bias and the GELU
// are applied (Nsight Compute, H200, `gpu-bench ncu`: 536 M instructions issued against 209 M
// without GELU, ~18 a value for the GELU; the tensor pipe busy 41% of the time). Here the product
// warp groups only add the bias, round each pre-activation to bf16 (what the GELU reads in every
// path) and leave the tile in shared memory; the loader's warp group's three idle warps apply the
// GELU and store the tile while the product warp groups compute the next one. Same arithmetic as
// the default's epilogue, same bits out (but for the sign of an exact zero: where x W^T + b is
// exactly -0 the default writes +0, its beta * C addition; here -0).
//
// The block (384 threads): warp 0 loads A and B by TMA (CUTLASS's collective main loop, clusters
// of 2 along M sharing W's tile by multicast), warps 1-3 the epilogue, warp groups 1-2 the
// products (128 x 256 per tile, cooperative); one 64 KB staging tile between them, handed over by
// two named barriers (full: the products' warp groups arrive, the epilogue waits; empty: the
// epilogue has read it). Registers: 168 each at entry; warp group 0 gives back to 88, the products
// take 208 (88 + 2 x 208 = 3 x 168; at 200, ptxas spills). The epilogue writes 16-byte row pieces
// straight to global memory: 8 threads a 128-byte row.
//
// Measured (H200, `bench gemm-gelu`, 393,216 x 384 -> 1,536, 2026-12-01): 1.840 ms against 1.606
// for the default with GELU, 1.311 against 1.180 without (same call). Where the time goes (Nsight
// Compute's warp-state sampling per instruction, a 128 x 256 tile every ~23,600 cycles at 1.36
// GHz): the epilogue's three warps are busy ~81% of it, issuing on a third of their cycles
// (fixed-latency and dispatch stalls: at 88 registers ptxas keeps ~8 values' chains in flight),
// and the product warp groups wait at the empty barrier 40% of it and spend 18% staging (the
// bias's shared-memory loads before each add); the tensor pipe is busy 35%.
// Yet moving a quarter of the tile's GELU back onto the product warp groups (one box of 64 columns,
// not kept) changed nothing: 1.856 ms against 1.603 in another call. The epilogue's arithmetic
// alone does not explain its time; that is the question for the next attempt (source sampling of
// that split, first).
//
// Measured and replaced: a fourth warp group for the epilogue (512 threads, TMA stores from the
// staging tile). With 128 registers at entry ptxas compiles no 64 x 256 wgmma (it needs 154,
// setmaxnreg or not), so its products ran as two 64 x 128 instructions: 1.689 ms with GELU against
// 1.601 for the default, 1.310 without against 1.147 (one call); end to end (4M cells) 175,049
// cells/s against 175,074, 178,293 and 175,110 for the default around it.
#include "inference/GemmGeluKernels.cuh"

#include <cute/arch/cluster_sm90.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/cluster_launch.hpp>
#include <cutlass/device_kernel.h>
#include <cutlass/gemm/kernel/sm90_tile_scheduler.hpp>
#include <cutlass/pipeline/pipeline.hpp>

namespace atlascope::inference::cuda::gemm_gelu {

namespace {

constexpr int kTileM = 128, kTileN = 256;
constexpr int kBoxN = 64;   // columns per staged box: 128-byte rows, swizzled by 16-byte chunks
constexpr int kMaxN = 4096; // the bias is staged whole in shared memory
constexpr int kMmaThreads = 256;
constexpr int kEpilogueThreads = 96; // warps 1-3
// Named barriers (CUTLASS's user ids, above its reserved ones).
constexpr int kFull = 0, kEmpty = 1;

struct alignas(1024) Staging {
  // bf16, 4 boxes of 128 rows x 64 columns; a row's 16-byte chunk j sits at j ^ (its address bits
  // 7-9), so that a warp's 4-byte writes of 8 rows x 16 bytes fall in 32 distinct banks.
  std::uint16_t d[kTileM * kTileN];
};
struct EpilogueStorage {
  Staging staging;
  alignas(16) std::uint16_t bias[kMaxN];
};

template <Epi E> struct OverlapKernel {
  using TileShape = Shape<_128, _256, _64>;
  using ClusterShape = Shape<_2, _1, _1>;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, cutlass::layout::RowMajor, kAlign, Element,
      cutlass::layout::ColumnMajor, kAlign, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(EpilogueStorage)) + 1024>,
      cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;
  using TiledMma = typename Mainloop::TiledMma;
  using Pipeline = typename Mainloop::MainloopPipeline;
  using PipelineState = typename Mainloop::PipelineState;
  using Scheduler = cutlass::gemm::kernel::detail::PersistentTileSchedulerSm90;
  using ProblemShape = Shape<int, int, int, int>;

  static constexpr std::uint32_t MaxThreadsPerBlock = 384;
  static constexpr std::uint32_t MinBlocksPerMultiprocessor = 1;

  struct SharedStorage {
    alignas(16) typename Mainloop::PipelineStorage pipeline;
    EpilogueStorage epilogue;
    alignas(1024) typename Mainloop::TensorStorage mainloop; // swizzled as the TMA loads write it
  };
  static constexpr int SharedStorageSize = static_cast<int>(sizeof(SharedStorage));
  static_assert(SharedStorageSize <= 227 * 1024, "the H100's and H200's shared memory per block");

  struct Params {
    ProblemShape problem;
    typename Mainloop::Params mainloop;
    typename Scheduler::Params scheduler;
    const std::uint16_t* bias; // [N]
    std::uint16_t* d;          // [M, N] row-major
  };

  // Warps 1-3 (t 0-95): each staged tile's GELU (none for BiasOnly), stored straight to D.
  template <class Work>
  CUTLASS_DEVICE static void epilogue(Params const& params, SharedStorage& shared, Scheduler& scheduler, Work work,
                                      int t) {
    using cutlass::arch::NamedBarrier;
    const std::uint32_t staging = cute::cast_smem_ptr_to_uint(shared.epilogue.staging.d);
    const std::int64_t M = get<0>(params.problem);
    const int N = get<1>(params.problem);
    constexpr int kChunks = kTileM * kTileN / 8; // 16-byte chunks
    while (work.is_valid()) {
      const std::int64_t m0 = static_cast<std::int64_t>(work.M_idx) * kTileM;
      const int n0 = work.N_idx * kTileN;
      const std::int64_t rows = M - m0;
      const int cols = N - n0;
      NamedBarrier::sync(kMmaThreads + kEpilogueThreads, kFull);
      // 8 consecutive threads read one 128-byte row and write it back whole.
#pragma unroll 4
      for (int q = t; q < kChunks; q += kEpilogueThreads) {
        const std::uint32_t at = staging + q * 16;
        uint4 v;
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(at));
        const int box = q / (kTileM * 8), r = (q / 8) % kTileM;
        const int col = box * kBoxN + ((q % 8) ^ ((at >> 7) & 7)) * 8; // the chunk's own column
        if constexpr (E == Epi::Exp2) {
          v.x = geluPair(v.x);
          v.y = geluPair(v.y);
          v.z = geluPair(v.z);
          v.w = geluPair(v.w);
        }
        if (r < rows && col < cols) *reinterpret_cast<uint4*>(params.d + (m0 + r) * N + n0 + col) = v;
      }
      work = get<0>(scheduler.fetch_next_work(work));
      // Read whole: the products' warp groups may stage the next tile.
      if (work.is_valid()) NamedBarrier::arrive(kMmaThreads + kEpilogueThreads, kEmpty);
    }
  }

  CUTLASS_DEVICE void operator()(Params const& params, char* smem) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using cutlass::arch::NamedBarrier;
    SharedStorage& shared = *reinterpret_cast<SharedStorage*>(smem);
    const int thread = static_cast<int>(threadIdx.x);
    const int warp = cutlass::canonical_warp_idx_sync();
    const int warpGroup = cutlass::canonical_warp_group_idx();
    const int lane = cutlass::canonical_lane_idx();
    const std::uint32_t rankInCluster = cute::block_rank_in_cluster();
    if (warp == 0 && cute::elect_one_sync()) Mainloop::prefetch_tma_descriptors(params.mainloop);

    // The bias, whole, with zeros past N for the last tile's columns.
    const int N = get<1>(params.problem);
    const int nPadded = (N + kTileN - 1) / kTileN * kTileN;
    for (int i = thread; i < nPadded; i += MaxThreadsPerBlock) shared.epilogue.bias[i] = i < N ? params.bias[i] : 0;

    typename Pipeline::Params pp;
    if (warpGroup == 0 && warp == 0) pp.role = Pipeline::ThreadCategory::Producer;
    if (warpGroup == 1 || warpGroup == 2) pp.role = Pipeline::ThreadCategory::Consumer;
    pp.is_leader = thread % cutlass::NumThreadsPerWarpGroup == 0;
    pp.num_consumers = kMmaThreads;
    pp.num_producers = Mainloop::NumProducerThreadEvents;
    pp.transaction_bytes = params.mainloop.tma_transaction_bytes;
    Pipeline pipeline(shared.pipeline, pp, ClusterShape{});
    __syncthreads(); // the bias staged
    // The pipeline's barriers initialised before any block of the cluster uses them.
    cute::cluster_arrive_relaxed();
    cute::cluster_wait();

    const auto problem = params.problem;
    Scheduler scheduler{params.scheduler};
    Mainloop mainloop;
    auto loadInputs = mainloop.load_init(problem, params.mainloop);
    Tensor gA = get<0>(loadInputs);
    Tensor gB = get<1>(loadInputs);
    auto work = scheduler.initial_work_tile_info(ClusterShape{});
    const int kTiles = size<3>(gA);
    auto next = [&](auto w) { return get<0>(scheduler.fetch_next_work(w)); };

    if (warpGroup == 0) {
      cutlass::arch::warpgroup_reg_dealloc<88>();
      if (warp == 0) {
        PipelineState write = cutlass::make_producer_start_state<Pipeline>();
        for (; work.is_valid(); work = next(work)) {
          const auto blk = make_coord(idx2crd(work.M_idx, shape<2>(gA)), idx2crd(work.N_idx, shape<2>(gB)), _,
                                      idx2crd(work.L_idx, shape<4>(gB)));
          auto kIter = cute::make_coord_iterator(shape<3>(gA));
          mainloop.load(params.mainloop, pipeline, write, loadInputs, blk, kIter, kTiles, lane, rankInCluster,
                        shared.mainloop);
          write.advance(kTiles);
        }
        mainloop.load_tail(pipeline, write);
      } else {
        epilogue(params, shared, scheduler, work, thread - cutlass::NumThreadsPerWarp);
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<208>();
      const int mmaThread = thread - cutlass::NumThreadsPerWarpGroup;
      TiledMma tiledMma;
      // Each accumulator's (row, column) within the tile: the MMA's own partition of it.
      const Tensor coords =
          tiledMma.get_thread_slice(mmaThread).partition_C(make_identity_tensor(take<0, 2>(TileShape{})));
      const std::uint32_t staging = cute::cast_smem_ptr_to_uint(shared.epilogue.staging.d);
      const std::uint16_t* bias = shared.epilogue.bias;
      PipelineState read;
      bool first = true;
      for (; work.is_valid(); work = next(work)) {
        auto acc = partition_fragment_C(tiledMma, take<0, 2>(TileShape{}));
        static_assert(decltype(size(acc))::value % 2 == 0, "accumulators in pairs");
        CUTE_STATIC_ASSERT_V(size(coords) == size(acc), "one coordinate per accumulator");
        mainloop.mma(pipeline, read, acc, kTiles, mmaThread, shared.mainloop, params.mainloop);
        mainloop.mma_tail(pipeline, read, kTiles);
        read.advance(kTiles);
        const int n0 = work.N_idx * kTileN;
        if (!first) NamedBarrier::sync(kMmaThreads + kEpilogueThreads, kEmpty); // the last tile read
        first = false;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size(acc); i += 2) {
          const auto c = coords(i), c1 = coords(i + 1);
          const int m = get<0>(c), n = get<1>(c);
          // wgmma's layout: a thread's accumulators come in pairs of adjacent columns (folded at
          // compile time).
          if (get<0>(c1) != m || get<1>(c1) != n + 1) __trap();
          const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(bias + n0 + n));
          const std::uint32_t row = staging + (n / kBoxN) * (kTileM * kBoxN * 2) + m * (kBoxN * 2);
          const std::uint32_t chunk = ((n % kBoxN) / 8) ^ ((row >> 7) & 7);
          const std::uint32_t v = pairBits(__floats2bfloat162_rn(acc(i) + b.x, acc(i + 1) + b.y));
          asm volatile("st.shared.b32 [%0], %1;" ::"r"(row + chunk * 16 + (n % 8) * 2), "r"(v) : "memory");
        }
        NamedBarrier::arrive(kMmaThreads + kEpilogueThreads, kFull);
      }
    }
#endif
  }
};

template <Epi E>
bool launch(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
            std::int64_t M, int N, int K, cudaStream_t stream, int device) {
  using Kernel = OverlapKernel<E>;
  using Mainloop = typename Kernel::Mainloop;
  using Scheduler = typename Kernel::Scheduler;
  if (N > kMaxN) return false; // the rest of the shape checked by fits() in GemmGelu.cu
  typename Kernel::Params p{};
  p.problem = typename Kernel::ProblemShape{static_cast<int>(M), N, K, 1};
  const auto sa = cutlass::make_cute_packed_stride(typename Mainloop::StrideA{}, {static_cast<int>(M), K, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename Mainloop::StrideB{}, {N, K, 1});
  const typename Mainloop::Arguments ma{reinterpret_cast<const Element*>(x), sa, reinterpret_cast<const Element*>(w),
                                        sb};
  if (!Mainloop::can_implement(p.problem, ma)) return false;
  p.mainloop = Mainloop::to_underlying_arguments(p.problem, ma, nullptr);
  cutlass::KernelHardwareInfo hw;
  hw.device_id = device;
  hw.sm_count = smCount(device);
  p.scheduler = Scheduler::to_underlying_arguments(
      p.problem, typename Kernel::TileShape{}, typename Kernel::ClusterShape{}, hw, typename Scheduler::Arguments{});
  p.bias = bias;
  p.d = out;
  const dim3 grid = Scheduler::get_grid_shape(p.scheduler, p.problem, typename Kernel::TileShape{},
                                              typename Kernel::ClusterShape{}, hw, typename Scheduler::Arguments{});
  const void* kernel = reinterpret_cast<const void*>(&cutlass::device_kernel<Kernel>);
  // The opt-in to its shared memory, once per device and kernel.
  static std::atomic<bool> optedIn[64] = {};
  if (device < 0 || device >= 64) return false;
  if (!optedIn[device].load()) {
    if (cudaFuncSetAttribute(&cutlass::device_kernel<Kernel>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             Kernel::SharedStorageSize) != cudaSuccess) {
      cudaGetLastError(); // no pending error left for the caller's fallback
      return false;
    }
    optedIn[device].store(true);
  }
  const cutlass::ClusterLaunchParams lp{grid, dim3(Kernel::MaxThreadsPerBlock, 1, 1),
                                        dim3(size<0>(typename Kernel::ClusterShape{}), 1, 1), Kernel::SharedStorageSize,
                                        stream};
  return cutlass::launch_kernel_on_cluster(lp, kernel, p) == cutlass::Status::kSuccess;
}

} // namespace

bool runOverlap(bool biasOnly, const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias,
                std::uint16_t* out, std::int64_t M, int N, int K, cudaStream_t stream, int device) {
  return biasOnly ? launch<Epi::BiasOnly>(x, w, bias, out, M, N, K, stream, device)
                  : launch<Epi::Exp2>(x, w, bias, out, M, N, K, stream, device);
}

} // namespace atlascope::inference::cuda::gemm_gelu
