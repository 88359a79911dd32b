// Model commands: embed a dataset, import reference weights, check parity, benchmark.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "app/cli/Launch.h"
#include "core/Atlas.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/JsonNumber.h"
#include "core/Neighborhood.h"
#include "core/SyntheticBrain.h"
#include "core/Trace.h"
#include "inference/Device.h"
#include "inference/Distributed.h"
#include "inference/Embedding.h"
#include "inference/EmbeddingRun.h"
#include "inference/Init.h"
#include "inference/ModelFile.h"
#include "inference/TrainMatmul.h"

#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

namespace atlascope::cli {

namespace {
CancellationToken gCancel;
extern "C" void onSignal(int) { gCancel.cancel(); }

// Progress as text lines on stderr, or one JSON object per line on stdout (the GUI's worker protocol).
// JSON lines also say the job's devices: "ranks" (processes) and "gpus" (0 on the CPU).
std::function<void(const std::string&, std::int64_t, std::int64_t, double)>
progressPrinter(const std::string& mode, int gpus = 0, int ranks = 1) {
  if (mode == "none") return {};
  return [mode, gpus, ranks](const std::string& stage, std::int64_t done, std::int64_t total, double rate) {
    if (mode == "json") {
      nlohmann::json j = {{"stage", stage}, {"done", done}, {"total", total},
                          {"rate", rate},   {"gpus", gpus}, {"ranks", ranks}};
      if (rate > 0 && total > done) j["eta_s"] = static_cast<double>(total - done) / rate;
      std::cout << j.dump() << std::endl;
    } else if (stage != "reading expression" || done == total) {
      std::fprintf(stderr, "%s: %lld / %lld%s\n", stage.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total),
                   rate > 0 ? (" (" + std::to_string(static_cast<long long>(rate)) + " cells/s)").c_str() : "");
    }
  };
}

nlohmann::json resultJson(const inference::EmbedRunResult& r) {
  return {{"cells", r.cells},
          {"resumed_cells", r.resumedCells},
          {"device", r.device},
          {"seconds", r.seconds},
          {"cells_per_s", r.cellsPerSecond},
          {"mean_neighbors", r.meanNeighbors},
          {"read_s", r.readSeconds},
          {"upload_s", r.uploadSeconds},
          {"neighborhood_s", r.neighborhoodSeconds},
          {"model_s", r.modelSeconds},
          {"write_s", r.writeSeconds},
          {"peak_gpu_gib", r.peakGpuGiB},
          {"warnings", r.warnings},
          {"profile_s", r.profile},
          {"world_size", r.worldSize},
          {"ranks", r.worldSize},
          {"gpus", r.device == "cuda" ? r.worldSize : 0},
          {"packed_batches", r.packedBatches},
          {"batch_s", r.batchSeconds},
          {"batch_build_s", r.batchBuildSeconds},
          {"host_buffer_s", r.hostBufferSeconds},
          {"submit_s", r.submitSeconds},
          {"device_busy_s", r.deviceBusySeconds},
          {"device_idle_s", r.deviceIdleSeconds},
          {"device_idle_chunk_starts_s", r.deviceIdleAtChunkStartsSeconds},
          {"device_idle_max_s", r.deviceIdleMaxSeconds},
          {"start_s", r.startSeconds},
          {"finish_s", r.finishSeconds},
          {"chunks", r.chunks},
          {"chunks_built_ahead", r.chunksBuiltAhead},
          {"tapered_chunks", r.taperedChunks},
          {"fused_kernels", r.fusedKernels},
          {"short_attention", r.shortAttention},
          {"attention_variant", r.shortAttention ? r.attentionVariant : -1},
          {"gemm_gelu", r.gemmGelu},
          {"erff_gelu", r.erffGelu},
          {"lincomb_gelu", r.linCombGelu},
          {"fp8_feed_forward", r.fp8FeedForward},
          {"fp8_erf_gelu", r.fp8ErfGelu},
          {"fp8_fallback_calls", r.fp8Fallbacks},
          {"round_shapes", r.roundShapes},
          {"virtual_zero_slot", r.virtualZeroSlot},
          {"virtual_zero_slot_declines", r.virtualZeroSlotDeclines},
          {"fused_pool", r.fusedPool},
          {"first_layer_per_cell", r.firstLayerPerCell},
          {"first_layer_declines", r.firstLayerDeclines},
          {"first_residual_from_table", r.firstResidualFromTable},
          {"residual_in_product", r.residualInProduct},
          {"pool_kernel_before", r.poolKernelBefore},
          {"pool_token_pairs", r.poolTokenPairs},
          {"chunk_copy_stream", r.chunkCopyStream},
          {"writer_copies", r.writerCopies}};
}

// The embedding run's switches for comparisons (EmbedRunOptions: the encoder's inference kernels, the
// chunk layout), for embed and bench embed alike.
void addEmbedRunOptions(CLI::App* cmd, inference::EmbedRunOptions& opt) {
  cmd->add_flag("!--no-short-attention", opt.shortAttention,
                "GPU: ATen's flash attention instead of the short-sequence attention kernel");
  cmd->add_option("--attention-kernel", opt.attentionVariant,
                  "GPU: the short-attention kernel: 0 tiled (default), 1 the one before (16 keys a step, values "
                  "transposed), 2-6 other forms of the tiled one (bench attention names them)")
      ->check(CLI::Range(0, 6));
  cmd->add_flag("!--no-gemm-gelu", opt.gemmGelu,
                "GPU: cuBLASLt's GEMM and ATen's GELU instead of the fused CUTLASS GEMM + GELU (where built)");
  cmd->add_flag("--lincomb-gelu", opt.linCombGelu,
                "GPU: the fused GEMM + GELU by its epilogue before (CUTLASS's linear combination, one rounding at a "
                "time; the same numbers), for same-call comparisons");
  cmd->add_flag("--erff-gelu", opt.erffGelu,
                "GPU: the fused GEMM + GELU's epilogue evaluates erff instead of its exp2 form (same bf16 from -6 up)");
  cmd->add_flag("--fp8-feed-forward", opt.fp8FeedForward,
                "The encoder's first feed-forward layers in FP8 (e4m3, a scale per channel; `parity` reports its "
                "cosine to fp32): faster on a GPU with the kernels, the same rounded values in float32 elsewhere");
  cmd->add_flag("--fp8-erf-gelu", opt.fp8ErfGelu,
                "With --fp8-feed-forward: the erf GELU (as the bf16 path) instead of its tanh form (for comparisons)")
      ->needs("--fp8-feed-forward");
  cmd->add_flag("!--no-fused-pool", opt.fusedPool,
                "GPU: ATen's operations for the token gather, the attention pool and the decoder's attention");
  cmd->add_flag("!--first-layer-per-token", opt.firstLayerPerCell,
                "GPU: the first encoder layer's q, k, v projected for every token of every neighbourhood (as before), "
                "not once per cell in the token table");
  cmd->add_flag("--residual-in-product", opt.residualInProduct,
                "GPU: each encoder layer's second feed-forward product accumulates into its residual (one rounding "
                "less, ~1% faster; not with --fp8-feed-forward; `parity` reports its cosine to fp32, "
                "residual_in_product_cosine_min)");
  cmd->add_flag("--pool-kernel-before", opt.poolKernelBefore,
                "GPU: the fused attention pool's kernel before its grouped second pass");
  cmd->add_flag("--pool-single-tokens", opt.poolSingleTokens,
                "GPU: the fused attention pool's first pass one token a warp at a time (as before; the same bits)");
  cmd->add_flag("!--exact-shapes", opt.roundShapes,
                "GPU: packed batches of their exact row counts, not rounded to repeating ones");
  cmd->add_option("--index-threads", opt.indexThreads,
                  "Threads that build the neighbourhood index at the start (0: every core; 1: one, as before)")
      ->check(CLI::Range(0, 4096));
  cmd->add_flag("--assemble-first-tokens", opt.assembleFirstTokens,
                "GPU: the packed tokens assembled for the first encoder layer's residual (as before), not read from "
                "the per-cell table by its LayerNorm");
  cmd->add_flag("--stored-zero-slot", opt.storedZeroSlot,
                "GPU: add_zero_attn's slot stored as a row of every neighbourhood in the packed batches (as before), "
                "not appended by the attention kernels");
  cmd->add_flag("!--batches-within-chunks", opt.batchesAcrossChunks,
                "Each chunk planned, its batches built and its host copy allocated once the previous chunk's are "
                "queued (as before)");
  cmd->add_flag("!--chunk-copies-on-compute", opt.chunkCopyStream,
                "GPU: finished chunks copied to the host on the compute stream (as before), not a stream of their own");
  cmd->add_flag("!--chunk-host-buffers", opt.writerCopies,
                "GPU: finished chunks copied into pinned host buffers as they finish (as before), not kept on the "
                "device until the writer copies them");
  cmd->add_flag("!--uniform-chunks", opt.taperedChunks,
                "Every chunk --chunk-cells, without the short chunks at the ends of each rank's share");
}
} // namespace

