#pragma once
// Training CellTransformer (self-supervised: predict the reference cell's expression from its
// neighbourhood) with the reference recipe: Adam (lr 1e-3, weight decay 1e-9), linear warm-up 500
// steps, flat 50, then lr / sqrt((step + 4450) / 5000); ~1024 neighbourhoods per optimiser step by
// gradient accumulation; observed cells capped at 250 (seeded subset); an 80/20 split over cells.
// Runs where the model is (CellTransformer::to): on a GPU in bf16 with float32 master weights and
// optimiser state when the model's compute dtype is bf16, float32 otherwise. The next steps'
// neighbourhoods and batches (3 on a GPU) are built on host threads while the device runs.
// On a GPU, batches are rounded to repeating shapes and each shape's step is a replayed CUDA graph
// (StepGraphs), and attention runs over the packed sequences in place (variable-length flash).
// Deterministic on the CPU for a seed: data order per epoch comes from (seed, epoch), so a run
// resumed from a checkpoint continues exactly where it stopped.
#include "core/Neighborhood.h"
#include "core/Progress.h"
#include "inference/CellTransformer.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace atlascope::inference {

class Distributed;

struct ValidationMetrics {
  double nll = 0, pearson = 0;                 // the model
  double baselineNll = 0, baselinePearson = 0; // each gene's training mean
};

