// Attention over many short sequences (embedding's neighbourhoods, ~100 tokens) in one kernel:
// see shortAttentionBf16 in FusedKernels.h. No LibTorch header: plain pointers.
//
// Why not ATen's flash kernel: it pads the released model's head size 48 to 64 (copies of q, k
// and v and of the output) and its tiles of 128 queries are mostly empty for sequences of ~100
// tokens. Here a block takes one sequence and one head: its keys (rows) and values (transposed)
// in shared memory, read once from the [R, 3E] projection in place; each warp takes 16 queries
// at a time, in registers: scores by tensor cores (mma.sync m16n8k16, bf16 in, float32 out) over
// 16 keys per step with a running (online) softmax in float32, the probabilities rounded to
// bf16 for the product with the values, the row sums from the float32 ones (as flash does).
// A first version kept the scores in shared memory through WMMA (whole rows): its ~100 KB per
// block left the multiprocessors a few warps each, and it ran 1.8x slower than flash.
#include "inference/FusedKernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace atlascope::inference::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kMaxPadded = 256; // the longest sequence (keys in shared memory)

// Keys [padded][D + 8] bf16 (the pitch spreads a fragment's rows over the 32 banks), values
// transposed [D][padded + 8].
__host__ __device__ constexpr long long sharedBytes(int padded, int d) {
  return 2LL * padded * (d + 8) + 2LL * d * (padded + 8);
}

__device__ __forceinline__ void mma16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ std::uint32_t load32(const __nv_bfloat16* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

__device__ __forceinline__ std::uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

// Fragments (PTX's m16n8k16 layouts): lane = 4 g + t; A rows g and g + 8, columns 2t, 2t + 1
// (+ 8); B columns g, rows 2t, 2t + 1 (+ 8); C rows g and g + 8, columns 2t, 2t + 1.
template <int D>
__global__ void __launch_bounds__(32 * kWarps)
    shortAttentionKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, long long rowStride, const int* __restrict__ cuSeqlens,
                         __nv_bfloat16* __restrict__ out, long long outStride, int padded, int heads,
                         float scaleLog2e) {
  constexpr int kPitch = D + 8;
  constexpr int kVecs = D / 8; // 16-byte vectors per row of one head
  extern __shared__ __align__(16) unsigned char smem[];
  // Heads fastest: the blocks of one sequence's heads run side by side and read its q/k/v rows
  // from DRAM together (with the sequence fastest, each head's 96-byte slices came separately).
  const int seq = static_cast<int>(blockIdx.x / heads), head = static_cast<int>(blockIdx.x % heads);
  const int start = cuSeqlens[seq];
  int len = cuSeqlens[seq + 1] - start;
  if (len > padded) len = padded; // the caller's maxLength bounds every sequence
  if (len <= 0) return;
  const int lp = (len + 15) & ~15; // this sequence's keys, in whole steps of 16
  const int vPitch = padded + 8;
  auto* ks = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* vt = ks + padded * kPitch;
  const long long base = static_cast<long long>(start) * rowStride + static_cast<long long>(head) * D;

  for (int i = static_cast<int>(threadIdx.x); i < lp * kVecs; i += 32 * kWarps) {
    const int r = i / kVecs, c = (i % kVecs) * 8;
    uint4 kv = make_uint4(0, 0, 0, 0), vv = kv; // past the end: zero keys and values (0 x NaN)
    if (r < len) {
      kv = *reinterpret_cast<const uint4*>(k + base + r * rowStride + c);
      vv = *reinterpret_cast<const uint4*>(v + base + r * rowStride + c);
    }
    *reinterpret_cast<uint4*>(ks + r * kPitch + c) = kv;
    const auto* e = reinterpret_cast<const __nv_bfloat16*>(&vv);
#pragma unroll
    for (int j = 0; j < 8; ++j) vt[(c + j) * vPitch + r] = e[j];
  }
  __syncthreads();

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  for (int row0 = warp * 16; row0 < len; row0 += 16 * kWarps) {
    const int ra = row0 + g, rb = row0 + g + 8;
    const __nv_bfloat16* qa0 = q + base + static_cast<long long>(ra) * rowStride + 2 * t;
    const __nv_bfloat16* qb0 = q + base + static_cast<long long>(rb) * rowStride + 2 * t;
    std::uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      qf[kk][0] = ra < len ? load32(qa0 + kk * 16) : 0u;
      qf[kk][1] = rb < len ? load32(qb0 + kk * 16) : 0u;
      qf[kk][2] = ra < len ? load32(qa0 + kk * 16 + 8) : 0u;
      qf[kk][3] = rb < len ? load32(qb0 + kk * 16 + 8) : 0u;
    }
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.f, lb = 0.f;
    for (int n0 = 0; n0 < lp; n0 += 16) {
      float s[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        s[h][0] = s[h][1] = s[h][2] = s[h][3] = 0.f;
        const __nv_bfloat16* kr = ks + (n0 + 8 * h + g) * kPitch + 2 * t;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) mma16816(s[h], qf[kk], load32(kr + kk * 16), load32(kr + kk * 16 + 8));
        const int key = n0 + 8 * h + 2 * t;
        if (key >= len) s[h][0] = s[h][2] = -INFINITY;
        if (key + 1 >= len) s[h][1] = s[h][3] = -INFINITY;
      }
      float xa = fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]));
      float xb = fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3]));
