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

} // namespace

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
