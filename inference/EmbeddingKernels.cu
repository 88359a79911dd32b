// The small stages of an embedding batch around the encoder, as one kernel each (see
// FusedKernels.h): the token assembly, the attention pool over the packed sequences and the
// decoder's two-token attention. In ATen they were ~70 launches per batch of gathers, copies,
// casts and elementwise operations on small tensors (5 ms of a 27 ms batch on the H200), with the
// pool reading a padded copy of the encoder output (zeros, then a scatter into it).
#include "inference/FusedKernels.h"

#include <algorithm>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <type_traits>

namespace atlascope::inference::cuda {

namespace {

// ---- token assembly: one 16-byte vector per thread.
__global__ void assembleTokensKernel(const uint4* __restrict__ table, const uint4* __restrict__ cls,
                                     const long long* __restrict__ rows, const long long* __restrict__ order,
                                     long long tokens, long long cells, long long positions, int vecs,
                                     long long strideVecs, uint4* __restrict__ out, int* __restrict__ index) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= positions * vecs) return;
  const long long pos = i / vecs;
  const int c = static_cast<int>(i - pos * vecs);
  const long long o = order[pos];
  uint4 v = make_uint4(0, 0, 0, 0); // add_zero_attn's slot
  long long row = -2;
  if (o < tokens) {
    row = rows[o];
    if (out) v = table[row * strideVecs + c];
  } else if (o < tokens + cells) {
    row = -1;
    if (out) v = cls[c];
  }
  if (out) out[i] = v;
  if (index && c == 0) index[pos] = static_cast<int>(row);
}

// ---- attention pool: one block per neighbourhood, E threads (E / 32 warps).
constexpr int kMaxHeads = 16;

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// This lane's share of a head's score, a . x over its C vectors of 4 columns (a: the head's row of
// A in shared memory; float4 reads of consecutive lanes: no bank conflicts).
template <int C> __device__ __forceinline__ float laneDot(const float* a, const float (&x)[4 * C], int lane) {
  float dot = 0.f;
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const float4 w = *reinterpret_cast<const float4*>(a + lane * 4 + 128 * k);
    dot += w.x * x[4 * k] + w.y * x[4 * k + 1] + w.z * x[4 * k + 2] + w.w * x[4 * k + 3];
  }
  return dot;
}

// laneDot for two tokens (x and y) at once: each float4 of A read from shared memory serves both,
// where pass 1's shared-memory reads of A (24 16-byte reads a lane per token at E 384, 8 heads)
// were a third of the pool's time. The same expression per token as laneDot (the same bits).
template <int C>
__device__ __forceinline__ void laneDot2(const float* a, const float (&x)[4 * C], const float (&y)[4 * C], int lane,
                                         float& dx, float& dy) {
  dx = 0.f;
  dy = 0.f;
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const float4 w = *reinterpret_cast<const float4*>(a + lane * 4 + 128 * k);
    dx += w.x * x[4 * k] + w.y * x[4 * k + 1] + w.z * x[4 * k + 2] + w.w * x[4 * k + 3];
    dy += w.x * y[4 * k] + w.y * y[4 * k + 1] + w.z * y[4 * k + 2] + w.w * y[4 * k + 3];
  }
}

// Row j's values (a lane's 4 C of them) normalised as ATen's LayerNorm (float32 statistics, the
// output rounded to bf16) into x; lane 0 records the row's mean and 1 / std when `record`.
template <int C>
__device__ __forceinline__ void normalizedRow(const __nv_bfloat16* row, int lane, float (&x)[4 * C], float* mean,
                                              float* rstd, bool record) {
  constexpr int E = 128 * C;
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const uint2 raw = *reinterpret_cast<const uint2*>(row + lane * 4 + 128 * k);
    const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&raw.x);
    const __nv_bfloat162 hi = *reinterpret_cast<const __nv_bfloat162*>(&raw.y);
    x[4 * k] = __low2float(lo);
    x[4 * k + 1] = __high2float(lo);
    x[4 * k + 2] = __low2float(hi);
    x[4 * k + 3] = __high2float(hi);
  }
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < 4 * C; ++i) sum += x[i];
  const float m = warpSum(sum) * (1.f / E);
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < 4 * C; ++i) {
    const float d = x[i] - m;
    sq += d * d;
  }
  const float r = rsqrtf(warpSum(sq) * (1.f / E) + 1e-5f);
#pragma unroll
  for (int i = 0; i < 4 * C; ++i) x[i] = __bfloat162float(__float2bfloat16((x[i] - m) * r));
  if (record && lane == 0) {
    *mean = m;
    *rstd = r;
  }
}

// A warp's head of the pool's softmax over n observed scores s (each lane's j = lane, lane + 32,
// ...), bias_k's score and add_zero_attn's 0: s[j] becomes exp(s[j] - m), m their maximum; returns
// 1 / the sum of all n + 2 exponentials, and exp(bias - m) in eb. The forward (packedPoolBody) and
// the backward (packedPoolGradKernel, which recomputes a) call the same operations: the same a.
__device__ __forceinline__ float softmaxExps(float* s, int n, float bias, int lane, float& eb) {
  float m = fmaxf(bias, 0.f);
  for (int j = lane; j < n; j += 32) m = fmaxf(m, s[j]);
  m = warpMax(m);
  float total = 0.f;
  for (int j = lane; j < n; j += 32) {
    const float e = __expf(s[j] - m);
    s[j] = e;
    total += e;
  }
  total = warpSum(total);
  eb = __expf(bias - m);
  const float ez = __expf(-m);
  total += eb + ez;
  return 1.f / total;
}

// The 8 heads' dot products of a lane (v) summed over the warp in one butterfly (9 shuffles where
// a sum per head took 40): each step halves the values a lane keeps, summing the kept half with the
// partner's; the lane ends with head 4 b4 + 2 b3 + b2 (its lane bits) summed over the warp, which
// headOfLane gives.
__device__ __forceinline__ float butterfly8(float (&v)[8], int lane) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const bool up = lane & 16;
    const float keep = up ? v[i + 4] : v[i], send = up ? v[i] : v[i + 4];
    v[i] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const bool up = lane & 8;
    const float keep = up ? v[i + 2] : v[i], send = up ? v[i] : v[i + 2];
    v[i] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
  }
  {
    const bool up = lane & 4;
    const float keep = up ? v[1] : v[0], send = up ? v[0] : v[1];
    v[0] = keep + __shfl_xor_sync(0xffffffffu, send, 4);
  }
  v[0] += __shfl_xor_sync(0xffffffffu, v[0], 2);
  v[0] += __shfl_xor_sync(0xffffffffu, v[0], 1);
  return v[0];
}
__device__ __forceinline__ int headOfLane(int lane) {
  return ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1);
}

