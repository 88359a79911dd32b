#include "inference/EmbeddingRun.h"

#include "core/AnnDataResults.h"
#include "core/AtomicFile.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/Neighborhood.h"
#include "core/Trace.h"
#include "inference/ChunkLayout.h"
#include "inference/Device.h"
#include "inference/Distributed.h"
#include "inference/Embedding.h"
#include "inference/ExpressionTable.h"
#include "inference/KernelTrace.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
// Completion events for chunks copied back from a GPU, in LibTorch builds that have CUDA.
#if defined(__has_include)
#if __has_include(<ATen/cuda/CUDAEvent.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define ATLASCOPE_WITH_CUDA_EVENTS 1
#endif
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace atlascope::inference {

namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string chunkFile(const std::string& dir, std::int64_t k) {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%06lld.f32", static_cast<long long>(k));
  return (fs::path(dir) / name).string();
}

// The parts folder, once the output is committed, its files unlinked on several threads: a 4M-cell
// run leaves 6.1 GB of part files, whose unlinking (each file's page cache freed) took 0.31 s on
// one thread on the H200 machine, after everything else was done, and still 0.19 s on 8 threads
// (22 files of up to 384 MB; call s16-2, ATLASCOPE_TRACE's "output committed" to "statistics").
// A thread a file, up to the cores: 34-36 ms (call s16-3; 16 cores).
void removeParts(const std::string& dir) {
  const std::vector<std::string> names = listFolder(dir);
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < names.size(); i = next++) std::remove((dir + "/" + names[i]).c_str());
  };
  std::vector<std::thread> pool;
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t threads = std::min<std::size_t>(cores, std::max<std::size_t>(1, names.size()));
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  removeFolder(dir);
}

