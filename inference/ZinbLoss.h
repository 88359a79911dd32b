#pragma once
// The training loss per value, the zero-inflated negative binomial NLL of zinbNll
// (CellTransformer.h), and its gradient, written out for one fused pass each way
// (zinbNllRowMean: the CPU loop in CellTransformer.cpp and FusedKernels.cu's kernels share these
// functions). Composed from ATen's operations, the loss and its backward ran as 68 small kernels of
// [cells, genes] float32 a training step (logs, lgamma, digamma, softplus, where, and the sums of
// theta's four gradients); fused into 2, the step's kernel trace on the H200 has 66 fewer kernels
// and ~0.14 ms less (call s14-3 of docs/bench/gpu-train-epilogue-trees-2026-12-04.jsonl).
//
// The forward evaluates the composite's operations in its order, in float32 (the same functions:
// expf, logf, log1pf, lgammaf), so that the values agree to rounding. The gradient is the
// composite's derivative, taken by hand (x = exp(xLog) - 1 is data, no gradient):
//   l = log(theta + mu + eps), r = 1 / (theta + mu + eps), a = theta (log(theta + eps) - l),
//   x < eps (zero counts): -(softplus(a - pi) - softplus(-pi)), whose derivatives are
//     mu: -s da/dmu, theta: -s da/dtheta, pi: s - sigma(-pi), with s = sigma(a - pi);
//   otherwise: -(a - pi - softplus(-pi) + x (log(mu + eps) - l) + lgamma(x + theta) - lgamma(theta)
//     - lgamma(x + 1)), whose derivatives are mu: -(da/dmu + x (1/(mu + eps) - r)),
//     theta: -(da/dtheta - x r + digamma(x + theta) - digamma(theta)), pi: 1 - sigma(-pi);
//   da/dmu = -theta r, da/dtheta = log(theta + eps) - l + theta (1/(theta + eps) - r), evaluated
//   without the differences that cancel (see nllGrad).
// Only the branch the value takes is differentiated: the composite's `where` gives the other
// branch a zero gradient, which it then multiplies by that branch's derivatives (0 there too,
// unless one is infinite, where it gives NaN and this gives the finite gradient).
// tests/inference/test_trainer (fusedLossMatchesComposite) checks both against autograd on the
// CPU; `atlascope-cli parity` checks the kernels against ATen on the GPU.
#include <cmath>

#if defined(__CUDACC__)
#define ATLASCOPE_ZINB_INLINE __host__ __device__ __forceinline__
#else
#define ATLASCOPE_ZINB_INLINE inline
#endif

namespace atlascope::inference::zinb {

constexpr float kEps = 1e-8f;

// ATen's softplus with beta 1 and threshold 20: x itself above the threshold.
ATLASCOPE_ZINB_INLINE float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }
ATLASCOPE_ZINB_INLINE float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
ATLASCOPE_ZINB_INLINE float lgammaOf(float x) {
#if defined(__CUDA_ARCH__)
  return lgammaf(x);
#else
  return std::lgamma(x);
#endif
}

// The digamma function for x > 0 (the only arguments here: theta and x + theta are positive):
// the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 6, then the asymptotic series to x^-10
// (its error below 1e-10 there). 0 gives -inf; negative values and NaN give NaN.
ATLASCOPE_ZINB_INLINE float digamma(float x) {
  if (!(x > 0.f)) return x == 0.f ? -INFINITY : NAN;
  float r = 0.f;
  while (x < 6.f) {
    r -= 1.f / x;
    x += 1.f;
  }
  const float f = 1.f / (x * x);
  const float t = f * (-1.f / 12.f + f * (1.f / 120.f + f * (-1.f / 252.f + f * (1.f / 240.f + f * (-1.f / 132.f)))));
  return r + logf(x) - 0.5f / x + t;
}

// A head's value from its pre-activation, as CellTransformer's heads give mu and theta:
// exp(l) + 1e-15, in float32 (ATen adds the double scalar to a float32 tensor in float32). The
// fused heads (zinbHeadsRowMean) evaluate the loss from the pre-activations with this, so that its
// values and gradients are the separate heads' bit for bit on a GPU (ATen's exp is expf there).
constexpr float kHeadEps = 1e-15f;

// The NLL of one value (zinbNll's element): xLog the log input, mu and theta the negative binomial's
// mean and dispersion, pi the zero-inflation logit.
ATLASCOPE_ZINB_INLINE float nll(float xLog, float mu, float theta, float pi) {
  const float x = expf(xLog) - 1.f;
  const float spNegPi = softplus(-pi);
  const float l = logf(theta + mu + kEps);
  const float a = theta * (logf(theta + kEps) - l);
  if (x < kEps) return -(softplus(a - pi) - spNegPi);
  return -(a - pi - spNegPi + x * (logf(mu + kEps) - l) + lgammaOf(x + theta) - lgammaOf(theta) - lgammaOf(x + 1.f));
}

// g times the NLL's derivatives by mu, theta and pi (see above).
ATLASCOPE_ZINB_INLINE void nllGrad(float xLog, float mu, float theta, float pi, float g, float& dmu, float& dtheta,
                                   float& dpi) {
  const float x = expf(xLog) - 1.f;
  const float r = 1.f / (theta + mu + kEps);
  // log(theta + eps) - l as one logarithm, and the differences of reciprocals as products: where
  // mu and theta differ by orders of magnitude the composite's differences cancel (its dmu off by
  // up to 1e-4 relative in float32), these do not.
  const float c = -log1pf(mu / (theta + kEps));
  const float a = theta * c;
  const float daMu = -theta * r;
  const float daTheta = c + mu * r * (theta / (theta + kEps)); // theta mu: no overflow
  if (x < kEps) {
    const float s = sigmoid(a - pi);
    dmu = -g * s * daMu;
    dtheta = -g * s * daTheta;
    // s - sigma(-pi); where a is near 0 (theta much larger than mu) that difference cancels, and
    // sigma(u) - sigma(v) = -sigma(u) sigma(-v) expm1(v - u) does not (elsewhere expm1 may overflow).
    dpi = fabsf(a) < 1.f ? -g * s * sigmoid(pi) * expm1f(-a) : g * (s - sigmoid(-pi));
    return;
  }
  dmu = -g * theta * r * ((x - mu - kEps) / (mu + kEps)); // da/dmu + x (1/(mu + eps) - r)
  dtheta = -g * (daTheta - x * r + digamma(x + theta) - digamma(theta));
  dpi = g * sigmoid(pi); // 1 - sigma(-pi), without the difference
}

} // namespace atlascope::inference::zinb
