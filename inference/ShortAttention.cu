// Attention over many short sequences (neighbourhoods, ~100 tokens) in one kernel: see
// shortAttentionBf16 in FusedKernels.h (embedding), and shortAttentionForwardBf16 /
// shortAttentionBackwardBf16 (training; the backward's two kernels below the forward's). No
// LibTorch header: plain pointers.
//
// Why not ATen's flash kernel: it pads the released model's head size 48 to 64 (copies of q, k
// and v and of the output) and its tiles of 128 queries are mostly empty for sequences of ~100
// tokens. Here a block takes one sequence and one head: its keys and values in shared memory,
// read once from the [R, 3E] projection in place. Two kernels: the tiled one (the default, below)
// and the one before it (`--attention-kernel 1`): values transposed in shared memory; each warp takes 16 queries
// at a time, in registers: scores by tensor cores (mma.sync m16n8k16, bf16 in, float32 out) over
// 16 keys per step with a running (online) softmax in float32, the probabilities rounded to
// bf16 for the product with the values, the row sums from the float32 ones (as flash does).
// A first version kept the scores in shared memory through WMMA (whole rows): its ~100 KB per
// block left the multiprocessors a few warps each, and it ran 1.8x slower than flash.
// Measured and removed (H200, `bench attention --iterations 50`, 2026-12-02): the queries copied
// into shared memory with the keys and values (fragments by ldmatrix) and the output written
// through shared memory in 16-byte row pieces (96 registers), where Nsight Compute found 42% of
// the tiled kernel's global sectors excessive: 0.536-0.538 ms against 0.521-0.524 (git: 4c624bf).
#include "inference/FusedKernels.h"

#include <algorithm>
#include <atomic>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <optional>
#include <type_traits>

namespace atlascope::inference::cuda {

namespace {

constexpr int kWarps = 8;
// The longest sequence, keys in shared memory (FusedKernels.h: training's bound for the cap, 250
// by default, rounded up to 256 observed cells, with the class token and zero slot, to 16).
constexpr int kMaxPadded = kShortAttentionLongest;

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

// Rows g and g + 8's maxima (a, b) over the quad of lanes holding their scores (lanes 4g .. 4g + 3).
__device__ __forceinline__ void quadMax(float& a, float& b) {
#pragma unroll
  for (int m = 1; m < 4; m <<= 1) {
    a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, m));
    b = fmaxf(b, __shfl_xor_sync(0xffffffffu, b, m));
  }
}

// 1 / each row's softmax sum for rows g and g + 8 (la, lb: this lane's share, summed over its quad).
__device__ __forceinline__ float2 quadInverseSums(float la, float lb) {
#pragma unroll
  for (int m = 1; m < 4; m <<= 1) {
    la += __shfl_xor_sync(0xffffffffu, la, m);
    lb += __shfl_xor_sync(0xffffffffu, lb, m);
  }
  return {1.f / la, 1.f / lb};
}

// A warp's 16 query rows out: o (the C fragments of rows ra = row0 + g and rb = row0 + g + 8 over
// head `head`'s D columns) times the rows' inverse softmax sums (ia, ib: quadInverseSums), rounded
// to bf16; rows past `len` not written.
template <int D>
__device__ __forceinline__ void storeRows(const float (&o)[D / 8][4], float ia, float ib, __nv_bfloat16* out,
                                          long long outStride, int start, int ra, int rb, int len, int head, int t) {
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

// The sequence and head of this block (heads fastest: the blocks of one sequence's heads run
// side by side and read its q/k/v rows from DRAM together; with the sequence fastest, each head's
// 96-byte slices came separately), and the sequence's first row and length, bounded by the
// caller's maxLength (`padded`); len <= 0: nothing to do.
struct BlockSequence {
  int head, start, len;
};
__device__ __forceinline__ BlockSequence blockSequence(const int* __restrict__ cuSeqlens, int heads, int padded) {
  const int seq = static_cast<int>(blockIdx.x / heads), head = static_cast<int>(blockIdx.x % heads);
  const int start = cuSeqlens[seq];
  const int len = cuSeqlens[seq + 1] - start;
  return {head, start, len > padded ? padded : len};
}

// Embedding's first layer reads q, k and v from the per-cell table (CellTransformer::cellTable)
// instead of a per-token projection: position p's row is index[p] of the table (rowStride apart),
// -1 the class token's q|k|v row `cls` (3 E: q, then k, then v), -2 add_zero_attn's slot (zero
// keys and values, a zero query). Null index: the rows are the packed positions themselves.
// zeroSlots: the first zeroSlots sequences' add_zero_attn slot is not stored (Batch::
// virtualZeroSlot): their keys run one past their stored rows, that key and value zero (as the
// stored slot's were), its query and output not computed. The tiled kernel only.
struct RowGather {
  const int* index = nullptr;
  const __nv_bfloat16* cls = nullptr;
  int zeroSlots = 0;
};

// Fragments (PTX's m16n8k16 layouts): lane = 4 g + t; A rows g and g + 8, columns 2t, 2t + 1
// (+ 8); B columns g, rows 2t, 2t + 1 (+ 8); C rows g and g + 8, columns 2t, 2t + 1.
template <int D>
__global__ void __launch_bounds__(32 * kWarps)
    shortAttentionKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, long long rowStride, const int* __restrict__ cuSeqlens,
                         __nv_bfloat16* __restrict__ out, long long outStride, int padded, int heads, float scaleLog2e,
                         float*, long long, RowGather) {
  constexpr int kPitch = D + 8;
  constexpr int kVecs = D / 8; // 16-byte vectors per row of one head
  extern __shared__ __align__(16) unsigned char smem[];
  const auto [head, start, len] = blockSequence(cuSeqlens, heads, padded);
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
      quadMax(xa, xb);
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
    const auto [ia, ib] = quadInverseSums(la, lb);
    storeRows<D>(o, ia, ib, out, outStride, start, ra, rb, len, head, t);
  }
}

// ---- The tiled kernel (the default): keys and values row-major in shared memory, copied there
// by cp.async (16 bytes a thread, no registers, rows past the sequence zero-filled), their
// fragments read by ldmatrix (.trans for the values: no transposed copy, which took eight 2-byte
// stores per 16 bytes, six of a warp's to one bank), the warp's query fragments loaded from
// global memory while the copies are in flight, the scores of KEYS keys a step with the running
// softmax updated once per step, and no exponentials past the sequence's last 16 keys. The
// arithmetic per value is the old kernel's: float32 scores and softmax, probabilities rounded to
// bf16. What decided the shape (`bench attention`, H200, 393,216 rows, ms per call against 0.733
// for the kernel before, mean length 87 (longest 130); its 8 warps at 64 registers held 4
// blocks a multiprocessor): 8 warps and 64 keys a step, 108 registers (2 blocks), 0.776; 8
// warps, 32 keys, 80 registers, 0.623; 4 warps and 32 keys, 0.552; 4 warps and 16 keys, 86
// registers, 0.532 (the default; at mean length 130, longest 195: 0.675 against 0.866). Fewer
// warps a block, so more blocks: ~100-row sequences are 7 query tiles, and a block's warps wait
// for its longest. Splitting a batch's sequences at 128 rows into two launches (less shared
// memory for the short ones) made no difference (0.745 against 0.748 at longest 195).

