#include "core/Atlas.h"

#include "core/AbcParcellation.h"
#include "core/VolumeIO.h"

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
  return atlas;
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
