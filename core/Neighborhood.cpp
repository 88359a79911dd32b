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

std::int64_t NeighborhoodIndex::bin(float v) const {
  constexpr double limit = 4503599627370496.0; // 2^52: far beyond any grid, and exact as an integer
  return static_cast<std::int64_t>(std::clamp(std::floor(static_cast<double>(v) / opt_.patchSize), -limit, limit));
}
std::int64_t NeighborhoodIndex::Grid::column(std::int64_t bx) const {
  return std::clamp(bx - bx0, std::int64_t{0}, nx - 1);
}
std::int64_t NeighborhoodIndex::Grid::row(std::int64_t by) const {
  return std::clamp(by - by0, std::int64_t{0}, ny - 1);
}

NeighborhoodIndex::NeighborhoodIndex(const float* x, const float* y, const std::int64_t* section, std::int64_t cells,
                                     NeighborhoodOptions options)
    : x_(x), y_(y), section_(section), n_(cells), opt_(options) {
  if (cells > std::numeric_limits<std::int32_t>::max()) throw Error("more than 2^31 cells are not supported");
  if (!(opt_.patchSize > 0)) throw Error("the neighbourhood size must be positive");
  // Each section's extent and cell count (a hash look-up only where the section changes: cells
  // come grouped by section). A hash map of every bin took 0.33 s to build for 4M cells.
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
  // A dense grid spans the bulk of its section: from a sample of up to 2048 of the section's cells,
  // the 1% and 99% quantiles on each axis, widened by 5% of their span and 2 P, within the extent.
  // Cells beyond fall into its edge bins (bins are clamped to the grid, which keeps their order: a
  // window still covers every bin its cells can be in), so that a few far-off cells do not make
  // the grid huge. A grid of more than 2 bins per cell (+64) would be mostly empty: that section's
  // bins go into a hash map instead, as every bin did before.
  std::vector<std::int64_t> sampleAt(extents.size() + 1, 0), stride(extents.size()), seen(extents.size(), 0);
  for (std::size_t k = 0; k < extents.size(); ++k) {
    stride[k] = std::max<std::int64_t>(1, (extents[k].cells + 2047) / 2048);
    sampleAt[k + 1] = sampleAt[k] + (extents[k].cells + stride[k] - 1) / stride[k];
  }
  std::vector<float> sx(static_cast<std::size_t>(sampleAt.back())), sy(sx.size());
  for (std::int64_t i = 0; i < cells; ++i) {
    const auto k = static_cast<std::size_t>(gridOfCell[static_cast<std::size_t>(i)]);
    if (seen[k] % stride[k] == 0) {
      const auto at = static_cast<std::size_t>(sampleAt[k] + seen[k] / stride[k]);
      sx[at] = x[i];
      sy[at] = y[i];
    }
    ++seen[k];
  }
  const double pad = 2.0 * opt_.patchSize;
  auto bulk = [pad](float* v, std::int64_t n, float lo, float hi) {
    const std::int64_t a = n / 100, b = n - 1 - n / 100;
    std::nth_element(v, v + a, v + n);
    const double qa = v[a];
    std::nth_element(v, v + b, v + n);
    const double qb = v[b], margin = 0.05 * (qb - qa) + pad;
    return std::pair<float, float>{static_cast<float>(std::max<double>(lo, qa - margin)),
                                   static_cast<float>(std::min<double>(hi, qb + margin))};
  };
  grids_.resize(extents.size());
  std::int64_t bins = 0; // the dense grids' bins; the sparse sections' follow
  for (std::size_t k = 0; k < extents.size(); ++k) {
    const std::int64_t m = sampleAt[k + 1] - sampleAt[k];
    const auto [x0, x1] = bulk(sx.data() + sampleAt[k], m, extents[k].x0, extents[k].x1);
    const auto [y0, y1] = bulk(sy.data() + sampleAt[k], m, extents[k].y0, extents[k].y1);
    Grid& grid = grids_[k];
    grid.bx0 = bin(x0);
    grid.by0 = bin(y0);
    grid.nx = bin(x1) - grid.bx0 + 1;
    grid.ny = bin(y1) - grid.by0 + 1;
    grid.sparse = grid.nx > (2 * extents[k].cells + 64) / grid.ny;
    if (grid.sparse) continue;
    grid.first = bins;
    bins += grid.nx * grid.ny;
  }
  // Counting sort by bin: first count, then place.
  std::vector<std::int64_t> binOfCell(static_cast<std::size_t>(cells));
  for (std::int64_t i = 0; i < cells; ++i) {
    const std::int64_t k = gridOfCell[static_cast<std::size_t>(i)];
    const Grid& grid = grids_[static_cast<std::size_t>(k)];
    const std::int64_t bx = bin(x[i]), by = bin(y[i]);
    binOfCell[static_cast<std::size_t>(i)] =
        grid.sparse ? sparseBins_.emplace(SparseBin{k, bx, by}, bins + static_cast<std::int64_t>(sparseBins_.size()))
                          .first->second
                    : grid.first + grid.column(bx) * grid.ny + grid.row(by);
  }
  binStart_.assign(static_cast<std::size_t>(bins) + sparseBins_.size() + 1, 0);
  for (const std::int64_t b : binOfCell) ++binStart_[static_cast<std::size_t>(b) + 1];
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
  auto scan = [&](std::int64_t from, std::int64_t to) { // cells of binStart_[from] .. binStart_[to]
    for (std::int32_t k = binStart_[static_cast<std::size_t>(from)], e = binStart_[static_cast<std::size_t>(to)]; k < e;
         ++k) {
      const std::int32_t j = order_[static_cast<std::size_t>(k)];
      const float xj = x_[j], yj = y_[j];
      if (j != i && xj >= x0 && xj <= x1 && yj >= y0 && yj <= y1) out.push_back(j);
    }
  };
  const std::int64_t k = gridOf_.at(section_[i]);
  const Grid& grid = grids_[static_cast<std::size_t>(k)];
  if (grid.sparse) {
    for (std::int64_t bx = bin(x0), bxEnd = bin(x1); bx <= bxEnd; ++bx)
      for (std::int64_t by = bin(y0), byEnd = bin(y1); by <= byEnd; ++by) {
        const auto it = sparseBins_.find(SparseBin{k, bx, by});
        if (it != sparseBins_.end()) scan(it->second, it->second + 1);
      }
  } else {
    // The window's bins, clamped to the grid as the cells' are: beyond its edges, the edge bins,
    // where the cells beyond them are. The bins of one column are consecutive in binStart_.
    const std::int64_t byLo = grid.row(bin(y0)), byHi = grid.row(bin(y1));
    for (std::int64_t bx = grid.column(bin(x0)), bxEnd = grid.column(bin(x1)); bx <= bxEnd; ++bx)
      scan(grid.first + bx * grid.ny + byLo, grid.first + bx * grid.ny + byHi + 1);
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
