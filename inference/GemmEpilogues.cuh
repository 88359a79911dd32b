#pragma once
// What the CUTLASS GEMMs' epilogues compute per value (GemmGelu.cu: embedding's feed-forward;
// GemmGeluTraining.cu: training's), and the helpers both files' launchers share. CUDA only, with
// CUTLASS's headers (ATLASCOPE_CUTLASS_DIR).
#include "inference/GeluExp2.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <cutlass/cutlass.h>
#include <cutlass/kernel_hardware_info.h>
#include <cutlass/numeric_types.h>
#include <type_traits>

namespace atlascope::inference::cuda::gemm_gelu {

using Element = cutlass::bfloat16_t;
constexpr int kAlign = 8; // 16-byte accesses

// What the epilogue computes per value of x W^T + b (float32).
enum class Epi {
  Erff,     // GELU by erff (`--erff-gelu`, the epilogue before GeluExp2.h)
  Exp2,     // GELU by geluExp2
  BiasOnly, // no GELU: what the GELU costs (bench gemm-gelu only; not the model's function)
  Tanh,     // GELU's tanh form by geluTanh, unrounded input (the FP8 layer's: not bit-exact anyway)
};

// GELU of the pre-activation rounded to bf16 first, as the unfused path computes it (cuBLASLt
// writes x W^T + b as bf16, ATen's GELU reads it): the same numbers, not merely close ones (the
// GELU of the unrounded float32 value moved the parity fixture's smallest cosine from 0.999904
// to 0.999897). geluExp2 lands on the same bf16 as erff's for every input from -6 up at half
// the epilogue's cost. Measured and not kept: that rounding, and the output's, by integer
// arithmetic instead of conversion instructions (which share a quarter-rate unit with ex2):
// 1.863 and 1.941 ms against 1.678 (`bench gemm-gelu`, H200): the epilogue waits for the
// float32 and integer arithmetic, not for that unit.
// `Paired` (the default kernels'): on the device, two values' rounding in one conversion
// instruction (cvt.rn.bf16x2.f32, the same round-to-nearest-even as the scalar one, so the same
// bits) and each widened back by a shift or a mask, 1.5 instructions a value where the scalar
// conversion and its widening took 2; the kernel before rounds one value at a time.
#if defined(__CUDA_ARCH__)
// a and b rounded to bf16 (round to nearest even) in one conversion instruction and widened back to
// float32, a shift and a mask: the paired epilogues' 1.5 instructions a value, where the scalar
// conversion and its widening take 2.
__device__ __forceinline__ void roundPairBf16(float a, float b, float& ra, float& rb) {
  std::uint32_t p; // b rounded in the upper half, a in the lower
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(p) : "f"(b), "f"(a));
  ra = __uint_as_float(p << 16);
  rb = __uint_as_float(p & 0xffff0000u);
}
#endif

template <Epi E, bool Paired = false> struct RoundedGeluOf {
  // The GELU of a pre-activation already rounded to bf16 (Erff and Exp2).
  CUTLASS_HOST_DEVICE static float ofRounded(float r) { return E == Epi::Erff ? geluErff(r) : geluExp2(r); }
  template <class T> struct Op {
    CUTLASS_HOST_DEVICE T operator()(T const& value) const {
      if constexpr (E == Epi::BiasOnly) {
        return value;
      } else if constexpr (E == Epi::Tanh) {
        return T(geluTanh(static_cast<float>(value)));
      } else {
        return T(ofRounded(static_cast<float>(cutlass::bfloat16_t(static_cast<float>(value)))));
      }
    }
  };
  template <class T, int N> struct Op<cutlass::Array<T, N>> {
    CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& value) const {
      cutlass::Array<T, N> y;
#if defined(__CUDA_ARCH__)
      if constexpr (Paired && N % 2 == 0 && std::is_same_v<T, float> && (E == Epi::Erff || E == Epi::Exp2)) {
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i += 2) {
          float lo, hi;
          roundPairBf16(value[i], value[i + 1], lo, hi);
          y[i] = ofRounded(lo);
          y[i + 1] = ofRounded(hi);
        }
        return y;
      } else
#endif
      {
        Op<T> gelu;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; ++i) y[i] = gelu(value[i]);
        return y;
      }
    }
  };
};
template <class T> using GeluExp2Paired = RoundedGeluOf<Epi::Exp2, true>::Op<T>;
template <class T> using GeluErff = RoundedGeluOf<Epi::Erff>::Op<T>;
template <class T> using GeluExp2 = RoundedGeluOf<Epi::Exp2>::Op<T>;
template <class T> using BiasOnly = RoundedGeluOf<Epi::BiasOnly>::Op<T>;
template <class T> using GeluTanh = RoundedGeluOf<Epi::Tanh>::Op<T>;

