#include "core/AnnDataValidation.h"

#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/MemoryBudget.h"

#include <algorithm>
#include <mutex>
#include <set>

namespace atlascope {

namespace {

// Elements per read when a long 1D array is scanned (bounded memory, whatever the file says).
constexpr std::int64_t kChunk = 1 << 20;

std::string encodingOf(const Hdf5File& f, const std::string& obj) {
  if (!f.hasAttribute(obj, "encoding-type")) return {};
  try {
    return f.readStringAttribute(obj, "encoding-type");
  } catch (const FileError&) {
    throw FileError(f.path(), quote(obj) + ": its encoding-type attribute is not a string");
  }
}

class Validator {
public:
  explicit Validator(const Hdf5File& f) : f_(f) {}

  void run() {
    // No /obs is allowed here (an expression matrix alone is read by ExpressionSource); the cell
    // readers require it themselves.
    // The numbers of cells and genes: X's shape, else the dataframes' index lengths.
    std::int64_t xRows = -1, xCols = -1;
    if (f_.kind("/X")) matrixShape("/X", &xRows, &xCols);
    nObs_ = f_.kind("/obs") ? dataframeLength("/obs") : -1;
    nVar_ = f_.kind("/var") ? dataframeLength("/var") : -1;
    if (nObs_ < 0) nObs_ = xRows;
    if (nVar_ < 0) nVar_ = xCols;
    if (xRows >= 0 && xRows != nObs_)
      throw FileError(f_.path(),
                      "/X has " + std::to_string(xRows) + " rows but obs has " + std::to_string(nObs_) + " cells");
    if (xCols >= 0 && nVar_ >= 0 && xCols != nVar_)
      throw FileError(f_.path(),
                      "/X has " + std::to_string(xCols) + " columns but var has " + std::to_string(nVar_) + " genes");
    if (f_.kind("/X")) matrix("/X");
    if (f_.kind("/obs")) dataframe("/obs", nObs_);
    if (f_.kind("/var")) dataframe("/var", nVar_);
    for (const char* group : {"/layers"})
      if (f_.kind(group) == 'g')
        for (const auto& name : f_.children(group)) {
          const std::string m = std::string(group) + "/" + name;
          std::int64_t r = -1, c = -1;
          matrixShape(m, &r, &c);
          if ((nObs_ >= 0 && r != nObs_) || (nVar_ >= 0 && c != nVar_))
            throw FileError(f_.path(), quote(m) + " is " + std::to_string(r) + " x " + std::to_string(c) + ", X is " +
                                           std::to_string(nObs_) + " x " + std::to_string(nVar_));
          matrix(m);
        }
    alignedGroup("/obsm", nObs_);
    alignedGroup("/varm", nVar_);
    for (const auto& [group, n] : {std::pair<const char*, std::int64_t>{"/obsp", nObs_}, {"/varp", nVar_}})
      if (f_.kind(group) == 'g' && n >= 0)
        for (const auto& name : f_.children(group)) {
          const std::string m = std::string(group) + "/" + name;
          if (!isMatrix(m)) continue;
          std::int64_t r = -1, c = -1;
          matrixShape(m, &r, &c);
          if (r != n || c != n)
            throw FileError(f_.path(), quote(m) + " must be " + std::to_string(n) + " x " + std::to_string(n));
        }
  }

private:
  // The length of a dataframe: its index's, or (anndata < 0.7) its compound dataset's.
  std::int64_t dataframeLength(const std::string& df) {
    if (f_.kind(df) == 'd') {
      const auto s = f_.shape(df);
      if (s.size() != 1) throw FileError(f_.path(), quote(df) + " is a compound dataframe but not 1D");
      return s[0];
    }
    const std::string index = df + "/" + dataframeIndexName(f_, df);
    if (!f_.kind(index)) return -1;
    return length1D(index);
  }

  std::int64_t length1D(const std::string& ds) {
    if (f_.kind(ds) == 'm') return length1D(ds.substr(0, ds.rfind('/')));
    const auto s = f_.shape(ds);
    if (s.size() != 1)
      throw FileError(f_.path(), quote(ds) + " must be 1D (it has " + std::to_string(s.size()) + " dimensions)");
    return s[0];
  }

