#pragma once
// A bf16 tensor's storage as the raw 16-bit words the CUDA kernels take (FusedKernels.h,
// Matmul.h: no LibTorch header there), and the difference the GPU checks report between two
// tensors. Shared by CellTransformer.cpp and TrainMatmul.cpp.
#include <torch/torch.h>

#include <cstdint>

namespace atlascope::inference {

inline const std::uint16_t* bits(const torch::Tensor& t) { return static_cast<const std::uint16_t*>(t.data_ptr()); }
inline std::uint16_t* mutableBits(torch::Tensor& t) { return static_cast<std::uint16_t*>(t.data_ptr()); }

// max |a - b| over max |b| (b's largest magnitude at least 1e-6), in float32.
inline double largestRelativeDifference(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor e = b.to(torch::kFloat32);
  return ((a.to(torch::kFloat32) - e).abs().max() / e.abs().max().clamp_min(1e-6)).item<double>();
}

} // namespace atlascope::inference