// A neighbourhood's weighted sums of its normalised rows into sums [heads][E]: sums[h][c] = sum_j
// w[h * maxObserved + j] n_j[c], n_j row j of `rows` normalised by its statistics and rounded to
// bf16 (ATen's LayerNorm output). 4 token groups of E / 4 threads, 4 columns each, the groups' sums
// added group after group (the same bits every run); every thread of the block (E of them) calls
// it, and it ends with a barrier. The forward's weighted sums (w: the weights a) and the backward's
// score-weight gradient (w: ds).
template <int C, int H>
__device__ __forceinline__ void groupedWeightedSums(const __nv_bfloat16* __restrict__ rows, int n, const float* sMean,
                                                    const float* sRstd, const float* w, int maxObserved, int heads,
                                                    float* sums) {
  constexpr int E = 128 * C, kQuads = E / 4;
  const int group = static_cast<int>(threadIdx.x) / kQuads, col = (static_cast<int>(threadIdx.x) % kQuads) * 4;
  float acc[H][4];
#pragma unroll
  for (int h = 0; h < H; ++h) acc[h][0] = acc[h][1] = acc[h][2] = acc[h][3] = 0.f;
  for (int j = group; j < n; j += 4) {
    const uint2 raw = *reinterpret_cast<const uint2*>(rows + static_cast<long long>(j) * E + col);
    const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&raw.x);
    const __nv_bfloat162 hi = *reinterpret_cast<const __nv_bfloat162*>(&raw.y);
    const float mean = sMean[j], rstd = sRstd[j];
    const float v[4] = {__bfloat162float(__float2bfloat16((__low2float(lo) - mean) * rstd)),
                        __bfloat162float(__float2bfloat16((__high2float(lo) - mean) * rstd)),
                        __bfloat162float(__float2bfloat16((__low2float(hi) - mean) * rstd)),
                        __bfloat162float(__float2bfloat16((__high2float(hi) - mean) * rstd))};
#pragma unroll
    for (int h = 0; h < H; ++h) {
      if (h < heads) {
        const float weight = w[h * maxObserved + j];
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[h][i] += weight * v[i];
      }
    }
  }
  for (int g = 0; g < 4; ++g) {
    if (group == g) {
#pragma unroll
      for (int h = 0; h < H; ++h) {
        if (h < heads) {
          float* d = sums + h * E + col;
#pragma unroll
          for (int i = 0; i < 4; ++i) d[i] = g == 0 ? acc[h][i] : d[i] + acc[h][i];
        }
      }
    }
    __syncthreads();
  }
}

// S[b, h, e] as written: float32 into S, or (PoolAffine given) bf16(S w_e + a_h b_e) into its
// `out`, a_h the head's observed weight (weights[b, h, 0], written by this block before).
// The multiplications and the sum rounded one by one, unfused, as ATen's three elementwise
// operations and cast compute them (CellTransformer::poolOutput): the same bits.
struct PoolAffine {
  const float* w = nullptr;
  const float* b = nullptr;
  __nv_bfloat16* out = nullptr;
};
__device__ __forceinline__ void writePooled(float* S, const float* weights, const PoolAffine& affine, int b, int heads,
                                            int E, int i, float value) {
  const long long at = static_cast<long long>(b) * heads * E + i;
  if (!affine.out) {
    S[at] = value;
    return;
  }
  const int h = i / E, e = i % E;
  const float observed = weights[(static_cast<long long>(b) * heads + h) * 2];
  affine.out[at] = __float2bfloat16_rn(__fadd_rn(__fmul_rn(value, affine.w[e]), __fmul_rn(observed, affine.b[e])));
}

// C: E / 128 (each lane holds C vectors of 4 columns: lane * 4 + 128 * k). H: the heads the
// registers hold (8: the released model's; 16 the most). GROUPED (the default since 2026-12-01,
// 0.71 ms of a 20 ms batch before): pass 1 reduces the 8 heads' dot products across the warp in
// one butterfly (9 shuffles where a sum per head took 40), and pass 2 gives each thread 4
// columns of every 4th token (one 8-byte load and 8 score reads per 4 columns where a thread per
// column read 2 bytes and 8 scores per token), the 4 token groups' sums added in a fixed order.
// Without: the kernel before, for same-call ratios. PAIRS (with GROUPED and 8 heads; the default
// since 2026-12-03, the released width only: packedPoolKernel384): pass 1 takes two tokens a warp
// at a time, so that each 16-byte read of A from shared memory serves both (laneDot2); the same
// arithmetic per token, the same bits.
template <int C, int H, bool GROUPED, bool PAIRS>
__device__ __forceinline__ void
packedPoolBody(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens, const float* __restrict__ A,
               const float* __restrict__ c, const float* __restrict__ biasScore, int heads, int maxObserved,
               float* __restrict__ S, float* __restrict__ weights, PoolAffine affine, int tail) {
  constexpr int E = 128 * C;
  extern __shared__ float smem[];
  float* sA = smem;                    // [heads][E]
  float* sMean = sA + heads * E;       // [maxObserved]
  float* sRstd = sMean + maxObserved;  // [maxObserved]
  float* sScore = sRstd + maxObserved; // [heads][maxObserved]: scores, then weights
  const int b = static_cast<int>(blockIdx.x);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int start = cuSeqlens[b];
  // The observed tokens: the sequence without its class token and zero slot (`tail` rows: 1 where
  // the slot is not stored).
  const int n = min(max(cuSeqlens[b + 1] - start - tail, 0), maxObserved);
  for (int i = threadIdx.x; i < heads * E; i += blockDim.x) sA[i] = A[i];
  __syncthreads();

  // Pass 1, a warp per token (PAIRS: two tokens, j and j + warps, a warp at a time): LayerNorm
  // statistics (float32, as ATen's) and the heads' scores A_h . LN(e_j) + c_h of the normalised
  // token rounded to bf16 (ATen's LayerNorm output).
  if constexpr (GROUPED && H == 8 && PAIRS) {
    for (int j = warp; j < n; j += 2 * warps) {
      const int j2 = j + warps < n ? j + warps : j; // none: token j again, not recorded
      float x[4 * C], y[4 * C];
      normalizedRow<C>(tokens + static_cast<long long>(start + j) * E, lane, x, sMean + j, sRstd + j, true);
      normalizedRow<C>(tokens + static_cast<long long>(start + j2) * E, lane, y, sMean + j2, sRstd + j2, j2 != j);
      float v[8], u[8];
#pragma unroll
      for (int h = 0; h < 8; ++h) {
        if (h < heads) {
          laneDot2<C>(sA + h * E, x, y, lane, v[h], u[h]);
        } else {
          v[h] = u[h] = 0.f;
        }
      }
      const float sx = butterfly8(v, lane), sy = butterfly8(u, lane);
      const int h = headOfLane(lane);
      if ((lane & 3) == 0 && h < heads) {
        sScore[h * maxObserved + j] = sx + c[h];
        if (j2 != j) sScore[h * maxObserved + j2] = sy + c[h];
      }
    }
  } else {
    for (int j = warp; j < n; j += warps) {
      float x[4 * C];
      normalizedRow<C>(tokens + static_cast<long long>(start + j) * E, lane, x, sMean + j, sRstd + j, true);
      if constexpr (GROUPED && H == 8) {
        float v[8];
#pragma unroll
        for (int h = 0; h < 8; ++h) v[h] = h < heads ? laneDot<C>(sA + h * E, x, lane) : 0.f;
        const float sx = butterfly8(v, lane);
        const int h = headOfLane(lane);
        if ((lane & 3) == 0 && h < heads) sScore[h * maxObserved + j] = sx + c[h];
      } else {
        for (int h = 0; h < heads; ++h) {
          const float dot = warpSum(laneDot<C>(sA + h * E, x, lane));
          if (lane == 0) sScore[h * maxObserved + j] = dot + c[h];
        }
      }
    }
  }
  __syncthreads();

  // Softmax per head over the observed tokens, bias_k's score and add_zero_attn's 0: a warp per head.
  for (int h = warp; h < heads; h += warps) {
    float* s = sScore + h * maxObserved;
    const float bias = biasScore[h];
    float eb;
    const float inv = softmaxExps(s, n, bias, lane, eb);
    float observed = 0.f;
    for (int j = lane; j < n; j += 32) {
      s[j] *= inv;
      observed += s[j];
    }
    observed = warpSum(observed);
    if (lane == 0) {
      weights[(static_cast<long long>(b) * heads + h) * 2] = observed;
      weights[(static_cast<long long>(b) * heads + h) * 2 + 1] = eb * inv;
    }
  }
  __syncthreads();

  if constexpr (GROUPED) {
    // Pass 2: the groups' sums in sA (free since pass 1).
    groupedWeightedSums<C, H>(tokens + static_cast<long long>(start) * E, n, sMean, sRstd, sScore, maxObserved, heads,
                              sA);
    for (int i = static_cast<int>(threadIdx.x); i < heads * E; i += blockDim.x)
      writePooled(S, weights, affine, b, heads, E, i, sA[i]);
    return;
  }
  // Pass 2, a thread per column: S[b, h, e] = sum_j a_hj LN(e_j)[e].
  const int e = threadIdx.x;
  float acc[H];
#pragma unroll
  for (int h = 0; h < H; ++h) acc[h] = 0.f;
  for (int j = 0; j < n; ++j) {
    const float x = __bfloat162float(tokens[static_cast<long long>(start + j) * E + e]);
    const float v = __bfloat162float(__float2bfloat16((x - sMean[j]) * sRstd[j]));
#pragma unroll
    for (int h = 0; h < H; ++h)
      if (h < heads) acc[h] += sScore[h * maxObserved + j] * v;
  }
#pragma unroll
  for (int h = 0; h < H; ++h)
    if (h < heads) writePooled(S, weights, affine, b, heads, E, h * E + e, acc[h]);
}

