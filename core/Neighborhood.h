#pragma once
// A cell's neighbourhood as CellTransformer defines it (CELLTRANSFORMER.md): the other cells of
// the same section inside an axis-aligned square of side P = 17 units (1 unit = 10 um) whose
// corner is start = rint(centre - P/2) (round half to even), both ends inclusive.
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace atlascope {

struct NeighborhoodOptions {
  float patchSize = 17.0f; // P, in the coordinates' unit (10 um for the reference)
  // Training caps a neighbourhood at this many observed cells (seeded uniform subset); 0 = no cap
  // (inference).
  int cap = 0;
  std::uint64_t seed = 1221;
};

// Compressed lists: cell i's neighbours are indices[indptr[i] .. indptr[i+1]), ascending.
struct NeighborhoodList {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::int64_t cells() const { return static_cast<std::int64_t>(indptr.size()) - 1; }
  std::int64_t size(std::int64_t i) const {
    return indptr[static_cast<std::size_t>(i) + 1] - indptr[static_cast<std::size_t>(i)];
  }
};

// A spatial grid per section (bins of P units), built once in O(N); queries visit at most 2x2
// bins. Coordinates are kept by reference: they must outlive the index.
class NeighborhoodIndex {
public:
  NeighborhoodIndex(const float* x, const float* y, const std::int64_t* section, std::int64_t cells,
                    NeighborhoodOptions options = {});

  // Appends cell i's neighbours (ascending, i excluded, capped if options.cap) to `out`.
  void neighbors(std::int64_t i, std::vector<std::int32_t>& out) const;
  std::int64_t cells() const { return n_; }

  // Neighbourhoods of cells [begin, end), on `threads` threads (0 = all cores).
  NeighborhoodList compute(std::int64_t begin, std::int64_t end, int threads = 0) const;

private:
  struct Bin {
    std::int64_t section;
    std::int64_t bx, by;
    bool operator==(const Bin& o) const { return section == o.section && bx == o.bx && by == o.by; }
  };
  struct BinHash {
    std::size_t operator()(const Bin& b) const {
      std::uint64_t h = static_cast<std::uint64_t>(b.section) * 0x9E3779B97F4A7C15ull;
      h ^= static_cast<std::uint64_t>(b.bx) * 0xC2B2AE3D27D4EB4Full + (h << 6) + (h >> 2);
      h ^= static_cast<std::uint64_t>(b.by) * 0x165667B19E3779F9ull + (h << 6) + (h >> 2);
      return static_cast<std::size_t>(h);
    }
  };
  Bin binOf(std::int64_t section, float x, float y) const;

  const float* x_;
  const float* y_;
  const std::int64_t* section_;
  std::int64_t n_;
  NeighborhoodOptions opt_;
  std::vector<std::int32_t> order_;                                              // cells grouped by bin
  std::unordered_map<Bin, std::pair<std::int64_t, std::int64_t>, BinHash> bins_; // bin -> [first, last) in order_
};

// The window's inclusive bounds for a centre coordinate: [rint(c - P/2), rint(c - P/2) + P],
// in float32 arithmetic as the reference computes it, rounding half to even.
void windowBounds(float centre, float patch, float& lo, float& hi);

} // namespace atlascope
