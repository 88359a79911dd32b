#include "inference/CellTransformer.h"

#include "core/Error.h"
#include "inference/Embedding.h"
#include "inference/Fp8.h"
#include "inference/Init.h"
#include "inference/TensorBits.h"
#include "inference/TrainMatmul.h"
#include "inference/ZinbLoss.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>
// The fused kernels (FusedKernels.cu) where CMake built them and LibTorch has CUDA.
#if defined(ATLASCOPE_WITH_CUDA_KERNELS) && defined(__has_include)
#if __has_include(<ATen/cuda/CUDAContext.h>)
#include "inference/FusedKernels.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#define ATLASCOPE_FUSED_KERNELS 1
#endif
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <regex>
#include <set>
#include <tuple>
#include <utility>

namespace atlascope::inference {

namespace {
std::string shapeString(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int countLayers(const StateDict& w, const std::string& stack) {
  const std::regex re(stack + R"(\.layers\.(\d+)\..*)");
  int n = 0;
  for (const auto& [k, v] : w) {
    std::smatch m;
    if (std::regex_match(k, m, re)) n = std::max(n, std::stoi(m[1]) + 1);
  }
  return n;
}

const torch::Tensor& need(const StateDict& w, const std::string& key, const std::string& source) {
  const auto it = w.find(key);
  if (it == w.end()) throw FileError(source, "missing weight '" + key + "' (is this a CellTransformer state_dict?)");
  return it->second;
}

// The checks' running worst difference: `worst` takes d where d is larger, and keeps a NaN once
// seen (it fails parity's comparisons; std::max(worst, NaN) returns worst and would hide it).
[[maybe_unused]] void keepWorst(double& worst, double d) {
  if (std::isnan(d) || d > worst) worst = d;
}
} // namespace

std::vector<std::pair<std::string, std::vector<std::int64_t>>> ModelConfig::expectedShapes() const {
  const std::int64_t E = embedDim, G = genes, C = cellTypes, F = feedForward, h = embedDim / 2;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> s = {{"cls_token", {1, E}},
                                                                      {"pooling_token", {1, E}},
                                                                      {"expression_projection.0.weight", {h, G}},
                                                                      {"expression_projection.0.bias", {h}},
                                                                      {"expression_projection.1.weight", {h}},
                                                                      {"expression_projection.1.bias", {h}},
                                                                      {"expression_projection.3.weight", {h, h}},
                                                                      {"expression_projection.3.bias", {h}},
                                                                      {"expression_projection.4.weight", {h}},
                                                                      {"expression_projection.4.bias", {h}},
                                                                      {"encoder_cell_embed.weight", {C, h}},
                                                                      {"decoder_cell_embed.weight", {C, E}},
                                                                      {"proj_norm.weight", {E}},
                                                                      {"proj_norm.bias", {E}},
                                                                      {"attn_pool.query_token", {1, E}},
                                                                      {"attn_pool.attn.in_proj_weight", {3 * E, E}},
                                                                      {"attn_pool.attn.bias_k", {1, 1, E}},
                                                                      {"attn_pool.attn.bias_v", {1, 1, E}},
                                                                      {"attn_pool.attn.out_proj.weight", {E, E}}};
  for (const char* n : {"norm", "norm_v", "norm_k", "norm2"}) {
    s.push_back({std::string("attn_pool.") + n + ".weight", {E}});
    s.push_back({std::string("attn_pool.") + n + ".bias", {E}});
  }
  for (const auto& [stack, depth] : {std::pair<std::string, int>{"encoder", encoderLayers}, {"decoder", decoderLayers}})
    for (int i = 0; i < depth; ++i) {
      const std::string l = stack + ".layers." + std::to_string(i) + ".";
      s.push_back({l + "self_attn.in_proj_weight", {3 * E, E}});
      s.push_back({l + "self_attn.in_proj_bias", {3 * E}});
      s.push_back({l + "self_attn.out_proj.weight", {E, E}});
      s.push_back({l + "self_attn.out_proj.bias", {E}});
      s.push_back({l + "linear1.weight", {F, E}});
      s.push_back({l + "linear1.bias", {F}});
      s.push_back({l + "linear2.weight", {E, F}});
      s.push_back({l + "linear2.bias", {E}});
      for (const char* n : {"norm1", "norm2"}) {
        s.push_back({l + n + ".weight", {E}});
        s.push_back({l + n + ".bias", {E}});
      }
    }
  for (const char* h2 : {"mu", "theta", "scale", "gate_logit"}) {
    s.push_back({std::string("zinb_proj.") + h2 + ".weight", {G, E}});
    s.push_back({std::string("zinb_proj.") + h2 + ".bias", {G}});
  }
  return s;
}

std::string ModelConfig::describe() const {
  return "E " + std::to_string(embedDim) + ", " + std::to_string(heads) + " heads, " + std::to_string(encoderLayers) +
         "+" + std::to_string(decoderLayers) + " layers, G " + std::to_string(genes) + ", C " +
         std::to_string(cellTypes) + ", feed-forward " + std::to_string(feedForward);
}

ModelConfig inferConfig(const StateDict& w, int heads, const std::string& source) {
  ModelConfig c;
  c.embedDim = static_cast<int>(need(w, "cls_token", source).size(-1));
  c.genes = static_cast<int>(need(w, "expression_projection.0.weight", source).size(1));
  c.cellTypes = static_cast<int>(need(w, "encoder_cell_embed.weight", source).size(0));
  c.encoderLayers = countLayers(w, "encoder");
  c.decoderLayers = countLayers(w, "decoder");
  c.feedForward =
      c.encoderLayers > 0 ? static_cast<int>(need(w, "encoder.layers.0.linear1.weight", source).size(0)) : 2048;
  c.heads = heads;
  if (c.encoderLayers == 0 || c.decoderLayers == 0)
    throw FileError(source, "no encoder or decoder layers in the weights");
  if (heads <= 0 || c.embedDim % heads != 0)
    throw FileError(source, "embedding width " + std::to_string(c.embedDim) + " is not divisible by " +
                                std::to_string(heads) + " heads");
  return c;
}

CellTransformer::CellTransformer(StateDict weights, ModelConfig config, const std::string& source)
    : config_(config), params_(std::move(weights)) {
  std::set<std::string> known;
  for (const auto& [key, shape] : config_.expectedShapes()) {
    known.insert(key);
    const auto it = params_.find(key);
    if (it == params_.end()) {
      if (key == "pooling_token") continue; // unused in forward; older files may lack it
      throw FileError(source, "missing weight '" + key + "' for a model of " + config_.describe());
    }
    const auto actual = it->second.sizes().vec();
    if (actual != shape)
      throw FileError(source, "weight '" + key + "' has shape " + shapeString(actual) + ", expected " +
                                  shapeString(shape) + " for a model of " + config_.describe());
    if (!it->second.is_floating_point()) throw FileError(source, "weight '" + key + "' is not a floating-point tensor");
    it->second = it->second.to(torch::kFloat32).contiguous();
  }
  for (const auto& [key, t] : params_)
    if (!known.count(key)) throw FileError(source, "unexpected weight '" + key + "' (not part of CellTransformer)");
}

void CellTransformer::to(torch::Device device, torch::ScalarType compute) {
  for (auto& [k, v] : params_) v = v.to(device);
  device_ = device;
  compute_ = compute;
  ownedCopies_ = false;
  refreshComputeCopies();
  prepareFp8();
}

void CellTransformer::setFp8FeedForward(bool on) {
  fp8_ = on;
  prepareFp8();
}

float CellTransformer::fp8InputScale(std::int64_t E) {
  float s = 1024.f;
  while (s > 1.f / 1024 && s * std::sqrt(static_cast<float>(std::max<std::int64_t>(E - 1, 1))) > 448.f) s /= 2;
  return s;
}

// One scale per output channel of W' = W diag(gamma): a row's largest |value| lands on 448, e4m3's
// largest; the input is LayerNorm's normalised row before its affine, times fp8InputScale(E).
void CellTransformer::prepareFp8() {
  fp8Layers_.clear();
  if (!fp8_) return;
  torch::NoGradGuard noGrad;
  for (int i = 0; i < config_.encoderLayers; ++i) {
    const std::string l = "encoder.layers." + std::to_string(i);
    const torch::Tensor w = p(l + ".linear1.weight").to(torch::kFloat32),
                        b = p(l + ".linear1.bias").to(torch::kFloat32);
    const torch::Tensor gamma = p(l + ".norm1.weight").to(torch::kFloat32);
    const torch::Tensor beta = p(l + ".norm1.bias").to(torch::kFloat32);
    const torch::Tensor folded = w * gamma.unsqueeze(0);
    const torch::Tensor scale = folded.abs().amax(1).clamp_min(1e-30) / 448.0;
    Fp8Linear f;
    f.weight = quantizeE4m3(folded / scale.unsqueeze(1));
    f.alpha = (scale / fp8InputScale(w.size(1))).contiguous();
    f.bias = (b + torch::mv(w, beta)).to(compute_).contiguous();
    fp8Layers_.push_back(std::move(f));
  }
}

void CellTransformer::refreshComputeCopies() {
  if (ownedCopies_) return; // their owner casts them
  lowp_.clear();
  if (compute_ != torch::kFloat32)
    for (const auto& [k, v] : params_)
      if (v.dim() >= 1) lowp_[k] = v.to(compute_);
}

void CellTransformer::setComputeCopies(StateDict copies) {
  ownedCopies_ = !copies.empty();
  lowp_ = std::move(copies);
  if (!ownedCopies_) refreshComputeCopies();
  prepareFp8();
}

const torch::Tensor& CellTransformer::p(const std::string& name) const { return params_.at(name); }

const torch::Tensor& CellTransformer::P(const std::string& name) const {
  const auto it = lowp_.find(name);
  return it == lowp_.end() ? params_.at(name) : it->second;
}

torch::Tensor CellTransformer::lin(const torch::Tensor& x, const std::string& prefix, bool bias) const {
  return linear(x.to(compute_), P(prefix + ".weight"), bias ? P(prefix + ".bias") : torch::Tensor(), false);
}

torch::Tensor CellTransformer::linGelu(const torch::Tensor& x, const std::string& prefix) const {
  return linear(x.to(compute_), P(prefix + ".weight"), P(prefix + ".bias"), true);
}

namespace {
// The packed encoder input [R, E] in sequence order (Batch::order): the token table's rows of
// batch.rows (their first E columns: a wide table's too), the class token `cls` for each
// neighbourhood, zeros in the add_zero_attn slots, by one gather of EmbeddingKernels.cu; with
// `index`, also each position's table row there (int32 [R]; -1 class token, -2 zero slot).
// Undefined where it declines (and in builds without it).
// `indexOnly` (with `index`): the index alone, no tokens (undefined returned, *index set).
torch::Tensor assembleTokens(const torch::Tensor& table, const torch::Tensor& cls, const Batch& batch,
                             torch::Tensor* index = nullptr, bool indexOnly = false) {
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::int64_t E = cls.numel(), R = batch.order.size(0);
  if (!table.is_cuda() || !table.is_contiguous() || table.scalar_type() != torch::kBFloat16 || table.size(1) < E ||
      (indexOnly && !index))
    return {};
  const c10::cuda::CUDAGuard device(table.device());
  const torch::Tensor c = cls.reshape({E}).to(torch::kBFloat16).contiguous();
  torch::Tensor out = indexOnly ? torch::Tensor() : torch::empty({R, E}, table.options());
  if (index) *index = torch::empty({R}, table.options().dtype(torch::kInt32));
  if (!cuda::assembleTokensBf16(bits(table), bits(c), batch.rows.data_ptr<std::int64_t>(),
                                batch.order.data_ptr<std::int64_t>(), batch.rows.size(0), batch.reference.size(0), R,
                                static_cast<int>(E), indexOnly ? nullptr : mutableBits(out),
                                at::cuda::getCurrentCUDAStream(table.device().index()).stream(), table.size(1),
                                index ? index->data_ptr<int>() : nullptr)) {
    if (index) *index = torch::Tensor();
    return {};
  }
  return out;
#else
  (void)table;
  (void)cls;
  (void)batch;
  (void)index;
  (void)indexOnly;
  return {};
#endif
}
} // namespace

#ifdef ATLASCOPE_FUSED_KERNELS
namespace {

// Attention of each head over the packed sequences of `cuSeqlens` (int32, on the device), q, k
// and v read in place from one bf16 [R, 3E] projection, by ShortAttention.cu's kernel into a new
// [R, E]; undefined where the kernel declines.
torch::Tensor packedShortAttention(const torch::Tensor& qkv, const torch::Tensor& cuSeqlens, std::int64_t maxLength,
                                   std::int64_t heads, int variant = 0, std::int64_t zeroSlots = 0) {
  const c10::cuda::CUDAGuard device(qkv.device()); // the kernel runs on the current device
  const std::int64_t R = qkv.size(0), E = qkv.size(1) / 3, d = E / heads;
  torch::Tensor out = torch::empty({R, E}, qkv.options());
  const auto* base = bits(qkv);
  if (!cuda::shortAttentionBf16(base, base + E, base + 2 * E, 3 * E, cuSeqlens.data_ptr<int>(), cuSeqlens.size(0) - 1,
                                static_cast<int>(heads), static_cast<int>(d), maxLength,
                                static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), mutableBits(out), E,
                                at::cuda::getCurrentCUDAStream(qkv.device().index()).stream(), variant, zeroSlots))
    return {};
  return out;
}

// The attention benches' sequences: cumulative lengths until `rows` tokens, lengths uniform in
// [mean / 2, 3 mean / 2], or all `meanLength` where `exact` (the last one cut); maxLength gets the
// longest.
std::vector<int> benchSequences(std::int64_t rows, std::int64_t meanLength, std::int64_t& maxLength, bool exact) {
  const std::int64_t low = exact ? meanLength : std::max<std::int64_t>(1, meanLength / 2),
                     high = exact ? meanLength : std::max(low, 3 * meanLength / 2);
  const torch::Tensor draws = torch::randint(low, high + 1, {rows / low + 1}, torch::kInt64);
  std::vector<int> cu{0};
  const auto* dl = draws.data_ptr<std::int64_t>();
  maxLength = 0;
  for (std::int64_t i = 0; cu.back() < rows; ++i) {
    const std::int64_t n = std::min(dl[i], rows - cu.back());
    cu.push_back(static_cast<int>(cu.back() + n));
    maxLength = std::max(maxLength, n);
  }
  return cu;
}

// The benches' timing: ms per call of f over `iterations` calls after one warm-up call (which
// also takes cuBLASLt's search and a kernel's first launch out), between synchronisations; `last`
// gets the last output. Negative where f declines (an undefined output).
double msPerCall(int iterations, const std::function<torch::Tensor()>& f, torch::Tensor& last) {
  last = f();
  if (!last.defined()) return -1;
  torch::cuda::synchronize();
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) last = f();
  torch::cuda::synchronize();
  return 1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count() / iterations;
}

// A workspace of `bytes` (uint8) on x's device for the CUTLASS kernels (undefined: none needed).
torch::Tensor gemmWorkspace(const torch::Tensor& x, std::int64_t bytes) {
  return bytes > 0 ? torch::empty({bytes}, x.options().dtype(torch::kUInt8)) : torch::Tensor();
}

// A new bf16 [M, N] on `device` filled by one of GemmGelu.cu's kernels: launch(out, workspace,
// stream) with the kernels' shared workspace; undefined where it declines (not built, a width not a
// multiple of 8, misaligned).
template <class Launch>
torch::Tensor gemmInto(torch::Device device, std::int64_t M, std::int64_t N, std::int64_t K, const Launch& launch) {
  const c10::cuda::CUDAGuard guard(device); // the kernel runs on the current device
  const std::int64_t bytes = cuda::gemmBiasGeluWorkspace(M, static_cast<int>(N), static_cast<int>(K));
  if (M <= 0 || bytes < 0) return {};
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  torch::Tensor out = torch::empty({M, N}, o);
  const torch::Tensor workspace = gemmWorkspace(out, bytes);
  if (!launch(mutableBits(out), workspace.defined() ? workspace.data_ptr() : nullptr,
              at::cuda::getCurrentCUDAStream(device.index()).stream()))
    return {};
  return out;
}

// GELU(a W^T + b) (x W^T + b when `biasOnly`) for bf16 a [M, K] by GemmGelu.cu's CUTLASS kernel.
torch::Tensor gemmBiasGelu(const torch::Tensor& a, const torch::Tensor& w, const torch::Tensor& b, bool erff,
                           bool biasOnly = false, bool linComb = false) {
  const std::int64_t M = a.size(0), K = w.size(1), N = w.size(0);
  return gemmInto(a.device(), M, N, K, [&](std::uint16_t* out, void* ws, void* stream) {
    return biasOnly ? cuda::gemmBiasBf16(bits(a), bits(w), bits(b), out, M, static_cast<int>(N), static_cast<int>(K),
                                         ws, stream)
                    : cuda::gemmBiasGeluBf16(bits(a), bits(w), bits(b), out, M, static_cast<int>(N),
                                             static_cast<int>(K), ws, stream, erff, linComb);
  });
}

// LayerNorm while training on a GPU in bf16, by FusedKernels.cu: the forward and the input gradient
// one warp per row (ATen's kernels run a block per row, at a fraction of the memory bandwidth for
// E 384), the weight and bias gradients deterministic (ATen's kernel for them runs on cols / 32
// blocks below 64k rows: 2.5 ms of a 2-GPU step's 20 on the H200). ATen's operations where a
// kernel declines (another width, misaligned pointers).
//
// By default the weight and bias gradients are summed in the input gradient's pass over dy and x
// (layerNormBackwardBf16); `twoPass` (--unfused-layer-norm, the path before) reads them again in
// a kernel of their own.
//
// `gelu` (TrainLayerNorm's, the token MLP's GELU(LayerNorm), CellTransformer::lnGelu): the GELU in
// the forward kernel and its backward in the backward's, the LayerNorm's output recomputed there
// from what the backward reads anyway, where ATen's gelu and gelu_backward each read and wrote the
// [rows, 192] activations once more (0.07 ms of an 18 ms step on an H100, call s24-1's trace).
// Calls of the training LayerNorm's kernels that declined (ATen ran instead) in this process; the
// parity check fails where its own calls declined.
std::atomic<std::int64_t> gLayerNormDeclines{0};
// One-pass backwards that read their gradient in place as a column slice (checkTrainLayerNorm).
std::atomic<std::int64_t> gLayerNormInPlaceRuns{0};

void trainLayerNormForward(torch::autograd::AutogradContext* ctx, const torch::Tensor& in, const torch::Tensor& y,
                           const torch::Tensor& w, const torch::Tensor& b, double eps, bool twoPass, torch::Tensor& out,
                           bool gelu = false) {
  const c10::cuda::CUDAGuard guard(in.device());
  const std::vector<std::int64_t> shape{in.size(-1)};
  const std::int64_t N = in.size(-1), M = in.numel() / N;
  std::vector<std::int64_t> statShape = in.sizes().vec(); // as native_layer_norm's: [..., 1]
  statShape.back() = 1;
  out = torch::empty_like(in);
  torch::Tensor x = y.defined() ? torch::empty_like(in) : in; // with y: LayerNorm's input is in + y
  torch::Tensor mean = torch::empty(statShape, in.options().dtype(torch::kFloat32)), rstd = torch::empty_like(mean);
  if (!cuda::layerNormForwardBf16(bits(in), bits(w), bits(b), mutableBits(out), mean.data_ptr<float>(),
                                  rstd.data_ptr<float>(), M, static_cast<int>(N), static_cast<float>(eps),
                                  at::cuda::getCurrentCUDAStream(in.device().index()).stream(),
                                  y.defined() ? bits(y) : nullptr, y.defined() ? mutableBits(x) : nullptr, gelu)) {
    gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
    if (y.defined()) x = in + y;
    std::tie(out, mean, rstd) = at::native_layer_norm(x, shape, w, b, eps);
    if (gelu) out = at::gelu(out);
  }
  ctx->save_for_backward({x, w, b, mean, rstd});
  ctx->saved_data["two_pass"] = twoPass;
  ctx->saved_data["gelu"] = gelu;
}

// The column sums of the gradient TrainAddLayerNorm's backward wrote last (dx, the gradient of x + y
// and so of y), summed by its kernel as it wrote them (`--separate-bias-sums` off): y's producer
// (the output projection, the feed-forward's second layer) takes them as its bias gradient in
// biasGradient instead of reading dx again (8 of those passes, ~0.024 ms each, in a step at the
// released size). The entry holds dx itself, so that its storage cannot be reused while listed,
// and its version: biasGradient takes the sums only for those very bytes, unchanged (a view of dx
// shares its version counter; a copy lies elsewhere; an in-place ATen operation bumps the version,
// which a kernel writing through a raw pointer would not: none writes a gradient it was given).
// One entry, replaced by the next LayerNorm backward: y's producer runs between the two (autograd
// runs a device's backward nodes on one thread); an entry nobody takes holds its dx until then.
struct SummedGradient {
  torch::Tensor grad, sums;
  std::int64_t version = 0;
};
thread_local SummedGradient gSummedGradient;
std::atomic<std::int64_t> gSummedGradientUses{0};

// The sums of dy's columns if TrainAddLayerNorm's backward summed them as it wrote dy (see
// SummedGradient; then taken: undefined for a second ask), else undefined.
torch::Tensor takeSummedColumns(const torch::Tensor& dy) {
  SummedGradient& e = gSummedGradient;
  if (!e.grad.defined() || !dy.defined() || dy.dim() < 1 || !dy.is_contiguous() || !e.grad.is_contiguous() ||
      dy.data_ptr() != e.grad.data_ptr() || dy.numel() != e.grad.numel() || dy.size(-1) != e.grad.size(-1) ||
      dy.scalar_type() != e.grad.scalar_type() || e.grad._version() != e.version)
    return {};
  torch::Tensor sums = e.sums;
  e = SummedGradient();
  gSummedGradientUses.fetch_add(1, std::memory_order_relaxed);
  return sums;
}

// dx, dgamma, dbeta from the saved input, statistics and dy = grad (+ grad2, where defined: the
// output's second use, summed in the kernel). Either may be undefined (no gradient), not both.
// With saved_data "sum_dx" (TrainAddLayerNorm), the one-pass kernel also sums dx's columns for
// y's producer (SummedGradient).
torch::autograd::tensor_list trainLayerNormBackward(torch::autograd::AutogradContext* ctx, const torch::Tensor& grad,
                                                    const torch::Tensor& grad2 = {}) {
  const auto s = ctx->get_saved_variables();
  const torch::Tensor &x = s[0], &w = s[1], &b = s[2], &mean = s[3], &rstd = s[4];
  const std::vector<std::int64_t> shape{x.size(-1)};
  const std::int64_t N = x.size(-1), M = x.numel() / N;
  const c10::cuda::CUDAGuard guard(x.device());
  const bool onePass = !ctx->saved_data["two_pass"].toBool();
  const bool gelu = ctx->saved_data.count("gelu") && ctx->saved_data["gelu"].toBool();
  const torch::Tensor& g0 = grad.defined() ? grad : grad2;
  // A lone gradient that is a column slice of a wider one (cat's backward; in the model the token
  // MLP's half of proj_norm's gradient) read in place by the one-pass kernel, rows dyStride apart
  // (setFusedTokenRows: any 2-D row-strided gradient of ln() and normalize()); anything else
  // contiguous, as the kernels read it.
  const bool inPlace = onePass && ctx->saved_data.count("strided_grad") && ctx->saved_data["strided_grad"].toBool() &&
                       !(grad.defined() && grad2.defined()) && g0.dim() == 2 && g0.size(0) == M && g0.size(1) == N &&
                       g0.stride(1) == 1 && g0.stride(0) >= N && g0.stride(0) % 2 == 0 &&
                       reinterpret_cast<std::uintptr_t>(g0.data_ptr()) % 4 == 0;
  torch::Tensor dy = inPlace ? g0 : g0.contiguous();
  const std::int64_t dyStride = inPlace ? g0.stride(0) : N;
  const torch::Tensor dy2 = grad.defined() && grad2.defined() ? grad2.contiguous() : torch::Tensor();
  void* stream = at::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const torch::Tensor m32 = mean.to(torch::kFloat32).contiguous(), r32 = rstd.to(torch::kFloat32).contiguous();
  torch::Tensor dx = torch::empty(x.sizes(), x.options()), dw = torch::empty_like(w), db = torch::empty_like(b);
  if (onePass) {
    const bool sumDx = ctx->saved_data.count("sum_dx") && ctx->saved_data["sum_dx"].toBool();
    const int blocks = cuda::layerNormBackwardBlocks(M, static_cast<int>(N), gelu);
    const torch::Tensor partial = torch::empty({(sumDx ? 3 : 2) * blocks * N}, dy.options().dtype(torch::kFloat32));
    torch::Tensor dsum = sumDx ? torch::empty_like(b) : torch::Tensor();
    gSummedGradient = SummedGradient(); // the last one's producer has run (or never asks)
    if (cuda::layerNormBackwardBf16(bits(dy), bits(x), bits(w), m32.data_ptr<float>(), r32.data_ptr<float>(),
                                    mutableBits(dx), partial.data_ptr<float>(), mutableBits(dw), mutableBits(db), M,
                                    static_cast<int>(N), stream, dy2.defined() ? bits(dy2) : nullptr, dyStride,
                                    sumDx ? mutableBits(dsum) : nullptr, gelu ? bits(b) : nullptr)) {
      if (inPlace && dyStride != N) gLayerNormInPlaceRuns.fetch_add(1, std::memory_order_relaxed);
      if (sumDx) gSummedGradient = {dx, dsum, dx._version()};
      return {dx, dw, db};
    }
    gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
    dy = dy.contiguous();
  }
  // GELU's backward on the LayerNorm's output recomputed (the two-pass path, or a one-pass kernel
  // that declined): as the forward kernel's to float rounding (ATen's multiply and add round apart
  // where the kernel's fused multiply-add rounds once), so a bf16 of it may differ by one step.
  if (gelu)
    dy = at::gelu_backward(
        dy.contiguous(),
        ((x.to(torch::kFloat32) - m32) * r32 * w.to(torch::kFloat32) + b.to(torch::kFloat32)).to(x.scalar_type()));
  if (dy2.defined()) dy = dy + dy2;
  if (!cuda::layerNormBackwardInputBf16(bits(dy), bits(x), bits(w), m32.data_ptr<float>(), r32.data_ptr<float>(),
                                        mutableBits(dx), M, static_cast<int>(N), stream)) {
    gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
    dx = std::get<0>(at::native_layer_norm_backward(dy, x, shape, mean, rstd, w, b, {true, false, false}));
  }
  const int slices = cuda::gammaBetaSlices(M, static_cast<int>(N));
  torch::Tensor partial = torch::empty({2 * slices * N}, dy.options().dtype(torch::kFloat32));
  if (!cuda::layerNormGammaBetaBackwardBf16(bits(dy), bits(x), m32.data_ptr<float>(), r32.data_ptr<float>(),
                                            partial.data_ptr<float>(), mutableBits(dw), mutableBits(db), M,
                                            static_cast<int>(N), stream)) {
    gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
    auto full = at::native_layer_norm_backward(dy, x, shape, mean, rstd, w, b, {false, true, true});
    dw = std::get<1>(full);
    db = std::get<2>(full);
  }
  return {dx, dw, db};
}

// stridedGrad: a gradient that is a column slice of a wider one is read in place (trainLayerNormBackward).
// gelu: GELU(LayerNorm(x)) (trainLayerNormForward).
struct TrainLayerNorm : torch::autograd::Function<TrainLayerNorm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double eps, bool twoPass, bool stridedGrad, bool gelu) {
    torch::Tensor out;
    trainLayerNormForward(ctx, x, torch::Tensor(), w, b, eps, twoPass, out, gelu);
    ctx->saved_data["strided_grad"] = stridedGrad;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto g = trainLayerNormBackward(ctx, grads[0]);
    return {g[0], g[1], g[2], torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// LayerNorm(x + y) of the residual stream, the add in LayerNorm's forward kernel (ATen's add wrote
// the sum and LayerNorm read it back). Two outputs with the same values (the second a view of the
// first): the layer's branch reads one and the next residual add the other, so that their
// gradients reach the backward apart and are summed in its kernel, where autograd's add summed
// them in a pass of its own. The sum's gradient is both inputs' (the same tensor, as ATen's
// AddBackward returns).
// sumGrad: the backward's kernel also sums the input gradient's columns for y's producer
// (SummedGradient).
struct TrainAddLayerNorm : torch::autograd::Function<TrainAddLayerNorm> {
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                              const torch::Tensor& y, const torch::Tensor& w, const torch::Tensor& b,
                                              double eps, bool sumGrad) {
    ctx->set_materialize_grads(false); // an unused output's gradient stays undefined (no zeros)
    torch::Tensor out;
    trainLayerNormForward(ctx, x, y, w, b, eps, false, out);
    ctx->saved_data["sum_dx"] = sumGrad;
    return {out, out.view_as(out)};
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined() && !grads[1].defined()) return {{}, {}, {}, {}, {}, {}};
    const auto g = trainLayerNormBackward(ctx, grads[0], grads[1]);
    return {g[0], g[0], g[1], g[2], torch::Tensor(), torch::Tensor()};
  }
};

// dy's column sums (a bias gradient) into db (a contiguous bf16 [cols]; undefined: a new one) by
// FusedKernels.cu; with `h`, GELU's backward first, its result written to dh. False: nothing done
// (the caller uses ATen). Measured and not kept (H200, call s14-1 of
// docs/bench/gpu-train-epilogue-trees-2026-12-04.jsonl): the weight-gradient products with
// cuBLASLt's BGRADB epilogue, meant to sum the bias gradient from the dy their main loop reads
// (as Transformer Engine's): cuBLASLt ran the sums as a kernel of its own after the product
// (globalKernelBgradAB_v2, 1.57 ms a step for 17 calls against 0.95 ms for these 30), and `bench
// gemm-gelu --train` measured the feed-forward's forward + backward at 1.870 ms against 1.759.
bool biasGradient(const torch::Tensor& dy, const torch::Tensor& h, torch::Tensor& dh, torch::Tensor& db) {
  const std::int64_t M = dy.size(0);
  const int N = static_cast<int>(dy.size(1));
  if (!h.defined())
    if (const torch::Tensor summed = takeSummedColumns(dy); summed.defined() && summed.numel() == N) {
      if (db.defined())
        db.copy_(summed);
      else
        db = summed;
      return true;
    }
  const int slices = cuda::biasGradSlices(M, N);
  torch::Tensor partial = torch::empty({static_cast<std::int64_t>(slices) * N}, dy.options().dtype(torch::kFloat32));
  if (!db.defined()) db = torch::empty({N}, dy.options());
  void* stream = at::cuda::getCurrentCUDAStream(dy.device().index()).stream();
  if (!h.defined()) return cuda::biasGradBf16(bits(dy), partial.data_ptr<float>(), mutableBits(db), M, N, stream);
  dh = torch::empty_like(dy);
  return cuda::geluBackwardBiasGradBf16(bits(dy), bits(h), mutableBits(dh), partial.data_ptr<float>(), mutableBits(db),
                                        M, N, stream);
}