// Unbounded, as before 2026-12-03: the launcher's fitsBlock finds the widths whose grouped kernels
// hold too many registers for their blocks (and runs the kernel before there).
template <int C, int H, bool GROUPED>
__global__ void packedPoolKernel(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens,
                                 const float* __restrict__ A, const float* __restrict__ c,
                                 const float* __restrict__ biasScore, int heads, int maxObserved, float* __restrict__ S,
                                 float* __restrict__ weights, PoolAffine affine, int tail) {
  packedPoolBody<C, H, GROUPED, false>(tokens, cuSeqlens, A, c, biasScore, heads, maxObserved, S, weights, affine,
                                       tail);
}
// The released width (E 384, at most 8 heads), grouped, by one token or two a warp in pass 1: held
// to 56 registers, 3 blocks of 384 threads a multiprocessor as the grouped kernel before (unbounded,
// this body's single-token pass took 60 and its pairs 64: 2 blocks).
template <bool PAIRS>
__global__ void __launch_bounds__(384, 3)
    packedPoolKernel384(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens,
                        const float* __restrict__ A, const float* __restrict__ c, const float* __restrict__ biasScore,
                        int heads, int maxObserved, float* __restrict__ S, float* __restrict__ weights,
                        PoolAffine affine, int tail) {
  packedPoolBody<3, 8, true, PAIRS>(tokens, cuSeqlens, A, c, biasScore, heads, maxObserved, S, weights, affine, tail);
}

// ---- the attention pool's backward (training, TrainPackedPool in CellTransformer.cpp): one block
// per sequence, E threads, heads <= 8. Given dS [cells, H, E] and dWeights [cells, H, 2] (the
// gradients of packedPoolBf16's S and weights, float32), with the forward's a_hj recomputed as it
// computed them (the same passes and operations: the same scores, maxima and sums):
//   g_hj = dS_h . n_j + dW_h0 (a_hj's gradient: it weighs n_j into S_h and counts in W_h0),
//   ds_hj = a_hj (g_hj - sum_k a_hk g_hk) over every key (bias_k's gradient dW_h1, the zero slot's 0),
//   dn_j = sum_h a_hj dS_h + ds_hj A_h, then LayerNorm's backward without affine into dTokens (float32
//   x-hat from the row and its statistics, as the LayerNorm kernels' backward computes it),
//   dA partial [cells, H, E] = sum_j ds_hj n_j, and [cells, H, 2] = (sum_j ds_hj, ds of bias_k)
//   for c's and biasScore's gradients, summed over the cells by the caller in a fixed order.
// n_j is the normalised row rounded to bf16 (the forward's scores and sums read it so). Rows that
// are not observed tokens (each sequence's class token and stored zero slot; filler sequences from
// `cells` on) get a zero gradient.
// PAIRS (the released width, C 3: packedPoolGradKernel384Pairs; the default since 2026-12-05): passes 1
// and 2 take two tokens a warp at a time, as the forward's pass 1 (packedPoolBody's PAIRS), so that
// each 16-byte read of A and dS from shared memory serves both tokens: the two passes read 48 of
// them a lane per token at E 384, 8 heads (~25 KB a warp per token each, ~5 MB a neighbourhood of
// 100 tokens), the kernel's largest cost by count (0.33 ms a step, H100, call s23-1). The same
// expressions per token (laneDot2, dnAdd): the same bits.
// dn[t] += a[t] dS_h + ds[t] A_h over a lane's 4 C columns for T tokens (1, or 2 with PAIRS), each
// float4 of dS_h and A_h read from shared memory once for all T: the same expression per token.
template <int C, int T>
__device__ __forceinline__ void dnAdd(float (&dn)[T][4 * C], const float (&a)[T], const float (&ds)[T], const float* sD,
                                      const float* sA, int lane) {
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const float4 d4 = *reinterpret_cast<const float4*>(sD + lane * 4 + 128 * k);
    const float4 a4 = *reinterpret_cast<const float4*>(sA + lane * 4 + 128 * k);
#pragma unroll
    for (int t = 0; t < T; ++t) {
      dn[t][4 * k] += a[t] * d4.x + ds[t] * a4.x;
      dn[t][4 * k + 1] += a[t] * d4.y + ds[t] * a4.y;
      dn[t][4 * k + 2] += a[t] * d4.z + ds[t] * a4.z;
      dn[t][4 * k + 3] += a[t] * d4.w + ds[t] * a4.w;
    }
  }
}
// Row j's x-hat (float32, from its statistics) into xh, as pass 2 reads it.
template <int C>
__device__ __forceinline__ void rowXHat(const __nv_bfloat16* row, float mean, float rstd, int lane,
                                        float (&xh)[4 * C]) {
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const uint2 raw = *reinterpret_cast<const uint2*>(row + lane * 4 + 128 * k);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    xh[4 * k] = (lo.x - mean) * rstd;
    xh[4 * k + 1] = (lo.y - mean) * rstd;
    xh[4 * k + 2] = (hi.x - mean) * rstd;
    xh[4 * k + 3] = (hi.y - mean) * rstd;
  }
}
// LayerNorm's backward without affine for one row (dn, xh), written as bf16 to out.
template <int C>
__device__ __forceinline__ void writeRowGradient(const float (&dn)[4 * C], const float (&xh)[4 * C], float rstd,
                                                 int lane, __nv_bfloat16* out) {
  constexpr int E = 128 * C;
  float s1 = 0.f, s2 = 0.f;
#pragma unroll
  for (int i = 0; i < 4 * C; ++i) {
    s1 += dn[i];
    s2 += dn[i] * xh[i];
  }
  s1 = warpSum(s1) * (1.f / E);
  s2 = warpSum(s2) * (1.f / E);
#pragma unroll
  for (int k = 0; k < C; ++k) {
    const int i = 4 * k;
    uint2 packed;
    *reinterpret_cast<__nv_bfloat162*>(&packed.x) =
        __floats2bfloat162_rn(rstd * (dn[i] - s1 - xh[i] * s2), rstd * (dn[i + 1] - s1 - xh[i + 1] * s2));
    *reinterpret_cast<__nv_bfloat162*>(&packed.y) =
        __floats2bfloat162_rn(rstd * (dn[i + 2] - s1 - xh[i + 2] * s2), rstd * (dn[i + 3] - s1 - xh[i + 3] * s2));
    *reinterpret_cast<uint2*>(out + lane * 4 + 128 * k) = packed;
  }
}

