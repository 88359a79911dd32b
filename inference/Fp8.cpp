#include "inference/Fp8.h"

#include <array>
#include <cmath>

namespace atlascope::inference {

namespace {
constexpr float kMax = 448.f;

std::array<float, 256> decodeTable() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const int exponent = (b >> 3) & 0xf, mantissa = b & 7;
    float v = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9) // subnormal: m/8 * 2^-6
                            : std::ldexp(1.f + mantissa / 8.f, exponent - 7);
    if ((b & 0x7f) == 0x7f) v = std::nanf("");
    t[b] = (b & 0x80) ? -v : v;
  }
  return t;
}
} // namespace

float fromE4m3(std::uint8_t bits) {
  static const std::array<float, 256> table = decodeTable();
  return table[bits];
}

std::uint8_t toE4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const std::uint8_t sign = std::signbit(value) ? 0x80 : 0;
  const float a = std::fmin(std::fabs(value), kMax);
  if (a == 0.f) return sign;
  int e = 0;
  std::frexp(a, &e); // a = f 2^e, f in [0.5, 1): the unbiased exponent is e - 1
  // Below 2^-6 the spacing is that of the subnormals, 2^-9; above, 2^(e - 1 - 3). Values are
  // multiples of the spacing, so the code is the rounded quotient plus the exponent's offset
  // (a carry into the next binade lands on its code exactly). nearbyint: ties to even in the
  // default rounding mode, and an even quotient is an even mantissa.
  const int exponent = e - 1 < -6 ? -6 : e - 1;
  const float q = std::nearbyint(std::ldexp(a, 3 - exponent));
  const int code = (exponent + 6) * 8 + static_cast<int>(q); // exponent -6: codes 0..8
  return static_cast<std::uint8_t>(sign | (code > 0x7e ? 0x7e : code));
}

torch::Tensor quantizeE4m3(const torch::Tensor& values) {
  const torch::Tensor v = values.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor out = torch::empty(v.sizes(), torch::TensorOptions().dtype(torch::kUInt8));
  const float* in = v.data_ptr<float>();
  std::uint8_t* o = out.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0, n = v.numel(); i < n; ++i) o[i] = toE4m3(in[i]);
  return out.to(values.device());
}

torch::Tensor dequantizeE4m3(const torch::Tensor& bits) {
  torch::Tensor table = torch::empty({256}, torch::kFloat32);
  for (int b = 0; b < 256; ++b) table[b] = fromE4m3(static_cast<std::uint8_t>(b));
  return table.to(bits.device()).index({bits.to(torch::kLong)});
}

} // namespace atlascope::inference
