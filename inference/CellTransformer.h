#pragma once
// CellTransformer (Lee, Abbasi-Asl et al. 2025) in LibTorch, number for number with the reference
// (CELLTRANSFORMER.md): encoder over a neighbourhood's observed cells + CLS, attention pool,
// decoder conditioned on the reference cell's type, ZINB heads.
//
// Parameters are a plain map of the reference's state_dict names: the same names load, save and
// train (an optimiser takes parameters()), with no module tree to keep in sync.
#include "inference/StateDict.h"

#include <torch/types.h>

#include <array>
#include <atomic>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace atlascope::inference {

struct ModelConfig {
  int embedDim = 384; // E
  int heads = 8;      // H (not stored in a state_dict: the reference's default is 8)
  int encoderLayers = 4;
  int decoderLayers = 4;
  int genes = 500;     // G
  int cellTypes = 384; // C
  int feedForward = 2048;

  // Every key of the reference's state_dict for this config, with its shape.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> expectedShapes() const;
  std::string describe() const;
};

// E, depths, G, C and the feed-forward width read off the weights; heads as given.
ModelConfig inferConfig(const StateDict& weights, int heads, const std::string& source);

// One padded batch of neighbourhoods. Observed cells are given as row indices into the
// expression/type tables, so that the gather happens on the device holding the tables.
struct Batch {
  torch::Tensor observed;  // [B, N] int64 cell rows (padding: any valid row)
  torch::Tensor valid;     // [B, N] bool: true for real observed cells
  torch::Tensor reference; // [B] int64 cell rows of the reference cells
  // Every neighbourhood of the batch has exactly N cells: no padding, so attention runs without a
  // mask (the fused flash kernel on a GPU).
  bool uniform = false;
  // Packed layout (packBatch; training): the tokens of all neighbourhoods back to back, sequence
  // by sequence ([observed..., class token, add_zero_attn's slot] per neighbourhood, then any
  // filler sequences), so that the projections and feed-forwards run on real tokens only and a
  // GPU's variable-length attention reads the sequences in place. The CPU (and float32) attention
  // scatters them to the padded [B, N + 2] layout. Undefined: padded.
  torch::Tensor rows;         // [Tp] int64 cell rows whose tokens are computed (observed cells, then fillers)
  torch::Tensor order;        // [R = Tp + 2B] int64: row of [tokens(rows); class tokens; zero slots] at each position
  torch::Tensor unpackIndex;  // [R] int64: each position's flat slot in the padded [B, N + 2] layout
  torch::Tensor zeroRows;     // [B] int64: positions of the add_zero_attn slots (empty where virtual)
  torch::Tensor cuSeqlens;    // [B + F + 1] int32: sequence boundaries (F filler sequences)
  std::int64_t maxLength = 0; // no sequence is longer (virtual zero slots counted)
  // Embedding's layout (PackShape::virtualZeroSlot): the add_zero_attn slots are not stored. Each
  // of the B neighbourhoods' sequences ends with its class token, and the attention kernels append
  // the zero key and value after it themselves, at the position the stored slot had: the same
  // arithmetic, one row of ~100 less in every per-token product, LayerNorm and GELU of the
  // encoder (the slot's own output was never read). R = Tp + B and `order` has no zero-slot rows;
  // unpackIndex still maps each stored position to its padded slot, so that a path that scatters
  // to the padded layout (the CPU's, a fallback) finds zeros at the slot, as add_zero_attn gives.
  bool virtualZeroSlot = false;

  // Every tensor of the batch, for what is done to all of them alike (moves, pinning, copies
  // into a captured graph's inputs): one list to extend when the batch gains a tensor.
  std::array<torch::Tensor*, 8> tensors() {
    return {&observed, &valid, &reference, &rows, &order, &unpackIndex, &zeroRows, &cuSeqlens};
  }
  std::array<const torch::Tensor*, 8> tensors() const {
    return {&observed, &valid, &reference, &rows, &order, &unpackIndex, &zeroRows, &cuSeqlens};
  }
};

// Shapes a packed batch is rounded up to (0: exact). On a GPU, training rounds the token count and
// the padded length so that steps repeat a handful of shapes: a CUDA graph is captured per shape,
// and cuBLAS and the allocator see the same sizes again. The extra tokens are filler cells in
// tokenMultiple / lengthMultiple sequences of their own (at most lengthMultiple + 1 long), which
// no real token attends to and the pool never reads (in the padded layout they sit in padding
// slots): the loss and gradients are those of the exact batch (tests/inference/test_trainer).
//
// Embedding's batches vary in their neighbourhood count B as well (they are filled to a token
// budget with neighbourhoods sorted by size), and every new row count of a matrix product costs
// cuBLASLt a kernel search of ~3 ms of host time on the H200 machine: 14% of an embedding batch
// was the device waiting for it. rowMultiple rounds the packed row count R = T + 2B instead of T,
// and cellSteps adds empty neighbourhoods (no observed cell; their outputs are to be ignored)
// until B is a multiple of 2^floor(log2 B) / cellSteps (at most 1/cellSteps more), so that the
// encoder's, the pool's and the decoder's products repeat a few row counts.
struct PackShape {
  std::int64_t tokenMultiple = 0;  // T rounded up to a multiple of this
  std::int64_t lengthMultiple = 0; // N rounded up to a multiple of this
  std::int64_t rowMultiple = 0;    // R = T + 2B rounded up to a multiple of this (instead of tokenMultiple)
  std::int64_t cellSteps = 0;      // B rounded up by empty neighbourhoods (see above; 0: exact)
  bool virtualZeroSlot = false;    // Batch::virtualZeroSlot (then R = T + B is what rowMultiple rounds)
  // ... only for batches whose longest sequence, the slot included, is at most this many rows (0:
  // any): past the short-attention kernel's bound the slots stay stored, for flash attention.
  std::int64_t virtualZeroSlotLongest = 0;
};
// The rows packBatch(shape) gives a batch of `cells` neighbourhoods holding `tokens` observed
// cells, the longest `longest` (fillers and empty neighbourhoods included): what embedding's batch
// plan holds to a budget, so that the rounded row count does not step past it. (The plan bounded
// it by cells x longest before, as if every neighbourhood were the longest: 0.3% more rows and
// 1,046 batches where 1,042 hold the 4M-cell bench brain.)
// (Embedding's shapes, rowMultiple: training's, lengthMultiple alone, also keep their slots stored
// where the padded length passes virtualZeroSlotLongest, which `longest` does not tell.)
std::int64_t packedRowBound(std::int64_t cells, std::int64_t tokens, std::int64_t longest, const PackShape& shape);
// B rounded as PackShape::cellSteps asks (B itself for 0 steps).
std::int64_t roundedCells(std::int64_t cells, std::int64_t steps);

// Adds the packed layout to a padded batch; the result on the CPU (toDevice moves it).
Batch packBatch(const Batch& padded, const PackShape& shape = {});
// A batch's tensors on `device`, copied from pinned memory without waiting on a GPU.
Batch toDevice(const Batch& batch, torch::Device device);
// The batch's tensors in pinned host memory (for asynchronous copies).
Batch pinned(Batch batch);
// Packed rows [R, C] (R = T + 2B, or T + B with virtual zero slots) -> the padded layout [B * (N + 2), C], padding
// slots zero. `oneGather` (a GPU's contiguous bf16 rows): one pass over the layout by a kernel (ScatterPaddedRows)
// where a zero fill and index_copy took two; the same values and gradient.
torch::Tensor scatterPadded(const torch::Tensor& packed, const Batch& batch, bool oneGather = false);
// scatterPadded's layout as two tensors with the same values (one a view of the other) for two
// uses, whose gradients ScatterPaddedRows sums as it gathers the real rows (oneGather; otherwise
// the same tensor twice, autograd's add summing them).
std::pair<torch::Tensor, torch::Tensor> scatterPaddedTwice(const torch::Tensor& packed, const Batch& batch,
                                                           bool oneGather = false);
// x.index_select(0, order) for a permutation `order` of x's rows (Batch::order), whose backward
// gathers the gradient by the inverse permutation instead of index_select's atomic index_add.
torch::Tensor permuteRows(const torch::Tensor& x, const torch::Tensor& order);

