// The two BrainGlobe layouts (FORMATS.md, BrainGlobe section; brainglobe-atlasapi's
// descriptors.py and core.py): v1 folders of TIFF stacks and v3 manifests of OME-Zarr arrays.
// Both become the same Atlas: labels encoded into AnnotationVolume's 16-bit codes while the stack
// is read (no full-size copy of the 32-bit labels), in Atlascope's axes (AtlasAxes.h).
#include "core/AtlasCatalog.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Gzip.h"
#include "core/MemoryBudget.h"
#include "core/TiffStack.h"
#include "core/ZarrArray.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace atlascope {

bool brainGlobeSupported() { return true; }

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string joinShape(const std::array<std::int64_t, 3>& s) {
  return "[" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + "]";
}

json readJson(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw FileError(path, "file not found");
  const auto bytes = readFileBytes(path);
  try {
    return json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw FileError(path, std::string("invalid JSON: ") + e.what());
  }
}

// The fields v1 metadata.json and the v3 manifest share.
struct Metadata {
  AtlasDescription description;
  std::array<std::int64_t, 3> shape{};
  std::array<double, 3> resolution{};
  AxisMapping axes;
};

Metadata readCommonMetadata(const json& j, const std::string& path) {
  if (!j.is_object()) throw FileError(path, "the metadata is not a JSON object");
  Metadata m;
  AtlasDescription& d = m.description;
  const auto str = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  d.name = str("name");
  d.version = str("version");
  d.species = str("species");
  d.citation = str("citation");
  d.link = str("atlas_link");
  d.orientation = str("orientation");
  if (d.orientation.empty()) throw FileError(path, "no 'orientation'");
  if (const auto it = j.find("symmetric"); it != j.end() && it->is_boolean()) d.symmetric = it->get<bool>();
  const auto shape = j.find("shape");
  if (shape == j.end() || !shape->is_array() || shape->size() != 3) throw FileError(path, "no 'shape' of three sizes");
  const auto res = j.find("resolution");
  if (res == j.end() || !res->is_array() || res->size() != 3)
    throw FileError(path, "no 'resolution' of three numbers (micrometres per voxel)");
  for (std::size_t i = 0; i < 3; ++i) {
    const json& s = (*shape)[i];
    const json& r = (*res)[i];
    if (!s.is_number_integer() || s.get<std::int64_t>() <= 0 || s.get<std::int64_t>() > 100000)
      throw FileError(path, "'shape' holds " + quote(s.dump(), 30) + ", not a size");
    if (!r.is_number() || !(r.get<double>() > 0) || !std::isfinite(r.get<double>()))
      throw FileError(path, "'resolution' holds " + quote(r.dump(), 30) + ", not a voxel size");
    m.shape[i] = s.get<std::int64_t>();
    m.resolution[i] = r.get<double>();
  }
  d.resolutionUm = m.resolution;
  m.axes = axisMappingFromOrientation(d.orientation, path);
  return m;
}

