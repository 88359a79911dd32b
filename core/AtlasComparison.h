#pragma once
// One atlas scored against another: two parcellations of the same space (e.g. the CCF and a
// derived or competing parcellation of it), voxel by voxel, with the machinery that scores
// discovered regions against the CCF: agreement scores (AMI, ARI, NMI, V-measure), the overlap
// table, each structure's best matches and splits (ComparisonReport), one-to-one pairs, splits and
// merges (RegionCorrespondence), and the scores with A's tree cut at each depth.
#include "core/Agreement.h"
#include "core/Atlas.h"
#include "core/CcfLabels.h"
#include "core/RegionCorrespondence.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlascope {

// Both atlases' labels on one grid: the shared grid when the two are on the same one, else the
// coarser of the two, the finer atlas sampled at each coarse voxel's centre (nearest label).
struct AtlasGridLabels {
  std::array<std::int64_t, 3> size{0, 0, 0};
  std::array<double, 3> spacingUm{0, 0, 0};
  std::string resampled;          // "" (same grid), "a" or "b": the atlas that was sampled
  std::vector<std::int32_t> a, b; // per voxel (axis 0 fastest): a tree index at the chosen level, -1 outside
  // Voxels whose label its atlas' tree does not name (counted as outside the atlas), and the ids.
  std::int64_t unknownVoxelsA = 0, unknownVoxelsB = 0;
  std::vector<StructureId> unknownIdsA, unknownIdsB;
};

// Whether two atlases cover the same space: extents equal within a voxel of the coarser grid
// (a rat atlas against the CCF: no). What atlasLabelsOnSharedGrid requires.
bool coverSameSpace(const Atlas& a, const Atlas& b);

// Throws an Error when the two do not cover the same space (extents differing by more than a
// voxel of the coarser grid).
AtlasGridLabels atlasLabelsOnSharedGrid(const Atlas& a, const Atlas& b, const CcfLevel& levelA = {},
                                        const CcfLevel& levelB = {});

struct AtlasComparisonOptions {
  CcfLevel levelA, levelB;              // leaf, depth:N or major (each in its own tree)
  bool byDepth = true;                  // also A cut at depths 1..its deepest, each against B
  CorrespondenceOptions correspondence; // splits, merges, one-to-one pairs
};

struct AtlasComparison {
  AtlasGridLabels grid;
  Contingency table;      // A (reference) x B (predicted), over voxels inside both
  AgreementScores scores; // "cells" are voxels here
  struct DepthScores {
    int depth = 0;
    AgreementScores scores;
  };
  std::vector<DepthScores> byDepth;
  RegionCorrespondence correspondence;
};

AtlasComparison compareAtlases(const Atlas& a, const Atlas& b, const AtlasComparisonOptions& options = {},
                               const Progress& progress = {});

// summary.json (both atlases, the grid, the scores, the scores by depth, the correspondence's
// summary), overlap.csv, best_matches.csv, splits.csv (ComparisonReport) and matches.csv
// (one-to-one pairs, splits, merges; CorrespondenceReport) in `folder`, each written atomically.
// Returns the summary.
nlohmann::json writeAtlasComparisonReport(const AtlasComparison& comparison, const Atlas& a, const Atlas& b,
                                          const AtlasComparisonOptions& options, const std::string& folder);

} // namespace atlascope
