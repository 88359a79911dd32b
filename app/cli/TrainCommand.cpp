// train: CellTransformer on a dataset, self-supervised, with the reference recipe; a checkpoint
// with the dataset's gene panel and cell types (usable by `embed` and `segment`), resumable.
// bench train: the same job on a synthetic brain, one JSON line per figure.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "app/cli/Launch.h"
#include "core/Atlas.h"
#include "core/AtomicFile.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/SyntheticBrain.h"
#include "inference/Device.h"
#include "inference/Distributed.h"
#include "inference/ExpressionTable.h"
#include "inference/Init.h"
#include "inference/ModelFile.h"
#include "inference/TrainMatmul.h"
#include "inference/Trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace atlascope::cli {

namespace {
CancellationToken gTrainCancel;
extern "C" void onTrainSignal(int) { gTrainCancel.cancel(); }

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct TrainJob {
  std::string data, out;
  inference::TrainOptions opt;
  std::string size = "compact"; // a new model's size
  std::string device = "auto";
  std::string precision = "auto"; // bf16 on a GPU, fp32 on the CPU
  std::string progress = "text";
  int logEvery = 10;
  bool resume = false;
  bool profile = false;                    // synchronised per-part timings (slower; bench train --profile)
  bool profileValidation = false;          // the same for validation alone (bench train --profile-validation)
  bool paddedAttention = false;            // GPU: the padded attention instead of the variable-length one
  bool flashAttention = false;             // GPU: ATen's flash kernels for it instead of the short-attention ones
  bool paddedPool = false;                 // the attention pool's LayerNorm over padded slots (the path before)
  bool unfusedFeedForward = false;         // GPU: cuBLASLt's products, ATen's GELU (the path before the fused GEMMs)
  bool unfusedLayerNorm = false;           // GPU: ATen's residual add, LayerNorm's gradients in two passes (before)
  bool atenPoolNorm = false;               // GPU: ATen's LayerNorm in the attention pool (the path before)
  bool separateQkv = false;                // GPU: q, k, v by three products each way (the path before)
  bool linCombGelu = false;                // GPU: the fused feed-forward's linear-combination epilogues (before)
  bool twoKernelAttentionBackward = false; // GPU: the attention backward's two kernels (before)
  bool attentionBackwardReload = false;    // GPU: the one kernel copying K between its phases (before)
  bool attentionLoadsLate = false;         // GPU: the one kernel's first loads after delta's sums (before)
  bool atenInputGrads = false;             // GPU: input gradients by ATen's mm (before the tuned cuBLASLt ones)
  bool separateBiasSums = false;           // GPU: bias gradients by passes of their own (before)
  bool separateNormGelu = false;           // GPU: the token MLP's GELU by ATen after its LayerNorm (before)
  bool catProjNorm = false;                // GPU: proj_norm's input gathered and concatenated first (before)
  bool biasGradInProduct = false;          // GPU: the first feed-forward bias gradient by dW1's product
  bool storedGeluGrad = false;             // GPU: the feed-forward's forward stores GELU'(h), not h
  bool atenTypeRows = false;               // type rows from the float32 master, ATen's index_add (before)
  bool atenPairAttention = false;          // GPU: the decoder's pair attention by ATen's composite (before)
  bool atenPoolScatter = false;            // GPU: the pool's padded layout by a zero fill + index_copy (before)
  bool atenTrainPool = false;              // GPU: the pool by its padded layout and ATen's products (before)
  bool atenPoolOutput = false;             // GPU: the pool's output by ATen's operations (before)
  bool poolSingleTokens = false;           // GPU: the pool's kernels one token a warp at a time (before)
  bool atenTokenRows = false;              // GPU: the token rows by ATen's gathers, cat and add (before)
  bool noFusedKernels = false;             // GPU: ATen's LayerNorm gradients instead of the fused kernel's
  int ranks = 1;                           // --gpus N: this many processes, data-parallel (Launch.h)
  ColumnOptions columns;
};

// "model.h5" -> "model.best.h5": the checkpoint with the lowest validation NLL so far.
std::string bestPath(const std::string& out) {
  const auto dot = out.rfind('.');
  return dot == std::string::npos || dot < out.rfind('/') + 1 ? out + ".best"
                                                              : out.substr(0, dot) + ".best" + out.substr(dot);
}

void applySize(inference::ModelConfig& cfg, const std::string& size) {
  if (size == "compact") {
    cfg.embedDim = 128;
    cfg.heads = 4;
    cfg.encoderLayers = 2;
    cfg.decoderLayers = 2;
    cfg.feedForward = 512;
  }
}

// One training run; the summary line's fields. Checkpoints: OUT (the last validated weights),
// OUT.train (+ .adam: the optimiser and position, for --resume), and OUT's .best twin.
nlohmann::json runTraining(TrainJob& job) {
  const auto start = Clock::now();
  // One rank of several (--gpus N, torchrun variables): join the job first, so that a missing
  // rank fails now; rank 0 alone reports progress and writes the checkpoints.
  // GPU ranks keep LibTorch's default CPU threads: training builds its batches with CPU tensor
  // ops on a host thread (sharing the cores measured slower, bench train 4M cells).
  const std::unique_ptr<inference::Distributed> dist = joinJob(job.device, /*shareCores=*/false);
  const int worldSize = dist ? dist->size() : 1;
  const bool lead = !dist || dist->rank() == 0;
  // Devices of the job, in every JSON progress line and the result: "ranks" (processes) and "gpus"
  // (0 on the CPU).
  const int gpus = inference::resolveDevice(job.device) == "cuda" ? worldSize : 0;
  if (job.progress == "json")
    std::cout
        << nlohmann::json{{"stage", "starting"}, {"done", 0}, {"total", 0}, {"gpus", gpus}, {"ranks", worldSize}}.dump()
        << std::endl;
  if (!lead) job.progress = "none";
  const std::string dev = inference::resolveDevice(job.device);
  const bool cuda = dev == "cuda";
  std::string precision = job.precision == "auto" ? (cuda ? "bf16" : "fp32") : job.precision;
  if (precision == "bf16" && !cuda) throw Error("bf16 training runs on a GPU (use --precision fp32 on the CPU)");
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, inference::cudaIndex()) : torch::Device(torch::kCPU);
  if (!cuda) inference::configureCpuThreads();
  inference::resetPeakGpuMemory();
  std::map<std::string, double> profile, validationProfile;

