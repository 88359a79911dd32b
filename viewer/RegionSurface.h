#pragma once
// Region surfaces from a label volume (the CCF's, or discovered regions voxelised on its grid): discrete flying edges
// on a structure's voxel mask (the union of its descendants' labels), windowed-sinc smoothing, quadric decimation, in
// CCF micrometres (x = AP, y = DV, z = ML), coloured by the ontology.
#include "core/Atlas.h"
#include "core/Progress.h"
#include "core/RegionVolume.h"

#include <vtkSmartPointer.h>

#include <cstdint>
#include <string>
#include <vector>

class vtkPolyData;

namespace atlascope::viewer {

struct SurfaceOptions {
  // Windowed-sinc smoothing: iterations and pass band (smaller = smoother). 3D Slicer's default
  // "smoothing 0.5" is pass band 10^(-4*0.5) = 0.01 with 20 iterations; we smooth a little less
  // so that thin CCF layers keep their volume (accuracy bar: 3% of the voxel volume).
  int smoothingIterations = 15;
  double passBand = 0.05;
  // Fraction of triangles removed by quadric decimation (volume preserving).
  double decimation = 0.5;
  // Sampling step in voxels: 1 meshes the native grid (the accuracy bar of exported meshes);
  // 2 meshes 2x2x2 blocks (a block is inside when most of its voxels are), 8x fewer voxels and
  // ~4x fewer triangles, which the GUI uses for structures as large as the whole brain.
  int downsample = 1;
  // When > 0, structures with more voxels than this are meshed with downsample 2 (the GUI's
  // setting: the whole brain in ~4 s instead of ~18 s, volume within 0.3%).
  std::int64_t downsampleAboveVoxels = 0;

  std::uint64_t hash() const;
};

// Builds the surface of tree structure `structureIndex`; an empty polydata when no voxel carries
// it (e.g. ontology-only structures). Thread-safe: touches no shared VTK state.
vtkSmartPointer<vtkPolyData> buildRegionSurface(const Atlas& atlas, int structureIndex,
                                                const SurfaceOptions& options = {}, const Progress& progress = {});

// The surface of one discovered region of a voxelised labelling (voxeliseRegions), in CCF
// micrometres like the CCF's; empty when no voxel carries the label. Field data RegionLabel.
vtkSmartPointer<vtkPolyData> buildLabelSurface(const RegionVolume& volume, std::int32_t label,
                                               const SurfaceOptions& options = {}, const Progress& progress = {});

// Every region 0..regions-1 of a voxelised labelling meshed by buildLabelSurface, on every core;
// null where a label has no voxels. Progress "region surfaces" (done, regions); cancellable.
std::vector<vtkSmartPointer<vtkPolyData>> meshRegionVolume(const RegionVolume& volume, int regions,
                                                           const SurfaceOptions& options = {},
                                                           const Progress& progress = {});

// The voxel count of a structure's mask (the descendant union), for the accuracy bar and the UI.
std::int64_t structureVoxelCount(const Atlas& atlas, int structureIndex);

// The volume a closed surface encloses, in cubic micrometres.
double enclosedVolume(vtkPolyData* surface);

} // namespace atlascope::viewer