// What forward() computes after the decoder, from its output at the reference-type token: no
// heads; the ZINB heads' values (Output::mu, theta, ziLogits, scale); or, for training's loss
// (zinbHeadsRowMean), the mu, theta and gate heads' pre-activations from one product
// (Output::headLogits; the scale head and the embedding, which the loss does not read, are not
// computed). A bool converts: true the values, false none.
struct Heads {
  enum Kind { none, values, logits };
  Kind kind;
  Heads(bool on) : kind(on ? values : none) {} // NOLINT(google-explicit-constructor): forward(..., true)
  Heads(Kind k) : kind(k) {}                   // NOLINT(google-explicit-constructor)
};

struct Output {
  torch::Tensor embedding; // [B, E] float32: the decoder output at the pooled token
  // [B, G] float32 (Heads::values), from the decoder output at the reference-type token.
  torch::Tensor mu, theta, ziLogits, scale;
  // [B, 3G] in the compute dtype (Heads::logits): the mu, theta and gate heads' pre-activations side
  // by side (mu = exp(l) + 1e-15 and theta likewise, the gate's logit itself), one product's output
  // where the heads took four products and ~10 casts and elementwise kernels each way.
  torch::Tensor headLogits;
};

class CellTransformer {
public:
  // Checks every key and shape against `config` (the first mismatch is the error) and refuses
  // unknown keys. `source` names the weights in errors.
  CellTransformer(StateDict weights, ModelConfig config, const std::string& source);

  const ModelConfig& config() const { return config_; }
  const StateDict& parameters() const { return params_; }
  StateDict& mutableParameters() { return params_; }

