// compare: how a labeling of the cells (discovered regions, or any obs column) agrees with the
// CCF (or with another labeling): scores, overlap, best matches, splits. With --against-dataset:
// how the regions of two datasets (two animals) correspond in the CCF they share.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "core/Agreement.h"
#include "core/Atlas.h"
#include "core/AtlasCatalog.h"
#include "core/CcfLabels.h"
#include "core/CellTable.h"
#include "core/ComparisonReport.h"
#include "core/CorrespondenceReport.h"
#include "core/Error.h"
#include "core/RegionCorrespondence.h"
#include "core/RegionNames.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

namespace atlascope::cli {

namespace {
struct LabelledDataset {
  CellTable cells;
  std::vector<std::int32_t> labels; // per cell (CellTable order)
  CorrespondenceSide side;
};

// A dataset, its labels, its agreement with the CCF (major divisions and leaves) and its region
// names: the ones stored in the file (a user may have edited them), else named after the CCF.
LabelledDataset readLabelledDataset(const std::string& path, const std::string& column, const ColumnOptions& columns,
                                    const Atlas& atlas) {
  LabelledDataset d;
  d.cells = readCellTable(path, columns);
  if (!d.cells.hasCcf())
    throw FileError(path, "has no CCF coordinates (obsm['ccf'] or --ccf): its regions cannot be compared with another "
                          "dataset's in the CCF");
  const ObsLabels obs = readObsLabels(path, column);
  for (std::int64_t r : d.cells.fileRow) d.labels.push_back(obs.codes[static_cast<std::size_t>(r)]);
  d.side.data = path;
  d.side.column = column;
  d.side.categories = obs.names;
  for (std::int32_t l : d.labels) d.side.cells += l >= 0;
  const std::vector<std::int32_t> leaf = ccfLabels(atlas, d.cells, {"leaf"});
  d.side.ccf["leaf"] = agreementJson(agreement(contingency(leaf, d.labels)));
  d.side.ccf["major"] = agreementJson(agreement(contingency(ccfLabels(atlas, d.cells, {"major"}), d.labels)));
  d.side.names = readRegionNames(path, column);
  if (d.side.names.size() != obs.names.size())
    d.side.names = ccfRegionNames(leaf, d.labels, obs.names, atlas.structures());
  return d;
}
} // namespace

void addCompareCommand(CLI::App& app) {
  {
    auto data = std::make_shared<std::string>();
    auto labels = std::make_shared<std::string>();
    auto against = std::make_shared<std::string>("ccf");
    auto level = std::make_shared<std::string>("leaf");
    auto out = std::make_shared<std::string>("comparison");
    auto cols = std::make_shared<ColumnOptions>();
    auto otherData = std::make_shared<std::string>();
    auto otherLabels = std::make_shared<std::string>();
    auto correspondence = std::make_shared<CorrespondenceOptions>();
    auto voxelUm = std::make_shared<double>(100.0);
    auto atlasName = std::make_shared<std::string>(kBundledAtlasName);
    CLI::App* cmd = app.add_subcommand("compare", "Compare a labeling of the cells with the CCF (or another labeling, "
                                                  "or another dataset's regions): scores and tables");
    cmd->add_option("data", *data, "Dataset (.h5ad, .csv, or an ABC download folder)")
        ->required()
        ->check(CLI::ExistingPath);
    cmd->add_option("--labels", *labels, "obs column with the labels to score (e.g. discovered regions)")->required();
    cmd->add_option("--against", *against, "ccf (the cells' CCF structures) or another obs column");
    cmd->add_option("--level", *level, "CCF level: leaf, depth:N or major");
    cmd->add_option("--atlas", *atlasName,
                    "Atlas whose structures --against ccf means: ccf (the bundled CCF, default), or a BrainGlobe atlas "
                    "of the CCF's space, by name or path");
    cmd->add_option("--out-dir", *out,
                    "Folder for summary.json, overlap.csv, best_matches.csv, splits.csv (with --against-dataset: "
                    "summary.json, matches.csv)");
    cmd->add_option("--against-dataset", *otherData,
                    "Another dataset (another animal) with CCF coordinates: its regions against these, voxel by voxel "
                    "on the CCF grid")
        ->check(CLI::ExistingPath);
    cmd->add_option("--against-labels", *otherLabels,
                    "The other dataset's label column (default: the same as --labels)");
    cmd->add_option("--voxel-um", *voxelUm,
                    "With --against-dataset: the shared grid's voxel edge, a multiple of the CCF's 25 um")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--split-threshold", correspondence->splitThreshold,
                    "With --against-dataset: a region is split when two or more regions of the other lie at least this "
                    "share inside "
                    "it and cover this share of it (merges the reverse)")
        ->check(CLI::Range(0.01, 1.0));
    cmd->add_option("--min-jaccard", correspondence->minimumJaccard,
                    "With --against-dataset: one-to-one pairs below this Jaccard are left unmatched")
        ->check(CLI::Range(0.0, 1.0));
    addColumnOptions(cmd, *cols);
    cmd->callback([=] {
      if (!otherData->empty()) {
        if (*against != "ccf")
          throw Error("compare: --against and --against-dataset do not go together (--against-labels names the other "
                      "dataset's column)");
        const auto t0 = std::chrono::steady_clock::now();
        const Atlas atlas = openAtlas(*atlasName);
        requireCcfSpace(atlas);
        const double factor = *voxelUm / atlas.annotation().spacingUm()[0];
        if (std::abs(factor - std::round(factor)) > 1e-6 || factor < 1)
          throw Error("compare: --voxel-um must be a multiple of the CCF's voxel (" +
                      nlohmann::json(atlas.annotation().spacingUm()[0]).dump() + " um)");
        CorrespondenceOptions options = *correspondence;
        options.voxelFactor = static_cast<int>(std::lround(factor));
        LabelledDataset a = readLabelledDataset(*data, *labels, *cols, atlas);
        LabelledDataset b =
            readLabelledDataset(*otherData, otherLabels->empty() ? *labels : *otherLabels, *cols, atlas);
        const RegionCorrespondence r =
            correspondRegions(atlas.annotation(), a.cells, a.labels, b.cells, b.labels, options);
        // Each one against the CCF on the very voxels A and B are compared on: the figure to set
        // the A-B agreement beside (the cells' scores above count cells, not voxels).
        for (const char* level : {"leaf", "major"}) {
          const std::vector<std::int32_t> ccf = ccfVoxelLabels(atlas, options.voxelFactor, {level});
          a.side.ccf["shared_grid"][level] = agreementJson(agreement(contingency(ccf, r.gridA)));
          b.side.ccf["shared_grid"][level] = agreementJson(agreement(contingency(ccf, r.gridB)));
        }
        nlohmann::json summary = writeCorrespondenceReport(r, a.side, b.side, options, *out);
        summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        summary["out_dir"] = *out;
        std::cout << summary.dump() << "\n";
        return;
      }
      if (!otherLabels->empty()) throw Error("compare: --against-labels needs --against-dataset");
      const CellTable cells = readCellTable(*data, *cols);
      const ObsLabels predicted = readObsLabels(*data, *labels);
      std::vector<std::int32_t> pred;
      for (std::int64_t r : cells.fileRow) pred.push_back(predicted.codes[static_cast<std::size_t>(r)]);
      std::vector<std::int32_t> ref;
      LabelNames names;
      names.predicted = predicted.names;
      names.predictedTitle = *labels;
      std::unique_ptr<Atlas> atlas;
      if (*against == "ccf") {
        if (!cells.hasCcf()) {
          // Not a failure: say what is missing and what would make the comparison possible.
          std::cout << nlohmann::json{{"result", "no_ccf"},
                                      {"message",
                                       "the dataset has no CCF coordinates (obsm['ccf'] or --ccf), so it cannot be "
                                       "compared with the CCF; --against COLUMN compares two labelings"}}
                           .dump()
                    << "\n";
          return;
        }
        atlas = std::make_unique<Atlas>(openAtlas(*atlasName));
        requireCcfSpace(*atlas);
        ref = ccfLabels(*atlas, cells, {*level});
        for (std::size_t i = 0; i < atlas->structures().size(); ++i)
          names.reference.push_back(atlas->structures()[static_cast<int>(i)].acronym);
        names.referenceTitle = (*atlasName == kBundledAtlasName ? std::string("ccf") : atlas->name()) + "_" + *level;
      } else {
        const ObsLabels other = readObsLabels(*data, *against);
        for (std::int64_t r : cells.fileRow) ref.push_back(other.codes[static_cast<std::size_t>(r)]);
        names.reference = other.names;
        names.referenceTitle = *against;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const Contingency table = contingency(ref, pred);
      const AgreementScores scores = agreement(table);
      nlohmann::json summary = writeComparisonReport(table, scores, names, *out);
      summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      summary["out_dir"] = *out;
      std::cout << summary.dump() << "\n";
    });
  }
  {
    auto cells = std::make_shared<std::int64_t>(10000000);
    auto refLabels = std::make_shared<int>(700);
    auto predLabels = std::make_shared<int>(2000);
    CLI::App* bench = app.get_subcommand("bench"); // made by addModelCommands (registered first)
    CLI::App* cmd = bench->add_subcommand("compare", "Agreement scores on random related labelings (one JSON line)");
    cmd->add_option("--cells", *cells, "Cells");
    cmd->add_option("--reference-labels", *refLabels, "Reference labels");
    cmd->add_option("--predicted-labels", *predLabels, "Predicted labels");
    cmd->callback([=] {
      std::mt19937_64 rng(7);
      std::vector<std::int32_t> a(static_cast<std::size_t>(*cells)), b(a.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        a[i] = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(*refLabels));
        // Each predicted label mostly inside one reference label, with 20% noise.
        b[i] = rng() % 5 == 0
                   ? static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(*predLabels))
                   : static_cast<std::int32_t>((a[i] * 3 + static_cast<std::int32_t>(rng() % 3)) % *predLabels);
      }
      const auto t0 = std::chrono::steady_clock::now();
      const Contingency t = contingency(a, b);
      const auto t1 = std::chrono::steady_clock::now();
      const AgreementScores s = agreement(t);
      const auto t2 = std::chrono::steady_clock::now();
      std::cout << nlohmann::json{{"figure", "compare"},
                                  {"cells", *cells},
                                  {"reference_labels", s.referenceLabels},
                                  {"predicted_labels", s.predictedLabels},
                                  {"contingency_s", std::chrono::duration<double>(t1 - t0).count()},
                                  {"scores_s", std::chrono::duration<double>(t2 - t1).count()},
                                  {"ami", s.adjustedMutualInformation},
                                  {"ari", s.adjustedRand}}
                       .dump()
                << "\n";
    });
  }
}

} // namespace atlascope::cli