// {dh, db}: with `h`, GELU's backward dh = GELU'(h) o dy, else dh = dy; db = dh's column sums. By
// biasGradient, or ATen's gelu_backward and sum where it declines.
std::pair<torch::Tensor, torch::Tensor> geluBiasBackward(const torch::Tensor& dy, const torch::Tensor& h) {
  torch::Tensor dh = dy, db;
  if (!biasGradient(dy, h, dh, db)) {
    dh = h.defined() ? at::gelu_backward(dy, h) : dy;
    db = dh.sum(0);
  }
  return {dh, db};
}

// The bias gradient and GELU's backward of a training step's linear layer (bf16, on a GPU): ATen's
// linear backward sums the bias gradient with a generic reduction (68 of them, 2.7 ms of a 31 ms
// step), and GELU's backward writes dh for that reduction to read back. Forward: ATen's addmm
// (cuBLASLt's bias epilogue) and erf GELU, the same numbers as torch::linear and torch::gelu.
struct TrainLinear : torch::autograd::Function<TrainLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, bool gelu) {
    const torch::Tensor x2 = x.reshape({-1, x.size(-1)});
    const torch::Tensor h = at::addmm(b, x2, w.t());
    std::vector<std::int64_t> shape = x.sizes().vec();
    shape.back() = w.size(0);
    ctx->saved_data["shape"] = x.sizes().vec();
    ctx->saved_data["gelu"] = gelu;
    if (!gelu) {
      ctx->save_for_backward({x2, w});
      return h.view(shape);
    }
    ctx->save_for_backward({x2, w, h});
    return at::gelu(h).view(shape);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &x2 = s[0], &w = s[1];
    const bool gelu = ctx->saved_data["gelu"].toBool();
    const torch::Tensor dy = grads[0].reshape({-1, w.size(0)}).contiguous();
    const auto [dh, db] = geluBiasBackward(dy, gelu ? s[2] : torch::Tensor());
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) dx = inputGradient(dh, w).view(ctx->saved_data["shape"].toIntVector());
    if (ctx->needs_input_grad(1)) dw = dh.t().mm(x2);
    return {dx, dw, db, torch::Tensor()};
  }
};

// Training's feed-forward, GELU(x W1^T + b1) W2^T + b2, with the GELU and its gradient in the
// epilogues of CUTLASS GEMMs (GemmGeluTraining.cu): the forward's first product also writes the
// pre-activation h that the backward needs; the backward's product dy W2 applies GELU'(h) on its
// way out (then the first bias's gradient by its kernel). Unfused (TrainLinear twice), h was
// written, read by ATen's GELU, dy W2 written and read back with h by the GELU-gradient kernel:
// 3.3 ms of a 23.8 ms step over [R, 2048]. The fused form saves less than that traffic suggests
// (1.04x on the feed-forward, GemmGeluTraining.cu says why). Where a kernel declines (not built,
// misaligned), the same steps by cuBLASLt and FusedKernels.cu, as TrainLinear, counted in
// gFeedForwardDeclines (CellTransformer::fusedFeedForwardDeclines).
std::atomic<std::int64_t> gFeedForwardDeclines{0};
// Inference's GEMM + GELU calls that declined (ATen's linear and gelu ran instead), so that a
// comparison of two epilogues (checkSameBits) cannot pass by running ATen in both arms.
std::atomic<std::int64_t> gGemmGeluDeclines{0};
// Backwards whose first bias gradient was to come from the weight gradient's product
// (weightBiasGradBf16) but did not (cuBLASLt missing or declining): the product and the pass of its
// own ran instead.
std::atomic<std::int64_t> gBiasInProductDeclines{0};

struct TrainFeedForward : torch::autograd::Function<TrainFeedForward> {
  // linComb: the epilogues before their trees (CellTransformer::setLinCombGelu). biasInProduct: the
  // first layer's bias gradient by the weight gradient's product (CellTransformer::setBiasGradInProduct).
  // storedGrad: the forward stores GELU'(h) for the backward instead of h (setStoredGeluGrad).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w1,
                               const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2, bool linComb,
                               bool biasInProduct, bool storedGrad) {
    const c10::cuda::CUDAGuard guard(x.device()); // the kernels run on the current device
    const std::int64_t E = w1.size(1), F = w1.size(0);
    const torch::Tensor x2 = x.reshape({-1, E}).contiguous();
    const std::int64_t R = x2.size(0);
    // h: the pre-activation, or with storedGrad (where the kernel ran) GELU'(h).
    torch::Tensor h = torch::empty({R, F}, x2.options()), g = torch::empty_like(h);
    const std::int64_t bytes = cuda::gemmGeluTrainingWorkspace(R, static_cast<int>(F), static_cast<int>(E));
    const torch::Tensor ws = gemmWorkspace(x2, bytes);
    storedGrad = storedGrad && !linComb;
    if (bytes < 0 ||
        !cuda::gemmBiasGeluAuxBf16(bits(x2), bits(w1), bits(b1), mutableBits(g), mutableBits(h), R, static_cast<int>(F),
                                   static_cast<int>(E), ws.defined() ? ws.data_ptr() : nullptr,
                                   at::cuda::getCurrentCUDAStream(x2.device().index()).stream(), linComb, storedGrad)) {
      gFeedForwardDeclines.fetch_add(1, std::memory_order_relaxed);
      h = at::addmm(b1, x2, w1.t());
      g = at::gelu(h);
      storedGrad = false;
    }
    ctx->save_for_backward({x2, w1, w2, h, g});
    ctx->saved_data["shape"] = x.sizes().vec();
    ctx->saved_data["linComb"] = linComb;
    ctx->saved_data["biasInProduct"] = biasInProduct;
    ctx->saved_data["storedGrad"] = storedGrad;
    std::vector<std::int64_t> shape = x.sizes().vec();
    shape.back() = w2.size(0);
    return at::addmm(b2, g, w2.t()).view(shape);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &x2 = s[0], &w1 = s[1], &w2 = s[2], &h = s[3], &g = s[4];
    const c10::cuda::CUDAGuard guard(x2.device());
    const std::int64_t E = w2.size(0), F = w2.size(1), R = x2.size(0);
    const torch::Tensor dy = grads[0].reshape({R, E}).contiguous();
    torch::Tensor db2, dw2;
    if (ctx->needs_input_grad(4)) db2 = geluBiasBackward(dy, torch::Tensor()).second;
    if (ctx->needs_input_grad(3)) dw2 = dy.t().mm(g);
    torch::Tensor dh = torch::empty({R, F}, dy.options()), db1 = torch::empty({F}, dy.options());
    const std::int64_t bytes = cuda::gemmGeluTrainingWorkspace(R, static_cast<int>(F), static_cast<int>(E));
    const torch::Tensor ws = gemmWorkspace(dy, bytes);
    const auto stream = at::cuda::getCurrentCUDAStream(dy.device().index()).stream();
    // db1 by dW1's product, where both are wanted; the GELU-gradient product then leaves it out.
    bool inProduct = ctx->saved_data["biasInProduct"].toBool() && ctx->needs_input_grad(1) && ctx->needs_input_grad(2);
    const bool storedGrad = ctx->saved_data["storedGrad"].toBool();
    if (bytes < 0 ||
        !cuda::gemmGeluGradBf16(bits(dy), bits(w2), bits(h), mutableBits(dh), inProduct ? nullptr : mutableBits(db1), R,
                                static_cast<int>(F), static_cast<int>(E), ws.defined() ? ws.data_ptr() : nullptr,
                                stream, ctx->saved_data["linComb"].toBool(), storedGrad)) {
      gFeedForwardDeclines.fetch_add(1, std::memory_order_relaxed);
      // (With storedGrad, h holds GELU'(h): the bf16 product rounds as the kernel's epilogue.)
      std::tie(dh, db1) =
          storedGrad ? geluBiasBackward(dy.mm(w2).mul(h), torch::Tensor()) : geluBiasBackward(dy.mm(w2), h);
      inProduct = false;
    }
    torch::Tensor dx, dw1;
    if (ctx->needs_input_grad(0)) dx = inputGradient(dh, w1).view(ctx->saved_data["shape"].toIntVector());
    if (inProduct) {
      dw1 = torch::empty({F, E}, dh.options());
      const std::int64_t wsBytes = cuda::weightBiasGradWorkspace();
      const torch::Tensor lt = gemmWorkspace(dh, wsBytes);
      if (!cuda::weightBiasGradBf16(bits(dh), bits(x2), mutableBits(dw1), mutableBits(db1), R, static_cast<int>(F),
                                    static_cast<int>(E), lt.data_ptr(), wsBytes, stream)) {
        gBiasInProductDeclines.fetch_add(1, std::memory_order_relaxed);
        dw1 = dh.t().mm(x2);
        db1 = geluBiasBackward(dh, torch::Tensor()).second;
      }
    } else if (ctx->needs_input_grad(1)) {
      dw1 = dh.t().mm(x2);
    }
    return {dx, dw1, db1, dw2, db2, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The q, k and v projections of packed tokens by row blocks of in_proj (three products, so that
// the flash backward's dq, dk, dv reach them directly), with a backward that writes the weight and
// bias gradients of the three blocks into one [3E, E] and one [3E] tensor and accumulates dx in
// the products (beta 1): through narrow() views each block's gradient was a zero-filled full-size
// tensor plus a copy, summed twice, and dx two sums of [R, E].
//
// `zeroRows` (defined: packed training batches) are add_zero_attn's slots: their k and v rows are
// set to zero here, and their gradients dropped in the backward. Zero-filled in place after the
// function, each fill's backward cloned the whole [R, E] gradient to zero those rows (8 copies,
// 0.32 ms of a 20 ms step at the released size).
struct QkvProjection : torch::autograd::Function<QkvProjection> {
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                              const torch::Tensor& w, const torch::Tensor& b,
                                              const torch::Tensor& zeroRows) {
    const std::int64_t E = w.size(1);
    ctx->save_for_backward({x, w, zeroRows});
    torch::autograd::tensor_list out;
    for (int i = 0; i < 3; ++i) out.push_back(at::addmm(b.narrow(0, i * E, E), x, w.narrow(0, i * E, E).t()));
    if (zeroRows.defined())
      for (int i = 1; i < 3; ++i) out[static_cast<std::size_t>(i)].index_fill_(0, zeroRows, 0);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &x = s[0], &w = s[1], &zeroRows = s[2];
    const std::int64_t E = w.size(1);
    torch::Tensor dx, dw = torch::empty_like(w), db = torch::empty({3 * E}, w.options());
    for (int i = 0; i < 3; ++i) {
      torch::Tensor g = grads[static_cast<std::size_t>(i)].defined() ? grads[static_cast<std::size_t>(i)].contiguous()
                                                                     : torch::zeros({x.size(0), E}, x.options());
      // In place: this function is the gradient's only reader (the attention's backward made it
      // for this k or v alone).
      if (i > 0 && zeroRows.defined() && grads[static_cast<std::size_t>(i)].defined()) g.index_fill_(0, zeroRows, 0);
      if (ctx->needs_input_grad(0))
        dx = dx.defined() ? dx.addmm_(g, w.narrow(0, i * E, E)) : g.mm(w.narrow(0, i * E, E));
      torch::Tensor block = dw.narrow(0, i * E, E), part = db.narrow(0, i * E, E), unused;
      at::mm_out(block, g.t(), x);
      if (!biasGradient(g, torch::Tensor(), unused, part)) part.copy_(g.sum(0));
    }
    return {dx, dw, db, torch::Tensor()};
  }
};

// Training's q, k and v as one [R, 3E] product (PackedQkvAttention reads its thirds in place,
// rows 3E apart, and writes their gradients into one [R, 3E] tensor): the backward's input
// gradient is one product over K = 3E, the weight gradient one [3E, E] product and the bias
// gradient one reduction, where QkvProjection ran three of each (two of the input gradient's with
// beta 1, re-reading [R, E] each time). add_zero_attn's k and v rows zeroed here, their gradients
// dropped in the backward, as QkvProjection.
// The packed projection's forward: q|k|v = x W^T + b, add_zero_attn's k and v rows zeroed.
torch::Tensor projectQkv(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                         const torch::Tensor& zeroRows) {
  const std::int64_t E = w.size(1);
  torch::Tensor qkv = at::addmm(b, x, w.t());
  if (zeroRows.defined()) qkv.narrow(1, E, 2 * E).index_fill_(0, zeroRows, 0);
  return qkv;
}

// Its backward from the [R, 3E] gradient g, for the inputs x, w, b (0, 1, 2) that need one. `db`
// defined: the bias gradient, already summed with the slots' k and v gradients zero in g;
// otherwise the slots' rows of g are zeroed here, in place (the attention's backward made g for
// this projection alone), and the bias gradient summed.
torch::autograd::tensor_list projectQkvBackward(torch::autograd::AutogradContext* ctx, torch::Tensor& g,
                                                const torch::Tensor& x, const torch::Tensor& w,
                                                const torch::Tensor& zeroRows, torch::Tensor db = {}) {
  const std::int64_t E = w.size(1);
  if (!db.defined()) {
    if (zeroRows.defined()) g.narrow(1, E, 2 * E).index_fill_(0, zeroRows, 0);
    torch::Tensor unused;
    if (ctx->needs_input_grad(2) && !biasGradient(g, torch::Tensor(), unused, db)) db = g.sum(0);
  }
  torch::Tensor dx, dw;
  if (ctx->needs_input_grad(0)) dx = inputGradient(g, w);
  if (ctx->needs_input_grad(1)) dw = g.t().mm(x);
  return {dx, dw, db};
}

struct PackedQkvProjection : torch::autograd::Function<PackedQkvProjection> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, const torch::Tensor& zeroRows) {
    ctx->save_for_backward({x, w, zeroRows});
    return projectQkv(x, w, b, zeroRows);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    torch::Tensor g = grads[0].contiguous();
    auto d = projectQkvBackward(ctx, g, s[0], s[1], s[2]);
    d.push_back(torch::Tensor());
    return d;
  }
};
} // namespace
#endif

torch::Tensor CellTransformer::trainLn(const torch::Tensor& x, const std::string& prefix, bool gelu) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fused_ && x.is_cuda() && compute_ == torch::kBFloat16 && at::GradMode::is_enabled() &&
      (!gelu || (fusedLayerNorm_ && fusedNormGelu_))) {
    const torch::Tensor& w = P(prefix + ".weight");
    const torch::Tensor& b = P(prefix + ".bias");
    if (w.scalar_type() == torch::kBFloat16 && b.scalar_type() == torch::kBFloat16 && w.is_contiguous() &&
        b.is_contiguous())
      return TrainLayerNorm::apply(x.to(compute_).contiguous(), w, b, 1e-5, !fusedLayerNorm_, fusedTokenRows_, gelu);
  }
#else
  (void)x;
  (void)prefix;
  (void)gelu;
#endif
  return {};
}

torch::Tensor CellTransformer::ln(const torch::Tensor& x, const std::string& prefix) const {
  if (torch::Tensor y = trainLn(x, prefix, false); y.defined()) return y;
  return torch::layer_norm(x.to(compute_), {x.size(-1)}, P(prefix + ".weight"), P(prefix + ".bias"), 1e-5);
}

torch::Tensor CellTransformer::lnGelu(const torch::Tensor& x, const std::string& prefix) const {
  if (torch::Tensor y = trainLn(x, prefix, true); y.defined()) return y;
  return torch::gelu(ln(x, prefix));
}

torch::Tensor CellTransformer::normalize(const torch::Tensor& x) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  // Training on a GPU in bf16: the kernels of ln() with a weight of ones and a bias of zeros (the
  // same products, 1 x + 0), where ATen's LayerNorm runs a block per row forward and backward
  // (0.16 and 0.12 ms over the released model's ~90k packed rows, against ~0.04 and ~0.05).
  if (fused_ && fusedPoolNorm_ && x.is_cuda() && compute_ == torch::kBFloat16 && at::GradMode::is_enabled()) {
    const auto o = x.options().dtype(torch::kBFloat16);
    return TrainLayerNorm::apply(x.to(compute_).contiguous(), torch::ones({x.size(-1)}, o),
                                 torch::zeros({x.size(-1)}, o), 1e-5, !fusedLayerNorm_, fusedTokenRows_, false);
  }
#endif
  return torch::layer_norm(x.to(compute_), {x.size(-1)}, {}, {}, 1e-5);
}

#ifdef ATLASCOPE_FUSED_KERNELS
namespace {
// The attention backward's load order (cuda::setAttentionBackwardLoadsLate, process-wide) for one
// check or bench path, the order before put back however the scope ends.
class AttentionLoadsLate {
public:
  explicit AttentionLoadsLate(bool late) : before_(cuda::attentionBackwardLoadsLate()) {
    cuda::setAttentionBackwardLoadsLate(late);
  }
  ~AttentionLoadsLate() { cuda::setAttentionBackwardLoadsLate(before_); }
  AttentionLoadsLate(const AttentionLoadsLate&) = delete;
  AttentionLoadsLate& operator=(const AttentionLoadsLate&) = delete;

private:
  bool before_;
};

// The largest difference(a[i], b[i]) over the pairs [from, to): 1 for a pair with an undefined
// tensor (a gradient missing), -1 where the lists differ in length; a NaN stays (keepWorst).
template <class Difference>
double worstOverPairs(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, std::size_t from,
                      std::size_t to, Difference difference) {
  if (a.size() != b.size()) return -1;
  double worst = 0;
  for (std::size_t i = from; i < std::min(to, a.size()); ++i)
    keepWorst(worst, a[i].defined() && b[i].defined() ? difference(a[i], b[i]) : 1.0);
  return worst;
}
double worstRelativeDifference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                               std::size_t from = 0) {
  return worstOverPairs(a, b, from, a.size(), largestRelativeDifference);
}
// The largest absolute difference over the first `count` pairs (all by default; 0: the same bits).
double worstAbsoluteDifference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                               std::size_t count = std::numeric_limits<std::size_t>::max()) {
  return worstOverPairs(a, b, 0, count, [](const torch::Tensor& x, const torch::Tensor& y) {
    return (x.to(torch::kFloat32) - y.to(torch::kFloat32)).abs().max().item<double>();
  });
}
} // namespace
#endif

double CellTransformer::checkTrainLayerNorm(torch::Device device, std::int64_t rows, int cols) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda()) return -1;
  torch::manual_seed(7);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  double worst = 0;
  // Whole blocks of rows and ragged ones, and fewer rows than one block's warps.
  for (const std::int64_t m : {rows, rows + 5, std::int64_t{3}}) {
    const torch::Tensor x0 = torch::randn({m, cols}, o), r0 = torch::randn({m, cols}, o) * 2 + 0.5,
                        dy = torch::randn({m, cols}, o), dy2 = torch::randn({m, cols}, o);
    const torch::Tensor w0 = 1 + 0.1 * torch::randn({cols}, o), b0 = 0.1 * torch::randn({cols}, o);
    // path 0: ATen; 1: two passes; 2: one pass; 3: ATen's add + layer_norm, its output used twice
    // (a branch and the residual: two gradients); 4: TrainAddLayerNorm's two outputs; 5: ATen's
    // add + layer_norm used once; 6: TrainAddLayerNorm with its second output unused (the last
    // layers'); 7: one pass whose gradient is a column slice of a wider one (8 columns in, as the
    // token MLP's LayerNorm's under proj_norm's cat), read in place, against 2; 8: GELU(LayerNorm)
    // in one pass (lnGelu) and 10 in two passes (GELU's backward by ATen), against 9: ATen's gelu
    // of ATen's layer_norm.
    auto grads = [&](int path) {
      const bool add = path >= 3 && path <= 6, twice = path == 3 || path == 4;
      torch::Tensor x = x0.clone().requires_grad_(true), r = r0.clone().requires_grad_(add),
                    w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
      torch::Tensor y, second;
      if (path == 4 || path == 6) {
        const auto both = TrainAddLayerNorm::apply(x, r, w, b, 1e-5, false);
        y = both[0];
        second = both[1];
      } else {
        y = path == 0                ? torch::layer_norm(x, {cols}, w, b, 1e-5)
            : path == 3 || path == 5 ? torch::layer_norm(x + r, {cols}, w, b, 1e-5)
            : path == 9
                ? torch::gelu(torch::layer_norm(x, {cols}, w, b, 1e-5))
                : TrainLayerNorm::apply(x, w, b, 1e-5, path == 1 || path == 10, path == 7, path == 8 || path == 10);
        second = y;
      }
      torch::Tensor loss = path == 7 ? (torch::cat({torch::zeros({m, 8}, o), y}, 1).to(torch::kFloat32) *
                                        torch::cat({dy2.narrow(1, 0, 8), dy}, 1).to(torch::kFloat32))
                                           .sum()
                                     : (y.to(torch::kFloat32) * dy.to(torch::kFloat32)).sum();
      if (twice) loss = loss + (second.to(torch::kFloat32) * dy2.to(torch::kFloat32)).sum();
      loss.backward();
      std::vector<torch::Tensor> out{y, x.grad(), w.grad(), b.grad()};
      if (add) out.push_back(r.grad());
      return out;
    };
    for (const auto& [path, reference] : {std::pair{1, 0}, std::pair{2, 0}, std::pair{4, 3}, std::pair{6, 5},
                                          std::pair{7, 2}, std::pair{8, 9}, std::pair{10, 9}}) {
      const std::int64_t declines = gLayerNormDeclines.load(), inPlace = gLayerNormInPlaceRuns.load();
      const auto a = grads(path);
      if (gLayerNormDeclines.load() != declines) return 1.0;                // ATen ran: the kernels were not checked
      if (path == 7 && gLayerNormInPlaceRuns.load() == inPlace) return 1.0; // the slice was copied
      const auto e = grads(reference);
      if (a.size() != e.size()) return 1.0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].defined() || !e[i].defined()) return 1.0; // a gradient missing
        // The slice read in place: the same kernel on the same values, so the same bits.
        if (path == 7 && !torch::equal(a[i], e[i])) return 1.0;
        keepWorst(worst, largestRelativeDifference(a[i], e[i]));
      }
    }
  }
  return worst;
#else
  (void)device;
  (void)rows;
  (void)cols;
  return -1;
#endif
}

CellTransformer::NormBiasSumsCheck CellTransformer::checkNormBiasSums(torch::Device device, std::int64_t rows,
                                                                      int cols) {
  NormBiasSumsCheck r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda()) return r;
  torch::manual_seed(9);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor a0 = torch::randn({rows, cols}, o), x0 = torch::randn({rows, cols}, o),
                      wl0 = torch::randn({cols, cols}, o) * 0.05, bl0 = torch::randn({cols}, o) * 0.1,
                      dy = torch::randn({rows, cols}, o), dy2 = torch::randn({rows, cols}, o);
  const torch::Tensor w0 = 1 + 0.1 * torch::randn({cols}, o), b0 = 0.1 * torch::randn({cols}, o);
  // LayerNorm(x + (a Wl^T + bl)) with both outputs used (a layer's branch and the residual), as the
  // encoder's: the linear's bias gradient summed by the LayerNorm's kernel or by its own pass.
  auto grads = [&](bool sum) {
    torch::Tensor a = a0.clone().requires_grad_(true), x = x0.clone().requires_grad_(true),
                  wl = wl0.clone().requires_grad_(true), bl = bl0.clone().requires_grad_(true),
                  w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    const auto both = TrainAddLayerNorm::apply(x, TrainLinear::apply(a, wl, bl, false), w, b, 1e-5, sum);
    ((both[0].to(torch::kFloat32) * dy.to(torch::kFloat32)).sum() +
     (both[1].to(torch::kFloat32) * dy2.to(torch::kFloat32)).sum())
        .backward();
    return std::vector<torch::Tensor>{a.grad(), x.grad(), wl.grad(), w.grad(), b.grad(), bl.grad()};
  };
  const std::int64_t uses = gSummedGradientUses.load();
  const auto now = grads(true);
  r.used = gSummedGradientUses.load() > uses;
  const auto before = grads(false);
  r.sameGradients = worstAbsoluteDifference(now, before, 5);
  r.biasRelative = largestRelativeDifference(now[5], before[5]);
#else
  (void)device;
  (void)rows;
  (void)cols;
#endif
  return r;
}

std::int64_t CellTransformer::summedGradientUses() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gSummedGradientUses.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

double CellTransformer::checkTrainLinear(torch::Device device, std::int64_t rows, int in, int out) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda()) return -1;
  torch::manual_seed(8);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor x0 = torch::randn({rows, in}, o), w0 = torch::randn({out, in}, o) * (1.0 / std::sqrt(in));
  const torch::Tensor b0 = 0.1 * torch::randn({out}, o), dy = torch::randn({rows, out}, o);
  const torch::Tensor w3 = torch::randn({3 * in, in}, o) * (1.0 / std::sqrt(in)), b3 = 0.1 * torch::randn({3 * in}, o);
  const torch::Tensor dy3 = torch::randn({rows, 3 * in}, o);
  double worst = 0;
  auto compare = [&worst](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& e) {
    for (std::size_t i = 0; i < a.size(); ++i) keepWorst(worst, largestRelativeDifference(a[i], e[i]));
  };
  for (const bool gelu : {false, true}) {
    auto grads = [&](bool fused) {
      torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
                    b = b0.clone().requires_grad_(true);
      torch::Tensor y = fused ? TrainLinear::apply(x, w, b, gelu) : torch::linear(x, w, b);
      if (!fused && gelu) y = torch::gelu(y);
      (y.to(torch::kFloat32) * dy.to(torch::kFloat32)).sum().backward();
      return std::vector<torch::Tensor>{y, x.grad(), w.grad(), b.grad()};
    };
    compare(grads(true), grads(false));
  }
  auto qkv = [&](bool fused) {
    torch::Tensor x = x0.clone().requires_grad_(true), w = w3.clone().requires_grad_(true),
                  b = b3.clone().requires_grad_(true);
    std::vector<torch::Tensor> y;
    // add_zero_attn's slots: every 7th row's k and v zeroed (in the function, or by ATen's fill).
    const torch::Tensor zeroRows =
        torch::arange(0, x.size(0), 7, torch::TensorOptions().dtype(torch::kInt64).device(device));
    if (fused) {
      y = QkvProjection::apply(x, w, b, zeroRows);
    } else {
      for (int i = 0; i < 3; ++i) y.push_back(torch::linear(x, w.narrow(0, i * in, in), b.narrow(0, i * in, in)));
      for (int i = 1; i < 3; ++i) y[static_cast<std::size_t>(i)].index_fill_(0, zeroRows, 0);
    }
    (torch::cat(y, 1).to(torch::kFloat32) * dy3.to(torch::kFloat32)).sum().backward();
    return std::vector<torch::Tensor>{torch::cat(y, 1), x.grad(), w.grad(), b.grad()};
  };
  const auto reference = qkv(false);
  compare(qkv(true), reference);
  {
    // The one [R, 3E] product (PackedQkvProjection) with the same zeroed rows.
    torch::Tensor x = x0.clone().requires_grad_(true), w = w3.clone().requires_grad_(true),
                  b = b3.clone().requires_grad_(true);
    const torch::Tensor zeroRows =
        torch::arange(0, x.size(0), 7, torch::TensorOptions().dtype(torch::kInt64).device(device));
    const torch::Tensor y = PackedQkvProjection::apply(x, w, b, zeroRows);
    (y.to(torch::kFloat32) * dy3.to(torch::kFloat32)).sum().backward();
    compare({y, x.grad(), w.grad(), b.grad()}, reference);
  }
  return worst;
#else
  (void)device;
  (void)rows;
  (void)in;
  (void)out;
  return -1;
#endif
}

CellTransformer::TrainFeedForwardCheck CellTransformer::checkTrainFeedForward([[maybe_unused]] torch::Device device,
                                                                              [[maybe_unused]] std::int64_t rows,
                                                                              [[maybe_unused]] int in,
                                                                              [[maybe_unused]] int hidden) {
  TrainFeedForwardCheck r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || !cuda::gemmBiasGeluBuilt()) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(9);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  // As trained layers: unit-scale inputs, weights at 1/sqrt(fan-in), pre-activations around 1.
  const std::vector<torch::Tensor> leaves0{
      torch::randn({rows, in}, o), torch::randn({hidden, in}, o) * (1.0 / std::sqrt(in)),
      0.1 * torch::randn({hidden}, o), torch::randn({in, hidden}, o) * (1.0 / std::sqrt(hidden)),
      0.1 * torch::randn({in}, o)};
  const torch::Tensor dy = torch::randn({rows, in}, o);
  // path 0: float32 with autograd (the reference); 1: TrainLinear twice; 2: TrainFeedForward; 3: the
  // same by the linear-combination epilogues; 4: with the first bias gradient by dW1's product; 5:
  // with GELU'(h) stored by the forward.
  auto run = [&](int path) {
    std::vector<torch::Tensor> leaves;
    for (const auto& t : leaves0)
      leaves.push_back((path == 0 ? t.to(torch::kFloat32) : t.clone()).requires_grad_(true));
    const torch::Tensor &x = leaves[0], &w1 = leaves[1], &b1 = leaves[2], &w2 = leaves[3], &b2 = leaves[4];
    torch::Tensor y;
    if (path == 0)
      y = torch::linear(torch::gelu(torch::linear(x, w1, b1)), w2, b2);
    else if (path == 1)
      y = TrainLinear::apply(TrainLinear::apply(x, w1, b1, true), w2, b2, false);
    else
      y = TrainFeedForward::apply(x, w1, b1, w2, b2, path == 3, path == 4, path == 5);
    (y.to(torch::kFloat32) * dy.to(torch::kFloat32)).sum().backward();
    std::vector<torch::Tensor> out{y};
    for (const auto& t : leaves) out.push_back(t.grad());
    return out;
  };
  // Each tensor's largest difference relative to its largest value: y, dx, dW1, db1, dW2, db2.
  auto each = [](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& e) {
    std::vector<double> w;
    for (std::size_t i = 0; i < a.size(); ++i) w.push_back(largestRelativeDifference(a[i], e[i]));
    return w;
  };
  const auto reference = run(0);
  r.unfusedEach = each(run(1), reference);
  r.unfused = *std::max_element(r.unfusedEach.begin(), r.unfusedEach.end());
  // The fused path only where its kernels ran, forward and backward (a decline would measure the
  // fallback instead).
  const std::int64_t declines = gFeedForwardDeclines.load();
  const auto trees = run(2);
  const auto fused = each(trees, reference);
  if (gFeedForwardDeclines.load() == declines) {
    r.fusedEach = fused;
    r.fused = *std::max_element(fused.begin(), fused.end());
  }
  // The same by the linear-combination epilogues: y and dx bit for bit.
  const auto linComb = run(3);
  if (gFeedForwardDeclines.load() == declines)
    r.linComb = std::max((trees[0].to(torch::kFloat32) - linComb[0].to(torch::kFloat32)).abs().max().item<double>(),
                         (trees[1].to(torch::kFloat32) - linComb[1].to(torch::kFloat32)).abs().max().item<double>());
  // The first bias gradient by dW1's product: only where both products ran.
  const std::int64_t inProductDeclines = gBiasInProductDeclines.load();
  const auto inProduct = each(run(4), reference);
  if (gFeedForwardDeclines.load() == declines && gBiasInProductDeclines.load() == inProductDeclines)
    r.biasInProductEach = inProduct;
  // GELU'(h) stored by the forward: only where its kernels ran.
  const auto stored = each(run(5), reference);
  if (gFeedForwardDeclines.load() == declines) r.storedGradEach = stored;
