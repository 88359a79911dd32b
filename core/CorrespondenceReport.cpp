#include "core/CorrespondenceReport.h"

#include "core/AtomicFile.h"
#include "core/Csv.h"

#include <cstdio>
#include <sstream>
#include <sys/stat.h>

namespace atlascope {

namespace {
std::string labelOf(const std::vector<std::string>& names, std::int32_t label) {
  return label >= 0 && static_cast<std::size_t>(label) < names.size() ? names[static_cast<std::size_t>(label)]
                                                                      : std::to_string(label);
}

const std::vector<std::string>& displayNames(const CorrespondenceSide& s) {
  return s.names.empty() ? s.categories : s.names;
}
} // namespace

nlohmann::json agreementJson(const AgreementScores& s) {
  return {{"ami", s.adjustedMutualInformation},   {"ari", s.adjustedRand},
          {"nmi", s.normalizedMutualInformation}, {"homogeneity", s.homogeneity},
          {"completeness", s.completeness},       {"v_measure", s.vMeasure}};
}

nlohmann::json writeCorrespondenceReport(const RegionCorrespondence& r, const CorrespondenceSide& a,
                                         const CorrespondenceSide& b, const CorrespondenceOptions& options,
                                         const std::string& folder) {
  ::mkdir(folder.c_str(), 0755);
  auto side = [](const CorrespondenceSide& s, std::int64_t voxels, std::size_t regions) {
    return nlohmann::json{{"data", s.data},     {"labels", s.column}, {"cells", s.cells},
                          {"regions", regions}, {"voxels", voxels},   {"ccf", s.ccf}};
  };
  nlohmann::json shared = agreementJson(r.agreement);
  shared["voxel_um"] = r.voxelUm;
  shared["joint_voxels"] = r.jointVoxels;
  shared["matched_share"] = r.matchedShare;
  shared["one_to_one"] = r.oneToOne.size();
  shared["splits"] = r.splits.size();
  shared["merges"] = r.merges.size();
  shared["split_threshold"] = options.splitThreshold;
  shared["minimum_jaccard"] = options.minimumJaccard;
  double meanJaccard = 0;
  for (const RegionOverlap& o : r.oneToOne) meanJaccard += o.jaccard / static_cast<double>(r.oneToOne.size());
  shared["mean_jaccard_one_to_one"] = meanJaccard;
  const nlohmann::json summary = {
      {"a", side(a, r.voxelsA, r.regionsA.size())}, {"b", side(b, r.voxelsB, r.regionsB.size())}, {"a_vs_b", shared}};
  const std::string text = summary.dump(2) + "\n";
  writeFileAtomically(folder + "/summary.json", text.data(), text.size());

  std::ostringstream csv;
  csv << "a_region,b_region,jaccard,kind,a_name,b_name,overlap_voxels,share_of_a,share_of_b\n";
  auto row = [&](const RegionOverlap& o, const char* kind) {
    char nums[80];
    std::snprintf(nums, sizeof nums, "%.6f", o.jaccard);
    char shares[80];
    std::snprintf(shares, sizeof shares, "%.6f,%.6f", o.shareOfA, o.shareOfB);
    csv << csvField(labelOf(a.categories, o.a)) << "," << csvField(labelOf(b.categories, o.b)) << "," << nums << ","
        << kind << "," << csvField(labelOf(displayNames(a), o.a)) << "," << csvField(labelOf(displayNames(b), o.b))
        << "," << o.voxels << "," << shares << "\n";
  };
  for (const RegionOverlap& o : r.oneToOne) row(o, "one-to-one");
  for (const RegionSplit& s : r.splits)
    for (const RegionOverlap& o : s.parts) row(o, "split");
  for (const RegionSplit& s : r.merges)
    for (const RegionOverlap& o : s.parts) row(o, "merge");
  const std::string table = csv.str();
  writeFileAtomically(folder + "/matches.csv", table.data(), table.size());
  return summary;
}

} // namespace atlascope
