#include "core/CellFileSet.h"

#include "core/AbcLayout.h"
#include "core/ConvertCells.h"
#include "core/Csv.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unordered_map>
#include <unordered_set>

namespace atlascope {

namespace {
bool isDirectory(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool endsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}
bool isCellFile(const std::string& name) { return isTablePath(name) || endsWith(name, ".h5ad"); }
std::string baseName(const std::string& p) { return p.substr(p.find_last_of('/') + 1); }
std::string stem(const std::string& p) {
  const std::string b = baseName(p);
  return b.substr(0, b.find_last_of('.') == std::string::npos || b.find_last_of('.') == 0 ? b.size()
                                                                                          : b.find_last_of('.'));
}

// "slice2" before "slice10": digit runs compare as numbers.
bool naturalLess(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string listed(const std::vector<std::string>& names, std::size_t most = 8) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < most; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > most) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

// Names in `a` that `b` lacks, in `a`'s order.
std::vector<std::string> missingFrom(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const std::unordered_set<std::string> in(b.begin(), b.end());
  std::vector<std::string> out;
  for (const auto& x : a)
    if (!in.count(x)) out.push_back(x);
  return out;
}

// One file of the set as read: its cells (no expression yet), its non-gene columns and ids.
struct Member {
  std::string path;
  CellTable cells;
  std::vector<std::string> otherColumns; // columns that are not genes (sorted)
  std::vector<std::string> ids;          // per kept cell
  bool hasSectionColumn = true;
};

Member readMember(const std::string& path, const ColumnOptions& columns) {
  Member m;
  m.path = path;
  m.cells = readCellTable(path, columns);
  std::vector<std::string> all = listObsColumns(path);
  if (isTablePath(path)) {
    const std::string given = columns.section;
    m.hasSectionColumn = given == "-" ? false : !given.empty() || !guessCsvColumns(all).section.empty();
    if (m.cells.size() == 0) throw FileError(path, "no cells (an empty table: a header and no rows)");
  } else if (m.cells.size() == 0) {
    throw FileError(path, "no cells");
  }
  const std::unordered_set<std::string> genes(m.cells.genes.begin(), m.cells.genes.end());
  for (const auto& c : all)
    if (!genes.count(c)) m.otherColumns.push_back(c);
  std::sort(m.otherColumns.begin(), m.otherColumns.end());
  const std::vector<std::string> ids = readCellIds(path, columns);
  for (const std::int64_t r : m.cells.fileRow)
    m.ids.push_back(r < static_cast<std::int64_t>(ids.size()) ? ids[static_cast<std::size_t>(r)] : std::to_string(r));
  return m;
}
} // namespace

std::vector<std::string> cellFileSet(const std::vector<std::string>& arguments) {
  std::vector<std::string> files;
  for (const auto& a : arguments) {
    if (!isDirectory(a)) {
      files.push_back(a);
      continue;
    }
    // An ABC download folder (its metadata found below it) is one dataset of its own kind.
    if (arguments.size() == 1 && findAbcLayout(a)) return {};
    std::vector<std::string> names;
    for (const auto& n : listFolder(a))
      if (isCellFile(n) && n[0] != '.') names.push_back(n);
    if (names.empty()) throw FileError(a, "a folder without cell tables (.csv, .tsv, .h5ad)");
    std::sort(names.begin(), names.end(), naturalLess);
    for (const auto& n : names) files.push_back(a + (endsWith(a, "/") ? "" : "/") + n);
  }
  if (files.size() <= 1 && (arguments.size() != 1 || !isDirectory(arguments[0]))) return {};
  return files;
}

FileSetSummary combineCellFiles(const std::vector<std::string>& files, const ColumnOptions& columns,
                                const FileSetOptions& options, const std::string& out, const Progress& progress) {
  if (files.empty()) throw Error("no files to combine");
  std::optional<std::regex> sectionPattern;
  if (!options.sectionFromFilename.empty()) {
    try {
      sectionPattern.emplace(options.sectionFromFilename);
    } catch (const std::regex_error& e) {
      throw Error("--section-from-filename '" + options.sectionFromFilename + "' is not a regular expression (" +
                  e.what() + ")");
    }
  }
  FileSetSummary s;
  s.files = files.size();
  std::vector<Member> members;
  for (std::size_t f = 0; f < files.size(); ++f) {
    progress("checking files", static_cast<std::int64_t>(f), static_cast<std::int64_t>(files.size()));
    members.push_back(readMember(files[f], columns));
    const Member& m = members.back();
    const Member& first = members.front();
    if (m.otherColumns != first.otherColumns) {
      const auto lacks = missingFrom(first.otherColumns, m.otherColumns),
                 extra = missingFrom(m.otherColumns, first.otherColumns);
      throw FileError(
          m.path,
          "has other columns than " + first.path + (lacks.empty() ? "" : ": lacks " + listed(lacks)) +
              (extra.empty() ? "" : std::string(lacks.empty() ? ":" : ";") + " has " + listed(extra) + " in addition") +
              " (every file of a dataset needs the same columns)");
    }
    if (m.cells.hasCcf() != first.cells.hasCcf())
      throw FileError(m.path, std::string(m.cells.hasCcf() ? "has" : "has no") + " CCF coordinates but " + first.path +
                                  (first.cells.hasCcf() ? " has" : " has none"));
    if (!options.commonGenes && m.cells.genes != first.cells.genes) {
      const auto lacks = missingFrom(first.cells.genes, m.cells.genes),
                 extra = missingFrom(m.cells.genes, first.cells.genes);
      if (!lacks.empty() || !extra.empty())
        throw FileError(
            m.path,
            "its gene panel differs from " + first.path + "'s" + (lacks.empty() ? "" : ": lacks " + listed(lacks)) +
                (extra.empty() ? ""
                               : std::string(lacks.empty() ? ":" : ";") + " has " + listed(extra) + " in addition") +
                " (--genes common keeps the genes all files have)");
    }
  }

  // The panel: the first file's genes (those every file has with --genes common).
  std::vector<std::string> genes = members.front().cells.genes;
  for (const Member& m : members) {
    const auto lacks = missingFrom(genes, m.cells.genes);
    for (const auto& g : lacks) s.droppedGenes.push_back(g);
    if (!lacks.empty()) {
      const std::unordered_set<std::string> drop(lacks.begin(), lacks.end());
      genes.erase(std::remove_if(genes.begin(), genes.end(), [&](const std::string& g) { return drop.count(g) > 0; }),
                  genes.end());
    }
  }
  for (const Member& m : members)
    for (const auto& g : missingFrom(m.cells.genes, members.front().cells.genes)) s.droppedGenes.push_back(g);
  std::sort(s.droppedGenes.begin(), s.droppedGenes.end());
  s.droppedGenes.erase(std::unique(s.droppedGenes.begin(), s.droppedGenes.end()), s.droppedGenes.end());
  if (genes.empty()) throw Error("the files have no gene in common (" + files.front() + " and the others)");

  // Sections, types and ids of the combined table.
  auto sectionOf = [&](const Member& m, std::int32_t code) -> std::string {
    if (sectionPattern) {
      std::smatch match;
      const std::string name = baseName(m.path);
      if (!std::regex_search(name, match, *sectionPattern))
        throw FileError(m.path,
                        "its name does not match --section-from-filename '" + options.sectionFromFilename + "'");
      return match.size() > 1 && match[1].matched ? match[1].str() : match[0].str();
    }
    if (!m.hasSectionColumn) return stem(m.path);
    return m.cells.sectionNames[static_cast<std::size_t>(code)];
  };
  std::set<std::string> sectionSet, typeSet;
  for (const Member& m : members) {
    for (std::size_t i = 0; i < m.cells.sectionNames.size(); ++i)
      sectionSet.insert(sectionOf(m, static_cast<std::int32_t>(i)));
    typeSet.insert(m.cells.types.names.begin(), m.cells.types.names.end());
  }
  CellTable t;
  t.sectionNames.assign(sectionSet.begin(), sectionSet.end());
  std::sort(t.sectionNames.begin(), t.sectionNames.end(), naturalLess);
  t.types.names.assign(typeSet.begin(), typeSet.end());
  std::unordered_map<std::string, std::int32_t> sectionCode, typeCode;
  for (std::size_t i = 0; i < t.sectionNames.size(); ++i) sectionCode[t.sectionNames[i]] = static_cast<std::int32_t>(i);
  for (std::size_t i = 0; i < t.types.names.size(); ++i) typeCode[t.types.names[i]] = static_cast<std::int32_t>(i);

  std::unordered_set<std::string> seen;
  bool collide = false;
  for (const Member& m : members) {
    std::unordered_set<std::string> own;
    for (const auto& id : m.ids) {
      if (!own.insert(id).second) throw FileError(m.path, "duplicate cell id '" + id + "'");
      if (seen.count(id)) collide = true;
    }
    seen.insert(own.begin(), own.end());
  }
  s.prefixedIds = collide;
  std::vector<std::string> ids;
  for (const Member& m : members) {
    const CellTable& c = m.cells;
    for (std::int64_t i = 0; i < c.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      t.x.push_back(c.x[k]);
      t.y.push_back(c.y[k]);
      t.section.push_back(sectionCode[sectionOf(m, c.section[k])]);
      t.cellType.push_back(c.cellType[k] < 0 ? -1 : typeCode[c.types.names[static_cast<std::size_t>(c.cellType[k])]]);
      if (c.hasCcf()) {
        t.ccfAp.push_back(c.ccfAp[k]);
        t.ccfDv.push_back(c.ccfDv[k]);
        t.ccfMl.push_back(c.ccfMl[k]);
      }
      ids.push_back(collide ? stem(m.path) + ":" + m.ids[k] : m.ids[k]);
      t.fileRow.push_back(static_cast<std::int64_t>(t.fileRow.size()));
    }
    s.skipped += c.skippedCells;
  }
  if (collide) {
    std::unordered_set<std::string> unique(ids.begin(), ids.end());
    if (unique.size() != ids.size())
      throw Error("cell ids repeat across files even with the file name before them (two files of one name in "
                  "different folders?)");
  }
  s.cells = t.size();
  s.sections = t.sectionNames.size();
  s.genes = genes.size();
  // The type column keeps the name it was given by; found by name (cell_type) otherwise.
  if (!t.types.names.empty()) s.typeColumn = columns.type.empty() ? "cell_type" : columns.type;

  // Expression, file by file, in the panel's order.
  const auto G = static_cast<std::int64_t>(genes.size());
  writeCellsH5ad(
      out, t, ids, genes, s.typeColumn.empty() ? "cell_type" : s.typeColumn,
      [&](const RowSink& sink) {
        std::int64_t done = 0;
        for (const Member& m : members) {
          const ExpressionSource x(m.path, columns);
          std::unordered_map<std::string, std::int64_t> column;
          for (std::size_t g = 0; g < m.cells.genes.size(); ++g)
            column[m.cells.genes[g]] = static_cast<std::int64_t>(g);
          std::vector<std::int64_t> take;
          for (const auto& g : genes) take.push_back(column.at(g));
          const std::int64_t FG = x.genes(),
                             slab = std::max<std::int64_t>(1, (16ll << 20) / (4 * std::max<std::int64_t>(1, FG)));
          std::vector<float> rows, buf;
          for (std::int64_t c = 0; c < m.cells.size(); c += slab) {
            const std::int64_t n = std::min(slab, m.cells.size() - c);
            // The file rows of these cells in one read (gaps are skipped cells; readers keep file order).
            const std::int64_t first = m.cells.fileRow[static_cast<std::size_t>(c)];
            const std::int64_t span = m.cells.fileRow[static_cast<std::size_t>(c + n - 1)] - first + 1;
            if (span < n) throw FileError(m.path, "rows out of order"); // not a table Atlascope's readers make
            rows.resize(static_cast<std::size_t>(span * FG));
            x.readRows(first, span, rows.data());
            buf.assign(static_cast<std::size_t>(n * G), 0.0f);
            for (std::int64_t i = 0; i < n; ++i) {
              const float* row = rows.data() + (m.cells.fileRow[static_cast<std::size_t>(c + i)] - first) * FG;
              for (std::int64_t g = 0; g < G; ++g)
                buf[static_cast<std::size_t>(i * G + g)] = row[take[static_cast<std::size_t>(g)]];
            }
            sink(buf.data(), n);
            done += n;
            progress("combining files", done, s.cells);
          }
        }
      },
      options.sectionSpacingUm);
  return s;
}

double readSectionSpacing(const std::string& path) {
  if (isTablePath(path) || isDirectory(path)) return 0;
  const Hdf5File f(path);
  if (!f.exists("/uns/section_spacing_um")) return 0;
  const auto v = f.readDouble("/uns/section_spacing_um").data;
  return v.empty() ? 0 : v.front();
}

ColumnOptions combinedColumns(const ColumnOptions& given) {
  ColumnOptions c;
  if (given.type != "-") c.type = given.type;
  return c;
}

std::string combinedCellFiles(const std::vector<std::string>& files, const ColumnOptions& columns,
                              const FileSetOptions& options, FileSetSummary* summary, const Progress& progress) {
  std::ostringstream key;
  for (const auto& f : files) key << fileIdentity(f) << "\n";
  key << columns.x << "|" << columns.y << "|" << columns.section << "|" << columns.type << "|" << columns.id << "|"
      << columns.genes << "|" << columns.ccf << "|" << columns.units << "|" << columns.layer << "|"
      << options.sectionFromFilename << "|" << options.commonGenes << "|" << options.sectionSpacingUm << "|v1";
  char name[40];
  std::snprintf(name, sizeof name, "%016zx.h5ad", std::hash<std::string>{}(key.str()));
  const std::string dir = defaultCacheDir() + "/datasets";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (summary) {
      *summary = FileSetSummary{};
      summary->files = files.size();
      summary->cached = true;
    }
    return path;
  }
  const FileSetSummary s = combineCellFiles(files, columns, options, path, progress);
  if (summary) *summary = s;
  return path;
}

} // namespace atlascope
