#pragma once
// Fused CUDA kernels (FusedKernels.cu), built only when CMake finds the CUDA toolkit
// (ATLASCOPE_WITH_CUDA_KERNELS). Plain pointers and a cudaStream_t passed as void*, so that this
// file and the .cu need no LibTorch header; CellTransformer (embedding, validation and the
// training step's autograd functions) and Trainer (Adam) call them on the tensors of their GPU
// paths and keep the ATen operations as the CPU path and the fallback.
#include <cstdint>

namespace atlascope::inference::cuda {

// out = LayerNorm(x + y) * weight + bias over rows of `cols` bf16 values (raw bits), the sum
// rounded to bf16 first and the statistics in float32, as ATen's add followed by layer_norm.
// Returns false (nothing launched) for a width it has no kernel for (cols 64, 128, 256, 384, 512,
// 768 or 1024) or pointers not 4-byte aligned; the caller then runs the ATen operations.
// `normalized` (null: none): also each row's (x + y - mean) / std times `normalizedScale` in e4m3
// (one byte a value, rounded to nearest even, saturated to +-448; 2-byte aligned): the FP8 first
// feed-forward layer's input, before LayerNorm's affine (folded into that layer's weights).
// Measured and removed (git: 63ea98f, GemmLayerNorm.cu): this kernel folded into the epilogue of
// the product before it (the attention's output projection, the second feed-forward layer), a
// CUTLASS GEMM whose 128 x 384 tiles hold whole rows (W transposed, so that W's tile is a TMA box
// of 64 columns and not 384 rows), the same bits as product + this kernel (its summation order
// replicated from the accumulators' layout; parity's difference exactly 0 on the H200). Slower
// end to end on 4M cells: 185,221 cells/s on both products and 188,193-189,648 on the
// feed-forward's alone against 191,956-193,486 for the two kernels in the same call, and 153,338
// with 64-row ping-pong tiles (whose kernel spills): the epilogue's scattered loads of the
// residual wait one after another, with the 192 accumulators a thread leaving few registers for
// loads in flight (docs/bench/gpu-embed-product-norm-2026-12-03.jsonl, calls 3 and 4).
bool addLayerNormBf16(const std::uint16_t* x, const std::uint16_t* y, const std::uint16_t* weight,
                      const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                      void* stream, std::uint8_t* normalized = nullptr, float normalizedScale = 1.f);

// addLayerNormBf16 with x's rows gathered (embedding's first encoder layer, whose residual is the
// token table's rows): row r of x is row index[r] of `table` (tableStride values apart, even),
// index[r] = -1 the row `cls`, -2 zeros (assembleTokensBf16's index: the tokens it would have
// assembled). The same widths and values as addLayerNormBf16 on the assembled rows; false:
// nothing launched.
bool gatherAddLayerNormBf16(const std::uint16_t* table, std::int64_t tableStride, const int* index,
                            const std::uint16_t* cls, const std::uint16_t* y, const std::uint16_t* weight,
                            const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                            void* stream, std::uint8_t* normalized = nullptr, float normalizedScale = 1.f);

// out = LayerNorm(z + rowBias) * weight + bias, rowBias one row of `cols` values added to each
// row of z, the sum in float32 (not rounded): embedding's second feed-forward product writes
// bf16(residual + h W^T) (CellTransformer::setResidualInProduct), and its bias joins here. Widths
// and alignment as addLayerNormBf16; false: nothing launched.
bool biasLayerNormBf16(const std::uint16_t* z, const std::uint16_t* rowBias, const std::uint16_t* weight,
                       const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                       void* stream);

// LayerNorm's weight and bias gradients (training): dgamma[j] = sum_i dy[i,j] (x[i,j] - mean[i])
// rstd[i], dbeta[j] = sum_i dy[i,j], over rows of bf16 dy and x with float32 mean and rstd (as
// ATen's native_layer_norm returns them), summed in float32 in two deterministic stages (row slices
// of gammaBetaSlices(rows, cols) blocks into `partial`, 2 * slices * cols floats, then over the
// slices), written as bf16. ATen's own kernel runs on cols / 32 blocks below 64k rows (12 of the
// H200's 132 multiprocessors for E 384): a 2-GPU training step spent 12% of its time there.
int gammaBetaSlices(std::int64_t rows, int cols);
// Training's LayerNorm forward over rows of `cols` bf16 values (the widths of addLayerNormBf16 and 192),
// also writing each row's float32 mean and 1/std (as ATen's native_layer_norm), and its input
// gradient from them. ATen's kernels run a block per row, at a fraction of the memory bandwidth for
// E 384 (LayerNorm took 3.5 ms of a 31 ms training step). False: nothing launched. With `y`
// (4-byte aligned, as every pointer): LayerNorm of x + y, the sum rounded to bf16 as ATen's add
// writes it, and also written to `sum` (the input the backward then reads), where ATen's add wrote
// it and LayerNorm read it back. With `gelu` (not with `y`): GELU(LayerNorm(x)), the LayerNorm's
// output rounded to bf16 and the erf GELU of that (ATen's gelu, which read it back), written to
// `out`; the LayerNorm's output is not kept (layerNormBackwardBf16's `geluBias` recomputes it).
// With `index` (int64 [rows], 8-byte aligned; with `y`, not with `sum` or `gelu`; cols a multiple
// of 128): LayerNorm of the row [x[index[r]], y[r]], x a table of `tableRows` rows of cols / 2
// values and y [rows, cols / 2], the concatenation not written (proj_norm's input: the type
// embedding's row beside the expression MLP's output, which ATen's cat wrote and LayerNorm read
// back); an index outside the table reads zeros, as gatherRowsOrZerosBf16.
bool layerNormForwardBf16(const std::uint16_t* x, const std::uint16_t* weight, const std::uint16_t* bias,
                          std::uint16_t* out, float* mean, float* rstd, std::int64_t rows, int cols, float eps,
                          void* stream, const std::uint16_t* y = nullptr, std::uint16_t* sum = nullptr,
                          bool gelu = false, const std::int64_t* index = nullptr, std::int64_t tableRows = 0);
// LayerNorm's whole backward in one pass over dy and x: dx, and dgamma and dbeta (as
// layerNormGammaBetaBackwardBf16's) summed per block of rows into `partial` (2 *
// layerNormBackwardBlocks(rows, cols, geluBias != nullptr) * cols floats, 8-byte aligned; as many
// blocks as the current device holds of the kernel that runs), then over the blocks in a fixed
// order. The path before it (layerNormBackwardInputBf16 and layerNormGammaBetaBackwardBf16) read
// dy and x twice.
int layerNormBackwardBlocks(std::int64_t rows, int cols, bool gelu = false);
// With `dy2`, the gradient is dy + dy2 (rounded to bf16, as autograd's add): LayerNorm's output
// used twice (the layer's branch and the residual), the two gradients summed as they are read.
// dyStride: elements between dy's rows (and dy2's; even, at least cols; 0: cols), so that a column
// slice of a wider gradient is read in place (the token MLP's half of proj_norm's: its copy took
// 0.05 ms of a training step at the released size). With `dsum` (bf16 [cols]), also dx's column
// sums as written (the bias gradient of a layer whose output was added before the LayerNorm):
// `partial` then holds 3 * layerNormBackwardBlocks(rows, cols) * cols floats. With `geluBias` (the
// LayerNorm's bias; not with dy2 or dsum): dy is the gradient of layerNormForwardBf16's GELU output,
// GELU's backward (as ATen's gelu_backward, rounded to bf16) applied as it is read, on the
// LayerNorm's output recomputed from x, mean, rstd, weight and bias as the forward computed it.
// With `index` and `xRight` (not with dy2, dsum or geluBias): the input as layerNormForwardBf16's
// `index` reads it, [x[index[r]], xRight[r]] (x the table of `tableRows` rows).
bool layerNormBackwardBf16(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* weight,
                           const float* mean, const float* rstd, std::uint16_t* dx, float* partial,
                           std::uint16_t* dgamma, std::uint16_t* dbeta, std::int64_t rows, int cols, void* stream,
                           const std::uint16_t* dy2 = nullptr, std::int64_t dyStride = 0, std::uint16_t* dsum = nullptr,
                           const std::uint16_t* geluBias = nullptr, const std::uint16_t* xRight = nullptr,
                           const std::int64_t* index = nullptr, std::int64_t tableRows = 0);
bool layerNormBackwardInputBf16(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* weight,
                                const float* mean, const float* rstd, std::uint16_t* dx, std::int64_t rows, int cols,
                                void* stream);
bool layerNormGammaBetaBackwardBf16(const std::uint16_t* dy, const std::uint16_t* x, const float* mean,
                                    const float* rstd, float* partial, std::uint16_t* dgamma, std::uint16_t* dbeta,
                                    std::int64_t rows, int cols, void* stream);

// A linear layer's bias gradient in training, dbias[j] = sum_i dy[i,j] over rows of bf16 dy,
// summed in float32 in two deterministic stages (row slices into `partial`, biasGradSlices(rows,
// cols) * cols floats, then over the slices), written as bf16. ATen's column sum of a tall bf16
// matrix took 2.7 ms of a 31 ms training step (68 reductions). Needs an even `cols` and 4-byte
// aligned pointers; false (nothing launched) otherwise.
int biasGradSlices(std::int64_t rows, int cols);
bool biasGradBf16(const std::uint16_t* dy, float* partial, std::uint16_t* dbias, std::int64_t rows, int cols,
                  void* stream);
// The same with the erf GELU's backward in front: dh = dy * GELU'(h) (as ATen's gelu_backward,
// rounded to bf16) and dbias = sum_i dh[i,j], in one pass over dy and h, so that the feed-forward's
// first bias gradient costs no read of dh.
bool geluBackwardBiasGradBf16(const std::uint16_t* dy, const std::uint16_t* h, std::uint16_t* dh, float* partial,
                              std::uint16_t* dbias, std::int64_t rows, int cols, void* stream);

// torch.optim.Adam's step (L2 weight decay added to the gradient, bias corrections) over float32
// weights, gradients and moments in one kernel, also writing the new weights as bf16 into `low`
// (the compute copies the next step's forward reads; null: none). lrOverC1 = lr / (1 - beta1^t),
// sqrtC2 = sqrt(1 - beta2^t). Ten ATen operations over the flat buffers read and wrote each ~3
// times over, and a cast kernel followed.
bool adamStep(float* param, const float* grad, float* expAvg, float* expAvgSq, std::uint16_t* low, std::int64_t n,
              float lrOverC1, float beta1, float beta2, float eps, float weightDecay, float sqrtC2, void* stream);

// Training's gradients of the bf16 compute copies added into their float32 slices of the flat
// gradient, all parameters in one launch: dst[i][k] += float(src[i][k]). Autograd's accumulation
// added them one kernel a parameter (117 additions of ~3 us at the released size). Any count of
// entries (a launch takes up to kGradientFoldEntries). False: nothing added (a null pointer), or
// a launch failed (the caller cannot know which entries were added).
constexpr int kGradientFoldEntries = 64;
bool foldGradientsBf16(const std::uint16_t* const* src, float* const* dst, const std::int64_t* counts, int entries,
                       void* stream);

// Attention without gradients over packed sequences (embedding, validation; ShortAttention.cu):
// out[i, h*d:(h+1)*d] = softmax(scale q_i k_j^T over j of i's sequence) v for each head h, with q,
// k and v rows of bf16 at `rowStride` elements apart (head h at column h * d; a fused [R, 3E]
// projection or three [R, E] ones), sequence s the rows cuSeqlens[s] .. cuSeqlens[s + 1] (int32,
// on the device), out rows `outStride` apart. Scores and softmax in float32, probabilities
// rounded to bf16 before the product with v (as flash attention). For head sizes 32, 48 and 64
// and sequences of at most 272 rows (shortAttentionFits); false (nothing launched) otherwise or
// for pointers not 16-byte aligned. maxLength must bound every sequence (rows past it are not
// written); sequences may be empty (packBatch's fillers). Runs on the current device.
// `variant` picks the kernel (shortAttentionVariantName: null past the last): 0 the default (keys
// and values row-major in shared memory, 4 warps, 16 keys a step), 1 the kernel before it (16 keys a
// step, values transposed; `--attention-kernel 1`), 2.. other shapes of the default, for
// `bench attention`. Every variant computes the same function.
// zeroSlots: the first zeroSlots sequences end with add_zero_attn's slot without storing it
// (Batch::virtualZeroSlot): one zero key and value after their stored rows, no output row for it;
// maxLength counts it. Not with variant 1 (false).
// The longest sequence the short-attention kernels take (shortAttentionFits; keys in shared
// memory): training's bound for neighbourhoods of up to 256 observed cells with the class token and
// zero slot is 258, rounded up to 16.
constexpr int kShortAttentionLongest = 272;
bool shortAttentionFits(int headDim, std::int64_t maxLength);
const char* shortAttentionVariantName(int variant);
bool shortAttentionBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t rowStride,
                        const int* cuSeqlens, std::int64_t sequences, int heads, int headDim, std::int64_t maxLength,
                        float scale, std::uint16_t* out, std::int64_t outStride, void* stream, int variant = 0,
                        std::int64_t zeroSlots = 0);

