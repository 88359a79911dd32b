#pragma once
// Leiden community detection (Traag et al. 2019) on a weighted undirected graph, through igraph
// 0.10's C API, with the modularity objective and a resolution parameter (scanpy's sc.tl.leiden).
// Seeded: igraph's own random number generator is swapped for a seeded one for the call, so the
// result depends on the seed alone.
#include "core/Progress.h"

#include <cstdint>
#include <vector>

namespace atlascope {

struct WeightedEdges {
  std::vector<std::int64_t> from, to; // vertex ids, each edge once (undirected)
  std::vector<double> weight;
};

struct LeidenOptions {
  double resolution = 1.0; // > 1: more, smaller communities
  std::uint64_t seed = 0;
  // Passes of the algorithm at most; it stops earlier when a pass changes no membership.
  int maxIterations = 20;
};

struct LeidenResult {
  std::vector<std::int32_t> membership; // per vertex; communities numbered by size, largest 0
  int communities = 0;
  double quality = 0; // modularity at the resolution
  int iterations = 0;
};

// Progress: one step per pass ("leiden", pass, maxIterations); cancellable between passes.
LeidenResult leiden(std::int64_t vertices, const WeightedEdges& edges, const LeidenOptions& options,
                    const Progress& progress = {});

} // namespace atlascope