// Labels -> AnnotationVolume codes while a stack is read, in Atlascope's layout.
class LabelEncoder {
public:
  // `fileCanHold`: the most voxels the file can hold (a Zarr array's absent chunks are the fill
  // value, so only memory bounds it).
  LabelEncoder(const VoxelScatter& scatter, std::string source, std::uint64_t fill = 0,
               std::uint64_t fileCanHold = UINT64_MAX)
      : scatter_(scatter), source_(std::move(source)) {
    const auto voxels = static_cast<std::uint64_t>(scatter.voxelCount());
    checkAllocation(source_, "the annotation (" + std::to_string(voxels) + " voxels, 2 bytes each)",
                    saturatingMultiply(voxels, 2), saturatingMultiply(fileCanHold, 2));
    const AnnotationVolume::Code fillCode = codeOf(fill);
    codes_.assign(static_cast<std::size_t>(voxels), fillCode);
  }
  void operator()(const StackBlock& b) {
    scatter_.forEach(b, source_, [&](std::int64_t at, std::int64_t offset) {
      codes_[static_cast<std::size_t>(at)] = codeOf(labelAt(b, offset, source_));
    });
  }
  AnnotationVolume finish(const std::array<double, 3>& spacing) {
    return AnnotationVolume::fromCodes(scatter_.atlascopeShape(), spacing, std::move(codes_), std::move(ids_));
  }

private:
  AnnotationVolume::Code codeOf(std::uint64_t label) {
    if (label == last_ && haveLast_) return lastCode_;
    if (label > 0xFFFFFFFFull) throw FileError(source_, "label " + std::to_string(label) + " is beyond 32-bit ids");
    auto it = map_.find(label);
    if (it == map_.end()) {
      if (ids_.size() > 0xFFFF) throw FileError(source_, "more than 65535 distinct labels");
      it = map_.emplace(label, static_cast<AnnotationVolume::Code>(ids_.size())).first;
      ids_.push_back(static_cast<StructureId>(label));
    }
    last_ = label;
    lastCode_ = it->second;
    haveLast_ = true;
    return lastCode_;
  }
  const VoxelScatter& scatter_;
  std::string source_;
  std::vector<AnnotationVolume::Code> codes_;
  std::vector<StructureId> ids_{0};
  std::unordered_map<std::uint64_t, AnnotationVolume::Code> map_{{0, 0}};
  std::uint64_t last_ = 0;
  AnnotationVolume::Code lastCode_ = 0;
  bool haveLast_ = false;
};

// Any stack (template) copied into Atlascope's layout as it is.
class VolumeCopier {
public:
  // `fill`: one element of `type` (ZarrArray::fillBytes), or empty for zeros.
  VolumeCopier(const VoxelScatter& scatter, ScalarType type, const std::array<double, 3>& spacing, std::string source,
               const std::vector<std::uint8_t>& fill)
      : scatter_(scatter), source_(std::move(source)) {
    v_.size = scatter.atlascopeShape();
    v_.spacing = spacing;
    v_.unit = "um";
    v_.type = type;
    const std::size_t item = scalarSize(type);
    checkAllocation(source_, "the template", saturatingMultiply(static_cast<std::uint64_t>(v_.voxelCount()), item),
                    UINT64_MAX);
    v_.bytes.assign(static_cast<std::size_t>(v_.voxelCount()) * item, 0);
    if (fill.size() == item && std::any_of(fill.begin(), fill.end(), [](std::uint8_t b) { return b != 0; }))
      // Rare (templates are filled with 0): write the fill value voxel by voxel.
      for (std::size_t i = 0; i < v_.bytes.size(); i += item) std::memcpy(v_.bytes.data() + i, fill.data(), item);
  }
  void operator()(const StackBlock& b) {
    if (b.type != v_.type) throw FileError(source_, "the stack changes its scalar type between blocks");
    const std::size_t item = scalarSize(b.type);
    scatter_.forEach(b, source_, [&](std::int64_t at, std::int64_t offset) {
      std::memcpy(v_.bytes.data() + static_cast<std::size_t>(at) * item,
                  b.data + static_cast<std::size_t>(offset) * item, item);
    });
  }
  Volume finish() { return std::move(v_); }

private:
  const VoxelScatter& scatter_;
  std::string source_;
  Volume v_;
};

// BrainGlobe hemispheres (1 = its left, 2 = its right) -> Atlascope's Hemisphere (Allen's names:
// BrainGlobe's right is Allen's left; AtlasAxes.h).
class HemisphereReader {
public:
  HemisphereReader(const VoxelScatter& scatter, std::string source) : scatter_(scatter), source_(std::move(source)) {
    checkAllocation(source_, "the hemispheres", static_cast<std::uint64_t>(scatter.voxelCount()), UINT64_MAX);
    h_.assign(static_cast<std::size_t>(scatter.voxelCount()), 0);
  }
  void operator()(const StackBlock& b) {
    scatter_.forEach(b, source_, [&](std::int64_t at, std::int64_t offset) {
      const std::uint64_t v = labelAt(b, offset, source_);
      if (v > 2) throw FileError(source_, "hemisphere value " + std::to_string(v) + " (0, 1 = left, 2 = right)");
      h_[static_cast<std::size_t>(at)] = static_cast<std::uint8_t>(v == 1   ? Hemisphere::Right
                                                                   : v == 2 ? Hemisphere::Left
                                                                            : Hemisphere::Unknown);
    });
  }
  std::vector<std::uint8_t> finish() { return std::move(h_); }

private:
  const VoxelScatter& scatter_;
  std::string source_;
  std::vector<std::uint8_t> h_;
};

