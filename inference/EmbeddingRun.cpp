#include "inference/EmbeddingRun.h"

#include "core/AnnDataResults.h"
#include "core/AtomicFile.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/Neighborhood.h"
#include "core/Trace.h"
#include "inference/Device.h"
#include "inference/Embedding.h"
#include "inference/ExpressionTable.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

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
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (!cuda) configureCpuThreads();
  trace("embed: moving the model");
  CellTransformer& model = *mf.model;
  model.to(device, cuda ? torch::kBFloat16 : torch::kFloat32);
  const std::int64_t batchTokens = opt.batchTokens > 0 ? opt.batchTokens : (cuda ? 393216 : 65536);
  const std::int64_t chunkCells = opt.chunkCells > 0 ? opt.chunkCells : (cuda ? 1000000 : 20000);
  const std::int64_t E = model.config().embedDim, G = model.config().genes;

  // Cells, the panel mapping, coordinates in the model's unit (10 um).
  auto t0 = Clock::now();
  trace("embed: reading cells");
  const CellTable cells = readCellTable(dataPath, columns);
  const PanelMapping map = mapPanel(mf, cells, opt.reorderGenes);
  res.warnings = map.warnings;
  if (cells.skippedCells > 0)
    res.warnings.push_back(std::to_string(cells.skippedCells) + " cells skipped (" + cells.skippedReason + ")");
  const std::int64_t n = cells.size();
  res.cells = n;
  const ModelPositions pos = modelPositions(cells);
  std::vector<std::int64_t> typeCodes(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t t = cells.cellType[static_cast<std::size_t>(i)];
    if (t < 0) throw FileError(dataPath, "cell " + std::to_string(cells.fileRow[static_cast<std::size_t>(i)]) + " has no cell type");
    typeCodes[static_cast<std::size_t>(i)] = map.typeCodes[static_cast<std::size_t>(t)];
  }
  const torch::Tensor types = torch::from_blob(typeCodes.data(), {n}, torch::kInt64).to(device);
  res.readSeconds += since(t0);

  trace("embed: uploading the panel");
  // The panel, streamed into the device table in slabs of rows.
  t0 = Clock::now();
  ExpressionSource source(dataPath, columns);
  const std::int64_t dataGenes = source.genes();
  if (map.geneColumns.empty() && dataGenes != G)
    throw FileError(dataPath, "X has " + std::to_string(dataGenes) + " genes, the model expects " + std::to_string(G));
  ExpressionTableOptions to;
  to.device = device;
  to.dtype = cuda ? torch::kBFloat16 : torch::kFloat32;
  to.geneColumns = map.geneColumns;
  to.readSeconds = &res.readSeconds;
  Progress reading;
  reading.cancel = opt.cancel;
  if (opt.progress) reading.report = [&](const std::string& s, std::int64_t d, std::int64_t t) { opt.progress(s, d, t, 0); };
  const torch::Tensor table = loadExpressionTable(source, cells, to, reading);
  res.uploadSeconds = since(t0);

  // Resume state.
  const std::string partsDir = outPath + ".parts";
  const std::int64_t chunks = (n + chunkCells - 1) / chunkCells;
  const nlohmann::json meta = {{"data", fs::absolute(dataPath).string()}, {"model", fs::absolute(mf.path).string()},
                               {"cells", n}, {"chunk_cells", chunkCells}, {"embed_dim", E}};
  fs::create_directories(partsDir);
  {
    const std::string metaPath = (fs::path(partsDir) / "run.json").string();
    bool reuse = false;
    if (opt.resume && fs::exists(metaPath)) {
      std::ifstream f(metaPath);
      nlohmann::json old;
      try { f >> old; reuse = old == meta; } catch (const std::exception&) {}
    }
    if (!reuse) {
      for (const auto& name : listFolder(partsDir)) std::remove((partsDir + "/" + name).c_str());
      std::ofstream(metaPath) << meta.dump();
    }
  }

  trace("embed: neighbourhood index");
  NeighborhoodIndex index(pos.x.data(), pos.y.data(), pos.section.data(), n);
  auto hoodsOf = [&](std::int64_t k) {
    const auto t = Clock::now();
    const std::int64_t a = k * chunkCells, b = std::min(n, a + chunkCells);
    NeighborhoodList h = index.compute(a, b);
    res.neighborhoodSeconds += since(t);
    return h;
  };

  std::int64_t totalNeighbors = 0, embedded = 0;
  const auto runStart = Clock::now();
  std::int64_t k = 0;
  while (k < chunks && fs::exists(chunkFile(partsDir, k))) { res.resumedCells += std::min(chunkCells, n - k * chunkCells); ++k; }
  // Pipeline: chunk k's batches are queued on the device, then chunk k+1's neighbourhoods are
  // computed on the host while the device works, then chunk k is fetched and written.
  NeighborhoodList hoods = k < chunks ? hoodsOf(k) : NeighborhoodList{};
  while (k < chunks) {
    const std::int64_t a = k * chunkCells, count = hoods.cells();
    totalNeighbors += static_cast<std::int64_t>(hoods.indices.size());
    const auto mt = Clock::now();
    const auto order = orderBySize(hoods);
    const auto plan = planBatches(hoods, order, batchTokens, opt.exactLengths);
    torch::Tensor chunkOut = torch::empty({count, E}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
    const torch::Tensor where = torch::from_blob(const_cast<std::int64_t*>(order.data()), {count}, torch::kInt64).clone().to(device);
    trace("embed: queueing batches");
    for (const auto& [first, last] : plan.ranges) {
      if (opt.cancel) opt.cancel->throwIfCancelled();
      const Batch batch = makeBatch(hoods, order, first, last, a, device);
      const Output o = model.forward(table, types, batch, false, opt.profile && k == 0 ? &res.profile : nullptr);
      chunkOut.index_copy_(0, where.narrow(0, first, last - first), o.embedding);
    }
    torch::Tensor host = cuda ? torch::empty({count, E}, torch::kFloat32).pin_memory() : chunkOut;
    if (cuda) host.copy_(chunkOut, /*non_blocking=*/true);
    NeighborhoodList nextHoods = k + 1 < chunks ? hoodsOf(k + 1) : NeighborhoodList{};
    trace("embed: waiting for the device");
    if (cuda) torch::cuda::synchronize();
    trace("embed: chunk done");
    res.modelSeconds += since(mt);
    const auto wt = Clock::now();
    writeFileAtomically(chunkFile(partsDir, k), host.data_ptr<float>(), static_cast<std::size_t>(count * E) * sizeof(float));
    res.writeSeconds += since(wt);
    embedded += count;
    ++k;
    hoods = std::move(nextHoods);
    const double rate = static_cast<double>(embedded) / std::max(1e-9, since(runStart));
    if (opt.progress) opt.progress("embedding", res.resumedCells + embedded, n, rate);
  }
  res.meanNeighbors = embedded > 0 ? static_cast<double>(totalNeighbors) / static_cast<double>(embedded) : 0;

  trace("embed: assembling the output");
  // Assemble the output.
  const auto wt = Clock::now();
  {
    Hdf5Writer out(outPath);
    out.createExtendible("/embedding", H5Type::Float32, E, std::max<std::int64_t>(1, (1 << 20) / (4 * E)), opt.gzip);
    std::vector<float> buf;
    // For --h5ad-out: rows in the file's order, NaN for skipped cells.
    const std::int64_t fileRows = source.cells();
    std::vector<float> byFileRow;
    if (!opt.h5adOut.empty()) byFileRow.assign(static_cast<std::size_t>(fileRows * E), std::nanf(""));
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t count = std::min(chunkCells, n - c * chunkCells);
      buf.resize(static_cast<std::size_t>(count * E));
      std::ifstream f(chunkFile(partsDir, c), std::ios::binary);
      if (!f.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size() * sizeof(float))))
        throw FileError(chunkFile(partsDir, c), "incomplete chunk (delete the .parts folder and run again)");
      out.append("/embedding", buf.data(), count);
      if (!byFileRow.empty())
        for (std::int64_t i = 0; i < count; ++i)
          std::copy(buf.begin() + i * E, buf.begin() + (i + 1) * E,
                    byFileRow.begin() + cells.fileRow[static_cast<std::size_t>(c * chunkCells + i)] * E);
    }
    trace("embed: chunks appended");
    out.writeArray("/file_row", H5Type::Int64, {n}, cells.fileRow.data());
    out.setStringAttribute("/", "format", "atlascope-embedding");
    out.setStringAttribute("/", "source", dataPath);
    out.setStringAttribute("/", "model", mf.path);
    out.setStringAttribute("/", "config", model.config().describe());
    out.commit();
    if (!byFileRow.empty()) {
      trace("embed: writing the h5ad copy");
      ObsmArray a;
      a.key = opt.obsmKey;
      a.columns = E;
      a.values = std::move(byFileRow);
      writeResultsToCopy(dataPath, opt.h5adOut, {}, {a});
    }
  }
  trace("embed: output committed");
  removeFolder(partsDir);
  trace("embed: parts removed");
  res.writeSeconds += since(wt);
  trace("embed: statistics");
  if (cuda) res.peakGpuGiB = peakGpuMemoryGiB();
  res.seconds = since(start);
  res.cellsPerSecond = static_cast<double>(embedded) / res.seconds;
  return res;
}

} // namespace atlascope::inference
