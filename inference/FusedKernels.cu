// Fused CUDA kernels for inference (see FusedKernels.h). No LibTorch header: plain pointers.
#include "inference/FusedKernels.h"
#include "inference/GeluExp2.h"
#include "inference/ZinbLoss.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <limits>
#include <type_traits>

namespace atlascope::inference::cuda {

namespace {

constexpr int kRowsPerBlock = 4; // one warp per row

// Every bf16 bit pattern through geluExp2, the erf GELU in float32 (ATen's formula) and in double
// precision, each rounded to bf16 (and, with gradOut, geluGradExp2 in float32): the device's own
// ex2.approx and fma, which the CPU test cannot see.
__global__ void geluTableKernel(unsigned short* __restrict__ exp2Out, unsigned short* __restrict__ erffOut,
                                unsigned short* __restrict__ exactOut, float* __restrict__ gradOut) {
  const unsigned bits = blockIdx.x * blockDim.x + threadIdx.x;
  if (bits > 0xffffu) return;
  const float x = __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(bits)));
  exp2Out[bits] = __bfloat16_as_ushort(__float2bfloat16_rn(geluExp2(x)));
  erffOut[bits] = __bfloat16_as_ushort(__float2bfloat16_rn(geluErff(x)));
  const double v = x;
  exactOut[bits] =
      __bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v * 0.5 * erfc(-v * 0.70710678118654752440))));
  if (gradOut) gradOut[bits] = geluGradExp2(x);
}

// One warp per row of 64 * PAIRS values, read and written as bf16 pairs (32 bits): lane l holds
// pairs l, l + 32, ... in registers, so x + y is read once and LayerNorm needs no second pass
// over memory. The statistics are two-pass over the registers (mean, then the squared
// deviations), in float32. ROW_Y: y is one row of 64 * PAIRS values added to every row of x
// (biasLayerNormBf16: the bias of a product whose output already holds the residual), the sum
// kept in float32. XROWS: row r of x is xRows.index[r] of the table x (xRows.stride pairs apart),
// -1 the row xRows.cls, -2 zeros (gatherAddLayerNormBf16).
struct XRows {
  const int* index = nullptr;
  const __nv_bfloat162* cls = nullptr;
  long long stride = 0;
};
template <int PAIRS, bool ROW_Y = false, bool XROWS = false>
__global__ void addLayerNormKernel(const __nv_bfloat162* __restrict__ x, const __nv_bfloat162* __restrict__ y,
                                   const __nv_bfloat162* __restrict__ weight, const __nv_bfloat162* __restrict__ bias,
                                   __nv_bfloat162* __restrict__ out, long long rows, float eps,
                                   __nv_fp8x2_storage_t* __restrict__ normalized, float normalizedScale, XRows xRows) {
  constexpr int kPairsPerRow = 32 * PAIRS;
  constexpr float kInvCols = 1.0f / (2 * kPairsPerRow);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + static_cast<long long>(threadIdx.x / 32);
  if (row >= rows) return;
  const long long base = row * kPairsPerRow;
  const __nv_bfloat162* xr = x + base; // this row of x
  if constexpr (XROWS) {
    const int i = xRows.index[row];
    xr = i >= 0 ? x + static_cast<long long>(i) * xRows.stride : i == -1 ? xRows.cls : nullptr;
  }
  float2 v[PAIRS];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const long long j = base + lane + 32 * i;
    const float2 a = XROWS && !xr ? make_float2(0.f, 0.f) : __bfloat1622float2(xr[lane + 32 * i]);
    if constexpr (ROW_Y) {
      const float2 c = __bfloat1622float2(y[lane + 32 * i]);
      v[i] = make_float2(a.x + c.x, a.y + c.y);
    } else {
      const float2 c = __bfloat1622float2(y[j]);
      // The sum rounded to bf16, as ATen's add writes it before layer_norm reads it.
      v[i] = __bfloat1622float2(__floats2bfloat162_rn(a.x + c.x, a.y + c.y));
    }
    sum += v[i].x + v[i].y;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float mean = sum * kInvCols;
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const float dx = v[i].x - mean, dy = v[i].y - mean;
    squares += dx * dx + dy * dy;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) squares += __shfl_xor_sync(0xffffffffu, squares, o);
  const float rstd = rsqrtf(squares * kInvCols + eps);
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const int c = lane + 32 * i;
    const float2 w = __bfloat1622float2(weight[c]);
    const float2 b = __bfloat1622float2(bias[c]);
    const float2 n = make_float2((v[i].x - mean) * rstd, (v[i].y - mean) * rstd);
    out[base + c] = __floats2bfloat162_rn(n.x * w.x + b.x, n.y * w.y + b.y);
    if (normalized)
      normalized[base + c] = __nv_cvt_float2_to_fp8x2(make_float2(n.x * normalizedScale, n.y * normalizedScale),
                                                      __NV_SATFINITE, __NV_E4M3);
  }
}

template <int PAIRS, bool ROW_Y = false, bool XROWS = false>
bool launchAddLayerNorm(const void* x, const void* y, const void* w, const void* b, void* out, long long rows,
                        float eps, cudaStream_t stream, void* normalized, float normalizedScale, XRows xRows = {}) {
  const long long blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  addLayerNormKernel<PAIRS, ROW_Y, XROWS><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
      static_cast<const __nv_bfloat162*>(x), static_cast<const __nv_bfloat162*>(y),
      static_cast<const __nv_bfloat162*>(w), static_cast<const __nv_bfloat162*>(b), static_cast<__nv_bfloat162*>(out),
      rows, eps, static_cast<__nv_fp8x2_storage_t*>(normalized), normalizedScale, xRows);
  return cudaGetLastError() == cudaSuccess;
}

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 4 == 0; }

constexpr int kGammaRows = 8; // row threads per block (x: 32 columns)

// Stage 1: block (x, y) sums columns 32x .. 32x + 31 over its slice of rows.
__global__ void gammaBetaPartialKernel(const __nv_bfloat16* __restrict__ dy, const __nv_bfloat16* __restrict__ x,
                                       const float* __restrict__ mean, const float* __restrict__ rstd,
                                       float* __restrict__ partialGamma, float* __restrict__ partialBeta,
                                       long long rows, int cols, long long rowsPerSlice) {
  __shared__ float sg[kGammaRows][33];
  __shared__ float sb[kGammaRows][33];
  const int j = static_cast<int>(blockIdx.x) * 32 + static_cast<int>(threadIdx.x);
  const long long first = static_cast<long long>(blockIdx.y) * rowsPerSlice;
  const long long end = first + rowsPerSlice < rows ? first + rowsPerSlice : rows;
  float g = 0.f, b = 0.f;
  if (j < cols)
    for (long long i = first + threadIdx.y; i < end; i += kGammaRows) {
      const long long at = i * cols + j;
      const float d = __bfloat162float(dy[at]);
      g += d * ((__bfloat162float(x[at]) - mean[i]) * rstd[i]);
      b += d;
    }
  sg[threadIdx.y][threadIdx.x] = g;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
#pragma unroll
    for (int k = 1; k < kGammaRows; ++k) {
      g += sg[k][threadIdx.x];
      b += sb[k][threadIdx.x];
    }
    partialGamma[static_cast<long long>(blockIdx.y) * cols + j] = g;
    partialBeta[static_cast<long long>(blockIdx.y) * cols + j] = b;
  }
}

// Stage 2: the slices' sums, in slice order.
__global__ void gammaBetaFinalKernel(const float* __restrict__ partialGamma, const float* __restrict__ partialBeta,
                                     int slices, int cols, __nv_bfloat16* __restrict__ dgamma,
                                     __nv_bfloat16* __restrict__ dbeta) {
  const int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (j >= cols) return;
  float g = 0.f, b = 0.f;
  for (int k = 0; k < slices; ++k) {
    g += partialGamma[static_cast<long long>(k) * cols + j];
    b += partialBeta[static_cast<long long>(k) * cols + j];
  }
  dgamma[j] = __float2bfloat16_rn(g);
  dbeta[j] = __float2bfloat16_rn(b);
}

constexpr int kBiasRows = 8; // row threads per block (x: 32 column groups)

// VEC bf16 values of a row read or written at once (16 bytes for 8: one vector load per thread).
template <int VEC> struct alignas(2 * VEC) BfPack { __nv_bfloat162 v[VEC / 2]; };

constexpr int kFinalSlices = 32; // threads a column in sliceSumsKernel