#endif
  return r;
}

std::vector<CellTransformer::TrainFeedForwardTiming>
CellTransformer::benchTrainFeedForward([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows,
                                       [[maybe_unused]] int iterations) {
  std::vector<TrainFeedForwardTiming> r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || rows <= 0 || iterations <= 0 || !cuda::gemmBiasGeluBuilt()) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(14);
  const std::int64_t E = 384, F = 2048; // the released model's
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor x = torch::randn({rows, E}, o).requires_grad_(true);
  const torch::Tensor w1 = (torch::randn({F, E}, o) * (1.0 / std::sqrt(E))).requires_grad_(true);
  const torch::Tensor b1 = (0.1 * torch::randn({F}, o)).requires_grad_(true);
  const torch::Tensor w2 = (torch::randn({E, F}, o) * (1.0 / std::sqrt(F))).requires_grad_(true);
  const torch::Tensor b2 = (0.1 * torch::randn({E}, o)).requires_grad_(true);
  const torch::Tensor dy = torch::randn({rows, E}, o);
  // 0: unfused; 1: the fused GEMMs by the linear-combination epilogues (--lincomb-gelu); 2: by
  // their epilogue trees (the default); 3: 2 with the first bias gradient by dW1's product
  // (--bias-grad-in-product); 4: 2 with GELU'(h) stored by the forward (--stored-gelu-grad).
  auto forward = [&](int path) {
    return path > 0 ? TrainFeedForward::apply(x, w1, b1, w2, b2, path == 1, path == 3, path == 4)
                    : TrainLinear::apply(TrainLinear::apply(x, w1, b1, true), w2, b2, false);
  };
  torch::Tensor firstOut, firstDx;
  for (const int fused : {0, 1, 2, 3, 4}) {
    TrainFeedForwardTiming t;
    const char* names[] = {"unfused", "fused_lincomb", "fused", "fused_bias_in_product", "fused_stored_gelu_grad"};
    t.path = names[fused];
    torch::Tensor out, dx;
    t.forwardMs = msPerCall(
        iterations, [&] { return forward(fused); }, out);
    t.stepMs = msPerCall(
        iterations,
        [&] {
          return torch::autograd::grad({forward(fused)}, {x, w1, b1, w2, b2}, {dy})[0];
        },
        dx);
    t.declines = gFeedForwardDeclines.load() + (fused == 3 ? gBiasInProductDeclines.load() : 0);
    if (!fused) {
      firstOut = out;
      firstDx = dx;
    } else {
      t.maxAbsFromUnfused =
          std::max((out.to(torch::kFloat32) - firstOut.to(torch::kFloat32)).abs().max().item<double>(),
                   (dx.to(torch::kFloat32) - firstDx.to(torch::kFloat32)).abs().max().item<double>());
    }
    r.push_back(t);
  }
#endif
  return r;
}

bool CellTransformer::fusedKernelsBuilt() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return true;
#else
  return false;
#endif
}

// LN(x + y): on a GPU in bf16 without gradients (embedding, validation), one fused kernel that
// reads x and y once and writes the result (FusedKernels.cu); training there with
// fusedLayerNorm(), TrainAddLayerNorm (the add in LayerNorm's forward kernel, which also writes
// the sum for the backward); otherwise ATen's add and layer_norm. The second tensor holds the same
// values for the residual stream's next add (see TrainAddLayerNorm); elsewhere it is the first.
// The two share storage (and a version counter): neither may be modified in place (autograd would
// throw, or route the view's gradient through its base and so merge the two again), except by
// inference's residualFeedForward, the last reader of norm1's output (--residual-in-product).
std::pair<torch::Tensor, torch::Tensor> CellTransformer::addLnResidual(const torch::Tensor& x, const torch::Tensor& y,
                                                                       const std::string& prefix) const {
  const torch::Tensor fused = fusedAddLn(x, y, prefix);
  if (fused.defined()) return {fused, fused};
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fused_ && fusedLayerNorm_ && x.is_cuda() && compute_ == torch::kBFloat16 && at::GradMode::is_enabled() &&
      x.scalar_type() == torch::kBFloat16 && y.scalar_type() == torch::kBFloat16 && x.sizes() == y.sizes()) {
    const torch::Tensor& w = P(prefix + ".weight");
    const torch::Tensor& b = P(prefix + ".bias");
    if (w.scalar_type() == torch::kBFloat16 && b.scalar_type() == torch::kBFloat16 && w.is_contiguous() &&
        b.is_contiguous()) {
      const auto out = TrainAddLayerNorm::apply(x.contiguous(), y.contiguous(), w, b, 1e-5, normBiasSums_);
      return {out[0], out[1]};
    }
  }
#endif
  const torch::Tensor out = ln(x + y, prefix);
  return {out, out};
}

torch::Tensor CellTransformer::addLn(const torch::Tensor& x, const torch::Tensor& y, const std::string& prefix) const {
  return addLnResidual(x, y, prefix).first;
}

torch::Tensor CellTransformer::fusedAddLn([[maybe_unused]] const torch::Tensor& x,
                                          [[maybe_unused]] const torch::Tensor& y,
                                          [[maybe_unused]] const std::string& prefix,
                                          [[maybe_unused]] torch::Tensor* normalized) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fused_ && x.is_cuda() && x.scalar_type() == torch::kBFloat16 && y.scalar_type() == torch::kBFloat16 &&
      x.sizes() == y.sizes() && !at::GradMode::is_enabled()) {
    const torch::Tensor& w = P(prefix + ".weight");
    const torch::Tensor& b = P(prefix + ".bias");
    if (w.scalar_type() == torch::kBFloat16 && b.scalar_type() == torch::kBFloat16 && w.is_contiguous() &&
        b.is_contiguous()) {
      const torch::Tensor a = x.contiguous(), c = y.contiguous();
      torch::Tensor out = torch::empty_like(a);
      const std::int64_t cols = a.size(-1);
      if (normalized) *normalized = torch::empty(a.sizes(), a.options().dtype(torch::kUInt8));
      if (cuda::addLayerNormBf16(bits(a), bits(c), bits(w), bits(b), mutableBits(out), a.numel() / cols,
                                 static_cast<int>(cols), 1e-5f,
                                 at::cuda::getCurrentCUDAStream(a.device().index()).stream(),
                                 normalized ? normalized->data_ptr<std::uint8_t>() : nullptr, fp8InputScale(cols)))
        return out;
    }
  }
#endif
  return {};
}

std::pair<torch::Tensor, torch::Tensor> CellTransformer::encoderFeedForward(const torch::Tensor& tokens,
                                                                            const torch::Tensor& attention, int layer,
                                                                            const torch::Tensor& normed) const {
  const std::string l = "encoder.layers." + std::to_string(layer);
  if (!fp8_ || at::GradMode::is_enabled() || layer >= static_cast<int>(fp8Layers_.size())) {
    const auto [x, residual] =
        normed.defined() ? std::make_pair(normed, normed) : addLnResidual(tokens, attention, l + ".norm1");
    const torch::Tensor out = residualFeedForward(x, l);
    if (out.defined()) return {out, out};
    return addLnResidual(residual, feedForward(x, l), l + ".norm2");
  }
  const Fp8Linear& f = fp8Layers_[layer];
  const std::int64_t E = tokens.size(-1), F = f.weight.size(0);
  std::vector<std::int64_t> hidden = tokens.sizes().vec();
  hidden.back() = F;
  torch::Tensor x, h;
#ifdef ATLASCOPE_FUSED_KERNELS
  // The fused LayerNorm writes the e4m3 rows beside its bf16 output; the FP8 GEMM + GELU reads them.
  if (gemmGelu()) {
    torch::Tensor n8;
    x = fusedAddLn(tokens, attention, l + ".norm1", &n8);
    if (x.defined()) {
      const std::int64_t rows = x.numel() / E;
      h = gemmInto(x.device(), rows, F, E, [&](std::uint16_t* y, void* ws, void* stream) {
        return cuda::gemmBiasGeluE4m3(n8.data_ptr<std::uint8_t>(), f.weight.data_ptr<std::uint8_t>(),
                                      f.alpha.data_ptr<float>(), bits(f.bias), y, rows, static_cast<int>(F),
                                      static_cast<int>(E), ws, stream, fp8ErfGelu_);
      });
    }
  }
#endif
  if (h.defined()) {
    h = h.view(hidden);
  } else {
    // The same e4m3 values in float32 (the CPU's path; a GPU's where a kernel declines).
    fp8Fallbacks_.fetch_add(1, std::memory_order_relaxed);
    const torch::Tensor sum = tokens + attention; // rounded to the compute dtype, as addLn's
    x = ln(sum, l + ".norm1");
    const torch::Tensor n = torch::layer_norm(sum.to(torch::kFloat32), {E}, {}, {}, 1e-5);
    const torch::Tensor q = dequantizeE4m3(quantizeE4m3(n * fp8InputScale(E)));
    h = torch::gelu(torch::matmul(q, dequantizeE4m3(f.weight).t()) * f.alpha + f.bias.to(torch::kFloat32),
                    fp8ErfGelu_ ? "none" : "tanh")
            .to(compute_);
  }
  const torch::Tensor out = addLn(x, lin(h, l + ".linear2"), l + ".norm2");
  return {out, out};
}

torch::Tensor CellTransformer::residualFeedForward([[maybe_unused]] const torch::Tensor& x,
                                                   [[maybe_unused]] const std::string& layer) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!residualInProduct_ || !fused_ || at::GradMode::is_enabled() || !x.is_cuda() ||
      x.scalar_type() != torch::kBFloat16 || !x.is_contiguous())
    return {};
  const torch::Tensor &w2 = P(layer + ".linear2.weight"), &b2 = P(layer + ".linear2.bias");
  const torch::Tensor &g = P(layer + ".norm2.weight"), &beta = P(layer + ".norm2.bias");
  for (const torch::Tensor* t : {&w2, &b2, &g, &beta})
    if (t->scalar_type() != torch::kBFloat16 || !t->is_contiguous()) return {};
  const std::int64_t E = x.size(-1);
  const torch::Tensor h = linGelu(x, layer + ".linear1");
  // x is this layer's LayerNorm output, read by linear1 above and by nothing after: the product
  // accumulates into it (beta 1), so that the sum is rounded once and no [R, E] tensor is added.
  torch::Tensor z = x.view({-1, E});
  z.addmm_(h.reshape({-1, h.size(-1)}), w2.t());
  residualInProductRuns_.fetch_add(1, std::memory_order_relaxed);
  torch::Tensor out = torch::empty_like(z);
  if (!cuda::biasLayerNormBf16(bits(z), bits(b2), bits(g), bits(beta), mutableBits(out), z.size(0), static_cast<int>(E),
                               1e-5f, at::cuda::getCurrentCUDAStream(z.device().index()).stream()))
    out = ln(z + b2, layer + ".norm2"); // a width without a kernel: the sum rounded to bf16 once more
  return out.view(x.sizes());
#else
  return {};
#endif
}

namespace {
// The embedding checks' input at the released size on `device`: a rounded packed batch (as `embed`
// rounds them) of `cells` neighbourhoods of 0 to `longest` observed cells (an empty one and a
// longest one included), over a table of 5,000 random bf16 tokens (values of a few units, as
// cellTokens' LayerNorm'd ones) and their random types.
struct CheckInput {
  Batch batch;
  torch::Tensor tokens, types;
};
// The embedding checks' model: the released size, on a small panel and type table.
ModelConfig checkConfig() {
  ModelConfig config;
  config.genes = 64;
  config.cellTypes = 32;
  return config;
}
CheckInput checkInput(torch::Device device, const ModelConfig& config, std::int64_t cells, std::int64_t longest,
                      std::uint64_t seed, bool storedZeroSlot = false) {
  const std::int64_t table = 5000;
  torch::manual_seed(seed);
  const torch::Tensor lengths = torch::randint(0, longest + 1, {cells}, torch::kInt64);
  lengths[0] = 0;
  lengths[1] = longest;
  const std::int64_t N = lengths.max().item<std::int64_t>();
  Batch padded;
  padded.observed = torch::randint(0, table, {cells, N}, torch::kInt64);
  padded.valid = torch::arange(N, torch::kInt64).unsqueeze(0) < lengths.unsqueeze(1);
  padded.reference = torch::randint(0, table, {cells}, torch::kInt64);
  CheckInput in;
  in.batch = toDevice(packBatch(padded, gpuEmbeddingShape(storedZeroSlot)), device);
  in.tokens = torch::randn({table, config.embedDim}, torch::TensorOptions().device(device)).to(torch::kBFloat16);
  in.types = torch::randint(0, config.cellTypes, {table}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  return in;
}
} // namespace

double CellTransformer::checkFusedPool(torch::Device device, std::int64_t cells, bool before) {
  if (!fusedKernelsBuilt() || !device.is_cuda()) return -1;
  torch::NoGradGuard noGrad;
  const ModelConfig config = checkConfig(); // the released size
  StateDict weights = initWeights(config, 11);
  // initWeights' LayerNorms are the identity (weight 1, bias 0): random ones for the pool's norm_k,
  // whose affine the fused kernel applies itself, so that a wrong column or head there shows.
  torch::manual_seed(29);
  weights.at("attn_pool.norm_k.weight") = 1.0 + 0.5 * torch::randn({config.embedDim});
  weights.at("attn_pool.norm_k.bias") = 0.5 * torch::randn({config.embedDim});
  CellTransformer model(std::move(weights), config, "check");
  model.to(device, torch::kBFloat16);
  model.setPoolKernelBefore(before);
  if (!model.fusedPool()) return -1;
  // Neighbourhoods of up to 300 observed cells (past the short attention's bound: flash runs).
  const CheckInput in = checkInput(device, config, cells, 300, 7);
  const torch::Tensor a = model.forwardFromTokens(in.tokens, in.types, in.batch, false).embedding.narrow(0, 0, cells);
  if (model.fusedPoolDeclines_ > 0) return 0.0; // the fused pool did not run: ATen against ATen says nothing
  model.setFusedPool(false);
  const torch::Tensor b = model.forwardFromTokens(in.tokens, in.types, in.batch, false).embedding.narrow(0, 0, cells);
  return torch::cosine_similarity(a, b, 1).min().item<double>();
}

double CellTransformer::checkFirstLayerPerCell(torch::Device device, std::int64_t cells) {
  if (!fusedKernelsBuilt() || !device.is_cuda()) return -1;
  torch::NoGradGuard noGrad;
  const ModelConfig config = checkConfig(); // the released size
  CellTransformer model(initWeights(config, 13), config, "check");
  model.to(device, torch::kBFloat16);
  if (!model.firstLayerPerCell()) return -1;
  // Up to 250 observed cells: the gathered kernel's longest sequences (252 rows) included.
  const CheckInput in = checkInput(device, config, cells, 250, 17);
  const torch::Tensor a = model.forwardFromTokens(model.widenTokenTable(in.tokens), in.types, in.batch, false)
                              .embedding.narrow(0, 0, cells);
  // The gathered kernel must have run, for every batch: otherwise the per-token path would be
  // compared with itself.
  if (model.firstLayerDeclines_.load() > 0 || model.firstLayerRuns_.load() == 0) return 0.0;
  const torch::Tensor b = model.forwardFromTokens(in.tokens, in.types, in.batch, false).embedding.narrow(0, 0, cells);
  return torch::cosine_similarity(a, b, 1).min().item<double>();
}

CellTransformer::SameBitsCheck CellTransformer::checkSameBits(torch::Device device, std::int64_t cells) {
  SameBitsCheck r;
  if (!fusedKernelsBuilt() || !device.is_cuda()) return r;
  torch::NoGradGuard noGrad;
  const ModelConfig config = checkConfig(); // the released size
  StateDict weights = initWeights(config, 19);
  // Random LayerNorms everywhere (initWeights' are the identity), so that a row read from the
  // wrong place or a slot's key that is not zero shows.
  torch::manual_seed(31);
  for (auto& [name, w] : weights)
    if (name.find("norm") != std::string::npos && w.dim() == 1)
      w = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 ? 1.0 + 0.3 * torch::randn_like(w)
                                                                              : 0.3 * torch::randn_like(w);
  CellTransformer model(std::move(weights), config, "check");
  model.to(device, torch::kBFloat16);
  if (!model.firstLayerPerCell()) return r;
  // Up to 250 observed cells: sequences of up to 252 keys, within the kernels' bound.
  const CheckInput virtualIn = checkInput(device, config, cells, 250, 23);
  const CheckInput storedIn = checkInput(device, config, cells, 250, 23, true);
  if (!virtualIn.batch.virtualZeroSlot || storedIn.batch.virtualZeroSlot) return r;
  const torch::Tensor wideTable = model.widenTokenTable(virtualIn.tokens);
  auto declines = [&] {
    return model.virtualZeroSlotDeclines_.load() + model.firstLayerDeclines_.load() + model.fusedPoolDeclines_;
  };
  auto embed = [&](const CheckInput& in, bool wide) {
    return model.forwardFromTokens(wide ? wideTable : in.tokens, in.types, in.batch, false)
        .embedding.narrow(0, 0, cells);
  };
  const double inf = std::numeric_limits<double>::infinity();
  auto largest = [](const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); };
  // Virtual against stored zero slots, narrow (per-token first layer) and wide tables; the wide
  // ones with the first residual from the table.
  const std::int64_t before = declines(), residualRuns = model.firstResidualRuns_.load();
  double v = 0;
  for (const bool wide : {false, true}) v = std::max(v, largest(embed(virtualIn, wide), embed(storedIn, wide)));
  r.virtualZeroSlot = declines() != before ? inf : v;
  const bool residualRan = model.firstResidualRuns_.load() > residualRuns;
  // The first residual from the table against the tokens assembled, with either layout.
  model.setFirstResidualFromTable(false);
  const torch::Tensor assembledVirtual = embed(virtualIn, true), assembledStored = embed(storedIn, true);
  model.setFirstResidualFromTable(true);
  const double f =
      std::max(largest(embed(virtualIn, true), assembledVirtual), largest(embed(storedIn, true), assembledStored));
  r.firstResidual = declines() != before || !residualRan ? inf : f;
  // The pool's first pass by token pairs against single tokens.
  model.setPoolTokenPairs(false);
  const torch::Tensor single = embed(virtualIn, true);
  model.setPoolTokenPairs(true);
  const double p = largest(embed(virtualIn, true), single);
  r.poolTokenPairs = declines() != before ? inf : p;
  // The GEMM + GELU's epilogue before (which the embeddings above ran where it is built); a
  // decline in either arm (ATen's GELU instead) fails the check rather than compare ATen with itself.
  if (model.gemmGelu()) {
    const std::int64_t gemmBefore = gemmGeluDeclines();
    model.setLinCombGelu(true);
    const torch::Tensor linComb = embed(virtualIn, true);
    model.setLinCombGelu(false);
    const double g = largest(embed(virtualIn, true), linComb);
    r.linCombGelu = declines() != before || gemmGeluDeclines() != gemmBefore ? inf : g;
  }
  return r;
}

double CellTransformer::checkShortAttention([[maybe_unused]] torch::Device device,
                                            [[maybe_unused]] std::int64_t sequences,
                                            [[maybe_unused]] std::int64_t maxLength, [[maybe_unused]] int variant) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || !cuda::shortAttentionFits(48, maxLength)) return -1;
  torch::manual_seed(9);
  const std::int64_t E = 384, H = 8, d = E / H;
  // Lengths 0 (packBatch's fillers) to maxLength, the longest present (the kernel's largest
  // shared memory: above 48 KB from 225 tokens).
  torch::Tensor lengths = torch::randint(0, maxLength + 1, {sequences}, torch::kInt64);
  lengths[0] = maxLength;
  const torch::Tensor cu = torch::cat({torch::zeros({1}, torch::kInt64), lengths.cumsum(0)}).to(torch::kInt32);
  const std::int64_t R = cu[-1].item<std::int64_t>();
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  // Scores of a few units, as a trained model's: softmax neither uniform nor one-hot.
  const torch::Tensor qkv = torch::randn({R, 3 * E}, o) * 2.0;
  const torch::Tensor out = packedShortAttention(qkv, cu.to(device), maxLength, H, variant);
  if (!out.defined()) return 1.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // The reference: float32 attention of every sequence.
  const torch::Tensor q = qkv.narrow(1, 0, E).to(torch::kFloat32), k = qkv.narrow(1, E, E).to(torch::kFloat32),
                      v = qkv.narrow(1, 2 * E, E).to(torch::kFloat32);
  const torch::Tensor outF = out.to(torch::kFloat32);
  const torch::Tensor peak = outF.abs().max().clamp_min(1e-6);
  const auto* c = cu.data_ptr<int>();
  torch::Tensor worst = torch::zeros({}, outF.options());
  for (std::int64_t i = 0; i < sequences; ++i) {
    const std::int64_t s0 = c[i], n = c[i + 1] - c[i];
    if (n == 0) continue;
    auto heads = [&](const torch::Tensor& t) { return t.narrow(0, s0, n).view({n, H, d}).transpose(0, 1); };
    const torch::Tensor a = torch::softmax(torch::matmul(heads(q), heads(k).transpose(1, 2)) * scale, -1);
    const torch::Tensor ref = torch::matmul(a, heads(v)).transpose(0, 1).reshape({n, E});
    worst = torch::maximum(worst, (outF.narrow(0, s0, n) - ref).abs().max());
  }
  return (worst / peak).item<double>();
#else
  return -1;
#endif
}

const char* CellTransformer::attentionVariantName([[maybe_unused]] int variant) {
#ifdef ATLASCOPE_FUSED_KERNELS
  return cuda::shortAttentionVariantName(variant);
#else
  return nullptr;
#endif
}

std::vector<CellTransformer::AttentionTiming> CellTransformer::benchAttention([[maybe_unused]] torch::Device device,
                                                                              [[maybe_unused]] std::int64_t rows,
                                                                              [[maybe_unused]] std::int64_t meanLength,
                                                                              [[maybe_unused]] int iterations,
                                                                              [[maybe_unused]] bool exactLength) {
  std::vector<AttentionTiming> r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || rows <= 0 || meanLength < 2 || iterations <= 0) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(13);
  const std::int64_t E = 384, H = 8;
  std::int64_t maxLength = 0;
  const std::vector<int> cu = benchSequences(rows, meanLength, maxLength, exactLength);
  if (!cuda::shortAttentionFits(static_cast<int>(E / H), maxLength)) return r;
  const torch::Tensor cuSeqlens = torch::tensor(cu, torch::kInt32).to(device);
  const torch::Tensor qkv =
      torch::randn({rows, 3 * E}, torch::TensorOptions().dtype(torch::kBFloat16).device(device)) * 2.0;
  const torch::Tensor before = packedShortAttention(qkv, cuSeqlens, maxLength, H, 1);
  if (!before.defined()) return r;
  for (int variant = 0; cuda::shortAttentionVariantName(variant); ++variant) {
    torch::Tensor y;
    const double ms = msPerCall(
        iterations, [&] { return packedShortAttention(qkv, cuSeqlens, maxLength, H, variant); }, y);
    if (ms < 0) continue;
    r.push_back({variant, cuda::shortAttentionVariantName(variant), ms,
                 (y.to(torch::kFloat32) - before.to(torch::kFloat32)).abs().max().item<double>(), rows,
                 static_cast<std::int64_t>(cu.size()) - 1, maxLength});
  }
#endif
  return r;
}

// x W^T + b, then GELU when `gelu`: while training on a GPU in bf16 with the fused kernels, the
// backward's bias gradient (and GELU's backward) by FusedKernels.cu (TrainLinear); otherwise ATen's.
torch::Tensor CellTransformer::linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                      bool gelu) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fused_ && x.is_cuda() && at::GradMode::is_enabled() && b.defined() && x.scalar_type() == torch::kBFloat16 &&
      w.scalar_type() == torch::kBFloat16 && b.scalar_type() == torch::kBFloat16 && w.size(0) % 2 == 0)
    return TrainLinear::apply(x, w, b, gelu);
  if (gelu && b.defined() && !at::GradMode::is_enabled() && gemmGelu() && x.is_cuda() &&
      x.scalar_type() == torch::kBFloat16 && w.scalar_type() == torch::kBFloat16 &&
      b.scalar_type() == torch::kBFloat16) {
    const torch::Tensor out = gemmBiasGelu(x.reshape({-1, w.size(1)}).contiguous(), w.contiguous(), b.contiguous(),
                                           erffGelu_, false, linCombGelu_);
    if (out.defined()) {
      std::vector<std::int64_t> shape = x.sizes().vec();
      shape.back() = w.size(0);
      return out.view(shape);
    }
    gGemmGeluDeclines.fetch_add(1, std::memory_order_relaxed);
  }
#endif
  const torch::Tensor y = torch::linear(x, w, b);
  return gelu ? torch::gelu(y) : y;
}

std::int64_t CellTransformer::fusedFeedForwardDeclines() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gFeedForwardDeclines.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

std::int64_t CellTransformer::biasInProductDeclines() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gBiasInProductDeclines.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

bool CellTransformer::biasGradInProductAvailable() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return cuda::weightBiasGradAvailable();
#else
  return false;
#endif
}

bool CellTransformer::poolTokenPairsApply() const {
#ifdef ATLASCOPE_FUSED_KERNELS
  return cuda::packedPoolTokenPairs(config_.embedDim, config_.heads);
#else
  return false;
#endif
}

std::int64_t CellTransformer::gemmGeluDeclines() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gGemmGeluDeclines.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

torch::Tensor CellTransformer::feedForward(const torch::Tensor& x, const std::string& prefix) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fusedFeedForward() && x.is_cuda() && at::GradMode::is_enabled()) {
    const torch::Tensor &w1 = P(prefix + ".linear1.weight"), &b1 = P(prefix + ".linear1.bias");
    const torch::Tensor &w2 = P(prefix + ".linear2.weight"), &b2 = P(prefix + ".linear2.bias");
    if (w1.scalar_type() == torch::kBFloat16 && w1.is_contiguous() && b1.is_contiguous() && w2.is_contiguous() &&
        b2.is_contiguous())
      return TrainFeedForward::apply(x.to(compute_), w1, b1, w2, b2, linCombGelu_, biasGradInProduct_, storedGeluGrad_);
  }
#endif
  return lin(linGelu(x, prefix + ".linear1"), prefix + ".linear2");
}

bool CellTransformer::gemmGeluBuilt() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return cuda::gemmBiasGeluBuilt();
#else
  return false;
#endif
}

CellTransformer::Fp8Check CellTransformer::checkFp8Kernels([[maybe_unused]] torch::Device device,
                                                           [[maybe_unused]] std::int64_t rows) {
  Fp8Check r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || !cuda::gemmBiasGeluBuilt()) return r;
  torch::NoGradGuard noGrad;
  torch::manual_seed(13);
  const std::int64_t E = 384, F = 2048;
  const auto of = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const torch::Tensor w8 = quantizeE4m3(torch::randn({F, E}, of) * 100);
  const torch::Tensor alpha = torch::rand({F}, of) * 1e-3 + 1e-4;
  const torch::Tensor bias = (0.5 * torch::randn({F}, of)).to(torch::kBFloat16);
  r.gemmMaxRelError = r.gemmErfMaxRelError = 0;
  for (const std::int64_t m : {rows, std::int64_t{1}, std::int64_t{129}, rows + 77}) {
    const torch::Tensor x8 = quantizeE4m3(torch::randn({m, E}, of) * 16);
    const torch::Tensor pre =
        torch::matmul(dequantizeE4m3(x8), dequantizeE4m3(w8).t()) * alpha + bias.to(torch::kFloat32);
    for (const bool erf : {false, true}) {
      const torch::Tensor y = gemmInto(device, m, F, E, [&](std::uint16_t* out, void* ws, void* stream) {
        return cuda::gemmBiasGeluE4m3(x8.data_ptr<std::uint8_t>(), w8.data_ptr<std::uint8_t>(), alpha.data_ptr<float>(),
                                      bits(bias), out, m, static_cast<int>(F), static_cast<int>(E), ws, stream, erf);
      });
      if (!y.defined()) return Fp8Check{};
      const torch::Tensor e = torch::gelu(pre, erf ? "none" : "tanh");
      keepWorst(erf ? r.gemmErfMaxRelError : r.gemmMaxRelError, largestRelativeDifference(y, e));
    }
  }
  const auto ob = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor x = torch::randn({rows, E}, ob), y = torch::randn({rows, E}, ob) * 3 + 1;
  const torch::Tensor g = (1 + 0.2 * torch::randn({E}, of)).to(torch::kBFloat16),
                      b = (0.1 * torch::randn({E}, of)).to(torch::kBFloat16);
  torch::Tensor out = torch::empty_like(x), n8 = torch::empty({rows, E}, of.dtype(torch::kUInt8));
  const float scale = fp8InputScale(E);
  if (!cuda::addLayerNormBf16(bits(x), bits(y), bits(g), bits(b), mutableBits(out), rows, static_cast<int>(E), 1e-5f,
                              at::cuda::getCurrentCUDAStream(device.index()).stream(), n8.data_ptr<std::uint8_t>(),
                              scale))
    return r;
  const torch::Tensor expected =
      quantizeE4m3(torch::layer_norm((x + y).to(torch::kFloat32), {E}, {}, {}, 1e-5) * scale);
  // By value (+0 and -0 alike): a code's neighbour is at most 2^-3 away relative to the smaller of
  // the two, 2^-9 absolute among the subnormals.
  const torch::Tensor got = dequantizeE4m3(n8), want = dequantizeE4m3(expected);
  r.layerNormDiffering = (got != want).sum().item<std::int64_t>();
  r.layerNormValues = got.numel();
  r.layerNormMaxStep =
      ((got - want).abs() / torch::minimum(got.abs(), want.abs()).clamp_min(std::ldexp(1.0, -6))).max().item<double>();