  // Moves the parameters; `compute` is the dtype of the computation: float32 (exact parity), or
  // bfloat16 on a GPU, where activations stay bf16 between layers (LayerNorm and softmax compute
  // their statistics in float32 inside the kernels) and outputs are returned as float32; its
  // embeddings agree with float32 to cosine >= 0.999 (checked by `atlascope-cli parity`).
  void to(torch::Device device, torch::ScalarType compute = torch::kFloat32);
  // Packed batches on a GPU in bf16 attend with variable-length flash attention over the
  // sequences in place (no padding, no scatter); off: the padded path every device has.
  void setVariableLengthAttention(bool on) { varlen_ = on; }
  bool variableLengthAttention() const;
  torch::Device device() const { return device_; }
  // Fused CUDA kernels (FusedKernels.cu) on a GPU in bf16: residual add + LayerNorm without
  // gradients, LayerNorm's weight and bias gradients in training; off: ATen's operations (the path
  // before them, for comparisons). fusedKernelsBuilt(): whether this
  // build has them (CMake found the CUDA toolkit and LibTorch has CUDA).
  void setFusedKernels(bool on) { fused_ = on; }
  bool fusedKernels() const {
    return fused_ && fusedKernelsBuilt() && device_.is_cuda() && compute_ == torch::kBFloat16;
  }
  static bool fusedKernelsBuilt();
  // Without gradients on a GPU in bf16 with the fused kernels (embedding, validation): one fused
  // q/k/v projection read in place by ShortAttention.cu's kernel over the packed sequences,
  // instead of three projections and ATen's flash kernel (which pads head size 48 to 64). With
  // gradients (training): the three projections' q, k, v through ShortAttention.cu's training
  // kernels (forward with each row's log2-sum-exp, backward in two kernels) instead of flash's.
  // Sequences longer than 272 tokens take flash. Off: the previous path, for same-call ratios.
  void setShortAttention(bool on) { shortAttention_ = on; }
  // Packed batches' attention pool (where the fused pool does not run: training): LayerNorm over
  // the packed rows, then the padded layout with the class token and zero slot masked (packedPool);
  // off: LayerNorm over a slice of the padded layout (the path before), for same-call ratios.
  void setPackedPool(bool on) { packedPool_ = on; }
  bool shortAttention() const { return shortAttention_ && fusedKernels(); }
  // Which short-attention kernel (cuda::shortAttentionBf16's variant): 0 the default, 1 the kernel
  // before it (16 keys a step, values transposed in shared memory), 2.. other shapes of the default; for
  // same-call ratios. A variant the build lacks: the attention declines and flash runs.
  void setAttentionVariant(int variant) { attentionVariant_ = variant; }
  int attentionVariant() const { return attentionVariant_; }
  // A variant's name for reports; null past the last one or where the kernels are not built.
  static const char* attentionVariantName(int variant);
  // Likewise the feed-forward layers' GELU(x W^T + b) as one CUTLASS GEMM with the bias and the
  // erf GELU in its epilogue (GemmGelu.cu, where the build has CUTLASS) instead of cuBLASLt's GEMM
  // and ATen's GELU pass over the hidden activations. Off: the previous path.
  void setGemmGelu(bool on) { gemmGelu_ = on; }
  bool gemmGelu() const { return gemmGelu_ && gemmGeluBuilt() && fusedKernels(); }
  static bool gemmGeluBuilt();
  // Training's feed-forward layers (with gradients, on a GPU in bf16 with the fused kernels) by
  // CUTLASS GEMMs with the GELU in the first product's epilogue (which also writes the
  // pre-activation) and GELU's gradient in the epilogue of the backward's dy W2, the first bias's
  // gradient by its kernel after it (GemmGeluTraining.cu, TrainFeedForward), where the build has CUTLASS. Off:
  // cuBLASLt's products, ATen's GELU and FusedKernels.cu's GELU-gradient kernel (the path before).
  void setFusedFeedForward(bool on) { fusedFeedForward_ = on; }
  bool fusedFeedForward() const { return fusedFeedForward_ && gemmGeluBuilt() && fusedKernels(); }
  // Training's LayerNorms (on a GPU in bf16 with the fused kernels): the residual add in the
  // forward kernel and the weight and bias gradients in the input gradient's pass (TrainAddLayerNorm,
  // layerNormBackwardBf16). Off: ATen's add, and those gradients by a kernel of their own after the
  // input gradient's (the path before).
  void setFusedLayerNorm(bool on) { fusedLayerNorm_ = on; }
  bool fusedLayerNorm() const { return fusedLayerNorm_ && fusedKernels(); }
  // Training's attention pool (on a GPU in bf16 with the fused kernels): its LayerNorm without
  // weight and bias by the kernels of the others (normalize). Off: ATen's LayerNorm (the path before).
  void setFusedPoolNorm(bool on) { fusedPoolNorm_ = on; }
  bool fusedPoolNorm() const { return fusedPoolNorm_ && fusedKernels(); }
  // Training's self-attention (on a GPU in bf16 with the short-attention kernels): q, k and v as
  // one [R, 3E] product that the kernels read in place and whose gradient they write whole
  // (PackedQkvProjection, PackedShortAttention): one input-gradient product, one weight-gradient
  // product and one bias-gradient reduction a layer. Off: three of each (QkvProjection, the path
  // before).
  void setPackedTrainingQkv(bool on) { packedQkv_ = on; }
  bool packedTrainingQkv() const { return packedQkv_ && shortAttention() && fusedKernels(); }
  // The fused feed-forward's products that declined in this process (the unfused steps ran instead).
  static std::int64_t fusedFeedForwardDeclines();
  // Inference's fused GEMM + GELU calls that declined in this process (ATen's ran instead).
  static std::int64_t gemmGeluDeclines();
  // The fused GEMM + GELU's epilogue evaluates erff itself instead of geluExp2 (GeluExp2.h: the
  // same bf16 for every input from -6 up, at half the epilogue's cost). For same-call ratios.
  void setErffGelu(bool on) { erffGelu_ = on; }
  bool erffGelu() const { return erffGelu_; }
  // The fused GEMM + GELU by CUTLASS's linear-combination epilogue, one rounding at a time (the
  // kernel before, cuda::gemmBiasGeluBf16's `linComb`: the same bits); in training, both fused
  // feed-forward products' epilogues likewise (gemmBiasGeluAuxBf16, gemmGeluGradBf16). For
  // same-call ratios.
  void setLinCombGelu(bool on) { linCombGelu_ = on; }
  bool linCombGelu() const { return linCombGelu_; }
  // Training's fused feed-forward (a GPU built with CUTLASS and cuBLASLt): the first layer's bias
  // gradient summed by its weight gradient's product (cuda::weightBiasGradBf16: cuBLASLt's BGRADB
  // epilogue) instead of a pass of its own over dh [R, 2048] after the GELU-gradient product
  // (biasGradBf16). Opt-in (`--bias-grad-in-product`): slower on the H200 (call s20-1, `bench gemm-gelu
  // --train`: 1.800 ms against 1.705; 57,101 cells/s against 57,287-57,473).
  void setBiasGradInProduct(bool on) { biasGradInProduct_ = on; }
  bool biasGradInProduct() const { return biasGradInProduct_; }
  // Training's fused feed-forward: the forward's epilogue writes GELU'(h) beside GELU(h) (both from
  // h rounded to bf16 once) for the backward, whose epilogue is then one product, instead of h for
  // the backward to evaluate GELU'(h) in its epilogue (GemmEpilogues.cuh; GELU' rounded to bf16 once
  // more). Not with setLinCombGelu. Opt-in (`--stored-gelu-grad`): not faster on the H200 (call s20-1,
  // `bench gemm-gelu --train`: 1.780 ms against 1.705, its forward 0.709 against 0.581).
  void setStoredGeluGrad(bool on) { storedGeluGrad_ = on; }
  bool storedGeluGrad() const { return storedGeluGrad_; }
  // Backwards in this process whose bias gradient was to come from that product but did not
  // (cuBLASLt missing or declining: the pass of its own ran).
  static std::int64_t biasInProductDeclines();
  // Whether that product can run here: a GPU build with cuBLASLt's header, the library in the process.
  static bool biasGradInProductAvailable();
  // Training's attention backward by the two kernels before the one-kernel backward (a GPU in
  // bf16, the short-attention kernels; FusedKernels.h, shortAttentionBackwardBf16).
  void setTwoKernelAttentionBackward(bool on) { twoKernelAttentionBackward_ = on; }
  // The one-kernel attention backward with K copied at its start (the default; where that keeps as
  // many blocks on a multiprocessor) or over Q between its phases (false: the kernel before).
  void setAttentionKeysAhead(bool on) { attentionKeysAhead_ = on; }
  // The attention backward's first loads in the order before (cuda::setAttentionBackwardLoadsLate:
  // process-wide, for comparisons; the same bits). Nothing without the fused kernels.
  static void setAttentionBackwardLoadsLate(bool late);
  // Training on a GPU: the bias gradient of a layer whose output is added before a LayerNorm (the
  // output projection, the feed-forward's second layer) summed by that LayerNorm's backward kernel
  // as it writes the gradient (the default), or by a pass of its own over it (false: before).
  void setNormBiasSums(bool on) { normBiasSums_ = on; }
  bool normBiasSums() const { return normBiasSums_; }
  // Training on a GPU in bf16 with the one-pass LayerNorm (setFusedLayerNorm): the token MLP's GELU
  // after its first LayerNorm in that LayerNorm's forward kernel, and GELU's backward in its
  // backward kernel (the default), or by ATen's gelu and gelu_backward (false: the path before).
  void setFusedNormGelu(bool on) { fusedNormGelu_ = on; }
  bool fusedNormGelu() const { return fusedNormGelu_ && fusedLayerNorm(); }
  // Training on a GPU in bf16 with the one-pass LayerNorm and the type rows from the compute copy
  // (setComputeTypeRows): proj_norm's LayerNorm reads each cell's type embedding from the table and
  // the expression MLP's output where they lie (the default), or of their concatenation, which
  // the type rows' gather and ATen's cat write out first (false: the path before).
  void setFusedProjNorm(bool on) { fusedProjNorm_ = on; }
  bool fusedProjNorm() const { return fusedProjNorm_ && fusedLayerNorm() && computeTypeRows_; }
  // proj_norm LayerNorms that read the type table in place (setFusedProjNorm), this process.
  static std::int64_t projNormRuns();
  bool attentionKeysAhead() const { return attentionKeysAhead_; }
  bool twoKernelAttentionBackward() const { return twoKernelAttentionBackward_; }
  // Training's token rows (with gradients): the type embeddings' rows gathered from the tables'
  // compute copies, their gradient summed per type by one function (TypeRows: a kernel on a GPU in
  // bf16), and the packed tokens' class-token rows written out before their concatenation (ATen's
  // cat of an expanded row took its slow path, 0.15 ms a step at the released size). Off: the
  // float32 master's rows gathered and cast, their gradient by ATen's index_add in float32, the
  // expanded class token (the path before, for comparisons). One epoch of the 4M-cell brain on the
  // H200 (call s16-2): 53,965 and 53,876 cells/s against 53,238 off, replays' median 18.92 ms against 19.15.
  void setComputeTypeRows(bool on) { computeTypeRows_ = on; }
  bool computeTypeRows() const { return computeTypeRows_; }
  // Training's token rows on a GPU in bf16 with the fused kernels, by gathers of their own (ATen's
  // index_select took ~65 us for ~100k rows whatever their width): the cells' expression rows, the
  // type embeddings' rows, and the packed tokens (cells, class tokens, zero slots) put in sequence
  // order in one pass (PackTokens) where ATen's cat and gather took two, with the first layer's two
  // gradients (its branch and its residual) summed on the way back in one pass where autograd's add
  // and the inverse gather took two; LayerNorm's backward reads a gradient that is a column slice
  // of a wider one in place (in the model: the token MLP's, half of proj_norm's). Off: ATen's
  // gathers and cat, autograd's add and a contiguous copy (the paths before, for comparisons).
  void setFusedTokenRows(bool on) { fusedTokenRows_ = on; }
  bool fusedTokenRows() const { return fusedTokenRows_ && fusedKernels(); }
  // PackTokens against ATen's cat, gather and autograd's add (20,000 rows of 384, 300 class tokens
  // and zero slots; the output used twice with different gradients, then once): the largest
  // difference of the output and of the rows' and class tokens' gradients (0: the same bits), -1
  // where its kernels declined. On the CPU both are ATen's (the function's own fallback against
  // the composite).
  static double checkPackTokens(torch::Device device);
  static std::int64_t tokenRowDeclines();
  // Training's decoder attention between a neighbourhood's two tokens (on a GPU in bf16 with the
  // fused kernels) by one kernel each way (TrainPairAttention). Off: ATen's float32 composite and
  // its autograd (the path before, for comparisons).
  void setFusedPairAttention(bool on) { fusedPairAttention_ = on; }
  // Training's attention pool (on a GPU in bf16 with the fused kernels): its packed rows put into the
  // padded layout by one kernel (scatterPadded's oneGather), its scores' and values' gradients
  // summed as the real rows are gathered back (scatterPaddedTwice). Off: a zero fill and
  // index_copy, autograd's add over the padded layout and ATen's gather (the paths before, for
  // comparisons).
  void setFusedPoolScatter(bool on) { fusedPoolScatter_ = on; }
  bool fusedPoolScatter() const { return fusedPoolScatter_ && fusedKernels(); }
  // Training's attention pool (on a GPU in bf16 with the fused kernels) by one kernel each way read
  // in place from the packed encoder output (TrainPackedPool: packedPoolBf16's forward, its
  // LayerNorm inside, and packedPoolGradBf16's backward, which recomputes the softmax). Off, or
  // where it declines (more than 8 heads, a width the kernels lack), or with setPackedPool(false):
  // packedPool's LayerNorm, padded layout and ATen's products and softmax (the path before,
  // `--aten-train-pool`).
  void setFusedTrainPool(bool on) { fusedTrainPool_ = on; }
  bool fusedTrainPool() const { return fusedTrainPool_ && fusedKernels(); }
  // With the fused training pool: its output up to out_proj (norm_k's affine, the per-head value
  // products and bias_v) by TrainPoolOutput, 3 kernels forward and 6 backward where ATen's
  // operations ran ~11 and ~25 (the same forward bits). Off: ATen's (`--aten-pool-output`, the
  // path before).
  void setFusedPoolOutput(bool on) { fusedPoolOutput_ = on; }
  bool fusedPoolOutput() const { return fusedPoolOutput_; }
  // Pools whose output TrainPoolOutput computed.
  static std::int64_t poolOutputRuns();
  // Batches whose pool ran packedPool where the fused training pool was on.
  static std::int64_t trainPoolDeclines();
  // TrainPackedPool (bf16) and packedPool (bf16, autograd through ATen, the path before) each
  // against packedPool in float32 at the released size on the same random packed encoder rows of
  // `cells` neighbourhoods (training's packing with virtual and with stored zero slots, 0 to 250
  // observed cells; the pool's LayerNorms, query and bias_k random) and the same gradient of the
  // pooled token: the largest (over both layouts) difference,
  // relative to float32's largest value, over the pooled token, the rows' gradient and the
  // gradients of the pool's parameters (query_token, norm, in_proj_weight's rows (the value rows
  // through the bf16 compute copy), bias_k, norm_v, norm_k, bias_v); the fused path includes its
  // output by TrainPoolOutput (setFusedPoolOutput). -1: not built or not a GPU; fused -1 also where
  // the fused pool declined.
  // outputForward, outputGradient: the fused run with its output by TrainPoolOutput against ATen's
  // operations on the same TrainPackedPool outputs: the pooled token's largest difference (0: the
  // same bits) and the gradients' largest relative difference (their sums' order); -1 where
  // TrainPoolOutput did not run. tokenPairs: the fused run against the same with its kernels one
  // token a warp at a time (setPoolTokenPairs false): the largest difference of every output and
  // gradient (0: the same bits).
  struct TrainPoolCheck {
    double fused = -1, aten = -1, outputForward = -1, outputGradient = -1, tokenPairs = -1;
  };
  static TrainPoolCheck checkTrainPool(torch::Device device, std::int64_t cells = 300);
  // scatterPadded by its kernel against the zero fill and index_copy (20,000 rows of 384 into 300 x
  // 102 slots), used once and (scatterPaddedTwice) twice with a gradient each: the largest
  // difference of the layout and of the rows' gradient (0: the same); -1 where the kernels
  // declined. On the CPU both are the path before.
  static double checkPoolScatter(torch::Device device);
  bool fusedPairAttention() const { return fusedPairAttention_ && fusedKernels(); }
  static std::int64_t pairAttentionDeclines();
  // TrainPairAttention against float32 autograd through ATen's composite on the same values
  // ([cells, 2, 3E] at E 384, 8 heads): the largest difference of the output and of the q|k|v
  // gradient, each relative to the reference's largest. bf16 kernels on a GPU, the written-out
  // float32 backward on the CPU. `declined`: a kernel declined (ATen's form ran).
  struct PairAttentionCheck {
    double output = -1, gradient = -1;
    bool declined = false;
  };
  static PairAttentionCheck checkPairAttention(torch::Device device, std::int64_t cells = 1024);
  // Type-row gradient sums (TypeRows' backward) whose kernel declined (ATen's index_add ran) in
  // this process, over all models; `parity` fails where its own calls declined.
  static std::int64_t typeRowDeclines();
  // Calls of TypeRows (the type rows of the compute copies) in this process, over all models.
  static std::int64_t typeRowRuns();
  // The encoder's first feed-forward layers in FP8 without gradients (embedding, validation; off
  // by default): LayerNorm's affine folded into linear1 (W' = W diag(gamma), b' = b + W beta,
  // float32, derived when the model moves to its device, when this is set and with its compute
  // copies), W' in e4m3 with one scale per output channel (its largest |value| to 448), the
  // normalised input times fp8InputScale(E) in e4m3 (no per-row scale: its values are at most
  // sqrt(E - 1)), products accumulated by the tensor cores' FP8 fast accumulation, GELU's tanh
  // form (setFp8ErfGelu). On a GPU in bf16 with the kernels: the fused LayerNorm writes the e4m3
  // rows beside its bf16 output and one CUTLASS GEMM + GELU reads them (cuda::gemmBiasGeluE4m3);
  // elsewhere the same e4m3 values in float32, in tensor operations (the path CI checks). The
  // decoder's two tokens and training's steps stay as they are. `parity` reports its cosine.
  void setFp8FeedForward(bool on);
  bool fp8FeedForward() const { return fp8_; }
  // Encoder layer calls (a layer of a batch) that ran it in float32 instead (no kernels here, or
  // one declined), since the model was made: 0 more on a GPU with the kernels.
  std::int64_t fp8Fallbacks() const { return fp8Fallbacks_.load(std::memory_order_relaxed); }
  // The largest power of two s with s sqrt(E - 1) <= 448: LayerNorm's output times s cannot
  // saturate e4m3 (16 for E 384; 8 for E 1024).
  static float fp8InputScale(std::int64_t E);
  // Its GELU: the tanh form (geluTanh in GeluExp2.h, ATen's approximate="tanh"; six instructions a
  // value in the epilogue) by default, the erf GELU (geluExp2 of the bf16-rounded input, as the
  // bf16 path) with this set, for comparisons.
  void setFp8ErfGelu(bool on) { fp8ErfGelu_ = on; }
  bool fp8ErfGelu() const { return fp8ErfGelu_; }
  // `bench gemm-gelu`: the feed-forward's first layer at embedding's size (rows x in -> out, bf16,
  // random data) by each path, `iterations` times after a warm-up, on `device`: cuBLASLt's GEMM
  // with its bias epilogue alone and the CUTLASS kernel without GELU (the bounds), cuBLASLt's
  // followed by ATen's GELU (the unfused path), the fused kernel with erff, and with geluExp2
  // (embedding's). ms per call (wall time between synchronisations) and the largest difference of
  // its output from the fused kernel's with geluExp2 (the GELU-less ones: from x W^T + b).
  // Then the FP8 layer's kernel (cuda::gemmBiasGeluE4m3) with x and W random e4m3 values and
  // scales of 1, its difference from float32 over the same e4m3 values.
  // Empty: not built or not a GPU. `shape`: "linear1" (the feed-forward's first layer); `flop`: of
  // one call.
  struct GemmGeluTiming {
    std::string path, shape = "linear1";
    double ms = 0, maxAbsFromDefault = 0, flop = 0;
  };
  static std::vector<GemmGeluTiming> benchGemmGelu(torch::Device device, std::int64_t rows, int in, int out,
                                                   int iterations);
  // Likewise embedding's small stages by EmbeddingKernels.cu: the packed encoder input assembled
  // from the token table in one gather, the attention pool read in place from the packed encoder
  // output (no padded copy) and the decoder's two-token attention, each one kernel instead of
  // ATen's gathers, copies and elementwise operations. Off: the previous path.
  void setFusedPool(bool on) { fusedPool_ = on; }
  bool fusedPool() const { return fusedPool_ && fusedKernels(); }
  // The fused pool's kernel before its grouped second pass (cuda::packedPoolBf16's `before`).
  void setPoolKernelBefore(bool on) { poolKernelBefore_ = on; }
  bool poolKernelBefore() const { return poolKernelBefore_; }
  // The fused pool's first pass two tokens a warp at a time (the default; cuda::packedPoolBf16's
  // tokenPairs, the same bits; the released width's kernel, E 384 with at most 8 heads, has it),
  // and in training its backward's two passes over the tokens likewise (packedPoolGradBf16's);
  // false: one (`--pool-single-tokens`, the kernels before).
  void setPoolTokenPairs(bool on) { poolTokenPairs_ = on; }
  bool poolTokenPairs() const { return poolTokenPairs_; }
  // Whether the fused pool's kernel for this model's width and heads has the pairs pass (a GPU
  // build with the fused kernels; false elsewhere).
  bool poolTokenPairsApply() const;
  // The fused pool, token assembly and decoder attention against the ATen path on `device`, a
  // random model of the released size (E 384, 8 heads) on random tokens in a rounded packed batch
  // (neighbourhoods of 0 to 300 observed cells, empty ones and fillers): the smallest cosine
  // similarity of a cell's embeddings by the two paths (-1: not built or not a GPU). Both round to
  // bf16 at different places (the fused pool keeps its scores and weights in float32), so it is a
  // cosine, not an equality.
  // `before`: with the pool's kernel before its grouped second pass. 0: the fused pool declined.
  static double checkFusedPool(torch::Device device, std::int64_t cells = 2000, bool before = false);
  // The FP8 feed-forward's kernels at the released size on `device`: the e4m3 GEMM + GELU with
  // random per-channel scales against float32 over the same e4m3 values (rows x 384 -> 2048, and 1,
  // 129 and rows + 77 rows; the largest difference relative to the largest output, tanh and erf
  // forms), and the fused LayerNorm's e4m3 rows against quantizeE4m3 of ATen's layer_norm (values
  // that differ, and the largest difference relative to the smaller value, at least 2^-6: a
  // neighbouring code, a rounding boundary met by float32's different sums, is at most 0.125).
  // Negative: not built or not a GPU.
  struct Fp8Check {
    double gemmMaxRelError = -1, gemmErfMaxRelError = -1, layerNormMaxStep = -1;
    std::int64_t layerNormDiffering = -1, layerNormValues = 0;
  };
  static Fp8Check checkFp8Kernels(torch::Device device, std::int64_t rows = 46080);
  // The fused GEMM + GELU against float32 linear and gelu on random bf16 data (rows x in -> out,
  // and 1, 129 and rows + 77 rows: partial tiles): the largest difference relative to the largest
  // output (-1: not built or not a GPU).
  static double checkGemmGelu(torch::Device device, std::int64_t rows = 46080, int in = 384, int out = 2048,
                              bool erff = false);
  // geluExp2 against the erf GELU on `device`: every bf16 input through geluExp2, the erf GELU in
  // double precision and ATen's float32 formula, rounded to bf16 (`mismatches`: of the `checked`
  // inputs from -6 up, |x| < 2^-125 aside, those where geluExp2 and double precision
  // differ; `erffMismatches`: where it and the float32 formula differ; `maxAbs`: the largest
  // difference from the float32 formula over every finite input); then the fused GEMM + GELU with
  // each epilogue on the same random data as checkGemmGelu (`gemmDiffering` of `gemmValues`
  // outputs differ, by at most `gemmMaxAbs`). Negative counts: not built or not a GPU.
  struct GeluExp2Check {
    std::int64_t mismatches = -1, erffMismatches = -1, checked = 0, gemmDiffering = -1, gemmValues = 0;
    double maxAbs = 0, gemmMaxAbs = 0;
    double gradMaxAbs = -1; // geluGradExp2 on the device against GELU' in double, every finite bf16
  };
  static GeluExp2Check checkGeluExp2(torch::Device device);
  // The short-attention kernel against float32 attention on random packed sequences of 0 to
  // `maxLength` tokens (bf16, E 384, 8 heads) on `device`, every sequence compared: the largest
  // difference relative to the largest output (-1: not built or not a GPU).
  static double checkShortAttention(torch::Device device, std::int64_t sequences = 3000, std::int64_t maxLength = 256,
                                    int variant = 0);
  // `bench attention`: each short-attention kernel (cuda::shortAttentionVariantName) on one
  // embedding batch's shape: `rows` packed tokens in sequences of mean length `meanLength` (uniform
  // from half to one and a half times it, or all of it where `exactLength`; E 384, 8 heads, random
  // bf16 q/k/v), `iterations` calls after a warm-up. ms per call, and the largest difference of its
  // output from variant 1's (the kernel before). Empty: not built or not a GPU.
  struct AttentionTiming {
    int variant = 0;
    std::string name;
    double ms = 0, maxAbsFromBefore = 0;
    std::int64_t rows = 0, sequences = 0, maxLength = 0;
  };
  static std::vector<AttentionTiming> benchAttention(torch::Device device, std::int64_t rows, std::int64_t meanLength,
                                                     int iterations, bool exactLength = false);
  // Training's short-attention kernels (forward and backward, ShortVarlenAttention) against float32
  // attention with autograd on random packed sequences of 0 to `maxLength` tokens (bf16, 8 heads of
  // `headDim`; 258 is training's bound at a neighbourhood cap of 250): the largest difference of the
  // output and of dq, dk and dv, each relative to its largest value; `flash` the same for ATen's
  // flash kernels (the path before), for scale. -1: not built, not a GPU, or the kernels declined.
  struct TrainAttentionCheck {
    double shortKernels = -1, flash = -1;
    // The kernels on one [R, 3E] q|k|v tensor (PackedShortAttention) against them on three: the
    // largest absolute difference of the output and gradients (the same arithmetic: 0).
    double packedFromShort = -1;
    // The backward's two kernels (setTwoKernelAttentionBackward) against float32 as shortKernels,
    // and the largest absolute difference between them and the one kernel (the same arithmetic).
    double twoKernels = -1, fusedFromTwoKernels = -1;
    // The one kernel with K ahead (setAttentionKeysAhead, the default) against it without: the
    // largest absolute difference (the same arithmetic: 0), and the rows up to which it kept dS^T
    // at this length on this device (longer sequences recompute it; 0: the kernel before ran).
    double keysAheadFromReload = -1;
    int kept = 0;
    // The one kernel, with K ahead and without, with its first loads in the order before
    // (setAttentionBackwardLoadsLate) against the default: the largest absolute difference (the
    // same arithmetic: 0).
    double loadsLateFromEarly = -1;
  };
  // Training's q|k|v projection and attention as one function (the one-kernel backward summing the
  // bias gradient and zeroing add_zero_attn's k and v gradients) against the projection and the
  // attention's two kernels before it, on `sequences` neighbourhoods of up to `maxLength` rows with
  // their zero slots and filler sequences: the largest absolute difference of the output, dx and dW
  // (the same gradient: 0), and of the bias gradient relative to its largest value (summed in
  // another order). -1: not built, not a GPU, or the kernels declined. virtualSlots: the same
  // neighbourhoods with their slots appended by the attention kernel (Batch::virtualZeroSlot)
  // against stored ones whose outputs nothing reads, the largest difference of the output, dx, dW
  // and the bias gradient relative to each one's largest value (the products run over fewer rows:
  // their kernels may differ).
  struct TrainQkvAttentionCheck {
    double sameGradients = -1, biasRelative = -1, virtualSlots = -1;
  };
  static TrainQkvAttentionCheck checkTrainQkvAttention(torch::Device device, std::int64_t sequences = 300,
                                                       std::int64_t maxLength = 258);
  // Training's type-row gradient (TypeRows' backward) by its kernel and by ATen's float32 index_add
  // rounded to bf16 (the best a bf16 gradient can be; the path before added the float32 sums
  // unrounded), each against the per-type sums in float64, on the released size's two
  // tables: 150 types x 192 columns read from a [rows, 384] gradient's first half (the encoder's
  // tokens, `rows` of them) and 150 x 384 from 1,024 rows (the decoder's). The largest difference
  // relative to the sums' largest; -1: not built or not a GPU, or (kernel) it declined.
  struct TypeRowsCheck {
    double kernel = -1, aten = -1;
  };
  static TypeRowsCheck checkTypeRows(torch::Device device, std::int64_t rows = 46080);
  // proj_norm with the type rows read by the LayerNorm's kernels (setFusedProjNorm) against the
  // type rows' gather, ATen's cat and the one-pass LayerNorm (the path before), on 150 types x 192
  // columns beside `rows` rows of 192 (and ragged and small row counts): the largest absolute
  // difference of the output and the four gradients (0: the same bits, as expected; 1: the
  // kernels declined; -1: not built or not a GPU).
  static double checkTrainProjNorm(torch::Device device, std::int64_t rows = 46080);
  static TrainAttentionCheck checkTrainAttention(torch::Device device, std::int64_t sequences = 400,
                                                 std::int64_t maxLength = 258, int headDim = 48);
  // `bench attention --train`: training's attention by flash and by the short kernels on one
  // step's shape (`rows` tokens, lengths as benchAttention's; E 384, 8 heads): ms per forward (with
  // what the backward keeps) and per forward + backward, and the short kernels' largest difference
  // from flash in the output and dq. Paths: flash, short (the one-kernel backward), short-loads-late
  // (its first loads in the order before, setAttentionBackwardLoadsLate, put back after) and
  // short-two-kernel-backward. Empty: not built or not a GPU.
  struct TrainAttentionTiming {
    std::string path;
    double forwardMs = 0, stepMs = 0, maxAbsFromFlash = 0;
    std::int64_t rows = 0, sequences = 0, maxLength = 0;
  };
  static std::vector<TrainAttentionTiming> benchTrainAttention(torch::Device device, std::int64_t rows,
                                                               std::int64_t meanLength, int iterations,
                                                               bool exactLength = false);
  // The training LayerNorm of the fused kernels against ATen's on random bf16 data on `device`:
  // the largest relative difference of the output and the three gradients (-1: not built), over
  // both backwards (one pass, two passes), LayerNorm(x + y) against ATen's add and layer_norm (its
  // four gradients), the one-pass backward reading a column slice of a wider gradient in place
  // against the same values contiguous, GELU(LayerNorm) (setFusedNormGelu; both backwards) against
  // ATen's gelu of ATen's layer_norm, and ragged and small row counts.
  static double checkTrainLayerNorm(torch::Device device, std::int64_t rows = 46080, int cols = 384);
  // A linear layer's output added before the training LayerNorm (both of its outputs used), with
  // the linear's bias gradient summed by the LayerNorm's backward kernel (setNormBiasSums) and by a
  // pass of its own: the largest absolute difference of the other five gradients (the same
  // arithmetic: 0), the bias gradient's relative to its largest value (summed in another order),
  // and whether the LayerNorm's sums were taken. -1: not built or not a GPU.
  struct NormBiasSumsCheck {
    double sameGradients = -1, biasRelative = -1;
    bool used = false;
  };
  static NormBiasSumsCheck checkNormBiasSums(torch::Device device, std::int64_t rows = 46080, int cols = 384);
  // Bias gradients taken from the LayerNorm backward's sums so far (in this process; once per
  // capture where a CUDA graph replays the step).
  static std::int64_t summedGradientUses();
  // The training linear layers of the fused kernels (bias gradient, GELU's backward with it, the
  // q/k/v projections) against ATen's linear and gelu, the same way (input width `in`, output
  // width `out`; the q/k/v projections [3 in, in]).
  static double checkTrainLinear(torch::Device device, std::int64_t rows = 46080, int in = 384, int out = 2048);
  // Training's feed-forward (width `in`, hidden `hidden`) by the fused GEMMs (TrainFeedForward) and
  // by the path before (TrainLinear twice) against float32 linear, GELU and linear with autograd
  // on the same random bf16 data: the largest difference of the output and of the five gradients
  // (x, both weights, both biases), each relative to its largest value. -1: not built, not a GPU,
  // or (fused) a kernel declined (also within the autograd function: the fallback would be measured).
  struct TrainFeedForwardCheck {
    double fused = -1, unfused = -1;
    std::vector<double> fusedEach, unfusedEach; // y, dx, dW1, db1, dW2, db2 (`fused`, `unfused`: the largest)
    // The fused path's epilogue trees against the linear combinations before them (setLinCombGelu):
    // the largest difference in y and dx, which must be 0 (the same bits).
    double linComb = -1;
    // The fused path with the first bias gradient by the weight gradient's product
    // (setBiasGradInProduct), as fusedEach; empty where cuBLASLt declined or is not built.
    std::vector<double> biasInProductEach;
    // The fused path with GELU'(h) stored by the forward (setStoredGeluGrad), as fusedEach; empty
    // where its kernels declined.
    std::vector<double> storedGradEach;
  };
  static TrainFeedForwardCheck checkTrainFeedForward(torch::Device device, std::int64_t rows = 46080, int in = 384,
                                                     int hidden = 2048);
  // `bench gemm-gelu --train`: training's feed-forward on `rows` tokens (E 384 -> 2048 -> 384) by
  // each path: ms per forward and per forward + backward, and the fused path's largest difference
  // from the unfused one in the output and dx. Empty: not built or not a GPU.
  struct TrainFeedForwardTiming {
    std::string path;
    double forwardMs = 0, stepMs = 0, maxAbsFromUnfused = 0;
    std::int64_t declines = 0; // fusedFeedForwardDeclines() (+ biasInProductDeclines()) after the path's calls
  };
  static std::vector<TrainFeedForwardTiming> benchTrainFeedForward(torch::Device device, std::int64_t rows,
                                                                   int iterations);
  // Re-derives the compute-dtype copies from the float32 parameters. Training in bf16 calls it
  // before each forward with gradients on, so that the casts are part of the graph and the
  // gradients reach the float32 weights (mixed precision with float32 master weights, as autocast).
  // Training with the copies its owner provides instead (views of one flat bf16 buffer cast once
  // per step, whose gradients land in one flat buffer: Trainer); refreshComputeCopies() then leaves
  // them to their owner. Empty: the model's own again, re-derived.
  void refreshComputeCopies();
  void setComputeCopies(StateDict copies);
  torch::ScalarType computeType() const { return compute_; }
  // G rounded up to a multiple of 8: forward()'s padded expression width.
  std::int64_t paddedGenes() const { return (config_.genes + 7) / 8 * 8; }

