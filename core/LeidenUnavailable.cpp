// Leiden in a build without igraph (CMakeLists.txt: igraph is optional; the GPU machine has none):
// the call is a clear error, and `celltypes --method kmeans` still works.
#include "core/Error.h"
#include "core/Leiden.h"

namespace atlascope {

LeidenResult leiden(std::int64_t, const WeightedEdges&, const LeidenOptions&, const Progress&) {
  throw Error("this build has no igraph (Debian: libigraph-dev): Leiden clustering is unavailable; use "
              "`celltypes --method kmeans --k N`");
}

} // namespace atlascope
