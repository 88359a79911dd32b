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
// `atlascope-cli parity`), rounds to the same bf16 as the erf GELU in double precision. The
// degree is not slack: the input nearest a rounding tie (x = -0.336) needs 8.2e-7 relative
// accuracy there, and 9 inputs need better than 1e-5 (all 48,175 bf16 inputs from -6 up, in long
// double), where a degree-6 fit would be off by tens of times that. ATen's
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

// The erf GELU's derivative, Phi(x) + x phi(x), as ATen's gelu_backward computes it (float32):
// training's GELU backward (FusedKernels.cu's kernel and the fused GEMM's epilogue, GemmGeluTraining.cu).
ATLASCOPE_GELU_INLINE float geluGradErff(float x) {
  constexpr float kAlpha = 0.70710678118654752440f;                                 // 1 / sqrt(2)
  constexpr float kBeta = 1.12837916709551257390f * 0.70710678118654752440f * 0.5f; // 1 / sqrt(2 pi)
  const float cdf = 0.5f * (1.0f + erff(x * kAlpha));
  const float pdf = expf(-0.5f * x * x) * kBeta;
  return cdf + x * pdf;
}

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

// 2^v by the device's ex2.approx (2 ulp; flushes below 2^-126), std::exp2 on the host.
ATLASCOPE_GELU_INLINE float exp2Fast(float v) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
  return r;
#else
  return std::exp2(v);
#endif
}

// q(t) ~ log2 Phi(-t), fitted on [0, 6] and extrapolated to 16 (see above): Phi(-t) = 2^q(t).
ATLASCOPE_GELU_INLINE float normalTailLog2(float t) {
  float q = -1.834846785e-06f;
  q = fmaf(q, t, 6.159898476e-05f);
  q = fmaf(q, t, -9.305300773e-04f);
  q = fmaf(q, t, 8.507910185e-03f);
  q = fmaf(q, t, -5.396010354e-02f);
  q = fmaf(q, t, -4.584643543e-01f);
  q = fmaf(q, t, -1.151251078e+00f);
  return fmaf(q, t, -9.999952912e-01f);
}

ATLASCOPE_GELU_INLINE float geluExp2(float x) {
  const float t = min16KeepNan(fabsf(x));
  const float h = exp2Fast(normalTailLog2(t)); // Phi(-|x|); 0 on the device for |x| > ~12.7
  // x Phi(x) = max(x, 0) - |x| Phi(-|x|) for either sign: one max and one fused multiply-add, where
  // a select between x (1 - h) and x h took four instructions. t for |x|: from 16 up, h is 0 in
  // float32 (2^q(16) ~ 2^-235), so +inf gives +inf rather than inf - inf.
  return fmaf(-t, h, fmaxf(x, 0.f));
}

// The erf GELU's derivative, Phi(x) + x phi(x), from geluExp2's pieces: Phi(-|x|) = 2^q(|x|) (the
// same polynomial, 3.3e-6 relative up to |x| = 6) and phi(x) = 2^(-x^2 log2(e) / 2) / sqrt(2 pi) by ex2, ~16
// instructions where erff and expf take ~30 (the backward's fused epilogue, GemmGeluTraining.cu).
// Within 2e-6 of the exact derivative for every bf16 input (tests/inference); ATen's float32
// formula, 0.5 (1 + erf(x / sqrt 2)) + x phi(x), cancels below -5, where this one does not.
ATLASCOPE_GELU_INLINE float geluGradExp2(float x) {
  const float t = min16KeepNan(fabsf(x));
  const float q = normalTailLog2(t), e = -0.72134752044448170368f * t * t; // -x^2 log2(e) / 2
  const float h = exp2Fast(q), p = exp2Fast(e);                            // Phi(-|x|), phi(x) sqrt(2 pi)
  const float cdf = x >= 0.f ? 1.f - h : h;
  // t with x's sign: |x| >= 16 gives the limits 1 and 0 exactly (not inf * 0 for an infinite x).
  return fmaf(copysignf(t, x) * 0.39894228040143267794f, p, cdf);
}

// geluExp2(x) and geluGradExp2(x) together, bit for bit the two functions' values (the same
// operations in the same order), their shared pieces (|x| clamped, the polynomial, its ex2) computed
// once: the fused feed-forward's forward epilogue with `--stored-gelu-grad` (GemmEpilogues.cuh).
ATLASCOPE_GELU_INLINE void geluAndGradExp2(float x, float& gelu, float& grad) {
  const float t = min16KeepNan(fabsf(x));
  const float q = normalTailLog2(t), e = -0.72134752044448170368f * t * t;
  const float h = exp2Fast(q), p = exp2Fast(e);
  gelu = fmaf(-t, h, fmaxf(x, 0.f));
  const float cdf = x >= 0.f ? 1.f - h : h;
  grad = fmaf(copysignf(t, x) * 0.39894228040143267794f, p, cdf);
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
