// Fused CUDA kernels for inference (see FusedKernels.h). No LibTorch header: plain pointers.
#include "inference/FusedKernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace atlascope::inference::cuda {

namespace {

constexpr int kRowsPerBlock = 4; // one warp per row

// One warp per row of 64 * PAIRS values, read and written as bf16 pairs (32 bits): lane l holds
// pairs l, l + 32, ... in registers, so x + y is read once and LayerNorm needs no second pass
// over memory. The statistics are two-pass over the registers (mean, then the squared
// deviations), in float32.
template <int PAIRS>
__global__ void addLayerNormKernel(const __nv_bfloat162* __restrict__ x, const __nv_bfloat162* __restrict__ y,
                                   const __nv_bfloat162* __restrict__ weight, const __nv_bfloat162* __restrict__ bias,
                                   __nv_bfloat162* __restrict__ out, long long rows, float eps) {
  constexpr int kPairsPerRow = 32 * PAIRS;
  constexpr float kInvCols = 1.0f / (2 * kPairsPerRow);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + static_cast<long long>(threadIdx.x / 32);
  if (row >= rows) return;
  const long long base = row * kPairsPerRow;
  float2 v[PAIRS];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < PAIRS; ++i) {
    const long long j = base + lane + 32 * i;
    const float2 a = __bfloat1622float2(x[j]);
    const float2 c = __bfloat1622float2(y[j]);
    // The sum rounded to bf16, as ATen's add writes it before layer_norm reads it.
    v[i] = __bfloat1622float2(__floats2bfloat162_rn(a.x + c.x, a.y + c.y));
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
    out[base + c] = __floats2bfloat162_rn((v[i].x - mean) * rstd * w.x + b.x, (v[i].y - mean) * rstd * w.y + b.y);
  }
}

template <int PAIRS>
bool launchAddLayerNorm(const void* x, const void* y, const void* w, const void* b, void* out, long long rows,
                        float eps, cudaStream_t stream) {
  const long long blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  addLayerNormKernel<PAIRS><<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
      static_cast<const __nv_bfloat162*>(x), static_cast<const __nv_bfloat162*>(y),
      static_cast<const __nv_bfloat162*>(w), static_cast<const __nv_bfloat162*>(b), static_cast<__nv_bfloat162*>(out),
      rows, eps);
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

} // namespace

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
  gammaBetaPartialKernel<<<grid, dim3(32, kGammaRows), 0, s>>>(
      reinterpret_cast<const __nv_bfloat16*>(dy), reinterpret_cast<const __nv_bfloat16*>(x), mean, rstd, partialGamma,
      partialBeta, rows, cols, rowsPerSlice);
  gammaBetaFinalKernel<<<static_cast<unsigned>((cols + 127) / 128), 128, 0, s>>>(
      partialGamma, partialBeta, slices, cols, reinterpret_cast<__nv_bfloat16*>(dgamma),
      reinterpret_cast<__nv_bfloat16*>(dbeta));
  return cudaGetLastError() == cudaSuccess;
}

bool addLayerNormBf16(const std::uint16_t* x, const std::uint16_t* y, const std::uint16_t* weight,
                      const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                      void* stream) {
  if (rows <= 0 || cols % 64 != 0 || !aligned(x) || !aligned(y) || !aligned(weight) || !aligned(bias) ||
      !aligned(out) || (rows + kRowsPerBlock - 1) / kRowsPerBlock > 0x7fffffffLL)
    return false;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (cols / 64) {
  case 1: return launchAddLayerNorm<1>(x, y, weight, bias, out, rows, eps, s);
  case 2: return launchAddLayerNorm<2>(x, y, weight, bias, out, rows, eps, s);   // E 128
  case 4: return launchAddLayerNorm<4>(x, y, weight, bias, out, rows, eps, s);   // E 256
  case 6: return launchAddLayerNorm<6>(x, y, weight, bias, out, rows, eps, s);   // E 384 (released)
  case 8: return launchAddLayerNorm<8>(x, y, weight, bias, out, rows, eps, s);   // E 512
  case 12: return launchAddLayerNorm<12>(x, y, weight, bias, out, rows, eps, s); // E 768
  case 16: return launchAddLayerNorm<16>(x, y, weight, bias, out, rows, eps, s); // E 1024
  default: return false;
  }
}

} // namespace atlascope::inference::cuda