// shortAttentionBf16's default kernel with the rows gathered (embedding's first layer): position
// p's q, k and v are row index[p] of q, k and v (`rowStride` apart: the per-cell table of
// CellTransformer::cellTable), index[p] = -1 the class token's row `cls` (3 heads * headDim: q,
// then k, then v), -2 add_zero_attn's slot (zero key and value); out is written per position as
// shortAttentionBf16's. index: int32 per position, on the device (assembleTokensBf16 writes it).
// zeroSlots as shortAttentionBf16's (then no position is -2).
bool shortAttentionGatherBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                              std::int64_t rowStride, const int* index, const std::uint16_t* cls, const int* cuSeqlens,
                              std::int64_t sequences, int heads, int headDim, std::int64_t maxLength, float scale,
                              std::uint16_t* out, std::int64_t outStride, void* stream, std::int64_t zeroSlots = 0);

// Training's attention over packed sequences (ShortAttention.cu), the flash kernels' function
// for short sequences: q, k, v and their gradients [R, heads * headDim] bf16 with rows
// `rowStride` elements apart (3 E where they are the thirds of one [R, 3E] projection and its
// gradient), out and dout `outStride` apart (both multiples of 8, rows 16-byte aligned),
// sequences as shortAttentionBf16's. The forward
// writes out and each row's log2-sum-exp lse[h * lseStride + row] (float32, log2 of the softmax
// denominator of the scaled scores, in base-2 units of scale q.k); the backward reads q, k, v,
// out, dout and lse, writes delta (rowsum(dout o out) per row and head, a float32 [heads,
// lseStride] scratch; the two kernels' only) and dq, dk, dv (every row of every sequence; rows outside all sequences
// untouched). Probabilities and dS rounded to bf16 for their products, float32 elsewhere. The
// backward runs one kernel (each sequence's inputs read once; delta then stays in shared memory)
// where its shared memory fits, else, or with `twoKernels`, the two before it (the same arithmetic).
// The one kernel also, with biasPartial (q, k, v the thirds of one [R, 3E] row: rowStride 3 E),
// writes the column sums of dq|dk|dv per sequence, [sequences, 3 E] float32, for sumSlicesBf16; and
// with zeroSlots > 0, writes dk = dv = 0 at rows zeroRows[s] of the first zeroSlots sequences
// (add_zero_attn's slots; each inside its sequence, as packBatch's: a row outside it is not
// zeroed), left out of the sums. *biasSummed (may be null) says whether it did both
// (false: the two kernels ran; the caller zeroes the slots and sums the bias gradient itself).
// keysAhead: the one kernel with K in a tile of its own, copied at its start, its shared memory
// sized for two blocks a multiprocessor (shortAttentionBackwardKept); false: K copied over Q
// between its phases and dS^T sized for the longest sequence (the kernel before). The same bits.
// shortAttentionTrainingReady opts the kernels in to the shared memory of `maxLength` (call it
// before choosing this path, outside a CUDA graph capture where possible); false: use flash.
bool shortAttentionTrainingReady(int headDim, std::int64_t maxLength);
// The sequences' rows up to which shortAttentionBackwardBf16's one kernel with K ahead keeps dS^T
// at `maxLength` on the current device (longer ones recompute it); 0: the kernel before runs.
int shortAttentionBackwardKept(int headDim, std::int64_t maxLength);
// The one kernel's order of its first loads, process-wide (`--attention-loads-late`, for
// comparisons; the same bits): true, each warp's first K and V fragments after delta's sums and each
// row's log2-sum-exp after its row's sums (the kernel before); false (the default), all issued first.
void setAttentionBackwardLoadsLate(bool late);
bool attentionBackwardLoadsLate();
// The forward's zeroSlots as shortAttentionBf16's (virtual add_zero_attn slots: their zero key counts
// in each row's log2-sum-exp); the backward then needs nothing for them (a zero key adds nothing to
// dq, and no row holds its dk, dv), so its zeroRows are the stored slots only.
bool shortAttentionForwardBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                               std::int64_t rowStride, const int* cuSeqlens, std::int64_t sequences, int heads,
                               int headDim, std::int64_t maxLength, float scale, std::uint16_t* out,
                               std::int64_t outStride, float* lse, std::int64_t lseStride, void* stream,
                               std::int64_t zeroSlots = 0);