// The chunk layout of the run recorded in a parts folder's run.json when the rest of its record
// equals `meta` (same data, model, cells, chunk size, width; with `sameShape` only the fields
// `meta` has); none when it does not, or when the file is missing or damaged. A record without a
// layout is of a run from before tapering: uniform.
std::optional<ChunkLayout> recordedLayout(const std::string& path, const nlohmann::json& meta, std::int64_t cells,
                                          std::int64_t chunkCells, bool sameShape = false) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  try {
    nlohmann::json old;
    f >> old;
    if (!old.is_object()) return std::nullopt;
    const auto starts = old.find("chunk_starts");
    ChunkLayout layout = uniformChunks(cells, chunkCells);
    if (starts != old.end()) {
      if (!starts->is_array()) return std::nullopt;
      layout.starts.clear();
      for (const auto& v : *starts) {
        if (!v.is_number_integer()) return std::nullopt;
        layout.starts.push_back(v.get<std::int64_t>());
      }
      old.erase("chunk_starts");
    }
    if (sameShape) {
      for (const auto& [key, value] : meta.items())
        if (!old.contains(key) || old[key] != value) return std::nullopt;
    } else if (old != meta) {
      return std::nullopt;
    }
    if (!layout.valid(cells)) return std::nullopt;
    return layout;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "This chunk's copy to the host has completed", without a device-wide synchronisation (which
// would also wait for the chunks queued after it). CPU work is synchronous: nothing to wait for.
struct DeviceEvent {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
  std::shared_ptr<at::cuda::CUDAEvent> event;
  void record() {
    event = std::make_shared<at::cuda::CUDAEvent>();
    event->record();
  }
  void wait() const {
    if (event) event->synchronize();
  }
#else
  void record() {}
  void wait() const {}
#endif
};

// Finished chunks copied back to the host on a stream of their own (the copy engine), behind an
// event on the compute stream, so that a chunk's copy (up to 384 MB, 6.1 GB in a 4M-cell run)
// overlaps the next batches instead of queueing between them. The chunk's device tensor is marked
// as used by that stream, so the allocator does not hand its memory out before the copy is done.
// `done` is recorded on the stream that copied. Off (or on the CPU): the current stream, as before.
struct ChunkCopier {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
  std::optional<c10::cuda::CUDAStream> stream;
#endif
  bool sideStream = true;
  // The side stream, created before the writer thread may use it (handOver, copyToHost).
  void start(torch::Device device) {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
    if (device.is_cuda() && sideStream && !stream) stream = c10::cuda::getStreamFromPool(false, device.index());
#endif
    (void)device;
  }
  // EmbedRunOptions::writerCopies: the chunk stays on the device; the side stream is ordered after
  // its batches now, and the writer copies it later (copyToHost), the queue of batches untouched.
  void handOver(const torch::Tensor& device) {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
    if (device.is_cuda() && stream) {
      at::cuda::CUDAEvent computed;
      computed.record(c10::cuda::getCurrentCUDAStream(device.device().index()));
      computed.block(*stream);
      device.record_stream(*stream);
    }
#endif
    (void)device;
  }
  // The writer's copy of a chunk ([rows, cols] float32) into pageable `host`, through two pinned
  // slices of 32 MiB in turn: each slice copied on the side stream, waited for by its event, then
  // moved on by the CPU while the next one copies. Waits for this chunk's batches (and, where the
  // writer lags, for those of the chunks handed over since, queued on the same stream). A plain
  // copy into pageable memory (the driver staging it) blocked the other threads' CUDA calls until
  // it was done: the queueing thread stalled at chunk starts, the device idle 30-55 ms each time.
  void copyToHost(float* host, const torch::Tensor& device) {
    const std::int64_t rows = device.size(0), cols = device.size(1);
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
    if (device.is_cuda() && stream) {
      const std::int64_t slice = sliceRows(cols);
      allocateStaging(cols);
      c10::cuda::CUDAStreamGuard guard(*stream);
      at::cuda::CUDAEvent copied[2];
      std::int64_t pendingRow = -1, pendingRows = 0; // the slice in staging[1 - s % 2], not yet moved on
      auto moveOn = [&](int j) {
        copied[j].synchronize();
        std::memcpy(host + pendingRow * cols, staging[j].data_ptr<float>(),
                    static_cast<std::size_t>(pendingRows * cols) * sizeof(float));
      };
      std::int64_t s = 0;
      for (std::int64_t r = 0; r < rows; r += slice, ++s) {
        const std::int64_t n = std::min(slice, rows - r);
        const int j = static_cast<int>(s % 2);
        staging[j].narrow(0, 0, n).copy_(device.narrow(0, r, n), /*non_blocking=*/true);
        copied[j].record(*stream);
        if (pendingRow >= 0) moveOn(1 - j);
        pendingRow = r;
        pendingRows = n;
      }
      if (pendingRow >= 0) moveOn(static_cast<int>((s - 1) % 2));
      return;
    }
#endif
    torch::from_blob(host, {rows, cols}, torch::kFloat32).copy_(device);
  }
  static std::int64_t sliceRows(std::int64_t cols) { // 32 MiB of float32 rows
    return std::max<std::int64_t>(1, (std::int64_t{32} << 20) / (4 * std::max<std::int64_t>(1, cols)));
  }
  // The two slices, allocated once (by the writer as it starts, before the run's first batches,
  // so that pinning them does not hold up their launches).
  void allocateStaging(std::int64_t cols) {
    const std::int64_t rows = sliceRows(cols);
    for (torch::Tensor& t : staging)
      if (!t.defined() || t.size(0) < rows || t.size(1) != cols)
        t = torch::empty({rows, cols}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
  }
  torch::Tensor staging[2];
  void operator()(torch::Tensor& host, const torch::Tensor& device, DeviceEvent& done) {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
    if (device.is_cuda() && sideStream) {
      start(device.device());
      handOver(device);
      c10::cuda::CUDAStreamGuard guard(*stream);
      host.copy_(device, /*non_blocking=*/true);
      done.record();
      return;
    }
#endif
    host.copy_(device, /*non_blocking=*/device.is_cuda());
    done.record();
  }
};

// Each batch's start and end on the compute stream (CUDA events with timing), so that a run can
// say where its device waited: between batches within a chunk, or before a chunk's first batch.
// Read once the device has finished (after the writer has taken the last chunk). A batch's start
// is recorded before it is fetched from the builders and uploaded, so a wait for its build when
// the device's queue was empty counts as busy; the gap before a chunk's first batch also holds
// the order's copy (and the previous chunk's copy back to the host where it runs on the compute
// stream: EmbedRunOptions::chunkCopyStream off).
struct DeviceTimeline {
  struct Summary {
    double busy = 0, idle = 0, idleAtChunkStarts = 0, idleMax = 0;
    std::vector<double> chunkStartGaps; // the wait before each chunk's first batch but the run's first
  };
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
  std::vector<std::unique_ptr<at::cuda::CUDAEvent>> starts, ends;
  std::vector<bool> chunkFirst;
  void begin(bool on, bool firstOfChunk) {
    if (!on) return;
    starts.push_back(std::make_unique<at::cuda::CUDAEvent>(cudaEventDefault));
    starts.back()->record();
    chunkFirst.push_back(firstOfChunk);
  }
  void end(bool on) {
    if (!on) return;
    ends.push_back(std::make_unique<at::cuda::CUDAEvent>(cudaEventDefault));
    ends.back()->record();
  }
  Summary summary() const {
    Summary s;
    const std::size_t n = std::min(starts.size(), ends.size());
    for (std::size_t i = 0; i < n; ++i) {
      s.busy += starts[i]->elapsed_time(*ends[i]) / 1000.0;
      if (i == 0) continue;
      const double gap = std::max(0.0, ends[i - 1]->elapsed_time(*starts[i]) / 1000.0);
      s.idle += gap;
      if (chunkFirst[i]) {
        s.idleAtChunkStarts += gap;
        s.chunkStartGaps.push_back(gap);
      }
      s.idleMax = std::max(s.idleMax, gap);
    }
    return s;
  }
#else
  void begin(bool, bool) {}
  void end(bool) {}
  Summary summary() const { return {}; }
#endif
};

// Pinned host copies of finished chunks, reused: allocating one (up to 384 MB) on the queueing
// thread at a chunk's end took up to 0.35 s, in which the device ran out of queued batches (0.4 s
// of a 4M-cell run on the H200). Allocated on a thread of their own as the run starts; the writer
// gives each back once it has written its chunk. Never waits for a buffer once the filler is done:
// with none free it allocates one (a writer that failed gives none back).
class HostBuffers {
public:
  ~HostBuffers() {
    stop_ = true; // a cancelled or failed run does not wait for the rest of the pool
    if (filler_.joinable()) filler_.join();
  }
  void start(int count, std::int64_t rows, std::int64_t cols) {
    rows_ = rows;
    cols_ = cols;
    filling_ = true;
    filler_ = std::thread([this, count] {
      for (int i = 0; i < count; ++i) {
        torch::Tensor t;
        try {
          if (!stop_) t = allocate(rows_, cols_);
        } catch (...) { // out of pinned memory: take() allocates as before
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (t.defined()) free_.push_back(std::move(t));
        if (i + 1 == count) filling_ = false;
        changed_.notify_all();
      }
    });
  }
  // A buffer of at least `rows` rows of `cols` (more rows: narrow it).
  torch::Tensor take(std::int64_t rows, std::int64_t cols) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !free_.empty() || !filling_; });
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->size(0) >= rows && it->size(1) == cols) {
        torch::Tensor t = std::move(*it);
        free_.erase(it);
        return t;
      }
    lock.unlock();
    return allocate(rows, cols);
  }
  void give(torch::Tensor t) {
    if (t.size(0) < rows_ || t.size(1) != cols_) return; // one allocated by take(): freed
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(t));
    changed_.notify_all();
  }

private:
  static torch::Tensor allocate(std::int64_t rows, std::int64_t cols) {
    return torch::empty({rows, cols}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<torch::Tensor> free_;
  bool filling_ = false;
  std::atomic<bool> stop_{false};
  std::int64_t rows_ = 0, cols_ = 0;
  std::thread filler_;
};

// Packed batches reach a GPU on a stream of their own (the copy engine), so that a batch's upload
// overlaps the previous batch's compute instead of queueing behind it on the compute stream
// (~6% of the device time on the H200). The compute stream waits for the copy by an event, and
// the device tensors are marked as used by it (allocated on the upload stream).
struct BatchUploader {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
  std::optional<c10::cuda::CUDAStream> stream;
#endif
  bool sideStream = true;
  Batch operator()(const Batch& host, torch::Device device) {
#ifdef ATLASCOPE_WITH_CUDA_EVENTS
    if (device.is_cuda() && sideStream) {
      if (!stream) stream = c10::cuda::getStreamFromPool(false, device.index());
      const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device.index());
      Batch b;
      {
        c10::cuda::CUDAStreamGuard guard(*stream);
        b = toDevice(pinned(host), device);
      }
      at::cuda::CUDAEvent copied;
      copied.record(*stream);
      copied.block(compute);
      for (torch::Tensor* t : b.tensors())
        if (t->defined()) t->record_stream(compute);
      return b;
    }
#endif
    return toDevice(host, device);
  }
};

} // namespace

