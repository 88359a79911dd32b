#pragma once
// Cells as Atlascope holds them: per-cell arrays (structure of arrays), category tables with
// names and colours, and the gene panel. Expression is not held here: rows are read on demand
// from the file (ExpressionSource), so millions of cells fit in little memory.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atlascope {

class Hdf5File;

struct CategoryTable {
  std::vector<std::string> names;
  std::vector<std::array<std::uint8_t, 3>> colours; // empty when the file has none
};

struct CellTable {
  std::string source;
  std::vector<std::int32_t> section; // index into sectionNames, per cell
  std::vector<std::string> sectionNames;
  std::vector<float> x, y;                // in-section position, micrometres
  std::vector<float> ccfAp, ccfDv, ccfMl; // CCF micrometres (empty when the file has none)
  std::vector<std::int32_t> cellType;     // index into types.names; -1 = missing
  CategoryTable types;
  std::vector<std::string> genes;
  // Row of each cell in the file's expression matrix (cells with bad coordinates are skipped).
  std::vector<std::int64_t> fileRow;
  std::int64_t skippedCells = 0;
  std::string skippedReason;

  std::int64_t size() const { return static_cast<std::int64_t>(x.size()); }
  bool hasCcf() const { return !ccfAp.empty(); }
};

// In-section positions in CellTransformer's unit (10 um) and sections as int64: the inputs of
// NeighborhoodIndex and of the model's window.
struct ModelPositions {
  std::vector<float> x, y;
  std::vector<std::int64_t> section;
};
ModelPositions modelPositions(const CellTable& cells);

// Which columns hold what; empty = the defaults (ABC names, obsm['spatial'], Atlascope's own);
// "-" for a CSV's optional section, type or id column: none, even when a default name exists.
struct ColumnOptions {
  std::string x, y, section, type;
  std::string id; // CSV: the cell id column (default: cell_label, index, cell_id, or the first column)
  // CSV: the gene columns, "A,B,C" or "FIRST..LAST" (by name, inclusive); default: every numeric
  // column that is not mapped and not a known metadata column (cell_volume, fov, ...).
  std::string genes;
  std::string ccf;          // obsm key or "COLX,COLY,COLZ"
  std::string units = "um"; // "um" or "mm" for positions
  std::string layer;        // h5ad: read expression from layers[layer] instead of X
};

// Every column option with its name (the CLI's flag without "--", the session's key), so that
// writing them out and reading them back go through one list: f(name, value) for a const or a
// mutable ColumnOptions.
template <class Options, class F> void forEachColumnOption(Options& c, F f) {
  f("x", c.x);
  f("y", c.y);
  f("section", c.section);
  f("type", c.type);
  f("id", c.id);
  f("genes", c.genes);
  f("ccf", c.ccf);
  f("units", c.units);
  f("layer", c.layer);
}
// An option worth writing: set, and not the default unit.
inline bool columnOptionSet(const std::string& name, const std::string& value) {
  return !value.empty() && !(name == "units" && value == "um");
}

// Reads cells from an AnnData .h5ad (obs numeric/categorical/string columns, obsm) or a plain
// CSV/TSV table with a column mapping (.csv, .tsv, .txt: positions, optional section and type,
// gene columns). A table without a section column is one section; without a type column, the
// cells have no type (-1). Errors name the file and the column.
CellTable readCellTable(const std::string& path, const ColumnOptions& columns = {});
// The same for an open AnnData file (a file on disk or an in-memory image).
CellTable readCellTable(const Hdf5File& file, const ColumnOptions& columns = {});

// Rows of the expression matrix on demand. h5ad X dense (chunked reads) or CSR (rows from the
// indptr range); CSC X and CSV tables are held in memory (CSC is column-major: rows cannot be
// streamed; CSV files are small by nature).
class ExpressionSource {
public:
  explicit ExpressionSource(const std::string& path, const ColumnOptions& columns = {});
  // An open AnnData file (e.g. an in-memory image), owned from here on.
  explicit ExpressionSource(std::unique_ptr<Hdf5File> file, const ColumnOptions& columns = {});
  ~ExpressionSource();
  ExpressionSource(const ExpressionSource&) = delete;
  ExpressionSource& operator=(const ExpressionSource&) = delete;
  std::int64_t cells() const { return rows_; }
  std::int64_t genes() const { return cols_; }
  const std::string& layout() const { return layout_; } // "dense", "csr", "csc", "csv"
  // Rows [begin, begin + count) as float32, row-major, into `out` (count * genes()).
  void readRows(std::int64_t begin, std::int64_t count, float* out) const;
  // One gene's value for every row, streaming the rows in slabs (bounded memory). The cell-data
  // issue adds a column-chunked copy for seconds-long reads on 10M cells.
  std::vector<float> readGene(std::int64_t gene) const;

private:
  void init(std::unique_ptr<Hdf5File> file, const ColumnOptions& columns);
  struct Impl;
  Impl* impl_;
  std::int64_t rows_ = 0, cols_ = 0;
  std::string layout_;
};

// One obs column as categories (categorical, string or numeric columns; h5ad or CSV), for
// labels such as discovered regions or ground truth. Rows are the file's rows.
struct ObsLabels {
  std::vector<std::int32_t> codes; // -1 = missing
  std::vector<std::string> names;
};
ObsLabels readObsLabels(const std::string& path, const std::string& column);
// Colours a file stores for an obs column (h5ad uns["<column>_colors"]); empty when none.
std::vector<std::array<std::uint8_t, 3>> readObsColours(const std::string& path, const std::string& column);
// The obs columns a file has (h5ad: obs children but the index; CSV: the header).
std::vector<std::string> listObsColumns(const std::string& path);

// The CSV/TSV reader behind readCellTable; `expression`, when given, receives the gene values
// (cells x genes, row-major, rows of skipped cells removed).
CellTable readCsvCells(const std::string& path, const ColumnOptions& columns, std::vector<float>* expression = nullptr);
// Whether a path names a CSV/TSV table (.csv, .tsv, .txt) rather than an h5ad or a folder.
bool isTablePath(const std::string& path);

// The columns readCsvCells recognises by name in a header when none are given (empty: none),
// e.g. to pre-fill a column-mapping dialog.
ColumnOptions guessCsvColumns(const std::vector<std::string>& header);

} // namespace atlascope
