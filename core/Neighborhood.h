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

// A dense grid per section (bins of P units, coarser where a section's cells are so spread out
// that its grid would hold more than ~2 bins per cell), built once in O(N) by a counting sort;
// queries visit at most 2x2 bins. Coordinates are kept by reference: they must outlive the index.
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
  // A section's grid: bins [bx0, bx0 + nx) x [by0, by0 + ny) of `size` units, bin (bx, by) at
  // first + (bx - bx0) * ny + (by - by0) of binStart_.
  struct Grid {
    double size = 0;
    std::int64_t bx0 = 0, by0 = 0, nx = 1, ny = 1, first = 0;
    std::int64_t bin(double v) const; // the bin coordinate of v (clamped to +-2^52)
  };
  const float* x_;
  const float* y_;
  const std::int64_t* section_;
  std::int64_t n_;
  NeighborhoodOptions opt_;
  std::vector<Grid> grids_;
  std::unordered_map<std::int64_t, std::int32_t> gridOf_; // section -> grids_ index
  std::vector<std::int32_t> binStart_;                    // per bin, its first place in order_ (+ the end)
  std::vector<std::int32_t> order_;                       // cells grouped by bin
};

// The window's inclusive bounds for a centre coordinate: [rint(c - P/2), rint(c - P/2) + P],
// in float32 arithmetic as the reference computes it, rounding half to even.
void windowBounds(float centre, float patch, float& lo, float& hi);

} // namespace atlascope
