#pragma once
// Spatial smoothing for region discovery (CELLTRANSFORMER.md, "Region discovery"): per section,
// each cell's features become the Gaussian-weighted mean of its k nearest cells' features
// (weights exp(-d^2 / 2 sigma^2), normalised; the cell itself included), and, after clustering,
// each label may become the majority label of its k nearest cells (removes speckle).
// Coordinates and sigma are in the same unit; the reference's defaults are k = 500 and
// sigma = 100 units of 10 um (1,000 um).
#include "core/Progress.h"

#include <cstdint>
#include <vector>

namespace atlascope {

struct SmoothingOptions {
  int k = 500;
  double sigma = 1000.0; // in the coordinates' unit (um here: the reference's 100 units of 10 um)
  int threads = 0;       // 0: all cores
};

// features: n x dims, row-major. Returns the smoothed features (same layout).
std::vector<float> smoothFeatures(const std::vector<float>& x, const std::vector<float>& y,
                                  const std::vector<std::int32_t>& section, const std::vector<float>& features,
                                  std::int64_t dims, const SmoothingOptions& options, const Progress& progress = {});

// Majority of the k nearest cells' labels (ties: the smallest label); -1 labels do not vote.
std::vector<std::int32_t> smoothLabels(const std::vector<float>& x, const std::vector<float>& y,
                                       const std::vector<std::int32_t>& section,
                                       const std::vector<std::int32_t>& labels, const SmoothingOptions& options);

// Spatial coherence of a labeling: for each cell, the share of its k nearest cells (of its
// section, itself excluded) that carry its label; averaged per label and over all labelled cells.
// 1 = regions are solid patches, ~1/labels = salt and pepper.
struct SpatialCoherence {
  double overall = 0;
  std::vector<double> perLabel; // indexed by label; NaN for labels without cells
};
SpatialCoherence spatialCoherence(const std::vector<float>& x, const std::vector<float>& y,
                                  const std::vector<std::int32_t>& section, const std::vector<std::int32_t>& labels,
                                  int labelCount, int k = 10, int threads = 0);

} // namespace atlascope
