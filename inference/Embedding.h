#pragma once
// Embedding many cells: neighbourhoods grouped by size so that padding stays small, batches cut
// by a token budget rather than a fixed cell count, results scattered back into cell order.
#include "core/Neighborhood.h"
#include "core/Progress.h"
#include "inference/CellTransformer.h"

#include <torch/types.h>

namespace atlascope::inference {

struct EmbedOptions {
  // Padded tokens per batch ((largest neighbourhood + 1) x cells). 64k keeps CPU batches in
  // cache-friendly sizes; the GPU path uses more.
  // CPU: small batches keep each intermediate under glibc's mmap threshold (32 MiB); 65536
  // tokens made every FF activation a fresh mmap and page faults, half the run in the kernel.
  std::int64_t batchTokens = 4096;
  bool heads = false;        // also compute mu/theta/zi_logits
  bool exactLengths = false; // see planBatches
  // Packed batches (packBatch): the real tokens only, sequence after sequence; on a GPU in bf16
  // attention reads them in place (variable-length flash attention), elsewhere it scatters them to
  // the padded layout. Off: padded batches with a key mask (the path before packing).
  bool packed = false;
  // Packed batches on a GPU rounded as `embed` rounds them (gpuEmbeddingShape) and embedded from a
  // table of per-cell tokens (CellTransformer::forwardFromTokens), `embed`'s path; off: exact
  // shapes through CellTransformer::forward.
  bool embedPath = true;
  // embedPath's batches with add_zero_attn's slots stored, the layout before virtual ones
  // (Batch::virtualZeroSlot): for same-call comparisons.
  bool storedZeroSlot = false;
};

// How `embed` rounds packed batches on a GPU (EmbedRunOptions::roundShapes): R to 4,096 rows, B
// to 1/8 of its octave by empty neighbourhoods, the padded length to 8, the zero slots virtual
// (PackShape; `storedZeroSlot`: stored, the layout before).
PackShape gpuEmbeddingShape(bool storedZeroSlot = false);

// Cells' order of processing: ascending neighbourhood size (stable), so consecutive cells pad to
// nearly the same length.
std::vector<std::int64_t> orderBySize(const NeighborhoodList& hoods);

// Batches over `order` (indices into `hoods`), each with at most batchTokens padded tokens.
struct BatchPlan {
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges; // [first, last) into order
};
// With exactLengths, a batch never mixes neighbourhood sizes (no padding, no attention mask: the
// GPU's default); otherwise batches fill the budget and pad to their longest neighbourhood.
// `shape` with virtualZeroSlot (embedding's GPU batches): the budget bounds the packed rows
// packBatch(shape) gives instead (packedRowBound: its rounding, fillers and empty neighbourhoods
// included), so that R stays within batchTokens rather than rounding past it.
BatchPlan planBatches(const NeighborhoodList& hoods, const std::vector<std::int64_t>& order, std::int64_t batchTokens,
                      bool exactLengths = false, const PackShape* shape = nullptr);

// Builds one padded Batch for cells order[first..last) whose rows are `cellOffset + i`.
Batch makeBatch(const NeighborhoodList& hoods, const std::vector<std::int64_t>& order, std::int64_t first,
                std::int64_t last, std::int64_t cellOffset, torch::Device device);

// Embeds the cells of `hoods` (cell i of hoods is row cellOffset + i of the tables), returning
// outputs in cell order on the CPU.
Output embedNeighborhoods(const CellTransformer& model, const torch::Tensor& expression, const torch::Tensor& types,
                          const NeighborhoodList& hoods, std::int64_t cellOffset, const EmbedOptions& options,
                          const Progress& progress = {});

} // namespace atlascope::inference
