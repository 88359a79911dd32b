#include "inference/Embedding.h"

#include "inference/FusedKernels.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

namespace atlascope::inference {

std::vector<std::int64_t> orderBySize(const NeighborhoodList& hoods) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(hoods.cells()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return hoods.size(a) < hoods.size(b); });
  return order;
}

BatchPlan planBatches(const NeighborhoodList& hoods, const std::vector<std::int64_t>& order, std::int64_t batchTokens,
                      bool exactLengths, const PackShape* shape) {
  BatchPlan plan;
  std::int64_t first = 0;
  while (first < static_cast<std::int64_t>(order.size())) {
    std::int64_t last = first;
    std::int64_t longest = 0, tokens = 0;
    // Sorted ascending, so the last cell added sets the padded length.
    while (last < static_cast<std::int64_t>(order.size())) {
      const std::int64_t size = hoods.size(order[static_cast<std::size_t>(last)]);
      const std::int64_t len = std::max(longest, size);
      // Packed: the rows packBatch gives, and the padded layout's B x L (which the fallbacks, the
      // padded pool and attention, allocate by) within a quarter more than the budget, as the
      // bound by cells x longest held it before; sorted by size, that binds only at a chunk's
      // tail of long neighbourhoods.
      const std::int64_t padded = (len + 1) * (last - first + 1);
      const bool over = shape && shape->virtualZeroSlot
                            ? packedRowBound(last - first + 1, tokens + size, len, *shape) > batchTokens ||
                                  padded > batchTokens + batchTokens / 4
                            : padded > batchTokens;
      if (last > first && over) break;
      if (exactLengths && last > first && len != longest) break;
      longest = len;
      tokens += size;
      ++last;
    }
    plan.ranges.emplace_back(first, last);
    first = last;
  }
  return plan;
}

Batch makeBatch(const NeighborhoodList& hoods, const std::vector<std::int64_t>& order, std::int64_t first,
                std::int64_t last, std::int64_t cellOffset, torch::Device device) {
  const std::int64_t B = last - first;
  std::int64_t N = 0;
  for (std::int64_t k = first; k < last; ++k) N = std::max(N, hoods.size(order[static_cast<std::size_t>(k)]));
  auto observed = torch::zeros({B, N}, torch::kInt64);
  auto valid = torch::zeros({B, N}, torch::kBool);
  auto reference = torch::empty({B}, torch::kInt64);
  std::int64_t shortest = N;
  auto* obs = observed.data_ptr<std::int64_t>();
  auto* val = valid.data_ptr<bool>();
  auto* ref = reference.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t cell = order[static_cast<std::size_t>(first + b)];
    ref[b] = cellOffset + cell;
    const std::int64_t s = hoods.indptr[static_cast<std::size_t>(cell)], n = hoods.size(cell);
    shortest = std::min(shortest, n);
    for (std::int64_t j = 0; j < n; ++j) {
      obs[b * N + j] = hoods.indices[static_cast<std::size_t>(s + j)];
      val[b * N + j] = true;
    }
    // Padding rows point at the reference cell: a valid row, masked out.
    for (std::int64_t j = n; j < N; ++j) obs[b * N + j] = cellOffset + cell;
  }
  Batch batch;
  batch.uniform = shortest == N;
  const bool pin = device.is_cuda();
  batch.observed = pin ? observed.pin_memory().to(device, true) : observed;
  batch.valid = pin ? valid.pin_memory().to(device, true) : valid;
  batch.reference = pin ? reference.pin_memory().to(device, true) : reference;
  return batch;
}

// Virtual slots up to the short-attention kernel's longest sequence (it alone appends them);
// longer neighbourhoods keep them stored, for flash attention.
PackShape gpuEmbeddingShape(bool storedZeroSlot) {
  return PackShape{0, 8, 4096, 8, !storedZeroSlot, cuda::kShortAttentionLongest};
}

Output embedNeighborhoods(const CellTransformer& model, const torch::Tensor& expression, const torch::Tensor& types,
                          const NeighborhoodList& hoods, std::int64_t cellOffset, const EmbedOptions& options,
                          const Progress& progress) {
  torch::NoGradGuard noGrad;
  const std::int64_t n = hoods.cells(), E = model.config().embedDim, G = model.config().genes;
  const auto order = orderBySize(hoods);
  // embed's GPU path: bf16 packed batches read in place by the GPU's attention (a float32 model
  // would scatter rounded batches to their padded layout: rounding only costs there).
  const bool embedPath = options.packed && options.embedPath && model.variableLengthAttention();
  const PackShape shape =
      embedPath ? gpuEmbeddingShape(options.storedZeroSlot || !model.virtualZeroSlots()) : PackShape{};
  const auto plan = planBatches(hoods, order, options.batchTokens, options.exactLengths, &shape);
  Output out;
  out.embedding = torch::empty({n, E}, torch::kFloat32);
  if (options.heads) {
    out.mu = torch::empty({n, G}, torch::kFloat32);
    out.theta = torch::empty({n, G}, torch::kFloat32);
    out.ziLogits = torch::empty({n, G}, torch::kFloat32);
    out.scale = torch::empty({n, G}, torch::kFloat32);
  }
  const auto orderTensor = torch::from_blob(const_cast<std::int64_t*>(order.data()), {n}, torch::kInt64);
  const torch::Tensor table =
      embedPath ? model.cellTable(expression, types, model.cellTableColumns(expression.size(0))) : torch::Tensor();
  std::int64_t done = 0;
  for (const auto& [first, last] : plan.ranges) {
    const Batch batch =
        options.packed
            ? toDevice(packBatch(makeBatch(hoods, order, first, last, cellOffset, torch::kCPU), shape), model.device())
            : makeBatch(hoods, order, first, last, cellOffset, model.device());
    const Output o = embedPath ? model.forwardFromTokens(table, types, batch, options.heads)
                               : model.forward(expression, types, batch, options.heads);
    const auto where = orderTensor.narrow(0, first, last - first);
    // The first last - first rows: a rounded batch appends empty neighbourhoods.
    auto rows = [&](const torch::Tensor& t) { return t.narrow(0, 0, last - first).to(torch::kCPU); };
    out.embedding.index_copy_(0, where, rows(o.embedding));
    if (options.heads) {
      out.mu.index_copy_(0, where, rows(o.mu));
      out.theta.index_copy_(0, where, rows(o.theta));
      out.ziLogits.index_copy_(0, where, rows(o.ziLogits));
      out.scale.index_copy_(0, where, rows(o.scale));
    }
    done += last - first;
    progress("embedding", done, n);
  }
  return out;
}

} // namespace atlascope::inference
