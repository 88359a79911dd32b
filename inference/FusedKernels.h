#pragma once
// Fused CUDA kernels for inference (FusedKernels.cu), built only when CMake finds the CUDA toolkit
// (ATLASCOPE_WITH_CUDA_KERNELS). Plain pointers and a cudaStream_t passed as void*, so that this
// file and the .cu need no LibTorch header; CellTransformer calls them on bf16 tensors of its
// GPU path and keeps the ATen operations as the CPU path and the fallback (and for training,
// which needs their gradients).
#include <cstdint>

namespace atlascope::inference::cuda {

// out = LayerNorm(x + y) * weight + bias over rows of `cols` bf16 values (raw bits), the sum
// rounded to bf16 first and the statistics in float32, as ATen's add followed by layer_norm.
// Returns false (nothing launched) for a width it has no kernel for (cols 64, 128, 256, 384, 512,
// 768 or 1024) or pointers not 4-byte aligned; the caller then runs the ATen operations.
bool addLayerNormBf16(const std::uint16_t* x, const std::uint16_t* y, const std::uint16_t* weight,
                      const std::uint16_t* bias, std::uint16_t* out, std::int64_t rows, int cols, float eps,
                      void* stream);

// LayerNorm's weight and bias gradients (training): dgamma[j] = sum_i dy[i,j] (x[i,j] - mean[i])
// rstd[i], dbeta[j] = sum_i dy[i,j], over rows of bf16 dy and x with float32 mean and rstd (as
// ATen's native_layer_norm returns them), summed in float32 in two deterministic stages (row slices
// of gammaBetaSlices(rows, cols) blocks into `partial`, 2 * slices * cols floats, then over the
// slices), written as bf16. ATen's own kernel runs on cols / 32 blocks below 64k rows (12 of the
// H200's 132 multiprocessors for E 384): a 2-GPU training step spent 12% of its time there.
int gammaBetaSlices(std::int64_t rows, int cols);
bool layerNormGammaBetaBackwardBf16(const std::uint16_t* dy, const std::uint16_t* x, const float* mean,
                                    const float* rstd, float* partial, std::uint16_t* dgamma, std::uint16_t* dbeta,
                                    std::int64_t rows, int cols, void* stream);

} // namespace atlascope::inference::cuda
