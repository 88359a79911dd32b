// Training's feed-forward by CUTLASS GEMMs with the GELU and its gradient in their epilogues
// (cuda::gemmBiasGeluAuxBf16 and cuda::gemmGeluGradBf16 in FusedKernels.h; CellTransformer's
// TrainFeedForward). Unfused, the forward wrote the pre-activation h = x W1^T + b1 and ATen's GELU
// read it back and wrote GELU(h) (1.2 ms of a 23.8 ms step); the backward wrote dy W2 and a
// kernel read it with h to write GELU'(h) o (dy W2) and sum the bias gradient (2.1 ms), all over
// [R, 2048] bf16. Built only with CUTLASS's headers (ATLASCOPE_CUTLASS_DIR) for sm_90a.
//
// What it gains is small: these products have K = 384, so their epilogues (a value of [R, 2048]
// each per 768 flops) cost as much as their main loops, and every instruction added there shows.
// H200, `bench gemm-gelu --train` (90,112 rows, the feed-forward's forward + backward; unfused
// 2.039 ms), backward variants measured in one call (docs/bench/gpu-train-feed-forward-2026-12-02.jsonl):
// - GELU' by ATen's formula (erff, expf), the bias gradient summed in the epilogue (CUTLASS's
//   per-row reduction of the transposed product): 2.207 ms (0.92x);
// - GELU' by geluGradExp2, summed in the epilogue: 2.023 (1.01x);
// - ATen's formula, the bias gradient by biasGradBf16 after: 2.073 (0.98x);
// - geluGradExp2, biasGradBf16 after: 1.963 (1.04x), kept.
// The forward (GELU and the pre-activation in one epilogue) measured 0.60-0.69 ms against 0.68 for
// cuBLASLt's GEMM and ATen's GELU.
// Both epilogues as trees of their own (BiasAuxThenGelu, GeluGradOfAux below; `--lincomb-gelu`
// the kernels before): H200, `bench gemm-gelu --train --iterations 30`, forward 0.565 ms against
// 0.668, forward + backward 1.759 against 1.890 (unfused 1.952; call s14-1,
// docs/bench/gpu-train-epilogue-trees-2026-12-04.jsonl).
#include "inference/FusedKernels.h"
#include "inference/GemmEpilogues.cuh"

#include <algorithm>
#include <cstdint>
#include <cuda_runtime.h>
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

