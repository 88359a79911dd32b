#pragma once
// One dataset from many files, as labs release MERFISH data: one CSV (or h5ad) per slice with
// the same columns. The files are checked against each other (the same columns, the same gene
// panel, cell ids unique) and written as one current h5ad, which every command then reads like
// any other dataset.
//
// Why one combined file rather than reading across files: `segment` and `embed --h5ad-out` write
// their results into a copy of an h5ad, `embed` resumes by the data's path, and the expression
// is streamed from one matrix by row ranges (ExpressionSource, ExpressionTableStream); teaching
// every reader and writer about sets of files would touch all of them for a one-time cost the
// combined copy pays once (it is cached, see combinedCellFiles).
#include "core/CellTable.h"
#include "core/Progress.h"

#include <string>
#include <vector>

namespace atlascope {

struct FileSetOptions {
  // A regular expression searched in each file's name (without its folder); its first group (or
  // the whole match) is the section of all the file's cells: 'slice(\d+)' -> "1" for
  // slice1.csv. Empty: the section column when the files have one, else each file's name without
  // its extension.
  std::string sectionFromFilename;
  // Keep the genes every file has (in the first file's order) instead of requiring equal panels.
  bool commonGenes = false;
  // > 0: the distance between consecutive sections, stored as uns["section_spacing_um"] (the
  // views stack sections without CCF coordinates by their order at this spacing; 200 um when
  // a file does not say).
  double sectionSpacingUm = 0;
};

// The files a dataset argument names when they are to be read as one set: several paths, or a
// folder of tables/h5ad files (not an ABC atlas download folder; in natural order: slice2 before
// slice10). Empty for one file or an ABC folder (read as they are).
std::vector<std::string> cellFileSet(const std::vector<std::string>& arguments);

struct FileSetSummary {
  std::int64_t cells = 0, skipped = 0;
  std::size_t files = 0, sections = 0, genes = 0;
  std::vector<std::string> droppedGenes; // --genes common: genes some file lacks
  bool prefixedIds = false;              // ids collided across files: each got "<file name>:"
  std::string typeColumn;                // obs column of the cell types in the result ("" if none)
  bool cached = false;                   // combinedCellFiles: an earlier run's copy was reused (counts unset)
};

// Checks the files against the first and writes them as one h5ad (ConvertCells' layout; cells
// in file order; sections in natural order of their names; the section, type and id columns as
// `columns` maps them in each file). Errors name the file: a different column set, another gene
// panel (the differences listed), no cells, ids repeated within a file, CCF coordinates in some
// files only.
FileSetSummary combineCellFiles(const std::vector<std::string>& files, const ColumnOptions& columns,
                                const FileSetOptions& options, const std::string& out, const Progress& progress = {});

// combineCellFiles into the cache (defaultCacheDir()/datasets/<key>.h5ad, the key made of the
// files' paths, sizes and modification times and the options), made once: later commands on the
// same files read the same copy (and `embed` can resume). Returns its path.
std::string combinedCellFiles(const std::vector<std::string>& files, const ColumnOptions& columns,
                              const FileSetOptions& options, FileSetSummary* summary = nullptr,
                              const Progress& progress = {});

// uns["section_spacing_um"] of an h5ad; 0 when it has none (or is not an h5ad).
double readSectionSpacing(const std::string& path);

// The column options that read the file combineCellFiles wrote with `given` (its own layout, in um).
ColumnOptions combinedColumns(const ColumnOptions& given);

} // namespace atlascope
