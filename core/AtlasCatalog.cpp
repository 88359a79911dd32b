#include "core/AtlasCatalog.h"

#include "core/Csv.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Gzip.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace atlascope {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string home() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/root";
}

std::string expandUser(const std::string& p) {
  if (!p.empty() && p[0] == '~') return home() + p.substr(1);
  return p;
}

// "1.2" / "1_2" -> {1, 2}; non-numbers sort first.
std::vector<long> versionKey(const std::string& v) {
  std::vector<long> out;
  std::string part;
  std::stringstream in(v);
  while (std::getline(in, part, v.find('_') != std::string::npos && v.find('.') == std::string::npos ? '_' : '.')) {
    char* end = nullptr;
    const long n = std::strtol(part.c_str(), &end, 10);
    out.push_back(end && *end == 0 && !part.empty() ? n : -1);
  }
  return out;
}

bool isDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool isFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The small JSON metadata of a cached atlas: its version, or a problem.
void readVersion(CachedAtlas& e, const std::string& path) {
  try {
    const auto bytes = readFileBytes(path);
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
    if (j.is_object() && j.contains("version") && j["version"].is_string()) e.version = j["version"].get<std::string>();
  } catch (const std::exception& ex) {
    e.problem = oneLine(ex.what());
  }
}

} // namespace

BrainGlobeFolder brainGlobeFolder() {
  const char* env = std::getenv("BRAINGLOBE_CONFIG_DIR");
  const fs::path configDir = env && *env ? fs::path(env) : fs::path(home()) / ".config" / "brainglobe";
  const fs::path conf = configDir / "bg_config.conf";
  std::ifstream in(conf);
  std::string line, section;
  while (in && std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto eq = line.find_first_of("=:");
    if (eq == std::string::npos) continue;
    if (trim(line.substr(0, eq)) == "brainglobe_dir" && (section.empty() || section == "default_dirs")) {
      const std::string value = expandUser(trim(line.substr(eq + 1)));
      if (!value.empty()) return {value, "bg_config.conf (" + conf.string() + ")"};
    }
  }
  return {(fs::path(home()) / ".brainglobe").string(), "default"};
}

std::vector<CachedAtlas> listCachedAtlases() { return listCachedAtlases(brainGlobeFolder().path); }

std::vector<CachedAtlas> listCachedAtlases(const std::string& dir) {
  std::vector<CachedAtlas> out;
  if (!isDir(dir)) return out;
  // v1: <dir>/<name>_v<major>.<minor>/metadata.json
  for (const std::string& entry : listFolder(dir)) {
    const fs::path folder = fs::path(dir) / entry;
    if (!isFile(folder / "metadata.json")) continue;
    CachedAtlas e;
    e.format = "brainglobe-v1";
    e.path = folder.string();
    const auto v = entry.rfind("_v");
    e.name = v == std::string::npos ? entry : entry.substr(0, v);
    if (v != std::string::npos) e.version = entry.substr(v + 2);
    readVersion(e, (folder / "metadata.json").string());
    out.push_back(std::move(e));
  }
  // v3: <dir>/brainglobe-atlasapi/atlases/<name>/<M_m>/manifest.json
  const fs::path atlases = fs::path(dir) / "brainglobe-atlasapi" / "atlases";
  if (isDir(atlases))
    for (const std::string& name : listFolder(atlases.string())) {
      if (!isDir(atlases / name)) continue;
      for (const std::string& version : listFolder((atlases / name).string())) {
        const fs::path manifest = atlases / name / version / "manifest.json";
        if (!isFile(manifest)) continue;
        CachedAtlas e;
        e.format = "brainglobe-v3";
        e.name = name;
        e.version = version;
        std::replace(e.version.begin(), e.version.end(), '_', '.');
        e.path = manifest.string();
        readVersion(e, e.path);
        out.push_back(std::move(e));
      }
    }
  std::sort(out.begin(), out.end(), [](const CachedAtlas& a, const CachedAtlas& b) {
    if (a.name != b.name) return a.name < b.name;
    if (a.format != b.format) return a.format < b.format;
    return versionKey(a.version) < versionKey(b.version);
  });
  return out;
}

