#include "app/workspace/DatasetGuard.h"

#include "core/AbcLayout.h"
#include "core/Error.h"
#include "core/Hdf5File.h"

#include <algorithm>

namespace atlascope::app {

namespace {
void checkCodes(const std::vector<std::int32_t>& codes, std::size_t names, const char* what, const std::string& path) {
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (codes[i] < -1 || (codes[i] >= 0 && static_cast<std::size_t>(codes[i]) >= names))
      throw FileError(path, std::string(what) + " code " + std::to_string(codes[i]) + " of cell " + std::to_string(i) +
                                " is past its " + std::to_string(names) + " categories");
}

void checkMatrixShape(const CellTable& cells, const std::string& path, const ColumnOptions& columns) {
  const Hdf5File f(path);
  const std::string X = columns.layer.empty() ? "/X" : "/layers/" + columns.layer;
  if (!f.exists(X)) return; // no matrix (X = None): cells without expression, nothing to read
  std::vector<std::int64_t> shape;
  if (f.hasAttribute(X, "shape"))
    shape = f.readInt64ArrayAttribute(X, "shape"); // sparse (anndata)
  else if (f.hasAttribute(X, "h5sparse_shape"))
    shape = f.readInt64ArrayAttribute(X, "h5sparse_shape");
  else
    shape = f.shape(X);
  const std::int64_t rows =
      cells.fileRow.empty() ? 0 : *std::max_element(cells.fileRow.begin(), cells.fileRow.end()) + 1;
  const auto genes = static_cast<std::int64_t>(cells.genes.size());
  if (shape.size() != 2 || shape[0] < rows || shape[1] != genes)
    throw FileError(path, X + " has the shape [" + (shape.empty() ? std::string() : std::to_string(shape[0])) +
                              (shape.size() > 1 ? ", " + std::to_string(shape[1]) : std::string()) + "] for " +
                              std::to_string(rows) + " cells and " + std::to_string(genes) + " genes in var");
}
} // namespace

void checkOpenable(const CellTable& cells, const std::string& path, const ColumnOptions& columns) {
  if (cells.size() == 0)
    throw FileError(path, cells.skippedCells > 0 ? "no cell to show: all " + std::to_string(cells.skippedCells) +
                                                       " skipped (" + cells.skippedReason + ")"
                                                 : std::string("no cells"));
  checkCodes(cells.section, cells.sectionNames.size(), "section", path);
  checkCodes(cells.cellType, cells.types.names.size(), "cell type", path);
  // A folder (the ABC download) and a table have their genes by construction.
  if (!cells.genes.empty() && !isFolder(path) && !isTablePath(path)) checkMatrixShape(cells, path, columns);
}

} // namespace atlascope::app