__device__ __forceinline__ void ldmatrix4(std::uint32_t (&r)[4], const void* p) {
  const auto a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix4t(std::uint32_t (&r)[4], const void* p) {
  const auto a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
// 2^x by the multiprocessor's ex2 (what exp2f becomes, less its scaling of subnormal results:
// probabilities below 2^-126 of the row's largest count for nothing in a bf16 product).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
// 16 bytes global -> shared; `bytes` 0 zero-fills the destination (rows past the sequence).
__device__ __forceinline__ void copy16(void* dst, const void* src, int bytes) {
  const auto a = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(a), "l"(src), "r"(bytes));
}

// Keys and values [padded][d + 8] bf16.
__host__ __device__ constexpr long long tiledSharedBytes(int padded, int d) { return 2LL * 2 * padded * (d + 8); }

// LSE (training's forward): also each row's log2-sum-exp into `lse` (a template argument, so that
// embedding's kernels stay as they were).
// GATHER: q, k and v rows through `gather` (RowGather; a template argument as LSE).
template <int D, int WARPS, int KEYS, int MIN_BLOCKS, bool LSE = false, bool GATHER = false>
__global__ void __launch_bounds__(32 * WARPS, MIN_BLOCKS)
    tiledAttentionKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, long long rowStride, const int* __restrict__ cuSeqlens,
                         __nv_bfloat16* __restrict__ out, long long outStride, int padded, int heads, float scaleLog2e,
                         float* __restrict__ lse, long long lseStride, RowGather gather) {
  static_assert(D % 16 == 0 && KEYS % 16 == 0, "whole fragments");
  constexpr int kPitch = D + 8; // 16-byte rows whose 8-row fragments fall on distinct banks
  constexpr int kVecs = D / 8;
  constexpr int kPairs = KEYS / 16; // 16-key groups per step
  extern __shared__ __align__(16) unsigned char smem[];
  const auto [head, start, stored] = blockSequence(cuSeqlens, heads, padded);
  // len: the keys (a virtual zero slot included); stored: the rows in memory, queries and outputs.
  const int len = stored + (static_cast<int>(blockIdx.x / heads) < gather.zeroSlots && stored < padded ? 1 : 0);
  if (len <= 0) return;
  const int lp = (len + 15) & ~15;
  auto* ks = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* vs = ks + padded * kPitch;
  const long long base = static_cast<long long>(start) * rowStride + static_cast<long long>(head) * D;
  // Position `r`'s row of matrix m (q, k or v; `part` its third of the class token's row), or
  // null for a zero row (add_zero_attn's slot).
  const long long headColumn = static_cast<long long>(head) * D;
  const int seqStart = start, rows = stored; // (structured bindings: not captured by lambdas in C++17)
  auto gathered = [&](const __nv_bfloat16* m, int part, int r) -> const __nv_bfloat16* {
    const int i = gather.index[seqStart + r];
    if (i >= 0) return m + static_cast<long long>(i) * rowStride + headColumn;
    return i == -1 ? gather.cls + static_cast<long long>(part) * heads * D + headColumn : nullptr;
  };
  for (int i = static_cast<int>(threadIdx.x); i < lp * kVecs; i += 32 * WARPS) {
    const int r = i / kVecs, c = (i % kVecs) * 8;
    if constexpr (GATHER) {
      const __nv_bfloat16* kr = r < rows ? gathered(k, 1, r) : nullptr;
      const __nv_bfloat16* vr = r < rows ? gathered(v, 2, r) : nullptr;
      // A zero-filled copy reads nothing, but its address must still be a valid one.
      copy16(ks + r * kPitch + c, kr ? kr + c : k + c, kr ? 16 : 0);
      copy16(vs + r * kPitch + c, vr ? vr + c : v + c, vr ? 16 : 0);
    } else {
      const int bytes = r < rows ? 16 : 0;
      const long long src = base + static_cast<long long>(r < rows ? r : 0) * rowStride + c;
      copy16(ks + r * kPitch + c, k + src, bytes);
      copy16(vs + r * kPitch + c, v + src, bytes);
    }
  }
  asm volatile("cp.async.commit_group;\n" ::);

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  // ldmatrix's row addresses: lane L gives row L % 8 of matrix L / 8.
  const int mRow = lane & 7, mIdx = lane >> 3;
  std::uint32_t qf[D / 16][4];
  auto loadQuery = [&](int row0) {
    const int ra = row0 + g, rb = row0 + g + 8;
    if constexpr (GATHER) {
      const __nv_bfloat16* qa = ra < rows ? gathered(q, 0, ra) : nullptr;
      const __nv_bfloat16* qb = rb < rows ? gathered(q, 0, rb) : nullptr;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        qf[kk][0] = qa ? load32(qa + kk * 16 + 2 * t) : 0u;
        qf[kk][1] = qb ? load32(qb + kk * 16 + 2 * t) : 0u;
        qf[kk][2] = qa ? load32(qa + kk * 16 + 8 + 2 * t) : 0u;
        qf[kk][3] = qb ? load32(qb + kk * 16 + 8 + 2 * t) : 0u;
      }
      return;
    }
    const __nv_bfloat16* qa0 = q + base + static_cast<long long>(ra) * rowStride + 2 * t;
    const __nv_bfloat16* qb0 = q + base + static_cast<long long>(rb) * rowStride + 2 * t;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      qf[kk][0] = ra < rows ? load32(qa0 + kk * 16) : 0u;
      qf[kk][1] = rb < rows ? load32(qb0 + kk * 16) : 0u;
      qf[kk][2] = ra < rows ? load32(qa0 + kk * 16 + 8) : 0u;
      qf[kk][3] = rb < rows ? load32(qb0 + kk * 16 + 8) : 0u;
    }
  };
  if (warp * 16 < stored) loadQuery(warp * 16); // in flight with the copies
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();

  for (int row0 = warp * 16; row0 < stored; row0 += 16 * WARPS) {
    if (row0 != warp * 16) loadQuery(row0);
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.f, lb = 0.f;
    for (int n0 = 0; n0 < lp; n0 += KEYS) {
      // Scores: s[2p + h] holds keys n0 + 16p + 8h + 2t, + 1 (rows g, g + 8).
      float s[2 * kPairs][4];
#pragma unroll
      for (int p = 0; p < kPairs; ++p) {
#pragma unroll
        for (int h = 0; h < 2; ++h) s[2 * p + h][0] = s[2 * p + h][1] = s[2 * p + h][2] = s[2 * p + h][3] = 0.f;
        if (n0 + 16 * p < lp) {
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            // Matrices: keys +0..7 dims +0..7, keys +0..7 dims +8..15, keys +8..15 dims +0..7, +8..15 +8..15.
            std::uint32_t b[4];
            ldmatrix4(b, ks + (n0 + 16 * p + (mIdx >> 1) * 8 + mRow) * kPitch + kk * 16 + (mIdx & 1) * 8);
            mma16816(s[2 * p], qf[kk], b[0], b[1]);
            mma16816(s[2 * p + 1], qf[kk], b[2], b[3]);
          }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int key = n0 + 16 * p + 8 * h + 2 * t;
          if (key >= len) s[2 * p + h][0] = s[2 * p + h][2] = -INFINITY;
          if (key + 1 >= len) s[2 * p + h][1] = s[2 * p + h][3] = -INFINITY;
        }
      }
      float xa = -INFINITY, xb = -INFINITY;
#pragma unroll
      for (int i = 0; i < 2 * kPairs; ++i) {
        xa = fmaxf(xa, fmaxf(s[i][0], s[i][1]));
        xb = fmaxf(xb, fmaxf(s[i][2], s[i][3]));
      }
      quadMax(xa, xb);
      // Key n0 + 0 is real in the first step, so the running maxima are finite from then on.
      const float na = fmaxf(ma, xa), nb = fmaxf(mb, xb);
      const float ca = exp2f((ma - na) * scaleLog2e), cb = exp2f((mb - nb) * scaleLog2e);
      ma = na;
      mb = nb;
      // Probabilities of the step's 16-key groups within the sequence's (the others stay -inf
      // and unused): ex2 is a quarter-rate unit, a fifth of the kernel's issue at ~100 rows.
      const float sa2 = na * scaleLog2e, sb2 = nb * scaleLog2e;
#pragma unroll
      for (int p = 0; p < kPairs; ++p) {
        if (n0 + 16 * p >= lp) continue;
#pragma unroll
        for (int i = 2 * p; i < 2 * p + 2; ++i) {
          s[i][0] = ex2(fmaf(s[i][0], scaleLog2e, -sa2));
          s[i][1] = ex2(fmaf(s[i][1], scaleLog2e, -sa2));
          s[i][2] = ex2(fmaf(s[i][2], scaleLog2e, -sb2));
          s[i][3] = ex2(fmaf(s[i][3], scaleLog2e, -sb2));
        }
      }
      float sa = 0.f, sb = 0.f;
#pragma unroll
      for (int i = 0; i < 2 * kPairs; ++i) {
        if (n0 + 8 * i >= lp) continue;
        sa += s[i][0] + s[i][1];
        sb += s[i][2] + s[i][3];
      }
      la = la * ca + sa;
      lb = lb * cb + sb;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[j][0] *= ca;
        o[j][1] *= ca;
        o[j][2] *= cb;
        o[j][3] *= cb;
      }
#pragma unroll
      for (int p = 0; p < kPairs; ++p) {
        if (n0 + 16 * p >= lp) continue;
        const std::uint32_t pf[4] = {pack(s[2 * p][0], s[2 * p][1]), pack(s[2 * p][2], s[2 * p][3]),
                                     pack(s[2 * p + 1][0], s[2 * p + 1][1]), pack(s[2 * p + 1][2], s[2 * p + 1][3])};
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          // Matrices (transposed): keys +0..7 dims +0..7, keys +8..15 dims +0..7, then dims +8..15.
          std::uint32_t b[4];
          ldmatrix4t(b, vs + (n0 + 16 * p + (mIdx & 1) * 8 + mRow) * kPitch + j * 16 + (mIdx >> 1) * 8);
          mma16816(o[2 * j], pf, b[0], b[1]);
          mma16816(o[2 * j + 1], pf, b[2], b[3]);
        }
      }
    }
    const auto [ia, ib] = quadInverseSums(la, lb);
    storeRows<D>(o, ia, ib, out, outStride, start, row0 + g, row0 + g + 8, stored, head, t);
    if (LSE && t == 0) { // training: each row's log2 of its softmax denominator
      float* l = lse + static_cast<long long>(head) * lseStride + start;
      if (row0 + g < stored) l[row0 + g] = fmaf(ma, scaleLog2e, -log2f(ia));
      if (row0 + g + 8 < stored) l[row0 + g + 8] = fmaf(mb, scaleLog2e, -log2f(ib));
    }
  }
}