#endif
  return r;
}

double CellTransformer::checkGemmGelu([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows,
                                      [[maybe_unused]] int in, [[maybe_unused]] int out, [[maybe_unused]] bool erff) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || !cuda::gemmBiasGeluBuilt()) return -1;
  torch::manual_seed(10);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor w = torch::randn({out, in}, o) * (1.0 / std::sqrt(in)), b = 0.5 * torch::randn({out}, o);
  double worst = 0;
  // Whole tiles (128 rows) and partial ones: one row, one more than a tile, a ragged end.
  for (const std::int64_t m : {rows, std::int64_t{1}, std::int64_t{129}, rows + 77}) {
    const torch::Tensor x = torch::randn({m, in}, o);
    const torch::Tensor y = gemmBiasGelu(x, w, b, erff);
    if (!y.defined()) return 1.0;
    // The reference in float32 from the same bf16 inputs.
    const torch::Tensor e =
        torch::gelu(torch::linear(x.to(torch::kFloat32), w.to(torch::kFloat32), b.to(torch::kFloat32)));
    keepWorst(worst, largestRelativeDifference(y, e));
  }
  return worst;
#else
  return -1;
#endif
}

std::vector<CellTransformer::GemmGeluTiming>
CellTransformer::benchGemmGelu([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows,
                               [[maybe_unused]] int in, [[maybe_unused]] int out, [[maybe_unused]] int iterations) {
  std::vector<GemmGeluTiming> r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || !cuda::gemmBiasGeluBuilt() || rows <= 0 || iterations <= 0) return r;
  torch::manual_seed(12);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor x = torch::randn({rows, in}, o), w = torch::randn({out, in}, o) * (1.0 / std::sqrt(in)),
                      b = 0.5 * torch::randn({out}, o);
  const torch::Tensor reference = gemmBiasGelu(x, w, b, false), linear = torch::linear(x, w, b);
  if (!reference.defined()) return r;
  const std::string shape = "linear1";
  const double flop = 2.0 * static_cast<double>(rows) * in * out;
  auto time = [&](const std::string& path, const torch::Tensor& from, const std::function<torch::Tensor()>& f) {
    torch::Tensor y;
    const double ms = msPerCall(iterations, f, y);
    if (ms < 0) return;
    r.push_back({path, shape, ms, (y.to(torch::kFloat32) - from.to(torch::kFloat32)).abs().max().item<double>(), flop});
  };
  time("cublaslt_bias (no GELU)", linear, [&] { return torch::linear(x, w, b); });
  time("cutlass_bias (no GELU)", linear, [&] { return gemmBiasGelu(x, w, b, false, true); });
  time("cublaslt_bias_then_gelu", reference, [&] { return torch::gelu(torch::linear(x, w, b)); });
  time("cutlass_erff", reference, [&] { return gemmBiasGelu(x, w, b, true); });
  time("cutlass_exp2", reference, [&] { return gemmBiasGelu(x, w, b, false); });
  time("cutlass_exp2_lincomb (before)", reference, [&] { return gemmBiasGelu(x, w, b, false, false, true); });
  // The FP8 layer's kernel on random e4m3 x (magnitudes 1/8 to 7.5) and W (1/64 to 15/32) with
  // scales of 1; its difference is from float32's GELU(x W^T + b) over the same e4m3 values.
  if (in % 16 == 0 && out % 4 == 0) {
    const auto oi = torch::TensorOptions().dtype(torch::kInt32).device(device);
    auto bytes = [&](std::int64_t n, std::int64_t k, int e0, int e1) {
      const torch::Tensor s = torch::randint(0, 2, {n, k}, oi), e = torch::randint(e0, e1 + 1, {n, k}, oi),
                          m = torch::randint(0, 8, {n, k}, oi);
      return (s * 128 + e * 8 + m).to(torch::kUInt8);
    };
    const torch::Tensor x8 = bytes(rows, in, 4, 9), w8 = bytes(out, in, 1, 5);
    const torch::Tensor ones = torch::ones({out}, o.dtype(torch::kFloat32));
    const torch::Tensor reference8 =
        torch::gelu(torch::linear(dequantizeE4m3(x8), dequantizeE4m3(w8), b.to(torch::kFloat32)));
    for (const bool exp2 : {true, false})
      time(exp2 ? "cutlass_exp2 e4m3 x and W, fast accumulation" : "cutlass_tanh e4m3 x and W, fast accumulation",
           reference8, [&] {
             return gemmInto(device, rows, out, in, [&](std::uint16_t* y, void* ws, void* stream) {
               return cuda::gemmBiasGeluE4m3(x8.data_ptr<std::uint8_t>(), w8.data_ptr<std::uint8_t>(),
                                             ones.data_ptr<float>(), bits(b), y, rows, out, in, ws, stream, exp2);
             });
           });
  }
#endif
  return r;
}

CellTransformer::GeluExp2Check CellTransformer::checkGeluExp2([[maybe_unused]] torch::Device device) {
  GeluExp2Check r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda()) return r;
  const c10::cuda::CUDAGuard guard(device);
  const auto o = torch::TensorOptions().dtype(torch::kInt16).device(device);
  torch::Tensor a = torch::empty({65536}, o), e = torch::empty({65536}, o), d = torch::empty({65536}, o);
  torch::Tensor grad = torch::empty({65536}, o.dtype(torch::kFloat32));
  if (!cuda::geluExp2TableBf16(mutableBits(a), mutableBits(e), mutableBits(d),
                               at::cuda::getCurrentCUDAStream(device.index()).stream(), grad.data_ptr<float>()))
    return r;
  const torch::Tensor x = torch::arange(65536, torch::TensorOptions().dtype(torch::kInt32))
                              .to(torch::kInt16)
                              .view(torch::kBFloat16)
                              .to(torch::kFloat32);
  auto floats = [](const torch::Tensor& t) { return t.cpu().view(torch::kBFloat16).to(torch::kFloat32); };
  const torch::Tensor ya = floats(a), ye = floats(e), yd = floats(d);
  // float32's subnormals aside: |x| below 2^-125, whose GELU (~x/2) is below 2^-126, where float32
  // has fewer bits than bf16 (the CPU test's set).
  const torch::Tensor checked = x.isfinite() & (x >= -6.0) & ((x.abs() >= 2.3509887e-38) | (x == 0));
  r.checked = checked.sum().item<std::int64_t>();
  r.mismatches = (checked & (ya != yd)).sum().item<std::int64_t>();
  r.erffMismatches = (checked & (ya != ye)).sum().item<std::int64_t>();
  const torch::Tensor finite = x.isfinite();
  r.maxAbs = (ya - ye).masked_select(finite).abs().max().item<double>();
  // geluGradExp2 on the device against GELU' in double precision, every finite bf16 input.
  const torch::Tensor X = x.to(torch::kFloat64);
  const torch::Tensor exactGrad =
      0.5 * torch::erfc(-X * 0.70710678118654752440) + X * torch::exp(-0.5 * X * X) * 0.39894228040143267794;
  r.gradMaxAbs = (grad.cpu().to(torch::kFloat64) - exactGrad).masked_select(finite).abs().max().item<double>();
  if (cuda::gemmBiasGeluBuilt()) {
    torch::manual_seed(10);
    const auto ob = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
    const std::int64_t rows = 46080, in = 384, out = 2048;
    const torch::Tensor w = torch::randn({out, in}, ob) * (1.0 / std::sqrt(in)), b = 0.5 * torch::randn({out}, ob);
    const torch::Tensor xs = torch::randn({rows, in}, ob);
    const torch::Tensor p = gemmBiasGelu(xs, w, b, false), q = gemmBiasGelu(xs, w, b, true);
    if (p.defined() && q.defined()) {
      r.gemmValues = p.numel();
      r.gemmDiffering = (p != q).sum().item<std::int64_t>();
      r.gemmMaxAbs = (p.to(torch::kFloat32) - q.to(torch::kFloat32)).abs().max().item<double>();
    }
  }
#endif
  return r;
}

// An encoder layer's self-attention, PyTorch's MultiheadAttention with add_zero_attn, on the
// padded [B, N + 2, E] layout whose last slot is the zero slot. keyValid: [B, N + 2] or undefined.
torch::Tensor CellTransformer::selfAttention(const torch::Tensor& x, const std::string& prefix,
                                             const torch::Tensor& keyValid) const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  const std::int64_t B = x.size(0), L = x.size(1);
  const torch::Tensor qkv = torch::linear(x.to(compute_), P(prefix + ".in_proj_weight"), P(prefix + ".in_proj_bias"));
  qkv.select(1, L - 1).narrow(-1, E, 2 * E).zero_();                              // add_zero_attn's key and value
  const torch::Tensor heads = qkv.view({B, L, 3, H, d}).permute({2, 0, 3, 1, 4}); // [3, B, H, L, d]
  return lin(attend(heads[0], heads[1], heads[2], keyValid), prefix + ".out_proj");
}

// A decoder layer's self-attention on its two tokens, each attending only to the other (its own
// key masked) and to add_zero_attn's zero key and value: the softmax over {s, 0} puts sigmoid(s)
// on the other token's value and the rest on zero, so per head the output is
// sigmoid(q_i . k_j / sqrt(d)) v_j. The same numbers as the masked softmax, in a few operations.
namespace {
std::atomic<std::int64_t> gPairAttentionDeclines{0};

// The decoder's attention between a neighbourhood's two tokens by ATen in float32: proj [B, 2, 3E]
// (q|k|v) -> [B, 2, E], each token's output sigmoid(scale q . k_other) v_other per head (softmax over
// the other token's key and add_zero_attn's zero key).
torch::Tensor pairAttentionAten(const torch::Tensor& proj, std::int64_t heads, double scale) {
  const std::int64_t B = proj.size(0), E = proj.size(2) / 3, d = E / heads;
  const torch::Tensor qkv = proj.to(torch::kFloat32).view({B, 2, 3, heads, d});
  const torch::Tensor q = qkv.select(2, 0), other = qkv.flip({1}); // the other token's k and v
  const torch::Tensor s = (q * other.select(2, 1)).sum(-1, true) * scale;
  return (torch::sigmoid(s) * other.select(2, 2)).reshape({B, 2, E});
}

// Its backward written out (as cuda::pairAttentionGradBf16's), in float32, in proj's dtype.
torch::Tensor pairAttentionGradAten(const torch::Tensor& proj, const torch::Tensor& dout, std::int64_t heads,
                                    double scale) {
  const std::int64_t B = proj.size(0), E = proj.size(2) / 3, d = E / heads;
  const torch::Tensor qkv = proj.to(torch::kFloat32).view({B, 2, 3, heads, d});
  const torch::Tensor q = qkv.select(2, 0), other = qkv.flip({1});
  const torch::Tensor ko = other.select(2, 1), vo = other.select(2, 2);
  const torch::Tensor a = torch::sigmoid((q * ko).sum(-1, true) * scale);
  const torch::Tensor g = dout.to(torch::kFloat32).reshape({B, 2, heads, d});
  const torch::Tensor ds = (g * vo).sum(-1, true) * a * (1 - a) * scale;
  return torch::stack({ds * ko, (ds * q).flip({1}), (a * g).flip({1})}, 2)
      .reshape({B, 2, 3 * E})
      .to(proj.scalar_type());
}

// Training's pair attention as one function: on a GPU in bf16 a kernel each way
// (pairAttentionBf16, pairAttentionGradBf16), where ATen's composite ran ~8 small kernels forward and
// ~12 backward a decoder layer; elsewhere (and where a kernel declines) the ATen forms above.
struct TrainPairAttention : torch::autograd::Function<TrainPairAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& proj, std::int64_t heads,
                               double scale) {
    ctx->save_for_backward({proj});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["scale"] = scale;
#ifdef ATLASCOPE_FUSED_KERNELS
    if (proj.is_cuda() && proj.scalar_type() == torch::kBFloat16 && proj.is_contiguous()) {
      const c10::cuda::CUDAGuard guard(proj.device());
      torch::Tensor out = torch::empty({proj.size(0), 2, proj.size(2) / 3}, proj.options());
      if (cuda::pairAttentionBf16(bits(proj), proj.size(0), static_cast<int>(heads),
                                  static_cast<int>(proj.size(2) / 3 / heads), static_cast<float>(scale),
                                  mutableBits(out), at::cuda::getCurrentCUDAStream(proj.device().index()).stream()))
        return out;
      gPairAttentionDeclines.fetch_add(1, std::memory_order_relaxed);
    }
#endif
    return pairAttentionAten(proj, heads, scale).to(proj.scalar_type());
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor proj = ctx->get_saved_variables()[0];
    const std::int64_t heads = ctx->saved_data["heads"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const torch::Tensor dout = grads[0].to(proj.scalar_type()).contiguous();
#ifdef ATLASCOPE_FUSED_KERNELS
    if (proj.is_cuda() && proj.scalar_type() == torch::kBFloat16 && proj.is_contiguous()) {
      const c10::cuda::CUDAGuard guard(proj.device());
      torch::Tensor dproj = torch::empty_like(proj);
      if (cuda::pairAttentionGradBf16(bits(proj), bits(dout), proj.size(0), static_cast<int>(heads),
                                      static_cast<int>(proj.size(2) / 3 / heads), static_cast<float>(scale),
                                      mutableBits(dproj),
                                      at::cuda::getCurrentCUDAStream(proj.device().index()).stream()))
        return {dproj, torch::Tensor(), torch::Tensor()};
      gPairAttentionDeclines.fetch_add(1, std::memory_order_relaxed);
    }
#endif
    return {pairAttentionGradAten(proj, dout, heads, scale), torch::Tensor(), torch::Tensor()};
  }
};
} // namespace

std::int64_t CellTransformer::pairAttentionDeclines() { return gPairAttentionDeclines.load(); }

CellTransformer::PairAttentionCheck CellTransformer::checkPairAttention(torch::Device device, std::int64_t cells) {
  PairAttentionCheck r;
  torch::manual_seed(29);
  const std::int64_t H = 8, d = 48, E = H * d;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  const auto o = torch::TensorOptions().dtype(dtype).device(device);
  const torch::Tensor proj0 = torch::randn({cells, 2, 3 * E}, o), dout = torch::randn({cells, 2, E}, o);
  // float32 autograd through the ATen form, on the same (rounded) values.
  const torch::Tensor ref = proj0.to(torch::kFloat32).clone().requires_grad_(true);
  const torch::Tensor refOut = pairAttentionAten(ref, H, scale);
  (refOut * dout.to(torch::kFloat32)).sum().backward();
  const std::int64_t declines = gPairAttentionDeclines.load();
  const torch::Tensor proj = proj0.clone().requires_grad_(true);
  const torch::Tensor out = TrainPairAttention::apply(proj, H, scale);
  (out.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum().backward();
  r.declined = gPairAttentionDeclines.load() != declines;
  auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kFloat32) - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
  };
  r.output = rel(out.detach(), refOut.detach());
  r.gradient = rel(proj.grad(), ref.grad());
  return r;
}

torch::Tensor CellTransformer::pairAttention(const torch::Tensor& x, const std::string& prefix) const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  [[maybe_unused]] const std::int64_t B = x.size(0); // the inference kernel's
  // Training on a GPU in bf16: one kernel each way (TrainPairAttention), and the projection by
  // linear() (its bias gradient by the fused column sums, where ATen's reduction took 11 us a layer).
  const bool train =
      fusedPairAttention_ && fused_ && at::GradMode::is_enabled() && x.is_cuda() && compute_ == torch::kBFloat16;
  const torch::Tensor proj =
      train ? linear(x.to(compute_), P(prefix + ".in_proj_weight"), P(prefix + ".in_proj_bias"), false)
            : torch::linear(x.to(compute_), P(prefix + ".in_proj_weight"), P(prefix + ".in_proj_bias"));
  if (train && proj.scalar_type() == torch::kBFloat16)
    return lin(TrainPairAttention::apply(proj.contiguous(), H, 1.0 / std::sqrt(static_cast<double>(d))),
               prefix + ".out_proj");
#ifdef ATLASCOPE_FUSED_KERNELS
  if (fusedPool() && !at::GradMode::is_enabled() && proj.scalar_type() == torch::kBFloat16 && proj.is_contiguous()) {
    const c10::cuda::CUDAGuard device(proj.device());
    torch::Tensor out = torch::empty({B, 2, E}, proj.options());
    if (cuda::pairAttentionBf16(bits(proj), B, static_cast<int>(H), static_cast<int>(d),
                                static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), mutableBits(out),
                                at::cuda::getCurrentCUDAStream(proj.device().index()).stream()))
      return lin(out, prefix + ".out_proj");
  }
#endif
  return lin(pairAttentionAten(proj, H, 1.0 / std::sqrt(static_cast<double>(d))), prefix + ".out_proj");
}

torch::Tensor CellTransformer::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& valid) const {
  const std::int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), d = q.size(3), Lk = k.size(2);
  torch::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  if (compute_ != torch::kFloat32) {
    // Fused attention in the compute dtype: the memory-efficient kernel with a padding mask, the
    // flash kernel without one (uniform batches).
    out = valid.defined() ? at::scaled_dot_product_attention(q, k, v, valid.view({B, 1, 1, Lk}))
                          : at::scaled_dot_product_attention(q, k, v);
    return out.transpose(1, 2).reshape({B, Lq, H * d});
  }
#endif
  // float32: scores and softmax in float32, -inf for padding (the reference's arithmetic).
  torch::Tensor scores =
      torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) * (1.0 / std::sqrt(static_cast<double>(d)));
  if (valid.defined())
    scores =
        scores +
        torch::zeros({B, 1, 1, Lk}, scores.options()).masked_fill(valid.logical_not().view({B, 1, 1, Lk}), -INFINITY);
  out = torch::matmul(torch::softmax(scores, -1).to(v.scalar_type()), v);
  return out.transpose(1, 2).reshape({B, Lq, H * d});
}

#if TORCH_VERSION_MAJOR >= 2
namespace {
// Flash attention over variable-length sequences stored back to back ([R, H, d] views with
// cu_seqlens), forward and backward through ATen's flash kernels (no dropout, not causal).
struct VarlenAttention : torch::autograd::Function<VarlenAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cu, std::int64_t maxLength, double scale) {
    auto r = at::_flash_attention_forward(q, k, v, cu, cu, maxLength, maxLength, 0.0, false, false, scale);
    const torch::Tensor out = std::get<0>(r);
    ctx->save_for_backward({q, k, v, out, std::get<1>(r), cu, std::get<2>(r), std::get<3>(r)});
    ctx->saved_data["max"] = maxLength;
    ctx->saved_data["scale"] = scale;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const std::int64_t maxLength = ctx->saved_data["max"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    auto g = at::_flash_attention_backward(grads[0].contiguous(), s[0], s[1], s[2], s[3], s[4], s[5], s[5], maxLength,
                                           maxLength, 0.0, false, s[6], s[7], scale);
    return {std::get<0>(g), std::get<1>(g), std::get<2>(g), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
} // namespace
#endif

#ifdef ATLASCOPE_FUSED_KERNELS
namespace {
// The training kernels' forward on q, k and v rows `stride` elements apart (E: three tensors; 3 E:
// the thirds of one): out [R, E] and each row's log2-sum-exp [heads, R], with what the backward
// reads kept in ctx (`saved`: the tensors that hold q, k and v, then out, lse and cu).
// virtualSlots: the first virtualSlots sequences' add_zero_attn slot appended by the kernel
// (Batch::virtualZeroSlot); the backward needs nothing for them (shortAttentionForwardBf16).
torch::Tensor trainingAttentionForward(torch::autograd::AutogradContext* ctx, const std::vector<torch::Tensor>& saved,
                                       const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                                       std::int64_t stride, std::int64_t R, std::int64_t E, const torch::Tensor& cu,
                                       std::int64_t maxLength, std::int64_t heads, double scale, bool twoKernels,
                                       bool keysAhead, std::int64_t virtualSlots = 0) {
  const torch::Tensor& like = saved[0];
  const c10::cuda::CUDAGuard device(like.device());
  torch::Tensor out = torch::empty({R, E}, like.options());
  torch::Tensor lse = torch::empty({heads, R}, like.options().dtype(torch::kFloat32));
  if (!cuda::shortAttentionForwardBf16(q, k, v, stride, cu.data_ptr<int>(), cu.size(0) - 1, static_cast<int>(heads),
                                       static_cast<int>(E / heads), maxLength, static_cast<float>(scale),
                                       mutableBits(out), E, lse.data_ptr<float>(), R,
                                       at::cuda::getCurrentCUDAStream(like.device().index()).stream(), virtualSlots))
    throw Error("the short-attention training kernel declined its arguments (rows " + std::to_string(R) + ", width " +
                std::to_string(E) + ", q/k/v rows " + std::to_string(stride) + " apart, longest " +
                std::to_string(maxLength) + ")");
  std::vector<torch::Tensor> keep = saved;
  keep.insert(keep.end(), {out, lse, cu});
  ctx->save_for_backward(keep);
  ctx->saved_data["max"] = maxLength;
  ctx->saved_data["heads"] = heads;
  ctx->saved_data["scale"] = scale;
  ctx->saved_data["twoKernels"] = twoKernels;
  ctx->saved_data["keysAhead"] = keysAhead;
  return out;
}

// The backward of trainingAttentionForward: dq, dk and dv written `stride` apart. `s`: the saved
// tensors, out, lse and cu the last three. With biasPartial (and zero slots), the one kernel's sums
// and slots (shortAttentionBackwardBf16); returns whether it did them.
bool trainingAttentionBackward(torch::autograd::AutogradContext* ctx, const torch::autograd::variable_list& s,
                               const torch::Tensor& grad, const std::uint16_t* q, const std::uint16_t* k,
                               const std::uint16_t* v, std::int64_t stride, std::uint16_t* dq, std::uint16_t* dk,
                               std::uint16_t* dv, float* biasPartial = nullptr,
                               const torch::Tensor& zeroRows = torch::Tensor()) {
  const std::size_t n = s.size();
  const torch::Tensor &out = s[n - 3], &lse = s[n - 2], &cu = s[n - 1];
  const std::int64_t heads = ctx->saved_data["heads"].toInt(), E = out.size(1);
  const c10::cuda::CUDAGuard device(out.device());
  torch::Tensor dout = grad.contiguous();
  if (reinterpret_cast<std::uintptr_t>(dout.data_ptr()) % 16 != 0) dout = dout.clone(); // a fresh allocation
  torch::Tensor delta = torch::empty_like(lse);
  bool summed = false;
  if (!cuda::shortAttentionBackwardBf16(
          q, k, v, bits(out), bits(dout), stride, E, cu.data_ptr<int>(), cu.size(0) - 1, static_cast<int>(heads),
          static_cast<int>(E / heads), ctx->saved_data["max"].toInt(),
          static_cast<float>(ctx->saved_data["scale"].toDouble()), lse.data_ptr<float>(), delta.data_ptr<float>(),
          lse.size(1), dq, dk, dv, at::cuda::getCurrentCUDAStream(out.device().index()).stream(),
          ctx->saved_data["twoKernels"].toBool(), biasPartial,
          zeroRows.defined() ? zeroRows.data_ptr<std::int64_t>() : nullptr, zeroRows.defined() ? zeroRows.size(0) : 0,
          &summed, ctx->saved_data["keysAhead"].toBool()))
    throw Error("the short-attention training kernels declined the backward (a misaligned gradient?)");
  return summed;
}

} // namespace

// Training's attention by ShortAttention.cu's kernels, the function of VarlenAttention above: a
// block per sequence and head with its keys in shared memory, where flash's tiles of 128 queries
// are mostly empty at ~90 tokens and its head-size-64 kernels run the released model's 48. The
// forward keeps each row's log2-sum-exp ([heads, R] float32) for the backward's two kernels.
// q, k, v: [R, E] bf16, contiguous, on the current device. twoKernels: the backward's two kernels
// (CellTransformer::setTwoKernelAttentionBackward) instead of its one; keysAhead: that one with K
// copied at its start (CellTransformer::setAttentionKeysAhead; shortAttentionBackwardBf16).
struct ShortVarlenAttention : torch::autograd::Function<ShortVarlenAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cu, std::int64_t maxLength,
                               std::int64_t heads, double scale, bool twoKernels, bool keysAhead,
                               std::int64_t virtualSlots) {
    const std::int64_t E = q.size(1);
    return trainingAttentionForward(ctx, {q, k, v}, bits(q), bits(k), bits(v), E, q.size(0), E, cu, maxLength, heads,
                                    scale, twoKernels, keysAhead, virtualSlots);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &q = s[0], &k = s[1], &v = s[2];
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    trainingAttentionBackward(ctx, s, grads[0], bits(q), bits(k), bits(v), q.size(1), mutableBits(dq), mutableBits(dk),
                              mutableBits(dv));
    torch::autograd::tensor_list d{dq, dk, dv};
    d.insert(d.end(), 7, torch::Tensor()); // cu, maxLength, heads, scale, twoKernels, keysAhead, virtualSlots
    return d;
  }
};

// The same kernels on the thirds of one [R, 3E] projection (PackedQkvProjection's), read in place
// with rows 3E apart; the backward writes dq, dk and dv into one [R, 3E] gradient, the
// projection's own layout, so that no slice, copy or sum joins them. out and its gradient [R, E].
struct PackedShortAttention : torch::autograd::Function<PackedShortAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv, const torch::Tensor& cu,
                               std::int64_t maxLength, std::int64_t heads, double scale, bool twoKernels,
                               bool keysAhead, std::int64_t virtualSlots) {
    const std::int64_t E = qkv.size(1) / 3;
    const std::uint16_t* q = bits(qkv);
    return trainingAttentionForward(ctx, {qkv}, q, q + E, q + 2 * E, 3 * E, qkv.size(0), E, cu, maxLength, heads, scale,
                                    twoKernels, keysAhead, virtualSlots);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor& qkv = s[0];
    const std::int64_t E = qkv.size(1) / 3;
    torch::Tensor dqkv = torch::empty_like(qkv);
    const std::uint16_t* q = bits(qkv);
    std::uint16_t* dq = mutableBits(dqkv);
    trainingAttentionBackward(ctx, s, grads[0], q, q + E, q + 2 * E, 3 * E, dq, dq + E, dq + 2 * E);
    torch::autograd::tensor_list d{dqkv};
    d.insert(d.end(), 7, torch::Tensor()); // cu, maxLength, heads, scale, twoKernels, keysAhead, virtualSlots
    return d;
  }
};

// PackedQkvProjection and PackedShortAttention as one function (training's default with the
// backward's one kernel): that kernel also sums the bias gradient's columns of dq|dk|dv per
// sequence as it writes them, and zeroes add_zero_attn's k and v gradients, where the projection's
// backward read the [R, 3E] gradient again for its bias (biasGradient: ~0.25 ms a step at the
// released size) and zeroed those rows by index_fill. The same dx and dW (the same gradient); the
// bias gradient summed in another order. Where the one kernel does not run (its shared memory does
// not fit), the projection's steps as before.
struct PackedQkvAttention : torch::autograd::Function<PackedQkvAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, const torch::Tensor& zeroRows, const torch::Tensor& cu,
                               std::int64_t maxLength, std::int64_t heads, bool keysAhead, std::int64_t virtualSlots) {
    const std::int64_t E = w.size(1);
    const torch::Tensor qkv = projectQkv(x, w, b, zeroRows);
    const std::uint16_t* q = bits(qkv);
    const double scale = 1.0 / std::sqrt(static_cast<double>(E / heads));
    return trainingAttentionForward(ctx, {qkv, x, w, zeroRows}, q, q + E, q + 2 * E, 3 * E, qkv.size(0), E, cu,
                                    maxLength, heads, scale, false, keysAhead, virtualSlots);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &qkv = s[0], &x = s[1], &w = s[2], &zeroRows = s[3], &cu = s[s.size() - 1];
    const std::int64_t E = w.size(1);
    torch::Tensor g = torch::empty_like(qkv);
    torch::Tensor partial = torch::empty({cu.size(0) - 1, 3 * E}, qkv.options().dtype(torch::kFloat32));
    const std::uint16_t* q = bits(qkv);
    std::uint16_t* dq = mutableBits(g);
    const bool summed = trainingAttentionBackward(ctx, s, grads[0], q, q + E, q + 2 * E, 3 * E, dq, dq + E, dq + 2 * E,
                                                  partial.data_ptr<float>(), zeroRows);
    torch::Tensor db; // undefined where the two kernels ran: projectQkvBackward sums it
    if (summed) {
      db = torch::empty({3 * E}, qkv.options());
      if (!cuda::sumSlicesBf16(partial.data_ptr<float>(), partial.size(0), static_cast<int>(3 * E), mutableBits(db),
                               at::cuda::getCurrentCUDAStream(qkv.device().index()).stream()))
        throw Error("the bias gradient's sums declined their arguments");
    }
    auto d = projectQkvBackward(ctx, g, x, w, zeroRows, db);
    d.insert(d.end(), 6, torch::Tensor()); // cu, maxLength, heads, keysAhead, virtualSlots (after zeroRows)
    return d;
  }
};

// Whether training's kernels have head size d and opted in to the shared memory of `maxLength` on
// `device`.
bool shortTrainingAttentionReady(torch::Device device, std::int64_t d, std::int64_t maxLength) {
  const c10::cuda::CUDAGuard guard(device);
  return cuda::shortAttentionTrainingReady(static_cast<int>(d), maxLength);
}

