#include "core/ComparisonReport.h"

#include "core/AtomicFile.h"
#include "core/Error.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <sys/stat.h>

namespace atlascope {

namespace {
std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string nameOf(const std::vector<std::string>& names, std::int32_t label) {
  return label >= 0 && static_cast<std::size_t>(label) < names.size() ? names[static_cast<std::size_t>(label)]
                                                                      : std::to_string(label);
}

void writeText(const std::string& path, const std::string& text) {
  writeFileAtomically(path, text.data(), text.size());
}
} // namespace

std::vector<std::vector<RegionMatch>> bestMatches(const Contingency& t, int count) {
  std::vector<std::vector<RegionMatch>> out(t.predictedLabels.size());
  for (const auto& [ij, n] : t.cells) {
    RegionMatch m;
    m.reference = ij.first;
    m.cells = n;
    const double a = static_cast<double>(t.referenceSizes[static_cast<std::size_t>(ij.first)]);
    const double b = static_cast<double>(t.predictedSizes[static_cast<std::size_t>(ij.second)]);
    m.jaccard = static_cast<double>(n) / (a + b - static_cast<double>(n));
    m.dice = 2.0 * static_cast<double>(n) / (a + b);
    m.fraction = static_cast<double>(n) / b;
    out[static_cast<std::size_t>(ij.second)].push_back(m);
  }
  for (auto& v : out) {
    std::sort(v.begin(), v.end(), [](const RegionMatch& x, const RegionMatch& y) { return x.jaccard > y.jaccard; });
    if (static_cast<int>(v.size()) > count) v.resize(static_cast<std::size_t>(count));
  }
  return out;
}

nlohmann::json writeComparisonReport(const Contingency& t, const AgreementScores& s, const LabelNames& names,
                                     const std::string& folder) {
  ::mkdir(folder.c_str(), 0755);
  nlohmann::json summary = {{"cells", s.cells},
                            {"reference", names.referenceTitle},
                            {"predicted", names.predictedTitle},
                            {"reference_labels", s.referenceLabels},
                            {"predicted_labels", s.predictedLabels},
                            {"adjusted_rand", s.adjustedRand},
                            {"adjusted_mutual_information", s.adjustedMutualInformation},
                            {"normalized_mutual_information", s.normalizedMutualInformation},
                            {"homogeneity", s.homogeneity},
                            {"completeness", s.completeness},
                            {"v_measure", s.vMeasure},
                            {"mutual_information", s.mutualInformation}};
  writeText(folder + "/summary.json", summary.dump(2) + "\n");

  std::ostringstream overlap;
  overlap << csvField(names.referenceTitle) << "," << csvField(names.predictedTitle) << ",cells\n";
  for (const auto& [ij, n] : t.cells)
    overlap << csvField(nameOf(names.reference, t.referenceLabels[static_cast<std::size_t>(ij.first)])) << ","
            << csvField(nameOf(names.predicted, t.predictedLabels[static_cast<std::size_t>(ij.second)])) << "," << n
            << "\n";
  writeText(folder + "/overlap.csv", overlap.str());

  std::ostringstream best;
  best << csvField(names.predictedTitle) << ",cells,rank," << csvField(names.referenceTitle)
       << ",overlap_cells,jaccard,dice,fraction_of_region\n";
  const auto matches = bestMatches(t, 3);
  for (std::size_t p = 0; p < matches.size(); ++p)
    for (std::size_t r = 0; r < matches[p].size(); ++r) {
      const RegionMatch& m = matches[p][r];
      char nums[96];
      std::snprintf(nums, sizeof nums, "%.6f,%.6f,%.6f", m.jaccard, m.dice, m.fraction);
      best << csvField(nameOf(names.predicted, t.predictedLabels[p])) << "," << t.predictedSizes[p] << "," << r + 1
           << "," << csvField(nameOf(names.reference, t.referenceLabels[static_cast<std::size_t>(m.reference)])) << ","
           << m.cells << "," << nums << "\n";
    }
  writeText(folder + "/best_matches.csv", best.str());

  // How each reference region is split ("CA1 is split into 3 discovered regions: 61%, 30%, 9%").
  std::vector<std::vector<std::pair<std::int64_t, std::int32_t>>> splits(t.referenceLabels.size());
  for (const auto& [ij, n] : t.cells) splits[static_cast<std::size_t>(ij.first)].emplace_back(n, ij.second);
  std::ostringstream sp;
  sp << csvField(names.referenceTitle) << ",cells,parts_over_5_percent,split\n";
  for (std::size_t r = 0; r < splits.size(); ++r) {
    auto& v = splits[r];
    std::sort(v.rbegin(), v.rend());
    const double total = static_cast<double>(t.referenceSizes[r]);
    std::string text;
    int parts = 0;
    for (const auto& [n, p] : v) {
      const double f = static_cast<double>(n) / total;
      if (f < 0.05) continue;
      ++parts;
      char pct[16];
      std::snprintf(pct, sizeof pct, "%.0f%%", f * 100);
      text += (text.empty() ? "" : "; ") + nameOf(names.predicted, t.predictedLabels[static_cast<std::size_t>(p)]) +
              " " + pct;
    }
    sp << csvField(nameOf(names.reference, t.referenceLabels[r])) << "," << t.referenceSizes[r] << "," << parts << ","
       << csvField(text) << "\n";
  }
  writeText(folder + "/splits.csv", sp.str());
  return summary;
}

} // namespace atlascope
