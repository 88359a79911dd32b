#pragma once
// Discovered regions on the atlas grid, for their surfaces: each cell's label voxelised at a
// multiple of the annotation's spacing (the majority label of the cells in a voxel), then every
// brain voxel without cells given the label of the nearest voxel that has some (breadth first over
// face neighbours, inside the brain mask). Sections are ~200 um apart, so the measured voxels are
// thin slabs; the fill turns them into solids that can be meshed like the CCF's structures and
// never leave the brain.
#include "core/AnnotationVolume.h"
#include "core/Progress.h"

#include <array>
#include <cstdint>
#include <vector>

namespace atlascope {

struct RegionVolume {
  std::array<std::int64_t, 3> size{0, 0, 0}; // voxels along AP, DV, ML
  double voxelUm = 0;                        // the voxel edge (isotropic)
  std::vector<std::int32_t> labels;          // AP fastest; -1 outside the brain
  std::int32_t at(std::int64_t ap, std::int64_t dv, std::int64_t ml) const {
    return labels[static_cast<std::size_t>(ap + size[0] * (dv + size[1] * ml))];
  }
};

// ap/dv/ml: CCF micrometres per cell; labels per cell (-1 = none, skipped). factor: voxel edge in
// annotation voxels (2: 50 um on the 25 um CCF). A voxel is brain when the annotation voxel at
// its centre is.
RegionVolume voxeliseRegions(const AnnotationVolume& annotation, const std::vector<float>& ap,
                             const std::vector<float>& dv, const std::vector<float>& ml,
                             const std::vector<std::int32_t>& labels, int factor = 2, const Progress& progress = {});

} // namespace atlascope