// The second stage of the column sums (bias, LayerNorm weight and bias gradients): out[y][j] = the
// sum over k of partial[y][k][j] (blockIdx.y picks one of gridDim.y arrays `arrayStride` floats
// apart; out[1] for the second), rounded to bf16. Thread (c, t) of block x adds rows t, t + 32, ...
// of column 32x + c, then thread t = 0 adds the 32 in order: the same bits every run. A thread per
// column summing every slice in turn took 0.30 ms of a training step (~40 sums of 512 slices).
__global__ void __launch_bounds__(32 * kFinalSlices)
    sliceSumsKernel(const float* __restrict__ partial, int slices, int cols, long long arrayStride,
                    __nv_bfloat16* __restrict__ out0, __nv_bfloat16* __restrict__ out1,
                    __nv_bfloat16* __restrict__ out2) {
  __shared__ float sums[kFinalSlices][33];
  const int c = static_cast<int>(threadIdx.x), t = static_cast<int>(threadIdx.y);
  const int j = static_cast<int>(blockIdx.x) * 32 + c;
  const float* in = partial + static_cast<long long>(blockIdx.y) * arrayStride;
  float v = 0.f;
  if (j < cols)
#pragma unroll 4
    for (int k = t; k < slices; k += kFinalSlices) v += in[static_cast<long long>(k) * cols + j];
  sums[t][c] = v;
  __syncthreads();
  if (t == 0 && j < cols) {
#pragma unroll 8
    for (int k = 1; k < kFinalSlices; ++k) v += sums[k][c];
    (blockIdx.y == 0 ? out0 : blockIdx.y == 1 ? out1 : out2)[j] = __float2bfloat16_rn(v);
  }
}

void launchSliceSums(const float* partial, int slices, int cols, int arrays, __nv_bfloat16* out0, __nv_bfloat16* out1,
                     cudaStream_t stream, __nv_bfloat16* out2 = nullptr) {
  sliceSumsKernel<<<dim3(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(arrays)),
                    dim3(32, kFinalSlices), 0, stream>>>(partial, slices, cols, static_cast<long long>(slices) * cols,
                                                         out0, out1, out2);
}

// Stage 1: block (x, y) sums columns VEC * (32x .. 32x + 31) + 0 .. VEC - 1 over its slice of rows
// (with GELU: of dh, which it writes, rounded to bf16 as the sum then reads it). Several rows'
// loads in flight per thread (unrolled), so that the reads run near the memory bandwidth.
template <int VEC, bool GELU>
__global__ void biasGradPartialKernel(const BfPack<VEC>* __restrict__ dy, const BfPack<VEC>* __restrict__ h,
                                      BfPack<VEC>* __restrict__ dh, float* __restrict__ partial, long long rows,
                                      int packs, long long rowsPerSlice) {
  __shared__ float s[kBiasRows][32][VEC + 1];
  const int p = static_cast<int>(blockIdx.x) * 32 + static_cast<int>(threadIdx.x);
  const long long first = static_cast<long long>(blockIdx.y) * rowsPerSlice;
  const long long end = first + rowsPerSlice < rows ? first + rowsPerSlice : rows;
  float acc[VEC];
#pragma unroll
  for (int e = 0; e < VEC; ++e) acc[e] = 0.f;
  if (p < packs) {
#pragma unroll 4
    for (long long i = first + threadIdx.y; i < end; i += kBiasRows) {
      const long long at = i * packs + p;
      const BfPack<VEC> d = dy[at];
      if constexpr (GELU) {
        const BfPack<VEC> x = h[at];
        BfPack<VEC> r;
#pragma unroll
        for (int e = 0; e < VEC / 2; ++e) {
          const float2 dv = __bfloat1622float2(d.v[e]), xv = __bfloat1622float2(x.v[e]);
          r.v[e] = __floats2bfloat162_rn(dv.x * geluGradErff(xv.x), dv.y * geluGradErff(xv.y));
          const float2 rv = __bfloat1622float2(r.v[e]);
          acc[2 * e] += rv.x;
          acc[2 * e + 1] += rv.y;
        }
        dh[at] = r;
      } else {
#pragma unroll
        for (int e = 0; e < VEC / 2; ++e) {
          const float2 dv = __bfloat1622float2(d.v[e]);
          acc[2 * e] += dv.x;
          acc[2 * e + 1] += dv.y;
        }
      }
    }
  }
#pragma unroll
  for (int e = 0; e < VEC; ++e) s[threadIdx.y][threadIdx.x][e] = acc[e];
  __syncthreads();
  if (threadIdx.y == 0 && p < packs) {
    float* out = partial + static_cast<long long>(blockIdx.y) * VEC * packs + static_cast<long long>(VEC) * p;
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      float sum = acc[e];
#pragma unroll
      for (int k = 1; k < kBiasRows; ++k) sum += s[k][threadIdx.x][e];
      out[e] = sum;
    }
  }
}

__global__ void adamKernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ expAvg,
                           float* __restrict__ expAvgSq, __nv_bfloat16* __restrict__ low, long long n, float lrOverC1,
                           float beta1, float beta2, float eps, float weightDecay, float sqrtC2) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float p = param[i];
    const float g = grad[i] + weightDecay * p;
    const float m = expAvg[i] * beta1 + (1.f - beta1) * g;
    const float v = expAvgSq[i] * beta2 + (1.f - beta2) * g * g;
    expAvg[i] = m;
    expAvgSq[i] = v;
    const float updated = p - lrOverC1 * (m / (sqrtf(v) / sqrtC2 + eps));
    param[i] = updated;
    if (low) low[i] = __float2bfloat16_rn(updated);
  }
}

// A launch's entries for foldGradientsKernel, passed by value (a CUDA graph keeps them). Block b
// works on the entry whose [firstBlock, firstBlock of the next) holds b, kFoldPerBlock values of it.
constexpr int kFoldThreads = 256;
constexpr long long kFoldPerBlock = kFoldThreads * 4 * 4; // 4 iterations of 4 values a thread
struct GradientFold {
  const __nv_bfloat16* src[kGradientFoldEntries];
  float* dst[kGradientFoldEntries];
  long long count[kGradientFoldEntries];
  int firstBlock[kGradientFoldEntries + 1];
  int entries;
};

__global__ void __launch_bounds__(kFoldThreads) foldGradientsKernel(const GradientFold f) {
  const int b = static_cast<int>(blockIdx.x);
  int e = 0;
  while (e + 1 < f.entries && f.firstBlock[e + 1] <= b) ++e;
  const __nv_bfloat16* __restrict__ src = f.src[e];
  float* __restrict__ dst = f.dst[e];
  const long long n = f.count[e];
  const long long begin = static_cast<long long>(b - f.firstBlock[e]) * kFoldPerBlock;
  const long long end = begin + kFoldPerBlock < n ? begin + kFoldPerBlock : n;
  // Four values at a time where both sides allow it (8-byte bf16, 16-byte float32 alignment).
  const bool wide =
      (reinterpret_cast<std::uintptr_t>(src) % 8 == 0) && (reinterpret_cast<std::uintptr_t>(dst) % 16 == 0);
  if (wide) {
    for (long long i = begin + 4 * static_cast<long long>(threadIdx.x); i + 3 < end; i += 4 * kFoldThreads) {
      const uint2 raw = *reinterpret_cast<const uint2*>(src + i);
      const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
      const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
      float4 d = *reinterpret_cast<float4*>(dst + i);
      d.x += lo.x;
      d.y += lo.y;
      d.z += hi.x;
      d.w += hi.y;
      *reinterpret_cast<float4*>(dst + i) = d;
    }
    // A count not a multiple of 4: the last block's tail, one value a thread.
    const long long tail = begin + (end - begin) / 4 * 4;
    for (long long i = tail + threadIdx.x; i < end; i += kFoldThreads) dst[i] += __bfloat162float(src[i]);
  } else {
    for (long long i = begin + threadIdx.x; i < end; i += kFoldThreads) dst[i] += __bfloat162float(src[i]);
  }
}

// LayerNorm's GATHER input (layerNormForwardKernel, layerNormBackwardKernel): row `row` is
// [table[index[row]], right[row]], each half 16 PAIRS pairs. gatheredRow: where the table's row
// starts, in pairs, or -1 for an index outside the table (zeros, as gatherRowsOrZerosBf16);
// gatheredPair: pair c (= lane + 32 i) of the row.
template <int PAIRS>
__device__ __forceinline__ long long gatheredRow(const long long* __restrict__ index, long long row,
                                                 long long tableRows) {
  const long long t = index[row];
  return t >= 0 && t < tableRows ? t * (16 * PAIRS) : -1;
}
template <int PAIRS>
__device__ __forceinline__ __nv_bfloat162 gatheredPair(const __nv_bfloat162* __restrict__ table,
                                                       const __nv_bfloat162* __restrict__ right, long long left,
                                                       long long row, int i, int c) {
  constexpr int kHalf = 16 * PAIRS;
  return i >= PAIRS / 2 ? right[row * kHalf + c - kHalf]
         : left >= 0    ? table[left + c]
                        : __floats2bfloat162_rn(0.f, 0.f);
}

