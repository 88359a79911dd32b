// The fused GEMM + GELU with the GELU of one tile applied while the tensor cores compute the next
// (variant 2 of gemmGeluVariantName, `--gemm-gelu-kernel 2`; GemmGelu.cu has the default). Built
// with it, from CUTLASS's headers, for sm_90a.
//
// Why: in the default kernel (CUTLASS's cooperative schedule) the warp groups that issue the
// tensor-core products also run the epilogue, so the tensor cores idle while the bias and the
// GELU are applied (Nsight Compute: the tensor pipe busy 41% of the time; ~18 instructions a value
// for the GELU). Giving the GELU to the loader's idle warps (GemmGeluOverlap.cu) left it on three
// warps that issue on a third of their cycles; the ping-pong schedule gives it to one warp group
// at a time. Here the two product warp groups keep two accumulators each, as FlashAttention-3
// keeps its softmax beside its products: a tile's wgmma instructions are issued asynchronously
// and, between issuing its k-steps, the same warps add the bias to the previous tile's
// accumulators, round, apply the GELU and stage it in shared memory, so all eight warps (two a
// scheduler) run the epilogue while the tensor cores work. Three warps of the loader's warp group
// copy the staged tiles to global memory in 16-byte row pieces.
//
// Two accumulators of a 128 x 256 tile take 256 registers a thread, more than there are: the
// tile is 128 x 128 (64 accumulators a thread each, 128 for two), so W's tile is shared by a
// cluster of 2 along M (multicast) and x's tile is read from L2 twice as often as at 256 columns.
// Same arithmetic as the default's epilogue (the pre-activation rounded to bf16, then geluExp2),
// same bits out but for the sign of an exact zero (as GemmGeluOverlap.cu).
//
// The block (384 threads): warp 0 the TMA loads (CUTLASS's collective main loop and pipeline),
// warps 1-3 the copies out, warp groups 1-2 the products and the epilogue. Shared memory: the
// main loop's stages, two 32 KB staging tiles (a tile's epilogue writes one while the copy warps
// read the other) and the bias. Named barriers per staging tile: full (the product warp groups
// arrive, the copy warps wait) and empty (the reverse). Registers by setmaxnreg: 40 for the
// loader's warp group, 232 for the product warp groups (40 + 2 x 232 <= 3 x 168).
//
// Measured (H200, `bench gemm-gelu --iterations 50`, 393,216 x 384 -> 1,536, 2026-12-02, the
// default in the same call each time; raw lines in docs/bench/gpu-gemm-gelu-pipelined-2026-12-02.jsonl):
// slower, the same bits out (parity: 0 outputs differing).
// - First form (each pair's bias read from shared memory): 2.000 and 2.001 ms with GELU against
//   1.564 and 1.606; 1.498 and 1.502 without against 1.179 and 1.143. Nsight Compute: each pair's
//   bias load waited behind the previous pair's staging store, so a piece's chains ran one after
//   another (short-scoreboard stalls on the unpacking of the bias).
// - Clusters of 2 x 2 (x's tile multicast along N too): 2.186 / 1.665 against 1.957 / 1.460 for
//   2 x 1; L2 was at 29-39% of its peak, not the limit. Not kept.
// - The bias pairs in registers and a piece's stores after its values: 1.872 and 1.890 against
//   1.567 and 1.622; without GELU 1.548 and 1.563.
// - The copies batched and the swizzle taken from the row: 1.865 and 1.880 against 1.565 and
//   1.586; without GELU 1.501 and 1.513 against 1.226 and 1.170.
// Where its time goes (Nsight Compute's source sampling, the last form): the product warps issue
// on ~21% of their cycles and otherwise wait on other warps' issue, the math pipes and fixed
// latencies (selected 21%, dispatch 18%, not selected 16%, wait 14%): the GELU's instructions now
// fill the schedulers, and still add ~0.36 ms to 1.50 (the default's GELU adds ~0.40 to 1.17).
// The 128 x 128 tile itself costs ~0.3 ms against the default's 128 x 256 without GELU (twice the
// tiles, each with its barriers, pipeline fill and bias loads); ~12% of the product warps' time
// waits for the copy warps to free a staging tile.
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