struct TrainOptions {
  int epochs = 1;
  std::int64_t maxSteps = 0; // > 0: stop after this many optimiser steps (tests, trials)
  std::int64_t cellsPerStep = 1024;
  std::int64_t microBatchTokens = 0; // padded tokens per forward; 0: 4096 on the CPU, 262144 on a GPU
  double lr = 1e-3, weightDecay = 1e-9;
  int warmup = 500, plateau = 50;
  int cap = 250;
  double validationFraction = 0.2;
  std::int64_t validationCells = 20000; // at most this many validation cells are scored
  std::uint64_t seed = 1221;
  const CancellationToken* cancel = nullptr;
  // Validation every this many steps; 0: at the end of each epoch (and of the run).
  std::int64_t validateEvery = 0;
  // step, loss, lr, cells/s (training steps only, validation excluded)
  std::function<void(std::int64_t, double, double, double)> onStep;
  std::function<void(const ValidationMetrics&)> onValidation;
  // Non-null: each step synchronises the device between its parts and adds their seconds here
  // (waiting for batches, the forward's stages, loss, backward, optimiser). Slows the run: for
  // a profile, not for throughput.
  std::map<std::string, double>* profile = nullptr;
  // Non-null: each validation synchronises the device between its parts and adds their seconds
  // here (waiting for the last step, the baseline, its batches, the forward's stages, the scores);
  // the steps themselves run as without it.
  std::map<std::string, double>* validationProfile = nullptr;
  // On a GPU (LibTorch with CUDA): capture each step shape's forward + backward as a CUDA graph
  // and replay it (StepGraphs); off, or with a profile, every step runs eagerly.
  bool cudaGraphs = true;
  // With a compute dtype below float32 (bf16 on a GPU): the compute copies of the weights are views
  // of one flat buffer, cast in one operation per step (written by the fused Adam step on a GPU),
  // their gradients added straight into the float32 gradient buffer; off: a cast per parameter and
  // its backward (the path before, for comparisons).
  bool flatComputeCopies = true;
  // With flat compute copies and no gradient buckets: each compute copy's gradient (bf16) is kept
  // by autograd as it comes (no kernel), and after each backward all of them are added into their
  // float32 slices in one kernel (FusedKernels.cu; ATen's add per parameter on the CPU): the same
  // additions, the same bits. Off: autograd adds each into its slice, one kernel a parameter (the
  // path before, for comparisons; gradient buckets need it, their hooks fire as each is added).
  bool foldComputeGradients = true;
  // With a compute dtype below float32: the forward gathers its tokens' expression from a copy of
  // the table in that dtype, made once (on a GPU where it fits in an eighth of the memory); off:
  // from the float32 table, cast after each gather (the path before, for comparisons).
  bool computeInputs = true;
  // With CUDA graphs on one rank: run() queues each step's replay before it reads the previous
  // step's loss, so that the host's work for a step (its batch's copies, the graph's launch) overlaps
  // the device's previous step instead of leaving the GPU idle between them. A non-finite loss then
  // stops the run one step later (the weights in memory have taken that step; checkpoints are
  // written only after the loss of every step before them was read). Off: each step waits for its
  // loss before the next is queued (the path before, for comparisons).
  bool overlapSteps = true;
  // With CUDA graphs and overlapSteps on one rank: each replayed step's batch copied to the device
  // on a stream of its own while the previous step runs (StepGraphs' stagedCopies); off: on the
  // step's stream after it (the path before, for comparisons).
  bool stagedBatchCopies = true;
  // The loss (each cell's ZINB NLL averaged over its genes) and its gradient in one pass each way
  // (zinbNllRowMean: a kernel each on a GPU, a loop on the CPU) instead of ATen's ~68 operations a
  // step. Validation scores by ATen's composite either way. Off: the path before, for comparisons.
  bool fusedLoss = true;
  // The mu, theta and gate heads as one product whose pre-activations the loss reads
  // (Heads::logits, zinbHeadsRowMean: exp, its backward and the casts inside the loss's pass), where
  // each head ran its own product, cast and exp and their backward (~25 small kernels a step on a
  // GPU; the scale head, which no loss reads, is not computed). Off: the path before, for comparisons.
  bool fusedHeads = true;
  // Non-empty (GPU builds with Kineto): the kernels of steps traceFrom .. traceFrom + 4 of this run
  // are written there as a Chrome trace (KernelTrace).
  std::string traceFile;
  std::int64_t traceFrom = 20;
  // Messages worth showing the user that do not stop the run (e.g. graphs turned off).
  std::function<void(const std::string&)> onNotice;
  // Data-parallel over the ranks of a job (null: this process alone). Each rank takes a contiguous
  // share of every step's cells (the global step, its order and so the result do not depend on
  // the number of ranks), the summed gradients are all-reduced (allReduce below), then the step's
  // loss and the ranks' cancel requests (so that every rank stops at the same step), and every
  // rank applies the same Adam step. The initial
  // weights are rank 0's; validation is split across the ranks and reduced.
  Distributed* dist = nullptr;
  // With ranks, how the gradients are summed: "buckets" (as DDP's reducer: the gradient buffer is
  // laid out in the order the backward produces it and cut into buckets of about bucketMiB; each
  // bucket's all-reduce starts from a gradient hook as soon as its gradients are in, so that it
  // overlaps the rest of the backward, inside the CUDA graphs too), "after" (one all-reduce of the
  // whole buffer after the backward), or "after-polling" (the same, waited for as before bucketing:
  // the host polls c10d every 10 ms; for comparisons).
  std::string allReduce = "buckets";
  double bucketMiB = 25;
  // > 0 with dist: every this many steps the ranks compare a checksum of their weights and stop
  // with an Error if they differ (debug runs; costs one small all-reduce).
  std::int64_t checkWeightsEvery = 0;
  // Steps whose batches are built ahead on host threads (0: 3 on a GPU, 1 on the CPU).
  int batchLookahead = 0;
  // On a GPU, a step's packed tokens are rounded up to a multiple of this (PackShape::tokenMultiple;
  // padded lengths to 32), so that steps repeat a few shapes, one CUDA graph each. The filler rows
  // this adds run through every product like real ones: a smaller multiple wastes fewer of them
  // and captures more graphs (~25-45 ms of host time each, once per shape). One epoch of the 4M-cell
  // bench brain on the H200 (call s15-2): 4,096 (before) 2.5% filler rows, 4 graphs, 51,929 and
  // 51,777 cells/s; 1,024 0.5%, 6 graphs, 52,922; 512 0.3%, 10 graphs, 52,877.
  std::int64_t tokenMultiple = 1024;
  // Packed batches without add_zero_attn's slot rows (Batch::virtualZeroSlot; the attention kernels
  // append each neighbourhood's zero key and value, CellTransformer::trainingPackShape): one row of
  // ~100 less per neighbourhood in every per-token product, LayerNorm and GELU of the encoder, as
  // embedding's batches. The same loss and gradients (tests/inference/test_trainer; `parity`'s
  // train_qkv_attention_virtual_slots_max_rel_difference on a GPU). H200, 1,500 steps of the 4M-cell
  // bench brain (call s20-1): 58,453 cells/s against 57,287 and 57,473 with the slots stored
  // (replays' median 17.34 ms against 17.67 and 17.64). Off: stored (`--stored-zero-slots`, the
  // path before, for comparisons).
  bool virtualZeroSlots = true;
  // Validation's batches built on host threads ahead of their use (Trainer's validationBuilt: the
  // first ones while the steps before it run), its sums read once at its end, and the baseline's
  // statistics made once per trainer. Off: all of its batches built on one thread when it begins,
  // its sums read after each batch and the baseline's statistics from a copy of every training
  // cell's counts each time (the path before, for comparisons).
  bool validationAhead = true;
};

