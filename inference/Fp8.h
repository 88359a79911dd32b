#pragma once
// The e4m3 format of FP8 (OCP's E4M3FN, Hopper's tensor cores' `e4m3`): 1 sign, 4 exponent (bias 7)
// and 3 mantissa bits; no infinities, 0x7f / 0xff NaN, largest finite 448, subnormals down to
// 2^-9. The CPU side of the FP8 feed-forward (CellTransformer::setFp8FeedForward): its weights'
// conversion, and the path a machine without the kernels runs (the same values, in float32).
#include <torch/torch.h>

#include <cstdint>

namespace atlascope::inference {

// Rounded to the nearest e4m3 value, ties to even, and saturated to +-448 (as the H200's
// cvt.rn.satfinite.e4m3x2.f32 that the kernels use); NaN -> 0x7f.
std::uint8_t toE4m3(float value);
float fromE4m3(std::uint8_t bits);

// Elementwise over a tensor (converted to float32), on its device -> kUInt8 of the same shape,
// the same codes as toE4m3; and back to float32.
torch::Tensor quantizeE4m3(const torch::Tensor& values);
torch::Tensor dequantizeE4m3(const torch::Tensor& bits);

} // namespace atlascope::inference