bool shortAttentionBackwardBf16(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                                const std::uint16_t* out, const std::uint16_t* dout, std::int64_t rowStride,
                                std::int64_t outStride, const int* cuSeqlens, std::int64_t sequences, int heads,
                                int headDim, std::int64_t maxLength, float scale, const float* lse, float* delta,
                                std::int64_t lseStride, std::uint16_t* dq, std::uint16_t* dk, std::uint16_t* dv,
                                void* stream, bool twoKernels = false, float* biasPartial = nullptr,
                                const std::int64_t* zeroRows = nullptr, std::int64_t zeroSlots = 0,
                                bool* biasSummed = nullptr, bool keysAhead = true);
// out[c] = the sum over s of partial[s * cols + c] (float32, in a fixed order), rounded to bf16.
bool sumSlicesBf16(const float* partial, std::int64_t slices, int cols, std::uint16_t* out, void* stream);
// A type-embedding table's gradient from its rows' (training): out[c, j] = the sum of grad[r, j]
// over the rows r with types[r] == c, in float32, rounded to bf16 ([classes, cols], contiguous).
// grad is bf16 [rows, cols] with rows `ld` values apart (a slice of a wider gradient reads in place).
// Each block adds its rows into shared memory per type (64 columns of every type's row: the
// order of those float additions varies from run to run, as the atomics of ATen's index_add did),
// then writes them to `partial` (typeRowSumsPartialFloats floats), which the column sums' second
// stage (sumSlicesBf16's) adds up in a fixed order. ATen's float32 index_add (atomics on classes x cols addresses from
// ~100k rows) and the cast of the gradient it needs took 0.23 ms of a training step at the released size on the H200.
// Needs an even `cols` and `ld`, a 4-byte aligned grad, types in [0, classes) (others are skipped)
// and classes * 256 bytes of shared memory; false (nothing launched) otherwise.
std::int64_t typeRowSumsPartialFloats(std::int64_t rows, int cols, int classes);
bool typeRowSumsBf16(const std::uint16_t* grad, std::int64_t ld, const std::int64_t* types, std::int64_t rows, int cols,
                     int classes, float* partial, std::uint16_t* out, void* stream);