#pragma unroll
      for (int m = 1; m < 4; m <<= 1) {
        xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, m));
        xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, m));
      }
      // Key n0 + 0 is real in the first step, so the running maxima are finite from then on.
      const float na = fmaxf(ma, xa), nb = fmaxf(mb, xb);
      const float ca = exp2f((ma - na) * scaleLog2e), cb = exp2f((mb - nb) * scaleLog2e);
      ma = na;
      mb = nb;
      float p[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        p[h][0] = exp2f((s[h][0] - na) * scaleLog2e);
        p[h][1] = exp2f((s[h][1] - na) * scaleLog2e);
        p[h][2] = exp2f((s[h][2] - nb) * scaleLog2e);
        p[h][3] = exp2f((s[h][3] - nb) * scaleLog2e);
      }
      la = la * ca + p[0][0] + p[0][1] + p[1][0] + p[1][1];
      lb = lb * cb + p[0][2] + p[0][3] + p[1][2] + p[1][3];
      const std::uint32_t pf[4] = {pack(p[0][0], p[0][1]), pack(p[0][2], p[0][3]), pack(p[1][0], p[1][1]),
                                   pack(p[1][2], p[1][3])};
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[j][0] *= ca;
        o[j][1] *= ca;
        o[j][2] *= cb;
        o[j][3] *= cb;
        const __nv_bfloat16* vr = vt + (j * 8 + g) * vPitch + n0 + 2 * t;
        mma16816(o[j], pf, load32(vr), load32(vr + 8));
      }
    }
#pragma unroll
    for (int m = 1; m < 4; m <<= 1) {
      la += __shfl_xor_sync(0xffffffffu, la, m);
      lb += __shfl_xor_sync(0xffffffffu, lb, m);
    }
    const float ia = 1.f / la, ib = 1.f / lb;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const long long col = static_cast<long long>(head) * D + j * 8 + 2 * t;
      if (ra < len)
        *reinterpret_cast<__nv_bfloat162*>(out + static_cast<long long>(start + ra) * outStride + col) =
            __floats2bfloat162_rn(o[j][0] * ia, o[j][1] * ia);
      if (rb < len)
        *reinterpret_cast<__nv_bfloat162*>(out + static_cast<long long>(start + rb) * outStride + col) =
            __floats2bfloat162_rn(o[j][2] * ib, o[j][3] * ib);
    }
  }
}

template <int D>
bool launchShortAttention(const void* q, const void* k, const void* v, long long rowStride, const int* cuSeqlens,
                          int sequences, int heads, void* out, long long outStride, int padded, float scale,
                          cudaStream_t stream) {
  const long long bytes = sharedBytes(padded, D);
  // Above 48 KB a kernel must opt in (per kernel and device): always to the largest size, so that
  // threads sharing a device never lower it under each other's launch.
  if (bytes > 48 * 1024 && cudaFuncSetAttribute(shortAttentionKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(sharedBytes(kMaxPadded, D))) != cudaSuccess) {
    cudaGetLastError(); // declined: the caller's fallback must not find this error pending
    return false;
  }
  const unsigned blocks = static_cast<unsigned>(static_cast<long long>(sequences) * heads);
  shortAttentionKernel<D><<<blocks, 32 * kWarps, static_cast<size_t>(bytes), stream>>>(
      static_cast<const __nv_bfloat16*>(q), static_cast<const __nv_bfloat16*>(k), static_cast<const __nv_bfloat16*>(v),
      rowStride, cuSeqlens, static_cast<__nv_bfloat16*>(out), outStride, padded, heads, scale * 1.4426950408889634f);
  return cudaGetLastError() == cudaSuccess;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

} // namespace

bool shortAttentionFits(int headDim, std::int64_t maxLength) {
  return (headDim == 32 || headDim == 48 || headDim == 64) && maxLength >= 1 && maxLength <= kMaxPadded;
}

bool shortAttentionBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t rowStride,
                        const int* cuSeqlens, std::int64_t sequences, int heads, int headDim, std::int64_t maxLength,
                        float scale, std::uint16_t* out, std::int64_t outStride, void* stream) {
  if (!shortAttentionFits(headDim, maxLength) || sequences <= 0 || heads <= 0 || heads > 65535 ||
      sequences * heads > 0x7fffffffLL || rowStride % 8 != 0 || outStride % 2 != 0 || !aligned16(q) || !aligned16(k) || !aligned16(v) ||
      reinterpret_cast<std::uintptr_t>(out) % 4 != 0)
    return false;
  const int padded = static_cast<int>((maxLength + 15) / 16 * 16);
  const auto s = static_cast<cudaStream_t>(stream);
  switch (headDim) {
  case 32:
    return launchShortAttention<32>(q, k, v, rowStride, cuSeqlens, static_cast<int>(sequences), heads, out, outStride,
                                    padded, scale, s);
  case 48:
    return launchShortAttention<48>(q, k, v, rowStride, cuSeqlens, static_cast<int>(sequences), heads, out, outStride,
                                    padded, scale, s);
  default:
    return launchShortAttention<64>(q, k, v, rowStride, cuSeqlens, static_cast<int>(sequences), heads, out, outStride,
                                    padded, scale, s);
  }
}

} // namespace atlascope::inference::cuda