// ---- Training's backward (shortAttentionBackwardBf16): two kernels, a block per sequence and
// head as the forward, no atomics. The first gives each warp 16 query rows and runs over the
// sequence's keys (K and V in shared memory): it recomputes the probabilities from the forward's
// log2-sum-exp, forms dS = P (dP - delta) with dP = dO V^T and delta = rowsum(dO o O) (written for
// the second kernel), and writes dQ = scale dS K. The second gives each warp 16 keys and runs over
// the sequence's queries (Q and dO in shared memory, with each row's log2-sum-exp and delta):
// dV = P^T dO and dK = scale dS^T Q, from the transposed scores K Q^T. The scores and dP are
// computed twice (once per kernel), which costs less than sharing them: at ~100 rows a sequence
// the work is memory and latency, not arithmetic. P and dS are rounded to bf16 for their products,
// float32 elsewhere, as flash attention's backward.
//
// Fragment layouts as the forward's; a kernel's C fragments of 16 x 16 (two n8 halves h) are the
// A fragment of the next product in the same registers' order: {h0 rows g, h0 rows g + 8, h1 rows
// g, h1 rows g + 8}.

template <int D>
__device__ __forceinline__ void loadRowFragments(std::uint32_t (&f)[D / 16][4], const __nv_bfloat16* src,
                                                 long long rowStride, int ra, int rb, int len, int t) {
  const __nv_bfloat16* a0 = src + static_cast<long long>(ra) * rowStride + 2 * t;
  const __nv_bfloat16* b0 = src + static_cast<long long>(rb) * rowStride + 2 * t;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    f[kk][0] = ra < len ? load32(a0 + kk * 16) : 0u;
    f[kk][1] = rb < len ? load32(b0 + kk * 16) : 0u;
    f[kk][2] = ra < len ? load32(a0 + kk * 16 + 8) : 0u;
    f[kk][3] = rb < len ? load32(b0 + kk * 16 + 8) : 0u;
  }
}

__device__ __forceinline__ float dot2(std::uint32_t a, std::uint32_t b) {
  const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&a));
  const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&b));
  return fmaf(x.x, y.x, x.y * y.y);
}

// delta = rowsum(dO o O) of rows g and g + 8 from their fragments (da, db: the quad's sums, on
// every lane of the quad).
template <int D>
__device__ __forceinline__ void rowDeltas(float& da, float& db, const std::uint32_t (&df)[D / 16][4],
                                          const std::uint32_t (&of)[D / 16][4]) {
  da = 0.f;
  db = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    da += dot2(df[kk][0], of[kk][0]) + dot2(df[kk][2], of[kk][2]);
    db += dot2(df[kk][1], of[kk][1]) + dot2(df[kk][3], of[kk][3]);
  }
#pragma unroll
  for (int m = 1; m < 4; m <<= 1) {
    da += __shfl_xor_sync(0xffffffffu, da, m);
    db += __shfl_xor_sync(0xffffffffu, db, m);
  }
}

// A warp's 16 rows of a [rows][D] gradient out (C fragments of rows ra, rb), times `scale`.
template <int D>
__device__ __forceinline__ void storeGradient(const float (&acc)[D / 8][4], float scale, __nv_bfloat16* dst,
                                              long long rowStride, int ra, int rb, int len, int t) {
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    if (ra < len)
      *reinterpret_cast<__nv_bfloat162*>(dst + static_cast<long long>(ra) * rowStride + j * 8 + 2 * t) =
          __floats2bfloat162_rn(acc[j][0] * scale, acc[j][1] * scale);
    if (rb < len)
      *reinterpret_cast<__nv_bfloat162*>(dst + static_cast<long long>(rb) * rowStride + j * 8 + 2 * t) =
          __floats2bfloat162_rn(acc[j][2] * scale, acc[j][3] * scale);
  }
}

// Rows [len, lp) of a [padded][D + 8] shared tile zero-filled, rows below it copied (cp.async).
template <int D, int THREADS>
__device__ __forceinline__ void copyRows(__nv_bfloat16* dst, const __nv_bfloat16* src, long long rowStride, int len,
                                         int lp) {
  constexpr int kPitch = D + 8, kVecs = D / 8;
  for (int i = static_cast<int>(threadIdx.x); i < lp * kVecs; i += THREADS) {
    const int r = i / kVecs, c = (i % kVecs) * 8;
    copy16(dst + r * kPitch + c, src + static_cast<long long>(r < len ? r : 0) * rowStride + c, r < len ? 16 : 0);
  }
}

// Two 16 x 16 products of a warp's A fragments against 16 rows of two shared tiles read as B
// (rows fragRow's 16, non-transposed, as the forward's keys): x = a . first^T and y = b . second^T.
// The scores and dP in the first kernel (Q K^T, dO V^T), their transposes in the second (K Q^T,
// V dO^T).
template <int D>
__device__ __forceinline__ void twoProducts(float (&x)[2][4], float (&y)[2][4], const std::uint32_t (&a)[D / 16][4],
                                            const std::uint32_t (&b)[D / 16][4], const __nv_bfloat16* first,
                                            const __nv_bfloat16* second, int fragRow) {
#pragma unroll
  for (int h = 0; h < 2; ++h) x[h][0] = x[h][1] = x[h][2] = x[h][3] = y[h][0] = y[h][1] = y[h][2] = y[h][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    std::uint32_t m[4];
    ldmatrix4(m, first + fragRow + kk * 16);
    mma16816(x[0], a[kk], m[0], m[1]);
    mma16816(x[1], a[kk], m[2], m[3]);
    ldmatrix4(m, second + fragRow + kk * 16);
    mma16816(y[0], b[kk], m[0], m[1]);
    mma16816(y[1], b[kk], m[2], m[3]);
  }
}

// acc += a . K for a warp's 16 rows: a the A fragment of dS (its rows against keys n0 .. n0 + 15),
// K [keys][D + 8] in shared memory read transposed (keys +0..7 and +8..15 of dims +0..7, then
// +8..15). dQ's product, whether dS was recomputed (queryGradient) or kept (attentionGradKernel).
template <int D>
__device__ __forceinline__ void addTimesKeys(float (&acc)[D / 8][4], const std::uint32_t (&a)[4],
                                             const __nv_bfloat16* ks, int n0) {
  constexpr int kPitch = D + 8;
  const int lane = static_cast<int>(threadIdx.x) & 31, mRow = lane & 7, mIdx = lane >> 3;
#pragma unroll
  for (int j = 0; j < D / 16; ++j) {
    std::uint32_t b[4];
    ldmatrix4t(b, ks + (n0 + (mIdx & 1) * 8 + mRow) * kPitch + j * 16 + (mIdx >> 1) * 8);
    mma16816(acc[2 * j], a, b[0], b[1]);
    mma16816(acc[2 * j + 1], a, b[2], b[3]);
  }
}

// A warp's 16 queries' dQ / scale (acc: C fragments of rows g, g + 8) over a sequence's keys (K
// and V [keys][D + 8] in shared memory; qf, df the rows' fragments of q and dO; la, lb their
// log2-sum-exp; da, db their delta): dS = P (dP - delta) from the scores Q K^T and dP = dO V^T,
// 0 for keys past the sequence, rounded to bf16, then acc = dS K. The query kernel's loop, and
// attentionGradKernel's for sequences longer than its kept tiles.
template <int D>
__device__ __forceinline__ void queryGradient(float (&acc)[D / 8][4], const std::uint32_t (&qf)[D / 16][4],
                                              const std::uint32_t (&df)[D / 16][4], const __nv_bfloat16* ks,
                                              const __nv_bfloat16* vs, int len, int lp, float la, float lb, float da,
                                              float db, float scaleLog2e) {
  constexpr int kPitch = D + 8;
  const int lane = static_cast<int>(threadIdx.x) & 31, t = lane & 3, mRow = lane & 7, mIdx = lane >> 3;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  for (int n0 = 0; n0 < lp; n0 += 16) {
    float s[2][4], dp[2][4];
    twoProducts<D>(s, dp, qf, df, ks, vs, (n0 + (mIdx >> 1) * 8 + mRow) * kPitch + (mIdx & 1) * 8);
    float ds[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int key = n0 + 8 * h + 2 * t;
      const bool k0 = key < len, k1 = key + 1 < len;
      ds[h][0] = k0 ? ex2(fmaf(s[h][0], scaleLog2e, -la)) * (dp[h][0] - da) : 0.f;
      ds[h][1] = k1 ? ex2(fmaf(s[h][1], scaleLog2e, -la)) * (dp[h][1] - da) : 0.f;
      ds[h][2] = k0 ? ex2(fmaf(s[h][2], scaleLog2e, -lb)) * (dp[h][2] - db) : 0.f;
      ds[h][3] = k1 ? ex2(fmaf(s[h][3], scaleLog2e, -lb)) * (dp[h][3] - db) : 0.f;
    }
    const std::uint32_t af[4] = {pack(ds[0][0], ds[0][1]), pack(ds[0][2], ds[0][3]), pack(ds[1][0], ds[1][1]),
                                 pack(ds[1][2], ds[1][3])};
    addTimesKeys<D>(acc, af, ks, n0);
  }
}