// Training's LayerNorm forward, one warp per row as addLayerNormKernel (ATen's kernel runs a block
// per row: ~0.8 TB/s on [95k, 384] bf16), also writing the row's float32 mean and 1/std for the
// backward. With ADD, of x + y: the sum rounded to bf16 (as ATen's add writes it) and also written
// to `sum`, the input the backward reads (ATen's add wrote it and LayerNorm read it back). With
// GELU, GELU(LayerNorm(x)) (the token MLP's LayerNorm and GELU): the LayerNorm's output rounded to
// bf16 and then GELU'd as ATen's gelu reads and computes it, where ATen's gelu read the LayerNorm's
// output back (the backward recomputes it: layerNormRowBackward). With GATHER (not with ADD or
// GELU), LayerNorm of a row whose left half is row index[row] of the table `x` and whose right half
// is row `row` of `y` (proj_norm's input, the type embedding beside the expression MLP's output),
// which ATen's cat wrote out for LayerNorm to read back (and the type rows' gather before it).
template <int PAIRS, bool ADD, bool GELU = false, bool GATHER = false>
__global__ void layerNormForwardKernel(const __nv_bfloat162* __restrict__ x, const __nv_bfloat162* __restrict__ y,
                                       __nv_bfloat162* __restrict__ sumOut, const __nv_bfloat162* __restrict__ weight,
                                       const __nv_bfloat162* __restrict__ bias, __nv_bfloat162* __restrict__ out,
                                       float* __restrict__ meanOut, float* __restrict__ rstdOut, long long rows,
                                       float eps, const long long* __restrict__ index = nullptr,
                                       long long tableRows = 0) {
  static_assert(!GATHER || (PAIRS % 2 == 0 && !ADD && !GELU), "GATHER: whole warps a half, alone");
  constexpr int kPairsPerRow = 32 * PAIRS;
  constexpr float kInvCols = 1.0f / (2 * kPairsPerRow);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + static_cast<long long>(threadIdx.x / 32);
  if (row >= rows) return;
  const long long base = row * kPairsPerRow;
  float2 v[PAIRS];
  float sum = 0.f;
  [[maybe_unused]] long long left = 0;
  if constexpr (GATHER) left = gatheredRow<PAIRS>(index, row, tableRows);
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const long long j = base + lane + 32 * i;
    if constexpr (GATHER)
      v[i] = __bfloat1622float2(gatheredPair<PAIRS>(x, y, left, row, i, lane + 32 * i));
    else
      v[i] = __bfloat1622float2(x[j]);
    if constexpr (ADD) {
      const float2 c = __bfloat1622float2(y[j]);
      const __nv_bfloat162 s = __floats2bfloat162_rn(v[i].x + c.x, v[i].y + c.y);
      sumOut[j] = s;
      v[i] = __bfloat1622float2(s);
    }
    sum += v[i].x + v[i].y;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float mean = sum * kInvCols;
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const float dx = v[i].x - mean, dy = v[i].y - mean;
    squares += dx * dx + dy * dy;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) squares += __shfl_xor_sync(0xffffffffu, squares, o);
  const float rstd = rsqrtf(squares * kInvCols + eps);
  if (lane == 0) {
    meanOut[row] = mean;
    rstdOut[row] = rstd;
  }
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const int c = lane + 32 * i;
    const float2 w = __bfloat1622float2(weight[c]);
    const float2 b = __bfloat1622float2(bias[c]);
    float ox = (v[i].x - mean) * rstd * w.x + b.x, oy = (v[i].y - mean) * rstd * w.y + b.y;
    if constexpr (GELU) {
      const float2 normed = __bfloat1622float2(__floats2bfloat162_rn(ox, oy));
      ox = geluErff(normed.x);
      oy = geluErff(normed.y);
    }
    out[base + c] = __floats2bfloat162_rn(ox, oy);
  }
}

// LayerNorm's input gradient for one row (a warp; lane l holds pairs l, l + 32, ...): with
// g = dy * weight and xhat = (x - mean) rstd, dx = rstd (g - mean(g) - xhat mean(g xhat)), in
// float32 (ATen's formula). With TWO, dy + dy2 rounded to bf16 (autograd's sum of the two).
// visit(i, dy, xhat) sees each pair as it is read (the weight and bias gradients' terms), onDx(i,
// dx) each pair of dx as written (rounded to bf16). With GELU, dy is the gradient of GELU(LayerNorm)
// (layerNormForwardKernel's GELU): GELU's backward first, on the LayerNorm's output recomputed from
// x, mean, rstd, weight and `bias` by the forward's arithmetic and rounded to bf16 as the forward's,
// the product rounded to bf16 as ATen's gelu_backward writes it.
// loadX(i, c): pair c (= lane + 32 i) of the row's input x.
template <int PAIRS, bool TWO, bool GELU, typename LoadX, typename Visit, typename OnDx>
__device__ __forceinline__ void
layerNormRowBackward(const __nv_bfloat162* __restrict__ dy, const __nv_bfloat162* __restrict__ dy2, LoadX&& loadX,
                     const __nv_bfloat162* __restrict__ weight, const __nv_bfloat162* __restrict__ bias, float mu,
                     float r, long long base, long long dyBase, int lane, __nv_bfloat162* __restrict__ dx,
                     Visit&& visit, OnDx&& onDx) {
  constexpr float kInvCols = 1.0f / (64 * PAIRS);
  float2 g[PAIRS], xh[PAIRS];
  float sumG = 0.f, sumGX = 0.f;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const int c = lane + 32 * i;
    float2 d = __bfloat1622float2(dy[dyBase + c]);
    if constexpr (TWO) {
      const float2 e = __bfloat1622float2(dy2[dyBase + c]);
      d = __bfloat1622float2(__floats2bfloat162_rn(d.x + e.x, d.y + e.y));
    }
    const float2 w = __bfloat1622float2(weight[c]);
    const float2 a = __bfloat1622float2(loadX(i, c));
    xh[i] = make_float2((a.x - mu) * r, (a.y - mu) * r);
    if constexpr (GELU) {
      const float2 b = __bfloat1622float2(bias[c]);
      const float2 y = __bfloat1622float2(__floats2bfloat162_rn(xh[i].x * w.x + b.x, xh[i].y * w.y + b.y));
      d = __bfloat1622float2(__floats2bfloat162_rn(d.x * geluGradErff(y.x), d.y * geluGradErff(y.y)));
    }
    g[i] = make_float2(d.x * w.x, d.y * w.y);
    sumG += g[i].x + g[i].y;
    sumGX += g[i].x * xh[i].x + g[i].y * xh[i].y;
    visit(i, d, xh[i]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    sumG += __shfl_xor_sync(0xffffffffu, sumG, o);
    sumGX += __shfl_xor_sync(0xffffffffu, sumGX, o);
  }
  const float meanG = sumG * kInvCols, meanGX = sumGX * kInvCols;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const __nv_bfloat162 v =
        __floats2bfloat162_rn(r * (g[i].x - meanG - xh[i].x * meanGX), r * (g[i].y - meanG - xh[i].y * meanGX));
    dx[base + lane + 32 * i] = v;
    onDx(i, v);
  }
}

// LayerNorm's input gradient, one warp per row (the path before layerNormBackwardKernel).
template <int PAIRS>
__global__ void
layerNormBackwardInputKernel(const __nv_bfloat162* __restrict__ dy, const __nv_bfloat162* __restrict__ x,
                             const __nv_bfloat162* __restrict__ weight, const float* __restrict__ mean,
                             const float* __restrict__ rstd, __nv_bfloat162* __restrict__ dx, long long rows) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + static_cast<long long>(threadIdx.x / 32);
  if (row >= rows) return;
  const long long base = row * 32 * PAIRS;
  layerNormRowBackward<PAIRS, false, false>(
      dy, nullptr, [&](int, int c) { return x[base + c]; }, weight, nullptr, mean[row], rstd[row], base, base, lane, dx,
      [](int, float2, float2) {}, [](int, __nv_bfloat162) {});
}

constexpr int kBackwardWarps = 8;     // rows a block works on at once (a warp each)
constexpr int kBackwardBlocks = 2048; // at most (the final kernel reads blocks x cols x 2 floats)

