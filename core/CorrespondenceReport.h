#pragma once
// The report of a comparison of two datasets' regions (RegionCorrespondence): summary.json (the
// agreement of the two on the shared CCF grid beside each one's agreement with the CCF) and
// matches.csv (the one-to-one pairs, splits and merges with their Jaccard and names).
#include "core/RegionCorrespondence.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlascope {

struct CorrespondenceSide {
  std::string data, column;                      // the dataset and its label column
  std::vector<std::string> categories;           // per label value, e.g. "k25-3"
  std::vector<std::string> names;                // per label value, e.g. "k25-3 · CP 82%" (empty: the categories)
  std::int64_t cells = 0;                        // labelled cells
  nlohmann::json ccf = nlohmann::json::object(); // its agreement with the CCF, e.g. {"major": {...}, "leaf": {...}}
};

// The scores of the summary, in one place for the CLI and the window: ami, ari, nmi, homogeneity,
// completeness, v_measure (what they count, cells or voxels, is said beside them).
nlohmann::json agreementJson(const AgreementScores& scores);

// Writes summary.json and matches.csv into `folder` (created), each atomically, and returns the
// summary. matches.csv: a_region, b_region, jaccard, kind (one-to-one, split: a region of A and
// one of its parts in B, merge: a region of B and one of the A regions it holds), a_name, b_name,
// overlap_voxels, share_of_a, share_of_b; one-to-one rows first. A pair can be both one-to-one
// and a part of a split.
nlohmann::json writeCorrespondenceReport(const RegionCorrespondence& correspondence, const CorrespondenceSide& a,
                                         const CorrespondenceSide& b, const CorrespondenceOptions& options,
                                         const std::string& folder);

} // namespace atlascope
