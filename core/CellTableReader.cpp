#include "core/AbcLayout.h"
#include "core/AnnDataValidation.h"
#include "core/CellTable.h"
#include "core/Csv.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/MemoryBudget.h"
#include "core/Palette.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>

namespace atlascope {

namespace {

std::string encodingOf(const Hdf5File& f, const std::string& obj) {
  return f.hasAttribute(obj, "encoding-type") ? f.readStringAttribute(obj, "encoding-type") : std::string();
}

// An obs column as categories: codes per cell and the category names.
struct Categorical {
  std::vector<std::int32_t> codes;
  std::vector<std::string> names;
};

// anndata 0.7 kept a categorical column as its integer codes, with an object-reference attribute
// `categories` pointing at <dataframe>/__categories/<column>. The reference is not followed: the
// conventional path is read (anndata 0.7 always wrote it there).
// anndata < 0.7: a member of the compound obs/var holds the codes, uns["<column>_categories"]
// the categories.
std::string legacyCategories(const Hdf5File& f, const std::string& col) {
  const auto slash = col.rfind('/');
  if (slash == std::string::npos) return {};
  if (f.isCompoundMember(col)) {
    const std::string u = "/uns/" + col.substr(slash + 1) + "_categories";
    return f.exists(u) ? u : std::string();
  }
  const std::string p = col.substr(0, slash) + "/__categories/" + col.substr(slash + 1);
  return f.exists(p) && !f.exists(col + "/codes") ? p : std::string();
}

std::vector<std::string> categoryNames(const Hdf5File& f, const std::string& dataset) {
  try {
    return f.readStrings(dataset);
  } catch (const FileError&) { // numeric categories
    std::vector<std::string> names;
    for (double d : f.readDouble(dataset).data) {
      std::ostringstream s;
      s << d;
      names.push_back(s.str());
    }
    return names;
  }
}

// Codes [first, first + count) of `dataset` appended to c.codes, each within c's categories.
void checkCodes(const Hdf5File& f, const std::string& dataset, const std::int64_t* codes, std::int64_t first,
                std::int64_t count, Categorical& c) {
  const auto k = static_cast<std::int64_t>(c.names.size());
  for (std::int64_t i = 0; i < count; ++i) {
    if (codes[i] < -1 || codes[i] >= k)
      throw FileError(f.path(), quote(dataset) + "[" + std::to_string(first + i) + "] = " + std::to_string(codes[i]) +
                                    ", but there are " + std::to_string(k) + " categories (-1 = missing)");
    c.codes.push_back(static_cast<std::int32_t>(codes[i]));
  }
}

// Codes as the table holds them, each checked against the categories (validateAnnData did so
// for the whole file; this keeps the reader safe on its own: the codes index the names). Read in
// blocks of a million: a whole column as int64 (32 MB at 4M cells) was freshly faulted-in memory
// written once and thrown away, most of the reader's time with the positions' doubles.
void assignCodes(const Hdf5File& f, const std::string& dataset, Categorical& c) {
  // Compound members (anndata < 0.7, small files), anything not 1D or not numeric: read whole, as
  // before (readInt64's own errors: "not numeric" and the like).
  const bool member = f.kind(dataset) == 'm';
  const std::vector<std::int64_t> shape = member ? std::vector<std::int64_t>() : f.shape(dataset);
  const char type = member ? '?' : f.typeClass(dataset);
  if (shape.size() != 1 || (type != 'i' && type != 'f')) {
    const auto all = f.readInt64(dataset).data;
    checkCodes(f, dataset, all.data(), 0, static_cast<std::int64_t>(all.size()), c);
    return;
  }
  const std::int64_t n = shape[0];
  // The length the file claims, against what it can hold (as readInt64 checks a whole read), before
  // anything is reserved: a damaged file's claim is a clear error, not an allocation failure.
  checkAllocation(f.path(), "dataset " + quote(dataset),
                  saturatingMultiply(static_cast<std::uint64_t>(n), sizeof(std::int64_t)), f.canHold());
  c.codes.reserve(static_cast<std::size_t>(n));
  constexpr std::int64_t kBlock = 1 << 20;
  for (std::int64_t at = 0; at < n; at += kBlock) {
    const auto part = f.readInt64Range(dataset, at, std::min(kBlock, n - at));
    checkCodes(f, dataset, part.data(), at, static_cast<std::int64_t>(part.size()), c);
  }
}

Categorical readCategorical(const Hdf5File& f, const std::string& col) {
  Categorical c;
  if (const std::string legacy = legacyCategories(f, col); !legacy.empty()) {
    c.names = categoryNames(f, legacy);
    assignCodes(f, col, c);
    return c;
  }
  if (encodingOf(f, col) == "categorical" || (f.exists(col + "/codes") && f.exists(col + "/categories"))) {
    c.names = categoryNames(f, col + "/categories");
    assignCodes(f, col + "/codes", c);
    return c;
  }
  std::vector<std::string> values;
  try {
    values = f.readStrings(col);
  } catch (const FileError&) {
    for (double d : f.readDouble(col).data) {
      std::ostringstream s;
      s << d;
      values.push_back(s.str());
    }
  }
  std::map<std::string, std::int32_t> index;
  for (const auto& v : values) index.emplace(v, 0);
  for (auto& [name, code] : index) {
    code = static_cast<std::int32_t>(c.names.size());
    c.names.push_back(name);
  }
  c.codes.reserve(values.size());
  for (const auto& v : values) c.codes.push_back(index[v]);
  return c;
}

std::vector<double> readNumeric(const Hdf5File& f, const std::string& col) {
  if (encodingOf(f, col) == "categorical" || !legacyCategories(f, col).empty()) {
    const Categorical c = readCategorical(f, col);
    std::vector<double> out;
    for (auto code : c.codes)
      out.push_back(code < 0 ? std::nan("") : std::strtod(c.names[static_cast<std::size_t>(code)].c_str(), nullptr));
    return out;
  }
  try {
    return f.readDouble(col).data;
  } catch (const FileError&) {
    throw FileError(f.path(), "column '" + col + "' is not numeric");
  }
}

std::vector<std::int64_t> readInt64Attribute(const Hdf5File& f, const std::string& obj, const std::string& name) {
  return f.readInt64ArrayAttribute(obj, name);
}

std::string firstExisting(const Hdf5File& f, const std::string& prefix, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (f.exists(prefix + n)) return prefix + n;
  return {};
}

} // namespace

CellTable readCellTable(const std::string& path, const ColumnOptions& opt) {
  if (isTablePath(path)) return readCsvCells(path, opt);
  if (isFolder(path)) {
    const auto layout = findAbcLayout(path);
    if (!layout) throw FileError(path, "a folder without ABC cell metadata (cell_metadata*.csv)");
    return readAbcCells(*layout, opt);
  }
  Hdf5File f(path);
  return readCellTable(f, opt);
}

CellTable readCellTable(const Hdf5File& f, const ColumnOptions& opt) {
  const std::string& path = f.path();
  if (!f.exists("/obs")) throw FileError(path, "not an AnnData file (no /obs)");
  validateAnnDataFile(f);
  CellTable t;
  t.source = path;
  const double scale = opt.units == "mm" ? 1000.0 : 1.0;
  if (opt.units != "mm" && opt.units != "um") throw FileError(path, "unknown units '" + opt.units + "' (um or mm)");

  // Positions. float32 obsm['spatial'] is kept as read: widening it to two double vectors (64 MB
  // at 4M cells, freshly faulted in) took a third of the reader's time.
  std::vector<double> x, y;
  NdArray<float> spatial;
  bool fromSpatial = false;
  if (!opt.x.empty() || !opt.y.empty()) {
    if (opt.x.empty() || opt.y.empty()) throw Error("give both --x and --y");
    for (const auto& [col, out] : {std::pair<std::string, std::vector<double>*>{opt.x, &x}, {opt.y, &y}}) {
      if (!f.exists("/obs/" + col)) throw FileError(path, "missing required column '" + col + "' in obs");
      *out = readNumeric(f, "/obs/" + col);
    }
  } else if (f.exists("/obsm/spatial")) {
    spatial = f.readFloat("/obsm/spatial");
    if (spatial.shape.size() != 2 || spatial.shape[1] < 2)
      throw FileError(path, "obsm['spatial'] must have at least 2 columns");
    fromSpatial = true;
  } else if (f.exists("/obs/x") && f.exists("/obs/y")) {
    x = readNumeric(f, "/obs/x");
    y = readNumeric(f, "/obs/y");
  } else {
    throw FileError(path, "no cell positions: missing obsm['spatial'] and obs columns 'x'/'y' (use --x/--y)");
  }
  const std::size_t n = fromSpatial ? static_cast<std::size_t>(spatial.shape[0]) : x.size();
  if (!fromSpatial && y.size() != n) throw FileError(path, "x and y have different lengths");
  const std::size_t spatialColumns = fromSpatial ? static_cast<std::size_t>(spatial.shape[1]) : 0;
  // Cell i's position along axis 0 (x) or 1 (y), as a double (the obs columns' type).
  auto position = [&](std::size_t i, std::size_t axis) -> double {
    if (fromSpatial) return spatial.data[i * spatialColumns + axis];
    return axis == 0 ? x[i] : y[i];
  };

  // Section.
  const std::string secCol = !opt.section.empty()
                                 ? "/obs/" + opt.section
                                 : firstExisting(f, "/obs/", {"brain_section_label", "section", "section_id"});
  if (secCol.empty() || !f.exists(secCol))
    throw FileError(path, "missing required column '" +
                              (opt.section.empty() ? std::string("brain_section_label") : opt.section) +
                              "' (the section of each cell; --section COL)");
  const Categorical sec = readCategorical(f, secCol);
  if (sec.codes.size() != n)
    throw FileError(path, "column '" + secCol + "' has " + std::to_string(sec.codes.size()) + " values for " +
                              std::to_string(n) + " cells");

  // Cell type (optional for reading; required by the model).
  const std::string typeCol = !opt.type.empty()
                                  ? "/obs/" + opt.type
                                  : firstExisting(f, "/obs/", {"subclass", "cell_type", "celltype", "celltype_leiden"});
  Categorical types;
  if (!typeCol.empty()) {
    if (!f.exists(typeCol)) throw FileError(path, "missing required column '" + opt.type + "' in obs");
    types = readCategorical(f, typeCol);
    if (types.codes.size() != n) throw FileError(path, "column '" + typeCol + "' has the wrong length");
    const std::string colours = "/uns/" + typeCol.substr(5) + "_colors";
    if (f.exists(colours)) {
      const auto hex = f.readStrings(colours);
      for (const auto& h : hex) t.types.colours.push_back(parseHexColour(h));
      if (t.types.colours.size() != types.names.size()) t.types.colours.clear();
    }
  }
  t.types.names = types.names;

  // CCF coordinates (optional).
  // Read as float32 (the table's type): 10M cells' coordinates as doubles were the reader's peak.
  std::vector<float> ccf;
  const std::string ccfKey = opt.ccf.empty() ? "ccf" : opt.ccf;
  if (f.exists("/obsm/" + ccfKey)) {
    auto c = f.readFloat("/obsm/" + ccfKey);
    if (c.shape.size() != 2 || c.shape[1] != 3)
      throw FileError(path, "obsm['" + ccfKey + "'] must have 3 columns (AP, DV, ML)");
    ccf = std::move(c.data);
  }

  // Genes.
  if (f.exists("/var")) {
    const std::string idx = dataframeIndexName(f, "/var");
    if (f.exists("/var/" + idx)) t.genes = f.readStrings("/var/" + idx);
  }

  // Keep cells with finite positions; say how many were skipped and why.
  t.sectionNames = sec.names;
  for (auto* v : {&t.x, &t.y}) v->reserve(n);
  if (!ccf.empty())
    for (auto* v : {&t.ccfAp, &t.ccfDv, &t.ccfMl}) v->reserve(n);
  t.fileRow.reserve(n);
  t.section.reserve(n);
  t.cellType.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double px = position(i, 0), py = position(i, 1);
    if (!std::isfinite(px) || !std::isfinite(py) || sec.codes[i] < 0) {
      ++t.skippedCells;
      continue;
    }
    t.fileRow.push_back(static_cast<std::int64_t>(i));
    t.x.push_back(static_cast<float>(px * scale));
    t.y.push_back(static_cast<float>(py * scale));
    t.section.push_back(sec.codes[i]);
    t.cellType.push_back(types.codes.empty() ? -1 : types.codes[i]);
    if (!ccf.empty()) {
      t.ccfAp.push_back(static_cast<float>(ccf[3 * i] * scale));
      t.ccfDv.push_back(static_cast<float>(ccf[3 * i + 1] * scale));
      t.ccfMl.push_back(static_cast<float>(ccf[3 * i + 2] * scale));
    }
  }
  if (t.skippedCells > 0) t.skippedReason = "NaN or infinite position, or no section";
  return t;
}