// out[s] = src[from[s]] for each of `slots` rows of `cols` bf16 values, zeros where from[s] < 0:
// the packed rows put into a padded layout in one pass over it, where zero-filling it and
// index_copy into it took two (0.16 ms of a training step's attention pool at the released
// size). count >= 0: src has count rows, an index past them gives zeros (count < 0: every index
// from 0 up is src's). With `extra`, rows of two tables as if concatenated: from[s] < count src's
// row, count <= from[s] < count + extraRows extra's row from[s] - count, zeros past both
// (training's packed tokens: the cells' rows, the class tokens' and the zero slots', put in
// sequence order without ATen's cat and gather; `extra` needs count >= 0). cols a multiple of 8,
// 16-byte aligned pointers; false (nothing launched) otherwise.
bool gatherRowsOrZerosBf16(const std::uint16_t* src, const std::int64_t* from, std::int64_t slots, int cols,
                           std::uint16_t* out, void* stream, std::int64_t count = -1,
                           const std::uint16_t* extra = nullptr, std::int64_t extraRows = 0);
// out[s] = a[from[s]] + b[from[s]] for a and b of `count` rows (bf16 rows added in float32 and
// rounded once, as ATen's add), zeros where from[s] is outside [0, count): the two gradients of
// training's packed tokens (the first layer's branch and its residual) summed and put back in
// packing order in one pass, where autograd's add and the inverse permutation's gather took two.
// cols a multiple of 8, 16-byte aligned pointers; false (nothing launched) otherwise.
bool gatherSumRowsBf16(const std::uint16_t* a, const std::uint16_t* b, const std::int64_t* from, std::int64_t slots,
                       int cols, std::uint16_t* out, void* stream, std::int64_t count);

