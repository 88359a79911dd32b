#pragma once
// BrainGlobe atlases written by the tests themselves from the bundled CCF (downsampled to keep the
// suites fast): a v1 folder (TIFF stacks, structures.json, metadata.json, meshes/<id>.obj) and a
// v3 layout (manifest.json, terminology.csv, OME-Zarr annotation, template and hemispheres), laid
// out as brainglobe-atlasapi lays them out (descriptors.py, wrapup.py).
#include "core/Atlas.h"
#include "core/AtlasAxes.h"
#include "core/AtlasMesh.h"
#include "core/TiffStack.h"
#include "core/ZarrArray.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlascope::fixtures {

// The CCF sampled every `factor` voxels (voxel i * factor + factor / 2), in the CCF's own order
// (AP fastest): ids[ap + n0 * (dv + n1 * ml)].
struct LabelGrid {
  std::array<std::int64_t, 3> shape{0, 0, 0};
  double spacingUm = 25;
  std::vector<std::uint32_t> ids;
  std::uint32_t at(std::int64_t ap, std::int64_t dv, std::int64_t ml) const {
    return ids[static_cast<std::size_t>(ap + shape[0] * (dv + shape[1] * ml))];
  }
};

inline LabelGrid downsample(const Atlas& ccf, int factor) {
  const auto& a = ccf.annotation();
  LabelGrid g;
  for (std::size_t i = 0; i < 3; ++i) g.shape[i] = a.size()[i] / factor;
  g.spacingUm = a.spacingUm()[0] * factor;
  g.ids.resize(static_cast<std::size_t>(g.shape[0] * g.shape[1] * g.shape[2]));
  std::size_t at = 0;
  for (std::int64_t k = 0; k < g.shape[2]; ++k)
    for (std::int64_t j = 0; j < g.shape[1]; ++j)
      for (std::int64_t i = 0; i < g.shape[0]; ++i)
        g.ids[at++] = a.idAt({i * factor + factor / 2, j * factor + factor / 2, k * factor + factor / 2});
  return g;
}

// Every label replaced by its ancestor at `depth` (a second parcellation of the same grid).
inline LabelGrid coarsened(const LabelGrid& g, const StructureTree& tree, int depth) {
  LabelGrid out = g;
  for (auto& id : out.ids) {
    if (id == 0) continue;
    const auto i = tree.indexOf(id);
    if (!i) continue;
    const auto path = tree.pathFromRoot(*i);
    id = tree[path[static_cast<std::size_t>(std::min<int>(depth, static_cast<int>(path.size()) - 1))]].id;
  }
  return out;
}

// A stack in a file orientation, C order (the file's axis 2 fastest), from per-voxel values of
// the "asr" frame (= Atlascope's, index for index).
template <class T, class F>
std::vector<T> fileStack(const std::array<std::int64_t, 3>& asrShape, const std::string& orientation, F valueAt,
                         std::array<std::int64_t, 3>& fileShape) {
  const AxisMapping m = axisMappingFromOrientation(orientation, "fixture");
  for (std::size_t k = 0; k < 3; ++k) fileShape[static_cast<std::size_t>(m.fileAxis[k])] = asrShape[k];
  std::vector<T> out(static_cast<std::size_t>(fileShape[0] * fileShape[1] * fileShape[2]));
  std::size_t at = 0;
  std::array<std::int64_t, 3> f{};
  for (f[0] = 0; f[0] < fileShape[0]; ++f[0])
    for (f[1] = 0; f[1] < fileShape[1]; ++f[1])
      for (f[2] = 0; f[2] < fileShape[2]; ++f[2]) {
        std::array<std::int64_t, 3> c{};
        for (std::size_t k = 0; k < 3; ++k) {
          const std::int64_t i = f[static_cast<std::size_t>(m.fileAxis[k])];
          c[k] = m.reversed[k] ? asrShape[k] - 1 - i : i;
        }
        out[at++] = static_cast<T>(valueAt(c[0], c[1], c[2]));
      }
  return out;
}