  void expectClass(const std::string& ds, const std::string& classes, const char* what) {
    const char c = f_.typeClass(ds);
    if (classes.find(c) == std::string::npos) throw FileError(f_.path(), quote(ds) + " must hold " + what);
  }

  // Every column of obs or var: length n; categorical codes within their categories.
  void dataframe(const std::string& df, std::int64_t n) {
    if (n < 0) return;
    const std::string index = dataframeIndexName(f_, df);
    const bool compound = f_.kind(df) == 'd';
    for (const auto& name : f_.children(df)) {
      const std::string col = df + "/" + name;
      if (name == "__categories") continue; // anndata 0.7: checked with their columns below
      const char kind = f_.kind(col);
      if (kind == 'g') {
        const std::string enc = encodingOf(f_, col);
        if (enc == "categorical" || (f_.kind(col + "/codes") && f_.kind(col + "/categories"))) {
          categorical(col + "/codes", col + "/categories", n);
        } else if (enc == "nullable-integer" || enc == "nullable-boolean" || f_.kind(col + "/values")) {
          if (!f_.kind(col + "/values")) throw FileError(f_.path(), quote(col) + " is a nullable array without values");
          expectLength(col + "/values", n);
          if (f_.kind(col + "/mask")) expectLength(col + "/mask", n);
        }
        // Other encodings (newer anndata versions add some) are left to the readers, which
        // refuse what they cannot read when a command asks for that column.
        continue;
      }
      if (!kind) continue; // a dangling link
      if (!compound) expectLength(col, n);
      const std::string enc = kind == 'd' ? encodingOf(f_, col) : std::string();
      const char cls = f_.typeClass(col);
      if (enc == "string-array" && cls != 's')
        throw FileError(f_.path(), quote(col) + " is declared a string-array but does not hold strings");
      if (enc == "array" && cls != 'i' && cls != 'f')
        throw FileError(f_.path(), quote(col) + " is declared an array but is not numeric");
      // anndata 0.7: integer codes here, names under <df>/__categories/<name>; anndata < 0.7
      // (compound): uns['<name>_categories'].
      const std::string legacy07 = df + "/__categories/" + name, legacyUns = "/uns/" + name + "_categories";
      if (name != index && cls == 'i') {
        if (!compound && f_.kind(legacy07))
          categorical(col, legacy07, n);
        else if (compound && f_.kind(legacyUns))
          categorical(col, legacyUns, n);
      }
    }
  }

  void expectLength(const std::string& ds, std::int64_t n) {
    const auto len = length1D(ds);
    if (len != n)
      throw FileError(f_.path(),
                      quote(ds) + " has " + std::to_string(len) + " values for " + std::to_string(n) + " rows");
  }

  // Codes: integers, -1 (missing) or within [0, number of categories).
  void categorical(const std::string& codes, const std::string& categories, std::int64_t n) {
    expectLength(codes, n);
    expectClass(codes, "i", "integer codes");
    const std::int64_t k = length1D(categories);
    expectClass(categories, "sif", "category names or values");
    scan(codes, n, [&](std::int64_t i, std::int64_t v) {
      if (v < -1 || v >= k)
        throw FileError(f_.path(), quote(codes) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                       ", but there are " + std::to_string(k) + " categories (-1 = missing)");
    });
  }

  // Reads a 1D integer dataset (or compound member) in bounded chunks: fn(index, value).
  template <class Fn> void scan(const std::string& ds, std::int64_t n, Fn fn) {
    if (f_.kind(ds) == 'm') { // compound members are read whole (anndata < 0.7 files are small)
      const auto all = f_.readInt64(ds).data;
      for (std::size_t i = 0; i < all.size(); ++i) fn(static_cast<std::int64_t>(i), all[i]);
      return;
    }
    for (std::int64_t at = 0; at < n; at += kChunk) {
      const std::int64_t m = std::min(kChunk, n - at);
      const auto part = f_.readInt64Range(ds, at, m);
      for (std::int64_t i = 0; i < m; ++i) fn(at + i, part[static_cast<std::size_t>(i)]);
    }
  }