// LayerNorm's backward in one pass over dy and x (with TWO, dy + dy2: the gradients of the two
// uses of LayerNorm's output, the layer's branch and the residual, which autograd's add summed in
// a pass of its own): the input gradient by layerNormRowBackward
// (a warp per row), and each lane's sums of dy xhat and dy over its columns and the rows its warp
// visits (warp w of block k: rows 8k + w, 8 (k + blocks) + w, ...), the block's warps added in
// warp order in shared memory and written to partialGamma / partialBeta row k, which
// sliceSumsKernel sums over the blocks (a fixed order: the same bits every run). The
// two-stage gammaBetaPartialKernel read dy and x a second time, 2 bytes a thread (0.72 ms of a
// 24 ms training step for ~10 LayerNorms). With SUM_DX also dx's column sums (as written, bf16)
// into partialDx: the bias gradient of the layer whose output was added before the LayerNorm
// (TrainAddLayerNorm), which a pass of its own over dx summed after this one. With GELU, dy is the
// gradient of GELU(LayerNorm) (layerNormRowBackward; `bias` the LayerNorm's). With GATHER (alone),
// x as layerNormForwardKernel's GATHER reads it: the left half of row `row` is row index[row] of
// the table x, its right half row `row` of xRight.
template <int PAIRS, bool TWO, bool SUM_DX = false, bool GELU = false, bool GATHER = false>
__global__ void __launch_bounds__(32 * kBackwardWarps)
    layerNormBackwardKernel(const __nv_bfloat162* __restrict__ dy, const __nv_bfloat162* __restrict__ dy2,
                            const __nv_bfloat162* __restrict__ x, const __nv_bfloat162* __restrict__ weight,
                            const float* __restrict__ mean, const float* __restrict__ rstd,
                            __nv_bfloat162* __restrict__ dx, float2* __restrict__ partialGamma,
                            float2* __restrict__ partialBeta, long long rows, long long dyPitch,
                            float2* __restrict__ partialDx = nullptr, const __nv_bfloat162* __restrict__ bias = nullptr,
                            const __nv_bfloat162* __restrict__ xRight = nullptr,
                            const long long* __restrict__ index = nullptr, long long tableRows = 0) {
  static_assert(!GATHER || (PAIRS % 2 == 0 && !TWO && !SUM_DX && !GELU), "GATHER: whole warps a half, alone");
  constexpr int kPairsPerRow = 32 * PAIRS;
  __shared__ float2 blockGamma[kPairsPerRow], blockBeta[kPairsPerRow];
  // SUM_DX: each warp's sums of dx in shared memory of its own (in registers they cost the kernel
  // a third of its resident blocks: 97 registers against 80 at 384 columns).
  __shared__ float2 warpDx[SUM_DX ? kBackwardWarps : 1][SUM_DX ? kPairsPerRow : 1];
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) / 32;
  float2 accG[PAIRS], accB[PAIRS];
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) accG[i] = accB[i] = make_float2(0.f, 0.f);
  if constexpr (SUM_DX)
#pragma unroll
    for (int i = 0; i < PAIRS; ++i) warpDx[warp][lane + 32 * i] = make_float2(0.f, 0.f);
  const long long stride = static_cast<long long>(gridDim.x) * kBackwardWarps;
  for (long long row = static_cast<long long>(blockIdx.x) * kBackwardWarps + warp; row < rows; row += stride) {
    const long long base = row * kPairsPerRow;
    [[maybe_unused]] long long left = 0;
    if constexpr (GATHER) left = gatheredRow<PAIRS>(index, row, tableRows);
    layerNormRowBackward<PAIRS, TWO, GELU>(
        dy, dy2,
        [&](int i, int c) {
          if constexpr (GATHER)
            return gatheredPair<PAIRS>(x, xRight, left, row, i, c);
          else
            return x[base + c];
        },
        weight, bias, mean[row], rstd[row], base, row * dyPitch, lane, dx,
        [&](int i, float2 d, float2 xh) {
          accG[i].x += d.x * xh.x;
          accG[i].y += d.y * xh.y;
          accB[i].x += d.x;
          accB[i].y += d.y;
        },
        [&](int i, __nv_bfloat162 v) {
          if constexpr (SUM_DX) {
            const float2 f = __bfloat1622float2(v);
            float2& a = warpDx[warp][lane + 32 * i];
            a.x += f.x;
            a.y += f.y;
          }
        });
  }
  // The warps' sums in warp order (shared memory for one row of each, whatever the width).
  for (int w = 0; w < kBackwardWarps; ++w) {
    if (warp == w)
#pragma unroll
      for (int i = 0; i < PAIRS; ++i) {
        const int c = lane + 32 * i;
        if (w == 0) {
          blockGamma[c] = accG[i];
          blockBeta[c] = accB[i];
        } else {
          blockGamma[c].x += accG[i].x;
          blockGamma[c].y += accG[i].y;
          blockBeta[c].x += accB[i].x;
          blockBeta[c].y += accB[i].y;
        }
      }
    __syncthreads();
  }
  for (int c = static_cast<int>(threadIdx.x); c < kPairsPerRow; c += 32 * kBackwardWarps) {
    partialGamma[static_cast<long long>(blockIdx.x) * kPairsPerRow + c] = blockGamma[c];
    partialBeta[static_cast<long long>(blockIdx.x) * kPairsPerRow + c] = blockBeta[c];
    if constexpr (SUM_DX) { // the warps' sums in warp order, as gamma's and beta's
      float2 total = warpDx[0][c];
      for (int w = 1; w < kBackwardWarps; ++w) {
        total.x += warpDx[w][c].x;
        total.y += warpDx[w][c].y;
      }
      partialDx[static_cast<long long>(blockIdx.x) * kPairsPerRow + c] = total;
    }
  }
}

template <int PAIRS>
void launchLayerNormForward(const void* x, const void* y, void* sum, const void* w, const void* b, void* out,
                            float* mean, float* rstd, long long rows, float eps, cudaStream_t stream, bool gelu,
                            const long long* index, long long tableRows) {
  const long long blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if constexpr (PAIRS % 2 == 0)
    if (index) {
      layerNormForwardKernel<PAIRS, false, false, true>
          <<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
              static_cast<const __nv_bfloat162*>(x), static_cast<const __nv_bfloat162*>(y), nullptr,
              static_cast<const __nv_bfloat162*>(w), static_cast<const __nv_bfloat162*>(b),
              static_cast<__nv_bfloat162*>(out), mean, rstd, rows, eps, index, tableRows);
      return;
    }
  if (gelu)
    layerNormForwardKernel<PAIRS, false, true><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
        static_cast<const __nv_bfloat162*>(x), nullptr, nullptr, static_cast<const __nv_bfloat162*>(w),
        static_cast<const __nv_bfloat162*>(b), static_cast<__nv_bfloat162*>(out), mean, rstd, rows, eps);
  else if (y)
    layerNormForwardKernel<PAIRS, true><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
        static_cast<const __nv_bfloat162*>(x), static_cast<const __nv_bfloat162*>(y), static_cast<__nv_bfloat162*>(sum),
        static_cast<const __nv_bfloat162*>(w), static_cast<const __nv_bfloat162*>(b), static_cast<__nv_bfloat162*>(out),
        mean, rstd, rows, eps);
  else
    layerNormForwardKernel<PAIRS, false><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
        static_cast<const __nv_bfloat162*>(x), nullptr, nullptr, static_cast<const __nv_bfloat162*>(w),
        static_cast<const __nv_bfloat162*>(b), static_cast<__nv_bfloat162*>(out), mean, rstd, rows, eps);
}

template <int PAIRS>
void launchLayerNormBackwardInput(const void* dy, const void* x, const void* w, const float* mean, const float* rstd,
                                  void* dx, long long rows, cudaStream_t stream) {
  const long long blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  layerNormBackwardInputKernel<PAIRS><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
      static_cast<const __nv_bfloat162*>(dy), static_cast<const __nv_bfloat162*>(x),
      static_cast<const __nv_bfloat162*>(w), mean, rstd, static_cast<__nv_bfloat162*>(dx), rows);
}

// The widths with a kernel: those of addLayerNormBf16 and 192 (the released size's expression MLP).
template <typename Launch> bool byWidth(int cols, Launch&& launch) {
  switch (cols) {
  case 64: launch(std::integral_constant<int, 1>()); return true;
  case 128: launch(std::integral_constant<int, 2>()); return true;
  case 192: launch(std::integral_constant<int, 3>()); return true; // the expression MLP's E / 2
  case 256: launch(std::integral_constant<int, 4>()); return true;
  case 384: launch(std::integral_constant<int, 6>()); return true;
  case 512: launch(std::integral_constant<int, 8>()); return true;
  case 768: launch(std::integral_constant<int, 12>()); return true;
  case 1024: launch(std::integral_constant<int, 16>()); return true;
  default: return false;
  }
}

} // namespace

