#include "inference/ChunkLayout.h"

#include <algorithm>

namespace atlascope::inference {

namespace {
std::int64_t shareStart(std::int64_t cells, int rank, int world) { return cells * rank / std::max(1, world); }
} // namespace

std::pair<std::int64_t, std::int64_t> ChunkLayout::rankChunks(int rank, int world) const {
  const std::int64_t lo = shareStart(cells(), rank, world), hi = shareStart(cells(), rank + 1, world);
  // The first chunk starting at or after a share's first cell; the last share ends with the last chunk.
  const auto firstAt = [&](std::int64_t cell) {
    return static_cast<std::int64_t>(std::lower_bound(starts.begin(), starts.end() - 1, cell) - starts.begin());
  };
  return {firstAt(lo), rank + 1 >= world ? chunks() : firstAt(hi)};
}

bool ChunkLayout::valid(std::int64_t n) const {
  if (starts.empty() || starts.front() != 0 || starts.back() != n) return false;
  for (std::size_t k = 1; k < starts.size(); ++k)
    if (starts[k] <= starts[k - 1]) return false;
  return n > 0 || starts.size() == 1;
}

ChunkLayout uniformChunks(std::int64_t cells, std::int64_t chunkCells) {
  ChunkLayout l;
  const std::int64_t c = std::max<std::int64_t>(1, chunkCells);
  for (std::int64_t a = c; a < cells; a += c) l.starts.push_back(a);
  if (cells > 0) l.starts.push_back(cells);
  return l;
}

ChunkLayout taperedChunks(std::int64_t cells, std::int64_t chunkCells, int world) {
  ChunkLayout l;
  const std::int64_t full = std::max<std::int64_t>(1, chunkCells);
  for (int r = 0; r < std::max(1, world); ++r) {
    const std::int64_t lo = shareStart(cells, r, world), hi = shareStart(cells, r + 1, world), span = hi - lo;
    if (span <= 0) continue;
    std::vector<std::int64_t> sizes;
    const std::int64_t c = std::min(full, span / 2); // the tapers take 2c
    if (c < 8) {                                     // too short to taper: pieces of at most chunkCells
      for (std::int64_t a = 0; a < span; a += full) sizes.push_back(std::min(full, span - a));
    } else {
      const std::int64_t taper[4] = {c >> 3, c >> 3, c >> 2, c - 2 * (c >> 3) - (c >> 2)};
      sizes.assign(taper, taper + 4);
      const std::int64_t middle = span - 2 * c, pieces = (middle + full - 1) / full;
      for (std::int64_t i = 0; i < pieces; ++i) sizes.push_back(middle * (i + 1) / pieces - middle * i / pieces);
      sizes.insert(sizes.end(), std::rbegin(taper), std::rend(taper));
    }
    std::int64_t at = lo;
    for (const std::int64_t s : sizes) {
      at += s;
      l.starts.push_back(at);
    }
  }
  return l;
}

} // namespace atlascope::inference