// out = GELU(x W^T + bias) (erf GELU) over bf16 x [M, K] and W [N, K] (row-major, PyTorch's
// Linear), out [M, N], by one CUTLASS GEMM whose epilogue adds the bias in float32, rounds to
// bf16 and applies GELU in float32, as cuBLASLt's bias epilogue followed by ATen's GELU compute it
// (GemmGelu.cu, sm_90a; built only with ATLASCOPE_CUTLASS_DIR: gemmBiasGeluBuilt()).
// GELU by geluExp2 (GeluExp2.h: the same bf16 as erff's for every input from -6 up), or by erff
// itself when `erff` (the epilogue before it, for comparisons). The epilogue adds the bias to the
// accumulator and rounds the sums to bf16 two at a time; `linComb`: by CUTLASS's linear-combination
// epilogue, one value at a time (the kernel before, `--lincomb-gelu`: the same bits, one more
// instruction a value and half a conversion).
// `workspace`: gemmBiasGeluWorkspace(M, N, K) bytes of device memory (none when 0). False (nothing
// launched): not built, K or N not a multiple of 8, pointers not 16-byte aligned.
bool gemmBiasGeluBuilt();
std::int64_t gemmBiasGeluWorkspace(std::int64_t M, int N, int K);
// gemmBiasBf16: the same kernel without GELU, x W^T + b (what the GELU costs, for `bench gemm-gelu`).
bool gemmBiasGeluBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                      std::int64_t M, int N, int K, void* workspace, void* stream, bool erff = false,
                      bool linComb = false);
bool gemmBiasBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                  std::int64_t M, int N, int K, void* workspace, void* stream);
// The FP8 first feed-forward layer (CellTransformer::setFp8FeedForward): out = GELU(alpha[n] (x W^T)
// + bias[n]) with x [M, K] and W [N, K] in e4m3 (one byte each), alpha float32 [N] (16-byte
// aligned, N a multiple of 4), bias and out bf16; GELU by its tanh form, geluTanh (GeluExp2.h) on the unrounded
// pre-activation; `exp2`: the bf16-rounded pre-activation through geluExp2, as gemmBiasGeluBf16 (for comparisons).
// CUTLASS's FP8 main loop with fast accumulation. K a multiple of 16.
bool gemmBiasGeluE4m3(const std::uint8_t* x, const std::uint8_t* w, const float* alpha, const std::uint16_t* bias,
                      std::uint16_t* out, std::int64_t M, int N, int K, void* workspace, void* stream,
                      bool exp2 = false);
