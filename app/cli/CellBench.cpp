// bench cells: the cell-data figures of the README on a synthetic brain of N cells (generated once
// into --dir): generation time, opening (seconds, peak RAM), one gene for every cell read from the
// rows vs from the gene-major store (and the store's one-off build), all rows streamed once.
// One JSON line per figure; each figure's baseline is measured in the same run.
#include "app/cli/Commands.h"
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/GeneStore.h"
#include "core/SyntheticBrain.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

namespace atlascope::cli {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double peakRssGiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0); // kB -> GiB
}
} // namespace

void addCellBench(CLI::App& app) {
  CLI::App* bench = app.get_subcommand("bench"); // made by addModelCommands (registered first)
  auto cells = std::make_shared<std::int64_t>(4000000);
  auto genes = std::make_shared<int>(500);
  auto density = std::make_shared<double>(1250.0);
  auto dir = std::make_shared<std::string>("bench-data");
  auto readGenes = std::make_shared<int>(5);
  auto skipRows = std::make_shared<bool>(false);
  CLI::App* b = bench->add_subcommand(
      "cells", "Cell data: generate, open, read a gene (rows vs gene store), stream rows (JSON lines)");
  b->add_option("--cells", *cells, "Cells of the synthetic brain (whole sections from the middle outwards)");
  b->add_option("--genes", *genes, "Genes")->check(CLI::Range(1, 100000));
  b->add_option("--density", *density, "Cells per mm^2 (1250: the ABC atlas; the whole brain then holds ~4M cells)");
  b->add_option("--dir", *dir, "Where the dataset goes (kept for later runs) and the gene store (cache)");
  b->add_option("--gene-reads", *readGenes, "Genes read from the store (their mean time is reported)");
  b->add_flag("--skip-row-reads", *skipRows,
              "Skip the row-streaming gene read and the full row pass (the slow baselines)");
  b->callback([=] {
    namespace fs = std::filesystem;
    fs::create_directories(*dir);
    const std::string data =
        (fs::path(*dir) / ("cells-" + std::to_string(*cells) + "-g" + std::to_string(*genes) + ".h5ad")).string();
    if (!fs::exists(data)) {
      SyntheticBrainOptions g;
      g.maxCells = *cells;
      g.genes = *genes;
      g.cellsPerMm2 = *density;
      const auto s = generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, data);
      std::cout << nlohmann::json{{"figure", "generate"},   {"cells", s.cells},     {"genes", *genes},
                                  {"sections", s.sections}, {"seconds", s.seconds}, {"bytes", fs::file_size(data)}}
                       .dump()
                << std::endl;
    }
    auto t = Clock::now();
    const CellTable table = readCellTable(data);
    std::cout << nlohmann::json{{"figure", "open"},
                                {"cells", table.size()},
                                {"seconds", since(t)},
                                {"peak_rss_gib", peakRssGiB()},
                                {"what", "positions, sections, types, CCF (no expression)"}}
                     .dump()
              << std::endl;
    const ExpressionSource source(data);
    if (!*skipRows) {
      t = Clock::now();
      const auto v = source.readGene(source.genes() / 2);
      std::cout << nlohmann::json{{"figure", "gene_from_rows"}, {"cells", v.size()}, {"seconds", since(t)}}.dump()
                << std::endl;
    }
    const std::string cache = (fs::path(*dir) / "cache").string();
    fs::remove(GeneStore::pathFor(data, cache));
    t = Clock::now();
    const GeneStore store = GeneStore::openOrBuild(data, {}, cache);
    std::cout << nlohmann::json{{"figure", "gene_store_build"},
                                {"cells", store.cells()},
                                {"seconds", since(t)},
                                {"bytes", fs::file_size(store.path())}}
                     .dump()
              << std::endl;
    t = Clock::now();
    std::int64_t n = 0;
    for (int k = 0; k < *readGenes; ++k)
      n += static_cast<std::int64_t>(store.readGene((k * 7919) % store.genes()).size());
    std::cout << nlohmann::json{{"figure", "gene_from_store"},
                                {"cells", n / std::max(1, *readGenes)},
                                {"seconds_per_gene", since(t) / std::max(1, *readGenes)}}
                     .dump()
              << std::endl;
    if (!*skipRows) {
      t = Clock::now();
      const std::int64_t slab = std::max<std::int64_t>(1, (64ll << 20) / (4 * source.genes()));
      std::vector<float> buf;
      double sum = 0;
      for (std::int64_t r = 0; r < source.cells(); r += slab) {
        const std::int64_t m = std::min(slab, source.cells() - r);
        buf.resize(static_cast<std::size_t>(m * source.genes()));
        source.readRows(r, m, buf.data());
        sum += buf[0];
      }
      const double s = since(t);
      std::cout << nlohmann::json{{"figure", "stream_rows"},
                                  {"cells", source.cells()},
                                  {"seconds", s},
                                  {"cells_per_s", static_cast<double>(source.cells()) / s},
                                  {"checksum", sum}}
                       .dump()
                << std::endl;
    }
  });
}

} // namespace atlascope::cli