namespace {
// 8 values per thread where the width and the pointers allow 16-byte accesses, else pairs.
int biasGradVector(int cols, const void* dy, const void* h, const void* dh) {
  auto aligned16 = [](const void* q) { return reinterpret_cast<std::uintptr_t>(q) % 16 == 0; };
  return cols % 8 == 0 && aligned16(dy) && (!h || aligned16(h)) && (!dh || aligned16(dh)) ? 8 : 2;
}

int slicesFor(std::int64_t rows, int cols, int vec) {
  // About 1,024 blocks in all, slices of at least 64 rows.
  const long long columnBlocks = (cols / vec + 31) / 32;
  long long slices = 1024 / (columnBlocks > 0 ? columnBlocks : 1);
  const long long bySize = (rows + 63) / 64;
  if (slices > bySize) slices = bySize;
  if (slices > 65535) slices = 65535;
  return static_cast<int>(slices < 1 ? 1 : slices);
}

template <int VEC, bool GELU>
void launchBiasGradPartial(const void* dy, const void* h, void* dh, float* partial, long long rows, int cols,
                           int slices, cudaStream_t stream) {
  const long long rowsPerSlice = (rows + slices - 1) / slices;
  const int packs = cols / VEC;
  const dim3 grid(static_cast<unsigned>((packs + 31) / 32), static_cast<unsigned>(slices));
  biasGradPartialKernel<VEC, GELU><<<grid, dim3(32, kBiasRows), 0, stream>>>(
      static_cast<const BfPack<VEC>*>(dy), static_cast<const BfPack<VEC>*>(h), static_cast<BfPack<VEC>*>(dh), partial,
      rows, packs, rowsPerSlice);
}

template <bool GELU>
bool launchBiasGrad(const void* dy, const void* h, void* dh, float* partial, void* dbias, long long rows, int cols,
                    cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || cols % 2 != 0 || !aligned(dy) || (GELU && (!aligned(h) || !aligned(dh)))) return false;
  const int vec = biasGradVector(cols, dy, GELU ? h : nullptr, GELU ? dh : nullptr);
  const int slices = slicesFor(rows, cols, vec);
  if (vec == 8)
    launchBiasGradPartial<8, GELU>(dy, h, dh, partial, rows, cols, slices, stream);
  else
    launchBiasGradPartial<2, GELU>(dy, h, dh, partial, rows, cols, slices, stream);
  launchSliceSums(partial, slices, cols, 1, static_cast<__nv_bfloat16*>(dbias), nullptr, stream);
  return cudaGetLastError() == cudaSuccess;
}
} // namespace

int biasGradSlices(std::int64_t rows, int cols) {
  // The larger of the two layouts' counts: `partial` is sized before the pointers are known.
  const int a = slicesFor(rows, cols, 2), b = slicesFor(rows, cols, 8);
  return a > b ? a : b;
}

bool biasGradBf16(const std::uint16_t* dy, float* partial, std::uint16_t* dbias, std::int64_t rows, int cols,
                  void* stream) {
  return launchBiasGrad<false>(dy, nullptr, nullptr, partial, dbias, rows, cols, static_cast<cudaStream_t>(stream));
}

bool sumSlicesBf16(const float* partial, std::int64_t slices, int cols, std::uint16_t* out, void* stream) {
  if (slices <= 0 || slices > 0x7fffffffLL || cols <= 0) return false;
  launchSliceSums(partial, static_cast<int>(slices), cols, 1, reinterpret_cast<__nv_bfloat16*>(out), nullptr,
                  static_cast<cudaStream_t>(stream));
  return cudaGetLastError() == cudaSuccess;
}

bool geluBackwardBiasGradBf16(const std::uint16_t* dy, const std::uint16_t* h, std::uint16_t* dh, float* partial,
                              std::uint16_t* dbias, std::int64_t rows, int cols, void* stream) {
  return launchBiasGrad<true>(dy, h, dh, partial, dbias, rows, cols, static_cast<cudaStream_t>(stream));
}

bool adamStep(float* param, const float* grad, float* expAvg, float* expAvgSq, std::uint16_t* low, std::int64_t n,
              float lrOverC1, float beta1, float beta2, float eps, float weightDecay, float sqrtC2, void* stream) {
  if (n <= 0) return false;
  long long blocks = (n + 255) / 256;
  if (blocks > 132 * 16) blocks = 132 * 16; // a grid-stride loop over the rest
  adamKernel<<<static_cast<unsigned>(blocks), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      param, grad, expAvg, expAvgSq, reinterpret_cast<__nv_bfloat16*>(low), n, lrOverC1, beta1, beta2, eps, weightDecay,
      sqrtC2);
  return cudaGetLastError() == cudaSuccess;
}

bool foldGradientsBf16(const std::uint16_t* const* src, float* const* dst, const std::int64_t* counts, int entries,
                       void* stream) {
  // Checked before any launch: false means nothing was added.
  for (int i = 0; i < entries; ++i)
    if (counts[i] > 0 && (!src[i] || !dst[i])) return false;
  for (int i = 0; i < entries;) {
    GradientFold f{};
    long long blocks = 0;
    f.entries = 0;
    for (; i < entries && f.entries < kGradientFoldEntries; ++i) {
      if (counts[i] <= 0) continue;
      f.src[f.entries] = reinterpret_cast<const __nv_bfloat16*>(src[i]);
      f.dst[f.entries] = dst[i];
      f.count[f.entries] = counts[i];
      f.firstBlock[f.entries] = static_cast<int>(blocks);
      blocks += (counts[i] + kFoldPerBlock - 1) / kFoldPerBlock;
      ++f.entries;
    }
    if (f.entries == 0) continue;
    if (blocks > 0x7fffffffLL) return false;
    f.firstBlock[f.entries] = static_cast<int>(blocks);
    foldGradientsKernel<<<static_cast<unsigned>(blocks), kFoldThreads, 0, static_cast<cudaStream_t>(stream)>>>(f);
    if (cudaGetLastError() != cudaSuccess) return false;
  }
  return true;
}

int gammaBetaSlices(std::int64_t rows, int cols) {
  // About 1,024 blocks in all, slices of at least 64 rows.
  const long long columnBlocks = (cols + 31) / 32;
  long long slices = 1024 / (columnBlocks > 0 ? columnBlocks : 1);
  const long long bySize = (rows + 63) / 64;
  if (slices > bySize) slices = bySize;
  if (slices > 65535) slices = 65535;
  return static_cast<int>(slices < 1 ? 1 : slices);
}

bool layerNormGammaBetaBackwardBf16(const std::uint16_t* dy, const std::uint16_t* x, const float* mean,
                                    const float* rstd, float* partial, std::uint16_t* dgamma, std::uint16_t* dbeta,
                                    std::int64_t rows, int cols, void* stream) {
  if (rows <= 0 || cols <= 0) return false;
  const int slices = gammaBetaSlices(rows, cols);
  const long long rowsPerSlice = (rows + slices - 1) / slices;
  const auto s = static_cast<cudaStream_t>(stream);
  float* partialGamma = partial;
  float* partialBeta = partial + static_cast<long long>(slices) * cols;
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(slices));
  gammaBetaPartialKernel<<<grid, dim3(32, kGammaRows), 0, s>>>(reinterpret_cast<const __nv_bfloat16*>(dy),
                                                               reinterpret_cast<const __nv_bfloat16*>(x), mean, rstd,
                                                               partialGamma, partialBeta, rows, cols, rowsPerSlice);
  gammaBetaFinalKernel<<<static_cast<unsigned>((cols + 127) / 128), 128, 0, s>>>(
      partialGamma, partialBeta, slices, cols, reinterpret_cast<__nv_bfloat16*>(dgamma),
      reinterpret_cast<__nv_bfloat16*>(dbeta));
  return cudaGetLastError() == cudaSuccess;
}