namespace {
// An ABC folder's metadata column by expression row (the rows readCellTable's fileRow names).
ObsLabels abcLabels(const std::string& folder, const std::string& column, std::vector<std::string>* colourHex) {
  const auto layout = findAbcLayout(folder);
  if (!layout) throw FileError(folder, "a folder without ABC cell metadata (cell_metadata*.csv)");
  const std::unordered_map<std::string, std::int64_t> rowOf = abcExpressionRows(*layout);
  CsvReader csv(layout->metadata);
  const std::size_t label = csv.requireColumn("cell_label"), col = csv.requireColumn(column);
  const std::optional<std::size_t> colour = csv.column(column + "_color");
  std::vector<std::pair<std::int64_t, std::string>> values;
  std::map<std::string, std::string> colours;
  std::vector<std::string> row;
  while (csv.next(row)) {
    const auto it = rowOf.find(row[label]);
    if (it == rowOf.end()) continue;
    values.emplace_back(it->second, row[col]);
    if (colour) colours.emplace(row[col], row[*colour]);
  }
  std::map<std::string, std::int32_t> codes;
  for (const auto& [r, v] : values) codes.emplace(v, 0);
  ObsLabels out;
  for (auto& [name, code] : codes) {
    code = static_cast<std::int32_t>(out.names.size());
    out.names.push_back(name);
    if (colourHex && colour) colourHex->push_back(colours[name]);
  }
  out.codes.assign(rowOf.size(), -1);
  for (const auto& [r, v] : values) out.codes[static_cast<std::size_t>(r)] = codes[v];
  return out;
}
} // namespace