namespace {

Atlas openNrrd(const std::string& path, const AtlasOpenOptions& options) {
  AtlasPaths p = bundledAtlasPaths();
  p.annotation = path;
  return Atlas::load(p, options.progress);
}

// A path on disk: what kind of atlas it is.
std::optional<Atlas> openPath(const std::string& path, const AtlasOpenOptions& options) {
  const fs::path p(path);
  if (isDir(p)) {
    if (isFile(p / "metadata.json")) return openBrainGlobeV1(p.string(), options);
    if (isFile(p / "manifest.json")) return openBrainGlobeV3((p / "manifest.json").string(), options);
    // atlases/<name>/: the newest version inside.
    std::vector<std::string> versions;
    for (const auto& v : listFolder(p.string()))
      if (isFile(p / v / "manifest.json")) versions.push_back(v);
    if (!versions.empty()) {
      std::sort(versions.begin(), versions.end(),
                [](const std::string& a, const std::string& b) { return versionKey(a) < versionKey(b); });
      return openBrainGlobeV3((p / versions.back() / "manifest.json").string(), options);
    }
    throw FileError(path, "not an atlas folder: no metadata.json (BrainGlobe v1) or manifest.json (BrainGlobe v3)");
  }
  if (isFile(p)) {
    const std::string file = p.filename().string();
    if (file == "metadata.json") return openBrainGlobeV1(p.parent_path().string(), options);
    if (p.extension() == ".json") return openBrainGlobeV3(p.string(), options);
    const std::string lower = [&] {
      std::string s = file;
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
      return s;
    }();
    for (const char* ext : {".nrrd", ".nhdr", ".nii", ".nii.gz", ".hdr"})
      if (lower.size() > std::strlen(ext) &&
          lower.compare(lower.size() - std::strlen(ext), std::string::npos, ext) == 0)
        return openNrrd(p.string(), options);
    throw FileError(path, "not an atlas: expected a BrainGlobe folder, a manifest.json, or a label volume (.nrrd, "
                          ".nii)");
  }
  return std::nullopt;
}

} // namespace

Atlas openAtlas(const std::string& nameOrPath, const AtlasOpenOptions& options) {
  if (nameOrPath.empty() || nameOrPath == kBundledAtlasName) return Atlas::load(bundledAtlasPaths(), options.progress);
  const bool looksLikePath = nameOrPath.find('/') != std::string::npos || nameOrPath[0] == '.';
  if (auto a = openPath(nameOrPath, options)) return std::move(*a);
  if (looksLikePath) throw FileError(nameOrPath, "no such file or folder");
  // A name: v3 first (brainglobe-atlasapi 3.x's layout), newest version; then v1 by name or by
  // its folder name ("allen_mouse_25um_v1.2").
  const BrainGlobeFolder folder = brainGlobeFolder();
  const auto cached = listCachedAtlases(folder.path);
  const CachedAtlas* best = nullptr;
  for (const auto& e : cached) {
    const bool match = e.name == nameOrPath || fs::path(e.path).filename().string() == nameOrPath;
    if (!match) continue;
    if (!best || (best->format != "brainglobe-v3" && e.format == "brainglobe-v3") ||
        (best->format == e.format && versionKey(best->version) < versionKey(e.version)))
      best = &e;
  }
  if (best) {
    if (!best->problem.empty()) throw FileError(best->path, best->problem);
    return best->format == "brainglobe-v3" ? openBrainGlobeV3(best->path, options)
                                           : openBrainGlobeV1(best->path, options);
  }
  std::string known = std::string(kBundledAtlasName);
  int shown = 0;
  for (const auto& e : cached) {
    if (shown++ >= 12) {
      known += ", ...";
      break;
    }
    known += ", " + e.name;
  }
  throw Error("no atlas named " + quote(nameOrPath, 80) + " (known: " + known + "; BrainGlobe folder " + folder.path +
              ", found by " + folder.foundBy + "); give a BrainGlobe atlas folder or manifest.json by path");
}