// Whether training's attention can take ShortVarlenAttention for these tensors (the kernels opted
// in to the shared memory of `maxLength` on q's device).
bool shortTrainingAttentionFits(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                std::int64_t heads, std::int64_t maxLength) {
  if (!q.is_cuda() || q.scalar_type() != torch::kBFloat16 || k.scalar_type() != torch::kBFloat16 ||
      v.scalar_type() != torch::kBFloat16 || !q.is_contiguous() || !k.is_contiguous() || !v.is_contiguous() ||
      q.dim() != 2 || q.sizes() != k.sizes() || q.sizes() != v.sizes() || q.size(1) % heads != 0 ||
      k.device() != q.device() || v.device() != q.device())
    return false;
  for (const torch::Tensor* t : {&q, &k, &v})
    if (reinterpret_cast<std::uintptr_t>(t->data_ptr()) % 16 != 0) return false;
  return shortTrainingAttentionReady(q.device(), q.size(1) / heads, maxLength);
}
#endif

CellTransformer::TrainAttentionCheck CellTransformer::checkTrainAttention([[maybe_unused]] torch::Device device,
                                                                          [[maybe_unused]] std::int64_t sequences,
                                                                          [[maybe_unused]] std::int64_t maxLength,
                                                                          [[maybe_unused]] int headDim) {
  TrainAttentionCheck r;
#if defined(ATLASCOPE_FUSED_KERNELS) && TORCH_VERSION_MAJOR >= 2
  if (!device.is_cuda() || sequences <= 0 || maxLength < 1) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(11);
  const std::int64_t H = 8, d = headDim, E = H * d;
  // Lengths 0 (packBatch's fillers) to maxLength, the longest present.
  torch::Tensor lengths = torch::randint(0, maxLength + 1, {sequences}, torch::kInt64);
  lengths[0] = maxLength;
  const torch::Tensor cu = torch::cat({torch::zeros({1}, torch::kInt64), lengths.cumsum(0)}).to(torch::kInt32);
  const torch::Tensor cuDevice = cu.to(device);
  const std::int64_t R = cu[-1].item<std::int64_t>();
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  // Scores of a few units, as a trained model's: softmax neither uniform nor one-hot.
  const torch::Tensor q0 = torch::randn({R, E}, o) * 2.0, k0 = torch::randn({R, E}, o) * 2.0,
                      v0 = torch::randn({R, E}, o), dout = torch::randn({R, E}, o);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  enum Path { Short, ShortTwoKernels, ShortReload, Packed, Flash, Float32 };
  auto run = [&](Path path) -> std::vector<torch::Tensor> {
    const auto type = path == Float32 ? torch::kFloat32 : torch::kBFloat16;
    // Fresh leaves each time (to() of a bf16 tensor to bf16 is the tensor itself, whose gradients
    // would add up over the paths).
    torch::Tensor q = q0.to(type).clone().requires_grad_(true), k = k0.to(type).clone().requires_grad_(true),
                  v = v0.to(type).clone().requires_grad_(true);
    torch::Tensor out;
    if (path == Short || path == ShortTwoKernels || path == ShortReload) {
      if (!shortTrainingAttentionFits(q, k, v, H, maxLength)) return {};
      out = ShortVarlenAttention::apply(q, k, v, cuDevice, maxLength, H, scale, path == ShortTwoKernels,
                                        path != ShortReload, 0);
    } else if (path == Packed) {
      // The same leaves' values as one [R, 3E] tensor, its gradient split back.
      if (!shortTrainingAttentionReady(device, d, maxLength)) return {};
      const torch::Tensor qkv = torch::cat({q0, k0, v0}, 1).requires_grad_(true);
      out = PackedShortAttention::apply(qkv, cuDevice, maxLength, H, scale, false, true, 0);
      (out.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum().backward();
      return {out.detach(), qkv.grad().narrow(1, 0, E), qkv.grad().narrow(1, E, E), qkv.grad().narrow(1, 2 * E, E)};
    } else if (path == Flash) {
      out = VarlenAttention::apply(q.view({R, H, d}), k.view({R, H, d}), v.view({R, H, d}), cuDevice, maxLength, scale)
                .reshape({R, E});
    } else {
      std::vector<torch::Tensor> parts;
      const auto* c = cu.data_ptr<int>();
      for (std::int64_t i = 0; i < sequences; ++i) {
        const std::int64_t s0 = c[i], n = c[i + 1] - c[i];
        if (n == 0) continue;
        auto heads = [&](const torch::Tensor& t) { return t.narrow(0, s0, n).view({n, H, d}).transpose(0, 1); };
        const torch::Tensor a = torch::softmax(torch::matmul(heads(q), heads(k).transpose(1, 2)) * scale, -1);
        parts.push_back(torch::matmul(a, heads(v)).transpose(0, 1).reshape({n, E}));
      }
      out = torch::cat(parts);
    }
    (out.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum().backward();
    return {out.detach(), q.grad(), k.grad(), v.grad()};
  };
  const std::vector<torch::Tensor> reference = run(Float32);
  auto worst = [&](const std::vector<torch::Tensor>& a) {
    double w = 0;
    for (std::size_t i = 0; i < a.size(); ++i) keepWorst(w, largestRelativeDifference(a[i], reference[i]));
    return w;
  };
  const auto a = run(Short);
  if (!a.empty()) r.shortKernels = worst(a);
  const auto two = run(ShortTwoKernels);
  if (!two.empty()) r.twoKernels = worst(two);
  if (!a.empty() && !two.empty()) r.fusedFromTwoKernels = worstAbsoluteDifference(a, two);
  const auto reload = run(ShortReload);
  if (!a.empty() && !reload.empty()) {
    r.kept = cuda::shortAttentionBackwardKept(static_cast<int>(d), maxLength);
    r.keysAheadFromReload = worstAbsoluteDifference(a, reload);
  }
  // Both kernels (K ahead and the one before) with their first loads in the order before: the same
  // arithmetic, so the same bits.
  if (!a.empty() && !reload.empty()) {
    std::vector<torch::Tensor> late, lateReload;
    {
      const AttentionLoadsLate order(true);
      late = run(Short);
      lateReload = run(ShortReload);
    }
    if (late.size() == a.size() && lateReload.size() == reload.size()) {
      r.loadsLateFromEarly = worstAbsoluteDifference(a, late);
      keepWorst(r.loadsLateFromEarly, worstAbsoluteDifference(reload, lateReload));
    }
  }
  const auto packed = run(Packed);
  if (!a.empty() && !packed.empty()) r.packedFromShort = worstAbsoluteDifference(packed, a);
  r.flash = worst(run(Flash));
#endif
  return r;
}

CellTransformer::TrainQkvAttentionCheck
CellTransformer::checkTrainQkvAttention([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t sequences,
                                        [[maybe_unused]] std::int64_t maxLength) {
  TrainQkvAttentionCheck r;
#if defined(ATLASCOPE_FUSED_KERNELS) && TORCH_VERSION_MAJOR >= 2
  if (!device.is_cuda() || sequences <= 0 || maxLength < 2) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(17);
  const std::int64_t H = 8, d = 48, E = H * d, fillers = 24;
  if (!shortTrainingAttentionReady(device, d, maxLength)) return r;
  // packBatch's layout: `sequences` neighbourhoods of 2 to maxLength rows, each ending with its
  // add_zero_attn slot (zeroRows), then filler sequences of 0 to 33 rows without one.
  torch::Tensor lengths = torch::cat(
      {torch::randint(2, maxLength + 1, {sequences}, torch::kInt64), torch::randint(0, 34, {fillers}, torch::kInt64)});
  lengths[0] = maxLength;
  const torch::Tensor cu = torch::cat({torch::zeros({1}, torch::kInt64), lengths.cumsum(0)}).to(torch::kInt32);
  const torch::Tensor zeroRows = (cu.narrow(0, 1, sequences).to(torch::kInt64) - 1).to(device);
  const torch::Tensor cuDevice = cu.to(device);
  const std::int64_t R = cu[-1].item<std::int64_t>();
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor x0 = torch::randn({R, E}, o), w0 = torch::randn({3 * E, E}, o) * 0.1,
                      b0 = torch::randn({3 * E}, o) * 0.1, dout = torch::randn({R, E}, o);
  auto run = [&](bool one) {
    const torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
                        b = b0.clone().requires_grad_(true);
    const torch::Tensor out =
        one ? PackedQkvAttention::apply(x, w, b, zeroRows, cuDevice, maxLength, H, true, 0)
            : PackedShortAttention::apply(PackedQkvProjection::apply(x, w, b, zeroRows), cuDevice, maxLength, H,
                                          1.0 / std::sqrt(static_cast<double>(d)), true, true, 0);
    (out.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), x.grad(), w.grad(), b.grad()};
  };
  const auto before = run(false), now = run(true);
  r.sameGradients = worstAbsoluteDifference(now, before, 3);
  r.biasRelative = largestRelativeDifference(now[3], before[3]);
  // The neighbourhoods' add_zero_attn slots appended by the kernel (Batch::virtualZeroSlot) against
  // stored ones whose outputs nothing reads (as the model's: the pool never reads a slot): the
  // stored layout with dout 0 at the slots, against the same rows without them.
  const torch::Tensor slots = zeroRows.cpu();
  torch::Tensor keep = torch::ones({R}, torch::kBool);
  keep.index_fill_(0, slots, false);
  const torch::Tensor kept = keep.nonzero().view({-1}).to(device);
  const torch::Tensor virtualLengths =
      lengths - torch::cat({torch::ones({sequences}, torch::kInt64), torch::zeros({fillers}, torch::kInt64)});
  const torch::Tensor virtualCu =
      torch::cat({torch::zeros({1}, torch::kInt64), virtualLengths.cumsum(0)}).to(torch::kInt32).to(device);
  const torch::Tensor noRows = torch::empty({0}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  const torch::Tensor storedDout = dout.index_fill(0, zeroRows, 0);
  auto slotsRun = [&](bool virtualSlots) {
    const torch::Tensor x = (virtualSlots ? x0.index_select(0, kept) : x0.clone()).requires_grad_(true),
                        w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    const torch::Tensor out = virtualSlots
                                  ? PackedQkvAttention::apply(x, w, b, noRows, virtualCu, maxLength, H, true, sequences)
                                  : PackedQkvAttention::apply(x, w, b, zeroRows, cuDevice, maxLength, H, true, 0);
    const torch::Tensor dy = virtualSlots ? dout.index_select(0, kept) : storedDout;
    (out.to(torch::kFloat32) * dy.to(torch::kFloat32)).sum().backward();
    if (virtualSlots) return std::vector<torch::Tensor>{out.detach(), x.grad(), w.grad(), b.grad()};
    return std::vector<torch::Tensor>{out.detach().index_select(0, kept), x.grad().index_select(0, kept), w.grad(),
                                      b.grad()};
  };
  const auto stored = slotsRun(false), appended = slotsRun(true);
  r.virtualSlots = worstRelativeDifference(appended, stored);
#endif
  return r;
}

void CellTransformer::setAttentionBackwardLoadsLate([[maybe_unused]] bool late) {
#ifdef ATLASCOPE_FUSED_KERNELS
  cuda::setAttentionBackwardLoadsLate(late);
#endif
}

std::vector<CellTransformer::TrainAttentionTiming>
CellTransformer::benchTrainAttention([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows,
                                     [[maybe_unused]] std::int64_t meanLength, [[maybe_unused]] int iterations,
                                     [[maybe_unused]] bool exactLength) {
  std::vector<TrainAttentionTiming> r;
#if defined(ATLASCOPE_FUSED_KERNELS) && TORCH_VERSION_MAJOR >= 2
  if (!device.is_cuda() || rows <= 0 || meanLength < 2 || iterations <= 0) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(13);
  const std::int64_t E = 384, H = 8, d = E / H;
  std::int64_t maxLength = 0;
  const std::vector<int> cu = benchSequences(rows, meanLength, maxLength, exactLength);
  const torch::Tensor cuSeqlens = torch::tensor(cu, torch::kInt32).to(device);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor q = (torch::randn({rows, E}, o) * 2.0).requires_grad_(true),
                      k = (torch::randn({rows, E}, o) * 2.0).requires_grad_(true),
                      v = torch::randn({rows, E}, o).requires_grad_(true), dout = torch::randn({rows, E}, o);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const bool shortFits = shortTrainingAttentionFits(q, k, v, H, maxLength);
  bool twoKernels = false; // the short path's backward
  auto forward = [&](bool shortKernels) {
    return shortKernels ? ShortVarlenAttention::apply(q, k, v, cuSeqlens, maxLength, H, scale, twoKernels, true, 0)
                        : VarlenAttention::apply(q.view({rows, H, d}), k.view({rows, H, d}), v.view({rows, H, d}),
                                                 cuSeqlens, maxLength, scale)
                              .reshape({rows, E});
  };
  torch::Tensor flashOut, flashDq;
  // flash, the short kernels with the one-kernel backward, that one with its first loads in the order
  // before (setAttentionBackwardLoadsLate), then the two kernels before it.
  for (const int path : {0, 1, 3, 2}) {
    const bool shortKernels = path > 0;
    twoKernels = path == 2;
    if (shortKernels && !shortFits) break;
    const AttentionLoadsLate order(path == 3);
    TrainAttentionTiming t;
    t.path = path == 0 ? "flash" : path == 1 ? "short" : path == 3 ? "short-loads-late" : "short-two-kernel-backward";
    t.rows = rows;
    t.sequences = static_cast<std::int64_t>(cu.size()) - 1;
    t.maxLength = maxLength;
    torch::Tensor out, dq;
    t.forwardMs = msPerCall(
        iterations, [&] { return forward(shortKernels); }, out);
    t.stepMs = msPerCall(
        iterations,
        [&] {
          return torch::autograd::grad({forward(shortKernels)}, {q, k, v}, {dout})[0];
        },
        dq);
    if (!shortKernels) {
      flashOut = out;
      flashDq = dq;
    } else {
      t.maxAbsFromFlash = std::max((out.to(torch::kFloat32) - flashOut.to(torch::kFloat32)).abs().max().item<double>(),
                                   (dq.to(torch::kFloat32) - flashDq.to(torch::kFloat32)).abs().max().item<double>());
    }
    r.push_back(t);
  }
#endif
  return r;
}

bool CellTransformer::variableLengthAttention() const {
#if TORCH_VERSION_MAJOR >= 2
  return varlen_ && device_.is_cuda() && compute_ != torch::kFloat32 && config_.embedDim / config_.heads % 8 == 0;
#else
  return false;
#endif
}

torch::Tensor CellTransformer::packedSelfAttention(const torch::Tensor& x, const std::string& prefix,
                                                   const Batch& batch, const torch::Tensor& valid) const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  const std::int64_t B = batch.observed.size(0), L = batch.observed.size(1) + 2;
#if TORCH_VERSION_MAJOR >= 2
  const torch::Tensor& w = P(prefix + ".in_proj_weight");
  const torch::Tensor& bias = P(prefix + ".in_proj_bias");
  torch::Tensor q, k, v;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (variableLengthAttention() && shortAttention() && !at::GradMode::is_enabled() &&
      x.scalar_type() == torch::kBFloat16 && cuda::shortAttentionFits(static_cast<int>(d), batch.maxLength)) {
    // Inference: one [R, 3E] projection read in place by the kernel (no split, no padding), which
    // appends virtual zero slots itself (Batch::virtualZeroSlot, embedding's batches).
    const torch::Tensor qkv = linear(x, w, bias, false);
    if (!batch.virtualZeroSlot) qkv.narrow(1, E, 2 * E).index_fill_(0, batch.zeroRows, 0); // add_zero_attn's k, v
    const torch::Tensor out = packedShortAttention(qkv, batch.cuSeqlens, batch.maxLength, H, attentionVariant_,
                                                   batch.virtualZeroSlot ? B : 0);
    if (out.defined()) return lin(out, prefix + ".out_proj");
    // Declined (a misaligned row, say): flash on the same projections, below; with virtual slots,
    // which only this kernel appends, the padded path at the end (the slots are zeros there).
    if (!batch.virtualZeroSlot) {
      q = qkv.narrow(1, 0, E).contiguous();
      k = qkv.narrow(1, E, E).contiguous();
      v = qkv.narrow(1, 2 * E, E).contiguous();
    }
  }
#endif
  // Training's batches with virtual zero slots (TrainOptions::virtualZeroSlots): the short-attention
  // kernels append them (virtualSlots); flash cannot, so on a decline the padded path at the end runs
  // (zeros at the slots there), counted as inference's.
  [[maybe_unused]] const std::int64_t virtualSlots = batch.virtualZeroSlot ? B : 0;
  if (variableLengthAttention() && (!batch.virtualZeroSlot || at::GradMode::is_enabled())) {
    const std::int64_t R = x.size(0);
    // q, k and v by three projections (row blocks of in_proj, contiguous): the flash backward's
    // dq, dk, dv then reach their projections directly, where slices of one [R, 3E] projection
    // cost three zero-filled [R, 3E] gradients, strided copies and their sums per layer.
    auto project = [&](int i) { return torch::linear(x, w.narrow(0, i * E, E), bias.narrow(0, i * E, E)); };
#ifdef ATLASCOPE_FUSED_KERNELS
    const bool fusedProjection = fused_ && at::GradMode::is_enabled() && x.scalar_type() == torch::kBFloat16 &&
                                 x.is_contiguous() && w.scalar_type() == torch::kBFloat16 &&
                                 bias.scalar_type() == torch::kBFloat16 && E % 2 == 0;
    if (fusedProjection && packedQkv_ && shortAttention() && x.is_cuda() && E % 8 == 0 && E % H == 0 &&
        shortTrainingAttentionReady(x.device(), d, batch.maxLength)) {
      if (!twoKernelAttentionBackward_)
        return lin(PackedQkvAttention::apply(x, w, bias, batch.zeroRows, batch.cuSeqlens, batch.maxLength, H,
                                             attentionKeysAhead_, virtualSlots),
                   prefix + ".out_proj");
      const torch::Tensor qkv = PackedQkvProjection::apply(x, w, bias, batch.zeroRows); // k, v zeroed there
      return lin(PackedShortAttention::apply(qkv, batch.cuSeqlens, batch.maxLength, H,
                                             1.0 / std::sqrt(static_cast<double>(d)), twoKernelAttentionBackward_,
                                             attentionKeysAhead_, virtualSlots),
                 prefix + ".out_proj");
    }
    if (fusedProjection) {
      const auto qkv = QkvProjection::apply(x, w, bias, batch.zeroRows); // add_zero_attn's k, v zeroed
      q = qkv[0];
      k = qkv[1];
      v = qkv[2];
    }
#endif
    if (!q.defined()) {
      q = project(0);
      k = project(1);
      v = project(2);
      k.index_fill_(0, batch.zeroRows, 0); // add_zero_attn's key and value
      v.index_fill_(0, batch.zeroRows, 0);
    }
#ifdef ATLASCOPE_FUSED_KERNELS
    if (shortAttention() && at::GradMode::is_enabled() && shortTrainingAttentionFits(q, k, v, H, batch.maxLength))
      return lin(ShortVarlenAttention::apply(q, k, v, batch.cuSeqlens, batch.maxLength, H,
                                             1.0 / std::sqrt(static_cast<double>(d)), twoKernelAttentionBackward_,
                                             attentionKeysAhead_, virtualSlots),
                 prefix + ".out_proj");
#endif
    if (!batch.virtualZeroSlot) {
      const torch::Tensor out =
          VarlenAttention::apply(q.view({R, H, d}), k.view({R, H, d}), v.view({R, H, d}), batch.cuSeqlens,
                                 batch.maxLength, 1.0 / std::sqrt(static_cast<double>(d)));
      return lin(out.reshape({R, E}), prefix + ".out_proj");
    }
  }
#endif
  if (batch.virtualZeroSlot) ++virtualZeroSlotDeclines_;
  const torch::Tensor qkv = torch::linear(x, P(prefix + ".in_proj_weight"), P(prefix + ".in_proj_bias")); // [R, 3E]
  qkv.narrow(1, E, 2 * E).index_fill_(0, batch.zeroRows, 0); // add_zero_attn's keys and values
  const torch::Tensor padded = scatterPadded(qkv, batch).view({B, L, 3, H, d}).permute({2, 0, 3, 1, 4});
  const torch::Tensor out =
      attend(padded[0], padded[1], padded[2], valid).reshape({B * L, E}).index_select(0, batch.unpackIndex);
  return lin(out, prefix + ".out_proj");
}

namespace {
// The packed tokens put in sequence order: each row goes to one place, so the gradient comes back
// by a gather through the inverse permutation (built on the device by a scatter: no host copy,
// capturable in a CUDA graph). index_select's backward, an index_add of bf16 rows with atomics,
// took 0.36 ms of a 24 ms training step on the H200 for 90k rows of 384.
struct PermutedRows : torch::autograd::Function<PermutedRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& order) {
    ctx->save_for_backward({order});
    return x.index_select(0, order);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor order = ctx->get_saved_variables()[0];
    const torch::Tensor inverse =
        torch::empty_like(order).scatter_(0, order, torch::arange(order.size(0), order.options()));
    return {grads[0].index_select(0, inverse), torch::Tensor()};
  }
};
} // namespace

torch::Tensor permuteRows(const torch::Tensor& x, const torch::Tensor& order) {
  if (!x.requires_grad() || !at::GradMode::is_enabled()) return x.index_select(0, order);
  return PermutedRows::apply(x, order);
}

namespace {
std::atomic<std::int64_t> gTokenRowDeclines{0};

// Whether the gather kernels take these bf16 rows as they are (CUDA, contiguous, 16-byte rows).
[[maybe_unused]] bool gatherableRows(const torch::Tensor& t) {
  return t.is_cuda() && t.scalar_type() == torch::kBFloat16 && t.dim() == 2 && t.is_contiguous() &&
         t.size(1) % 8 == 0 && t.size(1) <= std::numeric_limits<int>::max() &&
         reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 16 == 0;
}

// rows.index_select(0, index) for int64 indices into rows (bf16 on a GPU: one warp a row,
// cuda::gatherRowsOrZerosBf16; ATen's index_select elsewhere, where it declines, and where rows
// need a gradient through it: the kernel's output has no history). An index outside the rows gives
// a zero row where index_select stops with a device assertion: the callers' indices are the
// batch's own (cells of the table, types below the table's rows, as TypeRows' sums assume).
// tokenRowDeclines counts a kernel that was called and declined; rows it does not take (another
// dtype, width or alignment) go to index_select without a count.
torch::Tensor gatherRows(const torch::Tensor& rows, const torch::Tensor& index, [[maybe_unused]] bool kernel) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (kernel && !(rows.requires_grad() && at::GradMode::is_enabled()) && gatherableRows(rows) &&
      index.scalar_type() == torch::kInt64 && index.dim() == 1 && index.is_contiguous() &&
      index.device() == rows.device()) {
    const c10::cuda::CUDAGuard guard(rows.device());
    torch::Tensor out = torch::empty({index.size(0), rows.size(1)}, rows.options());
    if (cuda::gatherRowsOrZerosBf16(bits(rows), index.data_ptr<std::int64_t>(), index.size(0),
                                    static_cast<int>(rows.size(1)), mutableBits(out),
                                    at::cuda::getCurrentCUDAStream(rows.device().index()).stream(), rows.size(0)))
      return out;
    gTokenRowDeclines.fetch_add(1, std::memory_order_relaxed);
  }
#endif
  return rows.index_select(0, index);
}

// The gradient of rows gathered twice (two outputs with the same values, PackTokens' and
// ScatterPaddedRows'): g0 + g1 at `index` (either may be undefined, not both), summed as they are
// gathered (cuda::gatherSumRowsBf16) or, one alone, gathered (cuda::gatherRowsOrZerosBf16) on a GPU
// in bf16; ATen's add and index_select where the kernels do not take them (counted in `declines`
// on a GPU).
torch::Tensor gatherGradientRows(const torch::Tensor& g0, const torch::Tensor& g1, const torch::Tensor& index,
                                 std::atomic<std::int64_t>& declines) {
  const torch::Tensor a = g0.defined() ? g0.contiguous() : g1.contiguous();
  const torch::Tensor b = g0.defined() && g1.defined() ? g1.contiguous() : torch::Tensor();
#ifdef ATLASCOPE_FUSED_KERNELS
  if (gatherableRows(a) && (!b.defined() || (gatherableRows(b) && b.sizes() == a.sizes())) &&
      index.scalar_type() == torch::kInt64 && index.dim() == 1 && index.is_contiguous() &&
      index.device() == a.device()) {
    const c10::cuda::CUDAGuard guard(a.device());
    torch::Tensor d = torch::empty({index.size(0), a.size(1)}, a.options());
    void* stream = at::cuda::getCurrentCUDAStream(a.device().index()).stream();
    const int cols = static_cast<int>(a.size(1));
    const std::int64_t* from = index.data_ptr<std::int64_t>();
    if (b.defined()
            ? cuda::gatherSumRowsBf16(bits(a), bits(b), from, index.size(0), cols, mutableBits(d), stream, a.size(0))
            : cuda::gatherRowsOrZerosBf16(bits(a), from, index.size(0), cols, mutableBits(d), stream, a.size(0)))
      return d;
  }
#endif
  if (a.is_cuda()) declines.fetch_add(1, std::memory_order_relaxed);
  return (b.defined() ? a + b : a).index_select(0, index);
}

// Training's packed tokens: [rows ; cls ; B zero rows] (rows [R, E], cls [B, E]) put in sequence
// order (row i the concatenation's order[i], a permutation), as permuteRows of their cat, in one
// gather (cuda::gatherRowsOrZerosBf16 with two tables). Two outputs with the same values (the second
// a view of the first): the first layer's branch reads one and its residual the other, so that
// their gradients come back apart and are summed as the inverse permutation gathers them
// (cuda::gatherSumRowsBf16), where autograd's add summed them in a pass of its own
// (CellTransformer::setFusedTokenRows). ATen's cat and index_select where the kernels decline
// (and on the CPU).
struct PackTokens : torch::autograd::Function<PackTokens> {
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& rows,
                                              const torch::Tensor& cls, const torch::Tensor& order) {
    ctx->set_materialize_grads(false); // an unused output's gradient stays undefined (no zeros)
    ctx->save_for_backward({order});
    ctx->saved_data["rows"] = rows.size(0);
    ctx->saved_data["cls"] = cls.size(0);
    torch::Tensor out;
#ifdef ATLASCOPE_FUSED_KERNELS
    if (gatherableRows(rows) && gatherableRows(cls) && rows.size(1) == cls.size(1) &&
        order.scalar_type() == torch::kInt64 && order.is_contiguous() && order.device() == rows.device()) {
      const c10::cuda::CUDAGuard guard(rows.device());
      out = torch::empty({order.size(0), rows.size(1)}, rows.options());
      if (!cuda::gatherRowsOrZerosBf16(bits(rows), order.data_ptr<std::int64_t>(), order.size(0),
                                       static_cast<int>(rows.size(1)), mutableBits(out),
                                       at::cuda::getCurrentCUDAStream(rows.device().index()).stream(), rows.size(0),
                                       bits(cls), cls.size(0)))
        out = torch::Tensor();
    }
#endif
    if (!out.defined()) {
      if (rows.is_cuda()) gTokenRowDeclines.fetch_add(1, std::memory_order_relaxed);
      const std::int64_t zeros = order.size(0) - rows.size(0) - cls.size(0);
      out = torch::cat({rows, cls, torch::zeros({zeros, rows.size(1)}, rows.options())}, 0).index_select(0, order);
    }
    return {out, out.view_as(out)};
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor order = ctx->get_saved_variables()[0];
    const std::int64_t R = ctx->saved_data["rows"].toInt(), B = ctx->saved_data["cls"].toInt();
    const torch::Tensor &g0 = grads[0], &g1 = grads[1];
    if (!g0.defined() && !g1.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    // Each concatenated row's place (the zero rows' are not needed): a scatter on the device.
    const torch::Tensor inverse =
        torch::empty_like(order).scatter_(0, order, torch::arange(order.size(0), order.options())).narrow(0, 0, R + B);
    const torch::Tensor d = gatherGradientRows(g0, g1, inverse, gTokenRowDeclines);
    return {d.narrow(0, 0, R), d.narrow(0, R, B), torch::Tensor()};
  }
};
} // namespace

std::int64_t CellTransformer::tokenRowDeclines() { return gTokenRowDeclines.load(); }

double CellTransformer::checkPackTokens(torch::Device device) {
  const std::int64_t R = 20000, B = 300, E = 384;
  torch::manual_seed(37);
  const auto o = torch::TensorOptions().dtype(device.is_cuda() ? torch::kBFloat16 : torch::kFloat32).device(device);
  const torch::Tensor rows0 = torch::randn({R, E}, o), cls0 = torch::randn({B, E}, o);
  const torch::Tensor order = torch::randperm(R + 2 * B, torch::TensorOptions().dtype(torch::kInt64)).to(device);
  const torch::Tensor dBranch = torch::randn({R + 2 * B, E}, o), dResidual = torch::randn({R + 2 * B, E}, o);
  const std::int64_t declines = gTokenRowDeclines.load();
  double worst = 0;
  // Two uses with their own gradients, as the first layer's projection and residual; then the
  // branch alone (the second output's gradient undefined).
  for (const bool twoUses : {true, false}) {
    std::vector<std::vector<torch::Tensor>> results;
    for (const bool function : {false, true}) {
      const torch::Tensor rows = rows0.clone().requires_grad_(true), cls = cls0.clone().requires_grad_(true);
      torch::Tensor branch, residual;
      if (function) {
        const auto both = PackTokens::apply(rows, cls, order);
        branch = both[0];
        residual = both[1];
      } else {
        branch = residual = permuteRows(torch::cat({rows, cls, torch::zeros({B, E}, o)}, 0), order);
      }
      torch::Tensor loss = (branch.to(torch::kFloat32) * dBranch.to(torch::kFloat32)).sum();
      if (twoUses) loss = loss + (residual.to(torch::kFloat32) * dResidual.to(torch::kFloat32)).sum();
      loss.backward();
      results.push_back(
          {branch.detach().to(torch::kFloat32), rows.grad().to(torch::kFloat32), cls.grad().to(torch::kFloat32)});
    }
    for (std::size_t i = 0; i < results[0].size(); ++i)
      keepWorst(worst, (results[1][i] - results[0][i]).abs().max().item<double>());
  }
  if (gTokenRowDeclines.load() != declines) return -1;
  return worst;
}

