#pragma once
// An atlas as Atlascope uses it: a label volume and the structure tree that names its labels, in
// Atlascope's axes (AnnotationVolume), whatever it was read from: the bundled Allen CCF (NRRD +
// ontology), a BrainGlobe v1 folder or a BrainGlobe 3.x manifest (core/AtlasCatalog.h opens any of
// them by name or path). Optionally the reference template, the hemispheres and the atlas' own
// structure meshes.
#include "core/AnnotationVolume.h"
#include "core/AtlasAxes.h"
#include "core/Progress.h"
#include "core/StructureTree.h"
#include "core/Volume.h"

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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

// Hemisphere names follow Allen's convention (AtlasAxes.h: the left/right caveat): index 0 of
// Atlascope's axis 2 lies in the LEFT hemisphere, whatever BrainGlobe calls it.
enum class Hemisphere : std::uint8_t { Unknown = 0, Left = 1, Right = 2 };
const char* hemisphereName(Hemisphere h);

// What an atlas says about itself.
struct AtlasDescription {
  std::string name;     // "ccf" for the bundled CCF; BrainGlobe's name ("allen_mouse_25um")
  std::string format;   // "nrrd" (the bundled CCF or --annotation), "brainglobe-v1", "brainglobe-v3"
  std::string location; // what was opened: the annotation file, the v1 folder, the v3 manifest.json
  std::string version, species, citation, link;
  std::string orientation;     // as the files state it ("asr"); empty for Allen's own NRRD files
  std::string coordinateSpace; // v3: the coordinate space's name; "allen-ccfv3" for the bundled CCF
  bool symmetric = true;
  std::array<double, 3> resolutionUm{0, 0, 0}; // as the metadata states it, in the files' axis order
  // Chunks of the v3 annotation on disk / in the grid (absent ones hold the fill value).
  std::int64_t annotationChunksPresent = 0, annotationChunksTotal = 0;
  std::vector<std::string> warnings; // what is amiss but does not stop the atlas opening
};

// Where a structure's own mesh lies (BrainGlobe atlases ship one per structure, most of them).
struct AtlasMeshSource {
  enum class Kind { Obj, NeuroglancerPrecomputed };
  Kind kind = Kind::Obj;
  std::string path; // the .obj file; for precomputed meshes the mesh folder (holding info, <id>, <id>.index)
};

// A triangle mesh in Atlascope micrometres (AP, DV, ML; AnnotationVolume's frame).
struct TriangleMesh {
  std::vector<float> points;            // x, y, z per vertex
  std::vector<std::uint32_t> triangles; // three vertex indices per triangle
  std::size_t vertexCount() const { return points.size() / 3; }
  std::size_t triangleCount() const { return triangles.size() / 3; }
};

class Atlas {
public:
  static Atlas load(const AtlasPaths& paths, const Progress& progress = {});

  // Everything an atlas reader produces; `fromParts` is how the BrainGlobe readers build an Atlas.
  struct Parts {
    AtlasDescription description;
    AnnotationVolume annotation;
    StructureTree tree;
    AtlasPaths paths;                      // annotation and ontology file, for display
    Volume reference;                      // the template in Atlascope's axes (empty: not loaded)
    std::vector<std::uint8_t> hemispheres; // per voxel a Hemisphere (empty: the symmetric rule)
    std::unordered_map<StructureId, AtlasMeshSource> meshes;
    // The files' frame, to place meshes stated in it.
    AxisMapping axes;
    std::array<std::int64_t, 3> fileShape{0, 0, 0};
    std::array<double, 3> fileSpacingUm{0, 0, 0};
  };
  static Atlas fromParts(Parts parts);

  const AnnotationVolume& annotation() const { return annotation_; }
  const StructureTree& structures() const { return tree_; }
  const AtlasPaths& paths() const { return paths_; }
  const AtlasDescription& description() const { return description_; }
  const std::string& name() const { return description_.name; }

  // The reference template (e.g. the two-photon average) in Atlascope's axes, when loaded.
  bool hasReference() const { return reference_.voxelCount() > 0 && !reference_.bytes.empty(); }
  const Volume& reference() const { return reference_; }

  // Which hemisphere a voxel lies in: the atlas' hemispheres stack when loaded, else the split of
  // a symmetric atlas at round(n / 2) along axis 2 (BrainGlobe's rule, names after Allen).
  Hemisphere hemisphereAt(const VoxelIndex& v) const;
  bool hasHemisphereStack() const { return !hemispheres_.empty(); }

  // The atlas' own mesh of a structure (tree index), when it ships one; readMesh reads it into
  // Atlascope micrometres (a FileError naming the file when it cannot).
  std::optional<AtlasMeshSource> meshSource(int structureIndex) const;
  std::size_t meshCount() const { return meshes_.size(); }
  TriangleMesh readMesh(int structureIndex) const;

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
  AtlasDescription description_;
  Volume reference_;
  std::vector<std::uint8_t> hemispheres_;
  std::unordered_map<StructureId, AtlasMeshSource> meshes_;
  AxisMapping axes_;
  std::array<std::int64_t, 3> fileShape_{0, 0, 0};
  std::array<double, 3> fileSpacingUm_{0, 0, 0};
};

} // namespace atlascope
