#include "inference/ExpressionTable.h"

#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <thread>

namespace atlascope::inference {

struct ExpressionTableStream::Impl {
  const ExpressionSource& source;
  const CellTable& cells;
  ExpressionTableOptions opt;
  torch::Tensor table, geneIndex;
  std::int64_t uploaded = 0;

  struct Slab {
    std::int64_t begin, count;
    torch::Tensor host;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Slab> ready;
  bool finished = false, stop = false;
  std::exception_ptr error;
  double readSeconds = 0;
  std::thread reader;

  Impl(const ExpressionSource& s, const CellTable& c, ExpressionTableOptions o)
      : source(s), cells(c), opt(std::move(o)) {}

  void read() {
    try {
      const std::int64_t n = cells.size(), dataGenes = source.genes();
      const std::int64_t slab =
          std::max<std::int64_t>(1, (64ll << 20) / (4 * std::max<std::int64_t>(1, dataGenes))); // 64 MiB
      std::int64_t i = std::min(n, std::max<std::int64_t>(0, opt.firstRow));
      while (i < n) {
        // The longest run of consecutive file rows (skipped cells break runs).
        std::int64_t j = i + 1;
        while (j < n && j - i < slab &&
               cells.fileRow[static_cast<std::size_t>(j)] == cells.fileRow[static_cast<std::size_t>(j - 1)] + 1)
          ++j;
        torch::Tensor host = torch::empty(
            {j - i, dataGenes}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(opt.device.is_cuda()));
        const auto t = std::chrono::steady_clock::now();
        {
          std::unique_lock<std::mutex> fileLock;
          if (opt.fileMutex) fileLock = std::unique_lock<std::mutex>(*opt.fileMutex);
          source.readRows(cells.fileRow[static_cast<std::size_t>(i)], j - i, host.data_ptr<float>());
        }
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
        std::unique_lock<std::mutex> lock(mutex);
        readSeconds += took;
        changed.wait(lock, [&] { return stop || static_cast<int>(ready.size()) < opt.queuedSlabs; });
        if (stop) return;
        ready.push_back({i, j - i, std::move(host)});
        changed.notify_all();
        i = j;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    changed.notify_all();
  }

  // Moves one slab into the table: the copy is queued on the device (a pinned slab is reused by
  // LibTorch's host allocator only once its copy has completed).
  void upload(const Slab& s) {
    torch::Tensor part = s.host.to(opt.device, /*non_blocking=*/true);
    if (geneIndex.defined()) part = part.index_select(1, geneIndex);
    if (opt.transform) part = opt.transform(part, s.begin);
    table.narrow(0, s.begin, s.count).copy_(part);
    uploaded = s.begin + s.count;
  }

  // Takes the next slab; with `wait`, blocks until there is one or the reader ends.
  bool take(Slab& out, bool wait) {
    std::unique_lock<std::mutex> lock(mutex);
    if (wait) changed.wait(lock, [&] { return !ready.empty() || finished; });
    if (ready.empty()) {
      if (error) std::rethrow_exception(error);
      return false;
    }
    out = std::move(ready.front());
    ready.pop_front();
    changed.notify_all();
    return true;
  }
};

ExpressionTableStream::ExpressionTableStream(const ExpressionSource& source, const CellTable& cells,
                                             ExpressionTableOptions options)
    : impl_(std::make_unique<Impl>(source, cells, std::move(options))) {
  Impl& m = *impl_;
  m.uploaded = std::min(cells.size(), std::max<std::int64_t>(0, m.opt.firstRow));
  const std::int64_t n = cells.size(), dataGenes = source.genes();
  const std::int64_t G = m.opt.geneColumns.empty() ? dataGenes : static_cast<std::int64_t>(m.opt.geneColumns.size());
  m.table = torch::empty({n, m.opt.transform ? m.opt.transformedColumns : G},
                         torch::TensorOptions().dtype(m.opt.dtype).device(m.opt.device));
  if (!m.opt.geneColumns.empty())
    m.geneIndex = torch::from_blob(m.opt.geneColumns.data(), {G}, torch::kInt64).clone().to(m.opt.device);
  m.reader = std::thread([&m] { m.read(); });
}

ExpressionTableStream::~ExpressionTableStream() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
    impl_->changed.notify_all();
  }
  impl_->reader.join();
}

const torch::Tensor& ExpressionTableStream::table() const { return impl_->table; }
std::int64_t ExpressionTableStream::rowsUploaded() const { return impl_->uploaded; }

double ExpressionTableStream::readSeconds() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->readSeconds;
}

void ExpressionTableStream::uploadReady() {
  Impl::Slab s;
  while (impl_->take(s, false)) impl_->upload(s);
}

void ExpressionTableStream::uploadUntil(std::int64_t rows) {
  Impl::Slab s;
  while (impl_->uploaded < rows) {
    if (!impl_->take(s, true)) break; // the reader ended early: its error was rethrown, or no rows are left
    impl_->upload(s);
  }
}

torch::Tensor loadExpressionTable(const ExpressionSource& source, const CellTable& cells,
                                  const ExpressionTableOptions& options, const Progress& progress) {
  ExpressionTableStream stream(source, cells, options);
  const std::int64_t n = cells.size();
  const std::int64_t step = std::max<std::int64_t>(1, n / 50);
  for (std::int64_t rows = std::min(n, step);; rows = std::min(n, rows + step)) {
    stream.uploadUntil(rows);
    progress("reading expression", stream.rowsUploaded(), n);
    if (rows >= n) break;
  }
  if (options.device.is_cuda()) torch::cuda::synchronize();
  return stream.table();
}

} // namespace atlascope::inference