inline std::uint16_t templateValue(std::int64_t ap, std::int64_t dv, std::int64_t ml) {
  return static_cast<std::uint16_t>((ap * 7 + dv * 3 + ml) % 60000);
}
// BrainGlobe's hemisphere values of an asymmetric atlas: its "right" (2) below the midline index,
// its "left" (1) from it on (Atlascope calls the former left: AtlasAxes.h).
inline std::uint8_t brainGlobeHemisphere(std::int64_t ml, std::int64_t n) { return ml < n / 2 ? 2 : 1; }

inline void writeText(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

inline std::string structuresJson(const StructureTree& tree) {
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const Structure& s = tree[static_cast<int>(i)];
    std::vector<StructureId> path;
    for (int p : tree.pathFromRoot(static_cast<int>(i))) path.push_back(tree[p].id);
    list.push_back({{"acronym", s.acronym},
                    {"id", s.id},
                    {"name", s.name},
                    {"structure_id_path", path},
                    {"rgb_triplet", {s.rgb[0], s.rgb[1], s.rgb[2]}}});
  }
  return list.dump();
}

inline std::string terminologyCsv(const StructureTree& tree) {
  std::string out = "identifier,parent_identifier,annotation_value,name,abbreviation,color_hex_triplet,"
                    "root_identifier_path\n";
  const auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const Structure& s = tree[static_cast<int>(i)];
    std::string path = "[";
    const auto p = tree.pathFromRoot(static_cast<int>(i));
    for (std::size_t k = 0; k < p.size(); ++k) path += (k ? ", " : "") + std::to_string(tree[p[k]].id);
    path += "]";
    char colour[8];
    std::snprintf(colour, sizeof colour, "#%02X%02X%02X", s.rgb[0], s.rgb[1], s.rgb[2]);
    out += std::to_string(s.id) + "," + (s.parent >= 0 ? std::to_string(tree[s.parent].id) : "") + "," +
           std::to_string(s.id) + "," + quoted(s.name) + "," + quoted(s.acronym) + "," + colour + "," + quoted(path) +
           "\n";
  }
  return out;
}

struct WriteOptions {
  std::string orientation = "asr";
  bool symmetric = true; // false: a hemispheres stack is written too
  bool bigTiff = false;
  std::uint32_t rowsPerStrip = 0;
  std::string name = "allen_mouse";
  std::string version = "1.2";
  // v3
  std::string compressor = "zstd";
  int zarrFormat = 3;
  std::int64_t chunk = 32;
  std::int64_t shardInner = 0; // > 0: chunks written as shards of inner chunks of this edge
};

