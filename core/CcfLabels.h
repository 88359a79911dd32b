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

// Cells' CCF coordinates (micrometres AP, DV, ML) land on an atlas only when it covers the CCF's
// space (13,200 x 8,000 x 11,400 um: the Allen CCFv3 and the BrainGlobe atlases built on it, at any
// resolution). Throws an Error naming the atlas and its extent otherwise.
void requireCcfSpace(const Atlas& atlas);

// Per cell: a tree index (or -1 outside the brain / no coordinates / not in the chosen set).
std::vector<std::int32_t> ccfLabels(const Atlas& atlas, const CellTable& cells, const CcfLevel& level);

// Per tree index: its label at `level` (a tree index; -1 when not in the chosen set).
std::vector<std::int32_t> ccfLevelLabels(const StructureTree& tree, const CcfLevel& level);

// The CCF itself on RegionVolume's grid (`factor` annotation voxels per edge, AP fastest): per
// voxel the label at `level` of the annotation voxel at its centre (-1 outside the brain), so that
// regions voxelised from cells can be scored against the CCF voxel for voxel.
std::vector<std::int32_t> ccfVoxelLabels(const Atlas& atlas, int factor, const CcfLevel& level);

} // namespace atlascope