bool addLayerNormBf16(const std::uint16_t* x, const std::uint16_t* y, const std::uint16_t* weight,
                      const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                      void* stream, std::uint8_t* normalized, float normalizedScale) {
  if (rows <= 0 || cols % 64 != 0 || !aligned(x) || !aligned(y) || !aligned(weight) || !aligned(bias) ||
      !aligned(out) || reinterpret_cast<std::uintptr_t>(normalized) % 2 != 0 ||
      (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (cols / 64) {
  case 1: return launchAddLayerNorm<1>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale);
  case 2: return launchAddLayerNorm<2>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale); // E 128
  case 4: return launchAddLayerNorm<4>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale); // E 256
  case 6:
    return launchAddLayerNorm<6>(x, y, weight, bias, out, rows, eps, s, normalized,
                                 normalizedScale); // E 384 (released)
  case 8: return launchAddLayerNorm<8>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale);   // E 512
  case 12: return launchAddLayerNorm<12>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale); // E 768
  case 16: return launchAddLayerNorm<16>(x, y, weight, bias, out, rows, eps, s, normalized, normalizedScale); // E 1024
  default: return false;
  }
}

bool gatherAddLayerNormBf16(const std::uint16_t* table, std::int64_t tableStride, const int* index,
                            const std::uint16_t* cls, const std::uint16_t* y, const std::uint16_t* weight,
                            const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                            void* stream, std::uint8_t* normalized, float normalizedScale) {
  if (rows <= 0 || !index || tableStride < cols || tableStride % 2 != 0 || !aligned(table) || !aligned(cls) ||
      !aligned(y) || !aligned(weight) || !aligned(bias) || !aligned(out) ||
      reinterpret_cast<std::uintptr_t>(normalized) % 2 != 0 ||
      (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  const XRows xRows{index, reinterpret_cast<const __nv_bfloat162*>(cls), tableStride / 2};
  bool ok = false;
  // Only the widths of addLayerNormBf16 (not 192, which byWidth also has).
  const bool width = cols != 192 && byWidth(cols, [&](auto pairs) {
                       ok = launchAddLayerNorm<decltype(pairs)::value, false, true>(
                           table, y, weight, bias, out, rows, eps, s, normalized, normalizedScale, xRows);
                     });
  return width && ok;
}

bool biasLayerNormBf16(const std::uint16_t* z, const std::uint16_t* rowBias, const std::uint16_t* weight,
                       const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                       void* stream) {
  if (rows <= 0 || !aligned(z) || !aligned(rowBias) || !aligned(weight) || !aligned(bias) || !aligned(out) ||
      (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  bool ok = false;
  const bool width = byWidth(cols, [&](auto pairs) {
    ok = launchAddLayerNorm<decltype(pairs)::value, true>(z, rowBias, weight, bias, out, rows, eps, s, nullptr, 1.f);
  });
  return width && ok;
}

bool layerNormForwardBf16(const std::uint16_t* x, const std::uint16_t* weight, const std::uint16_t* bias,
                          std::uint16_t* out, float* mean, float* rstd, std::int64_t rows, int cols, float eps,
                          void* stream, const std::uint16_t* y, std::uint16_t* sum, bool gelu,
                          const std::int64_t* index, std::int64_t tableRows) {
  if (index && (!y || sum || gelu || cols % 128 != 0 || tableRows < 0 ||
                reinterpret_cast<std::uintptr_t>(index) % alignof(long long) != 0 || !aligned(y)))
    return false;
  if (rows <= 0 || !aligned(x) || !aligned(weight) || !aligned(bias) || !aligned(out) || (y && !sum && !index) ||
      (gelu && y) || (y && !index && (!aligned(y) || !aligned(sum))) ||
      (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  const auto* rowsOf = reinterpret_cast<const long long*>(index);
  if (!byWidth(cols, [&](auto pairs) {
        launchLayerNormForward<decltype(pairs)::value>(x, y, sum, weight, bias, out, mean, rstd, rows, eps, s, gelu,
                                                       rowsOf, tableRows);
      }))
    return false;
  return cudaGetLastError() == cudaSuccess;
}

int layerNormBackwardBlocks(std::int64_t rows, int cols, bool gelu) {
  // As many blocks as the device holds at once (a grid-stride loop over the rows: a second,
  // partial wave would leave multiprocessors idle at the end), fewer for fewer rows. The count of
  // the TWO kernel that also sums dx: it holds at least as many registers and as much shared
  // memory as the others (80 registers and 15 KB at 384 columns: three blocks either way). With
  // `gelu`, the GELU kernel's (63 registers against 48 at 192 columns: a block fewer).
  int resident = 0, device = 0, sms = 0;
  bool failed = false;
  byWidth(cols, [&](auto pairs) {
    constexpr int kPairs = decltype(pairs)::value;
    failed =
        (gelu ? cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                    &resident, layerNormBackwardKernel<kPairs, false, false, true>, 32 * kBackwardWarps, 0)
              : cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, layerNormBackwardKernel<kPairs, true, true>,
                                                              32 * kBackwardWarps, 0)) != cudaSuccess;
  });
  if (failed || cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError(); // a failed query's error is not the launch's: one block a multiprocessor
    resident = 1;
    sms = sms > 0 ? sms : 132;
  }
  long long cap = static_cast<long long>(resident > 0 ? resident : 1) * (sms > 0 ? sms : 1);
  if (cap > kBackwardBlocks) cap = kBackwardBlocks;
  const long long blocks = (rows + kBackwardWarps - 1) / kBackwardWarps;
  return static_cast<int>(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

bool layerNormBackwardBf16(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* weight,
                           const float* mean, const float* rstd, std::uint16_t* dx, float* partial,
                           std::uint16_t* dgamma, std::uint16_t* dbeta, std::int64_t rows, int cols, void* stream,
                           const std::uint16_t* dy2, std::int64_t dyStride, std::uint16_t* dsum,
                           const std::uint16_t* geluBias, const std::uint16_t* xRight, const std::int64_t* index,
                           std::int64_t tableRows) {
  if (dyStride == 0) dyStride = cols;
  if (index && (!xRight || dy2 || dsum || geluBias || cols % 128 != 0 || tableRows < 0 || !aligned(xRight) ||
                reinterpret_cast<std::uintptr_t>(index) % alignof(long long) != 0))
    return false;
  if (rows <= 0 || !aligned(dy) || !aligned(x) || !aligned(weight) || !aligned(dx) || (dy2 && !aligned(dy2)) ||
      reinterpret_cast<std::uintptr_t>(partial) % 8 != 0 || dyStride < cols || dyStride % 2 != 0 ||
      (dsum && !aligned(dsum)) || (geluBias && (dy2 || dsum || !aligned(geluBias))))
    return false;
  const int blocks = layerNormBackwardBlocks(rows, cols, geluBias != nullptr);
  const auto s = static_cast<cudaStream_t>(stream);
  float* partialGamma = partial;
  float* partialBeta = partial + static_cast<long long>(blocks) * cols;
  if (!byWidth(cols, [&](auto pairs) {
        constexpr int kPairs = decltype(pairs)::value;
        const auto* d = reinterpret_cast<const __nv_bfloat162*>(dy);
        const auto* d2 = reinterpret_cast<const __nv_bfloat162*>(dy2);
        const auto* in = reinterpret_cast<const __nv_bfloat162*>(x);
        const auto* g = reinterpret_cast<const __nv_bfloat162*>(weight);
        auto* out = reinterpret_cast<__nv_bfloat162*>(dx);
        auto* pg = reinterpret_cast<float2*>(partialGamma);
        auto* pb = reinterpret_cast<float2*>(partialBeta);
        auto* pd = reinterpret_cast<float2*>(partial + 2LL * blocks * cols);
        if constexpr (kPairs % 2 == 0)
          if (index) {
            layerNormBackwardKernel<kPairs, false, false, false, true>
                <<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
                    d, nullptr, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2, nullptr, nullptr,
                    reinterpret_cast<const __nv_bfloat162*>(xRight), reinterpret_cast<const long long*>(index),
                    tableRows);
            return;
          }
        if (geluBias)
          layerNormBackwardKernel<kPairs, false, false, true>
              <<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
                  d, d2, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2, nullptr,
                  reinterpret_cast<const __nv_bfloat162*>(geluBias));
        else if (dsum && dy2)
          layerNormBackwardKernel<kPairs, true, true><<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
              d, d2, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2, pd);
        else if (dsum)
          layerNormBackwardKernel<kPairs, false, true><<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
              d, d2, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2, pd);
        else if (dy2)
          layerNormBackwardKernel<kPairs, true><<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
              d, d2, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2);
        else
          layerNormBackwardKernel<kPairs, false><<<static_cast<unsigned>(blocks), 32 * kBackwardWarps, 0, s>>>(
              d, d2, in, g, mean, rstd, out, pg, pb, rows, dyStride / 2);
      }))
    return false;
  launchSliceSums(partial, blocks, cols, dsum ? 3 : 2, reinterpret_cast<__nv_bfloat16*>(dgamma),
                  reinterpret_cast<__nv_bfloat16*>(dbeta), s, reinterpret_cast<__nv_bfloat16*>(dsum));
  return cudaGetLastError() == cudaSuccess;
}

bool layerNormBackwardInputBf16(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* weight,
                                const float* mean, const float* rstd, std::uint16_t* dx, std::int64_t rows, int cols,
                                void* stream) {
  if (rows <= 0 || !aligned(dy) || !aligned(x) || !aligned(weight) || !aligned(dx) ||
      (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  if (!byWidth(cols, [&](auto pairs) {
        launchLayerNormBackwardInput<decltype(pairs)::value>(dy, x, weight, mean, rstd, dx, rows, s);
      }))
    return false;
  return cudaGetLastError() == cudaSuccess;
}

bool geluExp2TableBf16(std::uint16_t* exp2Out, std::uint16_t* erffOut, std::uint16_t* exactOut, void* stream,
                       float* gradOut) {
  geluTableKernel<<<256, 256, 0, static_cast<cudaStream_t>(stream)>>>(exp2Out, erffOut, exactOut, gradOut);
  return cudaGetLastError() == cudaSuccess;
}

namespace {

constexpr int kZinbThreads = 256;

// The loss's inputs at row r, column c: the heads' values (float32 [rows, cols] each), or their
// pre-activations side by side (bf16 [rows, ld]: mu's at c, theta's at cols + c, the gate's at
// 2 cols + c), mu and theta then exp(l) + 1e-15 as the separate heads compute them (zinb::kHeadEps).
struct HeadValues {
  const float *mu, *theta, *pi;
  __device__ void at(long long r, int c, int cols, float& m, float& t, float& p) const {
    const long long i = r * cols + c;
    m = mu[i];
    t = theta[i];
    p = pi[i];
  }
};
struct HeadLogits {
  const __nv_bfloat16* logits;
  long long ld;
  __device__ void at(long long r, int c, int cols, float& m, float& t, float& p) const {
    const __nv_bfloat16* row = logits + r * ld;
    m = expf(__bfloat162float(row[c])) + zinb::kHeadEps;
    t = expf(__bfloat162float(row[cols + c])) + zinb::kHeadEps;
    p = __bfloat162float(row[2 * cols + c]);
  }
};

// A block per row (a cell): its genes' NLL summed in float32 (threads, then warps), the mean out.
template <class Heads>
__global__ void __launch_bounds__(kZinbThreads)
    zinbRowMeanKernel(const float* __restrict__ xLog, Heads heads, float* __restrict__ out, int cols) {
  const long long row = blockIdx.x, base = row * cols;
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += kZinbThreads) {
    float m, t, p;
    heads.at(row, c, cols, m, t, p);
    s += zinb::nll(xLog[base + c], m, t, p);
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  __shared__ float warps[kZinbThreads / 32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.f;
    for (int w = 0; w < kZinbThreads / 32; ++w) total += warps[w];
    out[blockIdx.x] = total / static_cast<float>(cols);
  }
}

__global__ void zinbRowMeanGradKernel(const float* __restrict__ xLog, const float* __restrict__ mu,
                                      const float* __restrict__ theta, const float* __restrict__ pi,
                                      const float* __restrict__ gradOut, float* __restrict__ dmu,
                                      float* __restrict__ dtheta, float* __restrict__ dpi, long long n, int cols) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float g = gradOut[i / cols] / static_cast<float>(cols);
    zinb::nllGrad(xLog[i], mu[i], theta[i], pi[i], g, dmu[i], dtheta[i], dpi[i]);
  }
}

// The gradient by the pre-activations, as the separate heads' backward forms it: exp's backward
// (the gradient times exp(l), without the 1e-15) in float32, then the cast's back to bf16.
__global__ void zinbHeadsGradKernel(const float* __restrict__ xLog, HeadLogits heads, const float* __restrict__ gradOut,
                                    __nv_bfloat16* __restrict__ dlogits, long long n, int cols) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / cols;
    const int c = static_cast<int>(i - r * cols);
    const __nv_bfloat16* row = heads.logits + r * heads.ld;
    const float em = expf(__bfloat162float(row[c])), et = expf(__bfloat162float(row[cols + c]));
    const float g = gradOut[r] / static_cast<float>(cols);
    float dmu, dtheta, dpi;
    zinb::nllGrad(xLog[i], em + zinb::kHeadEps, et + zinb::kHeadEps, __bfloat162float(row[2 * cols + c]), g, dmu,
                  dtheta, dpi);
    __nv_bfloat16* d = dlogits + r * 3LL * cols;
    d[c] = __float2bfloat16_rn(dmu * em);
    d[cols + c] = __float2bfloat16_rn(dtheta * et);
    d[2 * cols + c] = __float2bfloat16_rn(dpi);
  }
}