EmbedRunResult embedDataset(ModelFile& mf, const std::string& dataPath, const ColumnOptions& columns,
                            const std::string& outPath, const EmbedRunOptions& opt) {
  const auto start = Clock::now();
  EmbedRunResult res;
  torch::NoGradGuard noGrad;
  if (!opt.h5adOut.empty() && (dataPath.size() < 5 || dataPath.compare(dataPath.size() - 5, 5, ".h5ad") != 0))
    throw Error("--h5ad-out needs an .h5ad input (results go into a copy of it)");
  const std::string dev = resolveDevice(opt.device);
  res.device = dev;
  const bool cuda = dev == "cuda";
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, cudaIndex()) : torch::Device(torch::kCPU);
  if (!cuda) configureCpuThreads();
  trace("embed: moving the model");
  CellTransformer& model = *mf.model;
  model.to(device, cuda ? torch::kBFloat16 : torch::kFloat32);
  model.setFusedKernels(opt.fusedKernels);
  model.setShortAttention(opt.shortAttention);
  model.setAttentionVariant(opt.attentionVariant);
  model.setPoolKernelBefore(opt.poolKernelBefore);
  model.setPoolTokenPairs(!opt.poolSingleTokens);
  model.setGemmGelu(opt.gemmGelu);
  model.setErffGelu(opt.erffGelu);
  model.setLinCombGelu(opt.linCombGelu);
  model.setFp8FeedForward(opt.fp8FeedForward);
  model.setFp8ErfGelu(opt.fp8ErfGelu);
  model.setFusedPool(opt.fusedPool);
  model.setFirstLayerPerCell(opt.firstLayerPerCell);
  model.setResidualInProduct(opt.residualInProduct);
  model.setFirstResidualFromTable(!opt.assembleFirstTokens);
  const std::int64_t firstResidualRunsBefore = model.firstResidualRuns();
  const std::int64_t virtualDeclinesBefore = model.virtualZeroSlotDeclines();
  res.fusedKernels = model.fusedKernels();
  res.shortAttention = model.shortAttention();
  res.attentionVariant = model.attentionVariant();
  res.gemmGelu = model.gemmGelu();
  res.erffGelu = res.gemmGelu && model.erffGelu();
  res.linCombGelu = res.gemmGelu && !res.erffGelu && model.linCombGelu();
  res.fp8FeedForward = model.fp8FeedForward();
  res.fp8ErfGelu = res.fp8FeedForward && model.fp8ErfGelu();
  const std::int64_t fp8FallbacksBefore = model.fp8Fallbacks();
  const std::int64_t firstLayerDeclinesBefore = model.firstLayerDeclines();
  if (cuda && res.fp8FeedForward && !model.gemmGelu())
    res.warnings.push_back("--fp8-feed-forward runs in float32 on this GPU (its kernels need the fused kernels and an "
                           "sm_90a build with CUTLASS): the same e4m3 rounding, slower than the default");
  res.fusedPool = model.fusedPool();
  res.residualInProduct = cuda && model.fusedKernels() && model.residualInProduct() && !model.fp8FeedForward();
  if (cuda && opt.residualInProduct && model.fp8FeedForward())
    res.warnings.push_back("--residual-in-product does not apply with --fp8-feed-forward (its layers keep their "
                           "second LayerNorm as it was)");
  res.poolKernelBefore = res.fusedPool && model.poolKernelBefore();
  res.poolTokenPairs = res.fusedPool && !res.poolKernelBefore && model.poolTokenPairs() && model.poolTokenPairsApply();
#ifdef ATLASCOPE_WITH_CUDA_EVENTS // without, ChunkCopier copies on the current stream
  res.chunkCopyStream = cuda && opt.chunkCopyStream;
