// segment: region discovery. Features are CellTransformer embeddings (from `embed`) or, without a
// model, each cell's neighbourhood cell-type composition (the baseline); k-means at several
// resolutions, linked into a tree; labels written into a copy of the dataset.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"

#include "core/AnnDataResults.h"
#include "core/CellTable.h"
#include "core/Composition.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Neighborhood.h"
#include "core/Palette.h"
#include "core/SpatialSmoothing.h"
#include "inference/Device.h"
#include "inference/KMeans.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace atlascope::cli {

void addSegmentCommand(CLI::App& app) {
  auto data = std::make_shared<std::string>();
  auto embedding = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto ks = std::make_shared<std::vector<int>>(std::vector<int>{25, 354, 670, 1300});
  auto device = std::make_shared<std::string>("auto");
  auto restarts = std::make_shared<int>(3);
  auto seed = std::make_shared<std::uint64_t>(42);
  auto labelsCsv = std::make_shared<std::string>();
  auto treeCsv = std::make_shared<std::string>();
  auto cols = std::make_shared<ColumnOptions>();
  auto smooth = std::make_shared<bool>(false);
  auto smoothK = std::make_shared<int>(500);
  auto smoothSigma = std::make_shared<double>(100.0);
  auto smoothLabelsK = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("segment", "Discover regions: k-means of embeddings (or of neighbourhood composition) at several k");
  cmd->add_option("data", *data, "Dataset (.h5ad)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--embedding", *embedding, "Embeddings from `atlascope-cli embed` (default: the composition baseline)");
  cmd->add_option("--out,-o", *out, "A copy of the dataset with obs columns regions_k<k> (+ colours)")->required();
  cmd->add_option("--k", *ks, "Resolutions (default 25 354 670 1300, as the paper)")->delimiter(',');
  cmd->add_option("--device", *device, "cuda, cpu or auto")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  cmd->add_option("--restarts", *restarts, "k-means restarts (the lowest inertia is kept)")->check(CLI::Range(1, 100));
  cmd->add_option("--seed", *seed, "Random seed");
  cmd->add_option("--labels-csv", *labelsCsv, "Also write per-cell labels as CSV");
  cmd->add_option("--tree-csv", *treeCsv, "Also write the links between resolutions as CSV");
  cmd->add_flag("--smooth", *smooth, "Smooth the features over each cell's k nearest cells of its section before clustering");
  cmd->add_option("--smooth-k", *smoothK, "Nearest cells for smoothing (the reference's 500)")->check(CLI::Range(1, 100000));
  cmd->add_option("--smooth-sigma", *smoothSigma, "Gaussian sigma in units of 10 um (the reference's 100)")->check(CLI::PositiveNumber);
  cmd->add_option("--smooth-labels", *smoothLabelsK, "After clustering, the majority label of the k nearest cells (0: off)")->check(CLI::Range(0, 100000));
  addColumnOptions(cmd, *cols);
  cmd->callback([=] {
    const auto start = std::chrono::steady_clock::now();
    inference::configureCpuThreads();
    const CellTable cells = readCellTable(*data, *cols);
    const std::int64_t n = cells.size();
    const std::string dev = inference::resolveDevice(*device);
    const torch::Device td = dev == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    torch::Tensor features;
    std::string source;
    nlohmann::json summary;
    if (!embedding->empty()) {
      Hdf5File e(*embedding);
      const auto emb = e.readFloat("/embedding");
      if (emb.shape.size() != 2 || emb.shape[0] != n)
        throw FileError(*embedding, "has " + std::to_string(emb.shape.empty() ? 0 : emb.shape[0]) + " embeddings for " + std::to_string(n) + " cells");
      features = torch::from_blob(const_cast<float*>(emb.data.data()), {emb.shape[0], emb.shape[1]}).clone();
      source = "embedding";
    } else {
      const ModelPositions pos = modelPositions(cells);
      NeighborhoodIndex index(pos.x.data(), pos.y.data(), pos.section.data(), n);
      const auto comp = neighborhoodComposition(index.compute(0, n), cells.cellType, static_cast<int>(cells.types.names.size()));
      features = torch::from_blob(const_cast<float*>(comp.data()), {n, static_cast<std::int64_t>(cells.types.names.size())}).clone();
      source = "composition baseline";
    }
    SmoothingOptions so;
    so.k = *smoothK;
    so.sigma = *smoothSigma * 10.0; // reference units (10 um) -> um
    if (*smooth) {
      const auto t0 = std::chrono::steady_clock::now();
      const torch::Tensor f = features.contiguous();
      std::vector<float> in(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
      const auto sm = smoothFeatures(cells.x, cells.y, cells.section, in, f.size(1), so);
      features = torch::from_blob(const_cast<float*>(sm.data()), f.sizes()).clone();
      summary["smoothing"] = {{"k", so.k}, {"sigma_units", *smoothSigma},
                              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
    }
    features = features.to(td);
    std::vector<int> sorted = *ks;
    std::sort(sorted.begin(), sorted.end());
    std::vector<CategoricalColumn> columns;
    summary["cells"] = n;
    summary["features"] = source;
    summary["device"] = dev;
    summary["resolutions"] = nlohmann::json::array();
    std::ostringstream tree;
    tree << "k,region,parent_k,parent\n";
    std::vector<std::int32_t> previous;
    int previousK = 0;
    for (int k : sorted) {
      const auto t0 = std::chrono::steady_clock::now();
      inference::KMeansOptions ko;
      ko.k = k;
      ko.restarts = *restarts;
      ko.seed = *seed;
      auto r = inference::kmeans(features, ko);
      if (*smoothLabelsK > 0) {
        SmoothingOptions lo = so;
        lo.k = *smoothLabelsK;
        r.labels = smoothLabels(cells.x, cells.y, cells.section, r.labels, lo);
      }
      // Into file rows: cells skipped for bad positions have no region (-1).
      CategoricalColumn col;
      col.name = "regions_k" + std::to_string(k);
      const std::int64_t fileRows = cells.fileRow.empty() ? 0 : cells.fileRow.back() + 1 + cells.skippedCells;
      col.codes.assign(static_cast<std::size_t>(std::max(fileRows, n)), -1);
      for (std::int64_t i = 0; i < n; ++i) col.codes[static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)])] = r.labels[static_cast<std::size_t>(i)];
      for (int c = 0; c < k; ++c) col.categories.push_back("k" + std::to_string(k) + "-" + std::to_string(c));
      col.colours = categoricalPalette(static_cast<std::size_t>(k));
      columns.push_back(col);
      if (!previous.empty()) {
        const auto parent = inference::linkResolutions(previous, r.labels, k);
        for (int j = 0; j < k; ++j) tree << k << "," << j << "," << previousK << "," << parent[static_cast<std::size_t>(j)] << "\n";
      }
      previous = r.labels;
      previousK = k;
      summary["resolutions"].push_back({{"k", k}, {"inertia", r.inertia}, {"iterations", r.iterations}, {"empty_repairs", r.emptyRepairs},
                                        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
    }
    // The obs row count of the copy is the file's: pad to it (cells skipped have no region).
    {
      Hdf5File f(*data);
      const std::string index = f.hasAttribute("/obs", "_index") ? f.readStringAttribute("/obs", "_index") : "_index";
      const std::int64_t rows = f.shape("/obs/" + index)[0];
      for (auto& c : columns) c.codes.resize(static_cast<std::size_t>(rows), -1);
    }
    writeResultsToCopy(*data, *out, columns, {});
    if (!labelsCsv->empty()) {
      std::vector<std::string> ids;
      for (std::size_t i = 0; i < columns.front().codes.size(); ++i) ids.push_back(std::to_string(i));
      writeLabelsCsv(*labelsCsv, ids, columns);
    }
    if (!treeCsv->empty()) {
      std::ofstream(*treeCsv) << tree.str();
    }
    summary["out"] = *out;
    summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << summary.dump() << "\n";
  });

  // bench kmeans: planted clusters of the embedding's shape; the same seed on the CPU for a check.
  CLI::App* bench = nullptr;
  for (CLI::App* sub : app.get_subcommands({})) if (sub->get_name() == "bench") bench = sub;
  if (!bench) return;
  auto bn = std::make_shared<std::int64_t>(4000000);
  auto bd = std::make_shared<int>(384);
  auto bk = std::make_shared<int>(1300);
  auto brestarts = std::make_shared<int>(3);
  auto bdevice = std::make_shared<std::string>("auto");
  auto checkCpu = std::make_shared<std::int64_t>(0);
  auto bko = std::make_shared<inference::KMeansOptions>();
  CLI::App* b = bench->add_subcommand("kmeans", "k-means time on planted clusters (JSON lines)");
  b->add_option("--max-iterations", bko->maxIterations, "Lloyd iterations at most per restart");
  b->add_option("--tolerance", bko->tolerance, "Relative inertia change that stops (0: always --max-iterations)");
  b->add_option("--cells", *bn, "Rows");
  b->add_option("--dim", *bd, "Columns (the embedding width)");
  b->add_option("--k", *bk, "Clusters");
  b->add_option("--restarts", *brestarts, "Restarts");
  b->add_option("--device", *bdevice, "cuda, cpu or auto")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  b->add_option("--check-cpu", *checkCpu, "Also cluster the first N rows on the device and on the CPU and compare inertia");
  b->callback([=] {
    inference::configureCpuThreads();
    const std::string dev = inference::resolveDevice(*bdevice);
    const torch::Device td = dev == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    torch::manual_seed(5);
    // Planted clusters: unequal sizes, unit noise around centres of spread 4.
    const torch::Tensor centres = torch::randn({*bk, *bd}) * 4;
    const torch::Tensor assign = (torch::rand({*bn}).pow(2) * *bk).to(torch::kInt64).clamp_max(*bk - 1);
    torch::Tensor x = (centres.index_select(0, assign) + torch::randn({*bn, *bd})).to(td);
    inference::KMeansOptions ko = *bko;
    ko.k = *bk;
    ko.restarts = *brestarts;
    if (td.is_cuda()) torch::cuda::synchronize();
    auto t0 = std::chrono::steady_clock::now();
    const auto r = inference::kmeans(x, ko);
    if (td.is_cuda()) torch::cuda::synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << nlohmann::json{{"figure", "kmeans"}, {"device", dev}, {"cells", *bn}, {"dim", *bd}, {"k", *bk}, {"restarts", *brestarts},
                                {"seconds", seconds}, {"tolerance", ko.tolerance}, {"iterations_best", r.iterations}, {"inertia", r.inertia},
                                {"peak_gpu_gib", inference::peakGpuMemoryGiB()}}.dump()
              << std::endl;
    if (*checkCpu > 0 && td.is_cuda()) {
      const std::int64_t m = std::min(*checkCpu, *bn);
      inference::KMeansOptions co = ko;
      co.k = std::min<int>(ko.k, 100);
      co.restarts = 1;
      co.maxIterations = 1000;
      co.tolerance = 1e-7;
      const auto g = inference::kmeans(x.narrow(0, 0, m), co);
      const auto c = inference::kmeans(x.narrow(0, 0, m).to(torch::kCPU), co);
      std::cout << nlohmann::json{{"figure", "kmeans_gpu_vs_cpu"}, {"cells", m}, {"k", co.k}, {"gpu_inertia", g.inertia},
                                  {"cpu_inertia", c.inertia}, {"relative_difference", std::abs(g.inertia - c.inertia) / c.inertia}}.dump()
                << std::endl;
    }
  });
}

} // namespace atlascope::cli
