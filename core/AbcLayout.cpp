#include "core/AbcLayout.h"

#include "core/AnnDataValidation.h"
#include "core/Csv.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/Palette.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sys/stat.h>
#include <unordered_map>

namespace atlascope {

bool isFolder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {
bool endsWith(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

void search(const std::string& dir, int depth, std::vector<std::string>& files) {
  if (depth > 6) return;
  for (const std::string& name : listFolder(dir)) {
    const std::string p = dir + "/" + name;
    if (isFolder(p))
      search(p, depth + 1, files);
    else
      files.push_back(p);
  }
}

double number(const std::string& s) {
  if (s.empty() || s == "NA" || s == "nan" || s == "NaN") return std::nan("");
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end && *end == '\0' ? v : std::nan("");
}
} // namespace

std::optional<AbcLayout> findAbcLayout(const std::string& folder) {
  std::vector<std::string> files;
  search(folder, 0, files);
  std::sort(files.begin(), files.end());
  AbcLayout l;
  for (const auto& f : files) {
    const std::string name = f.substr(f.rfind('/') + 1);
    if (name == "cell_metadata_with_cluster_annotation.csv")
      l.metadata = f;
    else if (l.metadata.empty() && name.rfind("cell_metadata", 0) == 0 && endsWith(name, ".csv"))
      l.metadata = f;
    else if (name == "ccf_coordinates.csv")
      l.ccf = f;
    else if (endsWith(name, ".h5ad") && (l.expression.empty() || name.find("log2") != std::string::npos))
      l.expression = f;
  }
  // The annotation view wins over the plain metadata wherever it comes in the listing.
  for (const auto& f : files)
    if (endsWith(f, "/cell_metadata_with_cluster_annotation.csv")) l.metadata = f;
  if (l.metadata.empty()) return std::nullopt;
  if (l.expression.empty())
    throw FileError(folder, "has ABC cell metadata (" + l.metadata + ") but no expression .h5ad");
  return l;
}

std::unordered_map<std::string, std::int64_t> abcExpressionRows(const AbcLayout& L) {
  Hdf5File f(L.expression);
  validateAnnDataFile(f);
  const std::string index = dataframeIndexName(f, "/obs");
  if (!f.exists("/obs/" + index))
    throw FileError(L.expression, "obs has no index (cell_label) to join the metadata by");
  const auto labels = f.readStrings("/obs/" + index);
  std::unordered_map<std::string, std::int64_t> rowOf;
  rowOf.reserve(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) rowOf.emplace(labels[i], static_cast<std::int64_t>(i));
  return rowOf;
}

CellTable readAbcCells(const AbcLayout& L, const ColumnOptions& opt) {
  // The expression matrix's rows by cell_label, and its genes (symbols when var has them).
  const std::unordered_map<std::string, std::int64_t> rowOf = abcExpressionRows(L);
  CellTable t;
  t.source = L.metadata;
  {
    Hdf5File f(L.expression);
    const std::string varIndex = dataframeIndexName(f, "/var");
    if (f.exists("/var/gene_symbol"))
      t.genes = f.readStrings("/var/gene_symbol");
    else if (f.exists("/var/" + varIndex))
      t.genes = f.readStrings("/var/" + varIndex);
  }
  // CCF coordinates by cell_label (mm).
  std::unordered_map<std::string, std::array<float, 3>> ccf;
  if (!L.ccf.empty()) {
    CsvReader c(L.ccf);
    const std::size_t label = c.requireColumn("cell_label"), x = c.requireColumn("x"), y = c.requireColumn("y"),
                      z = c.requireColumn("z");
    std::vector<std::string> row;
    while (c.next(row))
      ccf[row[label]] = {static_cast<float>(number(row[x]) * 1000), static_cast<float>(number(row[y]) * 1000),
                         static_cast<float>(number(row[z]) * 1000)};
  }
  CsvReader m(L.metadata);
  const std::size_t label = m.requireColumn("cell_label");
  const std::size_t sec = m.requireColumn(opt.section.empty() ? "brain_section_label" : opt.section);
  const std::size_t xs = m.requireColumn(opt.x.empty() ? "x" : opt.x),
                    ys = m.requireColumn(opt.y.empty() ? "y" : opt.y);
  const std::string typeName = !opt.type.empty() ? opt.type : (m.column("subclass") ? "subclass" : "");
  const bool hasType = !typeName.empty();
  const std::size_t type = hasType ? m.requireColumn(typeName) : 0;
  const std::optional<std::size_t> colour = hasType ? m.column(typeName + "_color") : std::nullopt;
  const double scale = opt.units == "um" && !opt.x.empty() ? 1.0 : 1000.0; // the ABC's positions are in mm
  std::map<std::string, std::int32_t> sections, types;
  std::map<std::string, std::array<std::uint8_t, 3>> colours;
  std::vector<std::string> sectionOf, typeOf;
  std::int64_t notExpressed = 0, badPosition = 0;
  std::vector<std::string> row;
  while (m.next(row)) {
    const auto it = rowOf.find(row[label]);
    if (it == rowOf.end()) {
      ++notExpressed;
      continue;
    }
    const double x = number(row[xs]), y = number(row[ys]);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++badPosition;
      continue;
    }
    t.x.push_back(static_cast<float>(x * scale));
    t.y.push_back(static_cast<float>(y * scale));
    t.fileRow.push_back(it->second);
    sectionOf.push_back(row[sec]);
    sections.emplace(row[sec], 0);
    if (hasType) {
      typeOf.push_back(row[type]); // "NA" is a taxonomy name, not a missing value
      types.emplace(row[type], 0);
      if (colour) colours.emplace(row[type], parseHexColour(row[*colour]));
    }
    if (!L.ccf.empty()) {
      const auto c = ccf.find(row[label]);
      const std::array<float, 3> v = c == ccf.end() ? std::array<float, 3>{NAN, NAN, NAN} : c->second;
      t.ccfAp.push_back(v[0]);
      t.ccfDv.push_back(v[1]);
      t.ccfMl.push_back(v[2]);
    }
  }
  for (auto& [name, code] : sections) {
    code = static_cast<std::int32_t>(t.sectionNames.size());
    t.sectionNames.push_back(name);
  }
  for (auto& [name, code] : types) { // taxonomy names begin with a zero-padded id: sorted = by id
    code = static_cast<std::int32_t>(t.types.names.size());
    t.types.names.push_back(name);
    if (colour) t.types.colours.push_back(colours[name]);
  }
  for (const auto& s : sectionOf) t.section.push_back(sections[s]);
  if (hasType)
    for (const auto& s : typeOf) t.cellType.push_back(types[s]);
  else
    t.cellType.assign(t.x.size(), -1);
  t.skippedCells = notExpressed + badPosition;
  if (t.skippedCells > 0)
    t.skippedReason = std::to_string(notExpressed) + " not in the expression matrix, " + std::to_string(badPosition) +
                      " without a finite position";
  if (t.x.empty())
    throw FileError(L.metadata, "no cell of the metadata is in " + L.expression + " (joined by cell_label)");
  return t;
}

} // namespace atlascope