long long zinbGradBlocks(long long n) {
  const long long blocks = (n + 255) / 256;
  return blocks > 132 * 16 ? 132 * 16 : blocks; // a grid-stride loop over the rest
}

} // namespace

bool zinbRowMeanF32(const float* xLog, const float* mu, const float* theta, const float* pi, float* out,
                    std::int64_t rows, int cols, void* stream) {
  if (rows <= 0 || rows >= (1LL << 31) || cols <= 0) return false;
  zinbRowMeanKernel<<<static_cast<unsigned>(rows), kZinbThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      xLog, HeadValues{mu, theta, pi}, out, cols);
  return cudaGetLastError() == cudaSuccess;
}

bool zinbRowMeanGradF32(const float* xLog, const float* mu, const float* theta, const float* pi, const float* gradOut,
                        float* dmu, float* dtheta, float* dpi, std::int64_t rows, int cols, void* stream) {
  if (rows <= 0 || cols <= 0) return false;
  const long long n = rows * static_cast<long long>(cols);
  zinbRowMeanGradKernel<<<static_cast<unsigned>(zinbGradBlocks(n)), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      xLog, mu, theta, pi, gradOut, dmu, dtheta, dpi, n, cols);
  return cudaGetLastError() == cudaSuccess;
}

bool zinbHeadsRowMeanBf16(const float* xLog, const std::uint16_t* logits, std::int64_t ld, float* out,
                          std::int64_t rows, int cols, void* stream) {
  if (rows <= 0 || rows >= (1LL << 31) || cols <= 0 || ld < 3LL * cols) return false;
  zinbRowMeanKernel<<<static_cast<unsigned>(rows), kZinbThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      xLog, HeadLogits{reinterpret_cast<const __nv_bfloat16*>(logits), ld}, out, cols);
  return cudaGetLastError() == cudaSuccess;
}

bool zinbHeadsRowMeanGradBf16(const float* xLog, const std::uint16_t* logits, std::int64_t ld, const float* gradOut,
                              std::uint16_t* dlogits, std::int64_t rows, int cols, void* stream) {
  if (rows <= 0 || cols <= 0 || ld < 3LL * cols) return false;
  const long long n = rows * static_cast<long long>(cols);
  zinbHeadsGradKernel<<<static_cast<unsigned>(zinbGradBlocks(n)), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      xLog, HeadLogits{reinterpret_cast<const __nv_bfloat16*>(logits), ld}, gradOut,
      reinterpret_cast<__nv_bfloat16*>(dlogits), n, cols);
  return cudaGetLastError() == cudaSuccess;
}

