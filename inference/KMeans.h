#pragma once
// k-means for region discovery, on the CPU or a GPU with the same code: k-means++ seeding on a
// subsample, several restarts keeping the lowest inertia, Lloyd iterations with distances by
// matrix products (in row chunks, so memory stays bounded), empty clusters re-seeded with the
// points farthest from their centroids, a tolerance and an iteration cap. Seeded: deterministic
// on the CPU.
#include "core/Progress.h"

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace atlascope::inference {

struct KMeansOptions {
  int k = 25;
  int restarts = 3;
  // Lloyd iterations stop when the inertia changes by less than this fraction, or at the cap
  // (scikit-learn's defaults are 300 and a centre-shift tolerance of 1e-4; an inertia change of
  // 1e-4 is reached in tens of iterations at k ~ 1,000 and moves the labels of < 0.1% of cells).
  int maxIterations = 300;
  double tolerance = 1e-4;
  std::uint64_t seed = 42;
  std::int64_t seedingSample = 200000;
  std::int64_t rowChunk = 65536; // rows per distance block
};

struct KMeansResult {
  std::vector<std::int32_t> labels; // per row
  torch::Tensor centroids;          // [k, d] float32 (on the input's device)
  double inertia = 0;
  int iterations = 0;
  int emptyRepairs = 0;
};

// x: [n, d] float32 on any device.
KMeansResult kmeans(const torch::Tensor& x, const KMeansOptions& options, const Progress& progress = {});

// (linkResolutions, which links the resolutions k-means finds, is in core/Agreement.h.)

} // namespace atlascope::inference
