#include "core/Agreement.h"

#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <thread>
#include <unordered_map>

namespace atlascope {

Contingency contingency(const std::vector<std::int32_t>& reference, const std::vector<std::int32_t>& predicted) {
  if (reference.size() != predicted.size())
    throw Error("labelings of different lengths (" + std::to_string(reference.size()) + " and " +
                std::to_string(predicted.size()) + ")");
  Contingency t;
  std::map<std::int32_t, std::int32_t> ra, pa; // label -> index
  for (std::size_t i = 0; i < reference.size(); ++i)
    if (reference[i] >= 0 && predicted[i] >= 0) {
      ra.emplace(reference[i], 0);
      pa.emplace(predicted[i], 0);
    }
  for (auto& [label, idx] : ra) {
    idx = static_cast<std::int32_t>(t.referenceLabels.size());
    t.referenceLabels.push_back(label);
  }
  for (auto& [label, idx] : pa) {
    idx = static_cast<std::int32_t>(t.predictedLabels.size());
    t.predictedLabels.push_back(label);
  }
  t.referenceSizes.assign(t.referenceLabels.size(), 0);
  t.predictedSizes.assign(t.predictedLabels.size(), 0);
  // Label -> index through dense tables (labels are small non-negative integers: codes, tree
  // indices), and a dense count matrix when it fits: 10M cells in well under a second.
  auto remap = [](const std::map<std::int32_t, std::int32_t>& m) {
    std::vector<std::int32_t> v(m.empty() ? 0 : static_cast<std::size_t>(m.rbegin()->first) + 1, -1);
    for (const auto& [label, idx] : m) v[static_cast<std::size_t>(label)] = idx;
    return v;
  };
  const auto rIndex = remap(ra), pIndex = remap(pa);
  const std::int64_t rows = static_cast<std::int64_t>(t.referenceLabels.size()),
                     cols = static_cast<std::int64_t>(t.predictedLabels.size());
  const bool dense = rows * cols <= (std::int64_t{1} << 26);
  std::vector<std::int64_t> matrix(dense ? static_cast<std::size_t>(rows * cols) : 0, 0);
  std::unordered_map<std::int64_t, std::int64_t> sparse;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    if (reference[i] < 0 || predicted[i] < 0) continue;
    const std::int32_t r = rIndex[static_cast<std::size_t>(reference[i])],
                       p = pIndex[static_cast<std::size_t>(predicted[i])];
    ++t.referenceSizes[static_cast<std::size_t>(r)];
    ++t.predictedSizes[static_cast<std::size_t>(p)];
    if (dense)
      ++matrix[static_cast<std::size_t>(r * cols + p)];
    else
      ++sparse[static_cast<std::int64_t>(r) * cols + p];
    ++t.total;
  }
  if (dense) {
    for (std::int64_t k = 0; k < rows * cols; ++k)
      if (matrix[static_cast<std::size_t>(k)] > 0)
        t.cells.emplace_hint(t.cells.end(),
                             std::make_pair(static_cast<std::int32_t>(k / cols), static_cast<std::int32_t>(k % cols)),
                             matrix[static_cast<std::size_t>(k)]);
  } else {
    for (const auto& [key, n] : sparse)
      t.cells[{static_cast<std::int32_t>(key / cols), static_cast<std::int32_t>(key % cols)}] = n;
  }
  return t;
}

double expectedMutualInformation(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                                 std::int64_t n) {
  if (n <= 1) return 0.0;
  const double N = static_cast<double>(n);
  const double glnN = std::lgamma(N + 1);
  auto pairTerm = [&](std::int64_t ai, std::int64_t bj) {
    const double A = static_cast<double>(ai), B = static_cast<double>(bj);
    const double base =
        std::lgamma(A + 1) + std::lgamma(B + 1) + std::lgamma(N - A + 1) + std::lgamma(N - B + 1) - glnN;
    const std::int64_t lo = std::max<std::int64_t>(1, ai + bj - n), hi = std::min(ai, bj);
    if (lo > hi) return 0.0;
    // log of the hypergeometric probability of nij.
    auto logP = [&](std::int64_t k) {
      const double K = static_cast<double>(k);
      return base - std::lgamma(K + 1) - std::lgamma(A - K + 1) - std::lgamma(B - K + 1) -
             std::lgamma(N - A - B + K + 1);
    };
    auto term = [&](std::int64_t k, double lp) {
      const double K = static_cast<double>(k);
      return K / N * std::log(N * K / (A * B)) * std::exp(lp);
    };
    const std::int64_t mode =
        std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor((A + 1) * (B + 1) / (N + 2))), lo, hi);
    double sum = 0, peak = logP(mode);
    // Outwards from the mode until the probability falls 40 orders of magnitude below its peak.
    for (std::int64_t k = mode; k <= hi; ++k) {
      const double lp = logP(k);
      if (lp < peak - 92.0) break;
      sum += term(k, lp);
    }
    for (std::int64_t k = mode - 1; k >= lo; --k) {
      const double lp = logP(k);
      if (lp < peak - 92.0) break;
      sum += term(k, lp);
    }
    return sum;
  };
  // Rows in parallel: 2,000 x 700 label pairs.
  const unsigned threads =
      std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), static_cast<unsigned>(a.size())));
  std::vector<double> partial(threads, 0.0);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (std::size_t i = t; i < a.size(); i += threads)
        for (std::int64_t bj : b) partial[t] += pairTerm(a[i], bj);
    });
  for (auto& th : pool) th.join();
  double emi = 0;
  for (double p : partial) emi += p;
  return emi;
}