constexpr int kTileM = 128, kTileN = 128;
constexpr int kBoxN = 64;   // columns per staged box: 128-byte rows, swizzled by 16-byte chunks
constexpr int kMaxN = 4096; // the bias is staged whole in shared memory
constexpr int kMmaThreads = 256;
constexpr int kCopyThreads = 96; // warps 1-3
constexpr int kBarrierThreads = kMmaThreads + kCopyThreads;
// Named barriers (CUTLASS's user ids, above its reserved ones): full b, empty b of staging tile b.
constexpr int kFull = 0, kEmpty = 2;
// A tile's epilogue in this many pieces, one after each k-step's products are issued (the rest,
// for K under 8 x 64, after the last).
constexpr int kPieces = 8;

struct alignas(1024) Staging {
  // bf16, 2 boxes of 128 rows x 64 columns; a row's 16-byte chunk j sits at j ^ (row % 8), so that
  // a warp's 4-byte writes of 8 rows x 16 bytes fall in 32 distinct banks.
  std::uint16_t d[kTileM * kTileN];
};
struct EpilogueStorage {
  Staging staging[2];
  alignas(16) std::uint16_t bias[kMaxN];
};

template <Epi E> struct PipelinedKernel {
  using TileShape = Shape<_128, _128, _64>;
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

  // Warps 1-3 (t 0-95): each staged tile, as it is, to D. The tiles alternate between the two
  // staging tiles; a tile's empty barrier is arrived at only where a tile two on will wait for it.
  template <class Next, class Work>
  CUTLASS_DEVICE static void copyOut(Params const& params, SharedStorage& shared, Next next, Work work, int t) {
    using cutlass::arch::NamedBarrier;
    const std::int64_t M = get<0>(params.problem);
    const int N = get<1>(params.problem);
    constexpr int kChunks = kTileM * kTileN / 8; // 16-byte chunks
    Work ahead1 = next(work), ahead2 = next(ahead1);
    for (int p = 0; work.is_valid(); ++p) {
      const int b = p & 1;
      const std::uint32_t staging = cute::cast_smem_ptr_to_uint(shared.epilogue.staging[b].d);
      const std::int64_t m0 = static_cast<std::int64_t>(work.M_idx) * kTileM;
      const int n0 = work.N_idx * kTileN;
      const std::int64_t rows = M - m0;
      const int cols = N - n0;
      NamedBarrier::sync(kBarrierThreads, kFull + b);
      // 8 consecutive threads read one 128-byte row and write it back whole; kBatch chunks read
      // before any is written (read and written one by one, each store waited for its read).
      // A chunk's 16 bytes sit at chunk ^ (row % 8): the staging tiles are 1024-byte aligned.
      constexpr int kBatch = 4;
      for (int q0 = t; q0 < kChunks; q0 += kBatch * kCopyThreads) {
        uint4 v[kBatch];
        CUTLASS_PRAGMA_UNROLL
        for (int k = 0; k < kBatch; ++k) {
          const int q = q0 + k * kCopyThreads;
          if (q < kChunks)
            asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
                         : "=r"(v[k].x), "=r"(v[k].y), "=r"(v[k].z), "=r"(v[k].w)
                         : "r"(staging + q * 16));
        }
        CUTLASS_PRAGMA_UNROLL
        for (int k = 0; k < kBatch; ++k) {
          const int q = q0 + k * kCopyThreads;
          const int box = q / (kTileM * 8), r = (q / 8) % kTileM;
          const int col = box * kBoxN + ((q % 8) ^ (r % 8)) * 8; // the chunk's own column
          if (q < kChunks && r < rows && col < cols)
            *reinterpret_cast<uint4*>(params.d + (m0 + r) * N + n0 + col) = v[k];
        }
      }
      if (ahead2.is_valid()) NamedBarrier::arrive(kBarrierThreads, kEmpty + b);
      work = ahead1;
      ahead1 = ahead2;
      ahead2 = next(ahead2);
    }
  }

  // A thread's bias pairs for a tile's columns, from shared memory into registers before its
  // epilogue's pieces: wgmma's layout gives a thread 4 values per 8 columns (2 adjacent columns in
  // 2 rows, 8 apart), so one bf16 pair serves 4 accumulators.
  template <class Coords, int Groups>
  CUTLASS_DEVICE static void loadBias(Coords const& coords, const std::uint16_t* bias, std::uint32_t (&pairs)[Groups]) {
    CUTLASS_PRAGMA_UNROLL
    for (int g = 0; g < Groups; ++g) pairs[g] = *reinterpret_cast<const std::uint32_t*>(bias + get<1>(coords(4 * g)));
  }

  // Piece `piece` of a finished tile's epilogue (accumulators acc, its bias pairs): bias, rounding
  // to bf16, GELU, rounding, into the staging tile at `staging`. All of the piece's values first,
  // then its stores: Nsight Compute found the piece's chains serialised behind each pair's
  // shared-memory bias load, which could not pass the previous pair's store (1.96 ms with GELU).
  template <class Acc, class Coords, int Groups>
  CUTLASS_DEVICE static void epiloguePiece(Acc const& acc, Coords const& coords, int piece, std::uint32_t staging,
                                           const std::uint32_t (&bias)[Groups]) {
    constexpr int kPerPiece = decltype(size(acc))::value / kPieces;
    static_assert(kPerPiece % 4 == 0 && kPerPiece * kPieces == decltype(size(acc))::value, "whole groups per piece");
    static_assert(Groups * 4 == decltype(size(acc))::value, "a bias pair per 4 accumulators");
    std::uint32_t v[kPerPiece / 2], at[kPerPiece / 2];
    CUTLASS_PRAGMA_UNROLL
    for (int j = 0; j < kPerPiece / 2; ++j) {
      const int i = piece * kPerPiece + 2 * j;
      const auto c = coords(i), c1 = coords(i + 1);
      const int m = get<0>(c), n = get<1>(c);
      // wgmma's layout (folded at compile time): pairs of adjacent columns, the same columns for
      // the 4 values of a group.
      if (get<0>(c1) != m || get<1>(c1) != n + 1 || get<1>(coords(i / 4 * 4)) != n) __trap();
      const std::uint32_t b = bias[i / 4];
      v[j] = pairBits(__floats2bfloat162_rn(acc(i) + lowHalf(b), acc(i + 1) + highHalf(b)));
      if constexpr (E == Epi::Exp2) v[j] = geluPair(v[j]);
      at[j] = staging + (n / kBoxN) * (kTileM * kBoxN * 2) + m * (kBoxN * 2) + (((n % kBoxN) / 8) ^ (m % 8)) * 16 +
              (n % 8) * 2;
    }
    CUTLASS_PRAGMA_UNROLL
    for (int j = 0; j < kPerPiece / 2; ++j) asm volatile("st.shared.b32 [%0], %1;" ::"r"(at[j]), "r"(v[j]) : "memory");
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
      cutlass::arch::warpgroup_reg_dealloc<40>();
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
        copyOut(params, shared, next, work, thread - cutlass::NumThreadsPerWarp);
      }
      return;
    }

    cutlass::arch::warpgroup_reg_alloc<232>();
    const int mmaThread = thread - cutlass::NumThreadsPerWarpGroup;
    TiledMma tiledMma;
    // The main loop's operands as CUTLASS's collective main loop partitions them (its mma()), whose
    // loop is unrolled here so that the epilogue's pieces sit between the k-steps.
    Tensor sA = make_tensor(make_smem_ptr(shared.mainloop.smem_A.data()), typename Mainloop::SmemLayoutA{});
    Tensor sB = make_tensor(make_smem_ptr(shared.mainloop.smem_B.data()), typename Mainloop::SmemLayoutB{});
    const int mmaWarpGroup = __shfl_sync(0xffffffff, mmaThread / cutlass::NumThreadsPerWarpGroup, 0);
    auto wgMma = tiledMma.get_slice(mmaWarpGroup * cutlass::NumThreadsPerWarpGroup);
    Tensor tCrA = wgMma.make_fragment_A(wgMma.partition_A(sA)); // (MMA, MMA_M, MMA_K, PIPE)
    Tensor tCrB = wgMma.make_fragment_B(wgMma.partition_B(sB)); // (MMA, MMA_N, MMA_K, PIPE)
    // Each accumulator's (row, column) within the tile: the MMA's own partition of it.
    const Tensor coords =
        tiledMma.get_thread_slice(mmaThread).partition_C(make_identity_tensor(take<0, 2>(TileShape{})));
    auto acc = partition_fragment_C(tiledMma, take<0, 2>(TileShape{}));
    auto prevAcc = partition_fragment_C(tiledMma, take<0, 2>(TileShape{}));
    static_assert(decltype(size(acc))::value % (2 * kPieces) == 0, "accumulators in pairs, whole pieces");
    CUTE_STATIC_ASSERT_V(size(coords) == size(acc), "one coordinate per accumulator");
    constexpr int kGroups = decltype(size(acc))::value / 4;
    const std::uint32_t staging0 = cute::cast_smem_ptr_to_uint(shared.epilogue.staging[0].d);
    const std::uint32_t stagingBytes = sizeof(Staging);
    if (staging0 % 1024 != 0) __trap(); // the swizzle is taken from the row, not the address
    PipelineState read, release;

    // The products of the tile at `read` into acc, the epilogue of tile `prev` (its accumulators in
    // prevAcc; prev < 0: none) between their k-steps: wgmma's are asynchronous, the epilogue's
    // registers are not theirs.
    auto step = [&](int prev, int prevN0) {
      const int b = prev & 1;
      const std::uint32_t staging = staging0 + b * stagingBytes;
      std::uint32_t bias[kGroups];
      if (prev >= 0) loadBias(coords, shared.epilogue.bias + prevN0, bias);
      if (prev >= 2) NamedBarrier::sync(kBarrierThreads, kEmpty + b); // its staging tile copied out
      int issued = 0, released = 0;
      auto issue = [&] {
        pipeline.consumer_wait(read, pipeline.consumer_try_wait(read));
        const int stage = read.index();
        warpgroup_fence_operand(acc);
        warpgroup_arrive();
        tiledMma.accumulate_ = issued == 0 ? GMMA::ScaleOut::Zero : GMMA::ScaleOut::One;
        CUTLASS_PRAGMA_UNROLL
        for (int k = 0; k < size<2>(tCrA); ++k) {
          cute::gemm(tiledMma, tCrA(_, _, k, stage), tCrB(_, _, k, stage), acc);
          tiledMma.accumulate_ = GMMA::ScaleOut::One;
        }
        warpgroup_commit_batch();
        warpgroup_fence_operand(acc);
        ++read;
        ++issued;
      };
      CUTLASS_PRAGMA_UNROLL
      for (int piece = 0; piece < kPieces; ++piece) {
        if (issued < kTiles) issue();
        if (prev >= 0) epiloguePiece(prevAcc, coords, piece, staging, bias);
        if (issued - released > 1) {
          warpgroup_wait<1>();
          warpgroup_fence_operand(acc);
          pipeline.consumer_release(release); // its products done: the loader may refill the stage
          ++release;
          ++released;
        }
      }
      while (issued < kTiles) {
        issue();
        warpgroup_wait<1>();
        warpgroup_fence_operand(acc);
        pipeline.consumer_release(release);
        ++release;
        ++released;
      }
      warpgroup_wait<0>();
      warpgroup_fence_operand(acc);
      for (; released < issued; ++released) {
        pipeline.consumer_release(release);
        ++release;
      }
      if (prev >= 0) NamedBarrier::arrive(kBarrierThreads, kFull + b);
    };
    // The last tile's epilogue (in prevAcc), with no products beside it.
    auto finish = [&](int p, int n0) {
      const int b = p & 1;
      std::uint32_t bias[kGroups];
      loadBias(coords, shared.epilogue.bias + n0, bias);
      if (p >= 2) NamedBarrier::sync(kBarrierThreads, kEmpty + b);
      CUTLASS_PRAGMA_UNROLL
      for (int piece = 0; piece < kPieces; ++piece)
        epiloguePiece(prevAcc, coords, piece, staging0 + b * stagingBytes, bias);
      NamedBarrier::arrive(kBarrierThreads, kFull + b);
    };

    // Each tile's products into acc while the previous tile's epilogue reads prevAcc, then acc moved
    // to prevAcc (64 moves a tile). Alternating the two by unrolling the loop by two left ptxas unsure,
    // at the loop's head, whether a wgmma still wrote prevAcc: it waited for the tile's first
    // k-step before the first two pieces of every other tile's epilogue (ptxas C7517).
    int p = 0, prevN0 = 0;
    for (; work.is_valid(); ++p) {
      step(p - 1, prevN0);
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(acc); ++i) prevAcc(i) = acc(i);
      prevN0 = work.N_idx * kTileN;
      work = next(work);
    }
    if (p > 0) finish(p - 1, prevN0);
#endif
  }
};

template <Epi E>
bool launch(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
            std::int64_t M, int N, int K, cudaStream_t stream, int device) {
  using Kernel = PipelinedKernel<E>;
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

bool runPipelined(bool biasOnly, const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias,
                  std::uint16_t* out, std::int64_t M, int N, int K, cudaStream_t stream, int device) {
  return biasOnly ? launch<Epi::BiasOnly>(x, w, bias, out, M, N, K, stream, device)
                  : launch<Epi::Exp2>(x, w, bias, out, M, N, K, stream, device);
}

} // namespace atlascope::inference::cuda::gemm_gelu
