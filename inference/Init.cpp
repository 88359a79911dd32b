#include "inference/Init.h"

#include <torch/torch.h>

namespace atlascope::inference {

StateDict initWeights(const ModelConfig& config, std::uint64_t seed) {
  torch::manual_seed(seed);
  StateDict w;
  for (const auto& [name, shape] : config.expectedShapes()) {
    torch::Tensor t = torch::empty(shape, torch::kFloat32);
    auto endsWith = [&](const char* tail) {
      const std::string t2(tail);
      return name.size() >= t2.size() && name.compare(name.size() - t2.size(), t2.size(), t2) == 0;
    };
    const bool isNorm = name.find("norm") != std::string::npos ||
                        name.find("expression_projection.1") != std::string::npos ||
                        name.find("expression_projection.4") != std::string::npos;
    if (name == "cls_token")
      t.normal_(0.0, 0.1);
    else if (name == "attn_pool.query_token" || name == "pooling_token")
      t.normal_(0.0, 0.02);
    else if (name.find("cell_embed") != std::string::npos)
      t.normal_(0.0, 1.0);
    else if (endsWith("bias_k") || endsWith("bias_v"))
      torch::nn::init::xavier_normal_(t.view({shape[0] * shape[1], shape[2]}));
    else if (isNorm)
      t.fill_(endsWith(".weight") ? 1.0 : 0.0);
    else if (endsWith("bias"))
      t.zero_();
    else
      torch::nn::init::xavier_normal_(t);
    w[name] = t;
  }
  return w;
}

} // namespace atlascope::inference
