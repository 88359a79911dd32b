#include "core/SpatialSmoothing.h"

#include "core/Error.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <map>
#include <thread>
#include <unordered_map>

namespace atlascope {

namespace {
// A grid per section for k-nearest queries: rings of bins are added until k candidates are
// found and the ring is farther than the k-th candidate.
class SectionGrid {
public:
  SectionGrid(const std::vector<float>& x, const std::vector<float>& y, const std::vector<std::int32_t>& section, int k)
      : x_(x), y_(y), section_(section) {
    // Bins holding ~k/4 cells on average: a query then visits a few rings.
    std::map<std::int32_t, std::pair<std::int64_t, std::array<float, 4>>> extent; // count, bbox
    for (std::size_t i = 0; i < x.size(); ++i) {
      auto& e = extent[section[i]];
      if (e.first++ == 0) e.second = {x[i], x[i], y[i], y[i]};
      e.second = {std::min(e.second[0], x[i]), std::max(e.second[1], x[i]), std::min(e.second[2], y[i]),
                  std::max(e.second[3], y[i])};
    }
    double area = 0;
    std::int64_t cells = 0;
    for (const auto& [s, e] : extent) {
      area += std::max(1.0, double(e.second[1] - e.second[0])) * std::max(1.0, double(e.second[3] - e.second[2]));
      cells += e.first;
    }
    bin_ = static_cast<float>(std::sqrt(area / std::max<std::int64_t>(1, cells) * std::max(1, k / 4)));
    if (!(bin_ > 0)) bin_ = 1;
    for (std::size_t i = 0; i < x.size(); ++i)
      bins_[key(section[i], cell(x[i]), cell(y[i]))].push_back(static_cast<std::int32_t>(i));
  }

  // The k nearest cells of cell i (itself included) with squared distances.
  void nearest(std::int64_t i, int k, std::vector<std::pair<float, std::int32_t>>& out) const {
    out.clear();
    const std::int64_t cx = cell(x_[static_cast<std::size_t>(i)]), cy = cell(y_[static_cast<std::size_t>(i)]);
    const std::int32_t s = section_[static_cast<std::size_t>(i)];
    for (std::int64_t r = 0;; ++r) {
      bool any = false;
      for (std::int64_t bx = cx - r; bx <= cx + r; ++bx)
        for (std::int64_t by = cy - r; by <= cy + r; ++by) {
          if (std::max(std::abs(bx - cx), std::abs(by - cy)) != r) continue; // the ring only
          const auto it = bins_.find(key(s, bx, by));
          if (it == bins_.end()) continue;
          any = true;
          for (std::int32_t j : it->second) {
            const float dx = x_[static_cast<std::size_t>(j)] - x_[static_cast<std::size_t>(i)],
                        dy = y_[static_cast<std::size_t>(j)] - y_[static_cast<std::size_t>(i)];
            out.emplace_back(dx * dx + dy * dy, j);
          }
        }
      if (static_cast<int>(out.size()) >= k) {
        std::nth_element(out.begin(), out.begin() + (k - 1), out.end());
        const float reach = static_cast<float>(r) * bin_;
        if (reach * reach >= out[static_cast<std::size_t>(k - 1)].first) {
          out.resize(static_cast<std::size_t>(k));
          return;
        }
      }
      if (!any && r > 4 && static_cast<double>(r) * bin_ > 1e7) return; // the section has fewer than k cells
      if (r > 100000) return;
    }
  }

private:
  std::int64_t cell(float v) const { return static_cast<std::int64_t>(std::floor(v / bin_)); }
  static std::uint64_t key(std::int32_t s, std::int64_t bx, std::int64_t by) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(s)) << 42) ^
           (static_cast<std::uint64_t>(bx & 0x1FFFFF) << 21) ^ static_cast<std::uint64_t>(by & 0x1FFFFF);
  }
  const std::vector<float>& x_;
  const std::vector<float>& y_;
  const std::vector<std::int32_t>& section_;
  float bin_ = 1;
  std::unordered_map<std::uint64_t, std::vector<std::int32_t>> bins_;
};

int threadCount(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void checkInputs(const std::vector<float>& x, const std::vector<float>& y, const std::vector<std::int32_t>& section,
                 const SmoothingOptions& o) {
  if (x.size() != y.size() || x.size() != section.size())
    throw Error("smoothing: positions and sections have different lengths");
  if (o.k < 1) throw Error("smoothing: k must be at least 1");
  if (!(o.sigma > 0)) throw Error("smoothing: sigma must be positive");
}
} // namespace

