#pragma once
// Which discovered regions of one dataset are which regions of another. Two animals are never cut
// at the same places, so their cells cannot be paired; their regions can, in the space they share:
// each dataset's labels are voxelised on the CCF grid (RegionVolume: majority per voxel, filled
// through the brain between its sections), and the regions are compared voxel by voxel, on the
// voxels labelled in both.
#include "core/Agreement.h"
#include "core/AnnotationVolume.h"
#include "core/CellTable.h"
#include "core/Progress.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

struct CorrespondenceOptions {
  // A region is split (or merged) when at least two regions of the other dataset each lie at
  // least this share inside it (voxels) and those parts cover at least this share of it. 0.5:
  // "mostly inside", so a part belongs to one split at most.
  double splitThreshold = 0.5;
  // Voxel edge in annotation voxels: 4 is 100 um on the 25 um CCF, as the window's region
  // surfaces (finer grids only add filled voxels between sections 200+ um apart).
  int voxelFactor = 4;
  // Count a dataset's voxels only between its first and last section (along AP): beyond them the
  // fill extrapolates, it does not measure.
  bool sectionSpanOnly = true;
  // One-to-one pairs below this Jaccard are left unmatched: the Hungarian method pairs every
  // region it can, also with a region it shares a handful of voxels with, and such a pair is no
  // correspondence (nor a reason to share a colour).
  double minimumJaccard = 0.1;
};

// Two regions sharing voxels (labels are the datasets' own label values).
struct RegionOverlap {
  std::int32_t a = -1, b = -1;
  std::int64_t voxels = 0;
  double jaccard = 0;  // voxels / |a u b|
  double shareOfA = 0; // voxels / |a|
  double shareOfB = 0; // voxels / |b|
};

// A region of one dataset and the regions of the other that lie mostly inside it.
struct RegionSplit {
  std::int32_t region = -1;         // a region of A (a split) or of B (a merge)
  std::vector<RegionOverlap> parts; // by voxels, largest first
  double covered = 0;               // share of the region the parts cover
};

struct RegionCorrespondence {
  double voxelUm = 0;                           // voxel edge of the shared grid (0: labels compared as given)
  std::int64_t voxelsA = 0, voxelsB = 0;        // voxels labelled in each
  std::int64_t jointVoxels = 0;                 // voxels labelled in both: everything below counts these only
  std::vector<std::int32_t> regionsA, regionsB; // the labels present on the joint voxels, ascending
  std::vector<std::int64_t> sizesA, sizesB;     // their joint voxels (same order)
  std::vector<RegionOverlap> overlaps;          // every pair sharing a voxel (sparse), by (a, b)
  std::vector<RegionOverlap> oneToOne;          // the Hungarian pairs with Jaccard >= minimumJaccard, by a
  std::vector<RegionSplit> splits;              // regions of A split in B
  std::vector<RegionSplit> merges;              // regions of B that merge regions of A
  AgreementScores agreement;                    // A (as the reference) against B, over the joint voxels
  // The share of the joint voxels that lie in a one-to-one pair: sum over the pairs (a, b) in
  // oneToOne of |a n b|, divided by jointVoxels. 1 when the labelings are the same up to renaming;
  // 1/k-ish for unrelated ones. Unlike AMI it credits only the one-to-one reading of the regions.
  double matchedShare = 0;
  // correspondRegions only: each dataset's label per voxel of the shared grid (RegionVolume's
  // layout), -1 where the voxel is not labelled in both; e.g. to score each against the CCF on
  // the same voxels (ccfVoxelLabels).
  std::vector<std::int32_t> gridA, gridB;
  // The region of B paired one-to-one with region `regionA` of A (label values; -1: none), and
  // the reverse.
  std::int32_t matchOfA(std::int32_t regionA) const;
  std::int32_t matchOfB(std::int32_t regionB) const;
};

// Two labelings of the same items (voxels, or cells), -1 = unlabelled: Jaccard of every
// overlapping pair, the one-to-one pairs maximising the total Jaccard (Hungarian), splits and
// merges, agreement scores and the matched share, on the items labelled in both.
RegionCorrespondence correspondLabels(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b,
                                      const CorrespondenceOptions& options = {});

// Two datasets with CCF coordinates and one labeling each (per cell, in CellTable order; -1 =
// none): both voxelised on the CCF grid of `ccf`, then correspondLabels on the voxels. Throws an
// Error naming the dataset when one has no CCF coordinates or no labelled cell inside the brain.
RegionCorrespondence correspondRegions(const AnnotationVolume& ccf, const CellTable& cellsA,
                                       const std::vector<std::int32_t>& labelsA, const CellTable& cellsB,
                                       const std::vector<std::int32_t>& labelsB,
                                       const CorrespondenceOptions& options = {}, const Progress& progress = {});

// B's region colours (indexed by B's label values) for showing both datasets at once: a
// one-to-one matched B region takes its A region's colour; an unmatched one keeps its own,
// unless a matched region now wears that colour, then it gets one nobody wears.
std::vector<std::array<std::uint8_t, 3>> sharedColours(const RegionCorrespondence& correspondence,
                                                       const std::vector<std::array<std::uint8_t, 3>>& coloursA,
                                                       const std::vector<std::array<std::uint8_t, 3>>& coloursB);

} // namespace atlascope
