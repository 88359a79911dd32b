#pragma once
// The comparison report of two labelings: scores, the overlap table, each predicted region's best
// reference matches, and how each reference region is split; CSV tables plus a JSON summary.
#include "core/Agreement.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlascope {

struct LabelNames {
  std::vector<std::string> reference, predicted; // indexed by the labels' values
  std::string referenceTitle = "reference", predictedTitle = "predicted";
};

struct RegionMatch {
  std::int32_t reference = -1;
  std::int64_t cells = 0;
  double jaccard = 0, dice = 0, fraction = 0; // fraction: of the predicted region's cells
};

// The best `count` reference matches of each predicted label (by Jaccard), in the table's order.
std::vector<std::vector<RegionMatch>> bestMatches(const Contingency& table, int count = 3);

// Writes summary.json, overlap.csv, best_matches.csv and splits.csv into `folder` (created),
// each atomically, and returns the summary.
nlohmann::json writeComparisonReport(const Contingency& table, const AgreementScores& scores, const LabelNames& names,
                                     const std::string& folder);

} // namespace atlascope