constexpr int kGradWarps = 4;

template <int D>
__global__ void __launch_bounds__(32 * kGradWarps)
    attentionGradQueryKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                             const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ o,
                             const __nv_bfloat16* __restrict__ dout, long long rowStride, long long outStride,
                             const int* __restrict__ cuSeqlens, const float* __restrict__ lse,
                             float* __restrict__ delta, long long lseStride, __nv_bfloat16* __restrict__ dq, int padded,
                             int heads, float scaleLog2e, float scale) {
  constexpr int kPitch = D + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  const auto [head, start, len] = blockSequence(cuSeqlens, heads, padded);
  if (len <= 0) return;
  const int lp = (len + 15) & ~15;
  auto* ks = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* vs = ks + padded * kPitch;
  const long long base = static_cast<long long>(start) * rowStride + static_cast<long long>(head) * D;
  const long long outBase = static_cast<long long>(start) * outStride + static_cast<long long>(head) * D;
  copyRows<D, 32 * kGradWarps>(ks, k + base, rowStride, len, lp);
  copyRows<D, 32 * kGradWarps>(vs, v + base, rowStride, len, lp);
  asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  const long long lseBase = static_cast<long long>(head) * lseStride + start;
  for (int row0 = warp * 16; row0 < len; row0 += 16 * kGradWarps) {
    const int ra = row0 + g, rb = row0 + g + 8;
    std::uint32_t qf[D / 16][4], df[D / 16][4], of[D / 16][4];
    loadRowFragments<D>(qf, q + base, rowStride, ra, rb, len, t);
    loadRowFragments<D>(df, dout + outBase, outStride, ra, rb, len, t);
    loadRowFragments<D>(of, o + outBase, outStride, ra, rb, len, t);
    float da, db; // delta = rowsum(dO o O), rows ra and rb
    rowDeltas<D>(da, db, df, of);
    if (t == 0) {
      if (ra < len) delta[lseBase + ra] = da;
      if (rb < len) delta[lseBase + rb] = db;
    }
    // Rows past the sequence: zero q and dO, so dS = P (0 - 0) = 0 whatever their P.
    const float la = ra < len ? lse[lseBase + ra] : 0.f, lb = rb < len ? lse[lseBase + rb] : 0.f;
    float acc[D / 8][4];
    queryGradient<D>(acc, qf, df, ks, vs, len, lp, la, lb, da, db, scaleLog2e);
    storeGradient<D>(acc, scale, dq + base, rowStride, ra, rb, len, t);
  }
}

// One step of the key kernels' loop (attentionGradKeyValueKernel, attentionGradKernel): a warp's
// 16 keys (kf, vf) against the 16 queries from m0 (Q and dO [queries][D + 8] in shared memory,
// each query's log2-sum-exp and delta): the transposed scores K Q^T and dP^T = V dO^T, P^T and
// dS^T = P^T (dP^T - delta), then dV += P^T dO and dK += dS^T Q. `onDs` sees dS^T's bf16 A
// fragment (keys g, g + 8 against queries m0 + 2t, + 1, then + 8) before its product.
template <int D, class OnDs>
__device__ __forceinline__ void keyStep(float (&dka)[D / 8][4], float (&dva)[D / 8][4],
                                        const std::uint32_t (&kf)[D / 16][4], const std::uint32_t (&vf)[D / 16][4],
                                        const __nv_bfloat16* qs, const __nv_bfloat16* dos, const float* lses,
                                        const float* deltas, int m0, float scaleLog2e, const OnDs& onDs) {
  constexpr int kPitch = D + 8;
  const int lane = static_cast<int>(threadIdx.x) & 31, t = lane & 3, mRow = lane & 7, mIdx = lane >> 3;
  // Transposed scores: st[h] holds keys ka, kb against queries m0 + 8h + 2t, + 1.
  float st[2][4], dpt[2][4];
  twoProducts<D>(st, dpt, kf, vf, qs, dos, (m0 + (mIdx >> 1) * 8 + mRow) * kPitch + (mIdx & 1) * 8);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int query = m0 + 8 * h + 2 * t;
    const float2 l = *reinterpret_cast<const float2*>(lses + query);
    const float2 dl = *reinterpret_cast<const float2*>(deltas + query);
    st[h][0] = ex2(fmaf(st[h][0], scaleLog2e, -l.x));
    st[h][1] = ex2(fmaf(st[h][1], scaleLog2e, -l.y));
    st[h][2] = ex2(fmaf(st[h][2], scaleLog2e, -l.x));
    st[h][3] = ex2(fmaf(st[h][3], scaleLog2e, -l.y));
    dpt[h][0] = st[h][0] * (dpt[h][0] - dl.x);
    dpt[h][1] = st[h][1] * (dpt[h][1] - dl.y);
    dpt[h][2] = st[h][2] * (dpt[h][2] - dl.x);
    dpt[h][3] = st[h][3] * (dpt[h][3] - dl.y);
  }
  const std::uint32_t pf[4] = {pack(st[0][0], st[0][1]), pack(st[0][2], st[0][3]), pack(st[1][0], st[1][1]),
                               pack(st[1][2], st[1][3])};
  const std::uint32_t sf[4] = {pack(dpt[0][0], dpt[0][1]), pack(dpt[0][2], dpt[0][3]), pack(dpt[1][0], dpt[1][1]),
                               pack(dpt[1][2], dpt[1][3])};
  onDs(sf);
#pragma unroll
  for (int j = 0; j < D / 16; ++j) {
    // dO and Q as [queries][dims] (transposed matrices), as the forward's values.
    const int at = (m0 + (mIdx & 1) * 8 + mRow) * kPitch + j * 16 + (mIdx >> 1) * 8;
    std::uint32_t b[4];
    ldmatrix4t(b, dos + at);
    mma16816(dva[2 * j], pf, b[0], b[1]);
    mma16816(dva[2 * j + 1], pf, b[2], b[3]);
    ldmatrix4t(b, qs + at);
    mma16816(dka[2 * j], sf, b[0], b[1]);
    mma16816(dka[2 * j + 1], sf, b[2], b[3]);
  }
}

// Q and dO [padded][D + 8] bf16, then each row's log2-sum-exp and delta [padded] float32.
__host__ __device__ constexpr long long gradKeySharedBytes(int padded, int d) {
  return 2LL * 2 * padded * (d + 8) + 2LL * 4 * padded;
}

template <int D>
__global__ void __launch_bounds__(32 * kGradWarps)
    attentionGradKeyValueKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                                const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
                                long long rowStride, long long outStride, const int* __restrict__ cuSeqlens,
                                const float* __restrict__ lse, const float* __restrict__ delta, long long lseStride,
                                __nv_bfloat16* __restrict__ dk, __nv_bfloat16* __restrict__ dv, int padded, int heads,
                                float scaleLog2e, float scale) {
  constexpr int kPitch = D + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  const auto [head, start, len] = blockSequence(cuSeqlens, heads, padded);
  if (len <= 0) return;
  const int lp = (len + 15) & ~15;
  auto* qs = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* dos = qs + padded * kPitch;
  auto* lses = reinterpret_cast<float*>(dos + padded * kPitch);
  float* deltas = lses + padded;
  const long long base = static_cast<long long>(start) * rowStride + static_cast<long long>(head) * D;
  const long long outBase = static_cast<long long>(start) * outStride + static_cast<long long>(head) * D;
  copyRows<D, 32 * kGradWarps>(qs, q + base, rowStride, len, lp);
  copyRows<D, 32 * kGradWarps>(dos, dout + outBase, outStride, len, lp);
  asm volatile("cp.async.commit_group;\n" ::);
  const long long lseBase = static_cast<long long>(head) * lseStride + start;
  // Queries past the sequence: log2-sum-exp +inf, so their P is 0 (their q rows are zero).
  for (int i = static_cast<int>(threadIdx.x); i < lp; i += 32 * kGradWarps) {
    lses[i] = i < len ? lse[lseBase + i] : INFINITY;
    deltas[i] = i < len ? delta[lseBase + i] : 0.f;
  }

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();
  for (int key0 = warp * 16; key0 < len; key0 += 16 * kGradWarps) {
    const int ka = key0 + g, kb = key0 + g + 8;
    std::uint32_t kf[D / 16][4], vf[D / 16][4];
    loadRowFragments<D>(kf, k + base, rowStride, ka, kb, len, t);
    loadRowFragments<D>(vf, v + base, rowStride, ka, kb, len, t);
    float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      dka[j][0] = dka[j][1] = dka[j][2] = dka[j][3] = dva[j][0] = dva[j][1] = dva[j][2] = dva[j][3] = 0.f;
    for (int m0 = 0; m0 < lp; m0 += 16)
      keyStep<D>(dka, dva, kf, vf, qs, dos, lses, deltas, m0, scaleLog2e, [](const std::uint32_t(&)[4]) {});
    storeGradient<D>(dka, scale, dk + base, rowStride, ka, kb, len, t);
    storeGradient<D>(dva, 1.f, dv + base, rowStride, ka, kb, len, t);
  }
}

