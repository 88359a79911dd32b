#pragma once
// What GemmGelu.cu and GemmGeluOverlap.cu share: the epilogue's function, the CUTLASS arguments of a
// kernel and its launch. Two files so that the device's build compiles their kernels in parallel
// (each CUTLASS kernel is ~30 s of nvcc).
#include "inference/GeluExp2.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/collective/detail.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/epilogue/thread/activation.h>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>
#include <type_traits>

namespace atlascope::inference::cuda::gemm_gelu {

using namespace cute;

using Element = cutlass::bfloat16_t;
constexpr int kAlign = 8; // 16-byte accesses

// What the epilogue computes per value of x W^T + b (float32).
enum class Epi {
  Erff,     // GELU by erff (`--erff-gelu`, the epilogue before GeluExp2.h)
  Exp2,     // GELU by geluExp2
  BiasOnly, // no GELU: what the GELU costs (bench gemm-gelu only; not the model's function)
};

// GELU of the pre-activation rounded to bf16 first, as the unfused path computes it (cuBLASLt
// writes x W^T + b as bf16, ATen's GELU reads it): the same numbers, not merely close ones (the
// GELU of the unrounded float32 value moved the parity fixture's smallest cosine from 0.999904
// to 0.999897). geluExp2 lands on the same bf16 as erff's for every input from -6 up at half
// the epilogue's cost. Measured and not kept: that rounding, and the output's, by integer
// arithmetic instead of conversion instructions (which share a quarter-rate unit with ex2):
// 1.863 and 1.941 ms against 1.678 (`bench gemm-gelu`, H200): the epilogue waits for the
// float32 and integer arithmetic, not for that unit.
template <Epi E> struct RoundedGeluOf {
  template <class T> struct Op {
    CUTLASS_HOST_DEVICE T operator()(T const& value) const {
      if constexpr (E == Epi::BiasOnly) {
        return value;
      } else {
        const float r = static_cast<float>(cutlass::bfloat16_t(static_cast<float>(value)));
        return T(E == Epi::Erff ? geluErff(r) : geluExp2(r));
      }
    }
  };
  template <class T, int N> struct Op<cutlass::Array<T, N>> {
    CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& value) const {
      cutlass::Array<T, N> y;
      Op<T> gelu;
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < N; ++i) y[i] = gelu(value[i]);
      return y;
    }
  };
};
template <class T> using GeluErff = RoundedGeluOf<Epi::Erff>::Op<T>;
template <class T> using GeluExp2 = RoundedGeluOf<Epi::Exp2>::Op<T>;
template <class T> using BiasOnly = RoundedGeluOf<Epi::BiasOnly>::Op<T>;

// The multiprocessor count, once per device (the persistent schedulers size their grid by it).
inline int smCount(int device) {
  static std::atomic<int> counts[64] = {};
  if (device < 0 || device >= 64) return 0;
  if (counts[device].load() == 0)
    counts[device].store(cutlass::KernelHardwareInfo::query_device_multiprocessor_count(device));
  return counts[device].load();
}

template <class G>
typename G::Gemm::Arguments arguments(const void* x, const void* w, const void* bias, void* out, std::int64_t M, int N,
                                      int K, int device) {
  using Kernel = typename G::Kernel;
  using Gemm = typename G::Gemm;
  const auto sa = cutlass::make_cute_packed_stride(typename Kernel::StrideA{}, {static_cast<int>(M), K, 1});
  const auto sb = cutlass::make_cute_packed_stride(typename Kernel::StrideB{}, {N, K, 1});
  const auto sd = cutlass::make_cute_packed_stride(typename Kernel::StrideD{}, {static_cast<int>(M), N, 1});
  cutlass::KernelHardwareInfo hw;
  hw.device_id = device;
  hw.sm_count = smCount(device);
  typename Gemm::Arguments a{cutlass::gemm::GemmUniversalMode::kGemm,
                             {static_cast<int>(M), N, K, 1},
                             {static_cast<const Element*>(x), sa, static_cast<const Element*>(w), sb},
                             {{}, nullptr, sd, static_cast<Element*>(out), sd},
                             hw};
  a.epilogue.thread.alpha = 1.f;
  a.epilogue.thread.beta = 0.f;
  a.epilogue.thread.bias_ptr = static_cast<const Element*>(bias);
  return a;
}

inline bool fits(const void* x, const void* w, const void* bias, const void* out, std::int64_t M, int N, int K) {
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return M > 0 && M < (1LL << 31) && N > 0 && K > 0 && N % kAlign == 0 && K % kAlign == 0 && aligned(x) && aligned(w) &&
         aligned(bias) && aligned(out);
}

template <class G>
bool run(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out, std::int64_t M,
         int N, int K, void* workspace, cudaStream_t stream, int device) {
  const auto a = arguments<G>(x, w, bias, out, M, N, K, device);
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

// bf16 bits to float, two at a time (the low half is the lower column), and back: the hand-written
// epilogues' pieces.
CUTLASS_DEVICE float lowHalf(std::uint32_t w) { return __uint_as_float(w << 16); }
CUTLASS_DEVICE float highHalf(std::uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
CUTLASS_DEVICE std::uint32_t pairBits(__nv_bfloat162 v) { return reinterpret_cast<std::uint32_t&>(v); }
// GELU (geluExp2) of two bf16 pre-activations, rounded to bf16.
CUTLASS_DEVICE std::uint32_t geluPair(std::uint32_t w) {
  return pairBits(__floats2bfloat162_rn(geluExp2(lowHalf(w)), geluExp2(highHalf(w))));
}

// The kernel whose epilogue runs on warps of its own (GemmGeluOverlap.cu): variant 1 of gemmGeluVariantName,
// GELU by geluExp2 or none (`biasOnly`); needs no workspace. False: N past 4,096, or CUTLASS's
// main loop declined.
bool runOverlap(bool biasOnly, const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias,
                std::uint16_t* out, std::int64_t M, int N, int K, cudaStream_t stream, int device);

// The kernel whose product warp groups apply the GELU to one tile while the tensor cores compute
// the next (GemmGeluPipelined.cu): variant 2; as runOverlap otherwise.
bool runPipelined(bool biasOnly, const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias,
                  std::uint16_t* out, std::int64_t M, int N, int K, cudaStream_t stream, int device);

} // namespace atlascope::inference::cuda::gemm_gelu
