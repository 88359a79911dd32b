#pragma once
// Each cell's CCF structure from its CCF coordinates, at a chosen level of the ontology.
#include "core/Atlas.h"
#include "core/CellTable.h"

#include <string>
#include <vector>

namespace atlascope {

// "leaf" (the annotation's own label), "depth:N" (the ancestor at depth N, or the structure
// itself when shallower), or "major" (the major divisions: Isocortex, OLF, HPF, CTXsp, STR, PAL,
// TH, HY, MB, P, MY, CB, fiber tracts, VS; cells elsewhere are missing).
struct CcfLevel {
  std::string spec = "leaf";
};

// Per cell: a tree index (or -1 outside the brain / no coordinates / not in the chosen set).
std::vector<std::int32_t> ccfLabels(const Atlas& atlas, const CellTable& cells, const CcfLevel& level);

} // namespace atlascope
