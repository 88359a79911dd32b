#pragma once
// Cell types found from expression (atlascope-cli celltypes), written into a copy of the dataset
// like every result (AnnDataResults.h): a categorical obs column with its colours in
// uns["<column>_colors"], each type's marker genes in uns["<column>_markers"] (a dict: type name
// -> string array, best first; anndata reads it as a dict of numpy arrays) and the principal
// components in obsm["X_pca"] (scanpy's key). Atomic.
//
// `logExpression`: X of the copy becomes log1p(X) and the input moves to layers["counts"]
// (scanpy's convention for a processed file). For counts or intensities that are not on a log
// scale: CellTransformer reads log1p(counts) (its likelihood undoes it), so the typed copy is
// ready for train/embed/segment as it is. Dense and CSR/CSC X; the original X is moved, not copied.
#include "core/AnnDataResults.h"

#include <map>
#include <string>
#include <vector>

namespace atlascope {

struct CellTypeColumn {
  std::string name;                // obs column, e.g. celltype_leiden
  std::vector<std::int32_t> codes; // per obs row of the source; -1 = none
  std::vector<std::string> types;
  std::vector<std::array<std::uint8_t, 3>> colours;
  std::vector<std::vector<std::string>> markers; // per type
};

void writeCellTypesToCopy(const std::string& source, const std::string& target, const CellTypeColumn& column,
                          const ObsmArray& pcs, bool logExpression = false);

// uns["<column>_markers"] of a file: type -> marker genes; empty when it has none (e.g. for the
// legend's tooltips).
std::map<std::string, std::vector<std::string>> readTypeMarkers(const std::string& path, const std::string& column);

} // namespace atlascope