// ---- Training's backward in one kernel (the default; shortAttentionBackwardBf16's `twoKernels`
// runs the two above). The two kernels each read their sequence's q, k, v and dO and computed its
// scores and dP: 0.9 and 1.0 ms of a ~20 ms step at the released size, ~1.7 TB/s. Here a block
// (one sequence and head) reads each once. Its warps first take 16 keys each, as the key kernel,
// and also keep dS^T (bf16, as the products read it) in shared memory; then, after the block's
// barrier, 16 queries each, as the query kernel, dQ = scale dS K from dS^T (read transposed) and K
// (copied over Q, which the second phase no longer needs). The same arithmetic as the two kernels
// (delta by the same sums, rowDeltas; the key kernel's step, keyStep; dS of the keys past the
// sequence 0, as the query kernel's).
// With `biasPartial` (training's packed q|k|v, PackedQkvAttention), the block also sums its
// gradients' columns, as stored (bf16), per warp in shared memory and then over the warps in order:
// biasPartial[sequence][part * E + head * D + c] (part 0, 1, 2: q, k, v), for the projection's bias
// gradient by sumSlicesBf16 (deterministic), instead of a pass over the [R, 3E] gradient. The rows
// zeroRows[s] of the first zeroSlots sequences (add_zero_attn's slots) get dK = dV = 0, as the
// projection's backward zeroed them after the kernels, and count for nothing in the sums.
// Shared: Q (then K) and dO [padded][D + 8] bf16, dS^T [padded][padded + 8] bf16 (row pitch lp + 8
// for the sequence's lp), each row's log2-sum-exp and delta [padded] float32, the warps' column
// sums [warps][3][D] float32.
// Two blocks a multiprocessor (__launch_bounds__'s 2 below: at most 128 registers): unbounded,
// ptxas gives the kernel 159 registers at D 48 (188 at 64, 124 at 32; nvcc 13, sm_90, -Xptxas -v),
// so one block of 8 warps would fit a multiprocessor where 16 now hide the latency of their chains
// of dependent products (not timed unbounded). At 128 registers it spills nothing at D 48 and 32,
// 40 bytes at 64.
constexpr int kFusedGradWarps = 8;
// setAttentionBackwardLoadsLate's: read at each launch (a captured graph keeps the order it was
// captured with).
std::atomic<bool> gLateLoads{false};

// keysAhead (KEYS_AHEAD below): K in a tile of its own, and dS^T kept for sequences of up to `kept`
// rows: [kept][D + 8] and [kept][kept + 8] bf16; without, dS^T [padded][padded + 8].
__host__ __device__ constexpr long long fusedGradSharedBytes(int padded, int d, bool keysAhead = false, int kept = 0) {
  const long long rows = keysAhead ? kept : padded;
  return 2LL * 2 * padded * (d + 8) + (keysAhead ? 2LL * rows * (d + 8) : 0) + 2LL * rows * (rows + 8) +
         4LL * 2 * padded + 4LL * kFusedGradWarps * 3 * d;
}

// A warp's 16 rows of a gradient (C fragments of rows ra, rb, times `scale`, rounded to bf16 as
// storeGradient writes them) added to `sums` [D] by column; rows not `a` / `b` count for nothing.
template <int D>
__device__ __forceinline__ void addColumnSums(float* sums, const float (&acc)[D / 8][4], float scale, bool a, bool b,
                                              int g, int t) {
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const float2 ra = __bfloat1622float2(__floats2bfloat162_rn(acc[j][0] * scale, acc[j][1] * scale));
    const float2 rb = __bfloat1622float2(__floats2bfloat162_rn(acc[j][2] * scale, acc[j][3] * scale));
    float x = (a ? ra.x : 0.f) + (b ? rb.x : 0.f), y = (a ? ra.y : 0.f) + (b ? rb.y : 0.f);
#pragma unroll
    for (int m = 4; m < 32; m <<= 1) { // over g (lane = 4 g + t)
      x += __shfl_xor_sync(0xffffffffu, x, m);
      y += __shfl_xor_sync(0xffffffffu, y, m);
    }
    if (g == 0) {
      sums[j * 8 + 2 * t] += x;
      sums[j * 8 + 2 * t + 1] += y;
    }
  }
}