// Packed rows -> the flat padded layout [B * L, C] (padding slots zero). A scatter to distinct
// slots, so its backward is a gather: a gather of each padded slot's packed row (padding slots
// pointing at their neighbourhood's zero row) sent every padding slot's gradient to that row,
// ~150 atomic adds per row and column per layer. In place into the zeros: index_copy copied them
// first (a [B (N + 2), E] copy, 0.05 ms of a training step's pool at the released size).
namespace {
std::atomic<std::int64_t> gPoolScatterDeclines{0}, gPoolScatterRuns{0};
#ifdef ATLASCOPE_FUSED_KERNELS
// The packed rows into the padded layout by one gather over its slots (cuda::gatherRowsOrZerosBf16),
// each slot's packed row (-1: a padding slot) made on the device by a scatter (no host copy:
// capturable); the gradient a gather of the real slots' rows, as index_copy's backward. Two
// outputs with the same values (the second a view of the first): the pool reads one for its
// scores and the other for its values, so that their gradients come back apart and are summed as
// the real slots' rows are gathered (cuda::gatherSumRowsBf16), where autograd's add summed them
// over the whole padded layout first (0.07 ms of a training step at the released size).
struct ScatterPaddedRows : torch::autograd::Function<ScatterPaddedRows> {
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& packed,
                                              const torch::Tensor& unpackIndex, std::int64_t slots) {
    ctx->set_materialize_grads(false); // an unused output's gradient stays undefined (no zeros)
    gPoolScatterRuns.fetch_add(1, std::memory_order_relaxed);
    ctx->save_for_backward({unpackIndex});
    const c10::cuda::CUDAGuard guard(packed.device());
    const torch::Tensor from = torch::full({slots}, -1, unpackIndex.options())
                                   .scatter_(0, unpackIndex, torch::arange(packed.size(0), unpackIndex.options()));
    torch::Tensor out = torch::empty({slots, packed.size(1)}, packed.options());
    if (!cuda::gatherRowsOrZerosBf16(bits(packed), from.data_ptr<std::int64_t>(), slots,
                                     static_cast<int>(packed.size(1)), mutableBits(out),
                                     at::cuda::getCurrentCUDAStream(packed.device().index()).stream())) {
      gPoolScatterDeclines.fetch_add(1, std::memory_order_relaxed);
      out = torch::zeros({slots, packed.size(1)}, packed.options()).index_copy_(0, unpackIndex, packed);
    }
    return {out, out.view_as(out)};
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor unpackIndex = ctx->get_saved_variables()[0];
    const torch::Tensor &g0 = grads[0], &g1 = grads[1];
    if (!g0.defined() && !g1.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    return {gatherGradientRows(g0, g1, unpackIndex, gPoolScatterDeclines), torch::Tensor(), torch::Tensor()};
  }
};
#endif
} // namespace

double CellTransformer::checkPoolScatter(torch::Device device) {
  // B neighbourhoods of N + 2 slots, R of them real (distinct, in no order).
  const std::int64_t B = 300, N = 100, R = 20000, E = 384;
  torch::manual_seed(31);
  Batch batch;
  batch.observed = torch::zeros({B, N}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  batch.unpackIndex =
      torch::randperm(B * (N + 2), torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, R).to(device);
  const auto o = torch::TensorOptions().dtype(device.is_cuda() ? torch::kBFloat16 : torch::kFloat32).device(device);
  const torch::Tensor packed0 = torch::randn({R, E}, o), dout = torch::randn({B * (N + 2), E}, o);
  std::vector<torch::Tensor> values, grads;
  const std::int64_t declines = gPoolScatterDeclines.load();
  const torch::Tensor dout2 = torch::randn({B * (N + 2), E}, o);
  const std::int64_t runs = gPoolScatterRuns.load();
  // Used once (scatterPadded), then twice with a gradient each (scatterPaddedTwice: the pool's
  // scores and values).
  for (const bool twice : {false, true})
    for (const bool oneGather : {false, true}) {
      const torch::Tensor packed = packed0.clone().requires_grad_(true);
      torch::Tensor out, second;
      if (twice)
        std::tie(out, second) = scatterPaddedTwice(packed, batch, oneGather);
      else
        out = scatterPadded(packed, batch, oneGather);
      torch::Tensor loss = (out.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum();
      if (twice) loss = loss + (second.to(torch::kFloat32) * dout2.to(torch::kFloat32)).sum();
      loss.backward();
      values.push_back(out.detach().to(torch::kFloat32));
      grads.push_back(packed.grad().to(torch::kFloat32));
    }
  // On a GPU the kernels ran (ScatterPaddedRows twice: once used once, once used twice), none declined.
  if (gPoolScatterDeclines.load() != declines || (device.is_cuda() && gPoolScatterRuns.load() - runs != 2)) return -1;
  double worst = 0;
  for (std::size_t i = 0; i < values.size(); i += 2)
    worst = std::max({worst, (values[i + 1] - values[i]).abs().max().item<double>(),
                      (grads[i + 1] - grads[i]).abs().max().item<double>()});
  return worst;
}

torch::Tensor scatterPadded(const torch::Tensor& packed, const Batch& batch, bool oneGather) {
  return scatterPaddedTwice(packed, batch, oneGather).first;
}

std::pair<torch::Tensor, torch::Tensor> scatterPaddedTwice(const torch::Tensor& packed, const Batch& batch,
                                                           [[maybe_unused]] bool oneGather) {
  const std::int64_t slots = batch.observed.size(0) * (batch.observed.size(1) + 2);
#ifdef ATLASCOPE_FUSED_KERNELS
  if (oneGather && packed.is_cuda() && packed.scalar_type() == torch::kBFloat16 && packed.dim() == 2 &&
      packed.is_contiguous() && packed.size(1) % 8 == 0 && batch.unpackIndex.scalar_type() == torch::kInt64 &&
      batch.unpackIndex.device() == packed.device() && batch.unpackIndex.size(0) == packed.size(0) &&
      packed.size(1) <= std::numeric_limits<int>::max()) {
    const auto both = ScatterPaddedRows::apply(packed, batch.unpackIndex.contiguous(), slots);
    return {both[0], both[1]};
  }
#endif
  const torch::Tensor out =
      torch::zeros({slots, packed.size(1)}, packed.options()).index_copy_(0, batch.unpackIndex, packed);
  return {out, out};
}

namespace {
std::int64_t roundUp(std::int64_t v, std::int64_t multiple) {
  return multiple > 0 ? (v + multiple - 1) / multiple * multiple : v;
}
} // namespace

std::int64_t roundedCells(std::int64_t cells, std::int64_t steps) {
  if (steps <= 0 || cells <= steps) return cells;
  std::int64_t octave = 1;
  while (octave * 2 <= cells) octave *= 2;
  return roundUp(cells, std::max<std::int64_t>(1, octave / steps));
}

namespace {
// packBatch's filler sequences for a batch whose longest real sequence is `longest` rows (at least
// 2: the class token and add_zero_attn's slot). For rowMultiple, enough that none is longer than
// `longest`: the floor of 16 rows this took before let a batch of short neighbourhoods get fillers
// longer than its own sequences, which raised maxLength (and gave the stored and virtual layouts
// different ones).
std::int64_t fillerSequences(std::int64_t longest, const PackShape& shape) {
  return shape.rowMultiple > 0 ? (shape.rowMultiple + 64 + std::max<std::int64_t>(2, longest) - 2) /
                                     (std::max<std::int64_t>(2, longest) - 1)
         : shape.tokenMultiple > 0
             ? std::max<std::int64_t>(1, shape.tokenMultiple / std::max<std::int64_t>(32, shape.lengthMultiple))
             : 0;
}

// Whether packBatch(shape) leaves the zero slots virtual in a batch whose longest real sequence
// (observed tokens + 2) is `longest` rows.
bool slotsVirtual(const PackShape& shape, std::int64_t longest) {
  return shape.virtualZeroSlot && (shape.virtualZeroSlotLongest <= 0 || longest <= shape.virtualZeroSlotLongest);
}
} // namespace

std::int64_t packedRowBound(std::int64_t cells, std::int64_t tokens, std::int64_t longest, const PackShape& shape) {
  const std::int64_t B = roundedCells(cells, shape.cellSteps), T = tokens;
  const std::int64_t F = fillerSequences(longest + 2, shape), slots = slotsVirtual(shape, longest + 2) ? 1 : 2;
  if (shape.rowMultiple > 0) return roundUp(T + F + slots * B, shape.rowMultiple);
  return (shape.tokenMultiple > 0 ? roundUp(T + F, shape.tokenMultiple) : T) + slots * B;
}

Batch packBatch(const Batch& padded, const PackShape& shape) {
  const std::int64_t B0 = padded.observed.size(0), N = padded.observed.size(1);
  if (B0 == 0 && (shape.tokenMultiple > 0 || shape.rowMultiple > 0)) return packBatch(padded); // nothing to round
  const std::int64_t B = roundedCells(B0, shape.cellSteps);
  torch::Tensor observed0 = padded.observed.cpu().contiguous(), valid0 = padded.valid.cpu().contiguous();
  torch::Tensor reference = padded.reference.cpu().contiguous();
  if (B > B0 && B0 > 0) {
    // Empty neighbourhoods of the first reference cell: no observed token, a finite output.
    observed0 = torch::cat({observed0, torch::full({B - B0, N}, reference[0].item<std::int64_t>(), torch::kInt64)});
    valid0 = torch::cat({valid0, torch::zeros({B - B0, N}, torch::kBool)});
    reference = torch::cat({reference, reference[0].expand({B - B0})});
  }
  const auto* obs0 = observed0.data_ptr<std::int64_t>();
  const auto* val0 = valid0.data_ptr<bool>();
  const auto* ref = reference.data_ptr<std::int64_t>();
  std::int64_t T = 0, longest = 0; // tokens; the longest real sequence (observed tokens + 2)
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t n = 0;
    for (std::int64_t j = 0; j < N; ++j) n += val0[b * N + j];
    T += n;
    longest = std::max(longest, n + 2);
  }
  // Rounded shapes: F filler sequences of at least one filler each, and enough padding slots in
  // the padded layout to hold the fillers there too. For rowMultiple (at most rowMultiple + F - 1
  // fillers) no filler sequence is longer than the batch's longest real one, so that the fillers
  // never raise maxLength, which sizes the attention's and the pool's shared memory.
  const std::int64_t F = fillerSequences(longest, shape);
  bool virtualZero = slotsVirtual(shape, longest);
  std::int64_t slots = virtualZero ? 1 : 2; // stored rows per neighbourhood besides its tokens
  const std::int64_t Tp = shape.rowMultiple > 0     ? roundUp(T + F + slots * B, shape.rowMultiple) - slots * B
                          : shape.tokenMultiple > 0 ? roundUp(T + F, shape.tokenMultiple)
                                                    : T;
  std::int64_t Np = roundUp(N, shape.lengthMultiple);
  while (B * Np < Tp) Np += std::max<std::int64_t>(1, shape.lengthMultiple);
  // Training's shapes bound their sequences by the padded length (maxLength below, Np + 2): that,
  // not the real longest, must fit the kernels that append virtual slots, so that one bound (and
  // so one CUDA graph) never holds both layouts. (Tp does not depend on the slots here.)
  if (virtualZero && shape.lengthMultiple > 0 && shape.rowMultiple == 0 && !slotsVirtual(shape, Np + 2)) {
    virtualZero = false;
    slots = 2;
  }
  const std::int64_t L = Np + 2, R = Tp + slots * B;
  torch::Tensor observed = torch::empty({B, Np}, torch::kInt64), valid = torch::zeros({B, Np}, torch::kBool);
  auto* obs = observed.data_ptr<std::int64_t>();
  auto* val = valid.data_ptr<bool>();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < Np; ++j) {
      obs[b * Np + j] = j < N ? obs0[b * N + j] : ref[b];
      val[b * Np + j] = j < N && val0[b * N + j];
    }
  torch::Tensor rows = torch::empty({Tp}, torch::kInt64), order = torch::empty({R}, torch::kInt64);
  torch::Tensor unpackIndex = torch::empty({R}, torch::kInt64),
                zeroRows = torch::empty({virtualZero ? 0 : B}, torch::kInt64);
  torch::Tensor cu = torch::empty({B + F + 1}, torch::kInt32);
  auto* r = rows.data_ptr<std::int64_t>();
  auto* o = order.data_ptr<std::int64_t>();
  auto* ui = unpackIndex.data_ptr<std::int64_t>();
  auto* zr = zeroRows.data_ptr<std::int64_t>();
  auto* c = cu.data_ptr<std::int32_t>();
  std::int64_t t = 0, pos = 0; // t: next computed token (rows), pos: next sequence position
  std::int64_t maxLength = 1;
  std::vector<std::int64_t> spare; // padding slots, for the fillers
  for (std::int64_t b = 0; b < B; ++b) {
    c[b] = static_cast<std::int32_t>(pos);
    for (std::int64_t j = 0; j < Np; ++j) {
      if (!val[b * Np + j]) {
        spare.push_back(b * L + j);
        continue;
      }
      r[t] = obs[b * Np + j];
      o[pos] = t++;
      ui[pos++] = b * L + j;
    }
    o[pos] = Tp + b; // the class token
    ui[pos++] = b * L + Np;
    if (!virtualZero) {
      zr[b] = pos;
      o[pos] = Tp + B + b; // add_zero_attn's slot
      ui[pos++] = b * L + Np + 1;
    }
    maxLength = std::max(maxLength, pos - c[b] + (virtualZero ? 1 : 0)); // the attention's keys
  }
  // Fillers: F sequences, lengths differing by at most one.
  const std::int64_t fillers = Tp - T;
  std::size_t nextSpare = 0;
  for (std::int64_t f = 0; f < F; ++f) {
    c[B + f] = static_cast<std::int32_t>(pos);
    const std::int64_t count = fillers / F + (f < fillers % F ? 1 : 0);
    for (std::int64_t i = 0; i < count; ++i) {
      r[t] = ref[(f * 7 + i) % B];
      o[pos] = t++;
      ui[pos++] = spare[nextSpare++];
    }
    maxLength = std::max(maxLength, count);
  }
  c[B + F] = static_cast<std::int32_t>(pos);
  Batch out;
  out.observed = observed;
  out.valid = valid;
  out.reference = reference.clone();
  out.uniform = padded.uniform && B == B0 && Np == N && Tp == T;
  out.rows = rows;
  out.order = order;
  out.unpackIndex = unpackIndex;
  out.zeroRows = zeroRows;
  out.cuSeqlens = cu;
  out.virtualZeroSlot = virtualZero;
  // Training's rounded shapes keep one bound per padded length (a CUDA graph bakes it in);
  // embedding's (rowMultiple, no graphs) keep the true one, which picks the attention kernel.
  out.maxLength = shape.lengthMultiple > 0 && shape.rowMultiple == 0 ? std::max(L, maxLength) : maxLength;
  return out;
}

Batch toDevice(const Batch& batch, torch::Device device) {
  if (device.is_cpu()) return batch;
  // From pinned memory, without waiting: the caller keeps `batch` until the device has read it.
  auto move = [&](const torch::Tensor& x) {
    return x.defined() ? (x.is_pinned() ? x : x.pin_memory()).to(device, true) : x;
  };
  Batch out = batch;
  for (torch::Tensor* t : out.tensors()) *t = move(*t);
  return out;
}

Batch pinned(Batch batch) {
  for (torch::Tensor* t : batch.tensors())
    if (t->defined() && !t->is_pinned()) *t = t->pin_memory();
  return batch;
}

// The attention pool, PyTorch's MultiheadAttention with one query, bias_k/bias_v and
// add_zero_attn, over the observed tokens only (not CLS); norm_v feeds the keys and norm_k the
// values (the reference's names are swapped relative to their roles).
//
// The query is the same learned token for every neighbourhood, so the algebra is rearranged
// rather than run as written: for head h, score_j = q_h . W_k,h LN_v(e_j) / sqrt(d)
// = (W_k,h^T q_h / sqrt(d)) . LN_v(e_j), one [E, H] product per token instead of an [E, E] one;
// and sum_j a_j W_v,h LN_k(e_j) = W_v,h (sum_j a_j LN_k(e_j)), so the value projection is applied
// once per neighbourhood instead of once per token. Both LayerNorms share their statistics, so
// the tokens are normalised once and the two affine maps are folded into these small products.
// The same numbers as the reference up to rounding (the parity tests hold it to 1e-4 in float32),
// and on the GPU the pool went from 40% of the model's time to a few per cent.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> CellTransformer::poolScores() const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  // Per-model constants (tiny), in float32.
  const torch::Tensor& w = p("attn_pool.attn.in_proj_weight");
  const torch::Tensor q = torch::linear(torch::layer_norm(p("attn_pool.query_token"), {E}, p("attn_pool.norm.weight"),
                                                          p("attn_pool.norm.bias"), 1e-5),
                                        w.narrow(0, 0, E))
                              .view({H, d}) *
                          (1.0 / std::sqrt(static_cast<double>(d)));
  const torch::Tensor U = torch::einsum("hd,hde->he", {q, w.narrow(0, E, E).view({H, d, E})}); // [H, E]
  const torch::Tensor A = U * p("attn_pool.norm_v.weight");                                    // [H, E]
  const torch::Tensor c = torch::mv(U, p("attn_pool.norm_v.bias"));                            // [H]
  const torch::Tensor biasScore = (q * p("attn_pool.attn.bias_k").view({H, d})).sum(-1);       // [H]
  return {A, c, biasScore};
}

torch::Tensor CellTransformer::poolOutput(torch::Tensor S, const torch::Tensor& observedWeight,
                                          const torch::Tensor& biasWeight) const {
  // sum_j a_j LN_k(e_j) = (sum_j a_j n_j) * w_k + (sum_j a_j) b_k, per head.
  // (The fused pool's kernel computes these elementwise operations itself: packedAttentionPool.)
  S = S * p("attn_pool.norm_k.weight") + observedWeight.unsqueeze(-1) * p("attn_pool.norm_k.bias");
  return poolProjection(S.to(compute_), biasWeight);
}

torch::Tensor CellTransformer::poolProjection(const torch::Tensor& normalizedS, const torch::Tensor& biasWeight) const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H, B = normalizedS.size(0);
  // W_v,h applied per head, plus the bias_v value.
  const torch::Tensor Wv = P("attn_pool.attn.in_proj_weight").narrow(0, 2 * E, E).view({H, d, E});
  torch::Tensor o = torch::matmul(normalizedS.transpose(0, 1), Wv.transpose(1, 2)).transpose(0, 1); // [B, H, d]
  o = o.to(torch::kFloat32) + biasWeight.unsqueeze(-1) * p("attn_pool.attn.bias_v").view({H, d});
  const torch::Tensor out = lin(o.reshape({B, E}), "attn_pool.attn.out_proj", false);
  return ln(out, "attn_pool.norm2").view({B, 1, E});
}

torch::Tensor CellTransformer::attentionPool(const torch::Tensor& enc, const torch::Tensor& valid) const {
  return normalizedPool(torch::layer_norm(enc.to(compute_), {config_.embedDim}, {}, {}, 1e-5), valid);
}

// The pool over packed encoder rows (training, and where the fused pool declines): LayerNorm on
// the packed rows (real tokens, ~3x fewer than the padded slots), then the padded layout with each
// neighbourhood's class token and zero slot masked out, so that no slice of it is taken: the
// slice's backward zero-filled a padded gradient and copied into it, and LayerNorm copied the
// strided slice to a contiguous one forward and backward (1.3 ms of a 23.5 ms GPU step with the
// padded LayerNorm). Each row's LayerNorm is the same whichever layout it is computed in.
torch::Tensor CellTransformer::packedPool(const torch::Tensor& packed, const Batch& batch) const {
  const std::int64_t E = config_.embedDim, B = batch.observed.size(0), N = batch.observed.size(1);
  const auto [n, values] = scatterPaddedTwice(normalize(packed), batch, fusedPoolScatter_ && fused_);
  const torch::Tensor valid = torch::cat({batch.valid, torch::zeros({B, 2}, batch.valid.options())}, 1);
  return normalizedPool(n.view({B, N + 2, E}), valid, values.view({B, N + 2, E}));
}

namespace {
std::atomic<std::int64_t> gTrainPoolDeclines{0};
#ifdef ATLASCOPE_FUSED_KERNELS
// The attention pool in training, read in place from the packed encoder output `tokens` [R, E]:
// forward packedPoolBf16 (the inference kernel: LayerNorm, scores, softmax and weighted sums in one
// pass a neighbourhood) into S [B, H, E] and weights [B, H, 2] (float32), backward
// packedPoolGradBf16 (the same softmax recomputed; the LayerNorm's backward inside) into the rows'
// gradient and each cell's shares of A's, c's and biasScore's, summed here over the cells (a fixed
// order). packedPool's path put the normalised rows into a padded layout of B (N + 2) slots twice
// the packed rows, ran ATen's products and softmax over it and a LayerNorm, a gather and their
// backward: ~0.35 ms forward and ~0.6 ms backward of a 17 ms step at the released size, H200.
// The caller checked packedPoolGradFits, the layout and the alignment: a kernel that still fails
// is an error, not a silent fallback inside autograd.
struct TrainPackedPool : torch::autograd::Function<TrainPackedPool> {
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& tokens,
                                              const torch::Tensor& A, const torch::Tensor& c,
                                              const torch::Tensor& biasScore, const torch::Tensor& cuSeqlens,
                                              std::int64_t cells, std::int64_t maxObserved, bool zeroSlotStored,
                                              bool tokenPairs) {
    const c10::cuda::CUDAGuard guard(tokens.device());
    const std::int64_t E = tokens.size(1), H = A.size(0);
    const auto fo = tokens.options().dtype(torch::kFloat32);
    const torch::Tensor Ac = A.detach().to(torch::kFloat32).contiguous(),
                        cc = c.detach().to(torch::kFloat32).contiguous(),
                        bc = biasScore.detach().to(torch::kFloat32).contiguous();
    torch::Tensor S = torch::empty({cells, H, E}, fo), weights = torch::empty({cells, H, 2}, fo);
    if (!cuda::packedPoolBf16(bits(tokens), cuSeqlens.data_ptr<int>(), cells, static_cast<int>(E), static_cast<int>(H),
                              maxObserved, Ac.data_ptr<float>(), cc.data_ptr<float>(), bc.data_ptr<float>(),
                              S.data_ptr<float>(), weights.data_ptr<float>(),
                              at::cuda::getCurrentCUDAStream(tokens.device().index()).stream(), false, nullptr, nullptr,
                              nullptr, zeroSlotStored, tokenPairs))
      throw Error("the training pool's forward kernel failed to launch");
    ctx->save_for_backward({tokens, Ac, cc, bc, cuSeqlens});
    ctx->saved_data["cells"] = cells;
    ctx->saved_data["max_observed"] = maxObserved;
    ctx->saved_data["zero_slot_stored"] = zeroSlotStored;
    ctx->saved_data["token_pairs"] = tokenPairs;
    return {S, weights};
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &tokens = s[0], &A = s[1], &c = s[2], &biasScore = s[3], &cuSeqlens = s[4];
    const std::int64_t cells = ctx->saved_data["cells"].toInt(), E = tokens.size(1), H = A.size(0);
    const c10::cuda::CUDAGuard guard(tokens.device());
    const auto fo = tokens.options().dtype(torch::kFloat32);
    torch::Tensor dS = grads[0].to(torch::kFloat32).contiguous();
    if (reinterpret_cast<std::uintptr_t>(dS.data_ptr()) % 16 != 0) dS = dS.clone(); // the kernel's 16-byte checks
    const torch::Tensor dW = grads[1].to(torch::kFloat32).contiguous();
    torch::Tensor dTokens = torch::empty_like(tokens);
    torch::Tensor dA = torch::empty({cells, H, E}, fo), dScores = torch::empty({cells, H, 2}, fo);
    if (!cuda::packedPoolGradBf16(
            bits(tokens), cuSeqlens.data_ptr<int>(), cells, cuSeqlens.size(0) - 1, static_cast<int>(E),
            static_cast<int>(H), ctx->saved_data["max_observed"].toInt(), A.data_ptr<float>(), c.data_ptr<float>(),
            biasScore.data_ptr<float>(), dS.data_ptr<float>(), dW.data_ptr<float>(), mutableBits(dTokens),
            dA.data_ptr<float>(), dScores.data_ptr<float>(),
            at::cuda::getCurrentCUDAStream(tokens.device().index()).stream(),
            ctx->saved_data["zero_slot_stored"].toBool(), ctx->saved_data["token_pairs"].toBool()))
      throw Error("the training pool's backward kernel failed to launch");
    const torch::Tensor sums = dScores.sum(0); // [H, 2]
    return {dTokens,         dA.sum(0),       sums.select(1, 0), sums.select(1, 1), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(),   torch::Tensor()};
  }
};

// The pool's output after TrainPackedPool, up to out_proj's input (poolOutput and poolProjection's
// first steps): S' = bf16(S w_k + ow b_k) (norm_k's affine), o_h = S'_h Wv_h^T per head (cuBLAS, as
// the ATen path), out = bf16(o + bw bv) [B, E]. ATen ran these as ~11 kernels forward (products,
// sums, casts, a reshape's copy) and ~25 backward (their backward, broadcast reductions, the value
// rows' gradient by a zero fill and a copy into in_proj's): here 3 forward (poolAffineBf16, the
// product, poolValueBiasBf16; the same bits as ATen's) and 6 backward (poolOutputGradBf16's two,
// the two products, the in_proj gradient's zero fill, one sum of the blocks' shares).
std::atomic<std::int64_t> gPoolOutputRuns{0};
struct TrainPoolOutput : torch::autograd::Function<TrainPoolOutput> {
  // S [B, H, E] and weights [B, H, 2] float32 (TrainPackedPool's); wk, bk norm_k's, bv bias_v's
  // (float32, E values); inProj the bf16 [3 E, E] in_proj weight (its value rows).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& S,
                               const torch::Tensor& weights, const torch::Tensor& wk, const torch::Tensor& bk,
                               const torch::Tensor& inProj, const torch::Tensor& bv) {
    const c10::cuda::CUDAGuard guard(S.device());
    const std::int64_t B = S.size(0), H = S.size(1), E = S.size(2), d = E / H;
    const auto stream = at::cuda::getCurrentCUDAStream(S.device().index()).stream();
    const torch::Tensor w = wk.detach().reshape({E}).contiguous(), b = bk.detach().reshape({E}).contiguous(),
                        v = bv.detach().reshape({E}).contiguous();
    torch::Tensor Sp = torch::empty({B, H, E}, S.options().dtype(torch::kBFloat16));
    if (!cuda::poolAffineBf16(S.data_ptr<float>(), weights.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                              mutableBits(Sp), B, static_cast<int>(H), static_cast<int>(E), stream))
      throw Error("the training pool's output kernel failed to launch");
    // The products as poolProjection runs them (the same cuBLAS call on the same operands).
    const torch::Tensor Wv = inProj.detach().narrow(0, 2 * E, E).view({H, d, E});
    const torch::Tensor o = torch::matmul(Sp.transpose(0, 1), Wv.transpose(1, 2)).contiguous(); // [H, B, d]
    torch::Tensor out = torch::empty({B, E}, Sp.options());
    if (!cuda::poolValueBiasBf16(bits(o), weights.data_ptr<float>(), v.data_ptr<float>(), mutableBits(out), B,
                                 static_cast<int>(H), static_cast<int>(E), stream))
      throw Error("the training pool's output kernel failed to launch");
    gPoolOutputRuns.fetch_add(1, std::memory_order_relaxed);
    ctx->save_for_backward({S, weights, w, b, v, inProj, Sp});
    ctx->saved_data["wk_shape"] = wk.sizes().vec();
    ctx->saved_data["bk_shape"] = bk.sizes().vec();
    ctx->saved_data["bv_shape"] = bv.sizes().vec();
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &S = s[0], &weights = s[1], &w = s[2], &b = s[3], &v = s[4], &inProj = s[5], &Sp = s[6];
    const c10::cuda::CUDAGuard guard(S.device());
    const std::int64_t B = S.size(0), H = S.size(1), E = S.size(2), d = E / H;
    const torch::Tensor dOut = grads[0].to(torch::kBFloat16).contiguous();
    const torch::Tensor dO = dOut.view({B, H, d}).transpose(0, 1); // [H, B, d]
    const torch::Tensor Wv = inProj.detach().narrow(0, 2 * E, E).view({H, d, E});
    const torch::Tensor dSp = torch::bmm(dO, Wv).contiguous(); // [H, B, E]
    torch::Tensor dInProj;
    if (ctx->needs_input_grad(4)) {
      dInProj = torch::zeros_like(inProj);
      torch::Tensor rows = dInProj.narrow(0, 2 * E, E).view({H, d, E});
      torch::bmm_out(rows, dO.transpose(1, 2), Sp.transpose(0, 1)); // dWv_h = dO_h^T S'_h
    }
    torch::Tensor dS = torch::empty_like(S), dWeights = torch::empty_like(weights);
    torch::Tensor partial = torch::empty({cuda::poolOutputSlices(), 3, E}, S.options());
    if (!cuda::poolOutputGradBf16(bits(dOut), bits(dSp), S.data_ptr<float>(), weights.data_ptr<float>(),
                                  w.data_ptr<float>(), b.data_ptr<float>(), v.data_ptr<float>(), dS.data_ptr<float>(),
                                  dWeights.data_ptr<float>(), partial.data_ptr<float>(), B, static_cast<int>(H),
                                  static_cast<int>(E), at::cuda::getCurrentCUDAStream(S.device().index()).stream()))
      throw Error("the training pool's output gradient kernels failed to launch");
    const torch::Tensor sums = partial.sum(0); // [3, E]: bias_v's, norm_k's weight's and bias's
    auto shaped = [&](std::int64_t i, const char* key) { return sums[i].view(ctx->saved_data[key].toIntVector()); };
    return {dS, dWeights, shaped(1, "wk_shape"), shaped(2, "bk_shape"), dInProj, shaped(0, "bv_shape")};
  }
};
#endif
} // namespace

std::int64_t CellTransformer::trainPoolDeclines() { return gTrainPoolDeclines.load(std::memory_order_relaxed); }

std::int64_t CellTransformer::poolOutputRuns() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gPoolOutputRuns.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