  // A dense dataset or a CSR/CSC group (what matrixShape and matrix read).
  bool isMatrix(const std::string& m) {
    const char k = f_.kind(m);
    if (k == 'd') return true;
    if (k != 'g') return false;
    const std::string enc = encodingOf(f_, m);
    return enc == "csr_matrix" || enc == "csc_matrix" || f_.hasAttribute(m, "h5sparse_format");
  }

  // rows x columns of a dense or sparse matrix.
  void matrixShape(const std::string& m, std::int64_t* rows, std::int64_t* cols) {
    const char kind = f_.kind(m);
    if (kind == 'd') {
      const auto s = f_.shape(m);
      if (s.size() != 2)
        throw FileError(f_.path(),
                        quote(m) + " must be a 2D matrix (it has " + std::to_string(s.size()) + " dimensions)");
      *rows = s[0];
      *cols = s[1];
      // A shape the file cannot hold even at one byte per value and deflate's best ratio (a
      // header claiming 480 x 2^40 made convert loop over 2^40 gene names).
      const std::uint64_t values =
          saturatingMultiply(static_cast<std::uint64_t>(s[0]), static_cast<std::uint64_t>(s[1]));
      if (values > f_.canHold())
        throw FileError(f_.path(), quote(m) + " claims " + std::to_string(s[0]) + " x " + std::to_string(s[1]) +
                                       " values, more than the file (" +
                                       describeBytes(f_.canHold() / kMaxDeflateRatio) + ") can hold");
      return;
    }
    if (kind != 'g') throw FileError(f_.path(), quote(m) + " is not a matrix");
    const bool legacy = f_.hasAttribute(m, "h5sparse_format");
    const std::string attr = legacy ? "h5sparse_shape" : "shape";
    if (!f_.hasAttribute(m, attr)) throw FileError(f_.path(), "sparse " + quote(m) + " has no shape attribute");
    const auto dims = f_.readInt64ArrayAttribute(m, attr);
    if (dims.size() != 2 || dims[0] < 0 || dims[1] < 0)
      throw FileError(f_.path(), "sparse " + quote(m) + " has a malformed shape attribute");
    *rows = dims[0];
    *cols = dims[1];
    // A sparse matrix's shape is only an attribute; each row (or column) costs an indptr entry,
    // and a row read densely costs the other axis in floats: bound both by the file.
    if (static_cast<std::uint64_t>(std::max(dims[0], dims[1])) > f_.canHold())
      throw FileError(f_.path(), "sparse " + quote(m) + " claims a shape of " + std::to_string(dims[0]) + " x " +
                                     std::to_string(dims[1]) + ", more than the file can hold");
  }

  // A sparse matrix's structure (a dense one's shape was checked by matrixShape).
  void matrix(const std::string& m) {
    if (f_.kind(m) == 'd') {
      expectClass(m, "if", "numbers");
      return;
    }
    std::int64_t rows = 0, cols = 0;
    matrixShape(m, &rows, &cols);
    const bool legacy = f_.hasAttribute(m, "h5sparse_format");
    const std::string enc =
        legacy ? (f_.hasAttribute(m, "h5sparse_format") ? f_.readStringAttribute(m, "h5sparse_format") + "_matrix" : "")
               : encodingOf(f_, m);
    if (enc != "csr_matrix" && enc != "csc_matrix")
      throw FileError(f_.path(),
                      quote(m) + " is a group but not a CSR or CSC matrix (encoding " + quote(enc, 40) + ")");
    for (const char* part : {"/data", "/indices", "/indptr"})
      if (f_.kind(m + part) != 'd') throw FileError(f_.path(), "sparse " + quote(m) + " has no " + (part + 1));
    const bool csr = enc == "csr_matrix";
    const std::int64_t major = csr ? rows : cols, minor = csr ? cols : rows;
    const std::string indptr = m + "/indptr", indices = m + "/indices", data = m + "/data";
    expectClass(indptr, "i", "integers");
    expectClass(indices, "i", "integers");
    expectClass(data, "if", "numbers");
    const std::int64_t nnz = length1D(data);
    if (length1D(indices) != nnz)
      throw FileError(f_.path(), quote(indices) + " has " + std::to_string(length1D(indices)) + " entries, " +
                                     quote(data) + " has " + std::to_string(nnz));
    if (length1D(indptr) != major + 1)
      throw FileError(f_.path(), "the shape of " + quote(m) + " disagrees with its indptr: " +
                                     std::to_string(length1D(indptr)) + " entries for " + std::to_string(major) +
                                     (csr ? " rows" : " columns") + " (expected one more)");
    std::int64_t previous = 0;
    scan(indptr, major + 1, [&](std::int64_t i, std::int64_t v) {
      if (i == 0 && v != 0) throw FileError(f_.path(), quote(indptr) + "[0] = " + std::to_string(v) + ", not 0");
      if (v < previous)
        throw FileError(f_.path(), quote(indptr) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                       " is less than the entry before (" + std::to_string(previous) + ")");
      if (v > nnz)
        throw FileError(f_.path(), quote(indptr) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                       " is past the " + std::to_string(nnz) + " nonzeros");
      previous = v;
    });
    if (previous != nnz)
      throw FileError(f_.path(), quote(indptr) + " ends at " + std::to_string(previous) + ", not at the " +
                                     std::to_string(nnz) + " nonzeros");
    if (nnz <= kFullIndexScan)
      scan(indices, nnz, [&](std::int64_t i, std::int64_t v) {
        if (v < 0 || v >= minor)
          throw FileError(f_.path(), quote(indices) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                         " is outside the " + std::to_string(minor) + (csr ? " columns" : " rows"));
      });
  }