  // expression: [cells, G] (log2 values), or, in the compute dtype below float32, [cells,
  // paddedGenes()] whose columns past G are padding (rows of a multiple of 16 bytes in bf16, which
  // a GPU gathers with 16-byte loads: the trainer's copy); types: [cells] int64 in [0, C). Both on device(). With
  // `profile`, the device is synchronised at each stage boundary and the seconds spent in each stage (gather+MLP,
  // encoder, pool, decoder, heads) are added to it: slower, for reports. Outputs have one row per neighbourhood of the
  // batch, batch.reference.size(0): more than the caller's cells where packBatch appended empty neighbourhoods
  // (PackShape::cellSteps), the cells' rows first.
  Output forward(const torch::Tensor& expression, const torch::Tensor& types, const Batch& batch,
                 Heads heads = Heads::values, std::map<std::string, double>* profile = nullptr) const;

  // Each cell's encoder token, LN_proj([Emb_enc[type] ; MLP(x)]), [n, E] in the compute dtype.
  // expression [n, G], or [n, paddedGenes()] with zeros past G (forward()'s padded table).
  // It depends on the cell alone, so an embedding run computes it once per cell instead of once
  // per neighbourhood the cell appears in (~100 times) and gathers tokens (forwardFromTokens).
  torch::Tensor cellTokens(const torch::Tensor& expression, const torch::Tensor& types) const;
  // The first encoder layer's q, k and v depend on the token alone as well (post-LayerNorm: the
  // layer's attention reads the token itself), so where the table is wide each row also holds
  // them: [token | q | k | v], 4E columns, and the first layer's attention reads them through the
  // batch's row index (cuda::shortAttentionGatherBf16) instead of projecting every token of every
  // neighbourhood: one of the encoder's four q/k/v products a batch. Wide where
  // firstLayerPerCell() (a GPU in bf16 with the short-attention kernel and the fused assembly and
  // pool, which packed batches use) and the table of `cells` rows fits a quarter of the device's
  // memory (6E bytes a cell more: the table of 4M cells at E 384 is 12.3 GB instead of 3.1);
  // otherwise E columns, as before. A caller whose batches are not packed keeps E.
  void setFirstLayerPerCell(bool on) { firstLayerPerCell_ = on; }
  bool firstLayerPerCell() const;
  // Batches given a wide table whose first layer ran per token all the same (a kernel declined).
  std::int64_t firstLayerDeclines() const { return firstLayerDeclines_.load(std::memory_order_relaxed); }
  // Attention layers of batches with virtual zero slots that ran the padded path (a kernel declined).
  std::int64_t virtualZeroSlotDeclines() const { return virtualZeroSlotDeclines_.load(std::memory_order_relaxed); }
  // With a wide table, the first layer's add + LayerNorm reads its residual, the batch's tokens,
  // from the table through the row index (cuda::gatherAddLayerNormBf16): the token assembly then
  // writes the index alone, not the [R, E] tokens that only this LayerNorm read (the same values;
  // not with --fp8-feed-forward, whose first LayerNorm also writes e4m3 rows). Off
  // (`--assemble-first-tokens`): the tokens assembled, as before.
  void setFirstResidualFromTable(bool on) { firstResidualFromTable_ = on; }
  // Whether embedding's packed batches leave add_zero_attn's slots to the attention kernels
  // (Batch::virtualZeroSlot, gpuEmbeddingShape): the short-attention kernel's tiled forms run for
  // this model's head size (32, 48 or 64) and the fused pool reads the batches. Elsewhere a virtual
  // slot would send every attention to the padded path: the slots stay stored there.
  bool virtualZeroSlots() const;
  // Training's packed batches: on a GPU of `tokenMultiple`-rounded shapes (PackShape: padded
  // lengths to 32, one CUDA graph per shape), exact on the CPU; with the add_zero_attn slots left to the attention
  // kernels where `virtualSlots` asks and this model's training attention appends them: on a GPU the short-attention
  // training kernels (up to their longest sequence, past which the slots stay stored, for flash), on the CPU always
  // (its attention scatters the packed rows to the padded layout, zeros at the slots). Elsewhere
  // (--flash-attention, --padded-attention) the slots stay stored: a virtual slot would send every
  // attention to the padded path.
  PackShape trainingPackShape(std::int64_t tokenMultiple, bool virtualSlots) const;
  bool firstResidualFromTable() const { return firstResidualFromTable_; }
  // Batches whose first layer read its residual from the table.
  std::int64_t firstResidualRuns() const { return firstResidualRuns_.load(std::memory_order_relaxed); }
  std::int64_t cellTableColumns(std::int64_t cells) const;
  // cellTokens' rows, widened with their first-layer q|k|v where `columns` is 4E.
  torch::Tensor cellTable(const torch::Tensor& expression, const torch::Tensor& types, std::int64_t columns) const;
  // A table of token rows [n, E] widened to [n, 4E] ([token | q | k | v]).
  torch::Tensor widenTokenTable(const torch::Tensor& tokens) const;
  // Opt-in (`--residual-in-product`), inference on a GPU in bf16 with the fused kernels: each
  // encoder layer's second feed-forward product accumulates into its residual in place (cuBLAS,
  // beta 1: bf16(x + h W2^T), one rounding where the default has two: the product's with its
  // bias, then the sum's), and the bias joins in the LayerNorm that follows
  // (cuda::biasLayerNormBf16), which then reads one [R, E] tensor instead of two. Not with
  // --fp8-feed-forward (its layers keep their own second LayerNorm). Measured on the H200 (4M
  // cells): 0.8-1.3% faster end to end; `parity`'s smallest cosine to float32 on its fixture
  // 0.999897 against the default's 0.999904 (means 0.9999488 and 0.9999490), below the 0.9999
  // the default keeps, so it is not the default (`residual_in_product_cosine_min`).
  void setResidualInProduct(bool on) { residualInProduct_ = on; }
  bool residualInProduct() const { return residualInProduct_; }
  // Encoder layers run with the residual in the product (parity checks that the path ran).
  std::int64_t residualInProductRuns() const { return residualInProductRuns_.load(std::memory_order_relaxed); }
  // forward() from a table of cellTokens() (or cellTable()) rows instead of expression; padded or
  // packed batches.
  Output forwardFromTokens(const torch::Tensor& tokenTable, const torch::Tensor& types, const Batch& batch,
                           Heads heads = Heads::values, std::map<std::string, double>* profile = nullptr) const;
  // The first layer from a wide table against the per-token projection (forwardFromTokens on the
  // same tokens, wide and narrow) at the released size on `device`, random model and tokens in a
  // rounded packed batch as checkFusedPool's: the smallest cosine of a cell's embeddings (-1: not
  // built or not a GPU; 0: the gathered attention declined).
  static double checkFirstLayerPerCell(torch::Device device, std::int64_t cells = 2000);
  // Paths that must give the same bits, at the released size on `device` (random model,
  // LayerNorms and tokens, batches rounded as embed's): the largest absolute difference of the
  // embeddings (-1: not built or not a GPU; +inf: a kernel declined and another path ran).
  struct SameBitsCheck {
    // Virtual zero slots (Batch::virtualZeroSlot) against stored ones, through the per-token
    // first layer and the wide table's.
    double virtualZeroSlot = -1;
    // The first layer's residual from the table (setFirstResidualFromTable) against assembled.
    double firstResidual = -1;
    // The fused pool's first pass two tokens a warp at a time against one (setPoolTokenPairs).
    double poolTokenPairs = -1;
    // The fused GEMM + GELU's epilogue against the one before (setLinCombGelu); -1 where not built.
    // The same values: the sign of a sum that is exactly zero may differ (the one before added
    // beta * 0, which turns -0 into +0), which a difference cannot see and nothing downstream does.
    double linCombGelu = -1;
  };
  static SameBitsCheck checkSameBits(torch::Device device, std::int64_t cells = 2000);

private:
  // `table` (undefined: tokens given): the token table the packed batch's rows index, for the
  // fused assembly.
  Output encodeDecode(torch::Tensor tokens, const torch::Tensor& types, const Batch& batch, Heads heads,
                      std::map<std::string, double>* profile, const torch::Tensor& table = {}) const;
  // The pool over the packed encoder output by the fused kernel; undefined where it declines.
  torch::Tensor packedAttentionPool(const torch::Tensor& packed, const Batch& batch) const;
  // The pool's per-model constants: q_h W_k,h folded with norm_v (A [H, E], c [H]) and bias_k's score [H].
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> poolScores() const;
  // From the weighted sums over the normalised tokens (S [B, H, E], float32) and each head's
  // weights of the observed tokens and of bias_v ([B, H] each): the pooled token [B, 1, E].
  torch::Tensor poolOutput(torch::Tensor S, const torch::Tensor& observedWeight, const torch::Tensor& biasWeight) const;
  // poolOutput from S already through norm_k's affine and cast to the compute dtype ([B, H, E]).
  torch::Tensor poolProjection(const torch::Tensor& normalizedS, const torch::Tensor& biasWeight) const;
  const torch::Tensor& p(const std::string& name) const; // float32 master copy
  const torch::Tensor& P(const std::string& name) const; // the compute-dtype copy
  torch::Tensor lin(const torch::Tensor& x, const std::string& prefix, bool bias = true) const;
  torch::Tensor linGelu(const torch::Tensor& x, const std::string& prefix) const; // GELU(lin(x))
  // lin(linGelu(x, prefix.linear1), prefix.linear2); TrainFeedForward where fusedFeedForward() and
  // gradients are on.
  torch::Tensor feedForward(const torch::Tensor& x, const std::string& prefix) const;
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, bool gelu) const;
  torch::Tensor ln(const torch::Tensor& x, const std::string& prefix) const;
  // GELU(ln(x)): in training on a GPU, by the LayerNorm's kernels (setFusedNormGelu).
  torch::Tensor lnGelu(const torch::Tensor& x, const std::string& prefix) const;
  // proj_norm(cat(type embedding of t, h)) (setFusedProjNorm).
  torch::Tensor projNorm(const torch::Tensor& t, const torch::Tensor& h) const;
  // ln() (gelu: lnGelu()) by TrainLayerNorm where training on a GPU in bf16 allows it (with gelu,
  // the one-pass LayerNorm and setFusedNormGelu); undefined where ATen's LayerNorm is to run.
  torch::Tensor trainLn(const torch::Tensor& x, const std::string& prefix, bool gelu) const;
  // LayerNorm without a weight and bias (the attention pool's), in the compute dtype.
  torch::Tensor normalize(const torch::Tensor& x) const;
  torch::Tensor addLn(const torch::Tensor& x, const torch::Tensor& y, const std::string& prefix) const; // LN(x + y)
  // LN(x + y) twice, the second for the residual stream's next add: in training with the fused
  // LayerNorm, two autograd outputs (the same values) whose gradients the backward sums.
  std::pair<torch::Tensor, torch::Tensor> addLnResidual(const torch::Tensor& x, const torch::Tensor& y,
                                                        const std::string& prefix) const;
  // LN(x + y) by FusedKernels.cu's kernel without gradients on a GPU in bf16; with `normalized`,
  // also the rows' normalised values times fp8InputScale(E) in e4m3 into it (kUInt8, x's shape).
  // Undefined where it declines (another device, dtype or width; gradients on).
  torch::Tensor fusedAddLn(const torch::Tensor& x, const torch::Tensor& y, const std::string& prefix,
                           torch::Tensor* normalized = nullptr) const;
  // An encoder layer after its attention: norm1, the feed-forward, norm2 (in FP8 where set).
  // {the layer's output, the same for the next layer's residual add} (addLnResidual). `normed`:
  // norm1's output, already computed (firstLayerNorm; not for an FP8 layer): tokens and attention
  // are then not read.
  std::pair<torch::Tensor, torch::Tensor> encoderFeedForward(const torch::Tensor& tokens,
                                                             const torch::Tensor& attention, int layer,
                                                             const torch::Tensor& normed = {}) const;
  // setFp8FeedForward's per-layer linear1: W' in e4m3 [F, E] (kUInt8), alpha = its scales /
  // fp8InputScale(E) (float32 [F]), b' (the compute dtype [F]).
  struct Fp8Linear {
    torch::Tensor weight, alpha, bias;
  };
  void prepareFp8();
  std::vector<Fp8Linear> fp8Layers_;
  bool fp8_ = false;
  bool fp8ErfGelu_ = false;
  mutable std::atomic<std::int64_t> fp8Fallbacks_{0};
  torch::Tensor selfAttention(const torch::Tensor& x, const std::string& prefix, const torch::Tensor& keyValid) const;
  torch::Tensor typeEmbedding(const std::string& table, const torch::Tensor& types) const;
  torch::Tensor pairAttention(const torch::Tensor& x, const std::string& prefix) const;
  torch::Tensor attentionPool(const torch::Tensor& enc, const torch::Tensor& valid) const;
  torch::Tensor packedPool(const torch::Tensor& packed, const Batch& batch) const;
  // Training's pool by TrainPackedPool (setFusedTrainPool); undefined where it does not apply.
  torch::Tensor trainPackedPool(const torch::Tensor& packed, const Batch& batch) const;
  // The mu, theta and gate heads' `part` ("weight", "bias") side by side: Heads::logits' product.
  torch::Tensor headsSideBySide(const char* part) const;
  // The pool's scores, softmax and weighted sums over LayerNorm'd tokens n [B, L, E] (valid: [B, L]
  // or undefined for all).
  // `values` (defined: n's values, another tensor): the pool's values read from it, its scores from n.
  torch::Tensor normalizedPool(const torch::Tensor& n, const torch::Tensor& valid,
                               const torch::Tensor& values = {}) const;
  // The first encoder layer's q|k|v of rows x [n, E]: a wide table's columns E.. (cellTable).
  torch::Tensor firstLayerProjection(const torch::Tensor& x) const;
  // The first encoder layer's attention (its out_proj included) from a wide table's q|k|v rows
  // (cellTable) through `index` (assembleTokens'); undefined where the kernel declines.
  torch::Tensor firstLayerAttention(const torch::Tensor& table, const torch::Tensor& index, const torch::Tensor& cls,
                                    const Batch& batch) const;
  // Self-attention of an encoder layer on the packed token table (see Batch::rows).
  torch::Tensor packedSelfAttention(const torch::Tensor& x, const std::string& prefix, const Batch& batch,
                                    const torch::Tensor& valid) const;
  // Scaled dot-product attention of [B, H, Lq, d] queries over [B, H, Lk, d] keys/values whose
  // padding `valid` [B, Lk] marks (undefined: none); [B, Lq, E].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& valid) const;

  ModelConfig config_;
  StateDict params_;
  StateDict lowp_; // matrices cast to the compute dtype (empty for float32)
  torch::Device device_ = torch::kCPU;
  torch::ScalarType compute_ = torch::kFloat32;
  bool varlen_ = true;
  bool fused_ = true;
  bool shortAttention_ = true;
  bool packedPool_ = true;
  int attentionVariant_ = 0;
  bool poolKernelBefore_ = false;
  bool poolTokenPairs_ = true;
  mutable std::int64_t fusedPoolDeclines_ = 0; // batches whose fused pool declined (ATen's ran)
  bool gemmGelu_ = true;
  bool fusedFeedForward_ = true;
  bool fusedLayerNorm_ = true;
  bool fusedPoolNorm_ = true;
  bool packedQkv_ = true;
  bool erffGelu_ = false;
  bool linCombGelu_ = false;
  bool biasGradInProduct_ = false;
  bool storedGeluGrad_ = false;
  bool twoKernelAttentionBackward_ = false;
  bool attentionKeysAhead_ = true;
  bool normBiasSums_ = true;
  bool fusedNormGelu_ = true;
  bool fusedProjNorm_ = true;
  bool computeTypeRows_ = true;
  bool fusedTokenRows_ = true;
  bool fusedPairAttention_ = true;
  bool fusedPoolScatter_ = true;
  bool fusedTrainPool_ = true;
  bool fusedPoolOutput_ = true;
  bool fusedPool_ = true;
  bool firstLayerPerCell_ = true;
  bool residualInProduct_ = false;
  mutable std::atomic<std::int64_t> residualInProductRuns_{0};
  // An encoder layer's feed-forward and second LayerNorm with the residual in the second product
  // (setResidualInProduct); undefined where it does not apply (nothing changed then).
  torch::Tensor residualFeedForward(const torch::Tensor& x, const std::string& layer) const;
  // Batches given a wide table whose gathered first layer declined, and ran (atomic: the model's
  // const forward may run on several threads, as fp8Fallbacks_).
  mutable std::atomic<std::int64_t> firstLayerDeclines_{0}, firstLayerRuns_{0};
  // Attention layers of batches with virtual zero slots where the short-attention kernel declined
  // (the padded path ran).
  mutable std::atomic<std::int64_t> virtualZeroSlotDeclines_{0};
  bool firstResidualFromTable_ = true;
  mutable std::atomic<std::int64_t> firstResidualRuns_{0};
  // The first layer's add + LayerNorm with its residual gathered from the wide table (undefined:
  // it declined).
  torch::Tensor firstLayerNorm(const torch::Tensor& table, const torch::Tensor& index, const torch::Tensor& cls,
                               const torch::Tensor& attention) const;
  bool ownedCopies_ = false; // lowp_ set by setComputeCopies
};