AgreementScores agreement(const Contingency& t) {
  AgreementScores s;
  s.cells = t.total;
  s.referenceLabels = static_cast<std::int64_t>(t.referenceLabels.size());
  s.predictedLabels = static_cast<std::int64_t>(t.predictedLabels.size());
  const double N = static_cast<double>(t.total);
  if (t.total == 0) return s;
  auto entropy = [&](const std::vector<std::int64_t>& sizes) {
    double h = 0;
    for (std::int64_t n : sizes)
      if (n > 0) h -= static_cast<double>(n) / N * std::log(static_cast<double>(n) / N);
    return h;
  };
  const double hRef = entropy(t.referenceSizes), hPred = entropy(t.predictedSizes);
  double mi = 0;
  for (const auto& [ij, n] : t.cells) {
    const double nij = static_cast<double>(n);
    const double ai = static_cast<double>(t.referenceSizes[static_cast<std::size_t>(ij.first)]);
    const double bj = static_cast<double>(t.predictedSizes[static_cast<std::size_t>(ij.second)]);
    mi += nij / N * (std::log(nij) + std::log(N) - std::log(ai) - std::log(bj));
  }
  mi = std::max(0.0, mi);
  s.mutualInformation = mi;
  const bool trivial =
      (s.referenceLabels == 1 && s.predictedLabels == 1) || (s.referenceLabels == 0 && s.predictedLabels == 0);
  // Homogeneity, completeness, V-measure (scikit-learn: 1.0 when an entropy is zero).
  s.homogeneity = hRef == 0 ? 1.0 : mi / hRef;
  s.completeness = hPred == 0 ? 1.0 : mi / hPred;
  s.vMeasure =
      s.homogeneity + s.completeness == 0 ? 0.0 : 2 * s.homogeneity * s.completeness / (s.homogeneity + s.completeness);
  // NMI, arithmetic mean.
  if (trivial)
    s.normalizedMutualInformation = 1.0;
  else
    s.normalizedMutualInformation = mi / std::max((hRef + hPred) / 2, std::numeric_limits<double>::epsilon());
  // ARI from pair counts.
  auto comb2 = [](double n) { return n * (n - 1) / 2; };
  double sumCells = 0, sumRef = 0, sumPred = 0;
  for (const auto& [ij, n] : t.cells) sumCells += comb2(static_cast<double>(n));
  for (std::int64_t n : t.referenceSizes) sumRef += comb2(static_cast<double>(n));
  for (std::int64_t n : t.predictedSizes) sumPred += comb2(static_cast<double>(n));
  const double expected = sumRef * sumPred / comb2(N), maxIndex = (sumRef + sumPred) / 2;
  if (t.total <= 1 || trivial || (s.referenceLabels == t.total && s.predictedLabels == t.total) || maxIndex == expected)
    s.adjustedRand = 1.0;
  else
    s.adjustedRand = (sumCells - expected) / (maxIndex - expected);
  // AMI, arithmetic mean.
  if (trivial) {
    s.adjustedMutualInformation = 1.0;
  } else {
    const double emi = expectedMutualInformation(t.referenceSizes, t.predictedSizes, t.total);
    double denominator = (hRef + hPred) / 2 - emi;
    const double eps = std::numeric_limits<double>::epsilon();
    denominator = denominator < 0 ? std::min(denominator, -eps) : std::max(denominator, eps);
    s.adjustedMutualInformation = (mi - emi) / denominator;
  }
  return s;
}

AgreementScores agreement(const std::vector<std::int32_t>& reference, const std::vector<std::int32_t>& predicted) {
  return agreement(contingency(reference, predicted));
}

std::vector<std::int32_t> linkResolutions(const std::vector<std::int32_t>& coarse,
                                          const std::vector<std::int32_t>& fine, int fineK) {
  if (coarse.size() != fine.size()) throw Error("resolutions of different lengths");
  std::vector<std::map<std::int32_t, std::int64_t>> votes(static_cast<std::size_t>(fineK));
  for (std::size_t i = 0; i < fine.size(); ++i)
    if (fine[i] >= 0 && fine[i] < fineK && coarse[i] >= 0) ++votes[static_cast<std::size_t>(fine[i])][coarse[i]];
  std::vector<std::int32_t> parent(static_cast<std::size_t>(fineK), -1);
  for (int j = 0; j < fineK; ++j) {
    std::int64_t most = 0;
    for (const auto& [c, n] : votes[static_cast<std::size_t>(j)])
      if (n > most) {
        most = n;
        parent[static_cast<std::size_t>(j)] = c;
      }
  }
  return parent;
}

} // namespace atlascope