StructureTree readTerminologyCsv(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw FileError(path, "file not found");
  CsvReader csv(path);
  const std::size_t idCol = csv.requireColumn("identifier");
  const auto parentCol = csv.column("parent_identifier"), valueCol = csv.column("annotation_value");
  const auto nameCol = csv.column("name"), abbrCol = csv.column("abbreviation");
  const auto colourCol = csv.column("color_hex_triplet"), pathCol = csv.column("root_identifier_path");
  if (!parentCol && !pathCol) throw FileError(path, "neither 'parent_identifier' nor 'root_identifier_path'");
  const auto number = [&](const std::string& text, const char* what) {
    const std::string t = trim(text);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
    if (t.empty() || !end || *end != 0 || t[0] == '-' || v > 0xFFFFFFFFull)
      throw FileError(path, "line " + std::to_string(csv.line()) + ": " + what + " " + quote(text, 30) +
                                " is not a structure id");
    return static_cast<StructureId>(v);
  };
  struct Row {
    StructureRecord r;
    StructureId identifier = 0;
    std::optional<StructureId> parentIdentifier;
  };
  std::vector<Row> rows;
  std::unordered_map<StructureId, StructureId> valueOf; // identifier -> annotation value
  std::vector<std::string> f;
  while (csv.next(f)) {
    Row row;
    row.identifier = number(f[idCol], "identifier");
    row.r.id = valueCol && !trim(f[*valueCol]).empty() ? number(f[*valueCol], "annotation_value") : row.identifier;
    if (nameCol) row.r.name = f[*nameCol];
    if (abbrCol) row.r.acronym = f[*abbrCol];
    if (colourCol) {
      std::string hex = trim(f[*colourCol]);
      if (!hex.empty() && hex[0] == '#') hex.erase(0, 1);
      if (hex.size() == 6 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos)
        for (int i = 0; i < 3; ++i)
          row.r.rgb[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(
              std::strtoul(hex.substr(static_cast<std::size_t>(2 * i), 2).c_str(), nullptr, 16));
      else if (!hex.empty())
        throw FileError(path, "line " + std::to_string(csv.line()) + ": colour " + quote(f[*colourCol], 20) +
                                  " is not #RRGGBB");
    }
    if (parentCol && !trim(f[*parentCol]).empty()) {
      row.parentIdentifier = number(f[*parentCol], "parent_identifier");
    } else if (!parentCol && pathCol) {
      // "[997, 8, 567]": the parent is the second-last.
      std::vector<StructureId> ids;
      std::string t;
      for (char c : f[*pathCol]) {
        if (c >= '0' && c <= '9') {
          t += c;
        } else if (!t.empty()) {
          ids.push_back(number(t, "root_identifier_path entry"));
          t.clear();
        }
      }
      if (!t.empty()) ids.push_back(number(t, "root_identifier_path entry"));
      if (ids.size() >= 2) row.parentIdentifier = ids[ids.size() - 2];
    }
    row.r.graphOrder = static_cast<int>(rows.size());
    valueOf[row.identifier] = row.r.id;
    rows.push_back(std::move(row));
  }
  std::vector<StructureRecord> records;
  records.reserve(rows.size());
  for (auto& row : rows) {
    if (row.parentIdentifier) {
      const auto it = valueOf.find(*row.parentIdentifier);
      if (it == valueOf.end())
        throw FileError(path, "structure " + std::to_string(row.identifier) + " names parent " +
                                  std::to_string(*row.parentIdentifier) + ", which is not in the file");
      row.r.parentId = it->second;
    }
    records.push_back(std::move(row.r));
  }
  if (records.empty()) throw FileError(path, "no structures in the terminology");
  return StructureTree::fromRecords(std::move(records), path);
}

#ifndef ATLASCOPE_HAS_BRAINGLOBE
bool brainGlobeSupported() { return false; }
Atlas openBrainGlobeV1(const std::string& folder, const AtlasOpenOptions&) {
  throw FileError(folder, "this build reads no BrainGlobe atlases (built without libtiff, c-blosc and zstd)");
}
Atlas openBrainGlobeV3(const std::string& manifest, const AtlasOpenOptions&) {
  throw FileError(manifest, "this build reads no BrainGlobe atlases (built without libtiff, c-blosc and zstd)");
}
#endif

} // namespace atlascope
