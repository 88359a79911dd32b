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

NeighborhoodIndex::Bin NeighborhoodIndex::binOf(std::int64_t section, float x, float y) const {
  return {section, static_cast<std::int64_t>(std::floor(x / opt_.patchSize)),
          static_cast<std::int64_t>(std::floor(y / opt_.patchSize))};
}

NeighborhoodIndex::NeighborhoodIndex(const float* x, const float* y, const std::int64_t* section, std::int64_t cells,
                                     NeighborhoodOptions options)
    : x_(x), y_(y), section_(section), n_(cells), opt_(options) {
  if (cells > std::numeric_limits<std::int32_t>::max()) throw Error("more than 2^31 cells are not supported");
  if (!(opt_.patchSize > 0)) throw Error("the neighbourhood size must be positive");
  // Counting sort by bin: first count, then place.
  std::vector<Bin> binOfCell(static_cast<std::size_t>(cells));
  for (std::int64_t i = 0; i < cells; ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw Error("cell " + std::to_string(i) + " has a non-finite position (skip such cells when reading)");
    binOfCell[static_cast<std::size_t>(i)] = binOf(section[i], x[i], y[i]);
    ++bins_[binOfCell[static_cast<std::size_t>(i)]].second;
  }
  std::int64_t start = 0;
  for (auto& [bin, range] : bins_) {
    const std::int64_t count = range.second;
    range = {start, start};
    start += count;
  }
  order_.resize(static_cast<std::size_t>(cells));
  for (std::int64_t i = 0; i < cells; ++i) {
    auto& range = bins_[binOfCell[static_cast<std::size_t>(i)]];
    order_[static_cast<std::size_t>(range.second++)] = static_cast<std::int32_t>(i);
  }
}

void NeighborhoodIndex::neighbors(std::int64_t i, std::vector<std::int32_t>& out) const {
  float x0, x1, y0, y1;
  windowBounds(x_[i], opt_.patchSize, x0, x1);
  windowBounds(y_[i], opt_.patchSize, y0, y1);
  const std::size_t first = out.size();
  const Bin lo = binOf(section_[i], x0, y0), hi = binOf(section_[i], x1, y1);
  for (std::int64_t bx = lo.bx; bx <= hi.bx; ++bx)
    for (std::int64_t by = lo.by; by <= hi.by; ++by) {
      const auto it = bins_.find({section_[i], bx, by});
      if (it == bins_.end()) continue;
      for (std::int64_t k = it->second.first; k < it->second.second; ++k) {
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