ObsLabels readObsLabels(const std::string& path, const std::string& column) {
  if (isFolder(path)) return abcLabels(path, column, nullptr);
  ObsLabels out;
  if (isTablePath(path)) {
    CsvReader csv(path);
    const std::size_t col = csv.requireColumn(column);
    std::vector<std::string> row, values;
    while (csv.next(row)) values.push_back(row[col]);
    std::map<std::string, std::int32_t> index;
    for (const auto& v : values)
      if (!v.empty()) index.emplace(v, 0);
    for (auto& [name, code] : index) {
      code = static_cast<std::int32_t>(out.names.size());
      out.names.push_back(name);
    }
    for (const auto& v : values) out.codes.push_back(v.empty() ? -1 : index[v]);
    return out;
  }
  Hdf5File f(path);
  validateAnnDataFile(f);
  if (!f.exists("/obs/" + column)) throw FileError(path, "missing required column '" + column + "' in obs");
  const Categorical c = readCategorical(f, "/obs/" + column);
  out.codes = c.codes;
  out.names = c.names;
  return out;
}

std::vector<std::array<std::uint8_t, 3>> readObsColours(const std::string& path, const std::string& column) {
  std::vector<std::array<std::uint8_t, 3>> out;
  if (isTablePath(path)) return out;
  if (isFolder(path)) {
    std::vector<std::string> hex;
    abcLabels(path, column, &hex);
    for (const auto& h : hex) out.push_back(parseHexColour(h));
    return out;
  }
  Hdf5File f(path);
  if (!f.exists("/uns/" + column + "_colors")) return out;
  for (const auto& h : f.readStrings("/uns/" + column + "_colors")) out.push_back(parseHexColour(h));
  return out;
}

