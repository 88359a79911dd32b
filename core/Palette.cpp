#include "core/Palette.h"

#include <cmath>
#include <cstdio>
#include <exception>

namespace atlascope {

std::array<double, 3> hsvToRgb(double h, double s, double v) {
  const double c = v * s, x = c * (1 - std::abs(std::fmod(h, 2.0) - 1)), m = v - c;
  double r = 0, g = 0, b = 0;
  if (h < 1) {
    r = c;
    g = x;
  } else if (h < 2) {
    r = x;
    g = c;
  } else if (h < 3) {
    g = c;
    b = x;
  } else if (h < 4) {
    g = x;
    b = c;
  } else if (h < 5) {
    r = x;
    b = c;
  } else {
    r = c;
    b = x;
  }
  return {r + m, g + m, b + m};
}

std::vector<std::array<std::uint8_t, 3>> categoricalPalette(std::size_t n) {
  std::vector<std::array<std::uint8_t, 3>> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double h = std::fmod(static_cast<double>(i) * 137.508, 360.0) / 60.0;
    const double s = 0.55 + 0.15 * static_cast<double>(i % 3), v = 0.95 - 0.18 * static_cast<double>((i / 3) % 3);
    const auto [r, g, b] = hsvToRgb(h, s, v);
    out.push_back(
        {static_cast<std::uint8_t>(r * 255), static_cast<std::uint8_t>(g * 255), static_cast<std::uint8_t>(b * 255)});
  }
  return out;
}

std::array<std::uint8_t, 3> parseHexColour(const std::string& hex) {
  std::string h = hex;
  if (!h.empty() && h[0] == '#') h.erase(0, 1);
  if (h.size() < 6) return {128, 128, 128};
  try {
    const unsigned long v = std::stoul(h.substr(0, 6), nullptr, 16);
    return {static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  } catch (const std::exception&) {
    return {128, 128, 128};
  }
}

std::string hexColour(const std::array<std::uint8_t, 3>& rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

} // namespace atlascope