void checkTiffShape(const std::string& path, const TiffStackInfo& info, const std::array<std::int64_t, 3>& shape,
                    const std::string& metadataName) {
  if (info.shape != shape)
    throw FileError(path, "holds " + std::to_string(info.shape[0]) + " pages of " + std::to_string(info.shape[1]) +
                              " x " + std::to_string(info.shape[2]) + " (shape " + joinShape(info.shape) + "), " +
                              metadataName + " says shape " + joinShape(shape));
}

std::string requireFile(const fs::path& p, const std::string& namedIn) {
  std::error_code ec;
  if (!fs::exists(p, ec)) throw FileError(p.string(), "file not found (named by " + namedIn + ")");
  return p.string();
}

std::optional<StructureId> parseId(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFFull) return std::nullopt;
  return static_cast<StructureId>(v);
}

} // namespace

Atlas openBrainGlobeV1(const std::string& folder, const AtlasOpenOptions& options) {
  const fs::path dir(folder);
  const std::string metaPath = (dir / "metadata.json").string();
  Metadata m = readCommonMetadata(readJson(metaPath), metaPath);
  Atlas::Parts parts;
  parts.description = m.description;
  parts.description.format = "brainglobe-v1";
  parts.description.location = folder;
  if (parts.description.name.empty()) parts.description.name = dir.filename().string();
  // "<name>_<res>um" as brainglobe-atlasapi names it, from the folder ("allen_mouse_25um_v1.2").
  const std::string folderName = dir.filename().string();
  if (const auto v = folderName.rfind("_v"); v != std::string::npos) parts.description.name = folderName.substr(0, v);
  const std::string structures = requireFile(dir / "structures.json", "the BrainGlobe v1 layout");
  const std::string annotation = requireFile(dir / "annotation.tiff", "the BrainGlobe v1 layout");
  parts.paths.annotation = annotation;
  parts.paths.ontology = structures;
  options.progress("reading structures", 0, 1);
  parts.tree = readOntology(structures);

  const std::array<double, 3> spacing = toAtlascopeAxes(m.axes, m.resolution);
  const VoxelScatter scatter(m.shape, m.axes);
  const TiffStackInfo annotationInfo = inspectTiffStack(annotation);
  checkTiffShape(annotation, annotationInfo, m.shape, "metadata.json");
  if (options.labels) {
    LabelEncoder labels(scatter, annotation, 0, tiffVoxelsBound(annotation, annotationInfo));
    readTiffStack(annotation, std::ref(labels), options.progress);
    parts.annotation = labels.finish(spacing);
  }

  if (options.reference) {
    const std::string ref = requireFile(dir / "reference.tiff", "the BrainGlobe v1 layout");
    const TiffStackInfo info = inspectTiffStack(ref);
    checkTiffShape(ref, info, m.shape, "metadata.json");
    VolumeCopier copy(scatter, info.type, spacing, ref, {});
    readTiffStack(ref, std::ref(copy), options.progress);
    parts.reference = copy.finish();
  }
  const fs::path hemi = dir / "hemispheres.tiff";
  std::error_code ec;
  if (options.hemispheres && !m.description.symmetric) {
    const std::string h = requireFile(hemi, "metadata.json (\"symmetric\": false)");
    checkTiffShape(h, inspectTiffStack(h), m.shape, "metadata.json");
    HemisphereReader read(scatter, h);
    readTiffStack(h, std::ref(read), options.progress);
    parts.hemispheres = read.finish();
  }
  // Extra templates the metadata names: not read, but a missing one is said.
  if (const json meta = readJson(metaPath);
      meta.contains("additional_references") && meta["additional_references"].is_array())
    for (const auto& r : meta["additional_references"])
      if (r.is_string() && !fs::exists(dir / (r.get<std::string>() + ".tiff"), ec))
        parts.description.warnings.push_back("additional reference " + quote(r.get<std::string>(), 60) +
                                             " named by metadata.json is missing (" +
                                             (dir / (r.get<std::string>() + ".tiff")).string() + ")");
  if (options.meshes && fs::is_directory(dir / "meshes", ec))
    for (const std::string& f : listFolder((dir / "meshes").string())) {
      if (f.size() < 5 || f.compare(f.size() - 4, 4, ".obj") != 0) continue;
      if (const auto id = parseId(f.substr(0, f.size() - 4)))
        parts.meshes[*id] = {AtlasMeshSource::Kind::Obj, (dir / "meshes" / f).string()};
    }
  parts.axes = m.axes;
  parts.fileShape = m.shape;
  parts.fileSpacingUm = m.resolution;
  return Atlas::fromParts(std::move(parts));
}

