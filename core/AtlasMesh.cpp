#include "core/AtlasMesh.h"

#include "core/AtomicFile.h"
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/JsonNumber.h"

#ifdef ATLASCOPE_HAS_DRACO
#include <draco/compression/decode.h>
#include <draco/compression/encode.h>
#include <draco/mesh/mesh.h>
#include <draco/mesh/triangle_soup_mesh_builder.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

namespace atlascope {

namespace {
bool parseFloat(const char*& p, const char* end, float& out) {
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  if (p >= end) return false;
  char buf[64];
  std::size_t n = 0;
  while (p < end && n < sizeof buf - 1 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') buf[n++] = *p++;
  buf[n] = 0;
  char* stop = nullptr;
  out = std::strtof(buf, &stop);
  return stop != buf && *stop == 0 && std::isfinite(out);
}
} // namespace

TriangleMesh readObjMesh(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw FileError(path, "mesh file not found");
  const auto bytes = readFileBytes(path);
  TriangleMesh m;
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const char* end = p + bytes.size();
  std::size_t line = 0;
  std::vector<std::int64_t> face;
  while (p < end) {
    ++line;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!eol) eol = end;
    if (eol - p >= 2 && p[0] == 'v' && (p[1] == ' ' || p[1] == '\t')) {
      const char* q = p + 2;
      float x, y, z;
      if (!parseFloat(q, eol, x) || !parseFloat(q, eol, y) || !parseFloat(q, eol, z))
        throw FileError(path, "line " + std::to_string(line) + ": a vertex without three numbers");
      m.points.insert(m.points.end(), {x, y, z});
    } else if (eol - p >= 2 && p[0] == 'f' && (p[1] == ' ' || p[1] == '\t')) {
      face.clear();
      const char* q = p + 2;
      while (q < eol) {
        while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) ++q;
        if (q >= eol) break;
        char* stop = nullptr;
        const long long v = std::strtoll(q, &stop, 10);
        if (stop == q) throw FileError(path, "line " + std::to_string(line) + ": a face index that is not a number");
        q = stop;
        while (q < eol && *q != ' ' && *q != '\t' && *q != '\r') ++q; // "/t/n"
        const auto n = static_cast<long long>(m.vertexCount());
        const long long index = v < 0 ? n + v : v - 1;
        if (v == 0 || index < 0 || index >= n)
          throw FileError(path, "line " + std::to_string(line) + ": face index " + std::to_string(v) + " but " +
                                    std::to_string(n) + " vertices so far");
        face.push_back(index);
      }
      if (face.size() < 3) throw FileError(path, "line " + std::to_string(line) + ": a face of fewer than 3 vertices");
      for (std::size_t k = 1; k + 1 < face.size(); ++k)
        m.triangles.insert(m.triangles.end(), {static_cast<std::uint32_t>(face[0]), static_cast<std::uint32_t>(face[k]),
                                               static_cast<std::uint32_t>(face[k + 1])});
    }
    p = eol + 1;
  }
  if (m.triangles.empty()) throw FileError(path, "no triangles in the mesh");
  return m;
}

void writeObjMesh(const std::string& path, const TriangleMesh& mesh) {
  std::ostringstream out;
  out.precision(9);
  for (std::size_t i = 0; i + 2 < mesh.points.size(); i += 3)
    out << "v " << mesh.points[i] << ' ' << mesh.points[i + 1] << ' ' << mesh.points[i + 2] << '\n';
  for (std::size_t i = 0; i + 2 < mesh.triangles.size(); i += 3)
    out << "f " << mesh.triangles[i] + 1 << ' ' << mesh.triangles[i + 1] + 1 << ' ' << mesh.triangles[i + 2] + 1
        << '\n';
  const std::string text = out.str();
  writeFileAtomically(path, text.data(), text.size());
}