namespace {
// typeRowSumsBf16's kernels. A block of 32 warps per 64-column slice (blockIdx.y) of a share of
// the rows (blockIdx.x); each warp reads kTypeRowUnroll rows' 128 bytes before adding them, so
// that enough loads are in flight (one row at a time, a warp waited on each).
constexpr int kTypeRowThreads = 1024;
constexpr int kTypeRowCols = 64;
constexpr int kTypeRowUnroll = 8;
constexpr int kTypeRowBlocks = 48; // x 3 slices at 192 columns: 144 blocks, one wave (two fit a multiprocessor)

int typeRowBlocks(std::int64_t rows) {
  const std::int64_t perBlock = (kTypeRowThreads / 32) * kTypeRowUnroll;
  const std::int64_t b = (rows + perBlock - 1) / perBlock;
  return static_cast<int>(b < 1 ? 1 : b > kTypeRowBlocks ? kTypeRowBlocks : b);
}

__global__ void __launch_bounds__(kTypeRowThreads)
    typeRowPartialKernel(const __nv_bfloat16* __restrict__ grad, long long ld, const long long* __restrict__ types,
                         long long rows, int cols, int classes, float* __restrict__ partial) {
  extern __shared__ float acc[]; // [classes][kTypeRowCols]
  const int c0 = static_cast<int>(blockIdx.y) * kTypeRowCols;
  for (int i = static_cast<int>(threadIdx.x); i < classes * kTypeRowCols; i += kTypeRowThreads) acc[i] = 0.f;
  __syncthreads();
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) / 32;
  constexpr int kWarps = kTypeRowThreads / 32;
  const int col = c0 + 2 * lane; // this lane's pair (cols is even: col + 1 < cols with col)
  const long long per = (rows + gridDim.x - 1) / gridDim.x;
  const long long first = static_cast<long long>(blockIdx.x) * per;
  const long long last = first + per < rows ? first + per : rows;
  if (col < cols) {
    for (long long r0 = first + warp; r0 < last; r0 += static_cast<long long>(kWarps) * kTypeRowUnroll) {
      float2 g[kTypeRowUnroll];
      int t[kTypeRowUnroll]; // the row's type, -1 for none (past the share, or out of range)
#pragma unroll
      for (int u = 0; u < kTypeRowUnroll; ++u) {
        const long long r = r0 + static_cast<long long>(u) * kWarps;
        const long long type = r < last ? types[r] : -1;
        t[u] = type >= 0 && type < classes ? static_cast<int>(type) : -1;
        g[u] = t[u] >= 0 ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(grad + r * ld + col))
                         : make_float2(0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < kTypeRowUnroll; ++u)
        if (t[u] >= 0) {
          atomicAdd(&acc[t[u] * kTypeRowCols + 2 * lane], g[u].x);
          atomicAdd(&acc[t[u] * kTypeRowCols + 2 * lane + 1], g[u].y);
        }
    }
  }
  __syncthreads();
  const int width = cols - c0 < kTypeRowCols ? cols - c0 : kTypeRowCols;
  for (int i = static_cast<int>(threadIdx.x); i < classes * kTypeRowCols; i += kTypeRowThreads) {
    const int c = i / kTypeRowCols, j = i % kTypeRowCols;
    if (j < width) partial[(static_cast<long long>(blockIdx.x) * classes + c) * cols + c0 + j] = acc[i];
  }
}

// A warp a slot's row, 16 bytes a lane at a time: 0 <= from[slot] < count the row of `src`, from
// count up to count + extraRows the row of `extra` (extraRows 0 without it), else zeros.
__global__ void gatherRowsOrZerosKernel(const uint4* __restrict__ src, long long count, const uint4* __restrict__ extra,
                                        long long extraRows, const long long* __restrict__ from, long long slots,
                                        int vecs, uint4* __restrict__ out) {
  const long long slot = static_cast<long long>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (slot >= slots) return;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long f = from[slot];
  uint4* o = out + slot * vecs;
  const uint4* s = f < 0                   ? nullptr
                   : f < count             ? src + f * vecs
                   : f - count < extraRows ? extra + (f - count) * vecs
                                           : nullptr;
  if (!s) {
    for (int v = lane; v < vecs; v += 32) o[v] = make_uint4(0u, 0u, 0u, 0u);
  } else {
    for (int v = lane; v < vecs; v += 32) o[v] = s[v];
  }
}

// out[slot] = a[from[slot]] + b[from[slot]] (bf16 pairs added in float32, rounded once, as ATen's
// add of two bf16 tensors), a warp a row; zeros where from[slot] is outside [0, count).
__global__ void gatherSumRowsKernel(const uint4* __restrict__ a, const uint4* __restrict__ b, long long count,
                                    const long long* __restrict__ from, long long slots, int vecs,
                                    uint4* __restrict__ out) {
  const long long slot = static_cast<long long>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (slot >= slots) return;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long f = from[slot];
  uint4* o = out + slot * vecs;
  if (f < 0 || f >= count) {
    for (int v = lane; v < vecs; v += 32) o[v] = make_uint4(0u, 0u, 0u, 0u);
    return;
  }
  for (int v = lane; v < vecs; v += 32) {
    const uint4 x = a[f * vecs + v], y = b[f * vecs + v];
    const auto* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
    const auto* yp = reinterpret_cast<const __nv_bfloat162*>(&y);
    uint4 r;
    auto* rp = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 p = __bfloat1622float2(xp[e]), q = __bfloat1622float2(yp[e]);
      rp[e] = __floats2bfloat162_rn(p.x + q.x, p.y + q.y);
    }
    o[v] = r;
  }
}

constexpr int kGatherWarps = 8;

bool gatherFits(const void* a, const void* b, const void* out, const void* from, std::int64_t slots, int cols) {
  auto aligned16 = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return slots >= 0 && cols > 0 && cols % 8 == 0 && aligned16(a) && aligned16(b) && aligned16(out) &&
         (slots == 0 || from) && (slots + kGatherWarps - 1) / kGatherWarps <= 0x7fffffffLL;
}
} // namespace

bool gatherRowsOrZerosBf16(const std::uint16_t* src, const std::int64_t* from, std::int64_t slots, int cols,
                           std::uint16_t* out, void* stream, std::int64_t count, const std::uint16_t* extra,
                           std::int64_t extraRows) {
  if (!gatherFits(src, extra, out, from, slots, cols) || (extra && (count < 0 || extraRows < 0))) return false;
  if (slots == 0) return true;
  if (count < 0) count = std::numeric_limits<long long>::max(); // no bound: every index is src's
  if (!extra) extraRows = 0;
  const long long blocks = (slots + kGatherWarps - 1) / kGatherWarps;
  gatherRowsOrZerosKernel<<<static_cast<unsigned>(blocks), 32 * kGatherWarps, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint4*>(src), count, reinterpret_cast<const uint4*>(extra), extraRows,
      reinterpret_cast<const long long*>(from), slots, cols / 8, reinterpret_cast<uint4*>(out));
  return cudaGetLastError() == cudaSuccess;
}

bool gatherSumRowsBf16(const std::uint16_t* a, const std::uint16_t* b, const std::int64_t* from, std::int64_t slots,
                       int cols, std::uint16_t* out, void* stream, std::int64_t count) {
  if (!a || !b || count < 0 || !gatherFits(a, b, out, from, slots, cols)) return false;
  if (slots == 0) return true;
  const long long blocks = (slots + kGatherWarps - 1) / kGatherWarps;
  gatherSumRowsKernel<<<static_cast<unsigned>(blocks), 32 * kGatherWarps, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint4*>(a), reinterpret_cast<const uint4*>(b), count,
      reinterpret_cast<const long long*>(from), slots, cols / 8, reinterpret_cast<uint4*>(out));
  return cudaGetLastError() == cudaSuccess;
}

std::int64_t typeRowSumsPartialFloats(std::int64_t rows, int cols, int classes) {
  return static_cast<std::int64_t>(typeRowBlocks(rows)) * classes * cols;
}

bool typeRowSumsBf16(const std::uint16_t* grad, std::int64_t ld, const std::int64_t* types, std::int64_t rows, int cols,
                     int classes, float* partial, std::uint16_t* out, void* stream) {
  if (rows < 0 || cols <= 0 || cols % 2 != 0 || ld % 2 != 0 || ld < cols || classes <= 0 || !aligned(grad) ||
      (rows > 0 && (!grad || !types)) || !partial || !out)
    return false;
  const long long bytes = static_cast<long long>(classes) * kTypeRowCols * static_cast<long long>(sizeof(float));
  constexpr long long kLargest = 200 * 1024; // opted in always to this, as ShortAttention.cu's sharedOptIn
  const long long count = static_cast<long long>(classes) * cols; // the sums, as one row for launchSliceSums
  if (bytes > kLargest || count > 0x7fffffffLL) return false;
  if (bytes > 48 * 1024 && cudaFuncSetAttribute(typeRowPartialKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(kLargest)) != cudaSuccess) {
    cudaGetLastError(); // declined: the caller's fallback must not find this error pending
    return false;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const int blocks = typeRowBlocks(rows);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>((cols + kTypeRowCols - 1) / kTypeRowCols));
  typeRowPartialKernel<<<grid, kTypeRowThreads, static_cast<std::size_t>(bytes), s>>>(
      reinterpret_cast<const __nv_bfloat16*>(grad), ld, reinterpret_cast<const long long*>(types), rows, cols, classes,
      partial);
  // The blocks' partials ([blocks][classes * cols]) added by the column sums' second stage.
  launchSliceSums(partial, blocks, static_cast<int>(count), 1, reinterpret_cast<__nv_bfloat16*>(out), nullptr, s);
  return cudaGetLastError() == cudaSuccess;
}

} // namespace atlascope::inference::cuda
