#include "core/ConvertCells.h"

#include "core/AbcLayout.h"
#include "core/AnnDataResults.h"
#include "core/AnnDataValidation.h"
#include "core/AtomicFile.h"
#include "core/CellFileSet.h"
#include "core/Csv.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace atlascope {

namespace {
bool endsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// The kept cells' expression, slab by slab (rows in table order): fn(first cell, count, values).
template <class Fn>
void forEachExpressionSlab(const ExpressionSource& x, const CellTable& t, const Progress& progress, Fn fn) {
  const std::int64_t G = x.genes(), n = t.size();
  const std::int64_t slab = std::max<std::int64_t>(1, (32ll << 20) / (4 * std::max<std::int64_t>(1, G)));
  std::vector<float> rows, kept;
  for (std::int64_t c = 0; c < n; c += slab) {
    const std::int64_t m = std::min(slab, n - c);
    // The file rows these cells come from: one range read when they are close together (gaps
    // are skipped cells), row by row when the reader reordered them (an ABC metadata order).
    const auto b = t.fileRow.begin() + c;
    const auto [lo, hi] = std::minmax_element(b, b + m);
    const std::int64_t first = *lo, span = *hi - *lo + 1;
    kept.resize(static_cast<std::size_t>(m * G));
    if (span <= 4 * m) {
      rows.resize(static_cast<std::size_t>(span * G));
      x.readRows(first, span, rows.data());
      for (std::int64_t i = 0; i < m; ++i) std::copy_n(rows.begin() + (b[i] - first) * G, G, kept.begin() + i * G);
    } else {
      for (std::int64_t i = 0; i < m; ++i) x.readRows(b[i], 1, kept.data() + i * G);
    }
    fn(c, m, kept.data());
    progress("converting", c + m, n);
  }
}
} // namespace

std::vector<std::string> readCellIds(const std::string& path, const ColumnOptions& columns) {
  if (isFolder(path)) {
    const auto layout = findAbcLayout(path);
    if (!layout) throw FileError(path, "a folder without ABC cell metadata (cell_metadata*.csv)");
    return readCellIds(layout->expression);
  }
  std::vector<std::string> ids;
  if (isTablePath(path)) {
    CsvReader csv(path);
    // The id column the cell reader uses (given, or recognised by name); none: row numbers.
    const std::string id = columns.id.empty() ? guessCsvColumns(csv.header()).id : columns.id;
    std::vector<std::string> row;
    if (id.empty() || id == "-") {
      for (std::int64_t r = 0; csv.next(row); ++r) ids.push_back(std::to_string(r));
      return ids;
    }
    const std::size_t col = csv.requireColumn(id);
    while (csv.next(row)) ids.push_back(row[col]);
    return ids;
  }
  Hdf5File f(path);
  validateAnnDataFile(f);
  const std::string index = "/obs/" + dataframeIndexName(f, "/obs");
  if (!f.exists(index)) throw FileError(path, "obs has no index '" + index + "'");
  try {
    return f.readStrings(index);
  } catch (const FileError&) {
    for (const auto v : f.readInt64(index).data) ids.push_back(std::to_string(v));
    return ids;
  }
}

ConvertSummary convertCells(const std::string& in, const ColumnOptions& columns, const std::string& out,
                            const Progress& progress) {
  const bool csv = isTablePath(out);
  if (!csv && !endsWith(out, ".h5ad")) throw Error("convert writes .h5ad or .csv/.tsv (got '" + out + "')");
  progress("reading cells", 0, 1);
  const CellTable t = readCellTable(in, columns);
  const std::vector<std::string> allIds = readCellIds(in, columns);
  const ExpressionSource x(in, columns);
  const std::int64_t n = t.size(), G = x.genes();
  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(n));
  for (const std::int64_t r : t.fileRow)
    ids.push_back(r < static_cast<std::int64_t>(allIds.size()) ? allIds[static_cast<std::size_t>(r)]
                                                               : std::to_string(r));
  std::vector<std::string> genes = t.genes;
  for (std::int64_t g = static_cast<std::int64_t>(genes.size()); g < G; ++g)
    genes.push_back("gene" + std::to_string(g));
  ConvertSummary s{n, G, t.skippedCells, csv ? "csv" : "h5ad"};

  if (csv) {
    const std::string tmp = temporaryPathFor(out);
    {
      std::ofstream o(tmp);
      if (!o) throw FileError(out, "cannot write here");
      const char d = endsWith(out, ".csv") || endsWith(out, ".CSV") ? ',' : '\t';
      auto field = [d](const std::string& v) { return csvField(v, d); };
      o << "cell_label" << d << "x" << d << "y" << d << "section" << d << "cell_type";
      if (t.hasCcf()) o << d << "ccf_ap" << d << "ccf_dv" << d << "ccf_ml";
      for (const auto& g : genes) o << d << field(g);
      o << '\n';
      o.precision(7);
      forEachExpressionSlab(x, t, progress, [&](std::int64_t c0, std::int64_t m, const float* v) {
        for (std::int64_t i = 0; i < m; ++i) {
          const auto c = static_cast<std::size_t>(c0 + i);
          o << field(ids[c]) << d << t.x[c] << d << t.y[c] << d
            << field(t.sectionNames[static_cast<std::size_t>(t.section[c])]) << d
            << (t.cellType[c] >= 0 ? field(t.types.names[static_cast<std::size_t>(t.cellType[c])]) : std::string());
          if (t.hasCcf()) o << d << t.ccfAp[c] << d << t.ccfDv[c] << d << t.ccfMl[c];
          for (std::int64_t g = 0; g < G; ++g) o << d << v[i * G + g];
          o << '\n';
        }
      });
      if (!o.flush()) {
        std::remove(tmp.c_str());
        throw FileError(out, "cannot write (disk full?)");
      }
    }
    moveIntoPlace(tmp, out);
    return s;
  }

  const std::string typeName = columns.type.empty() || columns.type == "-" ? "cell_type" : columns.type;
  writeCellsH5ad(
      out, t, ids, genes, typeName,
      [&](const RowSink& sink) {
        forEachExpressionSlab(x, t, progress, [&](std::int64_t, std::int64_t m, const float* v) { sink(v, m); });
      },
      readSectionSpacing(in));
  return s;
}