namespace {

// A component folder named in the manifest ("/annotation-sets/x/1_0"), below the BrainGlobe root.
fs::path componentFolder(const fs::path& root, const json& manifest, const std::string& manifestPath,
                         std::initializer_list<const char*> keys) {
  const json* node = &manifest;
  std::string where;
  for (const char* k : keys) {
    where += (where.empty() ? "" : ".") + std::string(k);
    if (!node->is_object() || !node->contains(k)) throw FileError(manifestPath, "no '" + where + "'");
    node = &(*node)[k];
  }
  if (!node->is_string()) throw FileError(manifestPath, "'" + where + "' is not a path");
  std::string loc = node->get<std::string>();
  if (loc.find("..") != std::string::npos) throw FileError(manifestPath, "'" + where + "' leaves the atlas folder");
  while (!loc.empty() && loc[0] == '/') loc.erase(0, 1);
  return root / loc;
}

// The OME-Zarr level whose voxel size is the manifest's resolution (brainglobe-atlasapi picks it
// the same way), checked against the manifest's shape and orientation.
ZarrArray openLevel(const fs::path& group, const Metadata& m, const std::string& manifestPath,
                    std::string& orientation) {
  std::error_code ec;
  if (!fs::is_directory(group, ec))
    throw FileError(group.string(), "OME-Zarr folder not found (named by " + manifestPath + ")");
  const OmeMultiscales ms = readOmeMultiscales(group.string());
  const OmeMultiscales::Level* level = nullptr;
  std::string available;
  for (const auto& l : ms.levels) {
    const auto n = l.scaleUm.size();
    bool match = n >= 3;
    for (std::size_t i = 0; match && i < 3; ++i)
      match = std::abs(l.scaleUm[n - 3 + i] - m.resolution[i]) <= 1e-6 * std::max(1.0, m.resolution[i]);
    if (match && !level) level = &l;
    available += (available.empty() ? "" : "; ") + l.path + ":";
    for (double s : l.scaleUm) available += " " + std::to_string(s);
  }
  if (!level)
    throw FileError(group.string(), "no level at the manifest's resolution " + std::to_string(m.resolution[0]) + " x " +
                                        std::to_string(m.resolution[1]) + " x " + std::to_string(m.resolution[2]) +
                                        " um (levels, um: " + available + ")");
  if (!ms.orientation.empty() && !orientation.empty()) {
    std::string a = ms.orientation, b = orientation;
    for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : b) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (a != b)
      throw FileError(group.string(), "its axes are oriented " + quote(ms.orientation, 10) + ", the manifest says " +
                                          quote(orientation, 10));
  }
  ZarrArray array = ZarrArray::open((group / level->path).string());
  const auto& s = array.shape();
  if (s.size() != 3 || std::array<std::int64_t, 3>{s[0], s[1], s[2]} != m.shape) {
    std::string got;
    for (std::size_t i = 0; i < s.size(); ++i) got += (i ? ", " : "") + std::to_string(s[i]);
    throw FileError(array.folder(), "has shape [" + got + "], " + manifestPath + " says " + joinShape(m.shape));
  }
  return array;
}

} // namespace

