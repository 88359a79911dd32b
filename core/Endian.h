#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace atlascope {

inline bool hostIsLittleEndian() {
  const std::uint16_t one = 1;
  return *reinterpret_cast<const std::uint8_t*>(&one) == 1;
}

// Reverses the bytes of each `width`-byte element in place.
inline void swapBytes(std::uint8_t* data, std::size_t bytes, std::size_t width) {
  if (width <= 1) return;
  for (std::size_t i = 0; i + width <= bytes; i += width)
    for (std::size_t a = 0, b = width - 1; a < b; ++a, --b) std::swap(data[i + a], data[i + b]);
}

} // namespace atlascope