// Training's feed-forward (GemmGeluTraining.cu, built with CUTLASS as the kernels above;
// CellTransformer's TrainFeedForward). gemmBiasGeluAuxBf16: out = GELU(x W^T + bias) as
// gemmBiasGeluBf16, and also pre = x W^T + bias (bf16 [M, N]), the GELU's input its backward reads.
// gemmGeluGradBf16: the backward through the second layer's input and the GELU, dh = GELU'(pre) o
// (dy W2) with dy [rows, width] and W2 [width, hidden] (the second layer's weight, row-major), pre
// and dh [rows, hidden], then dbias = sum over rows of dh (the first layer's bias gradient, bf16
// [hidden], by biasGradBf16; null dbias: not summed, for a caller that sums it elsewhere, e.g.
// weightBiasGradBf16); dy W2 rounded to bf16 before the product with the erf GELU's
// derivative (geluGradExp2, within 2e-6 of it) and dh rounded after, as the unfused path. `workspace`:
// gemmGeluTrainingWorkspace(rows, hidden, width) bytes for either (-1: not built or too many rows;
// never 0).
// False (nothing launched): not built, widths not multiples of 8, pointers not 16-byte aligned.
std::int64_t gemmGeluTrainingWorkspace(std::int64_t rows, int hidden, int width);
// `linComb`: the epilogues by CUTLASS's linear combinations, one rounding at a time (the kernels
// before their own trees; the same bits). `storedGrad` (both calls alike; not with linComb): the
// forward writes GELU'(h) as `pre` instead of h (both from h rounded to bf16 once), and the backward
// reads it there, its epilogue then one product (GemmEpilogues.cuh's stored-gradient epilogues;
// GELU'(h) rounded to bf16 once more than the default's).
bool gemmBiasGeluAuxBf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* bias, std::uint16_t* out,
                         std::uint16_t* pre, std::int64_t M, int N, int K, void* workspace, void* stream,
                         bool linComb = false, bool storedGrad = false);
bool gemmGeluGradBf16(const std::uint16_t* dy, const std::uint16_t* w2, const std::uint16_t* pre, std::uint16_t* dh,
                      std::uint16_t* dbias, std::int64_t rows, int hidden, int width, void* workspace, void* stream,
                      bool linComb = false, bool storedGrad = false);
// A linear layer's weight and bias gradients in one cuBLASLt product (WeightBiasGradient.cpp):
// dw = dy^T x ([n, k] bf16 row-major) and db = the sum over rows of dy (bf16 [n]), with dy [rows, n]
// and x [rows, k] bf16 row-major, by CUBLASLT_EPILOGUE_BGRADB (the column sums taken as the product
// reads dy; float32 accumulation, each rounded to bf16 once). `workspace`: weightBiasGradWorkspace()
// bytes (16-byte aligned) for cuBLASLt's split reductions. False (nothing launched): built without
// cuBLASLt, n or k not multiples of 8, pointers not 16-byte aligned (db: 256, as the caching
// allocator's tensors are; cuBLASLt's heuristic infers the alignment it may assume from the bias
// pointer), or cuBLASLt has no kernel for it. Runs on the current device and `stream`.
// weightBiasGradAvailable: built with cuBLASLt's header and the library found in the process.
std::int64_t weightBiasGradWorkspace();
bool weightBiasGradAvailable();
bool weightBiasGradBf16(const std::uint16_t* dy, const std::uint16_t* x, std::uint16_t* dw, std::uint16_t* db,
                        std::int64_t rows, int n, int k, void* workspace, std::int64_t workspaceBytes, void* stream);
// The training loss's per-cell mean over genes of the ZINB NLL (ZinbLoss.h; zinbNllRowMean in
// CellTransformer.h): out[r] = mean over c of zinb::nll of row r's values, all float32 [rows, cols]
// contiguous, out [rows]; and its backward, each of dmu, dtheta, dpi [rows, cols] = gradOut[r] /
// cols times the NLL's derivative. One kernel each. False: nothing launched.
bool zinbRowMeanF32(const float* xLog, const float* mu, const float* theta, const float* pi, float* out,
                    std::int64_t rows, int cols, void* stream);
bool zinbRowMeanGradF32(const float* xLog, const float* mu, const float* theta, const float* pi, const float* gradOut,
                        float* dmu, float* dtheta, float* dpi, std::int64_t rows, int cols, void* stream);
