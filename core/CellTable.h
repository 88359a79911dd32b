#pragma once
// Cells as Atlascope holds them: per-cell arrays (structure of arrays), category tables with
// names and colours, and the gene panel. Expression is not held here: rows are read on demand
// from the file (ExpressionSource), so millions of cells fit in little memory.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

struct CategoryTable {
  std::vector<std::string> names;
  std::vector<std::array<std::uint8_t, 3>> colours; // empty when the file has none
};

struct CellTable {
  std::string source;
  std::vector<std::int32_t> section;        // index into sectionNames, per cell
  std::vector<std::string> sectionNames;
  std::vector<float> x, y;                  // in-section position, micrometres
  std::vector<float> ccfAp, ccfDv, ccfMl;   // CCF micrometres (empty when the file has none)
  std::vector<std::int32_t> cellType;       // index into types.names; -1 = missing
  CategoryTable types;
  std::vector<std::string> genes;
  // Row of each cell in the file's expression matrix (cells with bad coordinates are skipped).
  std::vector<std::int64_t> fileRow;
  std::int64_t skippedCells = 0;
  std::string skippedReason;

  std::int64_t size() const { return static_cast<std::int64_t>(x.size()); }
  bool hasCcf() const { return !ccfAp.empty(); }
};

// Which columns hold what; empty = the defaults (ABC names, obsm['spatial'], Atlascope's own).
struct ColumnOptions {
  std::string x, y, section, type;
  std::string ccf; // obsm key or "COLX,COLY,COLZ"
  std::string units = "um"; // "um" or "mm" for positions
};

// AnnData .h5ad: obs numeric/categorical/string columns (current and 0.7 encodings), obsm,
// dense X (CSR/CSC X: the cell-data issue). Errors name the file and the column.
CellTable readCellTable(const std::string& path, const ColumnOptions& columns = {});

// Rows of the expression matrix on demand (never the whole matrix).
class ExpressionSource {
public:
  explicit ExpressionSource(const std::string& path);
  ~ExpressionSource();
  std::int64_t cells() const { return rows_; }
  std::int64_t genes() const { return cols_; }
  // Rows [begin, begin + count) as float32, row-major, into `out` (count * genes()).
  void readRows(std::int64_t begin, std::int64_t count, float* out) const;

private:
  struct Impl;
  Impl* impl_;
  std::int64_t rows_ = 0, cols_ = 0;
};

} // namespace atlascope
