#include "core/AtlasComparison.h"

#include "core/AtomicFile.h"
#include "core/ComparisonReport.h"
#include "core/CorrespondenceReport.h"
#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <sys/stat.h>

namespace atlascope {

namespace {

// Per code of the atlas' annotation: its tree index at `level` (-1 outside or not in the tree).
std::vector<std::int32_t> codeLabels(const Atlas& atlas, const CcfLevel& level, std::vector<StructureId>& unknown,
                                     std::vector<std::uint8_t>& isUnknown) {
  const std::vector<std::int32_t> roll = ccfLevelLabels(atlas.structures(), level);
  const auto& ids = atlas.annotation().codeIds();
  std::vector<std::int32_t> out(ids.size(), -1);
  isUnknown.assign(ids.size(), 0);
  for (std::size_t c = 1; c < ids.size(); ++c) {
    if (ids[c] == 0) continue;
    if (const auto i = atlas.structures().indexOf(ids[c]))
      out[c] = roll[static_cast<std::size_t>(*i)];
    else {
      isUnknown[c] = 1;
      unknown.push_back(ids[c]);
    }
  }
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  return out;
}

std::string triple(const std::array<double, 3>& v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%g x %g x %g", v[0], v[1], v[2]);
  return buf;
}

int deepest(const StructureTree& t) {
  int d = 0;
  for (std::size_t i = 0; i < t.size(); ++i) d = std::max(d, t[static_cast<int>(i)].depth);
  return d;
}

} // namespace

bool coverSameSpace(const Atlas& a, const Atlas& b) {
  const AnnotationVolume& va = a.annotation();
  const AnnotationVolume& vb = b.annotation();
  const auto ea = va.extentUm(), eb = vb.extentUm();
  for (std::size_t i = 0; i < 3; ++i)
    if (std::abs(ea[i] - eb[i]) > std::max(va.spacingUm()[i], vb.spacingUm()[i])) return false;
  return true;
}

AtlasGridLabels atlasLabelsOnSharedGrid(const Atlas& a, const Atlas& b, const CcfLevel& levelA,
                                        const CcfLevel& levelB) {
  const AnnotationVolume& va = a.annotation();
  const AnnotationVolume& vb = b.annotation();
  const auto ea = va.extentUm(), eb = vb.extentUm();
  if (!coverSameSpace(a, b))
    throw Error("atlases " + a.name() + " and " + b.name() + " do not cover the same space: extents " + triple(ea) +
                " um and " + triple(eb) + " um (a parcellation is compared with another of the same space)");
  AtlasGridLabels g;
  std::vector<std::uint8_t> unknownA, unknownB;
  const auto labelsA = codeLabels(a, levelA, g.unknownIdsA, unknownA);
  const auto labelsB = codeLabels(b, levelB, g.unknownIdsB, unknownB);
  const bool same = va.size() == vb.size() && va.spacingUm() == vb.spacingUm();
  const double volA = va.spacingUm()[0] * va.spacingUm()[1] * va.spacingUm()[2];
  const double volB = vb.spacingUm()[0] * vb.spacingUm()[1] * vb.spacingUm()[2];
  const bool gridIsA = same || volA >= volB;
  const AnnotationVolume& coarse = gridIsA ? va : vb;
  const AnnotationVolume& fine = gridIsA ? vb : va;
  g.size = coarse.size();
  g.spacingUm = coarse.spacingUm();
  g.resampled = same ? "" : gridIsA ? "b" : "a";
  const std::size_t n = static_cast<std::size_t>(coarse.voxelCount());
  g.a.assign(n, -1);
  g.b.assign(n, -1);
  const auto& coarseCodes = coarse.codes();
  const auto& fineCodes = fine.codes();
  const auto& coarseLabels = gridIsA ? labelsA : labelsB;
  const auto& fineLabels = gridIsA ? labelsB : labelsA;
  const auto& coarseUnknown = gridIsA ? unknownA : unknownB;
  const auto& fineUnknown = gridIsA ? unknownB : unknownA;
  auto& outCoarse = gridIsA ? g.a : g.b;
  auto& outFine = gridIsA ? g.b : g.a;
  std::int64_t unknownCoarse = 0, unknownFine = 0;
  // The fine voxel holding each coarse voxel's centre, per axis.
  std::array<std::vector<std::int64_t>, 3> sample;
  for (std::size_t ax = 0; ax < 3; ++ax) {
    sample[ax].resize(static_cast<std::size_t>(coarse.size()[ax]));
    for (std::int64_t i = 0; i < coarse.size()[ax]; ++i) {
      const double centre = (static_cast<double>(i) + 0.5) * coarse.spacingUm()[ax];
      const auto j = static_cast<std::int64_t>(std::floor(centre / fine.spacingUm()[ax]));
      sample[ax][static_cast<std::size_t>(i)] = std::clamp<std::int64_t>(j, 0, fine.size()[ax] - 1);
    }
  }
  std::size_t at = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++at) {
        const auto cc = coarseCodes[at];
        outCoarse[at] = coarseLabels[cc];
        unknownCoarse += coarseUnknown[cc];
        const std::int64_t f =
            same ? static_cast<std::int64_t>(at)
                 : fine.linearIndex({sample[0][static_cast<std::size_t>(i)], sample[1][static_cast<std::size_t>(j)],
                                     sample[2][static_cast<std::size_t>(k)]});
        const auto fc = fineCodes[static_cast<std::size_t>(f)];
        outFine[at] = fineLabels[fc];
        unknownFine += fineUnknown[fc];
      }
  g.unknownVoxelsA = gridIsA ? unknownCoarse : unknownFine;
  g.unknownVoxelsB = gridIsA ? unknownFine : unknownCoarse;
  return g;
}

