#pragma once
// The model's expression table on the compute device: the rows of the kept cells (in CellTable
// order), the columns in the model's panel order. Embedding and training share it.
//
// Streamed from the file in slabs of consecutive rows, so the whole matrix never sits in host
// memory, and in the background: a host thread reads slabs (into pinned memory for a GPU) while
// the caller keeps the device busy; the caller moves the slabs read so far into the table in its
// own stream order (uploadReady) and waits only for the rows a chunk of work needs (uploadUntil).
// So a 4M-cell embedding starts on the first sections while the rest of the file is still read.
#include "core/CellTable.h"
#include "core/Progress.h"

#include <torch/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace atlascope::inference {

struct ExpressionTableOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  // Dataset columns of the panel's genes, in panel order; empty: the file's columns as they are.
  std::vector<std::int64_t> geneColumns;
  // HDF5 (as Debian builds it) is not thread-safe: every use of the library while the reader
  // runs must hold this mutex (e.g. a writer thread appending results).
  std::mutex* fileMutex = nullptr;
  int queuedSlabs = 8; // slabs (64 MiB each) read ahead at most
  // Applied on the device to each slab of rows (panel columns, float32) starting at table row
  // `begin`; the table then holds its result, `transformedColumns` wide. An embedding run turns
  // expression into the model's per-cell tokens here, so the expression table is never kept.
  std::function<torch::Tensor(const torch::Tensor& rows, std::int64_t begin)> transform;
  std::int64_t transformedColumns = 0;
  // Table rows before this one are never read (left unset): a rank of a sharded embedding reads
  // only the rows its chunks reach.
  std::int64_t firstRow = 0;
};

class ExpressionTableStream {
public:
  ExpressionTableStream(const ExpressionSource& source, const CellTable& cells, ExpressionTableOptions options);
  ~ExpressionTableStream(); // stops the reader and waits for it
  ExpressionTableStream(const ExpressionTableStream&) = delete;
  ExpressionTableStream& operator=(const ExpressionTableStream&) = delete;

  const torch::Tensor& table() const;
  std::int64_t rowsUploaded() const;
  void uploadReady();                  // every slab read so far, without waiting
  void uploadUntil(std::int64_t rows); // waits for the reader as needed; rethrows its errors
  double readSeconds() const;          // spent in the file by the reader thread

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole table, waiting for it (progress per slab; cancellable).
torch::Tensor loadExpressionTable(const ExpressionSource& source, const CellTable& cells,
                                  const ExpressionTableOptions& options, const Progress& progress = {});

} // namespace atlascope::inference