std::vector<std::string> listObsColumns(const std::string& path) {
  if (isTablePath(path)) return CsvReader(path).header();
  if (isFolder(path)) {
    const auto layout = findAbcLayout(path);
    if (!layout) throw FileError(path, "a folder without ABC cell metadata (cell_metadata*.csv)");
    std::vector<std::string> out;
    const CsvReader csv(layout->metadata); // header() is a reference into the reader: keep it alive
    for (const auto& c : csv.header())
      if (c != "cell_label" && c.find("_color") == std::string::npos) out.push_back(c);
    return out;
  }
  Hdf5File f(path);
  validateAnnDataFile(f);
  std::vector<std::string> out;
  const std::string index = dataframeIndexName(f, "/obs");
  for (const auto& c : f.children("/obs"))
    if (c != index && c != "__categories") out.push_back(c);
  return out;
}

ModelPositions modelPositions(const CellTable& cells) {
  ModelPositions p;
  p.x.reserve(cells.x.size());
  p.y.reserve(cells.y.size());
  for (float v : cells.x) p.x.push_back(v / 10.0f);
  for (float v : cells.y) p.y.push_back(v / 10.0f);
  p.section.assign(cells.section.begin(), cells.section.end());
  return p;
}

struct ExpressionSource::Impl {
  std::unique_ptr<Hdf5File> file;
  std::vector<float> memory; // csv / csc: the whole matrix, row-major
  std::string matrix = "/X"; // the HDF5 path of the matrix read (X or a layer)
};

