// Leiden without igraph, for the GPU machine's builds (scripts/gpu-bench): that machine has no
// libigraph-dev and cannot fetch it, and the GPU figures need no Leiden clustering. gpu-bench
// builds this file in place of core/Leiden.cpp only when pkg-config finds no igraph and only in a
// copy of the tree that is not a git checkout (the device's copy).
#include "core/Error.h"
#include "core/Leiden.h"

namespace atlascope {

LeidenResult leiden(std::int64_t, const WeightedEdges&, const LeidenOptions&, const Progress&) {
  throw Error("this build has no igraph: Leiden clustering (celltypes) is unavailable");
}

} // namespace atlascope
