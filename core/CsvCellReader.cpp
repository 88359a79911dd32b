// Plain CSV/TSV cell tables with a column mapping (the MERFISH slice in ../shared/data/merfish:
// `index,cell_volume,pos_x,pos_y` + 254 gene columns, positions in um, no types).
#include "core/CellTable.h"
#include "core/Csv.h"
#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

namespace atlascope {

namespace {
// The names each role is recognised by when no column is given (first match wins).
const std::vector<const char*> kXNames{"x", "pos_x", "center_x", "x_um", "spatial_x"};
const std::vector<const char*> kYNames{"y", "pos_y", "center_y", "y_um", "spatial_y"};
const std::vector<const char*> kSectionNames{"brain_section_label", "section", "section_id", "slice"};
const std::vector<const char*> kTypeNames{"subclass", "cell_type", "celltype", "celltype_leiden"};
const std::vector<const char*> kIdNames{"cell_label", "index", "cell_id", "cell"};

std::optional<std::size_t> pick(const CsvReader& csv, const std::string& given,
                                const std::vector<const char*>& defaults, const char* what) {
  if (given == "-") return std::nullopt; // explicitly none (a column-mapping dialog's "(none)")
  if (!given.empty()) {
    const auto c = csv.column(given);
    if (!c) throw FileError(csv.name(), "missing required column '" + given + "' (given as the " + what + " column)");
    return c;
  }
  for (const char* d : defaults)
    if (auto c = csv.column(d)) return c;
  return std::nullopt;
}

bool parseNumber(const std::string& s, double& out) {
  if (s.empty()) {
    out = std::nan("");
    return true;
  }
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0';
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else
      cur += c;
  }
  out.push_back(cur);
  return out;
}
} // namespace

