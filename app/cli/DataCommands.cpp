// Cell-data commands: generate (the synthetic whole brain) and info (what a dataset holds).
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "core/Atlas.h"
#include "core/CellFileSet.h"
#include "core/CellTable.h"
#include "core/ConvertCells.h"
#include "core/Error.h"
#include "core/SyntheticBrain.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace atlascope::cli {

void addColumnOptions(CLI::App* cmd, ColumnOptions& c) {
  cmd->add_option("--x", c.x, "obs column of in-section x (default: obsm['spatial'] or obs 'x')");
  cmd->add_option("--y", c.y, "obs column of in-section y");
  cmd->add_option("--section", c.section, "obs column of the section (default: brain_section_label, section)");
  cmd->add_option("--type", c.type, "obs column of the cell type (default: subclass, cell_type)");
  cmd->add_option("--ccf", c.ccf, "obsm key of CCF coordinates (AP, DV, ML; default: ccf)");
  cmd->add_option("--units", c.units, "units of positions: um or mm")->check(CLI::IsMember({"um", "mm"}));
  cmd->add_option("--layer", c.layer, "h5ad: expression from layers[LAYER] instead of X");
  cmd->add_option("--id", c.id, "CSV: the cell id column (default: cell_label, index, cell_id or none)");
  cmd->add_option("--genes", c.genes,
                  "CSV: the gene columns, A,B,C or FIRST..LAST (default: every numeric column that is not metadata); "
                  "several files: 'common' keeps the genes every file has instead of requiring one panel");
}

void addDatasetArgument(CLI::App* cmd, DatasetArgument& d, const std::string& help) {
  cmd->add_option("data", d.paths,
                  help + "; several files (or a folder of them) with the same columns are read as one dataset")
      ->required()
      ->check(CLI::ExistingPath);
  addColumnOptions(cmd, d.columns);
  cmd->add_option(
      "--section-from-filename", d.files.sectionFromFilename,
      "Several files: a regular expression on each file's name whose first group is its section, e.g. 'slice(\\d+)' "
      "(default: the section column, else the file's name)");
  cmd->add_option(
         "--section-spacing", d.files.sectionSpacingUm,
         "Distance between consecutive sections (um) where cells have no CCF coordinates: the views stack the sections "
         "in order at this spacing (default 200; stored in the dataset's uns)")
      ->check(CLI::PositiveNumber);
}

OpenedDataset openDataset(const DatasetArgument& d, bool needH5ad, const Progress& progress) {
  ColumnOptions columns = d.columns;
  FileSetOptions files = d.files;
  if (columns.genes == "common") {
    files.commonGenes = true;
    columns.genes.clear();
  }
  std::vector<std::string> set = cellFileSet(d.paths);
  const std::string& first = d.paths.front();
  if (set.empty() &&
      (!files.sectionFromFilename.empty() || files.sectionSpacingUm > 0 || (needH5ad && isTablePath(first))))
    set = {first};
  if (set.empty()) return {first, columns};
  const std::string path = combinedCellFiles(set, columns, files, nullptr, progress);
  return {path, combinedColumns(columns)};
}