#ifdef ATLASCOPE_HAS_DRACO
namespace {

class Reader {
public:
  Reader(const std::vector<std::uint8_t>& b, const std::string& path) : b_(b), path_(path) {}
  template <class T> T get() {
    if (at_ + sizeof(T) > b_.size()) throw FileError(path_, "ends inside the manifest (truncated)");
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::size_t left() const { return b_.size() - at_; }

private:
  const std::vector<std::uint8_t>& b_;
  const std::string& path_;
  std::size_t at_ = 0;
};

} // namespace

TriangleMesh readPrecomputedMesh(const std::string& meshFolder, StructureId id) {
  namespace fs = std::filesystem;
  const std::string infoPath = (fs::path(meshFolder) / "info").string();
  const std::string indexPath = (fs::path(meshFolder) / (std::to_string(id) + ".index")).string();
  const std::string dataPath = (fs::path(meshFolder) / std::to_string(id)).string();
  std::error_code ec;
  for (const auto& p : {infoPath, indexPath, dataPath})
    if (!fs::exists(p, ec)) throw FileError(p, "mesh file not found");
  nlohmann::json info;
  try {
    const auto bytes = readFileBytes(infoPath);
    info = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw FileError(infoPath, std::string("invalid JSON: ") + e.what());
  }
  if (!info.is_object() || info.value("@type", std::string()) != "neuroglancer_multilod_draco")
    throw FileError(infoPath, "not a neuroglancer_multilod_draco mesh info");
  int bits = 0;
  std::array<double, 12> transform{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
  try {
    bits = static_cast<int>(jsonInteger(info.at("vertex_quantization_bits"), 0, 64).value_or(0));
    if (info.contains("transform")) {
      const auto t = info["transform"].get<std::vector<double>>();
      if (t.size() != 12) throw FileError(infoPath, "the transform is not 12 numbers");
      std::copy(t.begin(), t.end(), transform.begin());
    }
  } catch (const nlohmann::json::exception& e) {
    throw FileError(infoPath, std::string("unexpected content: ") + e.what());
  }
  if (bits != 10 && bits != 16) throw FileError(infoPath, "vertex_quantization_bits must be 10 or 16");

  const auto manifest = readFileBytes(indexPath);
  Reader r(manifest, indexPath);
  std::array<float, 3> chunkShape{}, gridOrigin{};
  for (auto& v : chunkShape) v = r.get<float>();
  for (auto& v : gridOrigin) v = r.get<float>();
  const auto lods = r.get<std::uint32_t>();
  if (lods == 0 || lods > r.left() / 20) throw FileError(indexPath, "a level-of-detail count the manifest cannot hold");
  std::vector<float> lodScales(lods);
  for (auto& v : lodScales) v = r.get<float>();
  std::vector<std::array<float, 3>> vertexOffsets(lods);
  for (auto& o : vertexOffsets)
    for (auto& v : o) v = r.get<float>();
  std::vector<std::uint32_t> fragments(lods);
  for (auto& v : fragments) v = r.get<std::uint32_t>();
  const auto data = readFileBytes(dataPath);
  TriangleMesh m;
  std::uint64_t offset = 0;
  for (std::uint32_t lod = 0; lod < lods; ++lod) {
    const std::uint32_t n = fragments[lod];
    if (n > r.left() / 16) throw FileError(indexPath, "a fragment count the manifest cannot hold");
    std::vector<std::array<std::uint32_t, 3>> positions(n);
    for (int axis = 0; axis < 3; ++axis)
      for (std::uint32_t f = 0; f < n; ++f) positions[f][static_cast<std::size_t>(axis)] = r.get<std::uint32_t>();
    std::vector<std::uint32_t> sizes(n);
    for (auto& s : sizes) s = r.get<std::uint32_t>();
    if (lod > 0) break; // the finest level only; its fragments come first in the data file
    const double scale = std::ldexp(1.0, static_cast<int>(lod));
    const double q = std::ldexp(1.0, bits) - 1;
    for (std::uint32_t f = 0; f < n; ++f) {
      if (offset + sizes[f] > data.size())
        throw FileError(dataPath, "fragment " + std::to_string(f) + " lies past the end of the file (truncated)");
      if (sizes[f] == 0) continue;
      draco::DecoderBuffer buffer;
      buffer.Init(reinterpret_cast<const char*>(data.data() + offset), sizes[f]);
      offset += sizes[f];
      draco::Decoder decoder;
      decoder.SetSkipAttributeTransform(draco::GeometryAttribute::POSITION);
      auto decoded = decoder.DecodeMeshFromBuffer(&buffer);
      if (!decoded.ok())
        throw FileError(dataPath, "fragment " + std::to_string(f) + ": Draco: " + decoded.status().error_msg_string());
      const std::unique_ptr<draco::Mesh> mesh = std::move(decoded).value();
      const draco::PointAttribute* pos = mesh->GetNamedAttribute(draco::GeometryAttribute::POSITION);
      if (!pos || pos->num_components() != 3)
        throw FileError(dataPath, "fragment " + std::to_string(f) + " has no 3D positions");
      const auto base = static_cast<std::uint32_t>(m.vertexCount());
      for (draco::PointIndex i(0); i < mesh->num_points(); ++i) {
        std::array<std::int32_t, 3> qv{};
        if (!pos->ConvertValue<std::int32_t, 3>(pos->mapped_index(i), qv.data()))
          throw FileError(dataPath, "fragment " + std::to_string(f) + ": unreadable positions");
        std::array<double, 3> stored{};
        for (std::size_t a = 0; a < 3; ++a)
          stored[a] = gridOrigin[a] + vertexOffsets[lod][a] +
                      chunkShape[a] * scale * (positions[f][a] + static_cast<double>(qv[a]) / q);
        std::array<double, 3> nm{};
        for (std::size_t row = 0; row < 3; ++row)
          nm[row] = transform[row * 4] * stored[0] + transform[row * 4 + 1] * stored[1] +
                    transform[row * 4 + 2] * stored[2] + transform[row * 4 + 3];
        // x, y, z in nanometres = the stack's axes 2, 1, 0.
        m.points.insert(m.points.end(), {static_cast<float>(nm[2] / 1000.0), static_cast<float>(nm[1] / 1000.0),
                                         static_cast<float>(nm[0] / 1000.0)});
      }
      for (draco::FaceIndex fi(0); fi < mesh->num_faces(); ++fi) {
        const auto& face = mesh->face(fi);
        // x, y, z reversed to z, y, x: the winding flips with it; swap two corners to keep it.
        m.triangles.insert(m.triangles.end(), {base + face[0].value(), base + face[2].value(), base + face[1].value()});
      }
    }
  }
  if (m.triangles.empty()) throw FileError(dataPath, "no triangles in the mesh");
  return m;
}

void writePrecomputedMesh(const std::string& meshFolder, StructureId id, const TriangleMesh& mesh) {
  namespace fs = std::filesystem;
  fs::create_directories(meshFolder);
  // Nanometres, x y z = the stack's axes 2 1 0; the winding kept by swapping two corners.
  std::vector<float> nm(mesh.points.size());
  for (std::size_t i = 0; i + 2 < mesh.points.size(); i += 3) {
    nm[i] = mesh.points[i + 2] * 1000.0f;
    nm[i + 1] = mesh.points[i + 1] * 1000.0f;
    nm[i + 2] = mesh.points[i] * 1000.0f;
  }
  std::array<float, 3> lo{INFINITY, INFINITY, INFINITY}, hi{-INFINITY, -INFINITY, -INFINITY};
  for (std::size_t i = 0; i < nm.size(); ++i) {
    lo[i % 3] = std::min(lo[i % 3], nm[i]);
    hi[i % 3] = std::max(hi[i % 3], nm[i]);
  }
  float range = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  if (!(range > 0)) range = 1;
  draco::TriangleSoupMeshBuilder builder;
  const int faces = static_cast<int>(mesh.triangleCount());
  builder.Start(faces);
  const int pos = builder.AddAttribute(draco::GeometryAttribute::POSITION, 3, draco::DT_FLOAT32);
  for (int f = 0; f < faces; ++f) {
    const auto* t = &mesh.triangles[static_cast<std::size_t>(f) * 3];
    builder.SetAttributeValuesForFace(pos, draco::FaceIndex(static_cast<std::uint32_t>(f)), &nm[t[0] * 3],
                                      &nm[t[2] * 3], &nm[t[1] * 3]);
  }
  const std::unique_ptr<draco::Mesh> m = builder.Finalize();
  if (!m) throw FileError(meshFolder, "Draco could not build the mesh");
  draco::Encoder encoder;
  encoder.SetAttributeExplicitQuantization(draco::GeometryAttribute::POSITION, 16, 3, lo.data(), range);
  draco::EncoderBuffer buffer;
  const draco::Status status = encoder.EncodeMeshToBuffer(*m, &buffer);
  if (!status.ok()) throw FileError(meshFolder, "Draco: " + status.error_msg_string());
  const std::string data(buffer.data(), buffer.size());
  writeFileAtomically((fs::path(meshFolder) / std::to_string(id)).string(), data.data(), data.size());
  // The manifest: chunk shape, grid origin, 1 LOD, its scale, vertex offset 0, 1 fragment at 0.
  std::string manifest;
  const auto put = [&manifest](const auto v) { manifest.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (int i = 0; i < 3; ++i) put(range);
  for (float v : lo) put(v);
  put(std::uint32_t{1});
  put(range);
  for (int i = 0; i < 3; ++i) put(0.0f);
  put(std::uint32_t{1});
  for (int i = 0; i < 3; ++i) put(std::uint32_t{0});
  put(static_cast<std::uint32_t>(data.size()));
  writeFileAtomically((fs::path(meshFolder) / (std::to_string(id) + ".index")).string(), manifest.data(),
                      manifest.size());
  const std::string info = nlohmann::json{
      {"@type", "neuroglancer_multilod_draco"},
      {"vertex_quantization_bits", 16},
      {"transform", {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}},
      {"lod_scale_multiplier",
       1.0}}.dump(2);
  writeFileAtomically((fs::path(meshFolder) / "info").string(), info.data(), info.size());
}
#else
TriangleMesh readPrecomputedMesh(const std::string& meshFolder, StructureId) {
  throw FileError(meshFolder, "this build reads no Draco meshes (built without libdraco-dev)");
}
void writePrecomputedMesh(const std::string& meshFolder, StructureId, const TriangleMesh&) {
  throw FileError(meshFolder, "this build writes no Draco meshes (built without libdraco-dev)");
}
#endif

} // namespace atlascope