CellTable readCsvCells(const std::string& path, const ColumnOptions& opt, std::vector<float>* expression) {
  CsvReader csv(path);
  const double scale = opt.units == "mm" ? 1000.0 : 1.0;
  const auto xCol = pick(csv, opt.x, kXNames, "x");
  const auto yCol = pick(csv, opt.y, kYNames, "y");
  if (!xCol) throw FileError(path, "missing required column 'x' (or pos_x; give --x COL)");
  if (!yCol) throw FileError(path, "missing required column 'y' (or pos_y; give --y COL)");
  const auto secCol = pick(csv, opt.section, kSectionNames, "section");
  const auto typeCol = pick(csv, opt.type, kTypeNames, "type");
  const auto idCol = pick(csv, opt.id, kIdNames, "id");
  std::vector<std::size_t> ccfCols;
  if (!opt.ccf.empty()) {
    for (const auto& name : split(opt.ccf, ',')) {
      const auto c = csv.column(name);
      if (!c) throw FileError(path, "missing required column '" + name + "' (given in --ccf)");
      ccfCols.push_back(*c);
    }
    if (ccfCols.size() != 3) throw FileError(path, "--ccf needs three columns: AP,DV,ML");
  }

  // Gene columns.
  std::vector<std::size_t> geneCols;
  std::vector<std::string> row;
  const auto& header = csv.header();
  bool haveFirst = csv.next(row);
  if (!opt.genes.empty()) {
    const auto dots = opt.genes.find("..");
    if (dots != std::string::npos) {
      const auto a = csv.column(opt.genes.substr(0, dots)), b = csv.column(opt.genes.substr(dots + 2));
      if (!a || !b || *a > *b)
        throw FileError(path, "--genes " + quote(opt.genes) + ": columns not found or in the wrong order");
      for (std::size_t c = *a; c <= *b; ++c) geneCols.push_back(c);
    } else {
      for (const auto& name : split(opt.genes, ',')) {
        const auto c = csv.column(name);
        if (!c) throw FileError(path, "missing gene column " + quote(name));
        geneCols.push_back(*c);
      }
    }
  } else if (haveFirst) {
    static const std::set<std::string> metadata = {"cell_volume",
                                                   "volume",
                                                   "fov",
                                                   "area",
                                                   "z",
                                                   "x",
                                                   "y",
                                                   "cell_label",
                                                   "index",
                                                   "cell_id",
                                                   "cell",
                                                   "section",
                                                   "brain_section_label",
                                                   "Unnamed: 0",
                                                   "total_counts",
                                                   "n_genes",
                                                   "cluster",
                                                   "leiden"};
    std::set<std::size_t> mapped;
    for (const auto& c : {xCol, yCol, secCol, typeCol, idCol})
      if (c) mapped.insert(*c);
    for (std::size_t c : ccfCols) mapped.insert(c);
    for (std::size_t c = 0; c < header.size(); ++c) {
      double v;
      if (mapped.count(c) || metadata.count(header[c]) || !parseNumber(row[c], v)) continue;
      geneCols.push_back(c);
    }
  }

  CellTable t;
  t.source = path;
  for (std::size_t c : geneCols) t.genes.push_back(header[c]);
  std::map<std::string, std::int32_t> sections, types;
  std::vector<std::string> rawSection, rawType;
  std::unordered_set<std::string> ids;
  std::int64_t line = 0;
  for (bool ok = haveFirst; ok; ok = csv.next(row), ++line) {
    auto number = [&](std::size_t c, const char* what) {
      double v;
      if (!parseNumber(row[c], v))
        throw FileError(path, "line " + std::to_string(csv.line()) + ": column " + quote(header[c]) + " (" + what +
                                  ") holds " + quote(row[c]) + ", not a number");
      return v;
    };
    if (idCol && !row[*idCol].empty() && !ids.insert(row[*idCol]).second)
      throw FileError(path, "line " + std::to_string(csv.line()) + ": duplicate cell id " + quote(row[*idCol]));
    const double x = number(*xCol, "x"), y = number(*yCol, "y");
    std::vector<double> ccf;
    for (std::size_t c : ccfCols) ccf.push_back(number(c, "CCF"));
    std::vector<float> genes;
    genes.reserve(geneCols.size());
    for (std::size_t c : geneCols) genes.push_back(static_cast<float>(number(c, "gene")));
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++t.skippedCells;
      continue;
    }
    t.fileRow.push_back(line);
    t.x.push_back(static_cast<float>(x * scale));
    t.y.push_back(static_cast<float>(y * scale));
    rawSection.push_back(secCol ? row[*secCol] : std::string("section 1"));
    rawType.push_back(typeCol ? row[*typeCol] : std::string());
    if (!ccf.empty()) {
      t.ccfAp.push_back(static_cast<float>(ccf[0] * scale));
      t.ccfDv.push_back(static_cast<float>(ccf[1] * scale));
      t.ccfMl.push_back(static_cast<float>(ccf[2] * scale));
    }
    if (expression) expression->insert(expression->end(), genes.begin(), genes.end());
  }
  if (t.skippedCells > 0) t.skippedReason = "NaN or infinite position";
  // Categories in sorted order (the ABC's names sort by their numeric prefix).
  for (const auto& s : rawSection) sections.emplace(s, 0);
  for (auto& [name, code] : sections) {
    code = static_cast<std::int32_t>(t.sectionNames.size());
    t.sectionNames.push_back(name);
  }
  for (const auto& s : rawSection) t.section.push_back(sections[s]);
  if (typeCol) {
    for (const auto& s : rawType) types.emplace(s, 0);
    for (auto& [name, code] : types) {
      code = static_cast<std::int32_t>(t.types.names.size());
      t.types.names.push_back(name);
    }
    for (const auto& s : rawType) t.cellType.push_back(types[s]);
  } else {
    t.cellType.assign(t.x.size(), -1);
  }
  return t;
}

ColumnOptions guessCsvColumns(const std::vector<std::string>& header) {
  ColumnOptions c;
  auto first = [&](const std::vector<const char*>& names) {
    for (const char* n : names)
      if (std::find(header.begin(), header.end(), n) != header.end()) return std::string(n);
    return std::string();
  };
  c.x = first(kXNames);
  c.y = first(kYNames);
  c.section = first(kSectionNames);
  c.type = first(kTypeNames);
  c.id = first(kIdNames);
  return c;
}

} // namespace atlascope