void addDataCommands(CLI::App& app) {
  {
    auto opt = std::make_shared<SyntheticBrainOptions>();
    auto out = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd =
        app.add_subcommand("generate", "Generate a synthetic whole-brain MERFISH dataset from the CCF (.h5ad)");
    cmd->add_option("--out,-o", *out, "Output .h5ad")->required();
    cmd->add_option("--cells", opt->maxCells,
                    "About this many cells: whole sections from the middle of the brain outwards");
    cmd->add_option("--sections", opt->sections, "This many sections from the middle outwards (default: all)");
    cmd->add_option("--spacing", opt->sectionSpacingUm, "Section spacing, um")->check(CLI::PositiveNumber);
    cmd->add_option("--density", opt->cellsPerMm2,
                    "Cells per mm^2 of section (1250 as the ABC atlas; ~3500 gives ~100 neighbours)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--genes", opt->genes, "Genes")->check(CLI::Range(1, 100000));
    cmd->add_option("--types", opt->cellTypes, "Cell types (subclasses)")->check(CLI::Range(7, 30000));
    cmd->add_option("--hidden-subregions", opt->hiddenSubregions, "CCF regions split into two hidden parts")
        ->check(CLI::Range(0, 100));
    cmd->add_option("--seed", opt->seed, "Random seed");
    cmd->add_option(
        "--animal", opt->animalSeed,
        "Another animal of the same brain: this seed draws the cells (and the deformation), --seed keeps the biology");
    cmd->add_option("--section-offset", opt->sectionOffsetUm,
                    "Another animal: shift every section along AP by UM (the sections stay --spacing apart)");
    cmd->add_option("--deformation", opt->deformationUm,
                    "Another animal: a smooth displacement of up to UM per axis between each cell's section position "
                    "and its CCF position")
        ->check(CLI::Range(0.0, 2000.0));
    cmd->add_option("--gzip", opt->gzip, "gzip level of X (0 = none)")->check(CLI::Range(0, 9));
    cmd->add_option("--threads", opt->threads, "Threads (0 = all cores)");
    cmd->add_flag("--json", *json, "Print a JSON summary");
    cmd->callback([opt, out, json] {
      const Atlas atlas = Atlas::load(bundledAtlasPaths());
      const auto s = generateSyntheticBrain(atlas, *opt, *out);
      nlohmann::json j = {{"out", *out},
                          {"cells", s.cells},
                          {"sections", s.sections},
                          {"genes", opt->genes},
                          {"cell_types", opt->cellTypes},
                          {"mean_neighbors", std::round(s.meanNeighbors * 10) / 10},
                          {"hidden_regions", s.hiddenRegions},
                          {"seconds", std::round(s.seconds * 100) / 100}};
      if (*json)
        std::cout << j.dump() << "\n";
      else
        std::cout << "wrote " << *out << ": " << s.cells << " cells in " << s.sections << " sections, " << opt->genes
                  << " genes, " << opt->cellTypes << " types, ~" << std::lround(s.meanNeighbors)
                  << " neighbours per cell, " << s.seconds << " s\n";
    });
  }
  {
    auto in = std::make_shared<DatasetArgument>();
    auto out = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(
        "convert", "Write a dataset (any readable format) as a current AnnData .h5ad or one CSV/TSV table");
    addDatasetArgument(cmd, *in, "Dataset (.h5ad of any anndata version, CSV/TSV, or an ABC download folder)");
    cmd->add_option("--out,-o", *out, "Output: .h5ad (anndata 0.8 encoding) or .csv/.tsv")->required();
    cmd->callback([in, out] {
      const OpenedDataset d = openDataset(*in);
      const ConvertSummary s = convertCells(d.path, d.columns, *out);
      std::cout << nlohmann::json{{"out", *out},
                                  {"format", s.format},
                                  {"cells", s.cells},
                                  {"genes", s.genes},
                                  {"skipped_cells", s.skipped}}
                       .dump()
                << std::endl;
    });
  }
  {
    auto data = std::make_shared<DatasetArgument>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd =
        app.add_subcommand("info", "What a dataset holds: cells, genes, sections, types, coordinate ranges");
    addDatasetArgument(cmd, *data, "Dataset (.h5ad, .csv, or an ABC download folder)");
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([data, json] {
      const OpenedDataset d = openDataset(*data);
      const CellTable t = readCellTable(d.path, d.columns);
      auto range = [](const std::vector<float>& v) {
        if (v.empty()) return nlohmann::json::array();
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return nlohmann::json::array({*lo, *hi});
      };
      nlohmann::json j = {{"cells", t.size()},
                          {"genes", t.genes.size()},
                          {"sections", t.sectionNames.size()},
                          {"cell_types", t.types.names.size()},
                          {"x_um", range(t.x)},
                          {"y_um", range(t.y)},
                          {"ccf", t.hasCcf()},
                          {"skipped_cells", t.skippedCells},
                          {"skipped_reason", t.skippedReason},
                          {"section_names", t.sectionNames}};
      if (d.path != data->paths.front()) j["combined"] = d.path;
      if (const double spacing = readSectionSpacing(d.path); spacing > 0) j["section_spacing_um"] = spacing;
      if (t.hasCcf()) j["ccf_um"] = {range(t.ccfAp), range(t.ccfDv), range(t.ccfMl)};
      if (*json) {
        std::cout << j.dump() << "\n";
        return;
      }
      std::cout << "cells:      " << t.size() << "\n"
                << "genes:      " << t.genes.size() << "\n"
                << "sections:   " << t.sectionNames.size() << "\n"
                << "cell types: " << t.types.names.size() << "\n"
                << "x, y (um):  " << j["x_um"].dump() << ", " << j["y_um"].dump() << "\n"
                << "CCF:        " << (t.hasCcf() ? j["ccf_um"].dump() : std::string("none")) << "\n";
      if (t.skippedCells > 0) std::cout << "skipped:    " << t.skippedCells << " cells (" << t.skippedReason << ")\n";
    });
  }
}

} // namespace atlascope::cli