// A v1 folder <parent>/<name>_<res>um_v<version>; returns its path.
inline std::string writeV1(const std::string& parent, const LabelGrid& g, const StructureTree& tree,
                           const WriteOptions& o = {}) {
  namespace fs = std::filesystem;
  const std::string res = std::to_string(static_cast<int>(g.spacingUm));
  const fs::path dir = fs::path(parent) / (o.name + "_" + res + "um_v" + o.version);
  fs::create_directories(dir / "meshes");
  std::array<std::int64_t, 3> fileShape{};
  const auto labels = fileStack<std::uint32_t>(
      g.shape, o.orientation, [&](auto a, auto s, auto r) { return g.at(a, s, r); }, fileShape);
  const std::string desc = "{\"shape\": [" + std::to_string(fileShape[0]) + ", " + std::to_string(fileShape[1]) + ", " +
                           std::to_string(fileShape[2]) + "]}";
  writeTiffStack((dir / "annotation.tiff").string(), fileShape, ScalarType::UInt32, labels.data(), o.bigTiff,
                 o.rowsPerStrip, desc);
  const auto ref = fileStack<std::uint16_t>(g.shape, o.orientation, templateValue, fileShape);
  writeTiffStack((dir / "reference.tiff").string(), fileShape, ScalarType::UInt16, ref.data(), o.bigTiff,
                 o.rowsPerStrip, desc);
  if (!o.symmetric) {
    const auto hemi = fileStack<std::uint8_t>(
        g.shape, o.orientation, [&](auto, auto, auto r) { return brainGlobeHemisphere(r, g.shape[2]); }, fileShape);
    writeTiffStack((dir / "hemispheres.tiff").string(), fileShape, ScalarType::UInt8, hemi.data(), o.bigTiff,
                   o.rowsPerStrip, desc);
  }
  const nlohmann::json meta = {{"name", o.name},
                               {"citation", "unpublished"},
                               {"atlas_link", "http://www.brain-map.org"},
                               {"species", "Mus musculus"},
                               {"symmetric", o.symmetric},
                               {"resolution", {g.spacingUm, g.spacingUm, g.spacingUm}},
                               {"orientation", o.orientation},
                               {"version", o.version},
                               {"shape", fileShape},
                               {"trasform_to_bg", {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}},
                               {"additional_references", nlohmann::json::array()}};
  writeText(dir / "metadata.json", meta.dump());
  writeText(dir / "structures.json", structuresJson(tree));
  // One mesh: a tetrahedron at the stack's origin, in micrometres along the stack's axes.
  TriangleMesh m;
  m.points = {0, 0, 0, static_cast<float>(g.spacingUm), 0, 0, 0, static_cast<float>(g.spacingUm),
              0, 0, 0, static_cast<float>(g.spacingUm)};
  m.triangles = {0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3};
  writeObjMesh((dir / "meshes" / (std::to_string(tree[tree.root()].id) + ".obj")).string(), m);
  return dir.string();
}