namespace atlascope::inference::cuda {

using namespace cute;
using namespace gemm_gelu;

namespace {

using RowMajor = cutlass::layout::RowMajor;
using ColumnMajor = cutlass::layout::ColumnMajor;

// A cooperative sm90 GEMM of bf16 A [M, K] and B [K, N] in the given layouts (CUTLASS's: a
// column-major B is K-contiguous, PyTorch's Linear weight), D [M, N], no C, the epilogue's
// `Fusion`; tiles of 128 x 256 in clusters of 2 along M, as embedding's GemmOf (GemmGelu.cu), whose
// comment lists the shapes measured against it for these products.
using TrainTile = Shape<_128, _256, _64>;
using TrainSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
// What the epilogue builder derives from the tile (its subtile, stages): the aux nodes of the trees
// below take it explicitly.
using TrainEpilogue = cutlass::epilogue::collective::detail::EpilogueDescriptor<
    TrainTile, cutlass::epilogue::collective::EpilogueTileAuto, void, Element, TrainSchedule>;

template <class LayoutA, class LayoutB, class LayoutD, class Fusion> struct TrainGemmOf {
  using TileShape = TrainTile;
  using ClusterShape = Shape<_2, _1, _1>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, LayoutD, kAlign, Element, LayoutD, kAlign,
      TrainSchedule, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, LayoutA, kAlign, Element, LayoutB, kAlign, float,
      TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
};

// Forward: D = GELU(x W^T + b) and Aux = x W^T + b (the pre-activation the backward reads), both
// [R, F] row-major bf16. The GELU rounds its input to bf16 first (RoundedGeluOf), so that D is the
// GELU of the stored Aux, as ATen's GELU of cuBLASLt's output.
// The default's epilogue, a tree of its own as embedding's BiasThenAct (GemmGelu.cu): acc + b (no
// beta C: CUTLASS's linear combination adds beta * 0 to every value), stored as Aux (bf16), then
// GeluExp2Paired (two values' rounding in one conversion) on it. ForwardGemmLinComb: CUTLASS's
// linear combination with the GELU one value at a time (the kernel before, `--lincomb-gelu`); the
// same bits.
using AuxStore = cutlass::epilogue::collective::detail::AuxStoreDescriptor<TrainEpilogue, RowMajor, Element>;
using BiasAuxThenGelu = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<GeluExp2Paired, Element, float, cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90EVT<
        cutlass::epilogue::fusion::Sm90AuxStore<AuxStore::Stages, AuxStore::EpilogueTile, Element,
                                                cutlass::FloatRoundStyle::round_to_nearest, AuxStore::Stride,
                                                AuxStore::SmemLayoutAtom, AuxStore::CopyOpR2S, kAlign>,
        cutlass::epilogue::fusion::Sm90EVT<cutlass::epilogue::fusion::Sm90Compute<
                                               cutlass::plus, float, float, cutlass::FloatRoundStyle::round_to_nearest>,
                                           cutlass::epilogue::fusion::Sm90AccFetch,
                                           cutlass::epilogue::fusion::Sm90RowBroadcast<
                                               0, TrainTile, Element, float, Stride<_0, _1, int64_t>, kAlign>>>>;
using ForwardGemm = TrainGemmOf<RowMajor, ColumnMajor, RowMajor, BiasAuxThenGelu>;
// `--stored-gelu-grad` (GemmEpilogues.cuh's stored-gradient epilogues): the input tree computes acc +
// b and, from it rounded to bf16, GELU and GELU' packed in one word per value; two trees on it:
// Aux = GELU'(h) (the word's high half) and D = GELU(h) (its low half).
using PackedGeluAndGrad = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<GeluAndGradPacked, float, float, cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90EVT<
        cutlass::epilogue::fusion::Sm90Compute<cutlass::plus, float, float, cutlass::FloatRoundStyle::round_to_nearest>,
        cutlass::epilogue::fusion::Sm90AccFetch,
        cutlass::epilogue::fusion::Sm90RowBroadcast<0, TrainTile, Element, float, Stride<_0, _1, int64_t>, kAlign>>>;
using StoreGeluGrad = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90AuxStore<AuxStore::Stages, AuxStore::EpilogueTile, Element,
                                            cutlass::FloatRoundStyle::round_to_nearest, AuxStore::Stride,
                                            AuxStore::SmemLayoutAtom, AuxStore::CopyOpR2S, kAlign>,
    cutlass::epilogue::fusion::Sm90EVT<
        cutlass::epilogue::fusion::Sm90Compute<HighHalf, Element, float, cutlass::FloatRoundStyle::round_to_nearest>,
        cutlass::epilogue::fusion::Sm90SplitTreeFetch>>;
using GeluOfPre = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<LowHalf, Element, float, cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90SplitTreeFetch>;
using BiasGeluStoreGrad = cutlass::epilogue::fusion::Sm90SplitTreeVisitor<PackedGeluAndGrad, GeluOfPre, StoreGeluGrad>;
using ForwardGemmStored = TrainGemmOf<RowMajor, ColumnMajor, RowMajor, BiasGeluStoreGrad>;
using ForwardGemmLinComb =
    TrainGemmOf<RowMajor, ColumnMajor, RowMajor,
                cutlass::epilogue::fusion::LinCombPerColBiasEltActAux<RowMajor, GeluExp2, Element, float, Element,
                                                                      Element, Element, float>>;

// Backward, transposed as measured: dh^T [F, R] = W2^T [F, E] dy^T [E, R] (dh^T column-major is dh
// [R, F] row-major; W2 [E, F] row-major is W2^T column-major; dy [R, E] row-major is dy^T's
// K-contiguous column-major B; Aux, h, has dh's layout). The transposition let CUTLASS's per-row
// reduction sum the bias gradient in the epilogue, a variant that measured slower (see above).
// The default's epilogue, a tree of its own: GeluGradExp2Paired(acc, Aux) straight from the
// accumulator (no alpha, no beta C) with dy W2's rounding two values at a time, and dh's by the
// output's conversion (the functor before rounded it, then the conversion again: the same bits).
// BackwardGemmLinComb: CUTLASS's LinCombDeEltAct with GeluGradExp2 (the kernel before).
using AuxLoad = cutlass::epilogue::collective::detail::AuxLoadDescriptor<TrainEpilogue, ColumnMajor, Element>;
using GeluGradOfAux = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<GeluGradExp2Paired, Element, float,
                                           cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90AccFetch,
    cutlass::epilogue::fusion::Sm90AuxLoad<AuxLoad::Stages, AuxLoad::EpilogueTile, Element, AuxLoad::Stride,
                                           AuxLoad::SmemLayoutAtom, AuxLoad::CopyOpS2R, kAlign>>;
using BackwardGemm = TrainGemmOf<ColumnMajor, ColumnMajor, ColumnMajor, GeluGradOfAux>;
// `--stored-gelu-grad`: Aux holds GELU'(h) (ForwardGemmStored's), so the epilogue is one product.
using TimesStoredGrad = cutlass::epilogue::fusion::Sm90EVT<
    cutlass::epilogue::fusion::Sm90Compute<TimesStoredGeluGrad, Element, float,
                                           cutlass::FloatRoundStyle::round_to_nearest>,
    cutlass::epilogue::fusion::Sm90AccFetch,
    cutlass::epilogue::fusion::Sm90AuxLoad<AuxLoad::Stages, AuxLoad::EpilogueTile, Element, AuxLoad::Stride,
                                           AuxLoad::SmemLayoutAtom, AuxLoad::CopyOpS2R, kAlign>>;
using BackwardGemmStored = TrainGemmOf<ColumnMajor, ColumnMajor, ColumnMajor, TimesStoredGrad>;
using BackwardGemmLinComb = TrainGemmOf<
    ColumnMajor, ColumnMajor, ColumnMajor,
    cutlass::epilogue::fusion::LinCombDeEltAct<ColumnMajor, GeluGradExp2, Element, float, Element, Element, float>>;

cutlass::KernelHardwareInfo hardware(int device) {
  cutlass::KernelHardwareInfo hw;
  hw.device_id = device;
  hw.sm_count = smCount(device);
  return hw;
}

template <class G = ForwardGemm>
typename G::Gemm::Arguments forwardArguments(const void* x, const void* w, const void* bias, void* out, void* pre,
                                             std::int64_t M, int N, int K, int device) {
  using Kernel = typename G::Kernel;
  const auto sa = cutlass::make_cute_packed_stride(typename Kernel::StrideA{}, {static_cast<int>(M), K, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename Kernel::StrideB{}, {N, K, 1});
  const auto sd = cutlass::make_cute_packed_stride(typename Kernel::StrideD{}, {static_cast<int>(M), N, 1});
  typename G::Gemm::Arguments a{cutlass::gemm::GemmUniversalMode::kGemm,
                                {static_cast<int>(M), N, K, 1},
                                {static_cast<const Element*>(x), sa, static_cast<const Element*>(w), sb},
                                {{}, nullptr, sd, static_cast<Element*>(out), sd},
                                hardware(device)};
  if constexpr (std::is_same_v<G, ForwardGemm>) {
    // BiasAuxThenGelu's tree: {{{acc, bias, plus}, aux store}, GELU}.
    a.epilogue.thread = {
        {{{}, {static_cast<const Element*>(bias), Element(0), {}}, {}}, {static_cast<Element*>(pre), sd}}, {}};
  } else if constexpr (std::is_same_v<G, ForwardGemmStored>) {
    // BiasGeluStoreGrad's split tree: {input {{acc, bias, plus}, packed GELU and GELU'}, aux {{fetch,
    // high half}, store}, out {fetch, low half}}.
    a.epilogue.thread = {{{{}, {static_cast<const Element*>(bias), Element(0), {}}, {}}, {}},
                         {{{}, {}}, {static_cast<Element*>(pre), sd}},
                         {{}, {}}};
  } else {
    a.epilogue.thread.alpha = 1.f;
    a.epilogue.thread.beta = 0.f;
    a.epilogue.thread.bias_ptr = static_cast<const Element*>(bias);
    a.epilogue.thread.aux_ptr = static_cast<Element*>(pre);
    a.epilogue.thread.dAux = sd;
  }
  return a;
}

// rows R, F hidden units (dh's columns), E = dy's columns (the reduction).
template <class G = BackwardGemm>
typename G::Gemm::Arguments backwardArguments(const void* dy, const void* w2, const void* pre, void* dh, std::int64_t R,
                                              int F, int E, int device) {
  using Kernel = typename G::Kernel;
  const int rows = static_cast<int>(R);
  const auto sa = cutlass::make_cute_packed_stride(typename Kernel::StrideA{}, {F, E, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename Kernel::StrideB{}, {rows, E, 1});
  const auto sd = cutlass::make_cute_packed_stride(typename Kernel::StrideD{}, {F, rows, 1});
  typename G::Gemm::Arguments a{cutlass::gemm::GemmUniversalMode::kGemm,
                                {F, rows, E, 1},
                                {static_cast<const Element*>(w2), sa, static_cast<const Element*>(dy), sb},
                                {{}, nullptr, sd, static_cast<Element*>(dh), sd},
                                hardware(device)};
  if constexpr (std::is_same_v<G, BackwardGemm> || std::is_same_v<G, BackwardGemmStored>) {
    // GeluGradOfAux's and TimesStoredGrad's trees: {acc, aux load, the product}.
    a.epilogue.thread = {{}, {static_cast<const Element*>(pre), Element(0), sd}, {}};
  } else {
    a.epilogue.thread.alpha = 1.f;
    a.epilogue.thread.beta = 0.f;
    a.epilogue.thread.aux_ptr = static_cast<const Element*>(pre);
    a.epilogue.thread.dAux = sd;
  }
  return a;
}

template <class Gemm> bool launch(const typename Gemm::Arguments& a, void* workspace, cudaStream_t stream) {
  Gemm gemm;
  return gemm.can_implement(a) == cutlass::Status::kSuccess &&
         gemm.initialize(a, workspace, stream) == cutlass::Status::kSuccess &&
         gemm.run(stream) == cutlass::Status::kSuccess;
}

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// The GEMMs' workspace, rounded up to 256 bytes; the bias-gradient kernel's float32 partial sums
// follow it.
std::int64_t gemmBytes(std::int64_t rows, int hidden, int width, int device) {
  auto forward = [&](auto g) {
    using G = decltype(g);
    return G::Gemm::get_workspace_size(
        forwardArguments<G>(nullptr, nullptr, nullptr, nullptr, nullptr, rows, hidden, width, device));
  };
  auto backward = [&](auto g) {
    using G = decltype(g);
    return G::Gemm::get_workspace_size(
        backwardArguments<G>(nullptr, nullptr, nullptr, nullptr, rows, hidden, width, device));
  };
  const auto most =
      std::max({forward(ForwardGemm{}), forward(ForwardGemmLinComb{}), forward(ForwardGemmStored{}),
                backward(BackwardGemm{}), backward(BackwardGemmLinComb{}), backward(BackwardGemmStored{})});
  return (static_cast<std::int64_t>(most) + 255) / 256 * 256;
}

} // namespace

std::int64_t gemmGeluTrainingWorkspace(std::int64_t rows, int hidden, int width) {
  if (rows <= 0 || rows >= (1LL << 31) || hidden <= 0 || width <= 0) return -1;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return -1;
  return gemmBytes(rows, hidden, width, device) +
         static_cast<std::int64_t>(biasGradSlices(rows, hidden)) * hidden * static_cast<std::int64_t>(sizeof(float));
}

bool gemmBiasGeluAuxBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                         std::uint16_t* pre, std::int64_t M, int N, int K, void* workspace, void* stream, bool linComb,
                         bool storedGrad) {
  if (!fits(x, w, bias, out, M, N, K) || !aligned(pre) || (linComb && storedGrad)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  if (storedGrad)
    return launch<ForwardGemmStored::Gemm>(forwardArguments<ForwardGemmStored>(x, w, bias, out, pre, M, N, K, device),
                                           workspace, s);
  return linComb ? launch<ForwardGemmLinComb::Gemm>(
                       forwardArguments<ForwardGemmLinComb>(x, w, bias, out, pre, M, N, K, device), workspace, s)
                 : launch<ForwardGemm::Gemm>(forwardArguments(x, w, bias, out, pre, M, N, K, device), workspace, s);
}

bool gemmGeluGradBf16(const std::uint16_t* dy, const std::uint16_t* w2, const std::uint16_t* pre, std::uint16_t* dh,
                      std::uint16_t* dbias, std::int64_t rows, int hidden, int width, void* workspace, void* stream,
                      bool linComb, bool storedGrad) {
  if (!fits(dy, w2, pre, dh, rows, hidden, width) || (dbias && !aligned(dbias)) || !workspace) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const auto s = static_cast<cudaStream_t>(stream);
  if (linComb && storedGrad) return false;
  if (!(storedGrad
            ? launch<BackwardGemmStored::Gemm>(
                  backwardArguments<BackwardGemmStored>(dy, w2, pre, dh, rows, hidden, width, device), workspace, s)
        : linComb
            ? launch<BackwardGemmLinComb::Gemm>(
                  backwardArguments<BackwardGemmLinComb>(dy, w2, pre, dh, rows, hidden, width, device), workspace, s)
            : launch<BackwardGemm::Gemm>(backwardArguments(dy, w2, pre, dh, rows, hidden, width, device), workspace,
                                         s)))
    return false;
  if (!dbias) return true; // summed by the caller (weightBiasGradBf16's product)
  float* partial = reinterpret_cast<float*>(static_cast<char*>(workspace) + gemmBytes(rows, hidden, width, device));
  return biasGradBf16(dh, partial, dbias, rows, hidden, stream);
}

} // namespace atlascope::inference::cuda