template <int C, bool PAIRS>
__device__ __forceinline__ void
packedPoolGradBody(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens, long long cells,
                   const float* __restrict__ A, const float* __restrict__ c, const float* __restrict__ biasScore,
                   const float* __restrict__ dS, const float* __restrict__ dWeights, int heads, int maxObserved,
                   int tail, __nv_bfloat16* __restrict__ dTokens, float* __restrict__ dAPartial,
                   float* __restrict__ dScorePartial) {
  constexpr int E = 128 * C;
  extern __shared__ float smem[];
  float* sA = smem;                     // [heads][E]; pass 3: the token groups' sums
  float* sD = sA + heads * E;           // [heads][E]: this cell's dS
  float* sMean = sD + heads * E;        // [maxObserved]
  float* sRstd = sMean + maxObserved;   // [maxObserved]
  float* sP = sRstd + maxObserved;      // [heads][maxObserved]: scores, then a
  float* sG = sP + heads * maxObserved; // [heads][maxObserved]: g, then ds
  const long long b = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int start = cuSeqlens[b], len = cuSeqlens[b + 1] - start;
  const int n = b < cells ? min(max(len - tail, 0), maxObserved) : 0;
  // Rows past the observed tokens: zero (16 bytes a thread).
  for (long long i = static_cast<long long>(n) * E + threadIdx.x * 8; i < static_cast<long long>(len) * E;
       i += blockDim.x * 8)
    *reinterpret_cast<uint4*>(dTokens + static_cast<long long>(start) * E + i) = make_uint4(0, 0, 0, 0);
  if (b >= cells) return;
  for (int i = threadIdx.x; i < heads * E; i += blockDim.x) {
    sA[i] = A[i];
    sD[i] = dS[b * heads * E + i];
  }
  __syncthreads();

  // Pass 1, a warp per token (PAIRS: two, j and j + warps): statistics, the normalised row (as the
  // forward's), its scores and g.
  for (int j = warp; j < n; j += PAIRS ? 2 * warps : warps) {
    const int j2 = PAIRS && j + warps < n ? j + warps : j; // none: token j again, not recorded
    float x[4 * C];
    normalizedRow<C>(tokens + static_cast<long long>(start + j) * E, lane, x, sMean + j, sRstd + j, true);
    const int h = headOfLane(lane);
    const bool writes = (lane & 3) == 0 && h < heads;
    if constexpr (PAIRS) {
      float y[4 * C];
      normalizedRow<C>(tokens + static_cast<long long>(start + j2) * E, lane, y, sMean + j2, sRstd + j2, j2 != j);
      // The scores (rows of A), then g (rows of dS): 16 values live at a time, not 32 (no spills in
      // 80 registers).
      float vx[8], vy[8];
      auto headDots = [&](const float* rows) {
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          if (k < heads)
            laneDot2<C>(rows + k * E, x, y, lane, vx[k], vy[k]);
          else
            vx[k] = vy[k] = 0.f;
        }
      };
      headDots(sA);
      const float sx = butterfly8(vx, lane), sy = butterfly8(vy, lane);
      headDots(sD);
      const float gx = butterfly8(vx, lane), gy = butterfly8(vy, lane);
      if (writes) {
        sP[h * maxObserved + j] = sx + c[h];
        sG[h * maxObserved + j] = gx + dWeights[(b * heads + h) * 2];
        if (j2 != j) {
          sP[h * maxObserved + j2] = sy + c[h];
          sG[h * maxObserved + j2] = gy + dWeights[(b * heads + h) * 2];
        }
      }
    } else {
      float v[8], u[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        if (k < heads) {
          v[k] = laneDot<C>(sA + k * E, x, lane);
          u[k] = laneDot<C>(sD + k * E, x, lane);
        } else {
          v[k] = u[k] = 0.f;
        }
      }
      const float sx = butterfly8(v, lane), gx = butterfly8(u, lane);
      if (writes) {
        sP[h * maxObserved + j] = sx + c[h];
        sG[h * maxObserved + j] = gx + dWeights[(b * heads + h) * 2];
      }
    }
  }
  __syncthreads();

  // The softmax per head as the forward's, then ds: a warp per head.
  for (int h = warp; h < heads; h += warps) {
    float* s = sP + h * maxObserved;
    float* g = sG + h * maxObserved;
    const float bias = biasScore[h];
    float eb;
    const float inv = softmaxExps(s, n, bias, lane, eb);
    float dot = 0.f;
    for (int j = lane; j < n; j += 32) {
      s[j] *= inv;
      dot += s[j] * g[j];
    }
    const float ab = eb * inv, gb = dWeights[(b * heads + h) * 2 + 1];
    dot = warpSum(dot) + ab * gb;
    float dc = 0.f;
    for (int j = lane; j < n; j += 32) {
      g[j] = s[j] * (g[j] - dot);
      dc += g[j];
    }
    dc = warpSum(dc);
    if (lane == 0) {
      dScorePartial[(b * heads + h) * 2] = dc;
      dScorePartial[(b * heads + h) * 2 + 1] = ab * (gb - dot);
    }
  }
  __syncthreads();

  // Pass 2, a warp per token (PAIRS: two): dn_j, then LayerNorm's backward (no affine) into dTokens.
  for (int j = warp; j < n; j += PAIRS ? 2 * warps : warps) {
    const int j2 = PAIRS && j + warps < n ? j + warps : j;
    float xh[4 * C];
    if constexpr (PAIRS) {
      if (j2 != j) {
        // Both rows' dn, then each row's x-hat and gradient in turn (36 values live at most, not 48).
        float dn[2][4 * C] = {};
        for (int h = 0; h < heads; ++h) {
          const float a[2] = {sP[h * maxObserved + j], sP[h * maxObserved + j2]};
          const float ds[2] = {sG[h * maxObserved + j], sG[h * maxObserved + j2]};
          dnAdd<C, 2>(dn, a, ds, sD + h * E, sA + h * E, lane);
        }
        rowXHat<C>(tokens + static_cast<long long>(start + j) * E, sMean[j], sRstd[j], lane, xh);
        writeRowGradient<C>(dn[0], xh, sRstd[j], lane, dTokens + static_cast<long long>(start + j) * E);
        rowXHat<C>(tokens + static_cast<long long>(start + j2) * E, sMean[j2], sRstd[j2], lane, xh);
        writeRowGradient<C>(dn[1], xh, sRstd[j2], lane, dTokens + static_cast<long long>(start + j2) * E);
        continue;
      }
    }
    float dn[1][4 * C] = {};
    rowXHat<C>(tokens + static_cast<long long>(start + j) * E, sMean[j], sRstd[j], lane, xh);
    for (int h = 0; h < heads; ++h) {
      const float a[1] = {sP[h * maxObserved + j]}, ds[1] = {sG[h * maxObserved + j]};
      dnAdd<C, 1>(dn, a, ds, sD + h * E, sA + h * E, lane);
    }
    writeRowGradient<C>(dn[0], xh, sRstd[j], lane, dTokens + static_cast<long long>(start + j) * E);
  }
  __syncthreads(); // sA read by every warp above: pass 3 sums into it

  // Pass 3: dA's partial sum_j ds_hj n_j (the forward's pass 2 with ds for a) into sA.
  groupedWeightedSums<C, 8>(tokens + static_cast<long long>(start) * E, n, sMean, sRstd, sG, maxObserved, heads, sA);
  for (int i = static_cast<int>(threadIdx.x); i < heads * E; i += blockDim.x) dAPartial[b * heads * E + i] = sA[i];
}

