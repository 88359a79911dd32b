// celltypes: cell types from expression (inference/CellTyping.h) for data without a type
// column, written into a copy of the dataset as an obs column that train, embed and segment
// take with --type (found by name as celltype_leiden).
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "core/Agreement.h"
#include "core/CellTypeResults.h"
#include "core/ConvertCells.h"
#include "core/Error.h"
#include "core/Palette.h"
#include "inference/CellTyping.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace atlascope::cli {

namespace {
CancellationToken gTypingCancel;
extern "C" void onTypingSignal(int) { gTypingCancel.cancel(); }
} // namespace

void addCellTypesCommand(CLI::App& app) {
  auto data = std::make_shared<DatasetArgument>();
  auto out = std::make_shared<std::string>();
  auto column = std::make_shared<std::string>();
  auto compare = std::make_shared<std::string>();
  auto progress = std::make_shared<std::string>("none");
  auto o = std::make_shared<inference::CellTypingOptions>();
  CLI::App* cmd = app.add_subcommand(
      "celltypes",
      "Cell types from expression (normalise, PCA, kNN graph, Leiden or k-means) into a copy of the dataset");
  addDatasetArgument(cmd, *data,
                     "Dataset (.h5ad or CSV/TSV; a table or several files are combined into one h5ad first)");
  cmd->add_option("--out,-o", *out,
                  "A copy of the dataset (.h5ad) with the types as an obs column, their colours and marker genes in "
                  "uns, obsm X_pca")
      ->required();
  cmd->add_option("--column", *column, "The obs column written (default celltype_leiden, or celltype_kmeans)");
  cmd->add_option("--method", o->method, "leiden (a kNN graph of the cells) or kmeans (on the principal components)")
      ->check(CLI::IsMember({"leiden", "kmeans"}));
  cmd->add_option("--resolution", o->resolution, "Leiden's resolution: higher gives more, smaller types")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--k", o->k, "k-means: the number of types")->check(CLI::Range(1, 100000));
  cmd->add_option("--neighbors", o->neighbours, "Neighbours of each cell in the graph")->check(CLI::Range(2, 1000));
  cmd->add_option("--pcs", o->components, "Principal components at most")->check(CLI::Range(2, 1000));
  cmd->add_option("--hvg", o->highlyVariableGenes,
                  "Panels of more genes than this keep this many highly variable genes (0: all genes)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--markers", o->markers, "Marker genes kept per type")->check(CLI::Range(1, 1000));
  cmd->add_option("--input", o->input,
                  "How X holds expression: auto, counts, log2 (log2(count+1)), log1p or normalised (used as is)")
      ->check(CLI::IsMember({"auto", "counts", "log2", "log1p", "normalised"}));
  cmd->add_option("--seed", o->seed, "Random seed (Leiden's order, k-means seeding)");
  cmd->add_option("--device", o->device, "cuda, cpu or auto")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  cmd->add_option("--compare", *compare,
                  "An obs column of known types to score the result against (adjusted Rand index, AMI)");
  cmd->add_option("--progress", *progress, "none, text or json (one object per line)")
      ->check(CLI::IsMember({"none", "text", "json"}));
  cmd->callback([=] {
    std::signal(SIGINT, onTypingSignal);
    std::signal(SIGTERM, onTypingSignal);
    const auto start = std::chrono::steady_clock::now();
    const std::string mode = *progress;
    std::string lastStage;
    inference::CellTypingOptions opt = *o;
    opt.progress.cancel = &gTypingCancel;
    opt.progress.report = [&](const std::string& stage, std::int64_t done, std::int64_t total) {
      if (mode == "json")
        std::cout << nlohmann::json{{"stage", stage}, {"done", done}, {"total", total}}.dump() << std::endl;
      else if (mode == "text" && stage != lastStage)
        std::fprintf(stderr, "%s...\n", stage.c_str());
      lastStage = stage;
    };
    const std::string name = !column->empty()         ? *column
                             : opt.method == "kmeans" ? "celltype_kmeans"
                                                      : "celltype_leiden";
    try {
      const OpenedDataset d = openDataset(*data, /*needH5ad=*/true, opt.progress);
      const CellTable cells = readCellTable(d.path, d.columns);
      const ExpressionSource expression(d.path, d.columns);
      const inference::CellTypingResult r = inference::typeCells(cells, expression, opt);

      // Per obs row of the file (cells the reader skipped have no type).
      const auto rows = static_cast<std::int64_t>(readCellIds(d.path).size());
      CellTypeColumn c;
      c.name = name;
      c.codes.assign(static_cast<std::size_t>(rows), -1);
      ObsmArray pcs{"X_pca", r.components, std::vector<float>(static_cast<std::size_t>(rows * r.components), 0.0f)};
      for (std::int64_t i = 0; i < cells.size(); ++i) {
        const auto row = static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)]);
        c.codes[row] = r.labels[static_cast<std::size_t>(i)];
        std::copy_n(r.pcs.begin() + i * r.components, r.components,
                    pcs.values.begin() + static_cast<std::int64_t>(row) * r.components);
      }
      c.types = r.names;
      c.colours = categoricalPalette(r.names.size());
      c.markers = r.markers;
      opt.progress("writing", 0, 1);
      // Counts (or intensities) not on a log scale: the copy's X becomes log1p of them, what
      // CellTransformer reads, so the copy goes straight into train/embed/segment.
      const bool logX = (r.inputScale == "counts" || r.inputScale == "intensities") && d.columns.layer.empty();
      writeCellTypesToCopy(d.path, *out, c, pcs, logX);
      if (opt.progress.report) opt.progress.report("writing", 1, 1); // written: too late to cancel

      nlohmann::json markers;
      for (std::size_t t = 0; t < r.names.size(); ++t)
        markers[r.names[t]] = std::vector<std::string>(
            r.markers[t].begin(), r.markers[t].begin() + std::min<std::size_t>(3, r.markers[t].size()));
      nlohmann::json j = {{"result", "ok"},
                          {"out", *out},
                          {"column", name},
                          {"method", opt.method},
                          {"types", r.names.size()},
                          {"cells", cells.size()},
                          {"genes", cells.genes.size()},
                          {"genes_used", r.genesUsed},
                          {"components", r.components},
                          {"explained_variance", r.explainedVariance},
                          {"input_scale", r.inputScale},
                          {"device", r.device},
                          {opt.method == "leiden" ? "modularity" : "inertia", r.quality},
                          {"seconds_by_step", r.seconds},
                          {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
                          {"markers", markers}};
      if (d.path != data->paths.front()) j["combined"] = d.path;
      j["x"] = logX ? "log1p of the input (the input in layers['counts'])" : "as in the input";
      if (!compare->empty()) {
        const ObsLabels truth = readObsLabels(d.path, *compare);
        std::vector<std::int32_t> ref, got;
        for (std::int64_t i = 0; i < cells.size(); ++i) {
          ref.push_back(truth.codes[static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)])]);
          got.push_back(r.labels[static_cast<std::size_t>(i)]);
        }
        const AgreementScores a = agreement(ref, got);
        j["compare"] = {{"column", *compare},
                        {"types", truth.names.size()},
                        {"ari", a.adjustedRand},
                        {"ami", a.adjustedMutualInformation},
                        {"nmi", a.normalizedMutualInformation}};
      }
      std::cout << j.dump() << std::endl;
    } catch (const Cancelled&) {
      std::cout
          << nlohmann::json{{"result", "cancelled"}, {"message", "cancelled; " + *out + " was not written"}}.dump()
          << std::endl;
      setExitCode(130);
    }
  });
}

} // namespace atlascope::cli
