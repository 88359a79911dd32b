#include "core/Csv.h"
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/JsonNumber.h"
#include "core/StructureTree.h"

#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace atlascope {
namespace {

using nlohmann::json;

std::array<std::uint8_t, 3> parseHex(std::string hex, const std::string& source, StructureId id) {
  if (!hex.empty() && hex[0] == '#') hex.erase(0, 1);
  if (hex.size() != 6 || !std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c); }))
    throw FileError(source, "structure " + std::to_string(id) + " has an invalid colour " + quote(hex));
  const unsigned long v = std::stoul(hex, nullptr, 16);
  return {static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// The whole of `text` as an integer in [lo, hi], or nothing (atoi is undefined past its range).
std::optional<long long> parseInteger(const std::string& text, long long lo, long long hi) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {}
  return std::nullopt;
}

StructureId parseId(const std::string& text, const std::string& source, const std::string& what) {
  if (const auto v = parseInteger(text, 0, 0xFFFFFFFFLL)) return static_cast<StructureId>(*v);
  throw FileError(source, "invalid " + what + " " + quote(text));
}

// A graph_order that is not an int is an error naming its line.
int parseGraphOrder(const std::string& text, const std::string& source, std::size_t line) {
  if (const auto v = parseInteger(text, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()))
    return static_cast<int>(*v);
  throw FileError(source, "invalid graph_order " + quote(text) + " on line " + std::to_string(line));
}

// "/997/8/567/" -> {997, 8, 567}
std::vector<StructureId> parsePathString(const std::string& s, const std::string& source) {
  std::vector<StructureId> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, '/'))
    if (!part.empty()) out.push_back(parseId(part, source, "structure_id_path entry"));
  return out;
}

StructureId jsonId(const json& v, const std::string& source, const char* what) {
  // Ids are 32-bit label values; a larger one would silently alias another structure.
  if (const auto i = jsonInteger(v, 0, 0xFFFFFFFFll)) return static_cast<StructureId>(*i);
  if (v.is_string()) return parseId(v.get<std::string>(), source, what);
  throw FileError(source, std::string("invalid ") + what + ": " + quote(v.dump()));
}