void addModelCommands(CLI::App& app) {
  // --- embed
  {
    auto opt = std::make_shared<inference::EmbedRunOptions>();
    auto data = std::make_shared<DatasetArgument>();
    auto weights = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto heads = std::make_shared<int>(8);
    auto progress = std::make_shared<std::string>("text");
    auto noResume = std::make_shared<bool>(false);
    auto ranks = std::make_shared<int>(1);
    CLI::App* cmd = app.add_subcommand("embed", "Embed every cell of a dataset with CellTransformer (HDF5 out)");
    addDatasetArgument(cmd, *data, "Dataset (.h5ad, .csv, or an ABC download folder)");
    cmd->add_option("--weights,-w", *weights, "Reference .pth or Atlascope checkpoint .h5")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out,-o", *out, "Output HDF5 (/embedding [cells, E])")->required();
    cmd->add_option("--device", opt->device, "cuda, cpu or auto")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
    cmd->add_option("--batch-tokens", opt->batchTokens, "Padded tokens per batch (default 4096 CPU, 393216 GPU)");
    cmd->add_option("--chunk-cells", opt->chunkCells, "Cells per resumable chunk");
    cmd->add_option("--heads", *heads, "Attention heads of a bare .pth (not stored in it)");
    cmd->add_flag("--reorder-genes", opt->reorderGenes, "Match the data's genes to the model's panel by name");
    cmd->add_flag("--exact-lengths", opt->exactLengths, "Batches of one neighbourhood size only (no padding, no mask)");
    cmd->add_flag("--padded-batches", opt->paddedBatches,
                  "GPU: padded batches with a key mask instead of packed ones with variable-length attention");
    cmd->add_flag("!--no-fused-kernels", opt->fusedKernels, "GPU: ATen's operations instead of the fused CUDA kernels");
    addEmbedRunOptions(cmd, *opt);
    cmd->add_option("--h5ad-out", opt->h5adOut, "Also write the embeddings into obsm of a copy of the input .h5ad");
    cmd->add_option("--obsm-key", opt->obsmKey, "obsm key for --h5ad-out (default X_celltransformer)");
    cmd->add_flag("--no-resume", *noResume, "Start over even if an interrupted run left chunks");
    cmd->add_option("--gzip", opt->gzip, "gzip level of the output (0 = none)")->check(CLI::Range(0, 9));
    cmd->add_option("--progress", *progress, "text, json (one JSON object per line) or none")
        ->check(CLI::IsMember({"text", "json", "none"}));
    addRankOption(cmd, *ranks);
    cmd->callback([=] {
      if (*ranks > 1 && !isRank()) {
        setExitCode(launchRanks(*ranks, opt->device));
        return;
      }
      std::signal(SIGINT, onSignal);
      std::signal(SIGTERM, onSignal);
      // A rank of several embeds its share of the chunks; rank 0 reports and writes the output.
      const std::unique_ptr<inference::Distributed> dist = joinJob(opt->device);
      opt->dist = dist.get();
      opt->cancel = &gCancel;
      opt->resume = !*noResume;
      const int world = dist ? dist->size() : 1;
      const int gpus = inference::resolveDevice(opt->device) == "cuda" ? world : 0;
      opt->progress = progressPrinter(dist && dist->rank() != 0 ? "none" : *progress, gpus, world);
      if (opt->progress && *progress == "json") opt->progress("starting", 0, 0, 0);
      inference::ModelFile model = inference::loadModelFile(*weights, *heads);
      try {
        Progress combining;
        combining.cancel = &gCancel;
        const OpenedDataset d = openDataset(*data, false, combining);
        const auto r = inference::embedDataset(model, d.path, d.columns, *out, *opt);
        if (r.rank != 0) return; // rank 0 wrote the output and says so
        nlohmann::json j = resultJson(r);
        j["result"] = "ok";
        j["out"] = *out;
        if (*progress == "json")
          std::cout << j.dump() << std::endl;
        else {
          for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
          std::cout << "wrote " << *out << ": " << r.cells << " cells in " << r.seconds << " s ("
                    << static_cast<long long>(r.cellsPerSecond) << " cells/s on " << r.device << ", " << r.meanNeighbors
                    << " neighbours per cell)\n";
        }
      } catch (const Cancelled&) {
        std::cerr << "atlascope-cli: cancelled; completed chunks are kept in " << *out
                  << ".parts: run the same command to resume\n";
        setExitCode(130);
      }
    });
  }

  // --- model import: a reference .pth with the panel and types of its training data
  {
    auto pth = std::make_shared<std::string>();
    auto panel = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto heads = std::make_shared<int>(8);
    auto cols = std::make_shared<ColumnOptions>();
    CLI::App* model = app.add_subcommand("model", "Model files");
    model->require_subcommand(1);
    CLI::App* cmd = model->add_subcommand(
        "import", "Make an Atlascope checkpoint from a reference .pth and its training dataset's panel");
    cmd->add_option("pth", *pth, "Reference state_dict (.pth)")->required()->check(CLI::ExistingFile);
    cmd->add_option("--panel-from", *panel,
                    "Dataset whose genes (in order) and sorted cell types the model was trained on")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out,-o", *out, "Checkpoint (.h5)")->required();
    cmd->add_option("--heads", *heads, "Attention heads");
    addColumnOptions(cmd, *cols);
    cmd->callback([=] {
      inference::ModelFile m = inference::loadModelFile(*pth, *heads);
      const CellTable cells = readCellTable(*panel, *cols);
      if (static_cast<int>(cells.genes.size()) != m.model->config().genes)
        throw Error("the model has " + std::to_string(m.model->config().genes) + " genes, " + *panel + " has " +
                    std::to_string(cells.genes.size()));
      std::vector<std::string> types = cells.types.names;
      std::sort(types.begin(), types.end());
      inference::saveCheckpoint(*m.model, cells.genes, types, *out);
      std::cout << "wrote " << *out << " (" << m.model->config().describe() << ")\n";
    });
  }

  // --- parity: the reference fixture on this machine's devices (the GPU machine has no Qt Test)
  {
    auto fixture = std::make_shared<std::string>();
    auto weights = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>("cpu");
    CLI::App* cmd =
        app.add_subcommand("parity", "Compare with the reference's outputs (a parity fixture .h5); one JSON line");
    cmd->add_option("fixture", *fixture, "Fixture .h5 (/cells, /weights, /expected)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--weights", *weights, "Weights (.pth); default: the fixture's /weights");
    cmd->add_option("--device", *device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->callback([=] {
      using namespace inference;
      configureCpuThreads();
      Hdf5File h5(*fixture);
      int heads = 0;
      try {
        heads =
            static_cast<int>(jsonIntegerOrThrow(nlohmann::json::parse(h5.readStringAttribute("/", "config")).at("H"), 1,
                                                4096, *fixture, "head count H of the 'config' attribute"));
      } catch (const nlohmann::json::exception& e) { // the library's text, with what was being read
        throw FileError(*fixture,
                        std::string("reading the fixture's 'config' attribute (JSON with \"H\"): ") + e.what());
      }
      StateDict w = weights->empty() ? loadHdf5Group(*fixture, "/weights") : loadPth(*weights);
      CellTransformer model(w, inferConfig(w, heads, *fixture), *fixture);
      auto x = h5.readFloat("/cells/x"), y = h5.readFloat("/cells/y");
      auto s = h5.readInt64("/cells/section"), t = h5.readInt64("/cells/cell_type");
      auto e = h5.readFloat("/cells/expression");
      NeighborhoodIndex index(x.data.data(), y.data.data(), s.data.data(), x.size());
      const auto hoods = index.compute(0, x.size());
      const auto ref = h5.readInt64("/neighborhoods/indices");
      bool same = static_cast<std::size_t>(ref.size()) == hoods.indices.size();
      for (std::size_t i = 0; same && i < hoods.indices.size(); ++i) same = ref.data[i] == hoods.indices[i];
      auto tensor = [](NdArray<float>& a) { return torch::from_blob(a.data.data(), a.shape, torch::kFloat32).clone(); };
      const torch::Tensor expr = tensor(e), types = torch::from_blob(t.data.data(), {t.size()}, torch::kInt64).clone();
      const torch::Device dev = resolveDevice(*device) == "cuda" ? torch::Device(torch::kCUDA, inference::cudaIndex())
                                                                 : torch::Device(torch::kCPU);
      EmbedOptions eo;
      eo.heads = true;
      eo.exactLengths = dev.is_cuda(); // the GPU's batching (no padding, fused attention)
      nlohmann::json j = {{"neighborhoods_identical", same}, {"device", *device}};
      auto err = [](const torch::Tensor& a, const torch::Tensor& b) {
        return ((a - b).abs() / b.abs().clamp_min(1.0)).max().item<double>();
      };
      model.to(dev, torch::kFloat32);
      const Output o = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, eo);
      auto repr = h5.readFloat("/expected/neighborhood_repr"), mu = h5.readFloat("/expected/mu");
      auto theta = h5.readFloat("/expected/theta"), zi = h5.readFloat("/expected/zi_logits");
      j["fp32_max_error"] = {{"repr", err(o.embedding, tensor(repr))},
                             {"mu", err(o.mu, tensor(mu))},
                             {"theta", err(o.theta, tensor(theta))},
                             {"zi_logits", err(o.ziLogits, tensor(zi))}};
      // Packed batches (what `embed` runs on a GPU in bf16) against the padded ones, in fp32 on
      // this device (the attention scatters to the padded layout there).
      EmbedOptions po = eo;
      po.exactLengths = false;
      po.packed = true;
      const Output op = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, po);
      j["fp32_packed_max_error"] = {{"repr", err(op.embedding, tensor(repr))}, {"mu", err(op.mu, tensor(mu))}};
      // The FP8 first feed-forward layers (--fp8-feed-forward) as float32 computes them (the e4m3
      // values of the GPU's kernels, the CPU's path), then below with the kernels.
      auto fp8Cosine = [&](const EmbedOptions& options) {
        model.setFp8FeedForward(true);
        const std::int64_t fallbacks = model.fp8Fallbacks();
        const Output f = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, options);
        model.setFp8FeedForward(false);
        return std::make_pair(torch::cosine_similarity(f.embedding, o.embedding, 1).min().item<double>(),
                              model.fp8Fallbacks() - fallbacks);
      };
      j["fp8_feed_forward_fp32_cosine_min"] = fp8Cosine(eo).first;
      if (dev.is_cuda()) {
        model.to(dev, torch::kBFloat16);
        model.setFusedKernels(false); // the path before packing and fused kernels
        const Output b = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, eo);
        const torch::Tensor cos = torch::cosine_similarity(b.embedding, o.embedding, 1);
        j["bf16_cosine_min"] = cos.min().item<double>();
        j["bf16_cosine_mean"] = cos.mean().item<double>();
        // bf16 packed (`embed`'s path): variable-length flash attention over the packed
        // sequences, the fused kernels where built.
        model.setFusedKernels(true);
        j["fused_kernels"] = model.fusedKernels();
        // With the short-attention kernel and the fused GEMM + GELU (where built), then with
        // flash attention, cuBLASLt's GEMM and ATen's GELU (the previous path).
        const Output bp = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, po);
        const torch::Tensor cp = torch::cosine_similarity(bp.embedding, o.embedding, 1);
        j["bf16_packed_cosine_min"] = cp.min().item<double>();
        j["bf16_packed_cosine_mean"] = cp.mean().item<double>();
        j["bf16_packed_varlen"] = model.variableLengthAttention();
        j["bf16_packed_short_attention"] = model.shortAttention();
        j["bf16_packed_gemm_gelu"] = model.gemmGelu();
        j["bf16_packed_fused_pool"] = model.fusedPool();
        // The same with add_zero_attn's slots stored (--stored-zero-slot, the layout before): the
        // kernels append them where the stored ones were, so the embeddings are the same bits.
        EmbedOptions stored = po;
        stored.storedZeroSlot = true;
        const Output bs = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, stored);
        j["bf16_packed_stored_zero_slot_max_difference"] = (bp.embedding - bs.embedding).abs().max().item<double>();
        // Only where the model's head size has the kernels (the fixture's 16 has not: stored
        // there too, and the released-size check below is the one that sees the kernels).
        j["bf16_packed_virtual_zero_slot"] = model.virtualZeroSlots();
        const auto [fp8, fp8Fallbacks] = fp8Cosine(po);
        j["fp8_feed_forward_cosine_min"] = fp8;
        j["fp8_feed_forward_fallback_calls"] = fp8Fallbacks; // 0: every layer by the kernels
        const bool shortAttention = model.shortAttention(), gemmGelu = model.gemmGelu(), pool = model.fusedPool();
        model.setShortAttention(false);
        model.setGemmGelu(false);
        model.setFusedPool(false);
        EmbedOptions previous = po; // exact shapes through forward(), as before
        previous.embedPath = false;
        const Output bq = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, previous);
        const torch::Tensor cq = torch::cosine_similarity(bq.embedding, o.embedding, 1);
        j["bf16_packed_previous_cosine_min"] = cq.min().item<double>();
        j["bf16_packed_previous_cosine_mean"] = cq.mean().item<double>();
        model.setShortAttention(shortAttention);
        model.setGemmGelu(gemmGelu);
        model.setFusedPool(pool);
        // The opt-in second feed-forward product into its residual (--residual-in-product).
        const bool residualBefore = model.residualInProduct();
        const std::int64_t residualRuns = model.residualInProductRuns();
        model.setResidualInProduct(true);
        const Output br = embedNeighborhoods(model, expr.to(dev), types.to(dev), hoods, 0, po);
        model.setResidualInProduct(residualBefore);
        // 0 where the path never ran (a decline): the default compared with itself says nothing.
        j["residual_in_product_cosine_min"] =
            !model.fusedKernels() ? -1.0
            : model.residualInProductRuns() == residualRuns
                ? 0.0
                : torch::cosine_similarity(br.embedding, o.embedding, 1).min().item<double>();

        // Training's LayerNorm with the fused weight/bias gradients against ATen's (46,080 x 384 bf16).
        if (CellTransformer::fusedKernelsBuilt()) {
          // E 384 and the expression MLP's 192 (the released size's widths).
          {
            // The bias gradient summed by the LayerNorm's backward (setNormBiasSums) against its own
            // pass: the other gradients the same bits, the bias's within bf16 rounding.
            const auto nb = CellTransformer::checkNormBiasSums(dev);
            j["train_norm_bias_sums_max_difference"] = nb.sameGradients;
            j["train_norm_bias_sums_bias_max_rel_difference"] = nb.biasRelative;
            j["train_norm_bias_sums_used"] = nb.used;
          }
          {
            // The worse of the two widths; a NaN in either stays (std::max would drop the second's).
            const double wide = CellTransformer::checkTrainLayerNorm(dev),
                         narrow = CellTransformer::checkTrainLayerNorm(dev, 46080, 192);
            j["train_layer_norm_max_rel_error"] = std::isnan(narrow) || narrow > wide ? narrow : wide;
          }
          j["train_linear_max_rel_error"] = CellTransformer::checkTrainLinear(dev);
          // The input gradients by the tuned cuBLASLt algorithm (inference::inputGradient) against
          // ATen's mm, at the feed-forward's and q/k/v's widths: the worst (-1: it did not run).
          {
            double worst = 0;
            for (const auto& [n, k] : {std::pair<int, int>{2048, 384}, {1152, 384}, {384, 384}}) {
              const double d = inference::checkTunedInputGradient(dev, 32768, n, k);
              if (d < 0) {
                worst = -1;
                break;
              }
              if (std::isnan(d) || d > worst) worst = d;
              if (std::isnan(worst)) break;
            }
            j["train_tuned_input_grad_max_rel_difference"] = worst;
          }
          const auto loss = inference::checkZinbRowMean(dev);
          j["train_loss_p99_rel_error"] = loss.fusedP99; // ATen's float32 composite's, for scale:
          j["train_loss_composite_p99_rel_error"] = loss.compositeP99;
          j["train_loss_max_error"] = loss.fusedMax;
          j["train_loss_composite_max_error"] = loss.compositeMax;
          // The loss from the heads' pre-activations (training's heads as one product) against the
          // separate heads' exp, + 1e-15 and casts before the fused loss: the same functions, 0 expected.
          const auto heads = inference::checkZinbHeads(dev);
          j["train_heads_loss_max_rel_difference"] = heads.loss;
          j["train_heads_gradient_max_rel_difference"] = heads.gradient;
          // Training's feed-forward by the fused GEMMs and by the path before, against float32.
          const auto ff = CellTransformer::checkTrainFeedForward(dev);
          if (ff.unfused >= 0) {
            j["train_feed_forward_unfused_max_rel_error"] = ff.unfused;
            j["train_feed_forward_unfused_rel_errors"] = ff.unfusedEach; // y, dx, dW1, db1, dW2, db2
          }
          if (CellTransformer::gemmGeluBuilt()) {
            j["train_feed_forward_max_rel_error"] = ff.fused;
            j["train_feed_forward_rel_errors"] = ff.fusedEach;
            // Its epilogue trees against the linear combinations before them: the same bits.
            j["train_feed_forward_lincomb_max_difference"] = ff.linComb;
            // With the first bias gradient by dW1's product (--bias-grad-in-product; absent where
            // cuBLASLt is not here, empty where it declined: a failure below).
            if (!ff.biasInProductEach.empty() || CellTransformer::biasGradInProductAvailable())
              j["train_feed_forward_bias_in_product_rel_errors"] = ff.biasInProductEach;
            // With GELU'(h) stored by the forward (--stored-gelu-grad).
            j["train_feed_forward_stored_gelu_grad_rel_errors"] = ff.storedGradEach;
          }
          j["short_attention_max_rel_error"] = CellTransformer::checkShortAttention(dev);
          // Training's attention kernels (output and q/k/v gradients) against float32, and flash's
          // for scale: the released size's heads of 48 at training's bound, the compact size's 32,
          // and heads of 64 on short sequences (one 16-row tile and a part).
          for (const auto& [d, longest] : {std::pair{48, 258}, std::pair{32, 258}, std::pair{64, 21}}) {
            const auto t = CellTransformer::checkTrainAttention(dev, 400, longest, d);
            const std::string suffix = d == 48 ? "" : "_d" + std::to_string(d);
            j["train_short_attention_max_rel_error" + suffix] = t.shortKernels;
            j["train_flash_attention_max_rel_error" + suffix] = t.flash;
            j["train_packed_attention_max_difference" + suffix] = t.packedFromShort;
            // The backward's two kernels before the one (setTwoKernelAttentionBackward), and the
            // largest difference between the two backwards.
            j["train_short_attention_two_kernel_max_rel_error" + suffix] = t.twoKernels;
            j["train_attention_one_from_two_kernels_max_difference" + suffix] = t.fusedFromTwoKernels;
            // The one kernel with K ahead (the default) against it without: the same bits; the rows
            // up to which it kept dS^T (longer sequences recompute it: at 258 most of them).
            j["train_attention_keys_ahead_max_difference" + suffix] = t.keysAheadFromReload;
            j["train_attention_kept_rows" + suffix] = t.kept;
            // Its first loads in the order before (setAttentionBackwardLoadsLate): the same bits; only
            // where the one kernel ran (kept > 0), else both runs took the two kernels.
            j["train_attention_loads_late_max_difference" + suffix] = t.kept > 0 ? t.loadsLateFromEarly : -1.0;
          }
          {
            // K ahead at heads of 48 on sequences that all keep dS^T (up to 140 rows, the 4M-cell
            // benchmark's typical longest).
            const auto t = CellTransformer::checkTrainAttention(dev, 400, 140, 48);
            j["train_attention_keys_ahead_max_difference_l140"] = t.keysAheadFromReload;
            j["train_attention_loads_late_max_difference_l140"] = t.kept > 0 ? t.loadsLateFromEarly : -1.0;
            j["train_attention_kept_rows_l140"] = t.kept;
          }
          {
            const auto qa = CellTransformer::checkTrainQkvAttention(dev);
            j["train_qkv_attention_max_difference"] = qa.sameGradients;
            j["train_qkv_attention_bias_max_rel_difference"] = qa.biasRelative;
            j["train_qkv_attention_virtual_slots_max_rel_difference"] = qa.virtualSlots;
          }
          {
            // Training's type-row gradient by its kernel, and by ATen's index_add for scale.
            const auto tr = CellTransformer::checkTypeRows(dev);
            j["train_type_rows_max_rel_error"] = tr.kernel;
            j["train_type_rows_aten_max_rel_error"] = tr.aten;
          }
          // proj_norm reading the type table in place against the gather, cat and LayerNorm: the same bits.
          j["train_proj_norm_max_difference"] = CellTransformer::checkTrainProjNorm(dev);
          // Training's pool layout by its kernel against the zero fill and index_copy: the same bits.
          j["train_pool_scatter_max_difference"] = CellTransformer::checkPoolScatter(dev);
          {
            // Training's pool by its kernels and by ATen's products (the path before), each against float32.
            const auto tp = CellTransformer::checkTrainPool(dev);
            j["train_pool_max_rel_error"] = tp.fused;
            j["train_pool_aten_max_rel_error"] = tp.aten;
            // Its output by TrainPoolOutput against ATen's operations on the same kernels' outputs.
            j["train_pool_output_forward_max_difference"] = tp.outputForward;
            j["train_pool_output_gradient_max_rel_difference"] = tp.outputGradient;
            // Its kernels two tokens a warp at a time against one: the same bits.
            j["train_pool_token_pairs_max_difference"] = tp.tokenPairs;
          }
          // Training's packed tokens by their gathers against ATen's cat, gather and add: the same bits.
          j["train_pack_tokens_max_difference"] = CellTransformer::checkPackTokens(dev);
          {
            // Training's decoder pair attention by its kernels against float32 autograd.
            const auto pa = CellTransformer::checkPairAttention(dev);
            j["train_pair_attention_max_rel_error"] = pa.declined ? -1.0 : std::max(pa.output, pa.gradient);
          }
          // Each kernel variant (the default above), on the same sequences.
          for (int v = 1; CellTransformer::attentionVariantName(v); ++v)
            j["short_attention_variant_max_rel_error"][std::to_string(v)] =
                CellTransformer::checkShortAttention(dev, 3000, 256, v);
          if (CellTransformer::gemmGeluBuilt()) {
            j["gemm_gelu_max_rel_error"] = CellTransformer::checkGemmGelu(dev);
            j["gemm_gelu_erff_max_rel_error"] = CellTransformer::checkGemmGelu(dev, 46080, 384, 2048, true);
          }
          // The epilogue's exp2 GELU against erff on the device: every bf16 input, then the
          // fused GEMM + GELU by each epilogue on the same data.
          const auto g = CellTransformer::checkGeluExp2(dev);
          if (g.mismatches >= 0) {
            j["gelu_exp2_bf16_mismatches"] = g.mismatches;
            j["gelu_exp2_bf16_vs_erff_float32"] = g.erffMismatches;
            j["gelu_exp2_bf16_checked"] = g.checked;
            j["gelu_exp2_max_abs"] = g.maxAbs;
            j["gelu_grad_exp2_max_abs"] = g.gradMaxAbs;
          }
          if (g.gemmDiffering >= 0) {
            j["gemm_gelu_exp2_vs_erff_differing"] = g.gemmDiffering;
            j["gemm_gelu_exp2_vs_erff_values"] = g.gemmValues;
            j["gemm_gelu_exp2_vs_erff_max_abs"] = g.gemmMaxAbs;
          }
          j["fused_pool_cosine_min"] = CellTransformer::checkFusedPool(dev);
          // The first layer's q|k|v from the per-cell table against the per-token projection.
          j["first_layer_per_cell_cosine_min"] = CellTransformer::checkFirstLayerPerCell(dev);
          // Virtual zero slots against stored ones, the first layer's residual from the table
          // against the assembled tokens, at the released size: the same bits.
          const auto same = CellTransformer::checkSameBits(dev);
          j["virtual_zero_slot_max_difference"] = same.virtualZeroSlot;
          j["first_residual_from_table_max_difference"] = same.firstResidual;
          j["pool_token_pairs_max_difference"] = same.poolTokenPairs;
          j["lincomb_gelu_max_difference"] = same.linCombGelu;
          const auto f8 = CellTransformer::checkFp8Kernels(dev);
          if (f8.gemmMaxRelError >= 0) {
            j["fp8_gemm_gelu_max_rel_error"] = f8.gemmMaxRelError;
            j["fp8_gemm_gelu_erf_max_rel_error"] = f8.gemmErfMaxRelError;
          }
          if (f8.layerNormDiffering >= 0) {
            j["fp8_layer_norm_differing"] = f8.layerNormDiffering;
            j["fp8_layer_norm_values"] = f8.layerNormValues;
            j["fp8_layer_norm_max_step"] = f8.layerNormMaxStep;
          }
          j["fused_pool_before_cosine_min"] = CellTransformer::checkFusedPool(dev, 2000, true);
        }
      }
      std::cout << j.dump() << "\n";
      // What failed, on stderr: stdout is one JSON line for scripts, where a NaN error is `null`
      // and says nothing to a person.
      std::vector<std::string> failures;
      if (!same) failures.push_back("the neighbourhoods differ from the fixture's /neighborhoods/indices");
      for (const char* key : {"repr", "mu"}) {
        const double v = j["fp32_max_error"][key].is_number() ? j["fp32_max_error"][key].get<double>() : std::nan("");
        if (std::isnan(v))
          failures.push_back(std::string("the fp32 ") + key +
                             " error is NaN (the weights or the outputs hold NaN or infinity: damaged weights?)");
        else if (!(v < 1e-4))
          failures.push_back(std::string("the fp32 ") + key + " error " + std::to_string(v) + " exceeds 1e-4");
      }
      // A figure present in j must be a number in [lo, hi) (a NaN is written as null: not a number).
      auto require = [&](const char* key, double lo, double hi, const char* failure) {
        if (!j.contains(key)) return;
        const auto& v = j[key];
        if (!(v.is_number() && v.get<double>() >= lo && v.get<double>() < hi)) failures.push_back(failure);
      };
      const double inf = std::numeric_limits<double>::infinity();
      require("bf16_cosine_min", 0.999, inf,
              "the bf16 embeddings' minimum cosine similarity to fp32 is below 0.999 (or NaN)");
      require("bf16_packed_cosine_min", 0.999, inf,
              "the packed bf16 embeddings' minimum cosine similarity to fp32 is below 0.999 (or NaN)");
      // The bar for a lower precision: cosine >= 0.999 on the held fixtures.
      require("fp8_feed_forward_fp32_cosine_min", 0.999, inf,
              "the FP8 feed-forward's embeddings (float32 path) are below cosine 0.999 to fp32 (or NaN)");
      require("fp8_feed_forward_cosine_min", 0.999, inf,
              "the FP8 feed-forward's bf16 embeddings are below cosine 0.999 to fp32 (or NaN)");
      // The opt-in residual in the second feed-forward product: a rounding moved, the same bar as
      // a lower precision's (-1: no fused kernels here, the path does not exist).
      if (j.value("residual_in_product_cosine_min", -1.0) != -1.0)
        require("residual_in_product_cosine_min", 0.999, inf,
                "the residual in the second feed-forward product (--residual-in-product) is below cosine 0.999 to "
                "fp32 (or NaN)");
      if (CellTransformer::gemmGeluBuilt() && dev.is_cuda())
        require("fp8_feed_forward_fallback_calls", 0, 0.5, "the FP8 feed-forward's kernels declined on this GPU");
      // Virtual zero slots: the same bits as stored ones (0 exactly; +inf where a kernel declined).
      const double none = std::numeric_limits<double>::denorm_min();
      require("bf16_packed_stored_zero_slot_max_difference", 0, none,
              "the packed bf16 embeddings with virtual zero slots differ from those with the slots stored");
      // checkSameBits at the released size (-1: not run there).
      for (const auto& [key, what] : std::initializer_list<std::pair<const char*, const char*>>{
               {"virtual_zero_slot_max_difference", "with virtual zero slots differ from those with the slots stored"},
               {"first_residual_from_table_max_difference",
                "with the first layer's residual read from the table differ from those with the tokens assembled"},
               {"pool_token_pairs_max_difference",
                "with the fused pool's first pass by token pairs differ from those by single tokens"},
               {"lincomb_gelu_max_difference",
                "with the fused GEMM + GELU's epilogue differ from those with the epilogue before"}})
        if (j.value(key, -1.0) != -1.0)
          require(key, 0, none,
                  (std::string("at the released size, the embeddings ") + what + " (or a kernel declined)").c_str());
      if (j.contains("train_tuned_input_grad_max_rel_difference") && inference::matmulProductsBuilt())
        require("train_tuned_input_grad_max_rel_difference", 0, 1e-2,
                "training's input gradients by the tuned cuBLASLt algorithm differ from ATen's by more than 1%, "
                "or did not run");
      require("train_layer_norm_max_rel_error", -inf, 1e-2,
              "the fused LayerNorm gradients differ from ATen's by more than 1% (or NaN)");
      require("short_attention_max_rel_error", 0, 1e-2,
              "the short-attention kernel differs from float32 attention by more than 1% (or NaN)");
      // Training's attention kernels: within 2% of float32 (bf16 probabilities and dS, as flash's
      // backward) and no further from it than twice flash's own difference (+ 2e-3).
      // ... and K ahead must have run there, and on the heads of 64's short sequences.
      if (j.contains("train_attention_keys_ahead_max_difference_l140") &&
          !(j["train_attention_keys_ahead_max_difference_l140"].is_number() &&
            j["train_attention_keys_ahead_max_difference_l140"].get<double>() == 0 &&
            j["train_attention_loads_late_max_difference_l140"].is_number() &&
            j["train_attention_loads_late_max_difference_l140"].get<double>() == 0 &&
            j["train_attention_kept_rows_l140"].get<int>() > 0 && j["train_attention_kept_rows_d64"].get<int>() > 0))
        failures.push_back("training's attention backward with K ahead (sequences of up to 140) differs from the "
                           "kernel before it or from its first loads in the order before, or did not run");
      for (const char* suffix : {"", "_d32", "_d64"}) {
        const std::string key = std::string("train_short_attention_max_rel_error") + suffix;
        const std::string flashKey = std::string("train_flash_attention_max_rel_error") + suffix;
        if (!j.contains(key)) continue;
        const double flash = j[flashKey].is_number() ? j[flashKey].get<double>() : 1.0;
        const double bound = std::min(2e-2, 2 * flash + 2e-3);
        if (!(j[key].is_number() && j[key].get<double>() >= 0 && j[key].get<double>() < bound))
          failures.push_back("training's short-attention kernels" + std::string(suffix) +
                             " differ from float32 attention by more than " + std::to_string(bound) +
                             " (flash: " + std::to_string(flash) + "), or did not run");
        // The backward's one kernel against its two: the same arithmetic, so the same bits.
        const std::string oneKey = std::string("train_attention_one_from_two_kernels_max_difference") + suffix;
        if (j.contains(oneKey) && !(j[oneKey].is_number() && j[oneKey].get<double>() == 0))
          failures.push_back("training's attention backward in one kernel" + std::string(suffix) +
                             " differs from its two kernels, or did not run");
        // The first loads in either order: the same arithmetic, so the same bits.
        const std::string lateKey = std::string("train_attention_loads_late_max_difference") + suffix;
        if (j.contains(lateKey) && !(j[lateKey].is_number() && j[lateKey].get<double>() == 0))
          failures.push_back("training's attention backward with its first loads in the order before" +
                             std::string(suffix) + " differs from the default, or did not run");
        // With K ahead or not: the same arithmetic, so the same bits.
        const std::string aheadKey = std::string("train_attention_keys_ahead_max_difference") + suffix;
        if (j.contains(aheadKey) && !(j[aheadKey].is_number() && j[aheadKey].get<double>() == 0))
          failures.push_back("training's attention backward with K ahead" + std::string(suffix) +
                             " differs from the kernel before it, or did not run");
        // On one [R, 3E] q|k|v tensor: the same arithmetic, so the same bits.
        const std::string packedKey = std::string("train_packed_attention_max_difference") + suffix;
        if (!(j[packedKey].is_number() && j[packedKey].get<double>() == 0))
          failures.push_back("training's short-attention kernels" + std::string(suffix) +
                             " on one [R, 3E] q|k|v tensor differ from them on three, or did not run");
      }
      if (j.contains("train_norm_bias_sums_max_difference") &&
          !(j["train_norm_bias_sums_max_difference"].is_number() &&
            j["train_norm_bias_sums_max_difference"].get<double>() == 0 &&
            j["train_norm_bias_sums_used"].is_boolean() && j["train_norm_bias_sums_used"].get<bool>() &&
            j["train_norm_bias_sums_bias_max_rel_difference"].get<double>() >= 0 &&
            j["train_norm_bias_sums_bias_max_rel_difference"].get<double>() < 1e-2))
        failures.push_back("the bias gradient summed by the LayerNorm's backward differs from its own pass by 1% or "
                           "more, changes another gradient, or was not used");
      // Training's q|k|v projection and attention as one function: the same output and gradients as
      // the two functions before it, the bias gradient (summed in another order) within 1%.
      if (j.contains("train_qkv_attention_max_difference")) {
        if (!(j["train_qkv_attention_max_difference"].is_number() &&
              j["train_qkv_attention_max_difference"].get<double>() == 0))
          failures.push_back("training's q|k|v projection and attention as one function differ from the two "
                             "functions (output, dx or dW), or did not run");
        require("train_qkv_attention_bias_max_rel_difference", 0, 1e-2,
                "training's q|k|v bias gradient from the attention kernel's sums differs from the projection's "
                "by more than 1% (or did not run)");
        // Virtual zero slots (the default; --stored-zero-slots the path before): the same function as stored ones whose
        // outputs nothing reads; the products over fewer rows may pick other kernels (bf16: 2^-8 a rounding).
        require("train_qkv_attention_virtual_slots_max_rel_difference", 0, 1e-2,
                "training's attention with its zero slots appended by the kernel differs from stored slots by more "
                "than 1% (or did not run)");
      }
      // Training's type-row gradient: its kernel ran, and is no further from the float64 sums than
      // ATen's float32 index_add rounded to bf16 (twice its difference + 1e-3: the additions' order
      // differs).
      if (j.contains("train_type_rows_max_rel_error")) {
        const double k = j["train_type_rows_max_rel_error"].get<double>(),
                     a = j["train_type_rows_aten_max_rel_error"].get<double>();
        if (!(k >= 0 && a >= 0 && k <= 2 * a + 1e-3))
          failures.push_back("training's type-row gradient kernel did not run, or is further from the float64 sums "
                             "than ATen's index_add (" +
                             std::to_string(k) + " against " + std::to_string(a) + ")");
      }
      if (j.contains("train_pool_scatter_max_difference") &&
          !(j["train_pool_scatter_max_difference"].is_number() &&
            j["train_pool_scatter_max_difference"].get<double>() == 0))
        failures.push_back("training's pool layout by its kernel differs from the zero fill and index_copy, or the "
                           "kernel did not run");
      // Training's pool by its kernels: they ran, and are no further from float32 than ATen's bf16
      // products (twice their difference + 1e-3: the kernels keep A, the scores and dn in float32,
      // where ATen rounds them to bf16), and within 2%.
      if (j.contains("train_pool_max_rel_error")) {
        const double k = j["train_pool_max_rel_error"].get<double>(),
                     a = j["train_pool_aten_max_rel_error"].get<double>();
        if (!(k >= 0 && a >= 0 && k <= 2 * a + 1e-3 && k < 2e-2))
          failures.push_back("training's pool kernels did not run, or are further from float32 than ATen's products (" +
                             std::to_string(k) + " against " + std::to_string(a) + ")");
      }
      if (j.contains("train_pool_token_pairs_max_difference") &&
          j["train_pool_token_pairs_max_difference"].get<double>() != 0)
        failures.push_back("training's pool kernels two tokens a warp at a time differ from one at a time (or did not "
                           "run): " +
                           std::to_string(j["train_pool_token_pairs_max_difference"].get<double>()));
      if (j.contains("train_pool_output_forward_max_difference")) {
        const double f = j["train_pool_output_forward_max_difference"].get<double>(),
                     g = j["train_pool_output_gradient_max_rel_difference"].get<double>();
        if (!(f == 0 && g >= 0 && g < 1e-2))
          failures.push_back("training's pool output by its kernels did not run, differs from ATen's forward bits, or "
                             "its gradients from ATen's by 1% or more (" +
                             std::to_string(f) + ", " + std::to_string(g) + ")");
      }
      if (j.contains("train_pack_tokens_max_difference") && !(j["train_pack_tokens_max_difference"].is_number() &&
                                                              j["train_pack_tokens_max_difference"].get<double>() == 0))
        failures.push_back("training's packed tokens by their gathers differ from ATen's cat, gather and add, or the "
                           "kernels did not run");
      if (j.contains("train_proj_norm_max_difference") &&
          !(j["train_proj_norm_max_difference"].is_number() && j["train_proj_norm_max_difference"].get<double>() == 0))
        failures.push_back("training's proj_norm reading the type table in place differs from the type rows' gather, "
                           "cat and LayerNorm, or its kernels did not run");
      // Training's decoder pair attention: its kernels ran, within 2% of float32 (bf16 rounding of
      // the output and the gradient: ~0.4%).
      if (j.contains("train_pair_attention_max_rel_error"))
        require("train_pair_attention_max_rel_error", 0, 2e-2,
                "training's decoder pair-attention kernels did not run, or differ from float32 by more than 2%");
      // Training's fused feed-forward, each of the output and the five gradients: no further from
      // float32 than the path before (twice its difference + 2e-3: the products' order of
      // accumulation differs), and within 2%.
      if (j.contains("train_feed_forward_max_rel_error")) {
        const auto& u = j["train_feed_forward_unfused_rel_errors"];
        const char* names[] = {"output", "dx", "dW1", "db1", "dW2", "db2"};
        // The default, the first bias gradient by dW1's product (where cuBLASLt ran it) and GELU'(h) stored.
        for (const auto& [key, what] : std::initializer_list<std::pair<const char*, std::string>>{
                 {"train_feed_forward_rel_errors", "training's fused feed-forward"},
                 {"train_feed_forward_bias_in_product_rel_errors",
                  "training's fused feed-forward with the bias gradient in dW1's product"},
                 {"train_feed_forward_stored_gelu_grad_rel_errors",
                  "training's fused feed-forward with GELU'(h) stored by the forward"}}) {
          // (The bias in dW1's product is absent where cuBLASLt is not there: not a failure; present
          // and empty, cuBLASLt declined.)
          if (!j.contains(key) && std::string(key) == "train_feed_forward_bias_in_product_rel_errors") continue;
          const auto& f = j[key];
          if (!(f.is_array() && f.size() == 6 && u.is_array() && u.size() == 6)) {
            failures.push_back(what + " check did not run (its kernels declined)");
            continue;
          }
          for (std::size_t i = 0; i < 6; ++i) {
            const double unfused = u[i].is_number() ? u[i].get<double>() : 1.0;
            const double bound = std::min(2e-2, 2 * unfused + 2e-3);
            if (!(f[i].is_number() && f[i].get<double>() >= 0 && f[i].get<double>() < bound))
              failures.push_back(what + ": its " + names[i] + " differs from float32 by more than " +
                                 std::to_string(bound) + " (the path before: " + std::to_string(unfused) + ")");
          }
        }
      }
      // 0 exactly; -1 (a kernel declined, nothing compared) fails too.
      if (j.contains("train_feed_forward_lincomb_max_difference") &&
          j["train_feed_forward_lincomb_max_difference"].get<double>() != 0.0)
        failures.push_back("training's fused feed-forward epilogue trees differ from the linear-combination "
                           "epilogues before them (or a kernel declined)");
      require("gemm_gelu_max_rel_error", 0, 1e-2,
              "the fused GEMM + GELU differs from float32 linear + GELU by more than 1% (or NaN)");
      require("gemm_gelu_erff_max_rel_error", 0, 1e-2,
              "the fused GEMM + GELU with erff differs from float32 linear + GELU by more than 1% (or NaN)");
      // geluExp2 lands on the erf GELU's bf16 (double precision) for every input from -6 up, on
      // the CPU and on the H200 alike; where it differs from ATen's float32 formula, that formula
      // is off (1 + erf near 0), by 1.5e-5 at most on the H200.
      if (CellTransformer::fusedKernelsBuilt() && dev.is_cuda() && !j.contains("gelu_exp2_bf16_mismatches"))
        failures.push_back("the epilogue's exp2 GELU check did not run (its kernel failed to launch)");
      // geluGradExp2 is within 1.8e-6 of GELU' on the CPU; the device's ex2 adds 2 ulp.
      require("gelu_grad_exp2_max_abs", 0, 4e-6,
              "the backward epilogue's GELU derivative (geluGradExp2) is off by more than 4e-6 on the device");
      require("gelu_exp2_bf16_mismatches", 0, 0.5,
              "the epilogue's exp2 GELU rounds differently from the erf GELU for some bf16 input from -6 up");
      require("gelu_exp2_max_abs", 0, 1e-4,
              "the epilogue's exp2 GELU differs from the float32 erf GELU by 1e-4 or more somewhere (or NaN)");
      require("gemm_gelu_exp2_vs_erff_max_abs", 0, 1e-4,
              "the fused GEMM + GELU's two epilogues differ by 1e-4 or more (or NaN)");
      // The FP8 kernels at the released size: within 1% of float32 over the same e4m3 values (the
      // bf16 output's rounding and the fast accumulation's order), and the LayerNorm's e4m3 rows
      // at most one code from quantizeE4m3's, for at most 1 in 1,000 values.
      if (CellTransformer::gemmGeluBuilt() && dev.is_cuda() && !j.contains("fp8_gemm_gelu_max_rel_error"))
        failures.push_back("the FP8 kernels' check did not run (a kernel declined)");
      require("fp8_gemm_gelu_max_rel_error", 0, 1e-2, "the FP8 GEMM + GELU differs from float32 by 1% or more");
      require("fp8_gemm_gelu_erf_max_rel_error", 0, 1e-2,
              "the FP8 GEMM + GELU (erf form) differs from float32 by 1% or more");
      require("fp8_layer_norm_max_step", 0, 0.126, "the fused LayerNorm's e4m3 rows are off by more than one code");
      if (j.contains("fp8_layer_norm_differing") &&
          !(j["fp8_layer_norm_differing"].get<double>() <= 1e-3 * j["fp8_layer_norm_values"].get<double>()))
        failures.push_back(
            "the fused LayerNorm's e4m3 rows differ from quantizeE4m3's for more than 1 in 1,000 values");
      require("fused_pool_cosine_min", 0.999, inf,
              "the fused pool and decoder attention's embeddings differ from ATen's (cosine below 0.999 or NaN)");
      // The same products on the same rows, once per cell instead of once per token: only the
      // products' order of accumulation may differ. 0 (declined) or -1 (not run) fail on a GPU.
      // -1: the path does not apply here (a LibTorch without variable-length attention).
      if (CellTransformer::fusedKernelsBuilt() && dev.is_cuda() &&
          j.value("first_layer_per_cell_cosine_min", -1.0) != -1.0)
        require("first_layer_per_cell_cosine_min", 0.9999, inf,
                "the first layer from the per-cell table differs from the per-token path (cosine below 0.9999, "
                "declined, or NaN)");
      // The fused loss and gradients no less accurate than ATen's float32 composite (both against
      // the composite in float64): its 99th-percentile relative error at most the composite's + 1e-6,
      // its largest error at most twice the composite's + 1e-6 of the largest value.
      if (CellTransformer::fusedKernelsBuilt() && dev.is_cuda() && j.contains("train_loss_p99_rel_error")) {
        const double p99 = j["train_loss_p99_rel_error"].get<double>(),
                     p99c = j["train_loss_composite_p99_rel_error"].get<double>(),
                     most = j["train_loss_max_error"].get<double>(),
                     mostc = j["train_loss_composite_max_error"].get<double>();
        if (!(p99 >= 0 && p99 <= p99c + 1e-6 && most >= 0 && most <= 2 * mostc + 1e-6))
          failures.push_back("the fused training loss (values or gradients) is less accurate than ATen's float32 "
                             "composite, or did not run");
      }
      // The loss within 1e-5 (0 expected; a last-bit difference of LibTorch's exp would show as ~1e-7),
      // the gradient within 1e-2 (0 expected; such a difference may move one value's bf16 rounding, up
      // to ~4e-3 of the largest; a wrong column or term shows as far more).
      if (CellTransformer::fusedKernelsBuilt() && dev.is_cuda()) {
        require("train_heads_loss_max_rel_difference", 0, 1e-5,
                "the loss from the heads' pre-activations differs from the separate heads' (or did not run)");
        require("train_heads_gradient_max_rel_difference", 0, 1e-2,
                "the gradient by the heads' pre-activations differs from the separate heads' (or did not run)");
      }
      require("train_linear_max_rel_error", -inf, 1e-2,
              "the fused linear-layer gradients differ from ATen's by more than 1% (or NaN)");
      // The other short-attention kernels as the default: within 1% of float32.
      if (j.contains("short_attention_variant_max_rel_error"))
        for (const auto& [v, e] : j["short_attention_variant_max_rel_error"].items())
          if (!(e.is_number() && e.get<double>() >= 0 && e.get<double>() < 1e-2))
            failures.push_back("short_attention_variant_max_rel_error of kernel " + v +
                               " is not within [0, 1e-2) (or NaN)");
      for (const char* key : {"repr", "mu"}) {
        const auto& v = j["fp32_packed_max_error"][key];
        if (!(v.is_number() && v.get<double>() < 1e-4))
          failures.push_back(std::string("the fp32 packed ") + key + " error exceeds 1e-4 (or is NaN)");
      }
      for (const auto& f : failures) std::cerr << "parity failed: " << f << "\n";
      if (!failures.empty()) setExitCode(3);
    });
  }

  // --- bench embed
  {
    auto sizes = std::make_shared<std::vector<std::int64_t>>(std::vector<std::int64_t>{100000});
    auto density = std::make_shared<double>(3500.0);
    auto dir = std::make_shared<std::string>("bench-data");
    auto device = std::make_shared<std::string>("auto");
    auto size = std::make_shared<std::string>("released");
    auto batchTokens = std::make_shared<std::int64_t>(0);
    auto genes = std::make_shared<int>(500);
    auto typesN = std::make_shared<int>(150);
    auto profile = std::make_shared<bool>(false);
    auto benchRanks = std::make_shared<int>(1);
    CLI::App* bench = app.add_subcommand("bench", "Benchmarks (one JSON line per figure)");
    bench->require_subcommand(1);
    CLI::App* cmd =
        bench->add_subcommand("embed", "Embedding throughput end to end (h5ad on disk -> embeddings on disk)");
    cmd->add_option("--cells", *sizes, "Dataset sizes (synthetic brains, generated once into --dir)");
    cmd->add_option("--density", *density, "Cells per mm^2 (3500: ~100 neighbours per cell)");
    cmd->add_option("--dir", *dir, "Where the synthetic datasets and outputs go");
    cmd->add_option("--device", *device, "cuda, cpu or auto");
    cmd->add_option("--model", *size, "released (E 384, 8 heads, 4+4 layers) or compact (E 128, 4 heads, 2+2)")
        ->check(CLI::IsMember({"released", "compact"}));
    cmd->add_option("--batch-tokens", *batchTokens, "Padded tokens per batch");
    cmd->add_option("--genes", *genes, "Genes");
    cmd->add_option("--types", *typesN, "Cell types");
    cmd->add_flag("--profile", *profile, "Also time the model's stages (a second, synchronising run)");
    auto exact = std::make_shared<bool>(false);
    cmd->add_flag("--exact-lengths", *exact, "Batches of one neighbourhood size only (no padding, no mask)");
    auto padded = std::make_shared<bool>(false);
    cmd->add_flag("--padded-batches", *padded,
                  "GPU: padded batches with a key mask (the path before packing) instead of packed ones");
    auto serial = std::make_shared<bool>(false);
    cmd->add_flag("--serial-neighborhoods", *serial,
                  "Compute each next chunk's neighbourhoods between chunks (as before), not on a thread meanwhile");
    auto lookahead = std::make_shared<int>(inference::EmbedRunOptions().batchLookahead);
    cmd->add_option("--batch-lookahead", *lookahead,
                    "Batches built on host threads ahead of the device (0: between batches, as before)")
        ->check(CLI::Range(0, 64));
    auto noUploadStream = std::make_shared<bool>(false);
    cmd->add_flag("--no-upload-stream", *noUploadStream,
                  "GPU: upload packed batches on the compute stream (as before), not on a stream of their own");
    auto noFused = std::make_shared<bool>(false);
    cmd->add_flag("--no-fused-kernels", *noFused, "GPU: ATen's operations instead of the fused CUDA kernels");
    auto kernels = std::make_shared<inference::EmbedRunOptions>();
    addEmbedRunOptions(cmd, *kernels);
    auto traceFile = std::make_shared<std::string>();
    CLI::Option* traceOption =
        cmd->add_option("--trace", *traceFile,
                        "Write the kernels of the first chunk's first --trace-batches batches, after a "
                        "synchronisation, as a Chrome trace (GPU builds with Kineto)");
    auto traceFrom = std::make_shared<std::int64_t>(0);
    auto traceBatches = std::make_shared<int>(8);
    cmd->add_option("--trace-from", *traceFrom,
                    "With --trace: the batches from the run's batch N on (any chunk), without synchronising first "
                    "(its steady state); 0: the first chunk's, as without it")
        ->check(CLI::NonNegativeNumber)
        ->needs(traceOption);
    cmd->add_option("--trace-batches", *traceBatches, "With --trace: this many batches (default 8)")
        ->check(CLI::Range(1, 1000))
        ->needs(traceOption);
    addRankOption(cmd, *benchRanks);
    cmd->callback([=] {
      namespace fs = std::filesystem;
      fs::create_directories(*dir);
      const Atlas atlas = Atlas::load(bundledAtlasPaths());
      // With ranks: the launcher makes the data and the models (below), then the ranks run.
      const bool launcher = *benchRanks > 1 && !isRank();
      const std::unique_ptr<inference::Distributed> dist = launcher ? nullptr : joinJob(*device);
      const bool lead = !dist || dist->rank() == 0;
      for (int pass = 0; pass < (launcher ? 2 : 1); ++pass)
        for (const std::int64_t cells : *sizes) {
          if (launcher && pass == 1) {
            setExitCode(launchRanks(*benchRanks, *device));
            return;
          }
          const std::string data = (fs::path(*dir) / ("brain-" + std::to_string(cells) + ".h5ad")).string();
          if (!fs::exists(data)) {
            SyntheticBrainOptions g;
            g.maxCells = cells;
            g.cellsPerMm2 = *density;
            g.genes = *genes;
            g.cellTypes = *typesN;
            const auto s = generateSyntheticBrain(atlas, g, data);
            std::cout << nlohmann::json{{"figure", "generate"},
                                        {"cells", s.cells},
                                        {"sections", s.sections},
                                        {"mean_neighbors", s.meanNeighbors},
                                        {"seconds", s.seconds}}
                             .dump()
                      << std::endl;
          }
          trace("bench: reading the table");
          const CellTable table = readCellTable(data);
          inference::ModelConfig cfg;
          cfg.genes = static_cast<int>(table.genes.size());
          cfg.cellTypes = static_cast<int>(table.types.names.size());
          if (*size == "compact") {
            cfg.embedDim = 128;
            cfg.heads = 4;
            cfg.encoderLayers = 2;
            cfg.decoderLayers = 2;
            cfg.feedForward = 512;
          }
          std::vector<std::string> sortedTypes = table.types.names;
          std::sort(sortedTypes.begin(), sortedTypes.end());
          const std::string modelPath = (fs::path(*dir) / ("model-" + *size + ".h5")).string();
          trace("bench: initialising weights");
          if (!dist || !fs::exists(modelPath)) { // the ranks use the launcher's (the same weights)
            inference::CellTransformer m(inference::initWeights(cfg, 1221), cfg, "init");
            inference::saveCheckpoint(m, table.genes, sortedTypes, modelPath);
          }
          if (launcher) continue;
          trace("bench: loading the model");
          inference::ModelFile mf = inference::loadModelFile(modelPath);
          // The switches addEmbedRunOptions parsed, whichever they are, then bench embed's own.
          inference::EmbedRunOptions eo = *kernels;
          eo.device = *device;
          eo.batchTokens = *batchTokens;
          eo.resume = false;
          eo.exactLengths = *exact;
          eo.paddedBatches = *padded;
          eo.serialNeighborhoods = *serial;
          eo.batchLookahead = *lookahead;
          eo.fusedKernels = !*noFused;
          eo.uploadStream = !*noUploadStream;
          const std::string out =
              (fs::path(*dir) / ("embedding-" + std::to_string(cells) + (dist ? "-ranks" : "") + ".h5")).string();
          if (cells == sizes->front() && inference::resolveDevice(*device) == "cuda") {
            // A short unreported run first, so that one-time costs (CUDA context, kernel loading,
            // allocator growth) are not charged to the first size and the sizes compare.
            inference::EmbedRunOptions w = eo;
            w.chunkCells = std::min<std::int64_t>(cells / 4 + 1, 20000);
            const std::string warmOut =
                dist ? out + ".warm-up-rank" + std::to_string(dist->rank()) : out; // each rank alone
            trace("bench: warm-up");
            try {
              CancellationToken stop;
              w.cancel = &stop;
              w.resume = false;
              w.progress = [&stop](const std::string& stage, std::int64_t done, std::int64_t, double) {
                if (stage == "embedding" && done > 0) stop.cancel();
              };
              inference::embedDataset(mf, data, {}, warmOut, w);
            } catch (const Cancelled&) {}
            removeFolder(warmOut + ".parts");
          }
          eo.dist = dist.get();
          if (!dist) {
            eo.traceFile = *traceFile;
            eo.traceFromBatch = *traceFrom;
            eo.traceBatches = *traceBatches;
          }
          const auto r = inference::embedDataset(mf, data, {}, out, eo);
          eo.traceFile.clear();
          if (!lead) { // the other ranks' figures, for the record (their stdout is not the job's)
            nlohmann::json k = resultJson(r);
            k["figure"] = "embed_rank";
            k["rank"] = r.rank;
            std::cerr << k.dump() << std::endl;
            continue;
          }
          nlohmann::json j = resultJson(r);
          j["figure"] = "embed";
          j["exact_lengths"] = *exact;
          j["serial_neighborhoods"] = *serial;
          j["batch_lookahead"] = *lookahead;
          j["model"] = *size;
          j["config"] = cfg.describe();
          std::cout << j.dump() << std::endl;
          std::remove(out.c_str());
          if (*profile && !dist) {
            eo.profile = true;
            eo.chunkCells = std::min<std::int64_t>(cells, 200000);
            eo.taperedChunks = false; // the profile's chunk: the first, of chunkCells
            const auto p = inference::embedDataset(mf, data, {}, out, eo);
            std::cout << nlohmann::json{{"figure", "profile"},
                                        {"cells", eo.chunkCells},
                                        {"model", *size},
                                        {"profile_s", p.profile}}
                             .dump()
                      << std::endl;
            std::remove(out.c_str());
          }
        }
    });
    // --- bench attention: the encoder's short-attention kernels on one batch's shape (issue 18)
    {
      auto rows = std::make_shared<std::int64_t>(393216);
      auto meanLength = std::make_shared<std::int64_t>(87);
      auto iterations = std::make_shared<int>(50);
      CLI::App* a = bench->add_subcommand(
          "attention", "The encoder's short-attention kernels on an embedding batch's shape (GPU; JSON lines)");
      a->add_option("--rows", *rows, "Packed tokens (default 393216: an embedding batch's)")
          ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
      a->add_option("--mean-length", *meanLength,
                    "Mean tokens per sequence, lengths uniform from half to 1.5 times it (default 87: the bench "
                    "brain's 85 neighbours, the class token and the zero slot)")
          ->check(CLI::Range(std::int64_t{2}, std::int64_t{170}));
      a->add_option("--iterations", *iterations, "Calls timed per kernel")->check(CLI::Range(1, 100000));
      // Every sequence as long as the mean: how the kernels' time grows with the 16-row tiles a
      // sequence spans (the training backward gives a warp 16 keys, then 16 queries, 8 warps a block).
      auto exactLength = std::make_shared<bool>(false);
      a->add_flag("--exact-length", *exactLength,
                  "Every sequence --mean-length tokens long (the last one cut) instead of uniform lengths");
      auto train = std::make_shared<bool>(false);
      a->add_flag("--train", *train,
                  "Training's attention instead: flash and the short-attention kernels, forward and forward + "
                  "backward, on a training step's tokens (--rows default 90112: 1,024 neighbourhoods of ~88)");
      a->callback([=] {
        const std::string dev = inference::resolveDevice("auto");
        if (dev != "cuda") throw Error("bench attention needs a CUDA GPU");
        if (*train) {
          const std::int64_t n = a->count("--rows") > 0 ? *rows : 90112;
          const auto timings = inference::CellTransformer::benchTrainAttention(torch::Device(torch::kCUDA), n,
                                                                               *meanLength, *iterations, *exactLength);
          if (timings.empty()) throw Error("bench attention --train: the fused kernels are not built here");
          for (const auto& t : timings)
            std::cout << nlohmann::json{{"figure", "train_attention"},
                                        {"path", t.path},
                                        {"rows", t.rows},
                                        {"sequences", t.sequences},
                                        {"max_length", t.maxLength},
                                        {"forward_ms", t.forwardMs},
                                        {"forward_backward_ms", t.stepMs},
                                        {"ratio_to_flash", timings.front().stepMs / t.stepMs},
                                        {"max_abs_from_flash", t.maxAbsFromFlash}}
                             .dump()
                      << std::endl;
          return;
        }
        const auto timings = inference::CellTransformer::benchAttention(torch::Device(torch::kCUDA), *rows, *meanLength,
                                                                        *iterations, *exactLength);
        if (timings.empty()) throw Error("bench attention: the short-attention kernels are not built here");
        double before = timings.front().ms;
        for (const auto& t : timings)
          if (t.variant == 1) before = t.ms;
        for (const auto& t : timings) {
          // What one call must move: q, k and v read, the output written (bf16, E 384).
          const double bytes = static_cast<double>(t.rows) * (3 * 384 + 384) * 2;
          std::cout << nlohmann::json{{"figure", "attention"},
                                      {"variant", t.variant},
                                      {"kernel", t.name},
                                      {"rows", t.rows},
                                      {"sequences", t.sequences},
                                      {"max_length", t.maxLength},
                                      {"ms", t.ms},
                                      {"gb_per_s", bytes / (t.ms * 1e-3) / 1e9},
                                      {"ratio_to_before", before / t.ms},
                                      {"max_abs_from_before", t.maxAbsFromBefore}}
                           .dump()
                    << std::endl;
        }
      });
    }
    // --- bench matmul: training's products by ATen and by each cuBLASLt algorithm (issue 18)
    {
      auto rows = std::make_shared<std::int64_t>(105472);
      auto iterations = std::make_shared<int>(50);
      CLI::App* m = bench->add_subcommand(
          "matmul",
          "Training's encoder products by ATen's call and by each cuBLASLt algorithm offered (GPU; JSON lines)");
      m->add_option("--rows", *rows, "Tokens of a step (default 105472: 1,024 neighbourhoods, rounded)")
          ->check(CLI::Range(std::int64_t{8}, std::int64_t{1} << 24));
      m->add_option("--iterations", *iterations, "Calls timed per path")->check(CLI::Range(1, 100000));
      m->callback([=] {
        if (inference::resolveDevice("auto") != "cuda") throw Error("bench matmul needs a CUDA GPU");
        const auto shapes = inference::benchTrainMatmul(torch::Device(torch::kCUDA), *rows, *iterations);
        if (shapes.empty()) throw Error("bench matmul: the cuBLASLt products are not built here");
        double aten = 0, first = 0, best = 0;
        auto fastestOf = [](const std::vector<float>& ms) {
          int index = -1;
          for (std::size_t i = 0; i < ms.size(); ++i)
            if (ms[i] > 0 && (index < 0 || ms[i] < ms[static_cast<std::size_t>(index)])) index = static_cast<int>(i);
          return index;
        };
        for (const auto& s : shapes) {
          const int index = fastestOf(s.offerMs), bare = fastestOf(s.bareOfferMs);
          const double fastest = index < 0 ? -1.0 : s.offerMs[static_cast<std::size_t>(index)];
          const double flop = 2.0 * static_cast<double>(*rows) * s.n * s.k;
          if (index < 0) throw Error("bench matmul: every cuBLASLt offer failed for " + s.name);
          aten += s.atenMs * s.callsPerStep;
          first += std::max(0.f, s.offerMs[0]) * s.callsPerStep;
          best += fastest * s.callsPerStep;
          std::cout << nlohmann::json{{"figure", "train_matmul"},
                                      {"shape", s.name},
                                      {"rows", *rows},
                                      {"n", s.n},
                                      {"k", s.k},
                                      {"aten_eager_ms", s.atenEagerMs},
                                      {"aten_ms", s.atenMs},
                                      {"aten_tflops", flop / (s.atenMs * 1e-3) / 1e12},
                                      {"offers_ms", s.offerMs},
                                      {"offers_memsets", s.offerMemsets},
                                      {"bare_offers_ms", s.bareOfferMs},
                                      {"bare_offers_memsets", s.bareOfferMemsets},
                                      {"bare_offers_max_difference", s.bareOfferMaxDiff},
                                      {"best_offer", index},
                                      {"best_ms", fastest},
                                      {"best_tflops", flop / (fastest * 1e-3) / 1e12},
                                      {"best_bare_offer", bare},
                                      {"ratio_aten_to_best", s.atenMs / fastest},
                                      {"best_max_rel_from_aten", s.maxRelFromAten}}
                           .dump()
                    << std::endl;
        }
        std::cout << nlohmann::json{{"figure", "train_matmul_step"}, {"rows", *rows},   {"aten_ms", aten},
                                    {"first_offer_ms", first},       {"best_ms", best}, {"saved_ms", aten - best}}
                         .dump()
                  << std::endl;
      });
    }
    // --- bench gemm-gelu: the feed-forward's first layer by each path (issue 18)
    {
      auto rows = std::make_shared<std::int64_t>(393216);
      auto iterations = std::make_shared<int>(50);
      CLI::App* g =
          bench->add_subcommand("gemm-gelu", "GELU(x W^T + b) at embedding's size by each path (GPU; JSON lines)");
      g->add_option("--rows", *rows, "Rows of x (default 393216: an embedding batch's tokens)")
          ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
      g->add_option("--iterations", *iterations, "Calls timed per path")->check(CLI::Range(1, 100000));
      auto train = std::make_shared<bool>(false);
      g->add_flag("--train", *train,
                  "Training's feed-forward instead: the unfused path and the fused GEMMs (GELU and its gradient "
                  "in the epilogues), forward and forward + backward, on a training step's tokens (--rows default "
                  "90112: 1,024 neighbourhoods of ~88)");
      g->callback([=] {
        const std::string dev = inference::resolveDevice("auto");
        if (dev != "cuda") throw Error("bench gemm-gelu needs a CUDA GPU");
        if (*train) {
          const std::int64_t n = g->count("--rows") > 0 ? *rows : 90112;
          const auto timings =
              inference::CellTransformer::benchTrainFeedForward(torch::Device(torch::kCUDA), n, *iterations);
          if (timings.empty()) throw Error("bench gemm-gelu --train: the fused GEMMs are not built here");
          for (const auto& t : timings)
            std::cout << nlohmann::json{{"figure", "train_feed_forward"},
                                        {"path", t.path},
                                        {"declines", t.declines},
                                        {"rows", n},
                                        {"forward_ms", t.forwardMs},
                                        {"forward_backward_ms", t.stepMs},
                                        {"ratio_to_unfused", timings.front().stepMs / t.stepMs},
                                        {"max_abs_from_unfused", t.maxAbsFromUnfused}}
                             .dump()
                      << std::endl;
          return;
        }
        const int in = 384, out = 2048; // the released model's feed-forward
        const auto timings =
            inference::CellTransformer::benchGemmGelu(torch::Device(torch::kCUDA), *rows, in, out, *iterations);
        if (timings.empty()) throw Error("bench gemm-gelu: the fused GEMM + GELU is not built here");
        // Ratios against the first path of the same shape (cuBLASLt's).
        std::map<std::string, double> first;
        for (const auto& t : timings) first.emplace(t.shape, t.ms);
        for (const auto& t : timings)
          std::cout << nlohmann::json{{"figure", "gemm_gelu"},
                                      {"shape", t.shape},
                                      {"path", t.path},
                                      {"rows", *rows},
                                      {"ms", t.ms},
                                      {"tflops", t.flop / (t.ms * 1e-3) / 1e12},
                                      {"ratio_to_first", first[t.shape] / t.ms},
                                      {"max_abs_from_default", t.maxAbsFromDefault}}
                           .dump()
                    << std::endl;
      });
    }
  }
}

} // namespace atlascope::cli
