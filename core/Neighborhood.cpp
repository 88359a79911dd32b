#include "core/Neighborhood.h"

#include "core/Error.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

namespace atlascope {

void windowBounds(float centre, float patch, float& lo, float& hi) {
  // std::nearbyint honours the current rounding mode, which is round-half-to-even by default
  // (numpy's rint); never changed by Atlascope.
  lo = std::nearbyint(centre - patch * 0.5f);
  hi = lo + patch;
}

std::int64_t NeighborhoodIndex::Grid::bin(double v) const {
  constexpr double limit = 4503599627370496.0; // 2^52: far beyond any grid, and exact as an integer
  return static_cast<std::int64_t>(std::clamp(std::floor(v / size), -limit, limit));
}

NeighborhoodIndex::NeighborhoodIndex(const float* x, const float* y, const std::int64_t* section, std::int64_t cells,
                                     NeighborhoodOptions options)
    : x_(x), y_(y), section_(section), n_(cells), opt_(options) {
  if (cells > std::numeric_limits<std::int32_t>::max()) throw Error("more than 2^31 cells are not supported");
  if (!(opt_.patchSize > 0)) throw Error("the neighbourhood size must be positive");
  // Each section's extent and cell count (a hash look-up only where the section changes: cells
  // come grouped by section), then its grid: a hash map of bins took 0.33 s for 4M cells.
  struct Extent {
    float x0, x1, y0, y1;
    std::int64_t cells = 0;
  };
  std::vector<Extent> extents;
  std::vector<std::int32_t> gridOfCell(static_cast<std::size_t>(cells));
  std::int32_t g = -1;
  for (std::int64_t i = 0; i < cells; ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw Error("cell " + std::to_string(i) + " has a non-finite position (skip such cells when reading)");
    if (i == 0 || section[i] != section[i - 1]) {
      const auto [it, added] = gridOf_.emplace(section[i], static_cast<std::int32_t>(extents.size()));
      if (added) extents.push_back({x[i], x[i], y[i], y[i]});
      g = it->second;
    }
    Extent& e = extents[static_cast<std::size_t>(g)];
    e.x0 = std::min(e.x0, x[i]);
    e.x1 = std::max(e.x1, x[i]);
    e.y0 = std::min(e.y0, y[i]);
    e.y1 = std::max(e.y1, y[i]);
    ++e.cells;
    gridOfCell[static_cast<std::size_t>(i)] = g;
  }
  // Bins of P, doubled while the grid would exceed 2 bins per cell (+64): a few outlying cells
  // must not make the grid huge. Coarser bins hold more cells to filter, never fewer neighbours.
  grids_.resize(extents.size());
  std::int64_t bins = 0;
  for (std::size_t k = 0; k < extents.size(); ++k) {
    const Extent& e = extents[k];
    Grid& grid = grids_[k];
    grid.size = opt_.patchSize;
    for (;;) {
      grid.bx0 = grid.bin(e.x0);
      grid.by0 = grid.bin(e.y0);
      grid.nx = grid.bin(e.x1) - grid.bx0 + 1;
      grid.ny = grid.bin(e.y1) - grid.by0 + 1;
      if (grid.nx <= (2 * e.cells + 64) / grid.ny) break;
      grid.size *= 2;
    }
    grid.first = bins;
    bins += grid.nx * grid.ny;
  }
  // Counting sort by bin: first count, then place.
  std::vector<std::int64_t> binOfCell(static_cast<std::size_t>(cells));
  binStart_.assign(static_cast<std::size_t>(bins) + 1, 0);
  for (std::int64_t i = 0; i < cells; ++i) {
    const Grid& grid = grids_[static_cast<std::size_t>(gridOfCell[static_cast<std::size_t>(i)])];
    const std::int64_t b = grid.first + (grid.bin(x[i]) - grid.bx0) * grid.ny + (grid.bin(y[i]) - grid.by0);
    binOfCell[static_cast<std::size_t>(i)] = b;
    ++binStart_[static_cast<std::size_t>(b) + 1];
  }
  for (std::size_t b = 1; b < binStart_.size(); ++b) binStart_[b] += binStart_[b - 1];
  order_.resize(static_cast<std::size_t>(cells));
  std::vector<std::int32_t> next(binStart_.begin(), binStart_.end() - 1);
  for (std::int64_t i = 0; i < cells; ++i)
    order_[static_cast<std::size_t>(next[static_cast<std::size_t>(binOfCell[static_cast<std::size_t>(i)])]++)] =
        static_cast<std::int32_t>(i);
}

void NeighborhoodIndex::neighbors(std::int64_t i, std::vector<std::int32_t>& out) const {
  float x0, x1, y0, y1;
  windowBounds(x_[i], opt_.patchSize, x0, x1);
  windowBounds(y_[i], opt_.patchSize, y0, y1);
  const std::size_t first = out.size();
  const Grid& grid = grids_[static_cast<std::size_t>(gridOf_.at(section_[i]))];
  // The window's bins, clipped to the grid (no cell of the section lies outside it).
  const std::int64_t bxLo = std::max<std::int64_t>(grid.bin(x0) - grid.bx0, 0),
                     bxHi = std::min<std::int64_t>(grid.bin(x1) - grid.bx0, grid.nx - 1);
  const std::int64_t byLo = std::max<std::int64_t>(grid.bin(y0) - grid.by0, 0),
                     byHi = std::min<std::int64_t>(grid.bin(y1) - grid.by0, grid.ny - 1);
  for (std::int64_t bx = bxLo; bx <= bxHi; ++bx) {
    // The bins of one column are consecutive: one range of order_.
    const std::int64_t row = grid.first + bx * grid.ny;
    const std::int32_t a = binStart_[static_cast<std::size_t>(row + byLo)],
                       b = byHi >= byLo ? binStart_[static_cast<std::size_t>(row + byHi + 1)] : a;
    for (std::int32_t k = a; k < b; ++k) {
      const std::int32_t j = order_[static_cast<std::size_t>(k)];
      const float xj = x_[j], yj = y_[j];
      if (j != i && xj >= x0 && xj <= x1 && yj >= y0 && yj <= y1) out.push_back(j);
    }
  }
  std::sort(out.begin() + static_cast<long>(first), out.end());
  const std::size_t found = out.size() - first;
  if (opt_.cap > 0 && found > static_cast<std::size_t>(opt_.cap)) {
    // A seeded uniform subset, reproducible per (seed, cell) whatever the thread layout.
    std::mt19937_64 rng(opt_.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i));
    std::shuffle(out.begin() + static_cast<long>(first), out.end(), rng);
    out.resize(first + static_cast<std::size_t>(opt_.cap));
    std::sort(out.begin() + static_cast<long>(first), out.end());
  }
}