ExpressionSource::ExpressionSource(const std::string& folderOrPath, const ColumnOptions& columns) : impl_(new Impl) {
  std::unique_ptr<Impl> guard(impl_);
  // An ABC folder's rows are its expression .h5ad's (readCellTable's fileRow).
  std::string path = folderOrPath;
  if (isFolder(path)) {
    const auto layout = findAbcLayout(path);
    if (!layout) throw FileError(path, "a folder without ABC cell metadata (cell_metadata*.csv)");
    path = layout->expression;
  }
  if (isTablePath(path)) {
    const CellTable t = readCsvCells(path, columns, &impl_->memory);
    rows_ = t.size();
    cols_ = static_cast<std::int64_t>(t.genes.size());
    layout_ = "csv";
    guard.release();
    return;
  }
  guard.release();
  init(std::make_unique<Hdf5File>(path), columns);
}

ExpressionSource::ExpressionSource(std::unique_ptr<Hdf5File> file, const ColumnOptions& columns) : impl_(new Impl) {
  init(std::move(file), columns);
}

void ExpressionSource::init(std::unique_ptr<Hdf5File> file, const ColumnOptions& columns) {
  std::unique_ptr<Impl> guard(impl_);
  impl_->file = std::move(file);
  Hdf5File& f = *impl_->file;
  const std::string& path = f.path();
  validateAnnDataFile(f);
  // X, or a layer (e.g. counts next to log-normalised X) when one is named.
  impl_->matrix = columns.layer.empty() ? "/X" : "/layers/" + columns.layer;
  const std::string& X = impl_->matrix;
  if (!columns.layer.empty() && !f.exists(X))
    throw FileError(
        path, "no layer '" + columns.layer + "' (layers: " + [&] {
          std::string names;
          if (f.exists("/layers"))
            for (const auto& n : f.children("/layers")) names += (names.empty() ? "" : ", ") + n;
          return names.empty() ? std::string("none") : names;
        }() + ")");
  if (!f.exists(X)) throw FileError(path, "no expression matrix " + X);
  const std::string enc = encodingOf(f, X);
  const bool legacySparse = f.hasAttribute(X, "h5sparse_format");
  if (enc == "csr_matrix" || enc == "csc_matrix" || legacySparse) {
    const std::string fmt = legacySparse ? f.readStringAttribute(X, "h5sparse_format") + "_matrix" : enc;
    // anndata: attribute `shape` (int64[2]); legacy h5sparse: `h5sparse_shape`.
    const std::string shapeAttr = legacySparse ? "h5sparse_shape" : "shape";
    const auto indptrLen = f.shape(X + "/indptr");
    if (indptrLen.size() != 1) throw FileError(path, X + "/indptr is not 1D");
    layout_ = fmt == "csr_matrix" ? "csr" : "csc";
    // Dimensions: from the attribute when present, else from indptr and the largest index.
    std::int64_t major = indptrLen[0] - 1, minor = 0;
    if (f.hasAttribute(X, shapeAttr)) {
      const auto dims = readInt64Attribute(f, X, shapeAttr);
      if (dims.size() != 2) throw FileError(path, X + " has a malformed shape attribute");
      rows_ = dims[0];
      cols_ = dims[1];
      minor = layout_ == "csr" ? cols_ : rows_;
      if ((layout_ == "csr" ? rows_ : cols_) != major)
        throw FileError(path, "X's shape disagrees with its indptr (" + std::to_string(major) + " entries)");
    } else {
      throw FileError(path, "sparse X without a shape attribute");
    }
    const std::int64_t nnz = f.shape(X + "/data")[0];
    if (f.shape(X + "/indices")[0] != nnz) throw FileError(path, "X's data and indices have different lengths");
    if (layout_ == "csc") {
      // Column-major: gather the whole matrix once (rows cannot be streamed from CSC).
      if (saturatingMultiply(static_cast<std::uint64_t>(rows_), static_cast<std::uint64_t>(cols_)) >
          (std::uint64_t{1} << 31))
        throw FileError(path, "CSC X is too large to read row-wise: convert it to CSR");
      checkAllocation(path, X + " (CSC, read whole)",
                      saturatingMultiply(static_cast<std::uint64_t>(rows_ * cols_), sizeof(float)), f.canHold());
      impl_->memory.assign(static_cast<std::size_t>(rows_ * cols_), 0.0f);
      const auto indptr = f.readInt64(X + "/indptr").data;
      const auto indices = f.readInt64(X + "/indices").data;
      const auto data = f.readFloat(X + "/data").data;
      for (std::int64_t c = 0; c < cols_; ++c)
        for (std::int64_t k = indptr[static_cast<std::size_t>(c)]; k < indptr[static_cast<std::size_t>(c) + 1]; ++k) {
          const std::int64_t r = indices[static_cast<std::size_t>(k)];
          if (r < 0 || r >= rows_)
            throw FileError(path, quote(X + "/indices") + "[" + std::to_string(k) + "] = " + std::to_string(r) +
                                      " is outside the " + std::to_string(rows_) + " rows");
          impl_->memory[static_cast<std::size_t>(r * cols_ + c)] = data[static_cast<std::size_t>(k)];
        }
    }
    (void)minor;
    guard.release();
    return;
  }
  const auto s = f.shape(X);
  if (s.size() != 2) throw FileError(path, X + " is not a 2D matrix");
  rows_ = s[0];
  cols_ = s[1];
  layout_ = "dense";
  guard.release();
}

