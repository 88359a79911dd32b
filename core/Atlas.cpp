#include "core/Atlas.h"

#include "core/AbcParcellation.h"
#include "core/AtlasMesh.h"
#include "core/Error.h"
#include "core/VolumeIO.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#ifndef ATLASCOPE_SOURCE_RESOURCE_DIR
#define ATLASCOPE_SOURCE_RESOURCE_DIR ""
#endif

namespace atlascope {

namespace fs = std::filesystem;

std::string resourceDir() {
  if (const char* env = std::getenv("ATLASCOPE_RESOURCES"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "atlascope";
    if (fs::exists(installed / "ccf", ec)) return installed.string();
  }
  return ATLASCOPE_SOURCE_RESOURCE_DIR;
}

AtlasPaths bundledAtlasPaths() {
  const fs::path dir = fs::path(resourceDir()) / "ccf";
  return {(dir / "annotation_25.nrrd").string(), (dir / "structures.json").string(), {}};
}

Atlas Atlas::load(const AtlasPaths& paths, const Progress& progress) {
  Atlas atlas;
  atlas.paths_ = paths;
  progress("reading ontology", 0, 3);
  atlas.tree_ = readOntology(paths.ontology);
  progress("reading annotation", 1, 3);
  const Volume vol = readVolume(paths.annotation);
  progress("encoding labels", 2, 3);
  atlas.annotation_ = AnnotationVolume::fromVolume(vol, paths.annotation);
  if (!paths.parcellationTable.empty())
    atlas.annotation_.remap(readAbcParcellationTable(paths.parcellationTable), paths.parcellationTable);
  progress("atlas ready", 3, 3);
  AtlasDescription& d = atlas.description_;
  const bool bundled = fs::path(paths.annotation) == fs::path(bundledAtlasPaths().annotation);
  d.name = bundled ? "ccf" : fs::path(paths.annotation).stem().string();
  d.format = "nrrd";
  d.location = paths.annotation;
  d.species = bundled ? "Mus musculus" : "";
  d.coordinateSpace = bundled ? "allen-ccfv3" : "";
  d.citation = bundled ? "Wang et al. 2020, https://doi.org/10.1016/j.cell.2020.04.007" : "";
  d.resolutionUm = atlas.annotation_.spacingUm();
  atlas.fileShape_ = atlas.annotation_.size();
  atlas.fileSpacingUm_ = atlas.annotation_.spacingUm();
  return atlas;
}

Atlas Atlas::fromParts(Parts parts) {
  Atlas a;
  a.description_ = std::move(parts.description);
  a.annotation_ = std::move(parts.annotation);
  a.tree_ = std::move(parts.tree);
  a.paths_ = std::move(parts.paths);
  a.reference_ = std::move(parts.reference);
  a.hemispheres_ = std::move(parts.hemispheres);
  a.meshes_ = std::move(parts.meshes);
  a.axes_ = parts.axes;
  a.fileShape_ = parts.fileShape;
  a.fileSpacingUm_ = parts.fileSpacingUm;
  if (!a.hemispheres_.empty() && static_cast<std::int64_t>(a.hemispheres_.size()) != a.annotation_.voxelCount())
    throw Error("atlas: the hemispheres stack and the annotation differ in size");
  return a;
}

const char* hemisphereName(Hemisphere h) {
  switch (h) {
  case Hemisphere::Left: return "left";
  case Hemisphere::Right: return "right";
  default: return "unknown";
  }
}

Hemisphere Atlas::hemisphereAt(const VoxelIndex& v) const {
  if (!annotation_.contains(v)) return Hemisphere::Unknown;
  if (!hemispheres_.empty())
    return static_cast<Hemisphere>(hemispheres_[static_cast<std::size_t>(annotation_.linearIndex(v))]);
  if (!description_.symmetric) return Hemisphere::Unknown;
  // BrainGlobe: indices from round(n / 2) on (Python's round: halves to even) are its "left";
  // below, its "right", which is Allen's (and Atlascope's) left.
  const auto half = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(annotation_.size()[2]) / 2.0));
  return v.ml < half ? Hemisphere::Left : Hemisphere::Right;
}

std::optional<AtlasMeshSource> Atlas::meshSource(int structureIndex) const {
  if (structureIndex < 0 || static_cast<std::size_t>(structureIndex) >= tree_.size()) return std::nullopt;
  const auto it = meshes_.find(tree_[structureIndex].id);
  if (it == meshes_.end()) return std::nullopt;
  return it->second;
}

TriangleMesh Atlas::readMesh(int structureIndex) const {
  const auto src = meshSource(structureIndex);
  if (!src)
    throw Error("atlas " + description_.name + " has no mesh of structure " +
                (structureIndex >= 0 && static_cast<std::size_t>(structureIndex) < tree_.size()
                     ? tree_[structureIndex].acronym
                     : std::to_string(structureIndex)));
  TriangleMesh m = src->kind == AtlasMeshSource::Kind::Obj ? readObjMesh(src->path)
                                                           : readPrecomputedMesh(src->path, tree_[structureIndex].id);
  // The files state vertices in their own axes and micrometres (voxel i's centre at i x spacing).
  for (std::size_t i = 0; i + 2 < m.points.size(); i += 3) {
    const auto p =
        fileUmToAtlascopeUm(axes_, fileShape_, fileSpacingUm_, {m.points[i], m.points[i + 1], m.points[i + 2]});
    m.points[i] = static_cast<float>(p[0]);
    m.points[i + 1] = static_cast<float>(p[1]);
    m.points[i + 2] = static_cast<float>(p[2]);
  }
  return m;
}

std::optional<int> Atlas::structureAt(const VoxelIndex& v) const {
  if (!annotation_.contains(v)) return std::nullopt;
  const StructureId id = annotation_.idAt(v);
  if (id == 0) return std::nullopt;
  return tree_.indexOf(id);
}

std::optional<int> Atlas::structureAtUm(double ap, double dv, double ml) const {
  const auto v = annotation_.voxelAt(ap, dv, ml);
  if (!v) return std::nullopt;
  return structureAt(*v);
}

std::vector<StructureId> Atlas::unknownIds() const {
  std::vector<StructureId> out;
  for (StructureId id : annotation_.distinctIds())
    if (!tree_.indexOf(id)) out.push_back(id);
  return out;
}

} // namespace atlascope