// KEYS_AHEAD (the default, fusedBackwardKept): K copied into a tile of its own with Q and dO at the
// start, and each warp's first 16 keys' K and V fragments loaded before the first barrier, so that
// neither phase starts with a wait on global memory. Its shared memory is sized for sequences of up
// to `kept` rows (two blocks a multiprocessor: the kernel before sized dS^T for the batch's longest
// sequence, whose ~110 KB at 176 left L1 a few KB and one block at 192 and up); a longer sequence
// keeps no dS^T and no K tile: after the key phase its K and V are copied over Q and dO and its
// queries' dS recomputed from them, as the query kernel's (the same arithmetic). Without it
// (`--attention-backward-reload`, the kernel before; kept = padded), K is copied over Q after the
// key phase (a copy, a wait and a barrier between the phases: 12% of the kernel's samples in Nsight
// Compute, call s17-1) and each warp loads its fragments after the barrier. The same bits either way.
template <int D, bool KEYS_AHEAD>
__global__ void __launch_bounds__(32 * kFusedGradWarps, 2)
    attentionGradKernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                        const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ o,
                        const __nv_bfloat16* __restrict__ dout, long long rowStride, long long outStride,
                        const int* __restrict__ cuSeqlens, const float* __restrict__ lse, long long lseStride,
                        __nv_bfloat16* __restrict__ dq, __nv_bfloat16* __restrict__ dk, __nv_bfloat16* __restrict__ dv,
                        int padded, int heads, float scaleLog2e, float scale, float* __restrict__ biasPartial,
                        const long long* __restrict__ zeroRows, int zeroSlots, int kept, bool lateLoads) {
  constexpr int kPitch = D + 8, kThreads = 32 * kFusedGradWarps;
  extern __shared__ __align__(16) unsigned char smem[];
  const auto [head, start, len] = blockSequence(cuSeqlens, heads, padded);
  const int seq = static_cast<int>(blockIdx.x / heads);
  // This block's columns of its sequence's row of biasPartial: part p at p * E.
  float* partial = biasPartial ? biasPartial + static_cast<long long>(seq) * 3 * heads * D + head * D : nullptr;
  if (len <= 0) {
    if (partial)
      for (int i = static_cast<int>(threadIdx.x); i < 3 * D; i += kThreads) partial[(i / D) * heads * D + i % D] = 0.f;
    return;
  }
  const int slot = seq < zeroSlots ? static_cast<int>(zeroRows[seq] - start) : -1; // add_zero_attn's row
  const int lp = (len + 15) & ~15, sPitch = lp + 8;
  const bool keep = !KEYS_AHEAD || lp <= kept;       // dS^T kept (else recomputed for the queries)
  auto* qs = reinterpret_cast<__nv_bfloat16*>(smem); // Q (then K, unless it came ahead)
  __nv_bfloat16* dos = qs + padded * kPitch;         // dO (then V, where dS^T is not kept)
  __nv_bfloat16* ks = KEYS_AHEAD && keep ? dos + padded * kPitch : qs;
  __nv_bfloat16* dst = dos + padded * kPitch + (KEYS_AHEAD ? kept * kPitch : 0); // dS^T: [keys][queries]
  auto* lses = reinterpret_cast<float*>(dst + (KEYS_AHEAD ? kept * (kept + 8) : padded * (padded + 8)));
  float* deltas = lses + padded;
  float* sums = deltas + padded; // [warps][3][D]
  if (partial)
    for (int i = static_cast<int>(threadIdx.x); i < kFusedGradWarps * 3 * D; i += kThreads) sums[i] = 0.f;
  const long long base = static_cast<long long>(start) * rowStride + static_cast<long long>(head) * D;
  const long long outBase = static_cast<long long>(start) * outStride + static_cast<long long>(head) * D;
  copyRows<D, kThreads>(qs, q + base, rowStride, len, lp);
  copyRows<D, kThreads>(dos, dout + outBase, outStride, len, lp);
  if (KEYS_AHEAD && keep) copyRows<D, kThreads>(ks, k + base, rowStride, len, lp);
  asm volatile("cp.async.commit_group;\n" ::);

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  const int mRow = lane & 7, mIdx = lane >> 3;
  const long long lseBase = static_cast<long long>(head) * lseStride + start;
  const int firstKey = warp * 16;
  std::uint32_t kf[D / 16][4], vf[D / 16][4];
  // lateLoads (`--attention-loads-late`, the order before; the same bits): each warp's first K and V
  // fragments loaded after delta's sums, and each row's log2-sum-exp after its row's sums, where
  // issuing them all first lets one wait on global memory serve them together.
  if constexpr (KEYS_AHEAD) { // rows past the sequence: zeros, no load
    if (!lateLoads) {
      loadRowFragments<D>(kf, k + base, rowStride, firstKey + g, firstKey + g + 8, len, t);
      loadRowFragments<D>(vf, v + base, rowStride, firstKey + g, firstKey + g + 8, len, t);
    }
  }
  // delta = rowsum(dO o O), by the query kernel's sums; past the sequence 0, and the log2-sum-exp
  // +inf (P 0: those queries' rows of q and dO are zero).
  for (int row0 = warp * 16; row0 < lp; row0 += 16 * kFusedGradWarps) {
    const int ra = row0 + g, rb = row0 + g + 8;
    float la = INFINITY, lb = INFINITY;
    if (!lateLoads && t == 0) {
      if (ra < len) la = lse[lseBase + ra];
      if (rb < len) lb = lse[lseBase + rb];
    }
    std::uint32_t df[D / 16][4], of[D / 16][4];
    loadRowFragments<D>(df, dout + outBase, outStride, ra, rb, len, t);
    loadRowFragments<D>(of, o + outBase, outStride, ra, rb, len, t);
    float da, db;
    rowDeltas<D>(da, db, df, of);
    if (t == 0) {
      if (lateLoads) {
        la = ra < len ? lse[lseBase + ra] : INFINITY;
        lb = rb < len ? lse[lseBase + rb] : INFINITY;
      }
      deltas[ra] = ra < len ? da : 0.f;
      deltas[rb] = rb < len ? db : 0.f;
      lses[ra] = la;
      lses[rb] = lb;
    }
  }
  if constexpr (KEYS_AHEAD) {
    if (lateLoads) {
      loadRowFragments<D>(kf, k + base, rowStride, firstKey + g, firstKey + g + 8, len, t);
      loadRowFragments<D>(vf, v + base, rowStride, firstKey + g, firstKey + g + 8, len, t);
    }
  }
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();

  // Keys: dV = P^T dO, dK = scale dS^T Q (the key kernel's), dS^T kept.
  for (int key0 = firstKey; key0 < len; key0 += 16 * kFusedGradWarps) {
    const int ka = key0 + g, kb = key0 + g + 8;
    if (!KEYS_AHEAD || key0 != firstKey) {
      loadRowFragments<D>(kf, k + base, rowStride, ka, kb, len, t);
      loadRowFragments<D>(vf, v + base, rowStride, ka, kb, len, t);
    }
    float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      dka[j][0] = dka[j][1] = dka[j][2] = dka[j][3] = dva[j][0] = dva[j][1] = dva[j][2] = dva[j][3] = 0.f;
    for (int m0 = 0; m0 < lp; m0 += 16)
      keyStep<D>(dka, dva, kf, vf, qs, dos, lses, deltas, m0, scaleLog2e, [&, n = len](const std::uint32_t(&sf)[4]) {
        // dS^T rows ka, kb; queries m0 + 2t (sf 0, 1) and m0 + 8 + 2t (sf 2, 3). Keys past the
        // sequence: 0, as the query kernel's (their K rows are zero, but 2^-lse need not be finite).
        if (!keep) return;
        auto* rowA = reinterpret_cast<std::uint32_t*>(dst + ka * sPitch + m0 + 2 * t);
        auto* rowB = reinterpret_cast<std::uint32_t*>(dst + kb * sPitch + m0 + 2 * t);
        rowA[0] = ka < n ? sf[0] : 0u;
        rowB[0] = kb < n ? sf[1] : 0u;
        rowA[4] = ka < n ? sf[2] : 0u;
        rowB[4] = kb < n ? sf[3] : 0u;
      });
    // (Constant indices: a computed one would put the accumulators in local memory.)
    if (ka == slot)
#pragma unroll
      for (int j = 0; j < D / 8; ++j) dka[j][0] = dka[j][1] = dva[j][0] = dva[j][1] = 0.f;
    if (kb == slot)
#pragma unroll
      for (int j = 0; j < D / 8; ++j) dka[j][2] = dka[j][3] = dva[j][2] = dva[j][3] = 0.f;
    storeGradient<D>(dka, scale, dk + base, rowStride, ka, kb, len, t);
    storeGradient<D>(dva, 1.f, dv + base, rowStride, ka, kb, len, t);
    if (partial) {
      addColumnSums<D>(sums + (warp * 3 + 1) * D, dka, scale, ka < len, kb < len, g, t);
      addColumnSums<D>(sums + (warp * 3 + 2) * D, dva, 1.f, ka < len, kb < len, g, t);
    }
  }
  __syncthreads(); // Q read and dS^T written by every warp
  if (!KEYS_AHEAD || !keep) {
    copyRows<D, kThreads>(ks, k + base, rowStride, len, lp);
    if (!keep) copyRows<D, kThreads>(dos, v + base, rowStride, len, lp);
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_all;\n" ::);
    __syncthreads();
  }
  if (KEYS_AHEAD && !keep) {
    // Queries of a sequence longer than the kept tiles: dS = P (dP - delta) from Q K^T and dO V^T,
    // then dQ = scale dS K, as the query kernel's (K over Q, V over dO).
    for (int row0 = warp * 16; row0 < len; row0 += 16 * kFusedGradWarps) {
      const int ra = row0 + g, rb = row0 + g + 8;
      std::uint32_t qf[D / 16][4], df[D / 16][4];
      loadRowFragments<D>(qf, q + base, rowStride, ra, rb, len, t);
      loadRowFragments<D>(df, dout + outBase, outStride, ra, rb, len, t);
      const float la = lses[ra], lb = lses[rb], da = deltas[ra], db = deltas[rb];
      float acc[D / 8][4];
      queryGradient<D>(acc, qf, df, ks, dos, len, lp, la, lb, da, db, scaleLog2e);
      storeGradient<D>(acc, scale, dq + base, rowStride, ra, rb, len, t);
      if (partial) addColumnSums<D>(sums + warp * 3 * D, acc, scale, ra < len, rb < len, g, t);
    }
  } else {
    // Queries: dQ = scale dS K, dS's 16 x 16 blocks read transposed from dS^T (the query kernel's
    // A fragments: queries g, g + 8 against keys 2t, 2t + 1, then + 8).
    for (int row0 = warp * 16; row0 < len; row0 += 16 * kFusedGradWarps) {
      float acc[D / 8][4];
#pragma unroll
      for (int j = 0; j < D / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
      for (int n0 = 0; n0 < lp; n0 += 16) {
        std::uint32_t af[4];
        ldmatrix4t(af, dst + (n0 + (mIdx >> 1) * 8 + mRow) * sPitch + row0 + (mIdx & 1) * 8);
        addTimesKeys<D>(acc, af, ks, n0);
      }
      storeGradient<D>(acc, scale, dq + base, rowStride, row0 + g, row0 + g + 8, len, t);
      if (partial) addColumnSums<D>(sums + warp * 3 * D, acc, scale, row0 + g < len, row0 + g + 8 < len, g, t);
    }
  }
  if (!partial) return;
  __syncthreads();
  for (int i = static_cast<int>(threadIdx.x); i < 3 * D; i += kThreads) {
    const int part = i / D, c = i % D;
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < kFusedGradWarps; ++w) total += sums[(w * 3 + part) * D + c];
    partial[part * heads * D + c] = total;
  }
}

// Above 48 KB of shared memory a kernel must opt in (per kernel and device): always to its largest
// size, so that threads sharing a device never lower it under each other's launch.
bool sharedOptIn(const void* kernel, long long bytes, long long largest) {
  if (bytes <= 48 * 1024) return true;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(largest)) ==
      cudaSuccess)
    return true;
  cudaGetLastError(); // declined: the caller's fallback must not find this error pending
  return false;
}

constexpr float kLog2e = 1.4426950408889634f;

struct Launch {
  const void *q, *k, *v;
  long long rowStride;
  const int* cuSeqlens;
  int sequences, heads;
  void* out;
  long long outStride;
  int padded;
  float scale;
  cudaStream_t stream;
  float* lse = nullptr; // training's forward: each row's log2-sum-exp, [heads][lseStride]
  long long lseStride = 0;
  RowGather gather; // embedding's first layer: rows from the per-cell table
  unsigned blocks() const { return static_cast<unsigned>(static_cast<long long>(sequences) * heads); }
};

// Both kernels take the same arguments; `bytes` of shared memory, `largest` its most at any length.
using AttentionKernel = void (*)(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, long long,
                                 const int*, __nv_bfloat16*, long long, int, int, float, float*, long long, RowGather);
