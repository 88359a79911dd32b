#include "inference/CellTransformer.h"

#include "core/Error.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <regex>
#include <set>

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
} // namespace

std::vector<std::pair<std::string, std::vector<std::int64_t>>> ModelConfig::expectedShapes() const {
  const std::int64_t E = embedDim, G = genes, C = cellTypes, F = feedForward, h = embedDim / 2;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> s = {
      {"cls_token", {1, E}},
      {"pooling_token", {1, E}},
      {"expression_projection.0.weight", {h, G}}, {"expression_projection.0.bias", {h}},
      {"expression_projection.1.weight", {h}},    {"expression_projection.1.bias", {h}},
      {"expression_projection.3.weight", {h, h}}, {"expression_projection.3.bias", {h}},
      {"expression_projection.4.weight", {h}},    {"expression_projection.4.bias", {h}},
      {"encoder_cell_embed.weight", {C, h}},
      {"decoder_cell_embed.weight", {C, E}},
      {"proj_norm.weight", {E}}, {"proj_norm.bias", {E}},
      {"attn_pool.query_token", {1, E}},
      {"attn_pool.attn.in_proj_weight", {3 * E, E}},
      {"attn_pool.attn.bias_k", {1, 1, E}}, {"attn_pool.attn.bias_v", {1, 1, E}},
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
  return "E " + std::to_string(embedDim) + ", " + std::to_string(heads) + " heads, " + std::to_string(encoderLayers) + "+" +
         std::to_string(decoderLayers) + " layers, G " + std::to_string(genes) + ", C " + std::to_string(cellTypes) +
         ", feed-forward " + std::to_string(feedForward);
}

ModelConfig inferConfig(const StateDict& w, int heads, const std::string& source) {
  ModelConfig c;
  c.embedDim = static_cast<int>(need(w, "cls_token", source).size(-1));
  c.genes = static_cast<int>(need(w, "expression_projection.0.weight", source).size(1));
  c.cellTypes = static_cast<int>(need(w, "encoder_cell_embed.weight", source).size(0));
  c.encoderLayers = countLayers(w, "encoder");
  c.decoderLayers = countLayers(w, "decoder");
  c.feedForward = c.encoderLayers > 0 ? static_cast<int>(need(w, "encoder.layers.0.linear1.weight", source).size(0)) : 2048;
  c.heads = heads;
  if (c.encoderLayers == 0 || c.decoderLayers == 0) throw FileError(source, "no encoder or decoder layers in the weights");
  if (heads <= 0 || c.embedDim % heads != 0)
    throw FileError(source, "embedding width " + std::to_string(c.embedDim) + " is not divisible by " + std::to_string(heads) + " heads");
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
      throw FileError(source, "weight '" + key + "' has shape " + shapeString(actual) + ", expected " + shapeString(shape) +
                                  " for a model of " + config_.describe());
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
  refreshComputeCopies();
}

void CellTransformer::refreshComputeCopies() {
  lowp_.clear();
  if (compute_ != torch::kFloat32)
    for (const auto& [k, v] : params_)
      if (v.dim() >= 1) lowp_[k] = v.to(compute_);
}

const torch::Tensor& CellTransformer::p(const std::string& name) const { return params_.at(name); }

const torch::Tensor& CellTransformer::P(const std::string& name) const {
  const auto it = lowp_.find(name);
  return it == lowp_.end() ? params_.at(name) : it->second;
}

torch::Tensor CellTransformer::lin(const torch::Tensor& x, const std::string& prefix, bool bias) const {
  return torch::linear(x.to(compute_), P(prefix + ".weight"), bias ? P(prefix + ".bias") : torch::Tensor());
}

torch::Tensor CellTransformer::ln(const torch::Tensor& x, const std::string& prefix) const {
  return torch::layer_norm(x.to(compute_), {x.size(-1)}, P(prefix + ".weight"), P(prefix + ".bias"), 1e-5);
}

// PyTorch's MultiheadAttention with add_zero_attn (and bias_k/bias_v for the pool).
// keyValid: [B, Lk] bool or undefined. attnMask: [Lq, Lk] additive or undefined.
torch::Tensor CellTransformer::attention(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                                         const std::string& prefix, const torch::Tensor& keyValid,
                                         const torch::Tensor& attnMask, bool inBias, bool biasKV, bool outBias,
                                         bool zeroSlot) const {
  using torch::indexing::Slice;
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  const std::int64_t B = query.size(0), Lq = query.size(1);
  const torch::Tensor& w = P(prefix + ".in_proj_weight");
  [[maybe_unused]] const bool low = compute_ != torch::kFloat32;
  auto project = [&](const torch::Tensor& x, int part) {
    torch::Tensor b;
    if (inBias) b = P(prefix + ".in_proj_bias").narrow(0, part * E, E);
    return torch::linear(x.to(compute_), w.narrow(0, part * E, E), b);
  };
  torch::Tensor q, k, v;
  if (query.is_same(key) && key.is_same(value)) {
    // Self-attention: one product with the whole [3E, E] in-projection.
    torch::Tensor b;
    if (inBias) b = P(prefix + ".in_proj_bias");
    const torch::Tensor qkvAll = torch::linear(query.to(compute_), w, b);
    if (zeroSlot) qkvAll.select(1, Lq - 1).narrow(-1, E, 2 * E).zero_(); // add_zero_attn's key and value
    const auto qkv = qkvAll.chunk(3, -1);
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else {
    q = project(query, 0);
    k = project(key, 1);
    v = project(value, 2);
  }
  [[maybe_unused]] const bool masked = keyValid.defined();
  torch::Tensor valid = masked ? keyValid : torch::ones({B, key.size(1)}, torch::TensorOptions().dtype(torch::kBool).device(query.device()));
  std::int64_t extra = 0;
  if (!zeroSlot) {
    std::vector<torch::Tensor> extraK{k}, extraV{v};
    if (biasKV) {
      extraK.push_back(P(prefix + ".bias_k").expand({B, 1, E}));
      extraV.push_back(P(prefix + ".bias_v").expand({B, 1, E}));
    }
    // add_zero_attn: one all-zero key and value, always attendable.
    extraK.push_back(torch::zeros({B, 1, E}, k.options()));
    extraV.push_back(torch::zeros({B, 1, E}, v.options()));
    extra = static_cast<std::int64_t>(extraK.size()) - 1;
    k = torch::cat(extraK, 1);
    v = torch::cat(extraV, 1);
    valid = torch::cat({valid, torch::ones({B, extra}, valid.options())}, 1);
  }
  const std::int64_t Lk = k.size(1);

  q = q.reshape({B, Lq, H, d}).transpose(1, 2);
  k = k.reshape({B, Lk, H, d}).transpose(1, 2);
  v = v.reshape({B, Lk, H, d}).transpose(1, 2);
#if TORCH_VERSION_MAJOR >= 2
  if (low && !attnMask.defined()) {
    // Fused attention (memory-efficient kernel) in the compute dtype; the zero column is a real
    // key of the masked batch, so the semantics are unchanged.
    // Without padding (uniform batches) there is no mask at all: the flash kernel.
    const torch::Tensor out = masked ? at::scaled_dot_product_attention(q, k, v, valid.view({B, 1, 1, Lk}))
                                     : at::scaled_dot_product_attention(q, k, v);
    return lin(out.transpose(1, 2).reshape({B, Lq, E}), prefix + ".out_proj", outBias);
  }
#endif
  // Scores and softmax in float32 (autocast runs softmax in float32).
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) * (1.0 / std::sqrt(static_cast<double>(d)));
  torch::Tensor mask = torch::zeros({B, 1, 1, Lk}, scores.options()).masked_fill(valid.logical_not().view({B, 1, 1, Lk}), -INFINITY);
  scores = scores + mask;
  if (attnMask.defined()) {
    torch::Tensor am = attnMask;
    if (am.size(-1) != Lk) am = torch::cat({am, torch::zeros({Lq, extra}, am.options())}, 1);
    scores = scores + am.view({1, 1, Lq, Lk});
  }
  torch::Tensor attn = torch::softmax(scores, -1);
  torch::Tensor out = torch::matmul(attn.to(v.scalar_type()), v); // [B, H, Lq, d]
  out = out.transpose(1, 2).reshape({B, Lq, E});
  return lin(out, prefix + ".out_proj", outBias);
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
torch::Tensor CellTransformer::attentionPool(const torch::Tensor& enc, const torch::Tensor& valid) const {
  const std::int64_t E = config_.embedDim, H = config_.heads, d = E / H;
  const std::int64_t B = enc.size(0), N = enc.size(1);
  // Per-model constants (tiny), in float32, then cast to the compute dtype.
  const torch::Tensor& w = p("attn_pool.attn.in_proj_weight");
  const torch::Tensor q = torch::linear(torch::layer_norm(p("attn_pool.query_token"), {E}, p("attn_pool.norm.weight"),
                                                          p("attn_pool.norm.bias"), 1e-5),
                                        w.narrow(0, 0, E))
                              .view({H, d}) * (1.0 / std::sqrt(static_cast<double>(d)));
  const torch::Tensor U = torch::einsum("hd,hde->he", {q, w.narrow(0, E, E).view({H, d, E})}); // [H, E]
  const torch::Tensor A = U * p("attn_pool.norm_v.weight");                                      // [H, E]
  const torch::Tensor c = torch::mv(U, p("attn_pool.norm_v.bias"));                              // [H]
  const torch::Tensor biasScore = (q * p("attn_pool.attn.bias_k").view({H, d})).sum(-1);       // [H]

  const torch::Tensor n = torch::layer_norm(enc.to(compute_), {E}, {}, {}, 1e-5);                // [B, N, E]
  torch::Tensor scores = torch::matmul(n, A.to(compute_).t()).to(torch::kFloat32) + c;          // [B, N, H]
  if (valid.defined()) scores = scores.masked_fill(valid.logical_not().unsqueeze(-1), -INFINITY);
  // The two extra keys: bias_k, and the all-zero key of add_zero_attn (score 0, value 0).
  const torch::Tensor extra = torch::stack({biasScore, torch::zeros_like(biasScore)}).unsqueeze(0).expand({B, 2, H});
  const torch::Tensor attn = torch::softmax(torch::cat({scores, extra}, 1), 1);                  // [B, N+2, H]
  const torch::Tensor a = attn.narrow(1, 0, N);
  // sum_j a_j LN_k(e_j) = (sum_j a_j n_j) * w_k + (sum_j a_j) b_k, per head.
  torch::Tensor S = torch::matmul(a.transpose(1, 2).to(compute_), n).to(torch::kFloat32);       // [B, H, E]
  S = S * p("attn_pool.norm_k.weight") + a.sum(1).unsqueeze(-1) * p("attn_pool.norm_k.bias");
  // W_v,h applied per head, plus the bias_v value.
  const torch::Tensor Wv = P("attn_pool.attn.in_proj_weight").narrow(0, 2 * E, E).view({H, d, E});
  torch::Tensor o = torch::matmul(S.to(compute_).transpose(0, 1), Wv.transpose(1, 2)).transpose(0, 1); // [B, H, d]
  o = o.to(torch::kFloat32) + attn.select(1, N).unsqueeze(-1) * p("attn_pool.attn.bias_v").view({H, d});
  const torch::Tensor out = lin(o.reshape({B, E}), "attn_pool.attn.out_proj", false);
  return ln(out, "attn_pool.norm2").view({B, 1, E});
}

torch::Tensor CellTransformer::cellTokens(const torch::Tensor& x, const torch::Tensor& t) const {
  torch::Tensor h = lin(x, "expression_projection.0");
  h = torch::gelu(ln(h, "expression_projection.1"));
  h = ln(lin(h, "expression_projection.3"), "expression_projection.4");
  const torch::Tensor typeEmb = torch::embedding(P("encoder_cell_embed.weight"), t);
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
                                bool heads, std::map<std::string, double>* profile) const {
  StageClock stage{profile, device_.is_cuda()};
  stage("batch");
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  // Tokens of observed cells: LN_proj([Emb_enc[type] ; MLP(x)]).
  const torch::Tensor rows = batch.observed.reshape({-1});
  const torch::Tensor tokens = cellTokens(expression.index_select(0, rows), types.index_select(0, rows)).view({B, N, E});
  stage("gather + expression MLP");
  return encodeDecode(tokens, types, batch, heads, profile);
}

Output CellTransformer::forwardFromTokens(const torch::Tensor& tokenTable, const torch::Tensor& types, const Batch& batch,
                                          bool heads, std::map<std::string, double>* profile) const {
  StageClock stage{profile, device_.is_cuda()};
  stage("batch");
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  const torch::Tensor tokens = tokenTable.index_select(0, batch.observed.reshape({-1})).view({B, N, E});
  stage("gather tokens");
  return encodeDecode(tokens, types, batch, heads, profile);
}

Output CellTransformer::encodeDecode(torch::Tensor tokens, const torch::Tensor& types, const Batch& batch, bool heads,
                                     std::map<std::string, double>* profile) const {
  StageClock stage{profile, device_.is_cuda()};
  const std::int64_t B = batch.observed.size(0), N = batch.observed.size(1), E = config_.embedDim;
  const torch::Tensor cls = ln(P("cls_token"), "proj_norm").view({1, 1, E}).expand({B, 1, E});
  // [observed ; CLS ; zero slot]: the last position carries add_zero_attn's all-zero key and
  // value, written into each layer's projections in place (attention(..., zeroSlot)), so that no
  // layer copies its keys and values to append them. Its own output is never read.
  tokens = torch::cat({tokens.to(compute_), cls, torch::zeros({B, 1, E}, tokens.options().dtype(compute_))}, 1); // [B, N+2, E]
  const torch::Tensor encValid =
      batch.uniform ? torch::Tensor() : torch::cat({batch.valid, torch::ones({B, 2}, batch.valid.options())}, 1);

  for (int i = 0; i < config_.encoderLayers; ++i) {
    const std::string l = "encoder.layers." + std::to_string(i);
    tokens = ln(tokens + attention(tokens, tokens, tokens, l + ".self_attn", encValid, {}, true, false, true, true), l + ".norm1");
    tokens = ln(tokens + lin(torch::gelu(lin(tokens, l + ".linear1")), l + ".linear2"), l + ".norm2");
  }

  stage("encoder");
  const torch::Tensor pooled = attentionPool(tokens.narrow(1, 0, N), batch.uniform ? torch::Tensor() : batch.valid);
  stage("pool");

  // Decoder on [pooled ; Emb_dec[type_ref]]; each token attends only to the other one.
  const torch::Tensor refType = types.index_select(0, batch.reference);
  torch::Tensor dec = torch::cat({pooled, torch::embedding(P("decoder_cell_embed.weight"), refType).view({B, 1, E})}, 1);
  const torch::Tensor self = torch::zeros({2, 2}, dec.options()).fill_diagonal_(-INFINITY);
  for (int i = 0; i < config_.decoderLayers; ++i) {
    const std::string l = "decoder.layers." + std::to_string(i);
    dec = ln(dec + attention(dec, dec, dec, l + ".self_attn", {}, self, true, false, true), l + ".norm1");
    dec = ln(dec + lin(torch::gelu(lin(dec, l + ".linear1")), l + ".linear2"), l + ".norm2");
  }

  stage("decoder");
  Output out;
  out.embedding = dec.select(1, 0).to(torch::kFloat32).contiguous();
  if (heads) {
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

torch::Tensor zinbNll(const torch::Tensor& xLog, const torch::Tensor& mu, const torch::Tensor& theta, const torch::Tensor& pi) {
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

} // namespace atlascope::inference
