#pragma once
// Edits a zip archive (a torch.save .pth) in memory for the tests: find a member's data, and
// recompute the CRC-32s after a deliberate edit, so that a test can reach the pickle checks
// behind the CRC check (or leave the CRC stale to test that check).
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>
#include <zlib.h>

namespace atlascope::test {

struct ZipMember {
  std::string name;
  std::size_t central = 0, local = 0, data = 0, size = 0; // offsets; size: stored bytes
};

inline std::uint32_t zipLe32(const std::vector<std::uint8_t>& b, std::size_t p) {
  return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (static_cast<std::uint32_t>(b[p + 3]) << 24);
}
inline std::uint16_t zipLe16(const std::vector<std::uint8_t>& b, std::size_t p) {
  return static_cast<std::uint16_t>(b[p] | (b[p + 1] << 8));
}
inline void zipPut32(std::vector<std::uint8_t>& b, std::size_t p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[p + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The members of an archive without ZIP64 (the test fixtures are small).
inline std::vector<ZipMember> zipMembers(const std::vector<std::uint8_t>& b) {
  std::size_t eocd = b.size() - 22;
  while (zipLe32(b, eocd) != 0x06054b50u) {
    if (eocd == 0) throw std::runtime_error("no zip directory");
    --eocd;
  }
  std::vector<ZipMember> out;
  std::size_t p = zipLe32(b, eocd + 16);
  for (std::uint16_t n = zipLe16(b, eocd + 10); n > 0; --n) {
    ZipMember m;
    m.central = p;
    m.local = zipLe32(b, p + 42);
    m.size = zipLe32(b, p + 20);
    m.name.assign(reinterpret_cast<const char*>(&b[p + 46]), zipLe16(b, p + 28));
    m.data = m.local + 30 + zipLe16(b, m.local + 26) + zipLe16(b, m.local + 28);
    out.push_back(m);
    p += 46u + zipLe16(b, p + 28) + zipLe16(b, p + 30) + zipLe16(b, p + 32);
  }
  return out;
}

inline ZipMember zipMember(const std::vector<std::uint8_t>& b, const std::string& suffix) {
  for (const auto& m : zipMembers(b))
    if (m.name.size() >= suffix.size() && m.name.compare(m.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return m;
  throw std::runtime_error("no zip member " + suffix);
}

// Rewrites every stored member's CRC-32 (local header and directory) from its current bytes.
inline std::vector<std::uint8_t> zipWithFixedCrcs(std::vector<std::uint8_t> b) {
  for (const auto& m : zipMembers(b)) {
    const auto crc = static_cast<std::uint32_t>(crc32(0L, b.data() + m.data, static_cast<uInt>(m.size)));
    zipPut32(b, m.local + 14, crc);
    zipPut32(b, m.central + 16, crc);
  }
  return b;
}

} // namespace atlascope::test