// Zero-inflated negative binomial negative log-likelihood per element, at counts = exp(x) - 1 of
// the log2 input (the reference's convention), eps = 1e-8.
torch::Tensor zinbNll(const torch::Tensor& x, const torch::Tensor& mu, const torch::Tensor& theta,
                      const torch::Tensor& ziLogits);
// zinbNll(...).mean(1), each cell's NLL averaged over its genes (the training loss), with
// autograd. `fused` (float32 inputs of one shape on the CPU or, with the fused kernels, a GPU): one
// pass each way (ZinbLoss.h) instead of ATen's ~68 operations; the same function, its values
// equal to rounding. Otherwise (or !fused: the path before) ATen's composite.
torch::Tensor zinbNllRowMean(const torch::Tensor& xLog, const torch::Tensor& mu, const torch::Tensor& theta,
                             const torch::Tensor& pi, bool fused = true);
// zinbNllRowMean's fused form (the kernels on a GPU, the loop on the CPU) and ATen's float32
// composite against the composite in float64, on random data of rows x genes with rows at the
// extremes (a row weighted sum, so that each cell's gradient differs): the 99th percentile over
// values of the error relative to each value, and the largest error relative to the tensor's
// largest value, each the worst over the loss and its three gradients. -1 where it did not run
// (a GPU without the fused kernels) or a fused value was not finite. `parity` and the CPU test
// require the fused form's 99th percentile at most the composite's and its largest error at most
// twice the composite's (its gradients avoid the composite's cancellations: ZinbLoss.h).
struct ZinbCheck {
  double fusedP99 = -1, compositeP99 = -1, fusedMax = -1, compositeMax = -1;
};
ZinbCheck checkZinbRowMean(torch::Device device, std::int64_t rows = 1024, std::int64_t genes = 500);
// zinbNllRowMean from the heads' pre-activations (Output::headLogits, [rows, 3 genes]: mu's, theta's
// and the gate's columns; mu = exp(l) + 1e-15, theta likewise), with autograd to the logits.
// `fused` (bf16 logits on a GPU with the fused kernels, float32 on the CPU): one pass each way that
// also takes exp, its backward and the casts (the separate heads' ~10 small kernels each way);
// otherwise the heads' values by ATen, then zinbNllRowMean(..., fused) (the path before).
torch::Tensor zinbHeadsRowMean(const torch::Tensor& xLog, const torch::Tensor& logits, bool fused = true);
// zinbHeadsRowMean's fused form against its composite (the heads' values by ATen, then
// zinbNllRowMean's fused form, autograd to the logits) on random logits of rows x 3 genes in the
// compute dtype of `device` (bf16 on a GPU, float32 on the CPU), with rows at the extremes: the
// largest difference of the loss and of the logits' gradient, each relative to that tensor's
// largest value. On a GPU both run the same float32 functions on the same inputs: 0 expected.
// -1 where the fused form did not run (a GPU without the fused kernels).
struct ZinbHeadsCheck {
  double loss = -1, gradient = -1;
};
ZinbHeadsCheck checkZinbHeads(torch::Device device, std::int64_t rows = 1024, std::int64_t genes = 500);

} // namespace atlascope::inference
