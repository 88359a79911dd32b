#pragma once
#include "core/CellFileSet.h"
#include "core/CellTable.h"
#include "core/Progress.h"

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace atlascope::cli {
// The column options every command that reads cells takes (one declaration, as F3D's options).
void addColumnOptions(CLI::App* cmd, ColumnOptions& columns);

// A dataset on the command line: one file or folder, or several files read as one dataset
// (core/CellFileSet.h), with the column options and --section-from-filename.
struct DatasetArgument {
  std::vector<std::string> paths;
  ColumnOptions columns;
  FileSetOptions files;
};
void addDatasetArgument(CLI::App* cmd, DatasetArgument& dataset, const std::string& help);

// What the readers take: the argument as it is, or (several files, a folder of tables,
// --section-from-filename, or a table where an h5ad is needed) the files combined into one
// cached h5ad with the columns that read it. `needH5ad`: the command writes into a copy of its
// input (celltypes, segment).
struct OpenedDataset {
  std::string path;
  ColumnOptions columns;
};
OpenedDataset openDataset(const DatasetArgument& dataset, bool needH5ad = false, const Progress& progress = {});
} // namespace atlascope::cli