template <int C>
__global__ void __launch_bounds__(128 * C)
    packedPoolGradKernel(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens, long long cells,
                         const float* __restrict__ A, const float* __restrict__ c, const float* __restrict__ biasScore,
                         const float* __restrict__ dS, const float* __restrict__ dWeights, int heads, int maxObserved,
                         int tail, __nv_bfloat16* __restrict__ dTokens, float* __restrict__ dAPartial,
                         float* __restrict__ dScorePartial) {
  packedPoolGradBody<C, false>(tokens, cuSeqlens, cells, A, c, biasScore, dS, dWeights, heads, maxObserved, tail,
                               dTokens, dAPartial, dScorePartial);
}
// The released width, two tokens a warp (PAIRS): held to 2 blocks of 384 threads a multiprocessor,
// as the single-token kernel's 67 registers allow (unbounded, the pairs would take more and 1).
__global__ void __launch_bounds__(384, 2)
    packedPoolGradKernel384Pairs(const __nv_bfloat16* __restrict__ tokens, const int* __restrict__ cuSeqlens,
                                 long long cells, const float* __restrict__ A, const float* __restrict__ c,
                                 const float* __restrict__ biasScore, const float* __restrict__ dS,
                                 const float* __restrict__ dWeights, int heads, int maxObserved, int tail,
                                 __nv_bfloat16* __restrict__ dTokens, float* __restrict__ dAPartial,
                                 float* __restrict__ dScorePartial) {
  packedPoolGradBody<3, true>(tokens, cuSeqlens, cells, A, c, biasScore, dS, dWeights, heads, maxObserved, tail,
                              dTokens, dAPartial, dScorePartial);
}

// ---- the decoder's attention between its two tokens: a thread per (cell, token, head).
__global__ void pairAttentionKernel(const __nv_bfloat16* __restrict__ qkv, long long cells, int heads, int d,
                                    float scale, __nv_bfloat16* __restrict__ out) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= cells * 2 * heads) return;
  const int h = static_cast<int>(i % heads);
  const long long bt = i / heads; // cell * 2 + token
  const long long other = bt ^ 1;
  const int E = heads * d;
  const __nv_bfloat16* q = qkv + bt * 3 * E + h * d;
  const __nv_bfloat16* k = qkv + other * 3 * E + E + h * d;
  const __nv_bfloat16* v = qkv + other * 3 * E + 2 * E + h * d;
  float s = 0.f;
  for (int c = 0; c < d; c += 8) {
    const uint4 qa = *reinterpret_cast<const uint4*>(q + c), ka = *reinterpret_cast<const uint4*>(k + c);
    const __nv_bfloat162* q2 = reinterpret_cast<const __nv_bfloat162*>(&qa);
    const __nv_bfloat162* k2 = reinterpret_cast<const __nv_bfloat162*>(&ka);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float2 a = __bfloat1622float2(q2[t]), bb = __bfloat1622float2(k2[t]);
      s += a.x * bb.x + a.y * bb.y;
    }
  }
  // Softmax over the other token's key and add_zero_attn's zero key: sigmoid of the score.
  const float w = 1.f / (1.f + __expf(-s * scale));
  __nv_bfloat16* o = out + bt * E + h * d;
  for (int c = 0; c < d; c += 8) {
    const uint4 va = *reinterpret_cast<const uint4*>(v + c);
    const __nv_bfloat162* v2 = reinterpret_cast<const __nv_bfloat162*>(&va);
    uint4 r;
    __nv_bfloat162* r2 = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float2 f = __bfloat1622float2(v2[t]);
      r2[t] = __floats2bfloat162_rn(w * f.x, w * f.y);
    }
    *reinterpret_cast<uint4*>(o + c) = r;
  }
}

