#pragma once
// Where structures meet on a plane through the annotation: the edges between voxels of different
// labels, as line segments in the plane's micrometres. Drawn over a section's cells (the 2D
// section view) and written as vector paths (SVG/PDF), so they stay sharp at any size.
#include "core/AnnotationVolume.h"

#include <vector>

namespace atlascope {

// The plane's axis by the volume's index: 0 = anterior-posterior (coronal sections),
// 1 = dorsal-ventral (horizontal), 2 = medial-lateral (sagittal).
struct PlaneAxes {
  int normal = 0;
  int u = 2, v = 1; // the in-plane axes: horizontal and vertical on screen
};
PlaneAxes planeAxes(int normal);

struct PlaneSegment {
  float u0, v0, u1, v1; // micrometres along the plane's u and v axes
};

// Boundaries on the voxel slice nearest to positionUm along the normal; voxels outside the brain
// (label 0) count as a label, so the outline is included. Runs of collinear edges are merged.
// Empty when the position is outside the volume.
std::vector<PlaneSegment> annotationBoundaries(const AnnotationVolume& annotation, int normal, double positionUm);

} // namespace atlascope