AtlasComparison compareAtlases(const Atlas& a, const Atlas& b, const AtlasComparisonOptions& options,
                               const Progress& progress) {
  AtlasComparison c;
  progress("sampling both atlases on one grid", 0, 3);
  c.grid = atlasLabelsOnSharedGrid(a, b, options.levelA, options.levelB);
  progress("scoring", 1, 3);
  c.table = contingency(c.grid.a, c.grid.b);
  if (c.table.total == 0) throw Error("atlases " + a.name() + " and " + b.name() + " share no labelled voxel");
  c.scores = agreement(c.table);
  if (options.byDepth) {
    // A's leaf labels cut at each depth of its tree, against B as chosen.
    AtlasGridLabels leaf =
        options.levelA.spec == "leaf" ? AtlasGridLabels{} : atlasLabelsOnSharedGrid(a, b, {}, options.levelB);
    const std::vector<std::int32_t>& leafA = options.levelA.spec == "leaf" ? c.grid.a : leaf.a;
    std::vector<std::int32_t> cut(leafA.size());
    for (int d = 1; d <= deepest(a.structures()); ++d) {
      const auto roll = ccfLevelLabels(a.structures(), {"depth:" + std::to_string(d)});
      for (std::size_t v = 0; v < leafA.size(); ++v)
        cut[v] = leafA[v] < 0 ? -1 : roll[static_cast<std::size_t>(leafA[v])];
      c.byDepth.push_back({d, agreement(contingency(cut, c.grid.b))});
    }
  }
  progress("matching structures", 2, 3);
  c.correspondence = correspondLabels(c.grid.a, c.grid.b, options.correspondence);
  progress("compared", 3, 3);
  return c;
}

nlohmann::json writeAtlasComparisonReport(const AtlasComparison& c, const Atlas& a, const Atlas& b,
                                          const AtlasComparisonOptions& options, const std::string& folder) {
  ::mkdir(folder.c_str(), 0755);
  const auto acronyms = [](const Atlas& atlas) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < atlas.structures().size(); ++i)
      out.push_back(atlas.structures()[static_cast<int>(i)].acronym);
    return out;
  };
  CorrespondenceSide sa, sb;
  sa.data = a.description().location;
  sb.data = b.description().location;
  sa.column = "structure_" + options.levelA.spec;
  sb.column = "structure_" + options.levelB.spec;
  sa.categories = sa.names = acronyms(a);
  sb.categories = sb.names = acronyms(b);
  const nlohmann::json correspondence =
      writeCorrespondenceReport(c.correspondence, sa, sb, options.correspondence, folder);
  LabelNames names;
  names.reference = sa.categories;
  names.predicted = sb.categories;
  names.referenceTitle = a.name() + "_" + options.levelA.spec;
  names.predictedTitle = b.name() + "_" + options.levelB.spec;
  const nlohmann::json scores = writeComparisonReport(c.table, c.scores, names, folder);

  const auto side = [](const Atlas& atlas, const CcfLevel& level, std::int64_t unknownVoxels,
                       const std::vector<StructureId>& unknownIds) {
    const auto& d = atlas.description();
    return nlohmann::json{{"name", d.name},
                          {"format", d.format},
                          {"location", d.location},
                          {"version", d.version},
                          {"level", level.spec},
                          {"shape", atlas.annotation().size()},
                          {"spacing_um", atlas.annotation().spacingUm()},
                          {"structures", atlas.structures().size()},
                          {"voxels_with_labels_not_in_tree", unknownVoxels},
                          {"labels_not_in_tree", unknownIds}};
  };
  nlohmann::json depths = nlohmann::json::array();
  for (const auto& d : c.byDepth) {
    nlohmann::json j = agreementJson(d.scores);
    j["depth"] = d.depth;
    j["a_labels"] = d.scores.referenceLabels;
    depths.push_back(j);
  }
  nlohmann::json summary = {
      {"a", side(a, options.levelA, c.grid.unknownVoxelsA, c.grid.unknownIdsA)},
      {"b", side(b, options.levelB, c.grid.unknownVoxelsB, c.grid.unknownIdsB)},
      {"grid",
       {{"shape", c.grid.size},
        {"spacing_um", c.grid.spacingUm},
        {"resampled", c.grid.resampled.empty() ? "none (same grid)" : c.grid.resampled + " (nearest label)"}}},
      {"items", "voxels inside both atlases"},
      {"voxels_compared", c.table.total},
      {"scores", scores},
      {"by_depth_of_a", depths},
      {"correspondence", correspondence.value("a_vs_b", nlohmann::json::object())}};
  const std::string text = summary.dump(2) + "\n";
  writeFileAtomically(folder + "/summary.json", text.data(), text.size());
  return summary;
}

} // namespace atlascope