Atlas openBrainGlobeV3(const std::string& manifestPath, const AtlasOpenOptions& options) {
  const json manifest = readJson(manifestPath);
  Metadata m = readCommonMetadata(manifest, manifestPath);
  // <root>/atlases/<name>/<version>/manifest.json
  const fs::path root = fs::absolute(fs::path(manifestPath)).parent_path().parent_path().parent_path().parent_path();
  Atlas::Parts parts;
  parts.description = m.description;
  parts.description.format = "brainglobe-v3";
  parts.description.location = manifestPath;
  const std::string atlasFolder = fs::absolute(fs::path(manifestPath)).parent_path().parent_path().filename().string();
  if (!atlasFolder.empty() && atlasFolder != "." && atlasFolder != "/") parts.description.name = atlasFolder;
  if (manifest.contains("coordinate_space") && manifest["coordinate_space"].is_object())
    parts.description.coordinateSpace = manifest["coordinate_space"].value("name", std::string());

  const fs::path terminology = componentFolder(root, manifest, manifestPath, {"terminology", "location"});
  const std::string terms = requireFile(terminology / "terminology.csv", manifestPath);
  options.progress("reading terminology", 0, 1);
  parts.tree = readTerminologyCsv(terms);
  parts.paths.ontology = terms;

  const fs::path annotationSet = componentFolder(root, manifest, manifestPath, {"annotation_set", "location"});
  std::string orientation = m.description.orientation;
  const ZarrArray labelsArray =
      openLevel(annotationSet / "annotations_compressed.ome.zarr", m, manifestPath, orientation);
  parts.paths.annotation = labelsArray.folder();
  const std::array<double, 3> spacing = toAtlascopeAxes(m.axes, m.resolution);
  const VoxelScatter scatter(m.shape, m.axes);
  if (options.labels) {
    LabelEncoder labels(scatter, labelsArray.folder(), labelsArray.fillLabel());
    const auto stats = labelsArray.read3d(std::ref(labels), options.progress);
    parts.annotation = labels.finish(spacing);
    parts.description.annotationChunksPresent = stats.chunksPresent;
    parts.description.annotationChunksTotal = stats.chunksTotal;
  }

  if (options.reference) {
    // core.py: annotation_set.template.location; the manifest's own "template" as a fallback.
    const bool nested = manifest.contains("annotation_set") && manifest["annotation_set"].is_object() &&
                        manifest["annotation_set"].contains("template");
    const fs::path tmpl =
        nested ? componentFolder(root, manifest, manifestPath, {"annotation_set", "template", "location"})
               : componentFolder(root, manifest, manifestPath, {"template", "location"});
    const ZarrArray t = openLevel(tmpl / "template.ome.zarr", m, manifestPath, orientation);
    VolumeCopier copy(scatter, t.type(), spacing, t.folder(), t.fillBytes());
    t.read3d(std::ref(copy), options.progress);
    parts.reference = copy.finish();
  }
  if (options.hemispheres && !m.description.symmetric) {
    const ZarrArray h = openLevel(annotationSet / "hemispheres.ome.zarr", m, manifestPath, orientation);
    HemisphereReader read(scatter, h.folder());
    h.read3d(std::ref(read), options.progress);
    parts.hemispheres = read.finish();
  }
  std::error_code ec;
  const fs::path meshes = annotationSet / "annotations.precomputed" / "mesh";
  if (options.meshes && fs::is_directory(meshes, ec))
    for (const std::string& f : listFolder(meshes.string())) {
      if (f.size() < 7 || f.compare(f.size() - 6, 6, ".index") != 0) continue;
      if (const auto id = parseId(f.substr(0, f.size() - 6)))
        parts.meshes[*id] = {AtlasMeshSource::Kind::NeuroglancerPrecomputed, meshes.string()};
    }
  parts.axes = m.axes;
  parts.fileShape = m.shape;
  parts.fileSpacingUm = m.resolution;
  return Atlas::fromParts(std::move(parts));
}

} // namespace atlascope
