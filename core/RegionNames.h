#pragma once
// Names for discovered regions that say where they are: "k25-3 · CP 82%" (the region, its best
// CCF match by Jaccard, and the share of the region's cells inside that structure). Kept in the
// result file's uns["region_names"][<column>] (one per category) so that names a user edits
// travel with the file and are what every later view and comparison shows.
#include "core/StructureTree.h"

#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

// "k25-3 · CP 82%" (share in [0, 1], rounded to a whole percent; the dot is U+00B7).
std::string regionNameWithCcf(const std::string& region, const std::string& structure, double share);

// Per category of a region column: its name with its best CCF match among the cells' structures
// (ccf: per cell a tree index of `tree`, e.g. ccfLabels at "leaf"; -1 = none; regions: per cell
// a category index, -1 = none). A region with no cell in the CCF keeps its category's name.
std::vector<std::string> ccfRegionNames(const std::vector<std::int32_t>& ccf, const std::vector<std::int32_t>& regions,
                                        const std::vector<std::string>& categories, const StructureTree& tree);

// uns["region_names"][column]; empty when the file has none for that column.
std::vector<std::string> readRegionNames(const std::string& h5ad, const std::string& column);

// Writes (replaces) uns["region_names"][column] of `h5ad` itself, atomically: a copy is edited
// and renamed over the file. The column must exist; a categorical one must have as many
// categories as there are names.
void writeRegionNames(const std::string& h5ad, const std::string& column, const std::vector<std::string>& names);

// The uns key the names of `column` live under, relative to uns ("region_names/<column>").
std::string regionNamesKey(const std::string& column);

} // namespace atlascope