// The multiprocessor count, once per device (the persistent scheduler sizes its grid by it).
inline int smCount(int device) {
  static std::atomic<int> counts[64] = {};
  if (device < 0 || device >= 64) return 0;
  if (counts[device].load() == 0)
    counts[device].store(cutlass::KernelHardwareInfo::query_device_multiprocessor_count(device));
  return counts[device].load();
}

// GELU's backward for the fused product dh = GELU'(z) o (dy W): `d` the float32 accumulator of dy W,
// `z` the saved pre-activation (bf16, exact in float32). The accumulator is rounded to bf16 first
// and the product after, as the unfused path computes it (cuBLASLt writes dy W as bf16, then the
// GELU-gradient kernel multiplies in float32 and rounds). GELU'(z) by geluGradExp2 (GeluExp2.h):
// ATen's formula with erff and expf made the epilogue, not the product, the kernel's cost.
template <class T> struct GeluGradExp2 {
  CUTLASS_HOST_DEVICE T operator()(T const& d, T const& z) const {
    const float dr = static_cast<float>(cutlass::bfloat16_t(static_cast<float>(d)));
    return T(static_cast<float>(cutlass::bfloat16_t(dr * geluGradExp2(static_cast<float>(z)))));
  }
};
template <class T, int N> struct GeluGradExp2<cutlass::Array<T, N>> {
  CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& d,
                                                      cutlass::Array<T, N> const& z) const {
    cutlass::Array<T, N> y;
    GeluGradExp2<T> grad;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = grad(d[i], z[i]);
    return y;
  }
};

// y = round_bf16(d) * f(z) for each value: d's rounding two values at a time on the device
// (cvt.rn.bf16x2.f32), the product left in float32 for the compute node's conversion to bf16 (a
// product rounded before it would be rounded again to the same bits). GeluGradExp2Paired's and
// TimesStoredGeluGrad's.
template <class T, int N, class F>
CUTLASS_HOST_DEVICE cutlass::Array<T, N> roundedTimes(cutlass::Array<T, N> const& d, cutlass::Array<T, N> const& z,
                                                      F f) {
  cutlass::Array<T, N> y;
#if defined(__CUDA_ARCH__)
  if constexpr (N % 2 == 0 && std::is_same_v<T, float>) {
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; i += 2) {
      float lo, hi;
      roundPairBf16(d[i], d[i + 1], lo, hi);
      y[i] = lo * f(z[i]);
      y[i + 1] = hi * f(z[i + 1]);
    }
    return y;
  } else
#endif
  {
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i)
      y[i] = T(static_cast<float>(cutlass::bfloat16_t(static_cast<float>(d[i]))) * f(static_cast<float>(z[i])));
    return y;
  }
}

// GeluGradExp2 for a tree epilogue whose compute node converts the result to bf16 itself
// (GemmGeluTraining.cu's GeluGradOfAux): the accumulator's rounding to bf16 two values at a time
// (cvt.rn.bf16x2.f32, as GeluExp2Paired) and the product left in float32 for that conversion,
// where GeluGradExp2 rounded it and the conversion rounded the rounded value again. The same bits.
template <class T> struct GeluGradExp2Paired : GeluGradExp2<T> {};
template <class T, int N> struct GeluGradExp2Paired<cutlass::Array<T, N>> {
  CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& d,
                                                      cutlass::Array<T, N> const& z) const {
    return roundedTimes(d, z, [](float x) { return geluGradExp2(x); });
  }
};