torch::Tensor CellTransformer::trainPackedPool([[maybe_unused]] const torch::Tensor& packed,
                                               [[maybe_unused]] const Batch& batch) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!fusedTrainPool() || !at::GradMode::is_enabled() || !packed.is_cuda() || compute_ != torch::kBFloat16) return {};
  const std::int64_t E = config_.embedDim, H = config_.heads, B = batch.observed.size(0);
  // The packed layout the kernels read: B neighbourhoods, then fillers, over every row.
  const bool layout = packed.dim() == 2 && packed.size(1) == E && packed.scalar_type() == torch::kBFloat16 &&
                      packed.is_contiguous() && batch.cuSeqlens.defined() &&
                      batch.cuSeqlens.device() == packed.device() && batch.cuSeqlens.scalar_type() == torch::kInt32 &&
                      batch.cuSeqlens.size(0) >= B + 1 && batch.order.defined() &&
                      batch.order.size(0) == packed.size(0);
  if (!layout || !cuda::packedPoolGradFits(static_cast<int>(E), static_cast<int>(H), batch.maxLength) ||
      reinterpret_cast<std::uintptr_t>(packed.data_ptr()) % 16 != 0) {
    gTrainPoolDeclines.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  const c10::cuda::CUDAGuard device(packed.device());
  const auto [A, c, biasScore] = poolScores();
  const auto out = TrainPackedPool::apply(packed, A, c, biasScore, batch.cuSeqlens, B, batch.maxLength,
                                          !batch.virtualZeroSlot, poolTokenPairs_);
  const torch::Tensor& wk = p("attn_pool.norm_k.weight");
  const torch::Tensor& inProj = P("attn_pool.attn.in_proj_weight");
  if (fusedPoolOutput_ && cuda::poolOutputFits(static_cast<int>(E), static_cast<int>(H)) &&
      inProj.scalar_type() == torch::kBFloat16 && inProj.is_contiguous() && wk.scalar_type() == torch::kFloat32) {
    // (bias_v and the norm_k weights keep their shapes: the gradients come back as theirs.)
    const torch::Tensor o =
        TrainPoolOutput::apply(out[0], out[1], wk, p("attn_pool.norm_k.bias"), inProj, p("attn_pool.attn.bias_v"));
    return ln(lin(o, "attn_pool.attn.out_proj", false), "attn_pool.norm2").view({B, 1, E});
  }
  return poolOutput(out[0], out[1].select(2, 0), out[1].select(2, 1));
#else
  return {};
#endif
}

namespace {
#ifdef ATLASCOPE_FUSED_KERNELS
// The checks' weights at `config`: initWeights' (seed), with the pool's LayerNorms, bias_k and query
// random (torch's generator from randomSeed; initWeights leaves them the identity and zero), so that a wrong column,
// head or term of a backward shows.
StateDict randomPoolWeights(const ModelConfig& config, std::uint64_t seed, std::uint64_t randomSeed) {
  StateDict weights = initWeights(config, seed);
  torch::manual_seed(randomSeed);
  for (const char* n : {"norm", "norm_v", "norm_k"}) {
    weights.at(std::string("attn_pool.") + n + ".weight") = 1.0 + 0.5 * torch::randn({config.embedDim});
    weights.at(std::string("attn_pool.") + n + ".bias") = 0.5 * torch::randn({config.embedDim});
  }
  weights.at("attn_pool.attn.bias_k") = torch::randn({1, 1, config.embedDim});
  weights.at("attn_pool.query_token") = torch::randn({1, config.embedDim});
  return weights;
}

// `cells` padded neighbourhoods of 0 to 250 of the cells [0, pool) (the first empty, the second
// full), for packBatch.
Batch randomNeighbourhoods(std::int64_t cells, std::int64_t pool) {
  const torch::Tensor lengths = torch::randint(0, 251, {cells}, torch::kInt64);
  lengths[0] = 0;
  lengths[1] = 250;
  const std::int64_t N = lengths.max().item<std::int64_t>();
  Batch padded;
  padded.observed = torch::randint(0, pool, {cells, N}, torch::kInt64);
  padded.valid = torch::arange(N, torch::kInt64).unsqueeze(0) < lengths.unsqueeze(1);
  padded.reference = torch::randint(0, pool, {cells}, torch::kInt64);
  return padded;
}
#endif
} // namespace

CellTransformer::TrainPoolCheck CellTransformer::checkTrainPool(torch::Device device, std::int64_t cells) {
  TrainPoolCheck r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!fusedKernelsBuilt() || !device.is_cuda()) return r;
  const ModelConfig config = checkConfig(); // the released size
  StateDict weights = randomPoolWeights(config, 13, 37);
  CellTransformer low(weights, config, "check"), exact(std::move(weights), config, "check");
  low.to(device, torch::kBFloat16);
  exact.to(device, torch::kFloat32);
  // Training's packing (token multiple) of neighbourhoods of 0 to 250 cells, with virtual zero
  // slots (the default) and stored ones (a tail of two rows a sequence).
  for (const bool virtualSlots : {true, false}) {
    torch::manual_seed(41);
    const Batch batch =
        toDevice(packBatch(randomNeighbourhoods(cells, 5000), low.trainingPackShape(1024, virtualSlots)), device);
    const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
    // Encoder-like rows (not centred, not unit: the LayerNorm's statistics matter), bf16 for both.
    const torch::Tensor rows = (torch::randn({batch.order.size(0), config.embedDim}, o) * 1.7 + 0.3).contiguous();
    const torch::Tensor dout = torch::randn({batch.observed.size(0), 1, config.embedDim}, o);
    const std::vector<std::string> names{
        "attn_pool.query_token", "attn_pool.norm.weight",   "attn_pool.norm.bias",   "attn_pool.attn.in_proj_weight",
        "attn_pool.attn.bias_k", "attn_pool.norm_v.weight", "attn_pool.norm_v.bias", "attn_pool.norm_k.weight",
        "attn_pool.norm_k.bias", "attn_pool.attn.bias_v"};
    // The pooled token, the rows' gradient and the parameters' (float32); empty where the fused pool declined.
    auto run = [&](CellTransformer& model, bool fused) {
      for (const auto& n : names) {
        torch::Tensor& t = model.mutableParameters().at(n);
        t = t.detach().clone().requires_grad_(true);
      }
      // The bf16 model's compute copies from these leaves, so that the value rows' gradient (read
      // through in_proj's bf16 copy) reaches the float32 parameter as the scores' rows' does.
      model.refreshComputeCopies();
      model.setFusedTrainPool(fused);
      const torch::Tensor x = rows.to(model.computeType()).detach().clone().requires_grad_(true);
      torch::Tensor pooled = fused ? model.trainPackedPool(x, batch) : model.packedPool(x, batch);
      if (!pooled.defined()) return std::vector<torch::Tensor>{};
      (pooled.to(torch::kFloat32) * dout.to(torch::kFloat32)).sum().backward();
      std::vector<torch::Tensor> out{pooled.detach().to(torch::kFloat32), x.grad().to(torch::kFloat32)};
      for (const auto& n : names) {
        const torch::Tensor g = model.parameters().at(n).grad();
        if (g.defined() && n == "attn_pool.attn.in_proj_weight") {
          // The score rows and the value rows apart (each relative to its own largest value).
          out.push_back(g.narrow(0, 0, 2 * config.embedDim));
          out.push_back(g.narrow(0, 2 * config.embedDim, config.embedDim));
        } else {
          out.push_back(g);
        }
      }
      return out;
    };
    const auto reference = run(exact, false), aten = run(low, false);
    const std::int64_t outputsBefore = poolOutputRuns();
    const auto fused = run(low, true);
    const bool outputRan = poolOutputRuns() > outputsBefore;
    // The same fused pool one token a warp at a time: the same bits.
    low.setPoolTokenPairs(false);
    const auto single = run(low, true);
    low.setPoolTokenPairs(true);
    // The same fused pool with its output by ATen's operations: the same forward bits.
    low.setFusedPoolOutput(false);
    const auto fusedAtenOutput = run(low, true);
    low.setFusedPoolOutput(true);
    // The larger over the two layouts; -1 (declined) and NaN stay.
    auto merge = [first = virtualSlots](double& into, double v) {
      if (first || v < 0 || std::isnan(v) || (into >= 0 && v > into)) into = v;
    };
    merge(r.aten, worstRelativeDifference(aten, reference));
    merge(r.fused, outputRan ? worstRelativeDifference(fused, reference) : -1.0);
    if (outputRan && fused.size() == fusedAtenOutput.size() && !fused.empty()) {
      merge(r.outputForward, (fused[0] - fusedAtenOutput[0]).abs().max().item<double>());
      merge(r.outputGradient, worstRelativeDifference(fused, fusedAtenOutput, 1)); // the gradients
    } else {
      merge(r.outputForward, -1.0);
      merge(r.outputGradient, -1.0);
    }
    merge(r.tokenPairs, outputRan && !fused.empty() ? worstAbsoluteDifference(fused, single) : -1.0);
  }
#else
  (void)device;
  (void)cells;
#endif
  return r;
}

torch::Tensor CellTransformer::normalizedPool(const torch::Tensor& n, const torch::Tensor& valid,
                                              const torch::Tensor& values) const {
  const std::int64_t H = config_.heads;
  const std::int64_t B = n.size(0), N = n.size(1);
  const auto [A, c, biasScore] = poolScores();
  torch::Tensor scores = torch::matmul(n, A.to(compute_).t()).to(torch::kFloat32) + c; // [B, N, H]
  if (valid.defined()) scores = scores.masked_fill(valid.logical_not().unsqueeze(-1), -INFINITY);
  // The two extra keys: bias_k, and the all-zero key of add_zero_attn (score 0, value 0).
  const torch::Tensor extra = torch::stack({biasScore, torch::zeros_like(biasScore)}).unsqueeze(0).expand({B, 2, H});
  const torch::Tensor attn = torch::softmax(torch::cat({scores, extra}, 1), 1); // [B, N+2, H]
  const torch::Tensor a = attn.narrow(1, 0, N);
  const torch::Tensor S =
      torch::matmul(a.transpose(1, 2).to(compute_), values.defined() ? values : n).to(torch::kFloat32); // [B, H, E]
  return poolOutput(S, a.sum(1), attn.select(1, N));
}

torch::Tensor CellTransformer::packedAttentionPool(const torch::Tensor& packed, const Batch& batch) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::int64_t E = config_.embedDim, H = config_.heads, B = batch.reference.size(0);
  if (!cuda::packedPoolFits(static_cast<int>(E), static_cast<int>(H), batch.maxLength) ||
      packed.scalar_type() != torch::kBFloat16 || !packed.is_contiguous())
    return {};
  const c10::cuda::CUDAGuard device(packed.device());
  const auto [A, c, biasScore] = poolScores();
  const torch::Tensor Ac = A.contiguous(), cc = c.contiguous(), bc = biasScore.contiguous();
  torch::Tensor weights = torch::empty({B, H, 2}, packed.options().dtype(torch::kFloat32));
  // The kernel also applies norm_k's affine and the cast (poolOutput's first line, the same bits),
  // writing bf16 S: four elementwise passes over a float32 [B, H, E] less (~0.1 ms of a batch).
  const torch::Tensor &normW = p("attn_pool.norm_k.weight"), &normB = p("attn_pool.norm_k.bias");
  const bool affine = !poolKernelBefore_ && compute_ == torch::kBFloat16 && normW.scalar_type() == torch::kFloat32 &&
                      normB.scalar_type() == torch::kFloat32 && normW.is_contiguous() && normB.is_contiguous() &&
                      normW.device() == packed.device() && normB.device() == packed.device() && normW.numel() == E &&
                      normB.numel() == E;
  torch::Tensor S = torch::empty({B, H, E}, packed.options().dtype(affine ? torch::kBFloat16 : torch::kFloat32));
  if (!cuda::packedPoolBf16(bits(packed), batch.cuSeqlens.data_ptr<int>(), B, static_cast<int>(E), static_cast<int>(H),
                            batch.maxLength, Ac.data_ptr<float>(), cc.data_ptr<float>(), bc.data_ptr<float>(),
                            affine ? nullptr : S.data_ptr<float>(), weights.data_ptr<float>(),
                            at::cuda::getCurrentCUDAStream(packed.device().index()).stream(), poolKernelBefore_,
                            affine ? normW.data_ptr<float>() : nullptr, affine ? normB.data_ptr<float>() : nullptr,
                            affine ? mutableBits(S) : nullptr, !batch.virtualZeroSlot, poolTokenPairs_))
    return {};
  return affine ? poolProjection(S, weights.select(2, 1)) : poolOutput(S, weights.select(2, 0), weights.select(2, 1));
#else
  (void)packed;
  (void)batch;
  return {};
#endif
}

namespace {
std::atomic<std::int64_t> gTypeRowDeclines{0}, gTypeRowRuns{0};

// A type table's gradient from its rows' (grad [rows, cols], types int64 [rows]): per-type sums in
// float32 (with `kernel`, FusedKernels.cu's typeRowSumsBf16 on a GPU in bf16, reading a strided
// slice in place), in the table's dtype.
torch::Tensor typeRowSums(const torch::Tensor& grad, const torch::Tensor& types, std::int64_t classes,
                          torch::ScalarType dtype, [[maybe_unused]] bool kernel = true) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (kernel && grad.is_cuda() && grad.scalar_type() == torch::kBFloat16 && dtype == torch::kBFloat16 &&
      grad.dim() == 2 && grad.stride(1) == 1 && types.scalar_type() == torch::kInt64 && types.is_contiguous() &&
      types.device() == grad.device() && classes <= std::numeric_limits<int>::max() &&
      grad.size(1) <= std::numeric_limits<int>::max()) {
    const c10::cuda::CUDAGuard guard(grad.device());
    const int cols = static_cast<int>(grad.size(1)), c = static_cast<int>(classes);
    const torch::Tensor partial =
        torch::empty({cuda::typeRowSumsPartialFloats(grad.size(0), cols, c)}, grad.options().dtype(torch::kFloat32));
    torch::Tensor out = torch::empty({classes, grad.size(1)}, grad.options());
    if (cuda::typeRowSumsBf16(bits(grad), grad.stride(0), types.data_ptr<std::int64_t>(), grad.size(0), cols, c,
                              partial.data_ptr<float>(), mutableBits(out),
                              at::cuda::getCurrentCUDAStream(grad.device().index()).stream()))
      return out;
    gTypeRowDeclines.fetch_add(1, std::memory_order_relaxed);
  }
#endif
  return torch::zeros({classes, grad.size(1)}, grad.options().dtype(torch::kFloat32))
      .index_add_(0, types, grad.to(torch::kFloat32))
      .to(dtype);
}

// Rows of a type table in its own dtype (the compute copy's: no cast of a [rows, cols] float32
// gather), the gradient by typeRowSums: index_select's backward is an index_add into the table's
// dtype, atomics in bf16 on a GPU. In bf16, each type's sum over its rows (~700 a type in a
// training step) is rounded to bf16 once before it is added into the float32 weights, as every
// other weight's gradient from a bf16 product is; the path before added ATen's float32 sums
// unrounded (parity's train_type_rows_* compare both with float64 sums after that rounding).
// `kernel` false (--no-fused-kernels): ATen's float32 index_add for the sums.
struct TypeRows : torch::autograd::Function<TypeRows> {
  // tokenRowKernels: the rows by gatherRows' kernel (CellTransformer::setFusedTokenRows).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& table,
                               const torch::Tensor& types, bool kernel, bool tokenRowKernels) {
    gTypeRowRuns.fetch_add(1, std::memory_order_relaxed);
    ctx->save_for_backward({types});
    ctx->saved_data["classes"] = table.size(0);
    ctx->saved_data["dtype"] = static_cast<std::int64_t>(table.scalar_type());
    ctx->saved_data["kernel"] = kernel;
    return gatherRows(table, types, kernel && tokenRowKernels);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor types = ctx->get_saved_variables()[0];
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {typeRowSums(grads[0], types, ctx->saved_data["classes"].toInt(), dtype, ctx->saved_data["kernel"].toBool()),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

#ifdef ATLASCOPE_FUSED_KERNELS
std::atomic<std::int64_t> gProjNormRuns{0};

// proj_norm in training (bf16, on a GPU): LayerNorm of [type embedding row, expression MLP output]
// with the type's row read from the table by the LayerNorm's kernels (layerNormForwardBf16's and
// layerNormBackwardBf16's `index`), where TypeRows' gather wrote the rows, ATen's cat wrote them
// again beside the MLP's output and LayerNorm read the concatenation back (docs/performance/
// training.md, session 31). The same kernels' arithmetic on the same values, so the same bits as
// TypeRows, cat and TrainLayerNorm's one-pass kernels (checkTrainProjNorm asks for equality); the
// table's gradient by typeRowSums on dx's left half, the MLP's
// output's the right half in place (as cat's backward gave both). A kernel that declines (none
// does on the shapes CellTransformer::projNorm passes): the concatenation written and ATen's
// LayerNorm, forward and backward.
struct TrainProjNorm : torch::autograd::Function<TrainProjNorm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& table,
                               const torch::Tensor& types, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& b, double eps, bool kernelSums) {
    const c10::cuda::CUDAGuard guard(h.device());
    const std::int64_t M = h.size(0), half = h.size(1), N = 2 * half;
    torch::Tensor out = torch::empty({M, N}, h.options());
    torch::Tensor mean = torch::empty({M, 1}, h.options().dtype(torch::kFloat32)), rstd = torch::empty_like(mean);
    torch::Tensor x; // written only where the kernel declines
    if (cuda::layerNormForwardBf16(bits(table), bits(w), bits(b), mutableBits(out), mean.data_ptr<float>(),
                                   rstd.data_ptr<float>(), M, static_cast<int>(N), static_cast<float>(eps),
                                   at::cuda::getCurrentCUDAStream(h.device().index()).stream(), bits(h), nullptr, false,
                                   types.data_ptr<std::int64_t>(), table.size(0))) {
      gProjNormRuns.fetch_add(1, std::memory_order_relaxed);
    } else {
      gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
      x = torch::cat({table.index_select(0, types), h}, 1);
      std::tie(out, mean, rstd) = at::native_layer_norm(x, {N}, w, b, eps);
    }
    ctx->save_for_backward({table, types, h, w, b, mean, rstd, x});
    ctx->saved_data["kernel"] = kernelSums;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &table = s[0], &types = s[1], &h = s[2], &w = s[3], &b = s[4], &mean = s[5], &rstd = s[6];
    torch::Tensor x = s[7];
    const c10::cuda::CUDAGuard guard(h.device());
    const std::int64_t M = h.size(0), half = h.size(1), N = 2 * half;
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dx = torch::empty({M, N}, h.options()), dw = torch::empty_like(w), db = torch::empty_like(b);
    bool done = false;
    if (!x.defined()) {
      const int blocks = cuda::layerNormBackwardBlocks(M, static_cast<int>(N));
      const torch::Tensor partial = torch::empty({2 * blocks * N}, h.options().dtype(torch::kFloat32));
      done = cuda::layerNormBackwardBf16(bits(dy), bits(table), bits(w), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                                         mutableBits(dx), partial.data_ptr<float>(), mutableBits(dw), mutableBits(db),
                                         M, static_cast<int>(N),
                                         at::cuda::getCurrentCUDAStream(h.device().index()).stream(), nullptr, 0,
                                         nullptr, nullptr, bits(h), types.data_ptr<std::int64_t>(), table.size(0));
      if (!done) {
        gLayerNormDeclines.fetch_add(1, std::memory_order_relaxed);
        x = torch::cat({table.index_select(0, types), h}, 1);
      }
    }
    if (!done) std::tie(dx, dw, db) = at::native_layer_norm_backward(dy, x, {N}, mean, rstd, w, b, {true, true, true});
    return {typeRowSums(dx.narrow(1, 0, half), types, table.size(0), table.scalar_type(),
                        ctx->saved_data["kernel"].toBool()),
            torch::Tensor(),
            dx.narrow(1, half, half),
            dw,
            db,
            torch::Tensor(),
            torch::Tensor()};
  }
};
#endif
} // namespace

double CellTransformer::checkTrainProjNorm([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows) {
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || rows <= 0) return -1;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(29);
  const std::int64_t C = 150, half = 192;
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  double worst = 0;
  for (const std::int64_t m : {rows, rows + 5, std::int64_t{3}}) {
    // Skewed type counts, as cell types are (checkTypeRows').
    const torch::Tensor types =
        (torch::rand({m}, torch::TensorOptions().device(device)).pow(3) * C).to(torch::kInt64).clamp(0, C - 1);
    const torch::Tensor table0 = torch::randn({C, half}, o), h0 = torch::randn({m, half}, o) * 2 + 0.5,
                        dy = torch::randn({m, 2 * half}, o);
    const torch::Tensor w0 = 1 + 0.1 * torch::randn({2 * half}, o), b0 = 0.1 * torch::randn({2 * half}, o);
    auto grads = [&](bool fused) {
      torch::Tensor table = table0.clone().requires_grad_(true), h = h0.clone().requires_grad_(true),
                    w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
      const torch::Tensor y = fused
                                  ? TrainProjNorm::apply(table, types, h, w, b, 1e-5, true)
                                  : TrainLayerNorm::apply(torch::cat({TypeRows::apply(table, types, true, true), h}, 1),
                                                          w, b, 1e-5, false, true, false);
      (y.to(torch::kFloat32) * dy.to(torch::kFloat32)).sum().backward();
      return std::vector<torch::Tensor>{y, table.grad(), h.grad(), w.grad(), b.grad()};
    };
    const std::int64_t runs = gProjNormRuns.load(), declines = gLayerNormDeclines.load();
    const auto a = grads(true);
    if (gProjNormRuns.load() == runs || gLayerNormDeclines.load() != declines) return 1.0;
    keepWorst(worst, worstAbsoluteDifference(a, grads(false)));
  }
  return worst;
#else
  return -1;
#endif
}

std::int64_t CellTransformer::projNormRuns() {
#ifdef ATLASCOPE_FUSED_KERNELS
  return gProjNormRuns.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

std::int64_t CellTransformer::typeRowDeclines() { return gTypeRowDeclines.load(); }
std::int64_t CellTransformer::typeRowRuns() { return gTypeRowRuns.load(); }

// Rows of a type-embedding table. Training (computeTypeRows_, gradients on): the compute copy's rows
// by TypeRows. Otherwise gathered from the float32 master and then cast: an index_select's backward
// is an index_add into float32 (atomics, no host synchronisation), where the embedding's sorting
// backward reads a segment count back to the host, which a CUDA graph capture of the training step
// cannot contain. The same values either way (the compute copy is the master's cast).
torch::Tensor CellTransformer::typeEmbedding(const std::string& table, const torch::Tensor& types) const {
  const torch::Tensor& low = P(table);
  if (computeTypeRows_ && at::GradMode::is_enabled() && low.requires_grad() && low.scalar_type() == compute_)
    return TypeRows::apply(low, types, fused_, fusedTokenRows_);
  return p(table).index_select(0, types).to(compute_);
}

CellTransformer::TypeRowsCheck CellTransformer::checkTypeRows([[maybe_unused]] torch::Device device,
                                                              [[maybe_unused]] std::int64_t rows) {
  TypeRowsCheck r;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (!device.is_cuda() || rows <= 0) return r;
  const c10::cuda::CUDAGuard guard(device);
  torch::manual_seed(23);
  const std::int64_t C = 150;
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  double kernel = 0, aten = 0;
  for (const auto& [R, cols, width] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{rows, 192, 384},
                                       std::tuple<std::int64_t, std::int64_t, std::int64_t>{1024, 384, 384}}) {
    // Skewed type counts, as cell types are: a few types hold most rows.
    const torch::Tensor types =
        (torch::rand({R}, torch::TensorOptions().device(device)).pow(3) * C).to(torch::kInt64).clamp(0, C - 1);
    const torch::Tensor grad = torch::randn({R, width}, o).narrow(1, 0, cols); // rows `width` apart
    const torch::Tensor exact =
        torch::zeros({C, cols}, grad.options().dtype(torch::kFloat64)).index_add_(0, types, grad.to(torch::kFloat64));
    const double scale = exact.abs().max().clamp_min(1e-12).item<double>();
    const std::int64_t declines = gTypeRowDeclines.load();
    const torch::Tensor k = typeRowSums(grad, types, C, torch::kBFloat16);
    if (gTypeRowDeclines.load() != declines) return r;
    const torch::Tensor a = typeRowSums(grad, types, C, torch::kBFloat16, /*kernel=*/false); // ATen's
    kernel = std::max(kernel, (k.to(torch::kFloat64) - exact).abs().max().item<double>() / scale);
    aten = std::max(aten, (a.to(torch::kFloat64) - exact).abs().max().item<double>() / scale);
  }
  r.kernel = kernel;
  r.aten = aten;
#endif
  return r;
}

torch::Tensor CellTransformer::cellTokens(const torch::Tensor& x, const torch::Tensor& t) const {
  // The trainer's padded table (paddedGenes() columns, zero past G): the first product runs over all
  // of them against the weight padded with zero columns, the same sums with zero terms added. Over
  // G = 500 columns (1,000-byte rows) cuBLAS took align-2 kernels, 0.15 ms forward and 0.09 ms for
  // the weight gradient of a training step at the released size.
  const std::int64_t G = config_.genes, width = x.size(-1);
  torch::Tensor h =
      width == paddedGenes() && width != G
          ? linear(x.to(compute_), torch::constant_pad_nd(P("expression_projection.0.weight"), {0, width - G}),
                   P("expression_projection.0.bias"), false)
          : lin(x, "expression_projection.0");
  h = lnGelu(h, "expression_projection.1");
  h = ln(lin(h, "expression_projection.3"), "expression_projection.4");
  return projNorm(t, h);
}

torch::Tensor CellTransformer::projNorm(const torch::Tensor& t, const torch::Tensor& h) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  // Training on a GPU in bf16 with the one-pass LayerNorm and the type rows from the compute copy
  // (typeEmbedding's TypeRows): the type rows read by the LayerNorm's kernels (TrainProjNorm).
  const torch::Tensor& table = P("encoder_cell_embed.weight");
  const torch::Tensor& w = P("proj_norm.weight");
  const torch::Tensor& b = P("proj_norm.bias");
  const auto bf16 = torch::kBFloat16;
  if (fused_ && fusedLayerNorm_ && fusedProjNorm_ && computeTypeRows_ && at::GradMode::is_enabled() && h.is_cuda() &&
      compute_ == bf16 && h.scalar_type() == bf16 && h.dim() == 2 && h.size(0) > 0 && table.requires_grad() &&
      table.scalar_type() == bf16 && table.dim() == 2 && table.is_contiguous() && table.size(1) == h.size(1) &&
      table.device() == h.device() && w.scalar_type() == bf16 && b.scalar_type() == bf16 && w.is_contiguous() &&
      b.is_contiguous() && w.numel() == 2 * h.size(1) && b.numel() == 2 * h.size(1) &&
      t.scalar_type() == torch::kInt64 && t.dim() == 1 && t.size(0) == h.size(0) && t.device() == h.device())
    return TrainProjNorm::apply(table, t.contiguous(), h.contiguous(), w, b, 1e-5, fused_);
#endif
  const torch::Tensor typeEmb = typeEmbedding("encoder_cell_embed.weight", t);
  return ln(torch::cat({typeEmb, h}, -1), "proj_norm");
}

namespace {
// Seconds per stage, at stage boundaries (the device synchronised first), for profiles.
struct StageClock {
  std::map<std::string, double>* profile;
  bool cuda;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  void operator()(const char* name) {
    if (!profile) return;
    if (cuda) torch::cuda::synchronize();
    const auto now = std::chrono::steady_clock::now();
    (*profile)[name] += std::chrono::duration<double>(now - last).count();
    last = now;
  }
};
} // namespace

Output CellTransformer::forward(const torch::Tensor& expression, const torch::Tensor& types, const Batch& batch,
                                Heads heads, std::map<std::string, double>* profile) const {
  StageClock stage{profile, device_.is_cuda()};
  stage("batch");
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  // Tokens of observed cells: LN_proj([Emb_enc[type] ; MLP(x)]).
  const bool packed = batch.rows.defined();
  const torch::Tensor rows = packed ? batch.rows : batch.observed.reshape({-1});
  // A padded table (the trainer's copy in the compute dtype) goes to cellTokens as it is.
  const torch::Tensor x = gatherRows(expression, rows, fusedTokenRows() && at::GradMode::is_enabled());
  torch::Tensor tokens = cellTokens(x, types.index_select(0, rows));
  if (!packed) tokens = tokens.view({B, N, E});
  stage("gather + expression MLP");
  return encodeDecode(tokens, types, batch, heads, profile);
}

Output CellTransformer::forwardFromTokens(const torch::Tensor& tokenTable, const torch::Tensor& types,
                                          const Batch& batch, Heads heads,
                                          std::map<std::string, double>* profile) const {
  StageClock stage{profile, device_.is_cuda()};
  stage("batch");
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  // Packed (packBatch): the real tokens only, back to back (gathered with the class tokens and
  // zero slots in one kernel where the fused pool runs); padded: [B, N, E].
  if (batch.rows.defined() && fusedPool() && !at::GradMode::is_enabled() && tokenTable.scalar_type() == compute_ &&
      batch.rows.device() == tokenTable.device() && batch.order.device() == tokenTable.device())
    return encodeDecode({}, types, batch, heads, profile, tokenTable);
  const torch::Tensor narrow = tokenTable.narrow(1, 0, E); // a wide table's tokens
  const torch::Tensor tokens = batch.rows.defined()
                                   ? narrow.index_select(0, batch.rows)
                                   : narrow.index_select(0, batch.observed.reshape({-1})).view({B, N, E});
  stage("gather tokens");
  return encodeDecode(tokens, types, batch, heads, profile);
}

bool CellTransformer::firstLayerPerCell() const {
  return firstLayerPerCell_ && shortAttention() && fusedPool() && variableLengthAttention() && attentionVariant_ == 0 &&
         config_.encoderLayers > 0;
}

bool CellTransformer::virtualZeroSlots() const {
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::int64_t d = config_.embedDim / config_.heads;
  return shortAttention() && fusedPool() && attentionVariant_ != 1 && variableLengthAttention() &&
         cuda::shortAttentionFits(static_cast<int>(d), 1);
#else
  return false;
#endif
}

PackShape CellTransformer::trainingPackShape(std::int64_t tokenMultiple, bool virtualSlots) const {
  if (!device_.is_cuda()) {
    PackShape exact;
    exact.virtualZeroSlot = virtualSlots;
    return exact;
  }
  PackShape shape{std::max<std::int64_t>(1, tokenMultiple), 32};
  if (!virtualSlots) return shape;
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::int64_t d = config_.embedDim / config_.heads;
  if (variableLengthAttention() && shortAttention() && cuda::shortAttentionFits(static_cast<int>(d), 1)) {
    shape.virtualZeroSlot = true;
    shape.virtualZeroSlotLongest = cuda::kShortAttentionLongest;
  }
#endif
  return shape;
}