// A v3 layout under <root>/brainglobe-atlasapi/; returns the manifest's path.
inline std::string writeV3(const std::string& root, const LabelGrid& g, const StructureTree& tree,
                           const WriteOptions& o = {}) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(root) / "brainglobe-atlasapi";
  std::string ver = o.version;
  for (auto& c : ver)
    if (c == '.') c = '_';
  const std::string res = std::to_string(static_cast<int>(g.spacingUm));
  const std::string atlasName = o.name + "_" + res + "um";
  const std::string annotationLoc = "/annotation-sets/" + o.name + "-annotation/" + ver;
  const std::string templateLoc = "/templates/" + o.name + "-template/" + ver;
  const std::string terminologyLoc = "/terminologies/" + o.name + "-terminology/" + ver;
  const std::string spaceLoc = "/coordinate-spaces/" + o.name + "-space/" + ver;
  std::array<std::int64_t, 3> fileShape{};
  const auto labels = fileStack<std::uint32_t>(
      g.shape, o.orientation, [&](auto a, auto s, auto r) { return g.at(a, s, r); }, fileShape);
  const std::vector<std::int64_t> shape(fileShape.begin(), fileShape.end());
  const std::vector<std::int64_t> chunks(3, o.chunk);
  ZarrWriteOptions zo;
  zo.zarrFormat = o.zarrFormat;
  zo.compressor = o.compressor;
  if (o.shardInner > 0) zo.shardInner = {o.shardInner, o.shardInner, o.shardInner};
  // Axis orientations as BrainGlobe writes them, from the orientation string.
  std::vector<std::string> orient;
  for (char c : o.orientation) {
    switch (c) {
    case 'a': orient.push_back("anterior-to-posterior"); break;
    case 'p': orient.push_back("posterior-to-anterior"); break;
    case 's': orient.push_back("superior-to-inferior"); break;
    case 'i': orient.push_back("inferior-to-superior"); break;
    case 'r': orient.push_back("right-to-left"); break;
    default: orient.push_back("left-to-right"); break;
    }
  }
  const double mm = g.spacingUm / 1000.0;
  const std::vector<OmeMultiscales::Level> levels = {{"0", {mm, mm, mm}}, {"1", {2 * mm, 2 * mm, 2 * mm}}};
  const auto writeGroup = [&](const fs::path& group, ScalarType type, const void* data, const void* half) {
    writeOmeZarrGroup(group.string(), o.zarrFormat, levels, {"z", "y", "x"}, orient);
    writeZarrArray((group / "0").string(), shape, chunks, type, data, zo);
    // A coarser level the reader must pass over (the atlas' resolution is level 0's).
    std::vector<std::int64_t> halfShape;
    for (auto s : shape) halfShape.push_back((s + 1) / 2);
    writeZarrArray((group / "1").string(), halfShape, chunks, type, half, zo);
  };
  const auto halve = [&](const auto& v) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    std::vector<T> out;
    for (std::int64_t x = 0; x < shape[0]; x += 2)
      for (std::int64_t y = 0; y < shape[1]; y += 2)
        for (std::int64_t z = 0; z < shape[2]; z += 2)
          out.push_back(v[static_cast<std::size_t>((x * shape[1] + y) * shape[2] + z)]);
    return out;
  };
  const fs::path ann = base / annotationLoc.substr(1);
  writeGroup(ann / "annotations_compressed.ome.zarr", ScalarType::UInt32, labels.data(), halve(labels).data());
  const auto ref = fileStack<std::uint16_t>(g.shape, o.orientation, templateValue, fileShape);
  writeGroup(base / templateLoc.substr(1) / "template.ome.zarr", ScalarType::UInt16, ref.data(), halve(ref).data());
  if (!o.symmetric) {
    const auto hemi = fileStack<std::uint8_t>(
        g.shape, o.orientation, [&](auto, auto, auto r) { return brainGlobeHemisphere(r, g.shape[2]); }, fileShape);
    writeGroup(ann / "hemispheres.ome.zarr", ScalarType::UInt8, hemi.data(), halve(hemi).data());
  }
  writeText(base / terminologyLoc.substr(1) / "terminology.csv", terminologyCsv(tree));
  const nlohmann::json templ = {{"name", o.name + "-template"}, {"version", o.version}, {"location", templateLoc}};
  const nlohmann::json terms = {
      {"name", o.name + "-terminology"}, {"version", o.version}, {"location", terminologyLoc}};
  writeText(
      base / spaceLoc.substr(1) / "manifest.json",
      nlohmann::json{{"name", o.name + "-space"}, {"version", o.version}, {"location", spaceLoc}, {"template", templ}}
          .dump(4));
  const nlohmann::json manifest = {
      {"name", o.name},
      {"location", "/atlases/" + atlasName + "/" + ver},
      {"citation", "unpublished"},
      {"atlas_link", "http://www.brain-map.org"},
      {"species", "Mus musculus"},
      {"symmetric", o.symmetric},
      {"resolution", {g.spacingUm, g.spacingUm, g.spacingUm}},
      {"orientation", o.orientation},
      {"version", o.version},
      {"shape", fileShape},
      {"additional_references", nlohmann::json::array()},
      {"atlas_packager", "Atlascope tests"},
      {"coordinate_space",
       {{"name", o.name + "-space"}, {"version", o.version}, {"location", spaceLoc}, {"template", templ}}},
      {"terminology", terms},
      {"annotation_set",
       {{"name", o.name + "-annotation"},
        {"version", o.version},
        {"location", annotationLoc},
        {"template", templ},
        {"terminology", terms}}},
      {"template", templ}};
  TriangleMesh tetra;
  const auto u = static_cast<float>(g.spacingUm);
  tetra.points = {0, 0, 0, u, 0, 0, 0, u, 0, 0, 0, u};
  tetra.triangles = {0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3};
  writePrecomputedMesh((ann / "annotations.precomputed" / "mesh").string(), tree[tree.root()].id, tetra);
  const fs::path manifestPath = base / "atlases" / atlasName / ver / "manifest.json";
  writeText(manifestPath, manifest.dump(4));
  return manifestPath.string();
}

} // namespace atlascope::fixtures
