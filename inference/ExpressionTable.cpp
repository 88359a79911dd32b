#include "inference/ExpressionTable.h"

#include <torch/torch.h>

#include <chrono>

namespace atlascope::inference {

torch::Tensor loadExpressionTable(const ExpressionSource& source, const CellTable& cells, const ExpressionTableOptions& opt,
                                  const Progress& progress) {
  const bool cuda = opt.device.is_cuda();
  const std::int64_t n = cells.size(), dataGenes = source.genes();
  const std::int64_t G = opt.geneColumns.empty() ? dataGenes : static_cast<std::int64_t>(opt.geneColumns.size());
  torch::Tensor table = torch::empty({n, G}, torch::TensorOptions().dtype(opt.dtype).device(opt.device));
  const torch::Tensor geneIndex =
      opt.geneColumns.empty() ? torch::Tensor()
                              : torch::from_blob(const_cast<std::int64_t*>(opt.geneColumns.data()), {G}, torch::kInt64).clone().to(opt.device);
  const std::int64_t slab = std::max<std::int64_t>(1, (64ll << 20) / (4 * std::max<std::int64_t>(1, dataGenes))); // 64 MiB of rows
  torch::Tensor host = torch::empty({slab, dataGenes}, torch::kFloat32);
  if (cuda) host = host.pin_memory();
  std::int64_t i = 0;
  while (i < n) {
    // The longest run of consecutive file rows (skipped cells break runs).
    std::int64_t j = i + 1;
    while (j < n && j - i < slab && cells.fileRow[static_cast<std::size_t>(j)] == cells.fileRow[static_cast<std::size_t>(j - 1)] + 1) ++j;
    const auto t = std::chrono::steady_clock::now();
    if (cuda) torch::cuda::synchronize(); // the pinned slab is about to be overwritten
    source.readRows(cells.fileRow[static_cast<std::size_t>(i)], j - i, host.data_ptr<float>());
    if (opt.readSeconds) *opt.readSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    torch::Tensor part = host.narrow(0, 0, j - i).to(opt.device, /*non_blocking=*/true);
    if (geneIndex.defined()) part = part.index_select(1, geneIndex);
    table.narrow(0, i, j - i).copy_(part);
    i = j;
    progress("reading expression", i, n);
  }
  if (cuda) torch::cuda::synchronize();
  return table;
}

} // namespace atlascope::inference
