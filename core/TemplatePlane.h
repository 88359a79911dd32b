#pragma once
// A plane of an atlas' reference template (the average brain its labels were drawn on) as grey
// levels, for drawing under cells and boundaries: the 2D section view paints it, the 3D scene
// shows it as a translucent slice at the section. Grey levels span the template's 0.5th to 99.5th
// percentile of non-zero voxels (one window per template, so moving the plane keeps the contrast).
#include "core/SectionBoundaries.h"
#include "core/Volume.h"

#include <array>
#include <cstdint>
#include <vector>

namespace atlascope {

struct GreyWindow {
  double low = 0, high = 1;
};
// From at most ~1M voxels sampled evenly; a constant or empty template gives {v, v + 1}.
GreyWindow templateWindow(const Volume& reference);

struct TemplatePlane {
  PlaneAxes axes;
  int width = 0, height = 0;         // voxels along axes.u and axes.v
  std::array<double, 2> spacingUm{}; // along u and v
  double positionUm = 0;             // the voxel plane's centre along the normal
  std::vector<std::uint8_t> grey;    // width x height, u fastest; 0 = background
  bool empty() const { return grey.empty(); }
};
// The voxel plane nearest to positionUm along `normal` (0 AP, 1 DV, 2 ML); voxel centres at
// (index + 0.5) * spacing as in AnnotationVolume. Empty when the position is outside the volume.
TemplatePlane templatePlane(const Volume& reference, const std::array<double, 3>& spacingUm, int normal,
                            double positionUm, const GreyWindow& window);

} // namespace atlascope