// pairAttentionGradBf16: a thread per (cell, token, head), as the forward.
__global__ void pairAttentionGradKernel(const __nv_bfloat16* __restrict__ qkv, const __nv_bfloat16* __restrict__ dout,
                                        long long cells, int heads, int d, float scale,
                                        __nv_bfloat16* __restrict__ dqkv) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= cells * 2 * heads) return;
  const int h = static_cast<int>(i % heads);
  const long long bt = i / heads; // cell * 2 + token
  const long long other = bt ^ 1;
  const int E = heads * d;
  const __nv_bfloat16* q = qkv + bt * 3 * E + h * d;
  const __nv_bfloat16* k = qkv + other * 3 * E + E + h * d;
  const __nv_bfloat16* v = qkv + other * 3 * E + 2 * E + h * d;
  const __nv_bfloat16* g = dout + bt * E + h * d;
  float s = 0.f, da = 0.f;
  for (int c = 0; c < d; c += 8) {
    const uint4 qa = *reinterpret_cast<const uint4*>(q + c), ka = *reinterpret_cast<const uint4*>(k + c);
    const uint4 va = *reinterpret_cast<const uint4*>(v + c), ga = *reinterpret_cast<const uint4*>(g + c);
    const __nv_bfloat162* q2 = reinterpret_cast<const __nv_bfloat162*>(&qa);
    const __nv_bfloat162* k2 = reinterpret_cast<const __nv_bfloat162*>(&ka);
    const __nv_bfloat162* v2 = reinterpret_cast<const __nv_bfloat162*>(&va);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&ga);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float2 a = __bfloat1622float2(q2[t]), bb = __bfloat1622float2(k2[t]);
      const float2 vv = __bfloat1622float2(v2[t]), gg = __bfloat1622float2(g2[t]);
      s += a.x * bb.x + a.y * bb.y;
      da += gg.x * vv.x + gg.y * vv.y;
    }
  }
  const float w = 1.f / (1.f + __expf(-s * scale)); // as the forward kernel's
  const float ds = da * w * (1.f - w) * scale;
  __nv_bfloat16* dq = dqkv + bt * 3 * E + h * d;
  __nv_bfloat16* dk = dqkv + other * 3 * E + E + h * d;
  __nv_bfloat16* dv = dqkv + other * 3 * E + 2 * E + h * d;
  for (int c = 0; c < d; c += 8) {
    const uint4 qa = *reinterpret_cast<const uint4*>(q + c), ka = *reinterpret_cast<const uint4*>(k + c);
    const uint4 ga = *reinterpret_cast<const uint4*>(g + c);
    const __nv_bfloat162* q2 = reinterpret_cast<const __nv_bfloat162*>(&qa);
    const __nv_bfloat162* k2 = reinterpret_cast<const __nv_bfloat162*>(&ka);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&ga);
    uint4 rq, rk, rv;
    __nv_bfloat162* q3 = reinterpret_cast<__nv_bfloat162*>(&rq);
    __nv_bfloat162* k3 = reinterpret_cast<__nv_bfloat162*>(&rk);
    __nv_bfloat162* v3 = reinterpret_cast<__nv_bfloat162*>(&rv);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float2 a = __bfloat1622float2(q2[t]), bb = __bfloat1622float2(k2[t]), gg = __bfloat1622float2(g2[t]);
      q3[t] = __floats2bfloat162_rn(ds * bb.x, ds * bb.y);
      k3[t] = __floats2bfloat162_rn(ds * a.x, ds * a.y);
      v3[t] = __floats2bfloat162_rn(w * gg.x, w * gg.y);
    }
    *reinterpret_cast<uint4*>(dq + c) = rq;
    *reinterpret_cast<uint4*>(dk + c) = rk;
    *reinterpret_cast<uint4*>(dv + c) = rv;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

std::int64_t poolSharedBytes(int E, int heads, int maxObserved) {
  return 4LL * (static_cast<long long>(heads) * E + 2LL * maxObserved + static_cast<long long>(heads) * maxObserved);
}

// packedPoolGradKernel's: A and dS [heads][E], the statistics [2][maxObserved], a and ds [2][heads][maxObserved].
std::int64_t poolGradSharedBytes(int E, int heads, int maxObserved) {
  return 4LL * (2LL * heads * E + 2LL * maxObserved + 2LL * heads * maxObserved);
}

// ---- The pool's output in training (poolOutputBf16, poolOutputGradBf16) ----
// Rows r = b H + h of S [B H, E]; weights [B H, 2] (the observed tokens' weight sum, bias_k's);
// o and dS' [H, B, d or E] (the per-head products' layout); out and dOut [B, E].
constexpr int kPoolOutWarps = 8;
constexpr int kPoolOutSlices = 128; // blocks of the two reductions (about one a multiprocessor)

long long elementBlocks(long long n) {
  const long long b = (n + 255) / 256;
  return b < 1 ? 1 : b > 132 * 8 ? 132 * 8 : b;
}

// S' = bf16(S w + ow b): two products and a sum, each rounded as ATen's three operations round them
// (no contraction into an FMA).
__global__ void poolAffineKernel(const float* __restrict__ S, const float* __restrict__ weights,
                                 const float* __restrict__ w, const float* __restrict__ b,
                                 __nv_bfloat16* __restrict__ out, long long rows, int cols) {
  const long long n = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / cols;
    const int e = static_cast<int>(i - r * cols);
    out[i] = __float2bfloat16_rn(__fadd_rn(__fmul_rn(S[i], w[e]), __fmul_rn(weights[2 * r], b[e])));
  }
}

// out[b, h d + j] = bf16(float(o[h, b, j]) + bw[b, h] bv[h d + j]), as ATen's cast, product and sum.
__global__ void poolValueBiasKernel(const __nv_bfloat16* __restrict__ o, const float* __restrict__ weights,
                                    const float* __restrict__ bv, __nv_bfloat16* __restrict__ out, long long cells,
                                    int heads, int headDim) {
  const int cols = heads * headDim;
  const long long n = cells * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long b = i / cols;
    const int c = static_cast<int>(i - b * cols), h = c / headDim, j = c - h * headDim;
    const float v = __bfloat162float(o[(h * cells + b) * headDim + j]);
    out[i] = __float2bfloat16_rn(__fadd_rn(v, __fmul_rn(weights[(b * heads + h) * 2 + 1], bv[c])));
  }
}

// The value bias's backward, a warp a row b of dOut: dweights[b, h, 1] = sum_j dOut[b, h d + j]
// bv[h d + j] (each product rounded, then summed in order), and this block's share of dbv[c] =
// sum_b dOut[b, c] bw[b, h(c)] into partial[block][0][c].
__global__ void __launch_bounds__(32 * kPoolOutWarps)
    poolValueBiasGradKernel(const __nv_bfloat16* __restrict__ dOut, const float* __restrict__ weights,
                            const float* __restrict__ bv, float* __restrict__ dweights, float* __restrict__ partial,
                            long long cells, int heads, int headDim) {
  extern __shared__ float sm[]; // [warps][cols] products, [warps][cols] dbv sums
  const int cols = heads * headDim, warp = static_cast<int>(threadIdx.x) / 32,
            lane = static_cast<int>(threadIdx.x) % 32;
  float* prod = sm + warp * cols;
  float* acc = sm + (kPoolOutWarps + warp) * cols;
  for (int c = lane; c < cols; c += 32) acc[c] = 0.f;
  const long long per = (cells + gridDim.x - 1) / gridDim.x, first = blockIdx.x * per;
  const long long last = first + per < cells ? first + per : cells;
  for (long long b = first + warp; b < last; b += kPoolOutWarps) {
    const __nv_bfloat16* row = dOut + b * cols;
    for (int c = lane; c < cols; c += 32) {
      const float g = __bfloat162float(row[c]);
      prod[c] = __fmul_rn(g, bv[c]);
      acc[c] += g * weights[(b * heads + c / headDim) * 2 + 1];
    }
    __syncwarp();
    for (int h = lane; h < heads; h += 32) {
      float sum = 0.f;
      for (int j = 0; j < headDim; ++j) sum += prod[h * headDim + j];
      dweights[(b * heads + h) * 2 + 1] = sum;
    }
    __syncwarp();
  }
  __syncthreads();
  for (int c = static_cast<int>(threadIdx.x); c < cols; c += 32 * kPoolOutWarps) {
    float sum = 0.f;
    for (int w = 0; w < kPoolOutWarps; ++w) sum += sm[(kPoolOutWarps + w) * cols + c];
    partial[(static_cast<long long>(blockIdx.x) * 3) * cols + c] = sum;
  }
}

