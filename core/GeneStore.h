#pragma once
// A gene-major copy of a dataset's expression, for colouring millions of cells by one gene.
//
// AnnData's X is stored by rows (dense row chunks, or CSR), the order the model's batches need;
// one gene's column then means reading the whole matrix (4M cells x 500 genes: 8 GB). The store
// holds X transposed, [genes, cells] float32, in chunks of one gene x 65,536 cells, so one gene is
// a few hundred kB chunks read in order. It is made once per dataset by streaming the rows (about
// the cost of one gene read from the rows) and cached under the user's cache folder
// ($ATLASCOPE_CACHE_DIR, $XDG_CACHE_HOME/atlascope or ~/.cache/atlascope, folder genes/), keyed by
// the dataset's absolute path, size and modification time: a changed file gets a new copy, and
// the dataset itself is never written. Written atomically (a crash leaves no half store).
#include "core/CellTable.h"
#include "core/FileSystem.h"
#include "core/Progress.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atlascope {

class GeneStore {
public:
  // The store's path for a dataset (not necessarily existing).
  static std::string pathFor(const std::string& data, const std::string& cacheDir = defaultCacheDir());
  // Opens the dataset's store, making it first when it is missing or was made from other data
  // (progress "gene store", rows done / cells; cancellable: nothing is left behind).
  static GeneStore openOrBuild(const std::string& data, const ColumnOptions& columns = {},
                               const std::string& cacheDir = defaultCacheDir(), const Progress& progress = {});

  std::int64_t cells() const { return cells_; }
  std::int64_t genes() const { return genes_; }
  const std::string& path() const { return path_; }
  bool built() const { return built_; } // made by this openOrBuild call (not found in the cache)
  // One gene's value for every row of the dataset's X (file row order).
  std::vector<float> readGene(std::int64_t gene) const;

private:
  std::string path_;
  std::int64_t cells_ = 0, genes_ = 0;
  bool built_ = false;
};

} // namespace atlascope
