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
  // Threads that build a NeighborhoodIndex (0: every core; at least 64k cells each): the same
  // index whatever the count.
  int buildThreads = 0;
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

// Bins of P units per section, built once in O(N) by a counting sort; a query visits at most 2x2
// bins (more at a grid's edge). A section's bins form a dense grid over the bulk of its cells
// (outlying ones in its edge bins) unless that grid would hold more than ~2 bins per cell (a
// sparse section): then its bins are found through a hash map. Coordinates are kept by reference:
// they must outlive the index.
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
  // A section's bins. Dense: bins [bx0, bx0 + nx) x [by0, by0 + ny), bin (bx, by) at
  // first + (bx - bx0) * ny + (by - by0) of binStart_. Sparse: through sparseBins_.
  struct Grid {
    bool sparse = false;
    std::int64_t bx0 = 0, by0 = 0, nx = 1, ny = 1, first = 0;
    std::int64_t column(std::int64_t bx) const; // a bin coordinate clamped to the grid, from its start
    std::int64_t row(std::int64_t by) const;
  };
  struct SparseBin {
    std::int64_t grid, bx, by;
    bool operator==(const SparseBin& o) const { return grid == o.grid && bx == o.bx && by == o.by; }
  };
  struct SparseBinHash {
    std::size_t operator()(const SparseBin& b) const {
      std::uint64_t h = static_cast<std::uint64_t>(b.grid) * 0x9E3779B97F4A7C15ull;
      h ^= static_cast<std::uint64_t>(b.bx) * 0xC2B2AE3D27D4EB4Full + (h << 6) + (h >> 2);
      h ^= static_cast<std::uint64_t>(b.by) * 0x165667B19E3779F9ull + (h << 6) + (h >> 2);
      return static_cast<std::size_t>(h);
    }
  };
  std::int64_t bin(float v) const; // v's bin coordinate, floor(v / P) (clamped to +-2^52)

  const float* x_;
  const float* y_;
  const std::int64_t* section_;
  std::int64_t n_;
  NeighborhoodOptions opt_;
  std::vector<Grid> grids_;
  std::unordered_map<std::int64_t, std::int32_t> gridOf_;                 // section -> grids_ index
  std::unordered_map<SparseBin, std::int64_t, SparseBinHash> sparseBins_; // -> its index in binStart_
  std::vector<std::int32_t> binStart_; // per bin, its first place in order_ (+ the end)
  std::vector<std::int32_t> order_;    // cells grouped by bin
};

// The window's inclusive bounds for a centre coordinate: [rint(c - P/2), rint(c - P/2) + P],
// in float32 arithmetic as the reference computes it, rounding half to even.
void windowBounds(float centre, float patch, float& lo, float& hi);

} // namespace atlascope
