#pragma once
// The Allen Brain Cell (ABC) atlas's MERFISH downloads as they are (FORMATS.md section 1): cell
// metadata CSV (the cluster-annotation view when present: taxonomy names and colours), the CCF
// coordinates CSV, and the expression .h5ad, joined by cell_label; mm -> um. Opening the folder
// that holds them (e.g. the ABC cache's root or a dataset's folder) finds the three files.
#include "core/CellTable.h"

#include <optional>
#include <string>
#include <unordered_map>

namespace atlascope {

struct AbcLayout {
  std::string metadata;   // cell_metadata_with_cluster_annotation.csv or cell_metadata*.csv
  std::string ccf;        // ccf_coordinates.csv (empty: none)
  std::string expression; // the expression .h5ad (a "-log2" one preferred)
};

// Searches `folder` (recursively, 6 levels) for the files; nothing when it holds no metadata CSV.
std::optional<AbcLayout> findAbcLayout(const std::string& folder);

// Cells in the metadata's order that are also in the expression matrix (the others are skipped
// and counted, with NaN/infinite positions); fileRow = the expression row. Positions: in-section
// x, y of the metadata (mm -> um); sections: brain_section_label; types: --type or `subclass`
// (colours from `<type>_color`); CCF from ccf_coordinates.csv (mm -> um; cells it lacks have NaN).
CellTable readAbcCells(const AbcLayout& layout, const ColumnOptions& columns = {});

// The expression .h5ad's row of each cell_label (its obs index): the join every ABC reader uses.
std::unordered_map<std::string, std::int64_t> abcExpressionRows(const AbcLayout& layout);

bool isFolder(const std::string& path);

} // namespace atlascope