// The same loss from the three heads' pre-activations (zinbHeadsRowMean: training's heads as one
// product): logits bf16 [rows, ld >= 3 cols], mu's in columns [0, cols), theta's in [cols, 2 cols),
// the gate's in [2 cols, 3 cols); mu and theta are exp(l) + 1e-15 (zinb::kHeadEps) as the separate
// heads give them. The backward writes dlogits bf16 [rows, 3 cols] contiguous: exp's backward
// (times exp(l)) and the cast's (rounded to bf16 once), the gradient by the logits that the separate
// heads' autograd forms, bit for bit (the products before it are one now, so a step as a whole
// differs from the separate heads' by their summation order).
bool zinbHeadsRowMeanBf16(const float* xLog, const std::uint16_t* logits, std::int64_t ld, float* out,
                          std::int64_t rows, int cols, void* stream);
bool zinbHeadsRowMeanGradBf16(const float* xLog, const std::uint16_t* logits, std::int64_t ld, const float* gradOut,
                              std::uint16_t* dlogits, std::int64_t rows, int cols, void* stream);
// geluExp2, the float32 erf GELU and the erf GELU in double precision of every bf16 bit pattern b
// (65,536 of each), rounded to bf16, into exp2Out[b], erffOut[b] and exactOut[b] (parity's check
// of the epilogue's GELU on the device); with `gradOut`, geluGradExp2 of each in float32 (the
// training backward's epilogue).
bool geluExp2TableBf16(std::uint16_t* exp2Out, std::uint16_t* erffOut, std::uint16_t* exactOut, void* stream,
                       float* gradOut = nullptr);
// Embedding's small stages (EmbeddingKernels.cu), each one kernel instead of ATen's gathers,
// copies, casts and elementwise operations on small tensors:
// - assembleTokensBf16: the packed encoder input, out[p] = table[rows[order[p]]] where order[p] <
//   tokens, cls where order[p] < tokens + cells, zeros otherwise (Batch::order's layout), rows of
//   `cols` bf16 (a multiple of 8, 16-byte aligned), the table's `tableStride` apart (a multiple
//   of 8). Where `index` is given, also index[p] = rows[order[p]], -1 or -2 in those three cases
//   (int32: shortAttentionGatherBf16's); with a null `out`, the index alone (embedding's first
//   layer reads its residual through it: gatherAddLayerNormBf16).
// - packedPoolBf16: the attention pool's weighted sums over the packed encoder output, read in
//   place (no padded copy): for neighbourhood b (sequence b of cuSeqlens, its last two rows the
//   class token and the zero slot, not attended; its last row the class token where the slot is
//   not stored, zeroSlotStored false: Batch::virtualZeroSlot), n_j = LayerNorm(e_j) without affine (float32
//   statistics, rounded to bf16 as ATen's output), score_hj = A_h . n_j + c_h, softmax per head
//   over the observed tokens, biasScore_h and add_zero_attn's 0; S[b, h, :] = sum_j a_hj n_j
//   (float32 [cells, heads, cols]); weights[b, h] = (sum_j a_hj, a of bias_k) (float32 [cells,
//   heads, 2]). With normalizedS (bf16 [cells, heads, cols]; normWeight and normBias float32
//   [cols]), S is written there as bf16(S w + sum_j a_hj b) instead, the pool's norm_k affine
//   and cast as ATen computes them (CellTransformer::poolOutput), S itself not written.
//   A [heads, cols], c and biasScore [heads], float32 on the device. maxObserved
//   bounds every neighbourhood's observed tokens (Batch::maxLength, which also counts the class
//   token and zero slot, will do). For cols 128 * {1, 2, 3, 4, 6, 8}, at most 16 heads, where the
//   shared memory holds maxObserved tokens (packedPoolFits); false (nothing launched) otherwise.
// - pairAttentionBf16: the decoder's attention between its two tokens, qkv [cells, 2, 3 E] bf16
//   (q, k, v; heads of headDim columns) -> out [cells, 2, E]: each token's output is sigmoid(scale
//   q . k_other) v_other per head (softmax over the other token's key and add_zero_attn's zero
//   key), in float32, rounded to bf16. headDim a multiple of 8, 16-byte aligned pointers.
// - pairAttentionGradBf16: its backward (training's decoder), dout [cells, 2, E] -> dqkv [cells, 2,
//   3 E], with a = sigmoid(scale q_i . k_j) recomputed (j the other token): dq_i = ds_i k_j,
//   dk_j = ds_i q_i, dv_j = a dout_i, ds_i = scale a (1 - a) (dout_i . v_j); each (token, head) is a
//   thread that writes its own q gradient and the other token's k and v gradients (no atomics).
//   In float32, rounded to bf16; ATen's composite ran ~12 small kernels a decoder layer.
bool assembleTokensBf16(const std::uint16_t* table, const std::uint16_t* cls, const std::int64_t* rows,
                        const std::int64_t* order, std::int64_t tokens, std::int64_t cells, std::int64_t positions,
                        int cols, std::uint16_t* out, void* stream, std::int64_t tableStride = 0, int* index = nullptr);
