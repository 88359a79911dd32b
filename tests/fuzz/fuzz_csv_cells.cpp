// CSV/TSV cell tables: RFC 4180 parsing, column guessing, numbers, ids, gene ranges; the first
// byte picks the delimiter (by the file name, as the readers do) and a few column options.
#include "core/CellTable.h"
#include "tests/fuzz/FuzzSupport.h"

#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string path = atlascope::fuzz::writeInput(mode & 1 ? "cells.tsv" : "cells.csv", data + 1, size - 1);
  atlascope::ColumnOptions opt;
  if (mode & 2) opt.units = "mm";
  if (mode & 4) opt.genes = "g1..g3";
  if (mode & 8) opt.type = "-";
  if (mode & 16) opt.ccf = "ccf_x,ccf_y,ccf_z";
  std::vector<float> expression;
  ATLASCOPE_FUZZ_BODY(const auto t = atlascope::readCsvCells(path, opt, &expression); (void)t.size());
  ATLASCOPE_FUZZ_BODY(const auto labels = atlascope::readObsLabels(path, "cell_type"); (void)labels.codes.size());
  return 0;
}