#endif
  const std::int64_t batchTokens = opt.batchTokens > 0 ? opt.batchTokens : (cuda ? 393216 : 4096);
  const std::int64_t chunkCells = opt.chunkCells > 0 ? opt.chunkCells : (cuda ? 250000 : 20000);
  const std::int64_t E = model.config().embedDim, G = model.config().genes;
  const bool packed = !opt.paddedBatches && !opt.exactLengths && model.variableLengthAttention();
  res.packedBatches = packed;
  res.roundShapes = packed && cuda && opt.roundShapes;
  res.virtualZeroSlot = res.roundShapes && !opt.storedZeroSlot && model.virtualZeroSlots();

  // Cells, the panel mapping, coordinates in the model's unit (10 um).
  const auto t0 = Clock::now();
  trace("embed: reading cells");
  const CellTable cells = readCellTable(dataPath, columns);
  trace("embed: cells read");
  const PanelMapping map = mapPanel(mf, cells, opt.reorderGenes);
  res.warnings = map.warnings;
  if (cells.skippedCells > 0)
    res.warnings.push_back(std::to_string(cells.skippedCells) + " cells skipped (" + cells.skippedReason + ")");
  const std::int64_t n = cells.size();
  res.cells = n;
  const ModelPositions pos = modelPositions(cells);
  // The neighbourhood index builds while the run's table, files and threads are set up: on the
  // H200 machine the index took 0.09 s of a GPU run's 0.42 s before its first batch, the set-up
  // after the cells were read 0.05 s of it (ATLASCOPE_TRACE, call s40-1). Waited for (and its
  // error, a non-finite position, raised) where the first neighbourhoods need it, as before.
  NeighborhoodOptions indexOptions;
  indexOptions.buildThreads = opt.indexThreads;
  std::future<std::unique_ptr<NeighborhoodIndex>> indexBuild = std::async(std::launch::async, [&pos, n, indexOptions] {
    return std::make_unique<NeighborhoodIndex>(pos.x.data(), pos.y.data(), pos.section.data(), n, indexOptions);
  });
  std::vector<std::int64_t> typeCodes(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t t = cells.cellType[static_cast<std::size_t>(i)];
    if (t < 0)
      throw FileError(dataPath,
                      "cell " + std::to_string(cells.fileRow[static_cast<std::size_t>(i)]) + " has no cell type");
    typeCodes[static_cast<std::size_t>(i)] = map.typeCodes[static_cast<std::size_t>(t)];
  }
  const torch::Tensor types = torch::from_blob(typeCodes.data(), {n}, torch::kInt64).to(device);
  res.readSeconds += since(t0);

  // The panel streams into the device table in the background (ExpressionTableStream): each
  // chunk waits only for the rows its neighbourhoods reach.
  ExpressionSource source(dataPath, columns);
  const std::int64_t dataGenes = source.genes();
  if (map.geneColumns.empty() && dataGenes != G)
    throw FileError(dataPath, "X has " + std::to_string(dataGenes) + " genes, the model expects " + std::to_string(G));
  std::mutex hdf5; // HDF5 is not thread-safe: the reader and the writer take turns
  ExpressionTableOptions to;
  to.device = device;
  to.dtype = cuda ? torch::kBFloat16 : torch::kFloat32;
  to.geneColumns = map.geneColumns;
  to.fileMutex = &hdf5;
  // The table holds each cell's encoder token, computed once per cell, and where it fits the
  // first layer's q|k|v (CellTransformer::cellTable).
  const std::int64_t tableColumns = packed ? model.cellTableColumns(n) : E;
  res.firstLayerPerCell = tableColumns != E;
  to.transform = [&](const torch::Tensor& rows, std::int64_t begin) {
    return model.cellTable(rows, types.narrow(0, begin, rows.size(0)), tableColumns);
  };
  to.transformedColumns = tableColumns;

  // Resume state.
  const std::string partsDir = outPath + ".parts";
  const std::string metaPath = (fs::path(partsDir) / "run.json").string();
  nlohmann::json meta = {{"data", fs::absolute(dataPath).string()},
                         {"model", fs::absolute(mf.path).string()},
                         {"cells", n},
                         {"chunk_cells", chunkCells},
                         {"embed_dim", E}};
  // FP8 parts are not resumed into a bf16 run nor the reverse (the key only where set: the records
  // of runs before it still resume).
  if (model.fp8FeedForward()) meta["fp8_feed_forward"] = model.fp8ErfGelu() ? "erf GELU" : "tanh GELU";
  // Sharded over ranks: rank r takes the r-th contiguous range of chunks; rank 0 prepares the
  // parts folder and its layout before anyone reads them, and assembles the output.
  const bool sharded = opt.dist && opt.dist->size() > 1;
  const int rank = sharded ? opt.dist->rank() : 0, world = sharded ? opt.dist->size() : 1;
  const bool lead = rank == 0;
  res.rank = rank;
  res.worldSize = world;
  fs::create_directories(partsDir);
  std::optional<ChunkLayout> recorded;
  if (lead) {
    if (opt.resume) recorded = recordedLayout(metaPath, meta, n, chunkCells);
    if (!recorded) {
      for (const auto& name : listFolder(partsDir)) std::remove((partsDir + "/" + name).c_str());
      recorded = opt.taperedChunks ? taperedChunks(n, chunkCells, world) : uniformChunks(n, chunkCells);
      nlohmann::json record = meta;
      record["chunk_starts"] = recorded->starts;
      const std::string text = record.dump();
      writeFileAtomically(metaPath, text.data(), text.size());
    }
  }
  if (sharded) opt.dist->barrier();
  if (!lead) {
    // Rank 0's record, of the same cells and chunks: its paths may differ from this rank's
    // (another host, another working folder) while the files are the same.
    const nlohmann::json shape = {{"cells", n}, {"chunk_cells", chunkCells}, {"embed_dim", E}};
    recorded = recordedLayout(metaPath, shape, n, chunkCells, true);
    if (!recorded)
      throw FileError(metaPath, "rank 0's record of this run is missing here, or of other cells (rank " +
                                    std::to_string(rank) + "): the output's folder must be shared by the ranks");
  }
  const ChunkLayout layout = std::move(*recorded);
  const std::int64_t chunks = layout.chunks();
  res.chunks = chunks;
  res.taperedChunks = layout.starts != uniformChunks(n, chunkCells).starts;
  const std::pair<std::int64_t, std::int64_t> mine = layout.rankChunks(rank, world);
  const std::int64_t lo = mine.first, hi = mine.second;
  std::int64_t resumedAll = 0; // every rank's chunks already done (the rate counts the others)
  for (std::int64_t k = 0; k < chunks; ++k)
    if (fs::exists(chunkFile(partsDir, k))) resumedAll += layout.count(k);
  std::int64_t firstNew = lo;
  while (firstNew < hi && fs::exists(chunkFile(partsDir, firstNew))) {
    res.resumedCells += layout.count(firstNew);
    ++firstNew;
  }

  // The writer thread: each finished chunk (in order) into its resumable part file and into the
  // output, while the device runs the next chunks. Resumed chunks are read back from their parts.
  // The output: rank 0's. Sharded, its rows arrive out of order (block writes at each chunk's row).
  std::unique_ptr<Hdf5Writer> out;
  if (lead) {
    out = std::make_unique<Hdf5Writer>(outPath);
    const std::int64_t rowsPerChunk = std::max<std::int64_t>(1, (1 << 20) / (4 * E));
    if (sharded)
      out->createChunked2D("/embedding", H5Type::Float32, n, E, std::min(rowsPerChunk, std::max<std::int64_t>(1, n)),
                           E);
    else
      out->createExtendible("/embedding", H5Type::Float32, E, rowsPerChunk, opt.gzip);
  }
  const std::int64_t fileRows = source.cells();
  std::vector<float> byFileRow; // for --h5ad-out: rows in the file's order, NaN for skipped cells
  if (!opt.h5adOut.empty() && lead) byFileRow.assign(static_cast<std::size_t>(fileRows * E), std::nanf(""));
  struct Finished {
    std::int64_t chunk;
    torch::Tensor host; // undefined (and `device` too): a resumed chunk, read from its part file
    DeviceEvent done;
    torch::Tensor buffer; // HostBuffers' buffer that `host` views (a GPU run), given back once written
    torch::Tensor device; // writerCopies: the chunk on the device, copied by the writer
  };
  HostBuffers hostBuffers; // before the writer, which gives buffers back
  ChunkCopier copyBack;    // and the stream the writer copies on (writerCopies)
  copyBack.sideStream = opt.chunkCopyStream;
  copyBack.start(device);
  const bool writerCopies = res.chunkCopyStream && opt.writerCopies;
  res.writerCopies = writerCopies;
  // Filled once the first batch is queued: allocating them while the run starts delayed the
  // first batch by 0.3 s (the driver's pinning competes with the start's own CUDA calls). One
  // being filled, one being written, one waiting: what submit() lets through.
  auto startHostBuffers = [&] {
    if (!cuda || !opt.batchesAcrossChunks || writerCopies || hi <= firstNew) return;
    std::int64_t rows = 0;
    for (std::int64_t k = firstNew; k < hi; ++k) rows = std::max(rows, layout.count(k));
    hostBuffers.start(static_cast<int>(std::min<std::int64_t>(3, hi - firstNew)), rows, E);
  };
  std::mutex writeMutex;
  std::condition_variable writeChanged;
  std::deque<Finished> toWrite;
  bool noMoreChunks = false;
  std::exception_ptr writeError;
  std::int64_t written = 0; // cells, fresh chunks only
  const auto runStart = Clock::now();
  std::thread writer([&] {
    try {
      if (writerCopies) copyBack.allocateStaging(E);
      std::vector<float> buf;
      for (;;) {
        Finished f;
        {
          std::unique_lock<std::mutex> lock(writeMutex);
          writeChanged.wait(lock, [&] { return !toWrite.empty() || noMoreChunks; });
          if (toWrite.empty()) return;
          f = std::move(toWrite.front());
        }
        const std::int64_t count = layout.count(f.chunk);
        const float* rows = nullptr;
        const auto wt = Clock::now();
        const bool fresh = f.host.defined() || f.device.defined();
        if (fresh) {
          if (f.device.defined()) {
            buf.resize(static_cast<std::size_t>(count * E));
            copyBack.copyToHost(buf.data(), f.device);
            f.device = torch::Tensor();
            rows = buf.data();
          } else {
            f.done.wait();
            rows = f.host.data_ptr<float>();
          }
          writeFileAtomically(chunkFile(partsDir, f.chunk), rows, static_cast<std::size_t>(count * E) * sizeof(float));
        } else {
          buf.resize(static_cast<std::size_t>(count * E));
          std::ifstream in(chunkFile(partsDir, f.chunk), std::ios::binary);
          if (!in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size() * sizeof(float))))
            throw FileError(chunkFile(partsDir, f.chunk), "incomplete chunk (delete the .parts folder and run again)");
          rows = buf.data();
        }
        if (!sharded) {
          {
            std::lock_guard<std::mutex> fileLock(hdf5);
            out->append("/embedding", rows, count);
          }
          if (!byFileRow.empty())
            for (std::int64_t i = 0; i < count; ++i)
              std::copy(rows + i * E, rows + (i + 1) * E,
                        byFileRow.begin() + cells.fileRow[static_cast<std::size_t>(layout.begin(f.chunk) + i)] * E);
        }
        f.host = torch::Tensor();
        if (f.buffer.defined()) hostBuffers.give(std::move(f.buffer));
        std::lock_guard<std::mutex> lock(writeMutex);
        res.writeSeconds += since(wt);
        if (fresh) written += count;
        toWrite.pop_front();
        writeChanged.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(writeMutex);
      writeError = std::current_exception();
      toWrite.clear();
      writeChanged.notify_all();
    }
  });
  auto finishWriter = [&] {
    {
      std::lock_guard<std::mutex> lock(writeMutex);
      noMoreChunks = true;
      writeChanged.notify_all();
    }
    if (writer.joinable()) writer.join();
  };
  // Sharded, rank 0: the assembler places every rank's chunk parts (its own included) into the
  // output as they appear, so that little is left to copy when the last rank is done.
  std::atomic<bool> allDone{false}, stopAssembler{false};
  std::atomic<std::int64_t> assembled{0};
  std::exception_ptr assembleError;
  std::thread assembler;
  if (sharded && lead) {
    assembler = std::thread([&] {
      try {
        std::vector<char> placed(static_cast<std::size_t>(chunks), 0);
        std::int64_t left = chunks;
        std::vector<float> buf;
        while (left > 0 && !stopAssembler) {
          const bool finalPass = allDone.load(); // every rank had finished before this pass
          bool progress = false;
          for (std::int64_t k = 0; k < chunks; ++k) {
            if (placed[static_cast<std::size_t>(k)] || !fs::exists(chunkFile(partsDir, k))) continue;
            const std::int64_t count = layout.count(k);
            const auto wt = Clock::now();
            buf.resize(static_cast<std::size_t>(count * E));
            std::ifstream in(chunkFile(partsDir, k), std::ios::binary);
            if (!in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size() * sizeof(float))))
              throw FileError(chunkFile(partsDir, k), "incomplete chunk (delete the .parts folder and run again)");
            {
              std::lock_guard<std::mutex> fileLock(hdf5);
              out->writeBlock("/embedding", layout.begin(k), 0, count, E, buf.data());
            }
            if (!byFileRow.empty())
              for (std::int64_t i = 0; i < count; ++i)
                std::copy(buf.data() + i * E, buf.data() + (i + 1) * E,
                          byFileRow.begin() + cells.fileRow[static_cast<std::size_t>(layout.begin(k) + i)] * E);
            placed[static_cast<std::size_t>(k)] = 1;
            --left;
            assembled += count;
            progress = true;
            std::lock_guard<std::mutex> lock(writeMutex);
            res.writeSeconds += since(wt);
          }
          if (left > 0 && !progress) {
            if (finalPass)
              throw Error("sharded embedding: every rank has finished but chunk parts are missing in " + partsDir);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }
      } catch (...) {
        assembleError = std::current_exception();
      }
    });
  }
  auto stopAssembling = [&] {
    stopAssembler = true;
    if (assembler.joinable()) assembler.join();
  };
  // Queues a chunk for the writer; waits while two are pending (which also keeps the host from
  // running far ahead of the device).
  auto submit = [&](Finished f) {
    std::unique_lock<std::mutex> lock(writeMutex);
    writeChanged.wait(lock, [&] { return toWrite.size() < 2 || writeError; });
    if (writeError) std::rethrow_exception(writeError);
    toWrite.push_back(std::move(f));
    writeChanged.notify_all();
  };
  auto reportProgress = [&] {
    if (!opt.progress) return;
    if (sharded) { // rank 0: the cells of every rank placed in the output so far
      const std::int64_t placed = assembled.load();
      opt.progress("embedding", placed, n,
                   static_cast<double>(std::max<std::int64_t>(0, placed - resumedAll)) /
                       std::max(1e-9, since(runStart)));
      return;
    }
    std::int64_t done;
    {
      std::lock_guard<std::mutex> lock(writeMutex);
      done = written;
    }
    opt.progress("embedding", res.resumedCells + done, n, static_cast<double>(done) / std::max(1e-9, since(runStart)));
  };

  std::int64_t totalNeighbors = 0, embedded = 0;
  std::optional<Clock::time_point> lastQueued; // the last batch's forward queued
  DeviceTimeline timeline;
  std::int64_t batchesQueued = 0; // in this run, over its chunks
  KernelTrace kernels;            // outside the chunks: a steady-state trace may span two
  // The trace from the first batch after a synchronisation, or (traceFromBatch) in the run's
  // steady state: the device's queue as the run left it, so the trace shows where it waits.
  const bool steadyTrace = opt.traceFromBatch > 0;
  const std::int64_t traceFirst = steadyTrace ? opt.traceFromBatch : 0;
  try {
    if (!sharded) // resumed chunks go into the output from their parts (sharded: the assembler's)
      for (std::int64_t k = 0; k < firstNew; ++k)
        submit({k, torch::Tensor(), DeviceEvent(), torch::Tensor(), torch::Tensor()});
    trace("embed: neighbourhood index");
    if (sharded && firstNew < hi) {
      // Neighbours are cells of the same section: this rank reads from the first row of any
      // section its chunks hold.
      std::unordered_map<std::int64_t, std::int64_t> firstOfSection;
      for (std::int64_t i = 0; i < n; ++i) firstOfSection.emplace(pos.section[static_cast<std::size_t>(i)], i);
      std::int64_t first = layout.begin(firstNew);
      for (std::int64_t i = layout.begin(firstNew), end = layout.begin(hi); i < end; ++i)
        first = std::min(first, firstOfSection[pos.section[static_cast<std::size_t>(i)]]);
      to.firstRow = first;
    }
    if (firstNew >= hi) to.firstRow = n; // no chunk left to embed here (resumed, or more ranks than chunks)
    ExpressionTableStream stream(source, cells, to);
    trace("embed: expression stream started");
    const std::unique_ptr<NeighborhoodIndex> builtIndex = indexBuild.get();
    const NeighborhoodIndex& index = *builtIndex;
    trace("embed: neighbourhood index built");
    // A GPU run computes the next chunk's neighbourhoods while this chunk's batches are queued: on
    // half the cores, leaving the rest to the queueing thread, the batch builders, the reader and
    // the writer (on all of them, the queueing thread's work at a chunk's start took 15-60 ms while
    // the device waited). The first chunk's, which everything waits for, on all of them.
    const int hoodThreads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
    auto hoodsOf = [&](std::int64_t k) {
      const auto t = Clock::now();
      NeighborhoodList h = index.compute(layout.begin(k), layout.begin(k + 1),
                                         cuda && k != firstNew && !opt.serialNeighborhoods ? hoodThreads : 0);
      res.neighborhoodSeconds += since(t);
      return h;
    };
    // Pipeline: chunk k's batches are queued on the device, then chunk k+1's neighbourhoods are
    // computed on the host while the device works; the writer takes chunk k when it is done.
    // Batches come from host threads, batchLookahead ahead of the device, and across chunk
    // boundaries: once chunk k's last batches are being built and chunk k+1's neighbourhoods are
    // ready, chunk k+1's first batches are built too, and its order reaches the device without a
    // synchronisation. Before, every boundary drained the device's queue (a blocking copy) and the
    // device then waited for the new chunk's first batch to be built (~17 ms): 22 boundaries in a
    // 4M-cell run, 1.5 s of a 23 s model phase spent waiting for batches.
    BatchUploader upload;
    upload.sideStream = opt.uploadStream;
    const PackShape shape = res.roundShapes ? gpuEmbeddingShape(!res.virtualZeroSlot) : PackShape{};
    const std::size_t lookahead = static_cast<std::size_t>(std::max(0, opt.batchLookahead));
    std::mutex buildMutex;
    // A chunk's neighbourhoods, their order and batch plan, and its batches being built (declared
    // last: destroying a chunk waits for its builds, while what they read lives).
    struct ChunkBatches {
      std::int64_t first = 0;
      bool planned = false;
      std::int64_t need = 0; // the rows its neighbourhoods read: its own and its neighbours'
      NeighborhoodList hoods;
      std::vector<std::int64_t> order;
      torch::Tensor orderHost; // pinned, for its copy to the device (a GPU run across chunks)
      BatchPlan plan;
      std::size_t nextToBuild = 0;
      std::deque<std::future<Batch>> ahead;
    };
    auto build = [&res, &buildMutex, packed, cuda, shape](const ChunkBatches& c,
                                                          std::pair<std::int64_t, std::int64_t> r) {
      const auto t = Clock::now();
      Batch b = makeBatch(c.hoods, c.order, r.first, r.second, c.first, torch::kCPU);
      if (packed) b = packBatch(b, shape);
      if (cuda) b = pinned(std::move(b));
      const double s = since(t);
      std::lock_guard<std::mutex> lock(buildMutex);
      res.batchBuildSeconds += s;
      return b;
    };
    // Its order and batch plan (`plan` false: left to finishPlan on the queueing thread, as before
    // batchesAcrossChunks).
    auto finishPlan = [&](ChunkBatches& c) {
      if (c.planned) return;
      c.planned = true;
      c.need = c.first + c.hoods.cells();
      for (const std::int32_t j : c.hoods.indices) c.need = std::max<std::int64_t>(c.need, j + 1);
      c.order = orderBySize(c.hoods);
      // Measured and not kept (H200, call s16-3 of docs/bench/gpu-embed-train-type-rows-2026-12-04.jsonl):
      // the first chunk's first three batches within 1/8, 1/4 and 1/2 of the budget, so that the
      // device would start on a batch built sooner: start_s 0.32-0.34 s against 0.30 without, the
      // first batch queued ~10 ms sooner, within the runs' spread of the reading before it.
      c.plan = planBatches(c.hoods, c.order, batchTokens, opt.exactLengths, &shape);
      // Pinned here, on the planning thread: at the chunk's start on the queueing thread it took
      // 8-16 ms (the host allocator, the cores busy with the next neighbourhoods), the device idle.
      if (cuda && opt.batchesAcrossChunks)
        c.orderHost =
            torch::from_blob(c.order.data(), {static_cast<std::int64_t>(c.order.size())}, torch::kInt64).pin_memory();
    };
    auto planChunk = [&](std::int64_t k, NeighborhoodList h, bool plan = true) {
      auto c = std::make_unique<ChunkBatches>();
      c->first = layout.begin(k);
      c->hoods = std::move(h);
      if (plan) finishPlan(*c);
      return c;
    };
    // Starts building c's next batches until `limit` are under way.
    auto topUp = [&](ChunkBatches& c, std::size_t limit) {
      while (c.ahead.size() < limit && c.nextToBuild < c.plan.ranges.size()) {
        const auto r = c.plan.ranges[c.nextToBuild++];
        c.ahead.push_back(std::async(std::launch::async, [&build, &c, r] { return build(c, r); }));
      }
    };
    std::unique_ptr<ChunkBatches> chunk = firstNew < hi ? planChunk(firstNew, hoodsOf(firstNew)) : nullptr, next;
    trace("embed: first chunk's neighbourhoods");
    // The next chunk from its future into `next`, to start its first batches early (only if it is
    // ready: `onlyIfReady`); false when there is none to take.
    auto takeNext = [&](std::future<std::unique_ptr<ChunkBatches>>& nextChunk, bool onlyIfReady) {
      if (next || !opt.batchesAcrossChunks || lookahead == 0 || !nextChunk.valid()) return false;
      if (onlyIfReady && nextChunk.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
      next = nextChunk.get();
      return true;
    };
    for (std::int64_t k = firstNew; k < hi; ++k) {
      // Chunk k+1's neighbourhoods, their order and batch plan on a host thread while this thread
      // queues chunk k's batches: the device's queue holds only a few batches, so computing them in
      // between left it idle.
      std::future<std::unique_ptr<ChunkBatches>> nextChunk;
      if (k + 1 < hi && !opt.serialNeighborhoods)
        nextChunk = std::async(std::launch::async, [&planChunk, &hoodsOf, k, across = opt.batchesAcrossChunks] {
          return planChunk(k + 1, hoodsOf(k + 1), across);
        });
      finishPlan(*chunk);
      const NeighborhoodList& hoods = chunk->hoods;
      const std::int64_t a = chunk->first, count = hoods.cells();
      totalNeighbors += static_cast<std::int64_t>(hoods.indices.size());
      if (stream.rowsUploaded() < chunk->need) {
        const auto ut = Clock::now();
        stream.uploadUntil(chunk->need);
        res.uploadSeconds += since(ut);
        if (opt.progress && k == firstNew) opt.progress("reading expression", stream.rowsUploaded(), n, 0);
      }
      trace("embed: chunk " + std::to_string(k) + ": its rows in the table");
      const auto mt = Clock::now();
      torch::Tensor chunkOut = torch::empty({count, E}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
      // Pinned, so that the copy is queued behind the previous chunk's work instead of waiting for it.
      torch::Tensor orderHost = chunk->orderHost.defined()
                                    ? chunk->orderHost
                                    : torch::from_blob(chunk->order.data(), {count}, torch::kInt64).clone();
      const torch::Tensor where =
          orderHost.to(torch::TensorOptions().device(device), /*non_blocking=*/cuda && opt.batchesAcrossChunks);
      trace("embed: queueing batches");
      int batchNo = 0;
      for (const auto& [first, last] : chunk->plan.ranges) {
        topUp(*chunk, lookahead);
        // This chunk's last batches under way: the next chunk's first ones, once its
        // neighbourhoods are ready (never waiting for them here).
        if (chunk->nextToBuild == chunk->plan.ranges.size() && takeNext(nextChunk, true)) ++res.chunksBuiltAhead;
        if (next) topUp(*next, lookahead - std::min(lookahead, chunk->ahead.size()));
        if (opt.cancel) opt.cancel->throwIfCancelled();
        timeline.begin(cuda, batchNo == 0);
        stream.uploadReady();
        const bool tracing = !opt.traceFile.empty() && (steadyTrace || k == firstNew) && batchesQueued >= traceFirst &&
                             batchesQueued < traceFirst + opt.traceBatches;
        if (tracing && batchesQueued == traceFirst) {
          if (cuda && !steadyTrace) torch::cuda::synchronize();
          kernels.start();
        }
        ++batchNo;
        ++batchesQueued;
        const auto bt = Clock::now();
        Batch batch;
        if (!chunk->ahead.empty()) {
          batch = upload(chunk->ahead.front().get(), device);
          chunk->ahead.pop_front();
        } else {
          // As before the threads: built here, and padded ones uploaded on the compute stream.
          batch = packed ? upload(build(*chunk, {first, last}), device)
                         : makeBatch(hoods, chunk->order, first, last, a, device);
        }
        res.batchSeconds += since(bt);
        const Output o = model.forwardFromTokens(stream.table(), types, batch, false,
                                                 opt.profile && k == firstNew ? &res.profile : nullptr);
        if (!lastQueued) {
          res.startSeconds = since(start);
          startHostBuffers();
        }
        lastQueued = Clock::now();
        if (batchNo == 1) trace("embed: chunk " + std::to_string(k) + ": first batch queued");
        // The first last - first rows: a rounded batch appends empty neighbourhoods.
        chunkOut.index_copy_(0, where.narrow(0, first, last - first), o.embedding.narrow(0, 0, last - first));
        timeline.end(cuda);
        if (tracing && (batchesQueued == traceFirst + opt.traceBatches ||
                        (!steadyTrace && batchNo == static_cast<int>(chunk->plan.ranges.size())))) {
          if (cuda) torch::cuda::synchronize();
          kernels.stop(opt.traceFile);
          res.tracedBatches = static_cast<int>(batchesQueued - traceFirst);
        }
      }
      // Every batch queued: the next chunk's first batches start now at the latest, before this
      // chunk's host copy and hand-over to the writer (which can wait).
      trace("embed: chunk " + std::to_string(k) + ": last batch queued");
      if (takeNext(nextChunk, false)) topUp(*next, lookahead);
      const auto ht = Clock::now();
      Finished f{k, chunkOut, DeviceEvent(), torch::Tensor(), torch::Tensor()};
      if (writerCopies) {
        f.device = std::move(f.host);
        f.host = torch::Tensor();
        copyBack.handOver(f.device);
      } else if (cuda && opt.batchesAcrossChunks) {
        f.buffer = hostBuffers.take(count, E);
        f.host = f.buffer.narrow(0, 0, count);
      } else if (cuda) {
        f.host = torch::empty({count, E}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
      }
      res.hostBufferSeconds += since(ht);
      if (cuda && !writerCopies) copyBack(f.host, chunkOut, f.done);
      res.modelSeconds += since(mt);
      if (next)
        chunk = std::move(next);
      else if (nextChunk.valid())
        chunk = nextChunk.get();
      else if (k + 1 < hi)
        chunk = planChunk(k + 1, hoodsOf(k + 1));
      const auto st = Clock::now();
      submit(std::move(f));
      res.submitSeconds += since(st);
      trace("embed: chunk " + std::to_string(k) + ": handed to the writer");
      embedded += count;
      reportProgress();
    }
    if (kernels.running()) { // the run ended inside the trace's window
      if (cuda) torch::cuda::synchronize();
      kernels.stop(opt.traceFile);
      res.tracedBatches = static_cast<int>(batchesQueued - traceFirst);
    }
    res.readSeconds += stream.readSeconds();
    trace("embed: every batch queued");
  } catch (...) {
    // Cancelled or failed: the chunks already done are finished and kept for --resume.
    finishWriter();
    stopAssembling();
    throw;
  }
  finishWriter();
  trace("embed: writer done");
  if (cuda && !writeError) { // every chunk's batches have finished on the device
    try {
      const DeviceTimeline::Summary d = timeline.summary();
      res.deviceBusySeconds = d.busy;
      res.deviceIdleSeconds = d.idle;
      res.deviceIdleAtChunkStartsSeconds = d.idleAtChunkStarts;
      res.deviceIdleMaxSeconds = d.idleMax;
      if (tracing()) {
        std::string gaps = "embed: the device's wait before each chunk's first batch (ms):";
        for (const double g : d.chunkStartGaps) gaps += " " + std::to_string(static_cast<int>(g * 1000 + 0.5));
        trace(gaps);
      }
    } catch (const std::exception& e) {
      res.warnings.push_back(std::string("device timeline not read: ") + e.what());
    }
  }
  if (writeError) {
    stopAssembling();
    std::rethrow_exception(writeError);
  }
  res.fp8Fallbacks = model.fp8Fallbacks() - fp8FallbacksBefore;
  res.firstLayerDeclines = model.firstLayerDeclines() - firstLayerDeclinesBefore;
  res.virtualZeroSlotDeclines = model.virtualZeroSlotDeclines() - virtualDeclinesBefore;
  res.firstResidualFromTable =
      batchesQueued > 0 && model.firstResidualRuns() - firstResidualRunsBefore == batchesQueued;
  if (sharded) {
    // Every rank's parts are written once all have passed here (a rank that died fails this).
    try {
      opt.dist->barrier();
    } catch (...) {
      stopAssembling();
      throw;
    }
    allDone = true;
    if (assembler.joinable()) assembler.join();
    if (assembleError) std::rethrow_exception(assembleError);
    reportProgress();
    if (!lead) {
      if (lastQueued) res.finishSeconds = since(*lastQueued);
      res.meanNeighbors = embedded > 0 ? static_cast<double>(totalNeighbors) / static_cast<double>(embedded) : 0;
      res.seconds = since(start);
      res.cellsPerSecond = static_cast<double>(embedded) / res.seconds;
      if (cuda) res.peakGpuGiB = peakGpuMemoryGiB();
      return res; // rank 0 writes the output and removes the parts
    }
  }
  res.meanNeighbors = embedded > 0 ? static_cast<double>(totalNeighbors) / static_cast<double>(embedded) : 0;

  trace("embed: assembling the output");
  const auto wt = Clock::now();
  {
    out->writeArray("/file_row", H5Type::Int64, {n}, cells.fileRow.data());
    out->setStringAttribute("/", "format", "atlascope-embedding");
    out->setStringAttribute("/", "source", dataPath);
    out->setStringAttribute("/", "model", mf.path);
    out->setStringAttribute("/", "config", model.config().describe());
    // How the numbers were computed: FP8 embeddings are not bf16 ones (cosine ~0.9995, not 0.9999).
    out->setStringAttribute("/", "precision",
                            std::string(cuda ? "bfloat16" : "float32") +
                                (model.fp8FeedForward()
                                     ? std::string("; encoder linear1 in float8_e4m3 (--fp8-feed-forward), its GELU ") +
                                           (model.fp8ErfGelu() ? "erf" : "tanh form")
                                     : std::string()));
    out->commit();
    if (!byFileRow.empty()) {
      trace("embed: writing the h5ad copy");
      ObsmArray arr;
      arr.key = opt.obsmKey;
      arr.columns = E;
      arr.values = std::move(byFileRow);
      writeResultsToCopy(dataPath, opt.h5adOut, {}, {arr});
    }
  }
  trace("embed: output committed");
  removeParts(partsDir);
  res.writeSeconds += since(wt);
  trace("embed: statistics");
  if (cuda) res.peakGpuGiB = peakGpuMemoryGiB();
  if (lastQueued) res.finishSeconds = since(*lastQueued);
  res.seconds = since(start);
  // Sharded: every rank's cells over rank 0's wall time (its run ends with the output assembled).
  if (sharded) res.resumedCells = resumedAll;
  res.cellsPerSecond = static_cast<double>(sharded ? n - resumedAll : embedded) / res.seconds;
  return res;
}

} // namespace atlascope::inference