  const CellTable cells = readCellTable(job.data, job.columns);
  if (cells.types.names.empty())
    throw Error("training needs a cell-type column (--type COL); without one, find types from expression first: "
                "atlascope-cli celltypes " +
                job.data + " --out TYPED.h5ad, then train on TYPED.h5ad");
  // Types are encoded as their sorted names, the reference's rule (and mapPanel's for a bare .pth).
  std::vector<std::string> sortedTypes = cells.types.names;
  std::sort(sortedTypes.begin(), sortedTypes.end());
  const std::int64_t n = cells.size();
  std::vector<std::int64_t> typeCodes(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    typeCodes[static_cast<std::size_t>(i)] =
        std::lower_bound(sortedTypes.begin(), sortedTypes.end(),
                         cells.types.names[static_cast<std::size_t>(cells.cellType[static_cast<std::size_t>(i)])]) -
        sortedTypes.begin();
  const torch::Tensor types = torch::from_blob(typeCodes.data(), {n}, torch::kInt64).to(device);
  ExpressionSource source(job.data, job.columns);
  inference::ExpressionTableOptions eo;
  eo.device = device;
  Progress loading;
  loading.cancel = &gTrainCancel;
  const torch::Tensor expression = inference::loadExpressionTable(source, cells, eo, loading);
  // The model reads log1p(counts) and its likelihood undoes the log: raw counts or intensities
  // overflow it into a NaN loss at the first step. Say what to do instead.
  if (const double top = expression.numel() > 0 ? expression.max().item<double>() : 0.0; top > 30)
    throw FileError(
        job.data,
        "its expression goes up to " + std::to_string(top) +
            ": CellTransformer reads log counts (log1p); `atlascope-cli celltypes` writes them into its copy's X");
  const double loadSeconds = since(start);

  std::unique_ptr<inference::CellTransformer> model;
  nlohmann::json log = {{"steps", nlohmann::json::array()}, {"validations", nlohmann::json::array()}};
  if (job.resume) {
    inference::ModelFile mf = inference::loadModelFile(job.out);
    if (mf.genes != cells.genes)
      throw FileError(job.out, "was trained on another gene panel than " + job.data + "'s; cannot resume");
    if (mf.cellTypes != sortedTypes)
      throw FileError(job.out, "was trained with other cell types than " + job.data + "'s; cannot resume");
    model = std::move(mf.model);
    if (!mf.trainingLog.empty()) log = nlohmann::json::parse(mf.trainingLog, nullptr, false);
    if (log.is_discarded()) log = {{"steps", nlohmann::json::array()}, {"validations", nlohmann::json::array()}};
  } else {
    inference::ModelConfig cfg;
    cfg.genes = static_cast<int>(source.genes());
    cfg.cellTypes = static_cast<int>(sortedTypes.size());
    applySize(cfg, job.size);
    model = std::make_unique<inference::CellTransformer>(inference::initWeights(cfg, job.opt.seed), cfg, "init");
  }
  model->to(device, precision == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  model->setVariableLengthAttention(!job.paddedAttention);
  model->setShortAttention(!job.flashAttention);
  model->setPackedPool(!job.paddedPool);
  model->setFusedFeedForward(!job.unfusedFeedForward);
  model->setFusedLayerNorm(!job.unfusedLayerNorm);
  model->setFusedPoolNorm(!job.atenPoolNorm);
  model->setPackedTrainingQkv(!job.separateQkv);
  model->setLinCombGelu(job.linCombGelu);
  model->setTwoKernelAttentionBackward(job.twoKernelAttentionBackward);
  model->setAttentionKeysAhead(!job.attentionBackwardReload);
  inference::CellTransformer::setAttentionBackwardLoadsLate(job.attentionLoadsLate);
  inference::setTunedInputGradients(!job.atenInputGrads);
  model->setNormBiasSums(!job.separateBiasSums);
  model->setFusedNormGelu(!job.separateNormGelu);
  model->setFusedProjNorm(!job.catProjNorm);
  model->setBiasGradInProduct(job.biasGradInProduct);
  model->setStoredGeluGrad(job.storedGeluGrad);
  model->setComputeTypeRows(!job.atenTypeRows);
  model->setFusedPairAttention(!job.atenPairAttention);
  model->setFusedPoolScatter(!job.atenPoolScatter);
  model->setFusedTrainPool(!job.atenTrainPool);
  model->setFusedPoolOutput(!job.atenPoolOutput);
  model->setPoolTokenPairs(!job.poolSingleTokens);
  model->setFusedTokenRows(!job.atenTokenRows);
  model->setFusedKernels(!job.noFusedKernels);

  inference::TrainOptions opt = job.opt;
  opt.cancel = &gTrainCancel;
  opt.dist = dist.get();
  log["world_size"] = worldSize; // of the latest run (a resumed job may use another N)
  std::unique_ptr<inference::Trainer> trainer;
  const std::string mode = job.progress;
  const int logEvery = std::max(1, job.logEvery);
  double lastRate = 0;
  opt.onStep = [&, mode, logEvery](std::int64_t step, double loss, double lr, double rate) {
    lastRate = rate;
    log["steps"].push_back({{"step", step}, {"loss", loss}, {"lr", lr}, {"rate", rate}});
    if (mode == "none" || step % logEvery != 0) return;
    if (mode == "json")
      std::cout << nlohmann::json{{"stage", "training"}, {"step", step},
                                  {"done", step},        {"total", trainer ? trainer->totalSteps() : 0},
                                  {"loss", loss},        {"lr", lr},
                                  {"rate", rate},        {"gpus", gpus},
                                  {"ranks", worldSize}}
                       .dump()
                << std::endl;
    else
      std::fprintf(stderr, "step %lld: loss %.4f, lr %.2e, %.0f cells/s\n", static_cast<long long>(step), loss, lr,
                   rate);
  };
  double best = INFINITY;
  for (const auto& v : log["validations"]) best = std::min(best, v.value("nll", static_cast<double>(INFINITY)));
  inference::ValidationMetrics lastValidation;
  opt.onValidation = [&](const inference::ValidationMetrics& v) {
    lastValidation = v;
    const auto& st = trainer->state();
    const nlohmann::json entry = {{"step", st.step},
                                  {"epoch", st.epoch},
                                  {"nll", v.nll},
                                  {"pearson", v.pearson},
                                  {"baseline_nll", v.baselineNll},
                                  {"baseline_pearson", v.baselinePearson},
                                  {"world_size", worldSize}};
    log["validations"].push_back(entry);
    if (mode == "json")
      std::cout
          << nlohmann::json{{"stage", "validation"}, {"metrics", entry}, {"gpus", gpus}, {"ranks", worldSize}}.dump()
          << std::endl;
    else if (mode == "text")
      std::fprintf(stderr, "validation at step %lld: NLL %.4f (baseline %.4f), r %.3f (baseline %.3f)\n",
                   static_cast<long long>(st.step), v.nll, v.baselineNll, v.pearson, v.baselinePearson);
    if (!lead) return; // the ranks hold the same weights: rank 0 writes them, once
    // The model first, then the state that goes with it: a crash between the two resumes from
    // the previous state with newer weights at worst, never from a state without weights.
    inference::saveCheckpoint(*model, cells.genes, sortedTypes, job.out, log.dump());
    trainer->saveState(job.out + ".train");
    if (v.nll < best) {
      best = v.nll;
      // The checkpoint just written is the best: a second name for it, where the file system
      // allows (where not, the second write of the same weights).
      if (!linkIntoPlace(job.out, bestPath(job.out)))
        inference::saveCheckpoint(*model, cells.genes, sortedTypes, bestPath(job.out), log.dump());
    }
  };
  opt.onNotice = [mode, gpus, worldSize](const std::string& message) {
    if (mode == "json")
      std::cout
          << nlohmann::json{{"stage", "training"}, {"message", message}, {"gpus", gpus}, {"ranks", worldSize}}.dump()
          << std::endl;
    else
      std::fprintf(stderr, "%s\n", message.c_str());
  };
  ModelPositions pos = modelPositions(cells);
  if (job.profile) opt.profile = &profile;
  if (job.profileValidation) opt.validationProfile = &validationProfile;
  trainer = std::make_unique<inference::Trainer>(*model, expression, types, std::move(pos.x), std::move(pos.y),
                                                 std::move(pos.section), opt);
  if (job.resume) trainer->loadState(job.out + ".train");
  // (The trainer's attention check ran one batch by the padded path: not a decline of the steps.)
  const std::int64_t slotDeclinesBefore = model->virtualZeroSlotDeclines();
  const std::int64_t poolDeclinesBefore = inference::CellTransformer::trainPoolDeclines();
  const auto trainStart = Clock::now();
  bool cancelled = false;
  try {
    trainer->run();
  } catch (const Cancelled&) {
    cancelled = true;
    // Stopped between steps: the weights and the state agree, so keep both (resume continues).
    if (lead) {
      inference::saveCheckpoint(*model, cells.genes, sortedTypes, job.out, log.dump());
      trainer->saveState(job.out + ".train");
    }
  }
  const auto& st = trainer->state();
  const bool staged = opt.stagedBatchCopies && opt.cudaGraphs && opt.overlapSteps && worldSize == 1; // as Trainer's
  const bool slots = opt.virtualZeroSlots && model->trainingPackShape(opt.tokenMultiple, true).virtualZeroSlot;
  const bool storedGrad = model->storedGeluGrad() && !model->linCombGelu() && model->fusedFeedForward();
  // The pool's kernels two tokens a warp: only where the fused training pool runs them.
  const bool poolPairs = model->fusedTrainPool() && model->poolTokenPairs() && model->poolTokenPairsApply();
  const inference::TunedInputGradientCounts tuned = inference::tunedInputGradientCounts();
  nlohmann::json j = {{"result", cancelled ? "cancelled" : "ok"},
                      {"out", job.out},
                      {"best", bestPath(job.out)},
                      {"device", dev},
                      {"precision", precision},
                      {"cells", n},
                      {"steps", st.step},
                      {"epoch", st.epoch},
                      {"cells_per_s", lastRate},
                      {"load_s", loadSeconds},
                      {"train_s", since(trainStart)},
                      {"seconds", since(start)},
                      {"validation_nll", lastValidation.nll},
                      {"validation_pearson", lastValidation.pearson},
                      {"baseline_nll", lastValidation.baselineNll},
                      {"baseline_pearson", lastValidation.baselinePearson},
                      {"best_validation_nll", best},
                      {"peak_gpu_gib", inference::peakGpuMemoryGiB()},
                      {"cuda_graphs", trainer->graphs()},
                      {"attention_check", trainer->attentionCheck()},
                      {"batch_wait_s", trainer->batchSeconds().first},
                      {"batch_build_s", trainer->batchSeconds().second},
                      {"variable_length_attention", model->variableLengthAttention()},
                      {"short_attention", model->variableLengthAttention() && model->shortAttention()},
                      {"fused_kernels", model->fusedKernels()},
                      {"fused_feed_forward", model->fusedFeedForward()},
                      {"fused_feed_forward_declines", inference::CellTransformer::fusedFeedForwardDeclines()},
                      {"fused_layer_norm", model->fusedLayerNorm()},
                      {"fused_pool_norm", model->fusedPoolNorm()},
                      {"packed_qkv", model->packedTrainingQkv()},
                      {"lincomb_gelu", model->linCombGelu()},
                      {"bias_grad_in_product", model->biasGradInProduct()},
                      {"stored_gelu_grad", storedGrad},
                      {"bias_in_product_declines", inference::CellTransformer::biasInProductDeclines()},
                      {"two_kernel_attention_backward", model->twoKernelAttentionBackward()},
                      {"attention_keys_ahead", model->attentionKeysAhead()},
                      {"attention_loads_late", job.attentionLoadsLate},
                      {"tuned_input_grads", inference::tunedInputGradients()},
                      {"tuned_input_grad_calls", tuned.calls},
                      {"tuned_input_grad_shapes", tuned.timedShapes},
                      {"tuned_input_grad_borrowed", tuned.borrowed},
                      {"norm_bias_sums", model->normBiasSums()},
                      {"fused_norm_gelu", model->fusedNormGelu()},
                      {"fused_proj_norm", model->fusedProjNorm()},
                      {"proj_norm_runs", inference::CellTransformer::projNormRuns()},
                      {"summed_gradient_uses", inference::CellTransformer::summedGradientUses()},
                      {"compute_type_rows", model->computeTypeRows()},
                      {"type_row_declines", inference::CellTransformer::typeRowDeclines()},
                      {"fused_pair_attention", model->fusedPairAttention()},
                      {"pair_attention_declines", inference::CellTransformer::pairAttentionDeclines()},
                      {"fused_pool_scatter", model->fusedPoolScatter()},
                      {"fused_train_pool", model->fusedTrainPool()},
                      {"train_pool_declines", inference::CellTransformer::trainPoolDeclines() - poolDeclinesBefore},
                      {"fused_token_rows", model->fusedTokenRows()},
                      {"token_row_declines", inference::CellTransformer::tokenRowDeclines()},
                      {"fused_loss", opt.fusedLoss},
                      {"fused_heads", opt.fusedHeads},
                      {"validation_ahead", opt.validationAhead},
                      {"fused_pool_output", model->fusedPoolOutput()},
                      {"pool_token_pairs", poolPairs},
                      {"token_multiple", opt.tokenMultiple},
                      {"virtual_zero_slots", slots},
                      {"virtual_zero_slot_declines", model->virtualZeroSlotDeclines() - slotDeclinesBefore},
                      {"overlap_steps", opt.overlapSteps && worldSize == 1},
                      {"staged_batch_copies", staged},
                      {"flat_compute_copies", opt.flatComputeCopies},
                      {"fold_compute_gradients", trainer->foldsComputeGradients()},
                      {"compute_inputs", trainer->gathersComputeInputs()},
                      {"config", model->config().describe()},
                      {"world_size", worldSize},
                      {"gpus", gpus},
                      {"ranks", worldSize},
                      {"allreduce", worldSize > 1 ? opt.allReduce : std::string("none")}};
  const inference::StepTimes times = trainer->stepTimes();
  j["step_times"] = {{"replays", times.replays},
                     {"replay_s", times.replaySeconds},
                     {"replay_median_ms", 1e3 * times.replayMedian},
                     {"replay_p90_ms", 1e3 * times.replayP90},
                     {"replay_max_ms", 1e3 * times.replayMax},
                     {"slow_replays", times.slowReplays},
                     {"slow_replay_excess_s", times.slowExcessSeconds},
                     {"captures", times.captures},
                     {"capture_s", times.captureSeconds},
                     {"eager_steps", times.eager},
                     {"eager_s", times.eagerSeconds},
                     {"validation_s", times.validationSeconds},
                     {"validation_wait_s", times.validationWaitSeconds},
                     {"validation_build_s", times.validationBuildSeconds},
                     {"rows", times.rows},
                     {"real_rows", times.realRows},
                     {"sequence_tiles", times.sequenceTiles}};
  if (dist) {
    j["rank"] = dist->rank();
    j["backend"] = dist->backend();
  }
  if (job.profile) j["profile_s"] = profile;
  if (job.profileValidation) j["validation_profile_s"] = validationProfile;
  return j;
}

void addTrainOptions(CLI::App* cmd, TrainJob& job) {
  cmd->add_option("--epochs", job.opt.epochs, "Epochs")->check(CLI::Range(1, 10000));
  cmd->add_option("--max-steps", job.opt.maxSteps, "Stop after this many optimiser steps");
  cmd->add_option("--lr", job.opt.lr, "Peak learning rate");
  cmd->add_option("--cells-per-step", job.opt.cellsPerStep,
                  "Neighbourhoods per optimiser step (gradient accumulation)");
  cmd->add_option("--micro-batch-tokens", job.opt.microBatchTokens,
                  "Padded tokens per forward pass (0: 4096 CPU, 262144 GPU)");
  cmd->add_option("--token-multiple", job.opt.tokenMultiple,
                  "GPU: a step's packed tokens rounded up to a multiple of this (one CUDA graph per shape)")
      ->check(CLI::Range(16, 1 << 20));
  cmd->add_option("--cap", job.opt.cap, "Observed cells per neighbourhood at most (seeded subset)");
  cmd->add_option("--validate-every", job.opt.validateEvery, "Validate (and checkpoint) every N steps; 0: each epoch");
  cmd->add_option("--validation-cells", job.opt.validationCells, "Validation cells scored at most")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 40));
  cmd->add_option("--seed", job.opt.seed, "Seed (split, order, init, neighbourhood subsets)");
  cmd->add_option("--device", job.device, "cuda, cpu or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--precision", job.precision,
                  "bf16 (GPU: bf16 compute, float32 weights and optimiser), fp32, or auto")
      ->check(CLI::IsMember({"auto", "bf16", "fp32"}));
  cmd->add_option("--size", job.size,
                  "A new model's size: compact (E 128, 4 heads, 2+2 layers) or released (E 384, 8 heads, 4+4)")
      ->check(CLI::IsMember({"compact", "released"}));
  cmd->add_option("--progress", job.progress, "text, json or none")->check(CLI::IsMember({"text", "json", "none"}));
  cmd->add_option("--log-every", job.logEvery, "A progress line every N steps");
  cmd->add_flag("!--no-cuda-graphs", job.opt.cudaGraphs,
                "Run every GPU step eagerly instead of replaying captured CUDA graphs");
  cmd->add_flag("!--per-parameter-casts", job.opt.flatComputeCopies,
                "bf16: cast each weight to bf16 and back in every step (the path before one flat cast)");
  cmd->add_flag("!--per-parameter-gradient-adds", job.opt.foldComputeGradients,
                "bf16: autograd adds each weight's gradient into the float32 gradients, a kernel a parameter, instead "
                "of all of them in one kernel after the backward (the path before, for comparisons)");
  cmd->add_flag("!--serial-steps", job.opt.overlapSteps,
                "Read each step's loss before queuing the next (the path before, for comparisons); by default the "
                "next step is queued first, so that its launch overlaps the device's work");
  cmd->add_flag("!--serial-batch-copies", job.opt.stagedBatchCopies,
                "CUDA graphs: copy each step's batch to the device on the step's stream after the step before it "
                "(the path before, for comparisons) instead of on a stream of its own beside that step");
  cmd->add_flag("!--float32-inputs", job.opt.computeInputs,
                "bf16: gather the tokens' expression from the float32 table and cast it in every step, instead of "
                "from a bf16 copy made once (the path before, for comparisons)");
  cmd->add_flag("--padded-attention", job.paddedAttention,
                "GPU: attention in the padded layout instead of variable-length flash attention");
  cmd->add_flag("--flash-attention", job.flashAttention,
                "GPU: ATen's flash kernels for the variable-length attention (and validation's) instead of the "
                "short-attention kernels (the path before them)");
  cmd->add_flag("--padded-pool", job.paddedPool,
                "The attention pool's LayerNorm over a slice of the padded layout instead of the packed rows "
                "(the path before, for comparisons)");
  cmd->add_flag("--unfused-feed-forward", job.unfusedFeedForward,
                "GPU: the feed-forward by cuBLASLt's products, ATen's GELU and the GELU-gradient kernel instead of "
                "CUTLASS GEMMs with the GELU and its gradient in their epilogues (the path before, for comparisons)");
  cmd->add_flag("--unfused-layer-norm", job.unfusedLayerNorm,
                "GPU: ATen's residual add before each LayerNorm, and LayerNorm's weight and bias gradients by a "
                "kernel of their own after the input gradient's, instead of both in LayerNorm's kernels (the path "
                "before, for comparisons)");
  cmd->add_flag("--aten-pool-norm", job.atenPoolNorm,
                "GPU: ATen's LayerNorm in the attention pool instead of the training LayerNorm's kernels (the path "
                "before, for comparisons)");
  cmd->add_flag("--separate-qkv", job.separateQkv,
                "GPU: the self-attention's q, k and v by three products forward and backward instead of one [R, 3E] "
                "product read in place (the path before, for comparisons)");
  cmd->add_flag("--lincomb-gelu", job.linCombGelu,
                "GPU: the fused feed-forward's epilogues by CUTLASS's linear combinations, one rounding at a time, "
                "instead of their own trees (the kernels before; the same bits)");
  cmd->add_flag("--two-kernel-attention-backward", job.twoKernelAttentionBackward,
                "GPU: the attention backward by two kernels (queries, then keys), each reading the sequence, instead "
                "of one (the path before, for comparisons)");
  cmd->add_flag("--attention-backward-reload", job.attentionBackwardReload,
                "GPU: the attention backward's one kernel copies K over Q between its two phases and loads each "
                "warp's keys after its first barrier, instead of copying K with Q and dO at its start (the kernel "
                "before, for comparisons)");
  cmd->add_flag("--attention-loads-late", job.attentionLoadsLate,
                "GPU: the attention backward's one kernel loads each warp's first keys and values after its "
                "rows' delta sums, and each row's log2-sum-exp after its sums, instead of issuing them all first "
                "(the order before, for comparisons; the same bits)");
  cmd->add_flag("--aten-input-grads", job.atenInputGrads,
                "GPU: the linear layers' input gradients dy W by ATen's mm (cuBLAS's heuristic, with its workspace and "
                "memset) instead of the cuBLASLt algorithm timed fastest for each shape without a workspace (the path "
                "before, for comparisons)");
  cmd->add_flag("--separate-bias-sums", job.separateBiasSums,
                "GPU: the output projection's and the feed-forward's second bias gradients by a pass of their own over "
                "the gradient instead of summed by the LayerNorm backward that writes it (the path before, for "
                "comparisons)");
  cmd->add_flag("--separate-norm-gelu", job.separateNormGelu,
                "GPU: the token MLP's GELU after its first LayerNorm, and GELU's backward, by ATen's kernels instead "
                "of in the LayerNorm's forward and backward kernels (the path before, for comparisons)");
  cmd->add_flag("--cat-proj-norm", job.catProjNorm,
                "GPU: proj_norm's input (each cell's type embedding beside its expression MLP's output) written out "
                "by the type rows' gather and ATen's cat before its LayerNorm, instead of read in place by the "
                "LayerNorm's kernels (the path before, for comparisons)");
  cmd->add_flag("--bias-grad-in-product", job.biasGradInProduct,
                "GPU: the first feed-forward layer's bias gradient summed by its weight gradient's product (cuBLASLt's "
                "BGRADB epilogue) instead of a pass of its own over the [R, 2048] gradient (measured slower)");
  cmd->add_flag("--stored-gelu-grad", job.storedGeluGrad,
                "GPU: the fused feed-forward's forward writes GELU'(h) beside GELU(h) for the backward, whose "
                "epilogue is then one product, instead of h (GELU' rounded to bf16 once more; measured no faster)");
  cmd->add_flag("!--stored-zero-slots", job.opt.virtualZeroSlots,
                "Training's packed batches with add_zero_attn's slot rows stored (the path before, for comparisons) "
                "instead of the attention kernels appending each neighbourhood's zero key and value");
  cmd->add_flag("--aten-type-rows", job.atenTypeRows,
                "Training: the type embeddings' rows gathered from the float32 weights and cast, their gradient by "
                "ATen's index_add in float32, and the class token expanded into the packed tokens' concatenation, "
                "instead of rows of the compute copies with a per-type sum (the path before, for comparisons)");
  cmd->add_flag("--aten-pair-attention", job.atenPairAttention,
                "GPU: the decoder's attention between each neighbourhood's two tokens by ATen's float32 composite "
                "and its autograd (~20 small kernels a layer) instead of one kernel each way (the path before, for "
                "comparisons)");
  cmd->add_flag("--aten-pool-scatter", job.atenPoolScatter,
                "GPU: the attention pool's padded layout by a zero fill and index_copy instead of one kernel, and "
                "its scores' and values' gradients summed by autograd's add before ATen's gather instead of as "
                "the kernel gathers them (the paths before, for comparisons)");
  cmd->add_flag("--aten-train-pool", job.atenTrainPool,
                "GPU: the attention pool by its LayerNorm, a padded layout of the normalised rows and ATen's "
                "products and softmax over it, instead of one kernel each way read in place from the packed encoder "
                "output (the path before, for comparisons)");
  cmd->add_flag("--aten-token-rows", job.atenTokenRows,
                "GPU: the token rows by ATen's index_select (expression and type-embedding rows), cat and gather "
                "(the packed tokens in sequence order), the first layer's two gradients summed by autograd's add, "
                "and a contiguous copy of the token MLP's gradient slice, instead of gathers of their own (the paths "
                "before, for comparisons)");
  cmd->add_flag("!--aten-loss", job.opt.fusedLoss,
                "The training loss and its gradient by ATen's operations (68 kernels a step on a GPU) instead of "
                "one pass each way (the path before, for comparisons)");
  cmd->add_flag("--pool-single-tokens", job.poolSingleTokens,
                "GPU: the attention pool's kernels (forward and backward) one token a warp at a time in their "
                "passes over the tokens, instead of two (the kernels before, the same bits; for comparisons)");
  cmd->add_flag("--aten-pool-output", job.atenPoolOutput,
                "GPU: the attention pool's output (norm_k's affine, the value products and bias_v) by ATen's "
                "operations instead of kernels of its own (the path before, for comparisons)");
  cmd->add_flag("!--serial-validation", job.opt.validationAhead,
                "Validation's batches all built on one thread when it begins, its sums read after each batch, the "
                "baseline's statistics from every training cell's counts each time, instead of its batches built "
                "ahead on host threads (the first while the steps run) and its sums read once (the path before, "
                "for comparisons)");
  cmd->add_flag("!--separate-heads", job.opt.fusedHeads,
                "The loss's mu, theta and gate heads as a product, a cast and an exp each (and the unused scale "
                "head), their gradients by ATen, instead of one product whose pre-activations the loss's pass "
                "reads (the path before, for comparisons)");
  cmd->add_flag("--no-fused-kernels", job.noFusedKernels,
                "GPU: ATen's operations instead of the fused CUDA kernels (LayerNorm, bias and GELU gradients, "
                "Adam, validation)");
  addRankOption(cmd, job.ranks);
  cmd->add_option("--allreduce", job.opt.allReduce,
                  "With ranks: buckets (all-reduced during the backward), after (one all-reduce after it), "
                  "after-polling (as before bucketing, for comparisons)")
      ->check(CLI::IsMember({"buckets", "after", "after-polling"}));
  cmd->add_option("--bucket-mb", job.opt.bucketMiB, "With ranks: gradient bucket size (MiB)");
  cmd->add_option("--batch-lookahead", job.opt.batchLookahead,
                  "Steps whose batches are built ahead on host threads (0: 3 on a GPU, 1 on the CPU)");
  cmd->add_option("--check-weights-every", job.opt.checkWeightsEvery,
                  "With ranks: compare the ranks' weights every N steps (debug)");
}
} // namespace