NeighborhoodList NeighborhoodIndex::compute(std::int64_t begin, std::int64_t end, int threads) const {
  if (begin < 0 || end > n_ || begin > end) throw Error("neighbourhood range out of bounds");
  const std::int64_t count = end - begin;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<std::int64_t>(threads, std::max<std::int64_t>(1, count / 4096)));
  // Each thread fills its own slice; the slices are then concatenated.
  std::vector<std::vector<std::int32_t>> parts(static_cast<std::size_t>(threads));
  std::vector<std::vector<std::int64_t>> sizes(static_cast<std::size_t>(threads));
  auto work = [&](int t) {
    const std::int64_t a = begin + count * t / threads, b = begin + count * (t + 1) / threads;
    auto& idx = parts[static_cast<std::size_t>(t)];
    auto& sz = sizes[static_cast<std::size_t>(t)];
    sz.reserve(static_cast<std::size_t>(b - a));
    for (std::int64_t i = a; i < b; ++i) {
      const std::size_t before = idx.size();
      neighbors(i, idx);
      sz.push_back(static_cast<std::int64_t>(idx.size() - before));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  NeighborhoodList out;
  out.indptr.reserve(static_cast<std::size_t>(count) + 1);
  out.indptr.push_back(0);
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  out.indices.reserve(total);
  for (int t = 0; t < threads; ++t) {
    for (std::int64_t s : sizes[static_cast<std::size_t>(t)]) out.indptr.push_back(out.indptr.back() + s);
    out.indices.insert(out.indices.end(), parts[static_cast<std::size_t>(t)].begin(),
                       parts[static_cast<std::size_t>(t)].end());
  }
  return out;
}

} // namespace atlascope
