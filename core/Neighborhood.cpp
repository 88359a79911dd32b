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

namespace {
// work(0) .. work(count - 1), each on a thread of its own (work(0) on the caller's).
template <typename Work> void onThreads(int count, const Work& work) {
  std::vector<std::thread> pool;
  for (int t = 1; t < count; ++t) pool.emplace_back([&work, t] { work(t); });
  work(0);
  for (auto& th : pool) th.join();
}
} // namespace

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
  // Every pass over the cells runs on T threads, each over a contiguous range of them, and the
  // ranges' results are combined in range order, so that the index is the one a single pass in
  // cell order builds, whatever T (an embedding run's start waited 0.13 s for it on one core of
  // the H200 machine's 16 for 4M cells). At least 64k cells a thread.
  int T =
      opt_.buildThreads > 0 ? opt_.buildThreads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  T = static_cast<int>(std::clamp<std::int64_t>(cells / 65536, 1, T));
  auto begin = [&](int t) { return cells * t / T; };
  // Each section's extent and cell count (a hash look-up only where the section changes: cells
  // come grouped by section). A hash map of every bin took 0.33 s to build for 4M cells. Per
  // range: its sections in order of first appearance (local ids in gridOfCell), then numbered
  // across the ranges in that order.
  struct Extent {
    float x0, x1, y0, y1;
    std::int64_t cells = 0;
  };
  struct RangeSections {
    std::vector<std::int64_t> ids;
    std::vector<Extent> extents;
    std::vector<std::int32_t> global; // local id -> grids_ index
    std::int64_t badCell = -1;        // its first cell with a non-finite position
  };
  std::vector<RangeSections> ranges(static_cast<std::size_t>(T));
  std::vector<std::int32_t> gridOfCell(static_cast<std::size_t>(cells));
  onThreads(T, [&](int t) {
    RangeSections& r = ranges[static_cast<std::size_t>(t)];
    std::unordered_map<std::int64_t, std::int32_t> local;
    std::int32_t g = -1;
    for (std::int64_t i = begin(t), e = begin(t + 1); i < e; ++i) {
      if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
        r.badCell = i;
        return;
      }
      if (i == begin(t) || section[i] != section[i - 1]) {
        const auto [it, added] = local.emplace(section[i], static_cast<std::int32_t>(r.extents.size()));
        if (added) {
          r.ids.push_back(section[i]);
          r.extents.push_back({x[i], x[i], y[i], y[i]});
        }
        g = it->second;
      }
      Extent& ex = r.extents[static_cast<std::size_t>(g)];
      ex.x0 = std::min(ex.x0, x[i]);
      ex.x1 = std::max(ex.x1, x[i]);
      ex.y0 = std::min(ex.y0, y[i]);
      ex.y1 = std::max(ex.y1, y[i]);
      ++ex.cells;
      gridOfCell[static_cast<std::size_t>(i)] = g;
    }
  });
  std::vector<Extent> extents;
  for (RangeSections& r : ranges) {
    if (r.badCell >= 0)
      throw Error("cell " + std::to_string(r.badCell) + " has a non-finite position (skip such cells when reading)");
    for (std::size_t j = 0; j < r.ids.size(); ++j) {
      const auto [it, added] = gridOf_.emplace(r.ids[j], static_cast<std::int32_t>(extents.size()));
      const Extent& ex = r.extents[j];
      if (added) {
        extents.push_back(ex);
      } else {
        Extent& e = extents[static_cast<std::size_t>(it->second)];
        e.x0 = std::min(e.x0, ex.x0);
        e.x1 = std::max(e.x1, ex.x1);
        e.y0 = std::min(e.y0, ex.y0);
        e.y1 = std::max(e.y1, ex.y1);
        e.cells += ex.cells;
      }
      r.global.push_back(it->second);
    }
  }
  onThreads(T, [&](int t) {
    const auto& global = ranges[static_cast<std::size_t>(t)].global;
    for (std::int64_t i = begin(t), e = begin(t + 1); i < e; ++i)
      gridOfCell[static_cast<std::size_t>(i)] =
          global[static_cast<std::size_t>(gridOfCell[static_cast<std::size_t>(i)])];
  });
  // A dense grid spans the bulk of its section: from a sample of up to 2048 of the section's cells,
  // the 1% and 99% quantiles on each axis, widened by 5% of their span and 2 P, within the extent.
  // Cells beyond fall into its edge bins (bins are clamped to the grid, which keeps their order: a
  // window still covers every bin its cells can be in), so that a few far-off cells do not make
  // the grid huge. A grid of more than 2 bins per cell (+64) would be mostly empty: that section's
  // bins go into a hash map instead, as every bin did before.
  const std::size_t G = extents.size();
  std::vector<std::int64_t> sampleAt(G + 1, 0), stride(G);
  for (std::size_t k = 0; k < G; ++k) {
    stride[k] = std::max<std::int64_t>(1, (extents[k].cells + 2047) / 2048);
    sampleAt[k + 1] = sampleAt[k] + (extents[k].cells + stride[k] - 1) / stride[k];
  }
  // Every cell a section's stride apart, counted in cell order: a range starts from the earlier
  // ranges' counts.
  std::vector<std::vector<std::int64_t>> seenBefore(static_cast<std::size_t>(T));
  {
    std::vector<std::int64_t> seen(G, 0);
    for (int t = 0; t < T; ++t) {
      const RangeSections& r = ranges[static_cast<std::size_t>(t)];
      seenBefore[static_cast<std::size_t>(t)] = seen;
      for (std::size_t j = 0; j < r.ids.size(); ++j) seen[static_cast<std::size_t>(r.global[j])] += r.extents[j].cells;
    }
  }
  std::vector<float> sx(static_cast<std::size_t>(sampleAt.back())), sy(sx.size());
  onThreads(T, [&](int t) {
    std::vector<std::int64_t>& seen = seenBefore[static_cast<std::size_t>(t)];
    for (std::int64_t i = begin(t), e = begin(t + 1); i < e; ++i) {
      const auto k = static_cast<std::size_t>(gridOfCell[static_cast<std::size_t>(i)]);
      if (seen[k] % stride[k] == 0) {
        const auto at = static_cast<std::size_t>(sampleAt[k] + seen[k] / stride[k]);
        sx[at] = x[i];
        sy[at] = y[i];
      }
      ++seen[k];
    }
  });
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
  grids_.resize(G);
  std::int64_t bins = 0; // the dense grids' bins; the sparse sections' follow
  bool anySparse = false;
  for (std::size_t k = 0; k < G; ++k) {
    const std::int64_t m = sampleAt[k + 1] - sampleAt[k];
    const auto [x0, x1] = bulk(sx.data() + sampleAt[k], m, extents[k].x0, extents[k].x1);
    const auto [y0, y1] = bulk(sy.data() + sampleAt[k], m, extents[k].y0, extents[k].y1);
    Grid& grid = grids_[k];
    grid.bx0 = bin(x0);
    grid.by0 = bin(y0);
    grid.nx = bin(x1) - grid.bx0 + 1;
    grid.ny = bin(y1) - grid.by0 + 1;
    grid.sparse = grid.nx > (2 * extents[k].cells + 64) / grid.ny;
    anySparse = anySparse || grid.sparse;
    if (grid.sparse) continue;
    grid.first = bins;
    bins += grid.nx * grid.ny;
  }
  // Counting sort by bin: each cell's bin (a sparse section's numbered in cell order, through the
  // hash map, on one thread), then each range's counts over the bins it touches, their starts in
  // range order, and the cells placed.
  std::vector<std::int64_t> binOfCell(static_cast<std::size_t>(cells));
  onThreads(T, [&](int t) {
    for (std::int64_t i = begin(t), e = begin(t + 1); i < e; ++i) {
      const Grid& grid = grids_[static_cast<std::size_t>(gridOfCell[static_cast<std::size_t>(i)])];
      binOfCell[static_cast<std::size_t>(i)] =
          grid.sparse ? -1 : grid.first + grid.column(bin(x[i])) * grid.ny + grid.row(bin(y[i]));
    }
  });
  if (anySparse)
    for (std::int64_t i = 0; i < cells; ++i) {
      const std::int64_t k = gridOfCell[static_cast<std::size_t>(i)];
      if (!grids_[static_cast<std::size_t>(k)].sparse) continue;
      binOfCell[static_cast<std::size_t>(i)] =
          sparseBins_.emplace(SparseBin{k, bin(x[i]), bin(y[i])}, bins + static_cast<std::int64_t>(sparseBins_.size()))
              .first->second;
    }
  const std::int64_t totalBins = bins + static_cast<std::int64_t>(sparseBins_.size());
  // Cells grouped by section touch few bins a range; cells in any order would give every range
  // a count of every bin: then one range.
  std::vector<std::int64_t> lo(static_cast<std::size_t>(T)), hi(static_cast<std::size_t>(T));
  onThreads(T, [&](int t) {
    const auto first = binOfCell.begin() + begin(t), last = binOfCell.begin() + begin(t + 1);
    const auto [a, b] = std::minmax_element(first, last);
    lo[static_cast<std::size_t>(t)] = first == last ? 0 : *a;
    hi[static_cast<std::size_t>(t)] = first == last ? -1 : *b;
  });
  std::int64_t span = 0;
  for (int t = 0; t < T; ++t) span += hi[static_cast<std::size_t>(t)] - lo[static_cast<std::size_t>(t)] + 1;
  const int C = span <= 2 * totalBins + (std::int64_t(1) << 20) ? T : 1;
  auto countBegin = [&](int t) { return C == 1 ? std::int64_t(0) : begin(t); };
  auto countEnd = [&](int t) { return C == 1 ? cells : begin(t + 1); };
  if (C == 1) {
    lo[0] = 0;
    hi[0] = totalBins - 1;
  }
  std::vector<std::vector<std::int32_t>> counts(static_cast<std::size_t>(C));
  onThreads(C, [&](int t) {
    auto& c = counts[static_cast<std::size_t>(t)];
    const std::int64_t base = lo[static_cast<std::size_t>(t)];
    c.assign(static_cast<std::size_t>(std::max<std::int64_t>(0, hi[static_cast<std::size_t>(t)] - base + 1)), 0);
    for (std::int64_t i = countBegin(t), e = countEnd(t); i < e; ++i)
      ++c[static_cast<std::size_t>(binOfCell[static_cast<std::size_t>(i)] - base)];
  });
  binStart_.assign(static_cast<std::size_t>(totalBins) + 1, 0);
  for (int t = 0; t < C; ++t)
    for (std::size_t b = 0; b < counts[static_cast<std::size_t>(t)].size(); ++b)
      binStart_[static_cast<std::size_t>(lo[static_cast<std::size_t>(t)]) + b + 1] +=
          counts[static_cast<std::size_t>(t)][b];
  for (std::size_t b = 1; b < binStart_.size(); ++b) binStart_[b] += binStart_[b - 1];
  {
    // Each range's counts become its first place in each bin: after the earlier ranges' cells.
    std::vector<std::int32_t> next(binStart_.begin(), binStart_.end() - 1);
    for (int t = 0; t < C; ++t)
      for (std::size_t b = 0; b < counts[static_cast<std::size_t>(t)].size(); ++b) {
        std::int32_t& c = counts[static_cast<std::size_t>(t)][b];
        std::int32_t& at = next[static_cast<std::size_t>(lo[static_cast<std::size_t>(t)]) + b];
        const std::int32_t n = c;
        c = at;
        at += n;
      }
  }
  order_.resize(static_cast<std::size_t>(cells));
  onThreads(C, [&](int t) {
    auto& place = counts[static_cast<std::size_t>(t)];
    const std::int64_t base = lo[static_cast<std::size_t>(t)];
    for (std::int64_t i = countBegin(t), e = countEnd(t); i < e; ++i)
      order_[static_cast<std::size_t>(
          place[static_cast<std::size_t>(binOfCell[static_cast<std::size_t>(i)] - base)]++)] =
          static_cast<std::int32_t>(i);
  });
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
  onThreads(threads, work);
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