// Where a run's step time went (Trainer::stepTimes): each iteration of run()'s loop (queueing a
// step, then waiting for the step before it) timed on the host and sorted by what the queued step
// did. Replays are the steady state; captures and eager steps (the graphs' warm-up, an epoch's short
// last step) are what an epoch pays on top. Slow replays (over 1.5 x the median) say whether the
// steady state itself has stalls (batches late, the allocator, the host). The spread (median, p90,
// max, slow) counts replays that follow replays: an iteration also waits for the step before it.
struct StepTimes {
  std::int64_t replays = 0, captures = 0, eager = 0;
  double replaySeconds = 0, captureSeconds = 0, eagerSeconds = 0, validationSeconds = 0;
  // Of validationSeconds, waiting for its batches; building them (host threads, beside the steps
  // where built ahead: TrainOptions::validationAhead).
  double validationWaitSeconds = 0, validationBuildSeconds = 0;
  double replayMedian = 0, replayP90 = 0, replayMax = 0; // seconds
  std::int64_t slowReplays = 0;
  double slowExcessSeconds = 0; // of slow replays, the time over the median
  // Packed rows of the steps' batches (fillers included) against their real tokens (observed
  // cells, class tokens and zero slots): what rounding to repeating shapes costs.
  std::int64_t rows = 0, realRows = 0;
  // Packed batches' neighbourhoods by their length in tiles of 16 rows (entry t: ceil(rows / 16) =
  // t + 1, the last entry also longer ones; empty for padded batches): the attention backward gives
  // each of its 8 warps 16 keys or queries of a sequence and head, so this says how many of them a
  // step's sequences leave idle.
  static constexpr std::int64_t kTileBins = 17; // up to 256 rows, then longer
  std::vector<std::int64_t> sequenceTiles;
};

struct TrainState {
  std::int64_t step = 0;     // optimiser steps done
  int epoch = 0;             // current epoch
  std::int64_t position = 0; // cells of this epoch's order already used
};

double learningRate(const TrainOptions& o, std::int64_t step);

class Trainer {
public:
  // expression [n, G] log2 values and types [n] (float32 / int64, moved to the model's device);
  // x, y in 10 um units.
  Trainer(CellTransformer& model, torch::Tensor expression, torch::Tensor types, std::vector<float> x,
          std::vector<float> y, std::vector<std::int64_t> section, TrainOptions options);
  ~Trainer();

  // Runs until the epochs (or maxSteps) are done; throws Cancelled on cancel, Error on NaN.
  void run();
  ValidationMetrics validate();
  const TrainState& state() const { return state_; }
  std::int64_t stepsPerEpoch() const;
  std::int64_t totalSteps() const; // of the run: epochs x steps per epoch, or maxSteps when smaller

  // Optimiser state and position, atomically, beside a model checkpoint (PATH.train).
  void saveState(const std::string& path) const;
  void loadState(const std::string& path);

  // One optimiser step on the next cells of the epoch; returns the mean loss (waiting for it).
  double step();
  // CUDA graphs captured so far (one per step shape; 0 when eager).
  int graphs() const;
  // On a GPU: the mean relative difference of the predicted means between the variable-length
  // and the padded attention on validation cells, measured once per run (-1: not measured).
  double attentionCheck() const;
  // Whether the forward gathers from the compute-dtype copy of the table (TrainOptions::computeInputs).
  bool gathersComputeInputs() const;
  // Whether the compute copies' gradients are folded after each backward (TrainOptions::foldComputeGradients).
  bool foldsComputeGradients() const;
  // Host seconds so far: the steps waiting for their batches, and building them (on threads,
  // overlapping the device).
  std::pair<double, double> batchSeconds() const;
  // Of run() so far (StepTimes).
  StepTimes stepTimes() const;

private:
  // A step whose device work is queued; `loss` waits for its loss and checks it.
  struct Queued {
    std::function<double()> loss;
    std::int64_t step = 0; // the optimiser step it was (1-based, as state().step after it)
    bool deferred = false; // read after the next step is queued (run(), TrainOptions::overlapSteps)
    enum Kind { Replay, Capture, Eager } kind = Eager;
  };
  Queued queueStep(bool mayDefer);
  // The loss of a queued step, checked to be finite (Error otherwise).
  static double lossOf(const Queued& q);
  struct Impl;
  Impl* impl_;
  TrainState state_;
};

} // namespace atlascope::inference
