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
  // toE4m3 in tensor operations, on the values' device: frexp's exponent is exact where a log2
  // could round up at the top of a binade; round() is half to even.
  const torch::Tensor v = values.to(torch::kFloat32);
  const torch::Tensor a = v.abs().clamp_max(kMax);
  const auto [mantissa, e] = torch::frexp(a);
  const torch::Tensor exponent = (e.to(torch::kInt32) - 1).clamp_min(-6);
  const torch::Tensor q = torch::round(a * torch::pow(2.f, (3 - exponent).to(torch::kFloat32)));
  torch::Tensor code = ((exponent + 6) * 8 + q.to(torch::kInt32)).clamp_max(0x7e);
  code = torch::where(a == 0, torch::zeros_like(code), code);
  code = torch::where(torch::isnan(v), torch::full_like(code, 0x7f), code);
  code = code + torch::signbit(v).to(torch::kInt32) * 0x80;
  return code.to(torch::kUInt8);
}

torch::Tensor dequantizeE4m3(const torch::Tensor& bits) {
  static const torch::Tensor table = [] {
    torch::Tensor t = torch::empty({256}, torch::kFloat32);
    float* p = t.data_ptr<float>();
    for (int b = 0; b < 256; ++b) p[b] = fromE4m3(static_cast<std::uint8_t>(b));
    return t;
  }();
  return table.to(bits.device()).index({bits.to(torch::kLong)});
}

} // namespace atlascope::inference
