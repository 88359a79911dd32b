#pragma once
// The model's expression table on the compute device: the rows of the kept cells (in CellTable
// order), the columns in the model's panel order. Streamed from the file in slabs of consecutive
// rows through one pinned buffer, so the whole matrix never sits in host memory; embedding and
// training share it.
#include "core/CellTable.h"
#include "core/Progress.h"

#include <torch/types.h>

#include <vector>

namespace atlascope::inference {

struct ExpressionTableOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  // Dataset columns of the panel's genes, in panel order; empty: the file's columns as they are.
  std::vector<std::int64_t> geneColumns;
  double* readSeconds = nullptr; // adds the time spent reading the file
};

torch::Tensor loadExpressionTable(const ExpressionSource& source, const CellTable& cells, const ExpressionTableOptions& options,
                                  const Progress& progress = {});

} // namespace atlascope::inference