ExpressionSource::~ExpressionSource() { delete impl_; }

std::vector<float> ExpressionSource::readGene(std::int64_t gene) const {
  if (gene < 0 || gene >= cols_) throw Error("gene index out of range");
  std::vector<float> out(static_cast<std::size_t>(rows_));
  const std::int64_t slab = std::max<std::int64_t>(1, (32ll << 20) / (4 * std::max<std::int64_t>(1, cols_)));
  std::vector<float> buf;
  for (std::int64_t r = 0; r < rows_; r += slab) {
    const std::int64_t n = std::min(slab, rows_ - r);
    buf.resize(static_cast<std::size_t>(n * cols_));
    readRows(r, n, buf.data());
    for (std::int64_t i = 0; i < n; ++i)
      out[static_cast<std::size_t>(r + i)] = buf[static_cast<std::size_t>(i * cols_ + gene)];
  }
  return out;
}

void ExpressionSource::readRows(std::int64_t begin, std::int64_t count, float* out) const {
  if (begin < 0 || count < 0 || begin + count > rows_) throw Error("expression rows out of range");
  if (!impl_->memory.empty() || layout_ == "csv") {
    std::copy(impl_->memory.begin() + begin * cols_, impl_->memory.begin() + (begin + count) * cols_, out);
    return;
  }
  Hdf5File& f = *impl_->file;
  if (layout_ == "dense") {
    const auto a = f.readFloatRows(impl_->matrix, begin, count);
    std::copy(a.data.begin(), a.data.end(), out);
    return;
  }
  // CSR: the rows' slice of indptr, then their nonzeros.
  std::fill(out, out + count * cols_, 0.0f);
  if (count == 0) return;
  const auto indptr = f.readInt64Range(impl_->matrix + "/indptr", begin, count + 1);
  const std::int64_t first = indptr.front(), n = indptr.back() - first;
  if (n < 0)
    throw FileError(f.path(), quote(impl_->matrix + "/indptr") + " is not increasing between rows " +
                                  std::to_string(begin) + " and " + std::to_string(begin + count));
  const auto indices = f.readInt64Range(impl_->matrix + "/indices", first, n);
  const auto data = f.readFloatRange(impl_->matrix + "/data", first, n);
  for (std::int64_t r = 0; r < count; ++r)
    for (std::int64_t k = indptr[static_cast<std::size_t>(r)] - first;
         k < indptr[static_cast<std::size_t>(r) + 1] - first; ++k) {
      const std::int64_t c = indices[static_cast<std::size_t>(k)];
      if (c < 0 || c >= cols_)
        throw FileError(f.path(), quote(impl_->matrix + "/indices") + "[" + std::to_string(first + k) + "] = " +
                                      std::to_string(c) + " is outside the " + std::to_string(cols_) + " columns");
      out[r * cols_ + c] = data[static_cast<std::size_t>(k)];
    }
}

bool isTablePath(const std::string& p) {
  for (const char* ext : {".csv", ".tsv", ".txt", ".CSV", ".TSV"})
    if (p.size() >= std::strlen(ext) && p.compare(p.size() - std::strlen(ext), std::strlen(ext), ext) == 0) return true;
  return false;
}

} // namespace atlascope