std::string jsonString(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

std::array<std::uint8_t, 3> jsonColour(const json& obj, const std::string& source, StructureId id) {
  if (const auto it = obj.find("rgb_triplet"); it != obj.end() && it->is_array() && it->size() == 3) {
    std::array<std::uint8_t, 3> rgb{};
    for (int c = 0; c < 3; ++c)
      rgb[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(jsonIntegerOrThrow(
          (*it)[static_cast<std::size_t>(c)], 0, 255, source, "colour of structure " + std::to_string(id)));
    return rgb;
  }
  if (const auto it = obj.find("color_hex_triplet"); it != obj.end() && it->is_string())
    return parseHex(it->get<std::string>(), source, id);
  return {255, 255, 255};
}

StructureRecord baseRecord(const json& obj, const std::string& source) {
  if (!obj.is_object() || !obj.contains("id")) throw FileError(source, "a structure entry has no 'id'");
  StructureRecord r;
  r.id = jsonId(obj["id"], source, "structure id");
  r.acronym = jsonString(obj, "acronym");
  r.name = jsonString(obj, "name");
  r.rgb = jsonColour(obj, source, r.id);
  if (const auto it = obj.find("graph_order"); it != obj.end() && it->is_number())
    r.graphOrder =
        static_cast<int>(jsonIntegerOrThrow(*it, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(),
                                            source, "graph_order of structure " + std::to_string(r.id)));
  return r;
}

std::vector<StructureRecord> readFlatJson(const json& list, const std::string& source) {
  std::vector<StructureRecord> out;
  for (const auto& obj : list) {
    StructureRecord r = baseRecord(obj, source);
    std::vector<StructureId> path;
    const auto it = obj.find("structure_id_path");
    if (it == obj.end()) throw FileError(source, "structure " + std::to_string(r.id) + " has no structure_id_path");
    if (it->is_array())
      for (const auto& v : *it) path.push_back(jsonId(v, source, "structure_id_path entry"));
    else if (it->is_string())
      path = parsePathString(it->get<std::string>(), source);
    if (path.empty() || path.back() != r.id)
      throw FileError(source, "structure " + std::to_string(r.id) + ": structure_id_path does not end with its own id");
    if (path.size() >= 2) r.parentId = path[path.size() - 2];
    out.push_back(std::move(r));
  }
  return out;
}

void collectNested(const json& obj, std::optional<StructureId> parent, const std::string& source,
                   std::vector<StructureRecord>& out, int depth) {
  if (depth > 1000) throw FileError(source, "the nested ontology is deeper than 1000 levels");
  StructureRecord r = baseRecord(obj, source);
  r.parentId = parent;
  const StructureId id = r.id;
  out.push_back(std::move(r));
  if (const auto it = obj.find("children"); it != obj.end() && it->is_array())
    for (const auto& child : *it) collectNested(child, id, source, out, depth + 1);
}

std::vector<StructureRecord> readCsv(const std::string& path) {
  CsvReader csv(path);
  const std::size_t idCol = csv.requireColumn("id");
  const auto parentCol = csv.column("parent_structure_id");
  const auto pathCol = csv.column("structure_id_path");
  if (!parentCol && !pathCol)
    throw FileError(path, "missing required column 'parent_structure_id' (or 'structure_id_path')");
  const auto acrCol = csv.column("acronym"), nameCol = csv.column("name");
  const auto colourCol = csv.column("color_hex_triplet"), orderCol = csv.column("graph_order");
  std::vector<StructureRecord> out;
  std::vector<std::string> f;
  while (csv.next(f)) {
    StructureRecord r;
    r.id = parseId(f[idCol], path, "id on line " + std::to_string(csv.line()));
    if (acrCol) r.acronym = f[*acrCol];
    if (nameCol) r.name = f[*nameCol];
    if (colourCol && !f[*colourCol].empty()) r.rgb = parseHex(f[*colourCol], path, r.id);
    if (orderCol && !f[*orderCol].empty())
      r.graphOrder = parseGraphOrder(f[*orderCol], path, csv.line());
    else
      r.graphOrder = static_cast<int>(out.size());
    if (parentCol) {
      if (!f[*parentCol].empty())
        r.parentId = parseId(f[*parentCol], path, "parent_structure_id on line " + std::to_string(csv.line()));
    } else {
      const auto p = parsePathString(f[*pathCol], path);
      if (p.size() >= 2) r.parentId = p[p.size() - 2];
    }
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace

StructureTree readOntology(const std::string& path) {
  const auto bytes = readFileBytes(path);
  std::size_t first = 0;
  while (first < bytes.size() && std::isspace(bytes[first])) ++first;
  if (first == bytes.size()) throw FileError(path, "empty ontology file");
  if (bytes[first] != '[' && bytes[first] != '{') return StructureTree::fromRecords(readCsv(path), path);

  json doc;
  try {
    doc = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double is json::out_of_range (406). Either
    // way the library's text is wrapped with what was being read.
    throw FileError(path, std::string("invalid JSON (reading the ontology): ") + e.what());
  }
  if (doc.is_object() && doc.contains("msg")) doc = doc["msg"]; // Allen API envelope
  if (doc.is_object()) doc = json::array({doc});
  if (!doc.is_array() || doc.empty()) throw FileError(path, "no structures in the JSON");
  try {
    const json& first0 = doc[0];
    if (first0.is_object() && first0.contains("children")) {
      std::vector<StructureRecord> records;
      for (const auto& top : doc) collectNested(top, std::nullopt, path, records, 0);
      return StructureTree::fromRecords(std::move(records), path);
    }
    if (first0.is_object() && first0.contains("structure_id_path"))
      return StructureTree::fromRecords(readFlatJson(doc, path), path);
  } catch (const json::exception& e) {
    throw FileError(path, std::string("reading the ontology's structures: unexpected JSON content: ") + e.what());
  }
  throw FileError(path, "unrecognised ontology JSON (neither 'children' lists nor 'structure_id_path')");
}

} // namespace atlascope