void writeCellsH5ad(const std::string& out, const CellTable& t, const std::vector<std::string>& ids,
                    const std::vector<std::string>& genes, const std::string& typeName,
                    const std::function<void(const RowSink&)>& fillX, double sectionSpacingUm) {
  const std::int64_t n = t.size(), G = static_cast<std::int64_t>(genes.size());
  Hdf5Writer w(out);
  w.setStringAttribute("/", "encoding-type", "anndata");
  w.setStringAttribute("/", "encoding-version", "0.1.0");
  for (const char* g : {"/obsm", "/uns", "/layers", "/obsp", "/varm", "/varp"}) {
    w.createGroup(g);
    setAnnDataEncoding(w, g, "dict", "0.1.0");
  }
  for (const char* g : {"/obs", "/var"}) {
    w.createGroup(g);
    setAnnDataEncoding(w, g, "dataframe");
  }
  w.writeStrings("/obs/cell_label", ids);
  setAnnDataEncoding(w, "/obs/cell_label", "string-array");
  w.setStringAttribute("/obs", "_index", "cell_label");
  std::vector<std::string> order{"brain_section_label"};
  writeAnnDataCategorical(w, "/obs/brain_section_label", t.section, t.sectionNames);
  if (!t.types.names.empty()) {
    writeAnnDataCategorical(
        w, "/obs/" + typeName, t.cellType, t.types.names,
        t.types.colours.size() == t.types.names.size() ? t.types.colours : std::vector<std::array<std::uint8_t, 3>>{});
    order.push_back(typeName);
  }
  w.setStringArrayAttribute("/obs", "column-order", order);
  std::vector<float> xy(static_cast<std::size_t>(2 * n));
  for (std::int64_t i = 0; i < n; ++i) {
    xy[static_cast<std::size_t>(2 * i)] = t.x[static_cast<std::size_t>(i)];
    xy[static_cast<std::size_t>(2 * i + 1)] = t.y[static_cast<std::size_t>(i)];
  }
  w.writeArray("/obsm/spatial", H5Type::Float32, {n, 2}, xy.data());
  setAnnDataEncoding(w, "/obsm/spatial", "array");
  if (t.hasCcf()) {
    std::vector<float> ccf(static_cast<std::size_t>(3 * n));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      ccf[3 * k] = t.ccfAp[k];
      ccf[3 * k + 1] = t.ccfDv[k];
      ccf[3 * k + 2] = t.ccfMl[k];
    }
    w.writeArray("/obsm/ccf", H5Type::Float32, {n, 3}, ccf.data());
    setAnnDataEncoding(w, "/obsm/ccf", "array");
  }
  if (sectionSpacingUm > 0) {
    w.writeArray("/uns/section_spacing_um", H5Type::Float64, {1}, &sectionSpacingUm);
    setAnnDataEncoding(w, "/uns/section_spacing_um", "array");
  }
  w.writeStrings("/var/gene_symbol", genes);
  setAnnDataEncoding(w, "/var/gene_symbol", "string-array");
  w.setStringAttribute("/var", "_index", "gene_symbol");
  w.setStringArrayAttribute("/var", "column-order", {});
  if (G > 0) { // X is optional in AnnData: a table of positions alone has none
    w.createExtendible("/X", H5Type::Float32, G, std::max<std::int64_t>(64, (1 << 20) / (4 * G)));
    fillX([&](const float* v, std::int64_t m) { w.append("/X", v, m); });
    setAnnDataEncoding(w, "/X", "array");
  }
  w.commit();
}

} // namespace atlascope
