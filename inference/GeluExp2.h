#pragma once
// The erf GELU, x Phi(x), for the fused GEMM + GELU's epilogue (GemmGelu.cu) at a fraction of
// erff's cost: Phi(-|x|) = 2^q(|x|), q a degree-7 polynomial, and Phi(x) = 1 - Phi(-x) for x >= 0.
// The epilogue evaluates GELU on every value of the [R, 2048] hidden activations (3.2 billion per
// embedding batch) while the tensor cores wait: erff's two branches, both evaluated and one
// selected, cost ~16 more instructions per value than this (10 and one ex2 on the
// special-function unit).
//
// Why this form: an input of bf16 (the epilogue rounds the pre-activation first, as the unfused
// path) has 8 significant bits and the output is rounded to bf16, so the approximation only has to
// land on the same bf16 as the exact GELU. q fits log2 Phi(-t) on [0, 6] (Lawson's minimax,
// float32 coefficients) to 4.7e-6 in log2 units, i.e. Phi to 3.3e-6 relative, for x >= 0 and x < 0
// alike (no cancellation: Phi(-|x|) is computed, never 1 - something near 1). Every bf16 input from
// -6 up, all 65,536 checked (tests/inference/test_celltransformer_parity, and on the GPU by
// `atlascope-cli parity`), rounds to the same bf16 as the erf GELU in double precision. ATen's
// float32 formula, x/2 (1 + erf(x/sqrt 2)), loses bits where 1 + erf is near 0: with glibc's erff
// 45 bf16 inputs below -4 differ from it, by at most 1.2e-7; with CUDA's erff on the H200, 50, by
// at most 1.5e-5 (near x = -3.1): there geluExp2 is the closer one. Below -6 the GELU is under 6e-9
// in magnitude and the polynomial, extrapolated, stays within 20% of it down to -10; on the device
// ex2 flushes to 0 beyond |x| ~ 12.7, where the exact GELU is below 1e-36. |x| is clamped at 16 so
// that no power overflows: a huge input gives x or 0 as the exact GELU does, +inf gives +inf, -inf
// gives 0 (its limit; ATen's formula gives NaN, -inf * 0) and NaN gives NaN.
#include <cmath>

#if defined(__CUDACC__)
#define ATLASCOPE_GELU_INLINE __host__ __device__ __forceinline__
#else
#define ATLASCOPE_GELU_INLINE inline
#endif

namespace atlascope::inference {

// The erf GELU as ATen computes it in float32 (and the epilogue before geluExp2, --erff-gelu).
ATLASCOPE_GELU_INLINE float geluErff(float x) { return x * 0.5f * (1.f + erff(x * 0.70710678118654752440f)); }

// min(a, 16), NaN kept (fminf would return 16): a NaN input stays NaN through the polynomial.
ATLASCOPE_GELU_INLINE float min16KeepNan(float a) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(16.f));
  return r;
#else
  return a < 16.f || a != a ? a : 16.f;
#endif
}

ATLASCOPE_GELU_INLINE float geluExp2(float x) {
  const float t = min16KeepNan(fabsf(x));
  float q = -1.834846785e-06f;
  q = fmaf(q, t, 6.159898476e-05f);
  q = fmaf(q, t, -9.305300773e-04f);
  q = fmaf(q, t, 8.507910185e-03f);
  q = fmaf(q, t, -5.396010354e-02f);
  q = fmaf(q, t, -4.584643543e-01f);
  q = fmaf(q, t, -1.151251078e+00f);
  q = fmaf(q, t, -9.999952912e-01f);
  float h; // Phi(-|x|)
#if defined(__CUDA_ARCH__)
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(h) : "f"(q)); // 2 ulp; flushes below 2^-126 (|x| > ~12.7)
#else
  h = std::exp2(q);
#endif
  // x Phi(x) = max(x, 0) - |x| Phi(-|x|) for either sign: one max and one fused multiply-add, where
  // a select between x (1 - h) and x h took four instructions. t for |x|: from 16 up, h is 0 in
  // float32 (2^q(16) ~ 2^-235), so +inf gives +inf rather than inf - inf.
  return fmaf(-t, h, fmaxf(x, 0.f));
}

// GELU's tanh form, x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), ATen's gelu(approximate="tanh"),
// with the device's tanh.approx.f32 (max relative error 2^-10.99): six instructions a value where
// geluExp2 and its input's rounding take ~13. Only the FP8 feed-forward (CellTransformer::
// setFp8FeedForward) uses it: an approximation within a declared lower-precision path, whose
// cosine to float32 `parity` checks (the form differs from the erf GELU by at most 4.7e-4, at x =
// -2.7, where the GELU is -0.0094; the e4m3 inputs' rounding, 2^-4 relative, is far larger). Large
// |x|: tanh saturates to +-1, giving x or 0.
ATLASCOPE_GELU_INLINE float geluTanh(float x) {
  const float u = x * fmaf(0.035677408136300125f, x * x, 0.7978845608028654f);
  float t;
#if defined(__CUDA_ARCH__)
  asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(u));
#else
  t = std::tanh(u);
#endif
  const float h = 0.5f * x;
  return fmaf(h, t, h);
}

} // namespace atlascope::inference