bool launchKernel(AttentionKernel kernel, int threads, long long bytes, long long largest, const Launch& l) {
  if (!sharedOptIn(reinterpret_cast<const void*>(kernel), bytes, largest)) return false;
  kernel<<<l.blocks(), threads, static_cast<size_t>(bytes), l.stream>>>(
      static_cast<const __nv_bfloat16*>(l.q), static_cast<const __nv_bfloat16*>(l.k),
      static_cast<const __nv_bfloat16*>(l.v), l.rowStride, l.cuSeqlens, static_cast<__nv_bfloat16*>(l.out), l.outStride,
      l.padded, l.heads, l.scale * kLog2e, l.lse, l.lseStride, l.gather);
  return cudaGetLastError() == cudaSuccess;
}

template <int D> bool launchSteps16(const Launch& l) {
  return launchKernel(shortAttentionKernel<D>, 32 * kWarps, sharedBytes(l.padded, D), sharedBytes(kMaxPadded, D), l);
}

template <int D, int WARPS, int KEYS, int MIN_BLOCKS = 1, bool LSE = false, bool GATHER = false>
bool launchTiled(const Launch& l) {
  return launchKernel(tiledAttentionKernel<D, WARPS, KEYS, MIN_BLOCKS, LSE, GATHER>, 32 * WARPS,
                      tiledSharedBytes(l.padded, D), tiledSharedBytes(kMaxPadded, D), l);
}

template <int D> bool launchVariant(const Launch& l, int variant) {
  switch (variant) {
  case 0: return launchTiled<D, 4, 16>(l);
  case 1: return launchSteps16<D>(l);
  case 2: return launchTiled<D, 2, 32>(l);
  case 3: return launchTiled<D, 4, 32>(l);
  case 4: return launchTiled<D, 8, 32, 3>(l);
  case 5: return launchTiled<D, 4, 64>(l);
  case 6: return launchTiled<D, 4, 16, 6>(l);
  default: return false;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// Training's three kernels opted in to their largest shared memory (before a capture's first
// launch: an opt-in that fails inside the backward would leave no path to fall back to).
template <int D> bool trainingKernelsReady(long long padded) {
  return sharedOptIn(reinterpret_cast<const void*>(tiledAttentionKernel<D, 4, 16, 1, true>),
                     tiledSharedBytes(padded, D), tiledSharedBytes(kMaxPadded, D)) &&
         sharedOptIn(reinterpret_cast<const void*>(attentionGradQueryKernel<D>), tiledSharedBytes(padded, D),
                     tiledSharedBytes(kMaxPadded, D)) &&
         sharedOptIn(reinterpret_cast<const void*>(attentionGradKeyValueKernel<D>), gradKeySharedBytes(padded, D),
                     gradKeySharedBytes(kMaxPadded, D));
}

// The one-kernel backward's opt-in to its shared memory at `padded` (its largest, at training's
// bound, is more than a head size of 64 may have: then the two kernels run).
template <int D> bool fusedBackwardReady(long long padded) {
  int device = 0, optIn = 0; // the current device's (a process may hold several kinds)
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const long long most = std::min(static_cast<long long>(optIn), fusedGradSharedBytes(kMaxPadded, D));
  const long long bytes = fusedGradSharedBytes(static_cast<int>(padded), D);
  return bytes <= most && sharedOptIn(reinterpret_cast<const void*>(attentionGradKernel<D, false>), bytes, most);
}

// The rows the kernel with K ahead keeps dS^T and K for at `padded` (fusedGradSharedBytes): the most,
// a multiple of 16 up to `padded`, with which a multiprocessor holds two of its blocks (the H200 at
// heads of 48: 144 of 176 and of 192, 112 of 272; all of 144); 0 where that is under 96 (under
// `padded` where it is shorter: most neighbourhoods would take the longer path) or the kernel
// cannot opt in: then the kernel before runs.
template <int D> int fusedBackwardKept(long long padded) {
  int device = 0, optIn = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  const auto* kernel = reinterpret_cast<const void*>(attentionGradKernel<D, true>);
  if (!sharedOptIn(kernel, 64 * 1024, optIn)) return 0; // opted in to the most (64 KB: past 48, so it asks)
  for (int kept = static_cast<int>(padded); kept >= std::min(96, static_cast<int>(padded)); kept -= 16) {
    const long long bytes = fusedGradSharedBytes(static_cast<int>(padded), D, true, kept);
    if (bytes > optIn) continue;
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, attentionGradKernel<D, true>, 32 * kFusedGradWarps,
                                                      static_cast<size_t>(bytes)) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    if (blocks >= 2) return kept;
  }
  return 0;
}

// The backward's extras (shortAttentionBackwardBf16): the bias partial sums and the zero slots.
struct BackwardSums {
  float* biasPartial = nullptr;
  const long long* zeroRows = nullptr;
  int zeroSlots = 0;
  bool* summed = nullptr;
};

// kept: fusedBackwardKept's (K ahead) or padded (the kernel before).
template <int D, bool KEYS_AHEAD>
bool launchFusedBackward(const Launch& l, const void* o, const void* dout, void* dq, void* dk, void* dv,
                         const BackwardSums& sums, int kept) {
  attentionGradKernel<D, KEYS_AHEAD>
      <<<l.blocks(), 32 * kFusedGradWarps, static_cast<size_t>(fusedGradSharedBytes(l.padded, D, KEYS_AHEAD, kept)),
         l.stream>>>(static_cast<const __nv_bfloat16*>(l.q), static_cast<const __nv_bfloat16*>(l.k),
                     static_cast<const __nv_bfloat16*>(l.v), static_cast<const __nv_bfloat16*>(o),
                     static_cast<const __nv_bfloat16*>(dout), l.rowStride, l.outStride, l.cuSeqlens, l.lse, l.lseStride,
                     static_cast<__nv_bfloat16*>(dq), static_cast<__nv_bfloat16*>(dk), static_cast<__nv_bfloat16*>(dv),
                     l.padded, l.heads, l.scale * kLog2e, l.scale, sums.biasPartial, sums.zeroRows, sums.zeroSlots,
                     kept, gLateLoads.load(std::memory_order_relaxed));
  if (cudaGetLastError() != cudaSuccess) return false;
  if (sums.summed) *sums.summed = sums.biasPartial != nullptr;
  return true;
}

template <int D>
bool launchBackward(const Launch& l, const void* o, const void* dout, float* delta, void* dq, void* dk, void* dv,
                    bool twoKernels, bool keysAhead, const BackwardSums& sums) {
  if (sums.summed) *sums.summed = false;
  if (!trainingKernelsReady<D>(l.padded)) return false;
  if (!twoKernels && keysAhead)
    if (const int kept = fusedBackwardKept<D>(l.padded); kept > 0)
      return launchFusedBackward<D, true>(l, o, dout, dq, dk, dv, sums, kept);
  if (!twoKernels && fusedBackwardReady<D>(l.padded))
    return launchFusedBackward<D, false>(l, o, dout, dq, dk, dv, sums, l.padded);
  const auto* Q = static_cast<const __nv_bfloat16*>(l.q);
  const auto* K = static_cast<const __nv_bfloat16*>(l.k);
  const auto* V = static_cast<const __nv_bfloat16*>(l.v);
  const auto* dO = static_cast<const __nv_bfloat16*>(dout);
  const float scaleLog2e = l.scale * kLog2e;
  attentionGradQueryKernel<D>
      <<<l.blocks(), 32 * kGradWarps, static_cast<size_t>(tiledSharedBytes(l.padded, D)), l.stream>>>(
          Q, K, V, static_cast<const __nv_bfloat16*>(o), dO, l.rowStride, l.outStride, l.cuSeqlens, l.lse, delta,
          l.lseStride, static_cast<__nv_bfloat16*>(dq), l.padded, l.heads, scaleLog2e, l.scale);
  if (cudaGetLastError() != cudaSuccess) return false;
  attentionGradKeyValueKernel<D>
      <<<l.blocks(), 32 * kGradWarps, static_cast<size_t>(gradKeySharedBytes(l.padded, D)), l.stream>>>(
          Q, K, V, dO, l.rowStride, l.outStride, l.cuSeqlens, l.lse, delta, l.lseStride,
          static_cast<__nv_bfloat16*>(dk), static_cast<__nv_bfloat16*>(dv), l.padded, l.heads, scaleLog2e, l.scale);
  return cudaGetLastError() == cudaSuccess;
}

// The arguments every training call needs: rows 16-byte aligned, a head size and bound it has
// kernels for, a grid CUDA can launch.
bool trainingArgumentsFit(const void* q, const void* k, const void* v, std::int64_t rowStride, std::int64_t sequences,
                          int heads, int headDim, std::int64_t maxLength, const float* lse, std::int64_t lseStride) {
  return shortAttentionFits(headDim, maxLength) && sequences > 0 && heads > 0 && heads <= 65535 &&
         sequences * heads <= 0x7fffffffLL && rowStride % 8 == 0 && aligned16(q) && aligned16(k) && aligned16(v) &&
         lse != nullptr && lseStride > 0;
}

} // namespace

