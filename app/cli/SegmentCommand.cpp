// segment: region discovery. Features are CellTransformer embeddings (from `embed`) or, without a
// model, each cell's neighbourhood cell-type composition (the baseline); k-means at several
// resolutions, linked into a tree; labels written into a copy of the dataset.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "app/cli/Launch.h"
#include "core/AnnDataResults.h"
#include "core/AtomicFile.h"
#include "core/CellTable.h"
#include "core/Composition.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Neighborhood.h"
#include "core/Palette.h"
#include "core/SpatialSmoothing.h"
#include "inference/Device.h"
#include "inference/Distributed.h"
#include "inference/KMeans.h"
#include "inference/RegionPipeline.h"

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

namespace atlascope::cli {

namespace {
CancellationToken gSegmentCancel;
extern "C" void onSegmentSignal(int) { gSegmentCancel.cancel(); }
} // namespace

void addSegmentCommand(CLI::App& app) {
  auto data = std::make_shared<DatasetArgument>();
  auto out = std::make_shared<std::string>();
  auto o = std::make_shared<inference::RegionPipelineOptions>();
  o->smoothing.k = 500;
  auto smoothSigma = std::make_shared<double>(100.0);
  auto ranks = std::make_shared<int>(1);
  auto labelsCsv = std::make_shared<std::string>();
  auto treeCsv = std::make_shared<std::string>();
  auto progress = std::make_shared<std::string>("none");
  CLI::App* cmd = app.add_subcommand(
      "segment",
      "Discover regions: embed (or composition baseline) -> smooth -> k-means at several k -> links -> scores");
  addDatasetArgument(cmd, *data, "Dataset (.h5ad; a CSV table or several files are combined into one h5ad first)");
  cmd->add_option("--out,-o", *out,
                  "A copy of the dataset with obs columns regions_k<k> (+ colours, uns regions_k<k>_parent)")
      ->required();
  CLI::Option* weights =
      cmd->add_option("--weights,-w", o->weights, "Model (.h5 checkpoint or reference .pth): embed the cells first");
  cmd->add_option("--embedding", o->embedding, "Embeddings from `atlascope-cli embed` (instead of --weights)");
  cmd->add_option("--embedding-out", o->embeddingOut, "Where --weights' embeddings go (default OUT.embedding.h5)");
  cmd->add_flag("--fp8-feed-forward", o->embed.fp8FeedForward,
                "With --weights: the encoder's first feed-forward layers in FP8 (as embed's flag)")
      ->needs(weights);
  cmd->add_option("--baseline", o->baseline,
                  "Features without a model: composition (neighbourhood cell-type mix) or expression (each cell's own)")
      ->check(CLI::IsMember({"composition", "expression"}));
  cmd->add_option("--k", o->ks, "Resolutions (default 25 354 670 1300, as the paper)")->delimiter(',');
  cmd->add_option("--device", o->device, "cuda, cpu or auto")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  cmd->add_option("--restarts", o->restarts, "k-means restarts (the lowest inertia is kept)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--max-iterations", o->maxIterations, "Lloyd iterations per restart at most");
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->add_option("--labels-csv", *labelsCsv, "Also write per-cell labels as CSV");
  cmd->add_option("--tree-csv", *treeCsv, "Also write the links between resolutions as CSV");
  cmd->add_flag("--smooth", o->smooth,
                "Smooth the features over each cell's k nearest cells of its section before clustering");
  cmd->add_option("--smooth-k", o->smoothing.k, "Nearest cells for smoothing (the reference's 500)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--smooth-sigma", *smoothSigma, "Gaussian sigma in units of 10 um (the reference's 100)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--smooth-labels", o->smoothLabelsK,
                  "After clustering, the majority label of the k nearest cells (0: off)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--ccf-level", o->ccfLevel,
                  "Score against the CCF at this level: leaf, depth:N, major (\"\": no CCF scores)");
  cmd->add_option("--atlas", o->atlas,
                  "Atlas to score against: ccf (default), or a BrainGlobe atlas of the CCF's space (name or path)");
  cmd->add_option("--compare", o->compareColumns, "obs labellings to score against as well (e.g. hidden_subregion)");
  cmd->add_option("--subregions", o->subregionColumn,
                  "Ground truth of split regions (the synthetic brain's hidden_subregion)");
  cmd->add_option("--progress", *progress, "none, text or json (one object per line)")
      ->check(CLI::IsMember({"none", "text", "json"}));
  addRankOption(cmd, *ranks);
  cmd->callback([=] {
    // Ranks share the embedding (--weights); the rest of the pipeline (smoothing, k-means, scores)
    // runs on rank 0 alone. Without a model there is nothing to share: one process.
    if (*ranks > 1 && !isRank()) {
      if (o->weights.empty() || !o->embedding.empty())
        std::fprintf(stderr, "segment: --gpus %d applies to the embedding (--weights); this job runs as one process\n",
                     *ranks);
      else {
        setExitCode(launchRanks(*ranks, o->device));
        return;
      }
    }
    std::signal(SIGINT, onSegmentSignal);
    std::signal(SIGTERM, onSegmentSignal);
    const std::unique_ptr<inference::Distributed> dist = joinJob(o->device);
    inference::RegionPipelineOptions opt = *o;
    opt.embed.dist = dist.get();
    opt.smoothing.sigma = *smoothSigma * 10.0; // reference units (10 um) -> um
    opt.cancel = &gSegmentCancel;
    const std::string mode = dist && dist->rank() != 0 ? "none" : *progress;
    std::string lastStage;
    // The job's devices in every JSON line: "ranks" (processes) and "gpus" (0 on the CPU; only the
    // embedding is shared across ranks).
    const int ranks = dist ? dist->size() : 1;
    const int gpus = inference::resolveDevice(o->device) == "cuda" ? ranks : 0;
    opt.progress = [&, ranks, gpus](const std::string& stage, std::int64_t done, std::int64_t total) {
      if (mode == "json")
        std::cout
            << nlohmann::json{{"stage", stage}, {"done", done}, {"total", total}, {"gpus", gpus}, {"ranks", ranks}}
                   .dump()
            << std::endl;
      else if (mode == "text" && stage != lastStage)
        std::fprintf(stderr, "%s...\n", stage.c_str());
      lastStage = stage;
    };
    inference::RegionPipelineResult r;
    try {
      Progress combining;
      combining.report = opt.progress;
      combining.cancel = &gSegmentCancel;
      const OpenedDataset d = openDataset(*data, /*needH5ad=*/true, combining);
      opt.columns = d.columns;
      r = inference::runRegionPipeline(d.path, *out, opt);
      if (dist && dist->rank() != 0) return; // its share of the embedding is done; rank 0 goes on
    } catch (const Cancelled&) {
      std::cout
          << nlohmann::json{{"result", "cancelled"}, {"message", "cancelled; " + *out + " was not written"}}.dump()
          << std::endl;
      setExitCode(130);
      return;
    }
    if (!labelsCsv->empty()) {
      std::vector<std::string> ids;
      std::vector<CategoricalColumn> columns;
      for (const std::int64_t row : r.fileRow) ids.push_back(std::to_string(row));
      for (const auto& d : r.resolutions) {
        CategoricalColumn c;
        c.name = "regions_k" + std::to_string(d.k);
        c.codes = d.labels;
        for (int j = 0; j < d.k; ++j) c.categories.push_back("k" + std::to_string(d.k) + "-" + std::to_string(j));
        columns.push_back(std::move(c));
      }
      writeLabelsCsv(*labelsCsv, ids, columns);
    }
    if (!treeCsv->empty()) {
      std::ostringstream tree;
      tree << "k,region,parent_k,parent\n";
      for (std::size_t i = 1; i < r.resolutions.size(); ++i)
        for (int j = 0; j < r.resolutions[i].k; ++j)
          tree << r.resolutions[i].k << "," << j << "," << r.resolutions[i - 1].k << ","
               << r.resolutions[i].parent[static_cast<std::size_t>(j)] << "\n";
      const std::string text = tree.str();
      writeFileAtomically(*treeCsv, text.data(), text.size());
    }
    r.summary["result"] = "ok";
    std::cout << r.summary.dump() << std::endl;
  });

  // bench kmeans: planted clusters of the embedding's shape; the same seed on the CPU for a check.
  CLI::App* bench = app.get_subcommand("bench"); // made by addModelCommands (registered first)
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
  b->add_option("--check-cpu", *checkCpu,
                "Also cluster the first N rows on the device and on the CPU and compare inertia");
  b->callback([=] {
    inference::configureCpuThreads();
    const std::string dev = inference::resolveDevice(*bdevice);
    const torch::Device td =
        dev == "cuda" ? torch::Device(torch::kCUDA, inference::cudaIndex()) : torch::Device(torch::kCPU);
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
    std::cout << nlohmann::json{{"figure", "kmeans"},
                                {"device", dev},
                                {"cells", *bn},
                                {"dim", *bd},
                                {"k", *bk},
                                {"restarts", *brestarts},
                                {"seconds", seconds},
                                {"tolerance", ko.tolerance},
                                {"iterations_best", r.iterations},
                                {"inertia", r.inertia},
                                {"peak_gpu_gib", inference::peakGpuMemoryGiB()}}
                     .dump()
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
      std::cout << nlohmann::json{{"figure", "kmeans_gpu_vs_cpu"},
                                  {"cells", m},
                                  {"k", co.k},
                                  {"gpu_inertia", g.inertia},
                                  {"cpu_inertia", c.inertia},
                                  {"relative_difference", std::abs(g.inertia - c.inertia) / c.inertia}}
                       .dump()
                << std::endl;
    }
  });
}

} // namespace atlascope::cli