std::int64_t CellTransformer::cellTableColumns([[maybe_unused]] std::int64_t cells) const {
  const std::int64_t E = config_.embedDim;
#ifdef ATLASCOPE_FUSED_KERNELS
  if (firstLayerPerCell() && cells < (std::int64_t(1) << 31)) { // rows indexed by int32
    const auto total = static_cast<double>(at::cuda::getDeviceProperties(device_.index())->totalGlobalMem);
    if (static_cast<double>(cells) * 4 * E * 2 <= total / 4) return 4 * E;
  }
#endif
  return E;
}

torch::Tensor CellTransformer::firstLayerProjection(const torch::Tensor& x) const {
  // As packedSelfAttention projects each token (the same product and bias, so the same bf16 values
  // row for row).
  const std::string l = "encoder.layers.0.self_attn";
  return linear(x, P(l + ".in_proj_weight"), P(l + ".in_proj_bias"), false);
}

torch::Tensor CellTransformer::widenTokenTable(const torch::Tensor& tokens) const {
  return torch::cat({tokens, firstLayerProjection(tokens)}, 1);
}

torch::Tensor CellTransformer::cellTable(const torch::Tensor& expression, const torch::Tensor& types,
                                         std::int64_t columns) const {
  const torch::Tensor tokens = cellTokens(expression, types);
  return columns == 4 * config_.embedDim ? widenTokenTable(tokens) : tokens;
}

torch::Tensor CellTransformer::firstLayerAttention([[maybe_unused]] const torch::Tensor& table,
                                                   [[maybe_unused]] const torch::Tensor& index,
                                                   [[maybe_unused]] const torch::Tensor& cls,
                                                   [[maybe_unused]] const Batch& batch) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H, R = index.size(0);
  // Every way out without the kernel counts (a neighbourhood past the kernel's 272 rows, say:
  // inference has no cap), so that the run's report and `parity` see it.
  if (!firstLayerPerCell() || at::GradMode::is_enabled() || table.size(1) != 4 * E || !table.is_contiguous() ||
      table.scalar_type() != torch::kBFloat16 || !cuda::shortAttentionFits(static_cast<int>(d), batch.maxLength)) {
    ++firstLayerDeclines_;
    return {};
  }
  const c10::cuda::CUDAGuard device(table.device());
  const torch::Tensor clsQkv = firstLayerProjection(cls.reshape({1, E}).to(compute_)).contiguous();
  torch::Tensor out = torch::empty({R, E}, table.options());
  const auto* base = bits(table);
  if (!cuda::shortAttentionGatherBf16(base + E, base + 2 * E, base + 3 * E, 4 * E, index.data_ptr<int>(), bits(clsQkv),
                                      batch.cuSeqlens.data_ptr<int>(), batch.cuSeqlens.size(0) - 1, static_cast<int>(H),
                                      static_cast<int>(d), batch.maxLength,
                                      static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), mutableBits(out), E,
                                      at::cuda::getCurrentCUDAStream(table.device().index()).stream(),
                                      batch.virtualZeroSlot ? batch.observed.size(0) : 0)) {
    ++firstLayerDeclines_;
    return {};
  }
  ++firstLayerRuns_;
  return lin(out, "encoder.layers.0.self_attn.out_proj");
#else
  return {};
#endif
}

torch::Tensor CellTransformer::firstLayerNorm([[maybe_unused]] const torch::Tensor& table,
                                              [[maybe_unused]] const torch::Tensor& index,
                                              [[maybe_unused]] const torch::Tensor& cls,
                                              [[maybe_unused]] const torch::Tensor& attention) const {
#ifdef ATLASCOPE_FUSED_KERNELS
  const std::string prefix = "encoder.layers.0.norm1";
  const torch::Tensor &w = P(prefix + ".weight"), &b = P(prefix + ".bias");
  const std::int64_t E = config_.embedDim, R = index.size(0);
  if (!fused_ || at::GradMode::is_enabled() || !table.is_contiguous() || table.scalar_type() != torch::kBFloat16 ||
      attention.scalar_type() != torch::kBFloat16 || attention.size(0) != R || attention.size(-1) != E ||
      w.scalar_type() != torch::kBFloat16 || b.scalar_type() != torch::kBFloat16 || !w.is_contiguous() ||
      !b.is_contiguous())
    return {};
  const c10::cuda::CUDAGuard device(table.device());
  // The class token's row as assembleTokens writes it.
  const torch::Tensor c = cls.reshape({E}).to(torch::kBFloat16).contiguous();
  const torch::Tensor y = attention.contiguous();
  torch::Tensor out = torch::empty({R, E}, table.options());
  if (!cuda::gatherAddLayerNormBf16(bits(table), table.size(1), index.data_ptr<int>(), bits(c), bits(y), bits(w),
                                    bits(b), mutableBits(out), R, static_cast<int>(E), 1e-5f,
                                    at::cuda::getCurrentCUDAStream(table.device().index()).stream()))
    return {};
  firstResidualRuns_.fetch_add(1, std::memory_order_relaxed);
  return out;
#else
  return {};
#endif
}

torch::Tensor CellTransformer::headsSideBySide(const char* part) const {
  return torch::cat({P(std::string("zinb_proj.mu.") + part), P(std::string("zinb_proj.theta.") + part),
                     P(std::string("zinb_proj.gate_logit.") + part)});
}

Output CellTransformer::encodeDecode(torch::Tensor tokens, const torch::Tensor& types, const Batch& batch, Heads heads,
                                     std::map<std::string, double>* profile, const torch::Tensor& table) const {
  StageClock stage{profile, device_.is_cuda()};
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  const torch::Tensor encValid =
      batch.uniform ? torch::Tensor() : torch::cat({batch.valid, torch::ones({B, 2}, batch.valid.options())}, 1);
  // [observed ; CLS ; zero slot]: the last slot carries add_zero_attn's all-zero key and value,
  // written into each layer's projections in place, so that no layer copies its keys and values
  // to append them. Its own output is never read.
  torch::Tensor enc;    // [B, N, E] for the pool (padded batches)
  torch::Tensor pooled; // [B, 1, E], where the fused pool read the packed encoder output
  if (batch.rows.defined()) {
    // Packed: [tokens of rows ; B class tokens ; B zero slots (none where virtual)], put in sequence order.
    const torch::Tensor cls = ln(P("cls_token"), "proj_norm");
    // A wide table (cellTable): each position's table row, for the first layer's q|k|v, and
    // (firstResidualFromTable) for its add + LayerNorm's residual: the index alone then.
    const bool wide = table.defined() && table.size(1) == 4 * E;
    const bool indexOnly = wide && firstResidualFromTable_ && !fp8_ && config_.encoderLayers > 0 && firstLayerPerCell();
    torch::Tensor index;
    torch::Tensor assembled =
        table.defined() ? assembleTokens(table, cls, batch, wide ? &index : nullptr, indexOnly) : torch::Tensor();
    if (wide && !index.defined()) ++firstLayerDeclines_; // the per-token first layer runs instead
    torch::Tensor firstAttention, firstNormed;           // layer 0 from the table alone
    torch::Tensor packedResidual;                        // PackTokens' second output
    if (indexOnly && index.defined()) {
      firstAttention = firstLayerAttention(table, index, cls, batch);
      if (firstAttention.defined()) firstNormed = firstLayerNorm(table, index, cls, firstAttention);
      // A decline: the tokens after all (the layer then runs as below).
      if (!firstNormed.defined()) assembled = assembleTokens(table, cls, batch);
    }
    // With firstNormed, tokens stays undefined: layer 0 reads nothing else.
    if (!firstNormed.defined() && assembled.defined()) {
      tokens = assembled;
    } else if (!firstNormed.defined()) {
      const torch::Tensor rows = table.defined() ? table.narrow(1, 0, E).index_select(0, batch.rows) : tokens;
      // The class token's rows written out: ATen's cat of an expanded row took its slow path.
      const torch::Tensor clsRows =
          computeTypeRows_ ? cls.view({1, E}).expand({B, E}).contiguous() : cls.view({1, E}).expand({B, E});
      if (fusedTokenRows() && at::GradMode::is_enabled() && rows.is_cuda() && compute_ == torch::kBFloat16) {
        const auto both = PackTokens::apply(rows.to(compute_), clsRows.contiguous(), batch.order);
        tokens = both[0];
        packedResidual = both[1];
      } else {
        // (Virtual zero slots: no slot rows, so that `order` permutes the concatenation's rows.)
        std::vector<torch::Tensor> parts{rows.to(compute_), clsRows};
        if (!batch.virtualZeroSlot) parts.push_back(torch::zeros({B, E}, rows.options().dtype(compute_)));
        tokens = permuteRows(torch::cat(parts, 0), batch.order);
      }
    }
    stage("gather tokens");
    // encoderFeedForward's second output: the same values (PackTokens': a second output of its own).
    torch::Tensor residual = packedResidual.defined() ? packedResidual : tokens;
    for (int i = 0; i < config_.encoderLayers; ++i) {
      const std::string l = "encoder.layers." + std::to_string(i);
      if (i == 0 && firstNormed.defined()) {
        std::tie(tokens, residual) = encoderFeedForward({}, {}, 0, firstNormed);
        continue;
      }
      torch::Tensor attention = i == 0 ? firstAttention : torch::Tensor();
      if (i == 0 && !attention.defined() && index.defined() && !indexOnly) // (indexOnly: tried above)
        attention = firstLayerAttention(table, index, cls, batch);
      if (!attention.defined()) attention = packedSelfAttention(tokens, l + ".self_attn", batch, encValid);
      std::tie(tokens, residual) = encoderFeedForward(residual, attention, i);
    }
    if (fusedPool() && !at::GradMode::is_enabled() && batch.cuSeqlens.device() == tokens.device()) {
      pooled = packedAttentionPool(tokens, batch);
      if (!pooled.defined()) ++fusedPoolDeclines_;
    }
    if (!pooled.defined() && packedPool_) pooled = trainPackedPool(tokens, batch);
    if (!pooled.defined() && packedPool_) pooled = packedPool(tokens, batch);
    if (!pooled.defined()) enc = scatterPadded(tokens, batch).view({B, N + 2, E}).narrow(1, 0, N);
  } else {
    const torch::Tensor cls = ln(P("cls_token"), "proj_norm").view({1, 1, E}).expand({B, 1, E});
    tokens = torch::cat({tokens.to(compute_), cls, torch::zeros({B, 1, E}, tokens.options().dtype(compute_))},
                        1); // [B, N+2, E]
    torch::Tensor residual = tokens;
    for (int i = 0; i < config_.encoderLayers; ++i) {
      const std::string l = "encoder.layers." + std::to_string(i);
      std::tie(tokens, residual) = encoderFeedForward(residual, selfAttention(tokens, l + ".self_attn", encValid), i);
    }
    enc = tokens.narrow(1, 0, N);
  }

  stage("encoder");
  if (!pooled.defined()) pooled = attentionPool(enc, batch.uniform ? torch::Tensor() : batch.valid);
  stage("pool");

  // Decoder on [pooled ; Emb_dec[type_ref]]; each token attends only to the other one.
  const torch::Tensor typeRows = typeEmbedding("decoder_cell_embed.weight", types.index_select(0, batch.reference));
  torch::Tensor dec = torch::cat({pooled, typeRows.view({B, 1, E})}, 1);
  torch::Tensor residual = dec; // addLnResidual's second output: the same values
  for (int i = 0; i < config_.decoderLayers; ++i) {
    const std::string l = "decoder.layers." + std::to_string(i);
    torch::Tensor x;
    std::tie(x, residual) = addLnResidual(residual, pairAttention(dec, l + ".self_attn"), l + ".norm1");
    std::tie(dec, residual) = addLnResidual(residual, feedForward(x, l), l + ".norm2");
  }

  stage("decoder");
  Output out;
  if (heads.kind != Heads::logits) out.embedding = dec.select(1, 0).to(torch::kFloat32).contiguous();
  if (heads.kind == Heads::logits) {
    // One product for the three heads the loss reads: their weights side by side (two small copies
    // a step, whose backward is a view of each slice), where each head took its own product, cast
    // and exp, and the backward three products of each kind, three bias sums and two additions.
    out.headLogits = linear(dec.select(1, 1).to(compute_), headsSideBySide("weight"), headsSideBySide("bias"), false);
    stage("heads");
  } else if (heads.kind == Heads::values) {
    const double eps = 1e-15;
    // The heads read the decoder output at the reference-type token: it queries the reference
    // cell's expression given its neighbourhood.
    const torch::Tensor z = dec.select(1, 1);
    auto head = [&](const char* name) { return lin(z, std::string("zinb_proj.") + name).to(torch::kFloat32); };
    out.mu = torch::exp(head("mu")) + eps;
    out.theta = torch::exp(head("theta")) + eps;
    out.ziLogits = head("gate_logit");
    out.scale = torch::exp(head("scale")) + eps;
    stage("heads");
  }
  return out;
}

torch::Tensor zinbNll(const torch::Tensor& xLog, const torch::Tensor& mu, const torch::Tensor& theta,
                      const torch::Tensor& pi) {
  const double eps = 1e-8;
  const torch::Tensor x = torch::exp(xLog.to(torch::kFloat32)) - 1.0;
  const torch::Tensor softplusNegPi = torch::nn::functional::softplus(-pi);
  const torch::Tensor logThetaMu = torch::log(theta + mu + eps);
  const torch::Tensor a = theta * (torch::log(theta + eps) - logThetaMu);
  const torch::Tensor zeroCase = torch::nn::functional::softplus(a - pi) - softplusNegPi;
  const torch::Tensor nonZero = a - pi - softplusNegPi + x * (torch::log(mu + eps) - logThetaMu) +
                                torch::lgamma(x + theta) - torch::lgamma(theta) - torch::lgamma(x + 1.0);
  return -torch::where(x < eps, zeroCase, nonZero);
}

namespace {

// The fused losses' CPU loops (ZinbRowMean, ZinbHeadsRowMean), rows in parallel. zinbRowMeansCpu:
// out[r] = each row's mean over its cols of zinb::nll, `heads(r, c, mu, theta, pi)` giving the
// heads' values at row r, column c (as FusedKernels.cu's HeadValues and HeadLogits do on a GPU).
// forEachLossValue: `grad(r, c, i, scale)` for every value i = r cols + c, scale = gradOut[r] / cols.
template <class Heads>
void zinbRowMeansCpu(const float* xLog, std::int64_t rows, std::int64_t cols, float* out, Heads heads) {
  at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      float sum = 0.f;
      for (std::int64_t c = 0; c < cols; ++c) {
        float mu, theta, pi;
        heads(r, c, mu, theta, pi);
        sum += zinb::nll(xLog[r * cols + c], mu, theta, pi);
      }
      out[r] = sum / static_cast<float>(cols);
    }
  });
}
template <class Grad> void forEachLossValue(const float* gradOut, std::int64_t rows, std::int64_t cols, Grad grad) {
  at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const float scale = gradOut[r] / static_cast<float>(cols);
      for (std::int64_t c = 0; c < cols; ++c) grad(r, c, r * cols + c, scale);
    }
  });
}

// zinbNllRowMean's fused form: ZinbLoss.h's functions in one pass forward and one backward, by
// FusedKernels.cu's kernels on a GPU and by a loop over rows (in parallel) on the CPU. Inputs float32
// [rows, genes], contiguous; the target has no gradient.
struct ZinbRowMean : torch::autograd::Function<ZinbRowMean> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& xLog,
                               const torch::Tensor& mu, const torch::Tensor& theta, const torch::Tensor& pi) {
    ctx->save_for_backward({xLog, mu, theta, pi});
    const std::int64_t rows = mu.size(0), cols = mu.size(1);
    torch::Tensor out = torch::empty({rows}, mu.options());
    if (mu.is_cuda()) {
#ifdef ATLASCOPE_FUSED_KERNELS
      const c10::cuda::CUDAGuard guard(mu.device());
      if (!cuda::zinbRowMeanF32(xLog.data_ptr<float>(), mu.data_ptr<float>(), theta.data_ptr<float>(),
                                pi.data_ptr<float>(), out.data_ptr<float>(), rows, static_cast<int>(cols),
                                at::cuda::getCurrentCUDAStream(mu.device().index()).stream()))
        throw Error("the training loss's kernel failed to launch");
#endif
      return out;
    }
    const float *m = mu.data_ptr<float>(), *t = theta.data_ptr<float>(), *p = pi.data_ptr<float>();
    zinbRowMeansCpu(xLog.data_ptr<float>(), rows, cols, out.data_ptr<float>(),
                    [&](std::int64_t r, std::int64_t c, float& mv, float& tv, float& pv) {
                      const std::int64_t i = r * cols + c;
                      mv = m[i];
                      tv = t[i];
                      pv = p[i];
                    });
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &xLog = s[0], &mu = s[1], &theta = s[2], &pi = s[3];
    const torch::Tensor g = grads[0].to(torch::kFloat32).contiguous();
    const std::int64_t rows = mu.size(0), cols = mu.size(1);
    torch::Tensor dmu = torch::empty_like(mu), dtheta = torch::empty_like(theta), dpi = torch::empty_like(pi);
    if (mu.is_cuda()) {
#ifdef ATLASCOPE_FUSED_KERNELS
      const c10::cuda::CUDAGuard guard(mu.device());
      if (!cuda::zinbRowMeanGradF32(xLog.data_ptr<float>(), mu.data_ptr<float>(), theta.data_ptr<float>(),
                                    pi.data_ptr<float>(), g.data_ptr<float>(), dmu.data_ptr<float>(),
                                    dtheta.data_ptr<float>(), dpi.data_ptr<float>(), rows, static_cast<int>(cols),
                                    at::cuda::getCurrentCUDAStream(mu.device().index()).stream()))
        throw Error("the training loss's gradient kernel failed to launch");
#endif
      return {torch::Tensor(), dmu, dtheta, dpi};
    }
    const float *x = xLog.data_ptr<float>(), *m = mu.data_ptr<float>(), *t = theta.data_ptr<float>(),
                *p = pi.data_ptr<float>();
    float *dm = dmu.data_ptr<float>(), *dt = dtheta.data_ptr<float>(), *dp = dpi.data_ptr<float>();
    forEachLossValue(g.data_ptr<float>(), rows, cols, [&](std::int64_t, std::int64_t, std::int64_t i, float scale) {
      zinb::nllGrad(x[i], m[i], t[i], p[i], scale, dm[i], dt[i], dp[i]);
    });
    return {torch::Tensor(), dmu, dtheta, dpi};
  }
};

// zinbHeadsRowMean's fused form: the heads' values from their pre-activations inside the loss's
// pass each way (HeadLogits in FusedKernels.cu on a GPU, bf16 logits; the same loop as ZinbRowMean
// on the CPU, float32). The backward's gradient by the logits is exp's backward (times exp(l)) and
// the cast's, rounded to the logits' dtype once, as the separate heads' autograd forms it.
struct ZinbHeadsRowMean : torch::autograd::Function<ZinbHeadsRowMean> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& xLog,
                               const torch::Tensor& logits) {
    ctx->save_for_backward({xLog, logits});
    const std::int64_t rows = xLog.size(0), cols = xLog.size(1), ld = logits.stride(0);
    torch::Tensor out = torch::empty({rows}, xLog.options());
    if (logits.is_cuda()) {
#ifdef ATLASCOPE_FUSED_KERNELS
      const c10::cuda::CUDAGuard guard(logits.device());
      if (!cuda::zinbHeadsRowMeanBf16(xLog.data_ptr<float>(), bits(logits), ld, out.data_ptr<float>(), rows,
                                      static_cast<int>(cols),
                                      at::cuda::getCurrentCUDAStream(logits.device().index()).stream()))
        throw Error("the training loss's kernel failed to launch");
#endif
      return out;
    }
    const float* l = logits.data_ptr<float>();
    zinbRowMeansCpu(xLog.data_ptr<float>(), rows, cols, out.data_ptr<float>(),
                    [&](std::int64_t r, std::int64_t c, float& mu, float& theta, float& pi) {
                      const float* h = l + r * ld;
                      mu = std::exp(h[c]) + zinb::kHeadEps;
                      theta = std::exp(h[cols + c]) + zinb::kHeadEps;
                      pi = h[2 * cols + c];
                    });
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &xLog = s[0], &logits = s[1];
    const torch::Tensor g = grads[0].to(torch::kFloat32).contiguous();
    const std::int64_t rows = xLog.size(0), cols = xLog.size(1), ld = logits.stride(0);
    torch::Tensor dlogits = torch::empty({rows, 3 * cols}, logits.options());
    if (logits.is_cuda()) {
#ifdef ATLASCOPE_FUSED_KERNELS
      const c10::cuda::CUDAGuard guard(logits.device());
      if (!cuda::zinbHeadsRowMeanGradBf16(xLog.data_ptr<float>(), bits(logits), ld, g.data_ptr<float>(),
                                          mutableBits(dlogits), rows, static_cast<int>(cols),
                                          at::cuda::getCurrentCUDAStream(logits.device().index()).stream()))
        throw Error("the training loss's gradient kernel failed to launch");
#endif
      return {torch::Tensor(), dlogits};
    }
    const float *x = xLog.data_ptr<float>(), *l = logits.data_ptr<float>();
    float* d = dlogits.data_ptr<float>();
    forEachLossValue(g.data_ptr<float>(), rows, cols, [&](std::int64_t r, std::int64_t c, std::int64_t i, float scale) {
      const float* h = l + r * ld;
      float* dr = d + r * 3 * cols;
      const float em = std::exp(h[c]), et = std::exp(h[cols + c]);
      float dmu, dtheta, dpi;
      zinb::nllGrad(x[i], em + zinb::kHeadEps, et + zinb::kHeadEps, h[2 * cols + c], scale, dmu, dtheta, dpi);
      dr[c] = dmu * em;
      dr[cols + c] = dtheta * et;
      dr[2 * cols + c] = dpi;
    });
    return {torch::Tensor(), dlogits};
  }
};

// The heads' values as the separate heads compute them (exp of the float32 pre-activation + 1e-15),
// then zinbNllRowMean: zinbHeadsRowMean's path where its fused form does not apply, and the
// reference of checkZinbHeads.
torch::Tensor zinbHeadsComposite(const torch::Tensor& xLog, const torch::Tensor& logits, bool fusedRowMean) {
  const std::int64_t G = xLog.size(1);
  auto head = [&](std::int64_t i) { return logits.narrow(1, i * G, G).to(torch::kFloat32); };
  const double eps = 1e-15;
  return zinbNllRowMean(xLog, torch::exp(head(0)) + eps, torch::exp(head(1)) + eps, head(2), fusedRowMean);
}

} // namespace

torch::Tensor zinbHeadsRowMean(const torch::Tensor& xLog, const torch::Tensor& logits, bool fused) {
  if (xLog.dim() != 2 || logits.dim() != 2 || logits.size(0) != xLog.size(0) || logits.size(1) != 3 * xLog.size(1))
    throw Error("the loss's head pre-activations are " + std::to_string(logits.size(0)) + " x " +
                std::to_string(logits.dim() == 2 ? logits.size(1) : -1) + ", not " + std::to_string(xLog.size(0)) +
                " x 3 x " + std::to_string(xLog.size(1)) + " genes");
  bool fits = fused && xLog.scalar_type() == torch::kFloat32 && xLog.device() == logits.device() && xLog.size(0) > 0 &&
              xLog.size(0) < (1LL << 31) && xLog.size(1) > 0 && xLog.size(1) < (1LL << 29) && logits.stride(1) == 1 &&
              logits.stride(0) >= logits.size(1);
  bool kernels = false;
#ifdef ATLASCOPE_FUSED_KERNELS
  kernels = true;
#endif
  fits = fits && ((logits.is_cpu() && logits.scalar_type() == torch::kFloat32) ||
                  (kernels && logits.is_cuda() && logits.scalar_type() == torch::kBFloat16));
  if (!fits) return zinbHeadsComposite(xLog, logits, fused);
  return ZinbHeadsRowMean::apply(xLog.contiguous(), logits);
}

torch::Tensor zinbNllRowMean(const torch::Tensor& xLog, const torch::Tensor& mu, const torch::Tensor& theta,
                             const torch::Tensor& pi, bool fused) {
  bool fits = fused && mu.dim() == 2 && xLog.sizes() == mu.sizes() && theta.sizes() == mu.sizes() &&
              pi.sizes() == mu.sizes() && mu.size(0) > 0 && mu.size(0) < (1LL << 31) && mu.size(1) > 0 &&
              mu.size(1) < (1LL << 31);
  for (const torch::Tensor* t : {&xLog, &mu, &theta, &pi})
    fits = fits && t->scalar_type() == torch::kFloat32 && t->device() == mu.device();
#ifndef ATLASCOPE_FUSED_KERNELS
  fits = fits && !mu.is_cuda();
#endif
  fits = fits && (mu.is_cpu() || mu.is_cuda());
  if (!fits) return zinbNll(xLog, mu, theta, pi).mean(1);
  return ZinbRowMean::apply(xLog.contiguous(), mu.contiguous(), theta.contiguous(), pi.contiguous());
}

ZinbCheck checkZinbRowMean(torch::Device device, std::int64_t rows, std::int64_t genes) {
  ZinbCheck r;
  if (device.is_cuda() && !CellTransformer::fusedKernelsBuilt()) return r; // the composite both ways
  torch::manual_seed(22);
  const auto on = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  const torch::Tensor counts = torch::where(torch::rand({rows, genes}, on) < 0.5, torch::zeros({rows, genes}, on),
                                            torch::floor(torch::exp(torch::rand({rows, genes}, on) * 5.0)));
  const torch::Tensor xLog = torch::log1p(counts).to(torch::kFloat32);
  torch::Tensor mu0 = torch::exp(torch::randn({rows, genes}, on) * 2.0) + 1e-6,
                theta0 = torch::exp(torch::randn({rows, genes}, on) * 2.0), pi0 = torch::randn({rows, genes}, on) * 3.0;
  // Rows at the extremes: a large mean, a tiny dispersion, inflation logits past softplus's threshold.
  mu0[0].fill_(1e4);
  theta0[1].fill_(1e-6);
  pi0[2].fill_(30.0);
  pi0[3].fill_(-30.0);
  const torch::Tensor weights = torch::rand({rows}, on); // a loss that weighs the cells differently
  auto run = [&](bool fused, torch::ScalarType type) {
    // Copies: to() of the same dtype would return the tensor itself, whose gradient would accumulate.
    torch::Tensor mu = mu0.to(type).clone().requires_grad_(true), theta = theta0.to(type).clone().requires_grad_(true),
                  pi = pi0.to(type).clone().requires_grad_(true);
    const torch::Tensor nll =
        fused ? zinbNllRowMean(xLog, mu, theta, pi, true) : zinbNll(xLog.to(type), mu, theta, pi).mean(1);
    (nll * weights.to(type)).sum().backward();
    return std::vector<torch::Tensor>{nll.detach(), mu.grad(), theta.grad(), pi.grad()};
  };
  const auto exact = run(false, torch::kFloat64), fused = run(true, torch::kFloat32),
             composite = run(false, torch::kFloat32);
  // Per value, the error relative to the value (and to 1e-6 of the tensor's largest, for zeros); a
  // few values where the gradient's terms cancel have large relative errors in either form, so the
  // 99th percentile stands for the tensor, and the largest error against the tensor's largest value.
  auto quantile99 = [](const torch::Tensor& t) {
    const torch::Tensor sorted = std::get<0>(t.flatten().sort());
    return sorted[static_cast<std::int64_t>(0.99 * static_cast<double>(sorted.numel() - 1))].item<double>();
  };
  r.fusedP99 = r.compositeP99 = r.fusedMax = r.compositeMax = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const torch::Tensor e = exact[i], scale = e.abs() + 1e-6 * e.abs().max();
    const torch::Tensor f = (fused[i].to(torch::kFloat64) - e).abs(), c = (composite[i].to(torch::kFloat64) - e).abs();
    if (!torch::isfinite(fused[i]).all().item<bool>()) return ZinbCheck{};
    r.fusedP99 = std::max(r.fusedP99, quantile99(f / scale));
    r.compositeP99 = std::max(r.compositeP99, quantile99(c / scale));
    const double largest = e.abs().max().item<double>();
    r.fusedMax = std::max(r.fusedMax, f.max().item<double>() / largest);
    r.compositeMax = std::max(r.compositeMax, c.max().item<double>() / largest);
  }
  return r;
}

ZinbHeadsCheck checkZinbHeads(torch::Device device, std::int64_t rows, std::int64_t genes) {
  ZinbHeadsCheck r;
  if (device.is_cuda() && !CellTransformer::fusedKernelsBuilt()) return r;
  const torch::ScalarType type = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  torch::manual_seed(23);
  const auto on = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const torch::Tensor counts = torch::where(torch::rand({rows, genes}, on) < 0.5, torch::zeros({rows, genes}, on),
                                            torch::floor(torch::exp(torch::rand({rows, genes}, on) * 5.0)));
  const torch::Tensor xLog = torch::log1p(counts);
  torch::Tensor logits = torch::randn({rows, 3 * genes}, on) * 2.0;
  // Rows at the extremes: a large mean (e^9.2 ~ 1e4), a tiny dispersion (e^-13.8 ~ 1e-6), gate
  // logits past softplus's threshold either way.
  logits[0].narrow(0, 0, genes).fill_(9.2);
  logits[1].narrow(0, genes, genes).fill_(-13.8);
  logits[2].narrow(0, 2 * genes, genes).fill_(30.0);
  logits[3].narrow(0, 2 * genes, genes).fill_(-30.0);
  logits = logits.to(type);
  const torch::Tensor weights = torch::rand({rows}, on);
  auto run = [&](bool fused) {
    const torch::Tensor l = logits.clone().requires_grad_(true);
    // (The fused form itself, not zinbHeadsRowMean's dispatch, which could fall back to the composite.)
    const torch::Tensor nll = fused ? ZinbHeadsRowMean::apply(xLog, l) : zinbHeadsComposite(xLog, l, true);
    (nll * weights).sum().backward();
    return std::make_pair(nll.detach().to(torch::kFloat64), l.grad().to(torch::kFloat64));
  };
  const auto [fusedLoss, fusedGrad] = run(true);
  const auto [loss, grad] = run(false);
  if (!torch::isfinite(fusedLoss).all().item<bool>() || !torch::isfinite(fusedGrad).all().item<bool>()) return r;
  r.loss = ((fusedLoss - loss).abs().max() / loss.abs().max()).item<double>();
  r.gradient = ((fusedGrad - grad).abs().max() / grad.abs().max()).item<double>();
  return r;
}
} // namespace atlascope::inference
