// Builds of the CUDA kernels without CUTLASS's headers: no fused GEMM + GELU (GemmGelu.cu,
// GemmGeluTraining.cu); the feed-forward runs cuBLASLt's GEMM with its bias epilogue and ATen's erf
// GELU (and in training FusedKernels.cu's GELU-gradient kernel).
#include "inference/FusedKernels.h"

namespace atlascope::inference::cuda {

bool gemmBiasGeluBuilt() { return false; }
std::int64_t gemmBiasGeluWorkspace(std::int64_t, int, int) { return -1; }
bool gemmBiasGeluBf16(const std::uint16_t*, const std::uint16_t*, const std::uint16_t*, std::uint16_t*, std::int64_t,
                      int, int, void*, void*, bool, bool) {
  return false;
}
bool gemmBiasGeluE4m3(const std::uint8_t*, const std::uint8_t*, const float*, const std::uint16_t*, std::uint16_t*,
                      std::int64_t, int, int, void*, void*, bool) {
  return false;
}
bool gemmBiasBf16(const std::uint16_t*, const std::uint16_t*, const std::uint16_t*, std::uint16_t*, std::int64_t, int,
                  int, void*, void*) {
  return false;
}

std::int64_t gemmGeluTrainingWorkspace(std::int64_t, int, int) { return -1; }
bool gemmBiasGeluAuxBf16(const std::uint16_t*, const std::uint16_t*, const std::uint16_t*, std::uint16_t*,
                         std::uint16_t*, std::int64_t, int, int, void*, void*, bool, bool) {
  return false;
}
bool gemmGeluGradBf16(const std::uint16_t*, const std::uint16_t*, const std::uint16_t*, std::uint16_t*, std::uint16_t*,
                      std::int64_t, int, int, void*, void*, bool, bool) {
  return false;
}

} // namespace atlascope::inference::cuda