bool packedPoolFits(int cols, int heads, std::int64_t maxObserved);
// Whether packedPoolBf16's `tokenPairs` applies at this width and head count (the released width's
// kernel: E 384, at most 8 heads).
bool packedPoolTokenPairs(int cols, int heads);
// `before`: the pool kernel before its grouped second pass (for same-call ratios); `tokenPairs`
// (cols 384, at most 8 heads; elsewhere no effect) false: the grouped kernel taking one token a
// warp at a time in its first pass (as before 2026-12-03; the same bits).
bool packedPoolBf16(const std::uint16_t* tokens, const int* cuSeqlens, std::int64_t cells, int cols, int heads,
                    std::int64_t maxObserved, const float* A, const float* c, const float* biasScore, float* S,
                    float* weights, void* stream, bool before = false, const float* normWeight = nullptr,
                    const float* normBias = nullptr, std::uint16_t* normalizedS = nullptr, bool zeroSlotStored = true,
                    bool tokenPairs = true);
// packedPoolBf16's backward (training: CellTransformer's TrainPackedPool), a block per sequence of
// cuSeqlens (`sequences` of them: the cells', then fillers): from dS and dWeights (float32 [cells,
// heads, cols] and [cells, heads, 2], the gradients of its S and weights) and the same tokens, A,
// c and biasScore, the tokens' gradient dTokens (bf16 [rows, cols]: through the LayerNorm without
// affine; zero on every row that is not an observed token), dAPartial [cells, heads, cols] (each
// cell's share of A's gradient) and dScorePartial [cells, heads, 2] (its shares of c's and
// biasScore's), for the caller to sum over the cells. The softmax is recomputed as the forward
// computed it. At most 8 heads (packedPoolGradFits); false (nothing launched) otherwise.
bool packedPoolGradFits(int cols, int heads, std::int64_t maxObserved);
// The pool's output in training (CellTransformer's TrainPoolOutput), around the per-head value
// products that cuBLAS runs (o_h = S'_h Wv_h^T and their backward):
// - poolAffineBf16: S' = bf16(S w + ow b), S [cells heads, cols] float32, weights [cells heads, 2]
//   (ow its first), w and b [cols] (norm_k's affine), each operation rounded as ATen's;
// - poolValueBiasBf16: out [cells, cols] = bf16(float(o) + bw bv), o [heads, cells, cols / heads]
//   bf16, bw the weights' second, bv [cols];
// - poolOutputGradBf16: their backward from dOut [cells, cols] bf16 and dS' [heads, cells, cols]
//   bf16 (dOut's product with Wv): dS [cells heads, cols] = dS' w, dweights [cells heads, 2] (ow's,
//   bw's: each row's sums), and each block's shares of dbv, dw and db in partial
//   [poolOutputSlices(), 3, cols], which the caller sums over the blocks.
// cols a multiple of 32 up to 768 and of heads (poolOutputFits); false (nothing launched) otherwise.
bool poolOutputFits(int cols, int heads);
int poolOutputSlices();
bool poolAffineBf16(const float* S, const float* weights, const float* w, const float* b, std::uint16_t* out,
                    std::int64_t cells, int heads, int cols, void* stream);
bool poolValueBiasBf16(const std::uint16_t* o, const float* weights, const float* bv, std::uint16_t* out,
                       std::int64_t cells, int heads, int cols, void* stream);
bool poolOutputGradBf16(const std::uint16_t* dOut, const std::uint16_t* dSp, const float* S, const float* weights,
                        const float* w, const float* b, const float* bv, float* dS, float* dweights, float* partial,
                        std::int64_t cells, int heads, int cols, void* stream);
// packedPoolGradBf16's `tokenPairs` (cols 384; elsewhere no effect): its two passes over the tokens take two a warp at
// a time (the default); false: one (the kernel before; the same bits).
bool packedPoolGradBf16(const std::uint16_t* tokens, const int* cuSeqlens, std::int64_t cells, std::int64_t sequences,
                        int cols, int heads, std::int64_t maxObserved, const float* A, const float* c,
                        const float* biasScore, const float* dS, const float* dWeights, std::uint16_t* dTokens,
                        float* dAPartial, float* dScorePartial, void* stream, bool zeroSlotStored,
                        bool tokenPairs = true);
bool pairAttentionBf16(const std::uint16_t* qkv, std::int64_t cells, int heads, int headDim, float scale,
                       std::uint16_t* out, void* stream);
bool pairAttentionGradBf16(const std::uint16_t* qkv, const std::uint16_t* dout, std::int64_t cells, int heads,
                           int headDim, float scale, std::uint16_t* dqkv, void* stream);
} // namespace atlascope::inference::cuda