void addTrainCommand(CLI::App& app) {
  auto job = std::make_shared<TrainJob>();
  auto data = std::make_shared<DatasetArgument>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train CellTransformer on a dataset (self-supervised); writes a checkpoint");
  addDatasetArgument(cmd, *data, "Dataset (.h5ad, CSV, or an ABC download folder)");
  cmd->add_option("--out,-o", job->out,
                  "Checkpoint (.h5); OUT.train holds the state for --resume, OUT's .best twin the best")
      ->required();
  cmd->add_flag("--resume", job->resume, "Continue from OUT and OUT.train");
  addTrainOptions(cmd, *job);
  cmd->callback([job, data] {
    if (job->ranks > 1 && !isRank()) {
      setExitCode(launchRanks(job->ranks, job->device));
      return;
    }
    std::signal(SIGINT, onTrainSignal);
    std::signal(SIGTERM, onTrainSignal);
    Progress combining;
    combining.cancel = &gTrainCancel;
    const OpenedDataset d = openDataset(*data, false, combining);
    job->data = d.path;
    job->columns = d.columns;
    const nlohmann::json j = runTraining(*job);
    std::cout << j.dump() << std::endl;
    if (j["result"] == "cancelled") setExitCode(130);
  });

  // bench train: generated once into --dir, then a fixed number of steps.
  CLI::App* bench = app.get_subcommand("bench"); // made by addModelCommands (registered first)
  auto bjob = std::make_shared<TrainJob>();
  bjob->size = "released";
  bjob->opt.maxSteps = 200;
  bjob->opt.warmup = 50;
  bjob->progress = "none";
  auto cellsN = std::make_shared<std::int64_t>(1000000);
  auto density = std::make_shared<double>(3500.0);
  auto dir = std::make_shared<std::string>("bench-data");
  CLI::App* b = bench->add_subcommand("train", "Training throughput and learning on a synthetic brain (JSON lines)");
  b->add_option("--cells", *cellsN, "Cells of the synthetic brain");
  b->add_option("--density", *density, "Cells per mm^2 (3500: ~100 neighbours per cell)");
  b->add_option("--dir", *dir, "Where the synthetic dataset and the checkpoints go");
  b->add_option("--warmup", bjob->opt.warmup, "Warm-up steps of the schedule");
  b->add_flag("--profile", bjob->profile, "Time the step's parts, synchronising the device between them (slower)");
  b->add_flag("--profile-validation", bjob->profileValidation,
              "Time validation's parts, synchronising the device between them (the steps run as without it)");
  b->add_option("--trace", bjob->opt.traceFile,
                "Write the kernels of steps 20-24 as a Chrome trace (GPU builds with Kineto)");
  addTrainOptions(b, *bjob);
  b->callback([=] {
    namespace fs = std::filesystem;
    fs::create_directories(*dir);
    const std::string data = (fs::path(*dir) / ("brain-" + std::to_string(*cellsN) + ".h5ad")).string();
    if (!fs::exists(data)) {
      SyntheticBrainOptions g;
      g.maxCells = *cellsN;
      g.cellsPerMm2 = *density;
      g.genes = 500;
      g.cellTypes = 150;
      const auto s = generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, data);
      std::cout << nlohmann::json{{"figure", "generate"},
                                  {"cells", s.cells},
                                  {"mean_neighbors", s.meanNeighbors},
                                  {"seconds", s.seconds}}
                       .dump()
                << std::endl;
    }
    if (bjob->ranks > 1 && !isRank()) {
      setExitCode(launchRanks(bjob->ranks, bjob->device)); // the ranks find the data generated
      return;
    }
    TrainJob job = *bjob;
    job.data = data;
    job.out = (fs::path(*dir) / ("trained-" + job.size + "-" + job.precision + ".h5")).string();
    nlohmann::json j = runTraining(job);
    j["figure"] = "train";
    j["size"] = job.size;
    j["cells_per_step"] = job.opt.cellsPerStep;
    j["cap"] = job.opt.cap;
    (j.value("rank", 0) == 0 ? std::cout : std::cerr) << j.dump() << std::endl;
  });
}

} // namespace atlascope::cli