// Training's stored-gradient epilogues (`--stored-gelu-grad`, GemmGeluTraining.cu): the forward
// rounds h = x W^T + b to bf16 once (two values at a time, as GeluExp2Paired) and writes both GELU(h)
// and GELU'(h) from it (geluAndGradExp2: the polynomial and its ex2 once for both), where the
// backward evaluated GELU'(h) from the stored h; the backward's epilogue is then one product, dh =
// GELU'(h) o (dy W2), with dy W2 rounded to bf16 first as the unfused path does. GELU'(h) stored in
// bf16 is rounded once more than ATen's gelu_backward (which keeps it in float32): at most one bf16
// step more in dh (tests/inference).
// The forward's epilogue is CUTLASS's split tree (one input tree, two output trees), and its
// nodes' values are arrays of one element type: GeluAndGradPacked carries each value's two results
// as one 32-bit word, GELU(h)'s bf16 in the low half and GELU'(h)'s in the high half (as float bits;
// the nodes after it only copy them), and LowHalf / HighHalf widen each back to a float32 that is
// bf16-exact (its node's conversion to bf16 then rounds nothing). Computed in two trees instead, the
// shared pieces were evaluated twice (3 ex2 and 16 FMAs a value in the PTX, not 2 and 9: the
// device's inline asm is not merged across the trees).
template <class T> struct GeluAndGradPacked {
  CUTLASS_HOST_DEVICE T operator()(T const& value) const {
    float gelu, grad;
    geluAndGradExp2(static_cast<float>(cutlass::bfloat16_t(static_cast<float>(value))), gelu, grad);
    const std::uint32_t lo = cutlass::bfloat16_t(gelu).raw(), hi = cutlass::bfloat16_t(grad).raw();
    const std::uint32_t word = lo | (hi << 16);
    float packed;
    memcpy(&packed, &word, sizeof(packed));
    return T(packed);
  }
};
template <class T, int N> struct GeluAndGradPacked<cutlass::Array<T, N>> {
  CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& value) const {
    cutlass::Array<T, N> y;
#if defined(__CUDA_ARCH__)
    if constexpr (N % 2 == 0 && std::is_same_v<T, float>) {
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < N; i += 2) {
        float r[2];
        roundPairBf16(value[i], value[i + 1], r[0], r[1]);
        CUTLASS_PRAGMA_UNROLL
        for (int j = 0; j < 2; ++j) {
          float gelu, grad;
          geluAndGradExp2(r[j], gelu, grad);
          std::uint32_t word; // grad's bf16 in the upper half, gelu's in the lower
          asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(word) : "f"(grad), "f"(gelu));
          y[i + j] = __uint_as_float(word);
        }
      }
      return y;
    } else
#endif
    {
      GeluAndGradPacked<T> packed;
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < N; ++i) y[i] = packed(value[i]);
      return y;
    }
  }
};
// One half of GeluAndGradPacked's word as a float32 (bf16-exact): Low GELU(h), High GELU'(h).
template <bool High> struct HalfOfPacked {
  template <class T> struct Op {
    CUTLASS_HOST_DEVICE T operator()(T const& packed) const {
      std::uint32_t word;
      const float p = static_cast<float>(packed);
      memcpy(&word, &p, sizeof(word));
      word = High ? (word & 0xffff0000u) : (word << 16);
      float out;
      memcpy(&out, &word, sizeof(out));
      return T(out);
    }
  };
  template <class T, int N> struct Op<cutlass::Array<T, N>> {
    CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& packed) const {
      cutlass::Array<T, N> y;
      Op<T> half;
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < N; ++i) y[i] = half(packed[i]);
      return y;
    }
  };
};
template <class T> using LowHalf = HalfOfPacked<false>::Op<T>;
template <class T> using HighHalf = HalfOfPacked<true>::Op<T>;
// dh = round(d) * g: `d` the float32 accumulator of dy W2, `g` the stored GELU'(h) (bf16, exact in
// float32); the product left in float32 for the node's conversion to bf16.
template <class T> struct TimesStoredGeluGrad {
  CUTLASS_HOST_DEVICE T operator()(T const& d, T const& g) const {
    return T(static_cast<float>(cutlass::bfloat16_t(static_cast<float>(d))) * static_cast<float>(g));
  }
};
template <class T, int N> struct TimesStoredGeluGrad<cutlass::Array<T, N>> {
  CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& d,
                                                      cutlass::Array<T, N> const& g) const {
    return roundedTimes(d, g, [](float x) { return x; });
  }
};

inline bool fits(const void* x, const void* w, const void* bias, const void* out, std::int64_t M, int N, int K) {
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return M > 0 && M < (1LL << 31) && N > 0 && K > 0 && N % kAlign == 0 && K % kAlign == 0 && aligned(x) && aligned(w) &&
         aligned(bias) && aligned(out);
}

} // namespace atlascope::inference::cuda::gemm_gelu
