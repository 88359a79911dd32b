// train: CellTransformer on a dataset, self-supervised, with the reference recipe; a checkpoint
// with the dataset's gene panel and cell types (usable by `embed` and `segment`), resumable.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"

#include "core/CellTable.h"
#include "core/Error.h"
#include "inference/Device.h"
#include "inference/Init.h"
#include "inference/ModelFile.h"
#include "inference/Trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

namespace atlascope::cli {

namespace {
CancellationToken gTrainCancel;
extern "C" void onTrainSignal(int) { gTrainCancel.cancel(); }
} // namespace

void addTrainCommand(CLI::App& app) {
  auto data = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto opt = std::make_shared<inference::TrainOptions>();
  auto size = std::make_shared<std::string>("compact");
  auto device = std::make_shared<std::string>("cpu");
  auto resume = std::make_shared<bool>(false);
  auto progress = std::make_shared<std::string>("text");
  auto every = std::make_shared<int>(10);
  auto cols = std::make_shared<ColumnOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train CellTransformer on a dataset (self-supervised); writes a checkpoint");
  cmd->add_option("data", *data, "Dataset (.h5ad)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", *out, "Checkpoint (.h5); its training state goes to OUT.train")->required();
  cmd->add_option("--epochs", opt->epochs, "Epochs")->check(CLI::Range(1, 10000));
  cmd->add_option("--max-steps", opt->maxSteps, "Stop after this many optimiser steps");
  cmd->add_option("--size", *size, "compact (E 128, 4 heads, 2+2 layers) or released (E 384, 8 heads, 4+4)")->check(CLI::IsMember({"compact", "released"}));
  cmd->add_option("--lr", opt->lr, "Peak learning rate");
  cmd->add_option("--cells-per-step", opt->cellsPerStep, "Neighbourhoods per optimiser step (gradient accumulation)");
  cmd->add_option("--seed", opt->seed, "Seed (split, order, init)");
  cmd->add_option("--device", *device, "cpu (GPU training: not yet)")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_flag("--resume", *resume, "Continue from OUT and OUT.train");
  cmd->add_option("--progress", *progress, "text, json or none")->check(CLI::IsMember({"text", "json", "none"}));
  cmd->add_option("--log-every", *every, "A progress line every N steps");
  addColumnOptions(cmd, *cols);
  cmd->callback([=] {
    if (*device != "cpu")
      throw Error("training runs on the CPU in this version (the GPU training path is the training issue's next step)");
    std::signal(SIGINT, onTrainSignal);
    std::signal(SIGTERM, onTrainSignal);
    inference::configureCpuThreads();
    const CellTable cells = readCellTable(*data, *cols);
    if (cells.types.names.empty()) throw Error("training needs a cell-type column (--type COL)");
    ExpressionSource src(*data, *cols);
    const std::int64_t n = cells.size(), G = src.genes();
    torch::Tensor expr = torch::empty({n, G});
    {
      std::vector<float> row(static_cast<std::size_t>(G));
      for (std::int64_t i = 0; i < n; ++i) { // rows of kept cells (skipped ones are left out)
        src.readRows(cells.fileRow[static_cast<std::size_t>(i)], 1, row.data());
        std::memcpy(expr[i].data_ptr<float>(), row.data(), row.size() * sizeof(float));
      }
    }
    std::vector<std::string> sortedTypes = cells.types.names;
    std::sort(sortedTypes.begin(), sortedTypes.end());
    torch::Tensor types = torch::empty({n}, torch::kInt64);
    for (std::int64_t i = 0; i < n; ++i)
      types[i] = std::lower_bound(sortedTypes.begin(), sortedTypes.end(), cells.types.names[static_cast<std::size_t>(cells.cellType[static_cast<std::size_t>(i)])]) - sortedTypes.begin();
    ModelPositions pos = modelPositions(cells);
    std::unique_ptr<inference::CellTransformer> model;
    if (*resume) {
      inference::ModelFile mf = inference::loadModelFile(*out);
      model = std::move(mf.model);
    } else {
      inference::ModelConfig cfg;
      cfg.genes = static_cast<int>(G);
      cfg.cellTypes = static_cast<int>(sortedTypes.size());
      if (*size == "compact") { cfg.embedDim = 128; cfg.heads = 4; cfg.encoderLayers = 2; cfg.decoderLayers = 2; cfg.feedForward = 512; }
      model = std::make_unique<inference::CellTransformer>(inference::initWeights(cfg, opt->seed), cfg, "init");
    }
    opt->cancel = &gTrainCancel;
    const std::string mode = *progress;
    const int logEvery = *every;
    opt->onStep = [mode, logEvery](std::int64_t step, double loss, double lr, double rate) {
      if (mode == "none" || step % logEvery != 0) return;
      if (mode == "json") std::cout << nlohmann::json{{"stage", "training"}, {"step", step}, {"loss", loss}, {"lr", lr}, {"rate", rate}}.dump() << std::endl;
      else std::fprintf(stderr, "step %lld: loss %.4f, lr %.2e, %.0f cells/s\n", static_cast<long long>(step), loss, lr, rate);
    };
    inference::Trainer trainer(*model, expr, types, std::move(pos.x), std::move(pos.y), std::move(pos.section), *opt);
    if (*resume) trainer.loadState(*out + ".train");
    bool cancelled = false;
    try {
      trainer.run();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    // A checkpoint after every run (and on cancel): the model with its panel, then the state.
    inference::saveCheckpoint(*model, cells.genes, sortedTypes, *out);
    trainer.saveState(*out + ".train");
    const auto v = trainer.validate();
    nlohmann::json j = {{"result", cancelled ? "cancelled" : "ok"}, {"out", *out}, {"steps", trainer.state().step},
                        {"epoch", trainer.state().epoch}, {"validation_nll", v.nll}, {"validation_pearson", v.pearson},
                        {"baseline_nll", v.baselineNll}, {"baseline_pearson", v.baselinePearson}, {"config", model->config().describe()}};
    std::cout << j.dump() << std::endl;
    if (cancelled) setExitCode(130);
  });
}

} // namespace atlascope::cli