std::vector<float> smoothFeatures(const std::vector<float>& x, const std::vector<float>& y,
                                  const std::vector<std::int32_t>& section, const std::vector<float>& features,
                                  std::int64_t dims, const SmoothingOptions& o, const Progress& progress) {
  checkInputs(x, y, section, o);
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  if (static_cast<std::int64_t>(features.size()) != n * dims) throw Error("smoothing: features do not match the cells");
  const SectionGrid grid(x, y, section, o.k);
  std::vector<float> out(features.size(), 0.0f);
  const double inv2s2 = 1.0 / (2.0 * o.sigma * o.sigma);
  std::atomic<std::int64_t> done{0};
  const int threads = threadCount(o.threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::pair<float, std::int32_t>> nn;
      std::vector<double> acc(static_cast<std::size_t>(dims));
      for (std::int64_t i = t; i < n; i += threads) {
        grid.nearest(i, o.k, nn);
        std::fill(acc.begin(), acc.end(), 0.0);
        double total = 0;
        for (const auto& [d2, j] : nn) {
          const double w = std::exp(-static_cast<double>(d2) * inv2s2);
          total += w;
          const float* f = &features[static_cast<std::size_t>(j) * static_cast<std::size_t>(dims)];
          for (std::int64_t c = 0; c < dims; ++c) acc[static_cast<std::size_t>(c)] += w * f[c];
        }
        float* dst = &out[static_cast<std::size_t>(i) * static_cast<std::size_t>(dims)];
        for (std::int64_t c = 0; c < dims; ++c)
          dst[c] = total > 0 ? static_cast<float>(acc[static_cast<std::size_t>(c)] / total) : 0.0f;
        if (t == 0 && (i / threads) % 8192 == 0) progress("smoothing", done.load(), n);
        ++done;
      }
    });
  for (auto& th : pool) th.join();
  progress("smoothing", n, n);
  return out;
}

std::vector<std::int32_t> smoothLabels(const std::vector<float>& x, const std::vector<float>& y,
                                       const std::vector<std::int32_t>& section,
                                       const std::vector<std::int32_t>& labels, const SmoothingOptions& o) {
  checkInputs(x, y, section, o);
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  if (static_cast<std::int64_t>(labels.size()) != n) throw Error("smoothing: labels do not match the cells");
  const SectionGrid grid(x, y, section, o.k);
  std::vector<std::int32_t> out(labels.size(), -1);
  const int threads = threadCount(o.threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::pair<float, std::int32_t>> nn;
      std::map<std::int32_t, int> votes;
      for (std::int64_t i = t; i < n; i += threads) {
        grid.nearest(i, o.k, nn);
        votes.clear();
        for (const auto& [d2, j] : nn)
          if (labels[static_cast<std::size_t>(j)] >= 0) ++votes[labels[static_cast<std::size_t>(j)]];
        int most = 0;
        for (const auto& [l, v] : votes)
          if (v > most) {
            most = v;
            out[static_cast<std::size_t>(i)] = l;
          }
      }
    });
  for (auto& th : pool) th.join();
  return out;
}

SpatialCoherence spatialCoherence(const std::vector<float>& x, const std::vector<float>& y,
                                  const std::vector<std::int32_t>& section, const std::vector<std::int32_t>& labels,
                                  int labelCount, int k, int threads) {
  SmoothingOptions o;
  o.k = k + 1; // the cell itself is among its nearest
  checkInputs(x, y, section, o);
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  if (static_cast<std::int64_t>(labels.size()) != n) throw Error("coherence: labels do not match the cells");
  const SectionGrid grid(x, y, section, o.k);
  const int count = threadCount(threads);
  std::vector<std::vector<double>> sums(static_cast<std::size_t>(count),
                                        std::vector<double>(static_cast<std::size_t>(labelCount), 0.0));
  std::vector<std::vector<std::int64_t>> cells(static_cast<std::size_t>(count),
                                               std::vector<std::int64_t>(static_cast<std::size_t>(labelCount), 0));
  std::vector<std::thread> pool;
  for (int t = 0; t < count; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::pair<float, std::int32_t>> nn;
      for (std::int64_t i = t; i < n; i += count) {
        const std::int32_t l = labels[static_cast<std::size_t>(i)];
        if (l < 0 || l >= labelCount) continue;
        grid.nearest(i, o.k, nn);
        int same = 0, others = 0;
        for (const auto& [d2, j] : nn) {
          if (j == i) continue;
          ++others;
          if (labels[static_cast<std::size_t>(j)] == l) ++same;
        }
        if (others == 0) continue;
        sums[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)] += static_cast<double>(same) / others;
        ++cells[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)];
      }
    });
  for (auto& th : pool) th.join();
  SpatialCoherence c;
  c.perLabel.assign(static_cast<std::size_t>(labelCount), std::nan(""));
  double total = 0;
  std::int64_t totalCells = 0;
  for (int l = 0; l < labelCount; ++l) {
    double s = 0;
    std::int64_t m = 0;
    for (int t = 0; t < count; ++t) {
      s += sums[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)];
      m += cells[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)];
    }
    if (m > 0) c.perLabel[static_cast<std::size_t>(l)] = s / static_cast<double>(m);
    total += s;
    totalCells += m;
  }
  c.overall = totalCells > 0 ? total / static_cast<double>(totalCells) : std::nan("");
  return c;
}

} // namespace atlascope