  // obsm / varm: every member's first axis is n (dense arrays, dataframes, sparse matrices).
  void alignedGroup(const char* group, std::int64_t n) {
    const char kind = f_.kind(group);
    if (!kind || n < 0) return;
    if (kind == 'd') { // anndata < 0.7: one compound dataset, one member per embedding
      const auto s = f_.shape(group);
      if (s.size() != 1 || s[0] != n)
        throw FileError(f_.path(), quote(group) + " has " + std::to_string(s.empty() ? 0 : s[0]) + " rows for " +
                                       std::to_string(n));
      return;
    }
    for (const auto& name : f_.children(group)) {
      const std::string m = std::string(group) + "/" + name;
      const char k = f_.kind(m);
      if (k == 'd') {
        const auto s = f_.shape(m);
        if (s.empty() || s[0] != n)
          throw FileError(f_.path(),
                          quote(m) + " has " + std::to_string(s.empty() ? 0 : s[0]) + " rows for " + std::to_string(n));
        const std::string enc = encodingOf(f_, m);
        if (enc == "array") expectClass(m, "if", "numbers (it is declared an array)");
        if (enc == "string-array") expectClass(m, "s", "strings (it is declared a string-array)");
      } else if (k == 'g') {
        if (encodingOf(f_, m) == "dataframe") {
          const std::int64_t len = dataframeLength(m);
          if (len >= 0 && len != n)
            throw FileError(f_.path(), quote(m) + " has " + std::to_string(len) + " rows for " + std::to_string(n));
          dataframe(m, n);
        } else if (isMatrix(m)) {
          std::int64_t r = 0, c = 0;
          matrixShape(m, &r, &c);
          if (r != n)
            throw FileError(f_.path(), quote(m) + " has " + std::to_string(r) + " rows for " + std::to_string(n));
          matrix(m);
        } // other encodings (awkward arrays, ...): not read by Atlascope
      }
    }
  }

  const Hdf5File& f_;
  std::int64_t nObs_ = -1, nVar_ = -1;
};

} // namespace

void validateAnnData(const Hdf5File& f) { Validator(f).run(); }

void validateAnnDataFile(const Hdf5File& f) {
  static std::mutex mutex;
  static std::set<std::string> valid;
  std::string identity;
  try {
    identity = fileIdentity(f.path());
  } catch (const FileError&) { // not a file on disk (an in-memory image): always checked
  }
  if (!identity.empty()) {
    std::lock_guard<std::mutex> lock(mutex);
    if (valid.count(identity)) return;
  }
  validateAnnData(f);
  if (!identity.empty()) {
    std::lock_guard<std::mutex> lock(mutex);
    valid.insert(identity);
  }
}

} // namespace atlascope
