#pragma once
#include "inference/CellTransformer.h"

namespace atlascope::inference {
// The reference's initialisation: xavier-normal on linear and projection weights, zero biases,
// LayerNorms at identity, CLS ~ N(0, 0.1), pool query ~ N(0, 0.02), embeddings ~ N(0, 1).
StateDict initWeights(const ModelConfig& config, std::uint64_t seed);
} // namespace atlascope::inference