// The affine's backward, a warp a row r = b H + h: g = float(dS'[h, b, :]); dS[r] = g w (as
// ATen's product); dweights[r, 0] = sum_e g b_e; this block's shares of dw = sum_r g S[r] and
// db = sum_r g ow[r] into partial[block][1] and [2].
__global__ void __launch_bounds__(32 * kPoolOutWarps)
    poolAffineGradKernel(const __nv_bfloat16* __restrict__ dSp, const float* __restrict__ S,
                         const float* __restrict__ weights, const float* __restrict__ w, const float* __restrict__ bk,
                         float* __restrict__ dS, float* __restrict__ dweights, float* __restrict__ partial,
                         long long cells, int heads, int cols) {
  extern __shared__ float sm[]; // [warps][2][cols]
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  float* accW = sm + warp * 2 * cols;
  float* accB = accW + cols;
  for (int c = lane; c < cols; c += 32) accW[c] = accB[c] = 0.f;
  const long long rows = cells * heads, per = (rows + gridDim.x - 1) / gridDim.x, first = blockIdx.x * per;
  const long long last = first + per < rows ? first + per : rows;
  for (long long r = first + warp; r < last; r += kPoolOutWarps) {
    const long long b = r / heads;
    const int h = static_cast<int>(r - b * heads);
    const __nv_bfloat16* g = dSp + (h * cells + b) * cols;
    const float* s = S + r * cols;
    const float ow = weights[2 * r];
    float dot = 0.f;
    for (int c = lane; c < cols; c += 32) {
      const float gc = __bfloat162float(g[c]);
      dS[r * cols + c] = __fmul_rn(gc, w[c]);
      dot += gc * bk[c];
      accW[c] += gc * s[c];
      accB[c] += gc * ow;
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (lane == 0) dweights[2 * r] = dot;
  }
  __syncthreads();
  for (int c = static_cast<int>(threadIdx.x); c < cols; c += 32 * kPoolOutWarps) {
    float sw = 0.f, sb = 0.f;
    for (int k = 0; k < kPoolOutWarps; ++k) {
      sw += sm[k * 2 * cols + c];
      sb += sm[k * 2 * cols + cols + c];
    }
    partial[(static_cast<long long>(blockIdx.x) * 3 + 1) * cols + c] = sw;
    partial[(static_cast<long long>(blockIdx.x) * 3 + 2) * cols + c] = sb;
  }
}

} // namespace

bool poolOutputFits(int cols, int heads) {
  // The reductions' shared memory (2 x 8 warps x cols floats) within the default 48 KB.
  return heads > 0 && cols % heads == 0 && cols % 32 == 0 && cols > 0 && cols <= 768;
}

int poolOutputSlices() { return kPoolOutSlices; }

bool poolAffineBf16(const float* S, const float* weights, const float* w, const float* b, std::uint16_t* out,
                    std::int64_t cells, int heads, int cols, void* stream) {
  if (!poolOutputFits(cols, heads) || cells < 0) return false;
  if (cells == 0) return true;
  const long long rows = cells * heads;
  poolAffineKernel<<<static_cast<unsigned>(elementBlocks(rows * cols)), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      S, weights, w, b, reinterpret_cast<__nv_bfloat16*>(out), rows, cols);
  return cudaGetLastError() == cudaSuccess;
}

bool poolValueBiasBf16(const std::uint16_t* o, const float* weights, const float* bv, std::uint16_t* out,
                       std::int64_t cells, int heads, int cols, void* stream) {
  if (!poolOutputFits(cols, heads) || cells < 0) return false;
  if (cells == 0) return true;
  poolValueBiasKernel<<<static_cast<unsigned>(elementBlocks(cells * cols)), 256, 0,
                        static_cast<cudaStream_t>(stream)>>>(reinterpret_cast<const __nv_bfloat16*>(o), weights, bv,
                                                             reinterpret_cast<__nv_bfloat16*>(out), cells, heads,
                                                             cols / heads);
  return cudaGetLastError() == cudaSuccess;
}

bool poolOutputGradBf16(const std::uint16_t* dOut, const std::uint16_t* dSp, const float* S, const float* weights,
                        const float* w, const float* b, const float* bv, float* dS, float* dweights, float* partial,
                        std::int64_t cells, int heads, int cols, void* stream) {
  if (!poolOutputFits(cols, heads) || cells <= 0) return false;
  const auto st = static_cast<cudaStream_t>(stream);
  const std::size_t smem = 2 * kPoolOutWarps * cols * sizeof(float);
  poolValueBiasGradKernel<<<kPoolOutSlices, 32 * kPoolOutWarps, smem, st>>>(
      reinterpret_cast<const __nv_bfloat16*>(dOut), weights, bv, dweights, partial, cells, heads, cols / heads);
  poolAffineGradKernel<<<kPoolOutSlices, 32 * kPoolOutWarps, smem, st>>>(
      reinterpret_cast<const __nv_bfloat16*>(dSp), S, weights, w, b, dS, dweights, partial, cells, heads, cols);
  return cudaGetLastError() == cudaSuccess;
}

bool assembleTokensBf16(const std::uint16_t* table, const std::uint16_t* cls, const std::int64_t* rows,
                        const std::int64_t* order, std::int64_t tokens, std::int64_t cells, std::int64_t positions,
                        int cols, std::uint16_t* out, void* stream, std::int64_t tableStride, int* index) {
  if (tableStride == 0) tableStride = cols;
  if (cols % 8 != 0 || tableStride % 8 != 0 || tableStride < cols || !aligned16(table) || !aligned16(cls) ||
      !aligned16(out) || (!out && !index))
    return false;
  if (positions == 0) return true;
  const int vecs = out ? cols / 8 : 1; // the index alone: a thread per position
  const long long total = positions * vecs;
  const int threads = 256;
  assembleTokensKernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0,
                         static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint4*>(table), reinterpret_cast<const uint4*>(cls),
      reinterpret_cast<const long long*>(rows), reinterpret_cast<const long long*>(order), tokens, cells, positions,
      vecs, tableStride / 8, reinterpret_cast<uint4*>(out), index);
  return cudaGetLastError() == cudaSuccess;
}

bool packedPoolFits(int cols, int heads, std::int64_t maxObserved) {
  const int C = cols / 128;
  return cols % 128 == 0 && (C == 1 || C == 2 || C == 3 || C == 4 || C == 6 || C == 8) && heads >= 1 &&
         heads <= kMaxHeads && maxObserved >= 0 &&
         poolSharedBytes(cols, heads, static_cast<int>(maxObserved)) <= 200 * 1024;
}

bool packedPoolTokenPairs(int cols, int heads) { return cols == 384 && heads >= 1 && heads <= 8; }

