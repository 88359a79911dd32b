#pragma once
// `atlascope-cli convert`: any dataset Atlascope reads (AnnData of any version, an ABC atlas
// download folder, a CSV/TSV table with its column mapping) written as a current AnnData file
// (anndata 0.8 encoding: obs index cell_label, brain_section_label and the cell type as
// categoricals with colours in uns, obsm spatial and ccf, var index, X dense float32 in row chunks)
// or as one CSV table (cell_label, x, y, section, cell_type, CCF, one column per gene). Cells the
// reader skips (NaN coordinates) are left out and counted. Rows are streamed: the whole matrix is
// never in memory. Written atomically.
#include "core/CellTable.h"
#include "core/Progress.h"

#include <functional>
#include <string>

namespace atlascope {

struct ConvertSummary {
  std::int64_t cells = 0, genes = 0, skipped = 0;
  std::string format; // "h5ad" or "csv"
};

// The cell ids of a dataset's rows (file row order): the h5ad obs index, the CSV id column, the
// ABC cell_label; row numbers when the file has none.
std::vector<std::string> readCellIds(const std::string& path, const ColumnOptions& columns = {});

// Writes cells as a current AnnData file in the layout above: obs index cell_label (`ids`),
// brain_section_label and, when the table has types, `typeColumn` (categoricals), obsm spatial
// (and ccf), var index gene_symbol (`genes`); X filled by `fillX`, which calls its argument with
// consecutive slabs of rows (cells x genes, row-major) in table order; uns["section_spacing_um"]
// when `sectionSpacingUm` > 0. Atomic.
using RowSink = std::function<void(const float* values, std::int64_t rows)>;
void writeCellsH5ad(const std::string& out, const CellTable& cells, const std::vector<std::string>& ids,
                    const std::vector<std::string>& genes, const std::string& typeColumn,
                    const std::function<void(const RowSink&)>& fillX, double sectionSpacingUm = 0);

ConvertSummary convertCells(const std::string& in, const ColumnOptions& columns, const std::string& out,
                            const Progress& progress = {});

} // namespace atlascope
