#pragma once
// The Allen CCF as Atlascope uses it: a label volume and the structure tree that names its labels.
#include "core/AnnotationVolume.h"
#include "core/Progress.h"
#include "core/StructureTree.h"

#include <optional>
#include <string>

namespace atlascope {

struct AtlasPaths {
  std::string annotation;        // .nrrd / .nhdr / .nii(.gz)
  std::string ontology;          // any format readOntology() accepts
  std::string parcellationTable; // optional: ABC parcellation.csv, when the volume holds indices
};

// Where the bundled CCF lives: $ATLASCOPE_RESOURCES, else ../share/atlascope next to the
// executable's folder, else the source tree's resources/ (set at configure time).
std::string resourceDir();
AtlasPaths bundledAtlasPaths();

class Atlas {
public:
  static Atlas load(const AtlasPaths& paths, const Progress& progress = {});

  const AnnotationVolume& annotation() const { return annotation_; }
  const StructureTree& structures() const { return tree_; }
  const AtlasPaths& paths() const { return paths_; }

  // The structure (tree index) at a point in CCF micrometres (AP, DV, ML); nullopt when the point
  // lies outside the volume or in a voxel labelled 0 (outside the brain).
  std::optional<int> structureAtUm(double ap, double dv, double ml) const;
  std::optional<int> structureAt(const VoxelIndex& v) const;

  // Labels of the volume that the ontology does not name (the real CCF has none).
  std::vector<StructureId> unknownIds() const;

private:
  AnnotationVolume annotation_;
  StructureTree tree_;
  AtlasPaths paths_;
};

} // namespace atlascope