bool shortAttentionFits(int headDim, std::int64_t maxLength) {
  return (headDim == 32 || headDim == 48 || headDim == 64) && maxLength >= 1 && maxLength <= kMaxPadded;
}

const char* shortAttentionVariantName(int variant) {
  switch (variant) {
  case 0: return "tiled: 4 warps, 16 keys a step (default)";
  case 1: return "16 keys a step, values transposed (before)";
  case 2: return "tiled: 2 warps, 32 keys a step";
  case 3: return "tiled: 4 warps, 32 keys a step";
  case 4: return "tiled: 8 warps, 32 keys a step, at most 80 registers";
  case 5: return "tiled: 4 warps, 64 keys a step";
  case 6: return "tiled: 4 warps, 16 keys a step, at most 80 registers";
  default: return nullptr;
  }
}

namespace {
// The inference kernels' arguments checked (16-byte aligned rows, a head size and bound with
// kernels, a grid CUDA can launch) and packed; nothing where they do not fit.
std::optional<Launch> inferenceLaunch(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                                      std::int64_t rowStride, const int* cuSeqlens, std::int64_t sequences, int heads,
                                      int headDim, std::int64_t maxLength, float scale, std::uint16_t* out,
                                      std::int64_t outStride, void* stream) {
  if (!shortAttentionFits(headDim, maxLength) || sequences <= 0 || heads <= 0 || heads > 65535 ||
      sequences * heads > 0x7fffffffLL || rowStride % 8 != 0 || outStride % 2 != 0 || !aligned16(q) || !aligned16(k) ||
      !aligned16(v) || reinterpret_cast<std::uintptr_t>(out) % 4 != 0)
    return std::nullopt;
  return Launch{q,         k,
                v,         rowStride,
                cuSeqlens, static_cast<int>(sequences),
                heads,     out,
                outStride, static_cast<int>((maxLength + 15) / 16 * 16),
                scale,     static_cast<cudaStream_t>(stream)};
}
} // namespace

bool shortAttentionBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t rowStride,
                        const int* cuSeqlens, std::int64_t sequences, int heads, int headDim, std::int64_t maxLength,
                        float scale, std::uint16_t* out, std::int64_t outStride, void* stream, int variant,
                        std::int64_t zeroSlots) {
  // Virtual zero slots: the tiled kernels only (variant 1 is the kernel before them).
  auto l =
      shortAttentionVariantName(variant) && zeroSlots >= 0 && zeroSlots <= sequences && (zeroSlots == 0 || variant != 1)
          ? inferenceLaunch(q, k, v, rowStride, cuSeqlens, sequences, heads, headDim, maxLength, scale, out, outStride,
                            stream)
          : std::nullopt;
  if (!l) return false;
  l->gather.zeroSlots = static_cast<int>(zeroSlots);
  switch (headDim) {
  case 32: return launchVariant<32>(*l, variant);
  case 48: return launchVariant<48>(*l, variant);
  default: return launchVariant<64>(*l, variant);
  }
}

bool shortAttentionGatherBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                              std::int64_t rowStride, const int* index, const std::uint16_t* cls, const int* cuSeqlens,
                              std::int64_t sequences, int heads, int headDim, std::int64_t maxLength, float scale,
                              std::uint16_t* out, std::int64_t outStride, void* stream, std::int64_t zeroSlots) {
  auto l = index != nullptr && aligned16(cls) && zeroSlots >= 0 && zeroSlots <= sequences
               ? inferenceLaunch(q, k, v, rowStride, cuSeqlens, sequences, heads, headDim, maxLength, scale, out,
                                 outStride, stream)
               : std::nullopt;
  if (!l) return false;
  l->gather.index = index;
  l->gather.cls = reinterpret_cast<const __nv_bfloat16*>(cls);
  l->gather.zeroSlots = static_cast<int>(zeroSlots);
  switch (headDim) { // the default's shape (variant 0)
  case 32: return launchTiled<32, 4, 16, 1, false, true>(*l);
  case 48: return launchTiled<48, 4, 16, 1, false, true>(*l);
  default: return launchTiled<64, 4, 16, 1, false, true>(*l);
  }
}

bool shortAttentionTrainingReady(int headDim, std::int64_t maxLength) {
  if (!shortAttentionFits(headDim, maxLength)) return false;
  const long long padded = (maxLength + 15) / 16 * 16;
  // The one-kernel backward opts in here too (before any capture); its answer does not decide:
  // where its shared memory does not fit, the two kernels run.
  auto ready = [padded](auto d) {
    constexpr int D = decltype(d)::value;
    if (!trainingKernelsReady<D>(padded)) return false;
    (void)fusedBackwardReady<D>(padded);
    (void)fusedBackwardKept<D>(padded);
    return true;
  };
  switch (headDim) {
  case 32: return ready(std::integral_constant<int, 32>());
  case 48: return ready(std::integral_constant<int, 48>());
  default: return ready(std::integral_constant<int, 64>());
  }
}

void setAttentionBackwardLoadsLate(bool late) { gLateLoads.store(late, std::memory_order_relaxed); }
bool attentionBackwardLoadsLate() { return gLateLoads.load(std::memory_order_relaxed); }

int shortAttentionBackwardKept(int headDim, std::int64_t maxLength) {
  if (!shortAttentionFits(headDim, maxLength)) return 0;
  const long long padded = (maxLength + 15) / 16 * 16;
  switch (headDim) {
  case 32: return fusedBackwardKept<32>(padded);
  case 48: return fusedBackwardKept<48>(padded);
  default: return fusedBackwardKept<64>(padded);
  }
}

bool shortAttentionForwardBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                               std::int64_t rowStride, const int* cuSeqlens, std::int64_t sequences, int heads,
                               int headDim, std::int64_t maxLength, float scale, std::uint16_t* out,
                               std::int64_t outStride, float* lse, std::int64_t lseStride, void* stream,
                               std::int64_t zeroSlots) {
  if (!trainingArgumentsFit(q, k, v, rowStride, sequences, heads, headDim, maxLength, lse, lseStride) ||
      !aligned16(out) || outStride % 8 != 0 || zeroSlots < 0 || zeroSlots > sequences)
    return false;
  Launch l{q,         k,
           v,         rowStride,
           cuSeqlens, static_cast<int>(sequences),
           heads,     out,
           outStride, static_cast<int>((maxLength + 15) / 16 * 16),
           scale,     static_cast<cudaStream_t>(stream)};
  l.lse = lse;
  l.lseStride = lseStride;
  l.gather.zeroSlots = static_cast<int>(zeroSlots);
  switch (headDim) {
  case 32: return launchTiled<32, 4, 16, 1, true>(l);
  case 48: return launchTiled<48, 4, 16, 1, true>(l);
  default: return launchTiled<64, 4, 16, 1, true>(l);
  }
}

bool shortAttentionBackwardBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                                const std::uint16_t* out, const std::uint16_t* dout, std::int64_t rowStride,
                                std::int64_t outStride, const int* cuSeqlens, std::int64_t sequences, int heads,
                                int headDim, std::int64_t maxLength, float scale, const float* lse, float* delta,
                                std::int64_t lseStride, std::uint16_t* dq, std::uint16_t* dk, std::uint16_t* dv,
                                void* stream, bool twoKernels, float* biasPartial, const std::int64_t* zeroRows,
                                std::int64_t zeroSlots, bool* biasSummed, bool keysAhead) {
  if (!trainingArgumentsFit(q, k, v, rowStride, sequences, heads, headDim, maxLength, lse, lseStride) ||
      delta == nullptr || outStride % 8 != 0 || !aligned16(out) || !aligned16(dout) || !aligned16(dq) ||
      !aligned16(dk) || !aligned16(dv))
    return false;
  Launch l{q,         k,
           v,         rowStride,
           cuSeqlens, static_cast<int>(sequences),
           heads,     nullptr,
           outStride, static_cast<int>((maxLength + 15) / 16 * 16),
           scale,     static_cast<cudaStream_t>(stream)};
  l.lse = const_cast<float*>(lse); // read only here
  l.lseStride = lseStride;
  if (biasSummed) *biasSummed = false;
  // The sums' and slots' arguments: a partial buffer only with q, k, v the thirds of one [R, 3E] row
  // (rowStride 3 E), zero slots only with their rows.
  if ((biasPartial && rowStride != 3LL * heads * headDim) || zeroSlots < 0 || zeroSlots > sequences ||
      (zeroSlots > 0 && !zeroRows))
    return false;
  const BackwardSums sums{biasPartial, reinterpret_cast<const long long*>(zeroRows), static_cast<int>(zeroSlots),
                          biasSummed};
  switch (headDim) {
  case 32: return launchBackward<32>(l, out, dout, delta, dq, dk, dv, twoKernels, keysAhead, sums);
  case 48: return launchBackward<48>(l, out, dout, delta, dq, dk, dv, twoKernels, keysAhead, sums);
  default: return launchBackward<64>(l, out, dout, delta, dq, dk, dv, twoKernels, keysAhead, sums);
  }
}

} // namespace atlascope::inference::cuda