bool packedPoolBf16(const std::uint16_t* tokens, const int* cuSeqlens, std::int64_t cells, int cols, int heads,
                    std::int64_t maxObserved, const float* A, const float* c, const float* biasScore, float* S,
                    float* weights, void* stream, bool before, const float* normWeight, const float* normBias,
                    std::uint16_t* normalizedS, bool zeroSlotStored, bool tokenPairs) {
  if ((normalizedS && (!normWeight || !normBias)) || (!normalizedS && !S)) return false;
  const PoolAffine affine{normWeight, normBias,
                          reinterpret_cast<__nv_bfloat16*>(normalizedS)}; // w, b read only with out
  if (!packedPoolFits(cols, heads, maxObserved) || (reinterpret_cast<std::uintptr_t>(tokens) % 8) != 0) return false;
  if (cells == 0) return true;
  const int mo = static_cast<int>(std::max<std::int64_t>(1, maxObserved));
  const std::int64_t bytes = poolSharedBytes(cols, heads, mo);
  const auto s = static_cast<cudaStream_t>(stream);
  // Whether `kernel` can run blocks of `cols` threads: the grouped kernels hold more registers
  // than the one before, too many for 1024 (C 8) or for 768 with more than 8 heads.
  auto fitsBlock = [&](auto kernel) {
    cudaFuncAttributes a{};
    if (cudaFuncGetAttributes(&a, kernel) == cudaSuccess) return a.maxThreadsPerBlock >= cols;
    cudaGetLastError();
    return false;
  };
  auto launch = [&](auto kernel) {
    if (bytes > 48 * 1024 &&
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    kernel<<<static_cast<unsigned>(cells), cols, static_cast<std::size_t>(bytes), s>>>(
        reinterpret_cast<const __nv_bfloat16*>(tokens), cuSeqlens, A, c, biasScore, heads, mo, S, weights, affine,
        zeroSlotStored ? 2 : 1);
    return cudaGetLastError() == cudaSuccess;
  };
  auto byHeads = [&](auto width) {
    constexpr int C = decltype(width)::value;
    const auto previous = packedPoolKernel<C, kMaxHeads, false>;
    // Up to 8 heads: the released width's own kernel at E 384 (packedPoolTokenPairs: where
    // `tokenPairs` applies), the unbounded one elsewhere.
    const auto grouped8 = [&] {
      if constexpr (C == 3)
        return tokenPairs ? packedPoolKernel384<true> : packedPoolKernel384<false>;
      else
        return packedPoolKernel<C, 8, true>;
    }();
    const auto grouped = heads <= 8 ? grouped8 : packedPoolKernel<C, kMaxHeads, true>;
    return launch(!before && fitsBlock(grouped) ? grouped : previous);
  };
  switch (cols / 128) {
  case 1: return byHeads(std::integral_constant<int, 1>{});
  case 2: return byHeads(std::integral_constant<int, 2>{});
  case 3: return byHeads(std::integral_constant<int, 3>{});
  case 4: return byHeads(std::integral_constant<int, 4>{});
  case 6: return byHeads(std::integral_constant<int, 6>{});
  default: return byHeads(std::integral_constant<int, 8>{});
  }
}

bool packedPoolGradFits(int cols, int heads, std::int64_t maxObserved) {
  return packedPoolFits(cols, heads, maxObserved) && heads <= 8 &&
         poolGradSharedBytes(cols, heads, static_cast<int>(std::max<std::int64_t>(1, maxObserved))) <= 200 * 1024;
}

bool packedPoolGradBf16(const std::uint16_t* tokens, const int* cuSeqlens, std::int64_t cells, std::int64_t sequences,
                        int cols, int heads, std::int64_t maxObserved, const float* A, const float* c,
                        const float* biasScore, const float* dS, const float* dWeights, std::uint16_t* dTokens,
                        float* dAPartial, float* dScorePartial, void* stream, bool zeroSlotStored, bool tokenPairs) {
  if (!packedPoolGradFits(cols, heads, maxObserved) || sequences < cells || !aligned16(tokens) || !aligned16(dTokens) ||
      !aligned16(dS) || !aligned16(A))
    return false;
  if (sequences == 0) return true;
  const int mo = static_cast<int>(std::max<std::int64_t>(1, maxObserved));
  const std::int64_t bytes = poolGradSharedBytes(cols, heads, mo);
  const auto s = static_cast<cudaStream_t>(stream);
  auto launch = [&](auto kernel) {
    if (bytes > 48 * 1024 &&
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    cudaFuncAttributes a{};
    if (cudaFuncGetAttributes(&a, kernel) != cudaSuccess || a.maxThreadsPerBlock < cols) {
      cudaGetLastError();
      return false;
    }
    kernel<<<static_cast<unsigned>(sequences), cols, static_cast<std::size_t>(bytes), s>>>(
        reinterpret_cast<const __nv_bfloat16*>(tokens), cuSeqlens, cells, A, c, biasScore, dS, dWeights, heads, mo,
        zeroSlotStored ? 2 : 1, reinterpret_cast<__nv_bfloat16*>(dTokens), dAPartial, dScorePartial);
    return cudaGetLastError() == cudaSuccess;
  };
  switch (cols / 128) {
  case 1: return launch(packedPoolGradKernel<1>);
  case 2: return launch(packedPoolGradKernel<2>);
  case 3: return tokenPairs ? launch(packedPoolGradKernel384Pairs) : launch(packedPoolGradKernel<3>);
  case 4: return launch(packedPoolGradKernel<4>);
  case 6: return launch(packedPoolGradKernel<6>);
  default: return launch(packedPoolGradKernel<8>);
  }
}

bool pairAttentionBf16(const std::uint16_t* qkv, std::int64_t cells, int heads, int headDim, float scale,
                       std::uint16_t* out, void* stream) {
  if (headDim % 8 != 0 || !aligned16(qkv) || !aligned16(out)) return false;
  if (cells == 0) return true;
  const long long total = cells * 2 * heads;
  const int threads = 256;
  pairAttentionKernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0,
                        static_cast<cudaStream_t>(stream)>>>(reinterpret_cast<const __nv_bfloat16*>(qkv), cells, heads,
                                                             headDim, scale, reinterpret_cast<__nv_bfloat16*>(out));
  return cudaGetLastError() == cudaSuccess;
}

bool pairAttentionGradBf16(const std::uint16_t* qkv, const std::uint16_t* dout, std::int64_t cells, int heads,
                           int headDim, float scale, std::uint16_t* dqkv, void* stream) {
  if (headDim % 8 != 0 || !aligned16(qkv) || !aligned16(dout) || !aligned16(dqkv)) return false;
  if (cells == 0) return true;
  const long long total = cells * 2 * heads;
  const int threads = 256;
  pairAttentionGradKernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0,
                            static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const __nv_bfloat16*>(qkv), reinterpret_cast<const __nv_bfloat16*>(dout), cells, heads, headDim,
      scale, reinterpret_cast<__nv_bfloat16*>(dqkv));
  return cudaGetLastError() == cudaSuccess;
}

} // namespace atlascope::inference::cuda
