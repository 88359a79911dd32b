#include "inference/Trainer.h"

#include "core/AtomicFile.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/JsonNumber.h"
#include "inference/Distributed.h"
#include "inference/Embedding.h"
#include "inference/KernelTrace.h"
#include "inference/StepGraphs.h"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>
// The fused kernels (FusedKernels.cu: Adam) where CMake built them and LibTorch has CUDA.
#if defined(ATLASCOPE_WITH_CUDA_KERNELS) && defined(__has_include)
#if __has_include(<ATen/cuda/CUDAContext.h>)
#include "inference/FusedKernels.h"

#include <ATen/cuda/CUDAContext.h>
#define ATLASCOPE_FUSED_KERNELS 1
#endif
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>

namespace atlascope::inference {

double learningRate(const TrainOptions& o, std::int64_t step) {
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / o.warmup;
  if (step < o.warmup + o.plateau) return o.lr;
  return o.lr / std::sqrt((static_cast<double>(step) + 4450.0) / 5000.0);
}

namespace {

// Whether the file begins with HDF5's signature (optimiser states since 2026-12-05; torch::save's
// before).
bool isHdf5File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, sizeof head) && std::memcmp(head, "\x89HDF\r\n\x1a\n", sizeof head) == 0;
}

// A parameter's room in the flat buffers: a multiple of 8 values, so that every parameter (and its
// compute copy) starts 16-byte aligned, as vectorised kernels need (the gaps stay zero).
std::int64_t slotSize(std::int64_t count) { return (count + 7) / 8 * 8; }

// When a parameter's gradient is complete in the backward, earliest first: the heads, the decoder
// from its last layer, the pool, the encoder from its last layer, then the token inputs. The
// gradient buffer is laid out in this order, so that its buckets fill one after the other.
int backwardRank(const std::string& key, const ModelConfig& c) {
  auto layerOf = [&key](const std::string& stack) {
    return std::atoi(key.c_str() + stack.size()); // "<stack>.layers.<i>...."
  };
  if (key.rfind("zinb_proj.", 0) == 0) return 0;
  if (key.rfind("decoder.layers.", 0) == 0) return 1 + (c.decoderLayers - 1 - layerOf("decoder.layers."));
  if (key.rfind("decoder_cell_embed", 0) == 0) return 1 + c.decoderLayers;
  if (key.rfind("attn_pool.", 0) == 0) return 2 + c.decoderLayers;
  if (key.rfind("encoder.layers.", 0) == 0)
    return 3 + c.decoderLayers + (c.encoderLayers - 1 - layerOf("encoder.layers."));
  return 3 + c.decoderLayers + c.encoderLayers;
}
} // namespace

// The ranks' gradients summed in buckets while the backward runs, as DDP's reducer does: a hook
// after each parameter's gradient accumulation counts what its bucket still waits for, and a
// bucket whose gradients are all in is all-reduced at once (buckets start strictly in order, so
// every rank issues the same collectives in the same order). Inside a CUDA graph capture the
// all-reduces are captured where they start and so overlap the rest of the backward at each
// replay. Parameters that get no gradient (unused in the loss: their gradient stays zero) are
// learnt from the first backward and not waited for afterwards.
class GradientBuckets {
public:
  // `ranges`: [offset, count) of each bucket in `flatGrad`; `leaves` with their bucket.
  GradientBuckets(Distributed& dist, const torch::Tensor& flatGrad,
                  const std::vector<std::pair<std::int64_t, std::int64_t>>& ranges,
                  const std::vector<std::pair<torch::Tensor, int>>& leaves, torch::Device device)
      : state_(std::make_shared<State>(dist)) {
    State& s = *state_;
    for (const auto& [offset, count] : ranges) s.buckets.push_back(flatGrad.narrow(0, offset, count));
    s.bucketOf.resize(leaves.size());
    s.used.assign(leaves.size(), true); // until the first backward says otherwise
    s.fired.assign(leaves.size(), false);
    if (device.is_cuda()) s.stream = c10::impl::VirtualGuardImpl(device.type()).getStream(device);
    std::weak_ptr<State> weak = state_;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      s.bucketOf[i] = leaves[i].second;
      auto acc = torch::autograd::impl::grad_accumulator(leaves[i].first);
      const auto key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak, i](const torch::autograd::variable_list& out, const torch::autograd::variable_list&) {
            if (auto st = weak.lock()) st->ready(i);
            return out;
          }));
      hooks_.emplace_back(std::move(acc), key);
    }
  }
  ~GradientBuckets() {
    for (auto& [acc, key] : hooks_) acc->del_post_hook(key);
  }
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // The next backward is the step's last: its hooks start the all-reduces.
  void arm() {
    State& s = *state_;
    std::lock_guard<std::mutex> lock(s.mutex);
    s.left.assign(s.buckets.size(), 0);
    for (std::size_t i = 0; i < s.bucketOf.size(); ++i)
      if (s.used[i]) ++s.left[static_cast<std::size_t>(s.bucketOf[i])];
    std::fill(s.fired.begin(), s.fired.end(), false);
    s.next = 0;
    s.pending.clear();
    s.armed = true;
    s.launchReady();
  }
  // After that backward: starts the buckets still waiting, then orders the current stream after
  // every all-reduce (Gloo: waits for them).
  void finish() {
    State& s = *state_;
    std::vector<Distributed::Pending> pending;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (s.late) {
        s.late = false;
        throw Error("a gradient arrived after its bucket was all-reduced (a parameter unused at the first step is "
                    "used now); run with --allreduce after");
      }
      while (s.next < s.buckets.size()) s.launch(s.next++);
      for (std::size_t i = 0; i < s.used.size(); ++i) s.used[i] = s.fired[i];
      s.armed = false;
      pending.swap(s.pending);
    }
    for (const auto& p : pending) s.dist.wait(p);
  }
  std::size_t buckets() const { return state_->buckets.size(); }

private:
  struct State {
    Distributed& dist;
    std::vector<torch::Tensor> buckets;
    std::vector<int> bucketOf;
    std::vector<bool> used, fired;
    std::vector<int> left; // per bucket: gradients still to come
    std::size_t next = 0;  // the next bucket to start
    bool armed = false, late = false;
    std::vector<Distributed::Pending> pending;
    std::optional<c10::Stream> stream; // the backward's (CUDA): c10d orders its all-reduce after it
    std::mutex mutex;
    explicit State(Distributed& d) : dist(d) {}

    void ready(std::size_t i) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!armed) return;
      fired[i] = true;
      const auto b = static_cast<std::size_t>(bucketOf[i]);
      if (b < next) {
        late = true; // its bucket was started without it: finish() says so
        return;
      }
      if (used[i]) --left[b];
      launchReady();
    }
    void launchReady() {
      while (next < buckets.size() && left[next] <= 0) launch(next++);
    }
    void launch(std::size_t b) {
      std::optional<c10::StreamGuard> guard;
      if (stream) guard.emplace(*stream);
      pending.push_back(dist.allReduceSumAsync(buckets[b]));
    }
  };
  std::shared_ptr<State> state_;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, std::uintptr_t>> hooks_;
};

struct Trainer::Impl {
  CellTransformer& model;
  torch::Tensor expression, types;
  // The forward's input table (TrainOptions::computeInputs): the expression cast to the compute
  // dtype once, so that a step gathers its tokens' rows at half the bytes and casts nothing (the
  // same values: the cast of a gathered row is the gathered row of the cast). Undefined: the
  // float32 table. The loss's targets are always the float32 rows.
  torch::Tensor computeInputs;
  const torch::Tensor& inputs() const { return computeInputs.defined() ? computeInputs : expression; }
  std::vector<float> x, y;
  std::vector<std::int64_t> section;
  TrainOptions opt;
  std::unique_ptr<NeighborhoodIndex> index;
  std::vector<std::int64_t> train, validation;
  // Adam over one flat buffer: every parameter's storage and gradient are slices of flat
  // tensors, so a step is ten kernels instead of ten per parameter (a LibTorch op costs the host
  // ~10 us: the per-parameter optimiser alone held a GPU step at a third of its speed).
  torch::Tensor flat, flatGrad, expAvg, expAvgSq;
  // With a compute dtype below float32 (TrainOptions::flatComputeCopies): the compute copies of
  // the weights as views of one flat buffer, cast from flat in one kernel (or written by the fused
  // Adam step, fusedAdam), each a leaf whose gradient goes to its float32 slice of flatGrad (folds,
  // or its .grad is that slice), so that a step's ~120 per-parameter casts and their backward
  // casts are gone.
  torch::Tensor flatLow;
  // TrainOptions::foldComputeGradients: each compute copy (a bf16 leaf whose .grad autograd sets
  // as it comes) and its float32 slice of flatGrad, in layout order.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> folds;
  bool fusedAdam = false; // FusedKernels.cu's Adam step (GPU)
  bool adamCasts = false; // the optimiser step writes flatLow (the fused one does it on its way)
  // With ranks: flatGrad followed by two slots (the step's summed loss, cancel requests), all-reduced
  // together ("after"); with buckets, the two slots alone (tail) after the gradients.
  torch::Tensor comm, tail;
  std::unique_ptr<GradientBuckets> reducer;
  // Each parameter's [offset, count) in flat, in the order of model.parameters() (checkpoints of
  // the optimiser keep that order, whatever the layout).
  std::vector<std::pair<std::int64_t, std::int64_t>> layout;
  std::int64_t adamSteps = 0;
  // The epoch's shuffled order, cached (shuffling 3M cells per step cost more than the step).
  int orderEpoch = -1;
  std::shared_ptr<const std::vector<std::int64_t>> order;
  std::mutex orderMutex;
  // The next steps' batches, each built on a host thread of its own while the device runs: (epoch,
  // position) they start at, in step order; aheadEnd: where the step after the last of them starts.
  // A GPU step on 512 cells (2 ranks) took about as long as building its batches on one thread.
  std::deque<std::pair<std::pair<int, std::int64_t>, std::future<std::vector<Batch>>>> ahead;
  TrainState aheadEnd;
  double batchWaitSeconds = 0, batchBuildSeconds = 0; // the step waiting for batches; building them (threads)
  std::mutex buildMutex;
  int lookahead() const { return opt.batchLookahead > 0 ? opt.batchLookahead : device().is_cuda() ? 3 : 1; }
  // Where the step after the one starting at `s` starts.
  TrainState advance(TrainState s) const {
    s.position += std::min<std::int64_t>(opt.cellsPerStep, static_cast<std::int64_t>(train.size()) - s.position);
    if (s.position >= static_cast<std::int64_t>(train.size())) {
      ++s.epoch;
      s.position = 0;
    }
    ++s.step;
    return s;
  }
  std::vector<Batch> timedBatchesOf(int epoch, std::int64_t position) {
    const auto t = std::chrono::steady_clock::now();
    std::vector<Batch> b = batchesOf(shareOf(stepCells(epoch, position)));
    std::lock_guard<std::mutex> lock(buildMutex);
    batchBuildSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    return b;
  }
  void dropAhead() {
    for (auto& [at, f] : ahead)
      if (f.valid()) f.wait();
    ahead.clear();
  }
  // Validation's host batches (TrainOptions::validationAhead): this rank's validation cells in
  // chunks, each chunk's batches built on a host thread of its own, at most validationLookahead()
  // chunks ahead of the one being scored. run() starts the first chunks while the steps run, as
  // the steps' own batches are built, so that an epoch's validation finds them ready (the same
  // cells every time); validate() starts the rest as it takes chunks. Before (validationAhead off),
  // validation built all of its batches on one thread when it began and read its sums after every
  // batch.
  std::vector<std::vector<std::int64_t>> validationChunks;                             // made on first use
  std::deque<std::pair<std::size_t, std::future<std::vector<Batch>>>> validationBuilt; // (chunk, its batches)
  std::size_t validationQueued = 0;                                                    // the next chunk to start
  double validationBuildSeconds = 0; // building them (threads; under buildMutex)
  // Chunks of 2,048 cells on a GPU (one micro-batch each: ~210k packed tokens), 8 ahead (pinned
  // host memory held from the epoch's first steps until its validation); on the CPU a step's
  // cells, one ahead (its threads run the forward).
  std::size_t validationLookahead() const { return device().is_cuda() ? 8 : 1; }
  void splitValidation() {
    if (!validationChunks.empty()) return;
    const std::vector<std::int64_t> share = shareOf(validation);
    const auto size = static_cast<std::size_t>(device().is_cuda() ? 2048 : std::max<std::int64_t>(1, opt.cellsPerStep));
    for (std::size_t i = 0; i < share.size(); i += size)
      validationChunks.emplace_back(share.begin() + static_cast<long>(i),
                                    share.begin() + static_cast<long>(std::min(share.size(), i + size)));
  }
  // Starts chunks from validationQueued until validationLookahead() are built or building.
  void startValidationBuilds() {
    splitValidation();
    while (validationBuilt.size() < validationLookahead() && validationQueued < validationChunks.size()) {
      const std::size_t i = validationQueued; // counted once started (std::async may throw)
      validationBuilt.emplace_back(i, std::async(std::launch::async, [this, i] {
                                     const auto t = std::chrono::steady_clock::now();
                                     std::vector<Batch> b = batchesOf(validationChunks[i]);
                                     std::lock_guard<std::mutex> lock(buildMutex);
                                     validationBuildSeconds +=
                                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
                                     return b;
                                   }));
      ++validationQueued;
    }
  }
  void dropValidationBuilds() {
    for (auto& [i, f] : validationBuilt)
      if (f.valid()) f.wait();
    validationBuilt.clear();
    validationQueued = 0;
  }
  // The baseline's per-gene mean count and NB dispersion (method of moments) over the training
  // cells: the same every validation, so made once, in slices of 65,536 cells (whole, the copy of
  // 3.2M x 500 counts took 6.4 GB of device memory; the path before, validationAhead off, did that
  // at every validation).
  torch::Tensor baselineMean, baselineTheta;
  void makeBaseline() {
    if (baselineMean.defined()) return;
    const torch::Tensor all = torch::tensor(train, torch::kInt64).to(device());
    const auto f64 = expression.options().dtype(torch::kFloat64);
    torch::Tensor s1 = torch::zeros({expression.size(1)}, f64), s2 = torch::zeros({expression.size(1)}, f64);
    for (std::int64_t i = 0, n = all.size(0); i < n; i += 65536) {
      const torch::Tensor c =
          torch::exp(expression.index_select(0, all.narrow(0, i, std::min<std::int64_t>(65536, n - i)))) - 1;
      s1 += c.sum(0, false, torch::kFloat64);
      s2 += (c * c).sum(0, false, torch::kFloat64);
    }
    const auto n = static_cast<double>(std::max<std::size_t>(1, train.size()));
    const torch::Tensor mean = s1 / n, var = (s2 / n - mean * mean).clamp_min(0);
    baselineMean = mean.to(torch::kFloat32);
    baselineTheta = (mean * mean / (var - mean).clamp_min(1e-6)).clamp(1e-3, 1e6).to(torch::kFloat32);
  }
  // CUDA graphs of the step (GPU, TrainOptions::cudaGraphs); null: eager.
  std::unique_ptr<StepGraphs> graphs;
  std::int64_t eagerSteps = 0; // steps run eagerly by this trainer (the graphs' warm-up)
  StepTimes times;             // of run() (Trainer::stepTimes)
  std::vector<double> replayIntervals;
  double attentionCheck = -1; // variable-length vs padded attention, relative (-1: not run)
  Impl(CellTransformer& m) : model(m) {}

  torch::Device device() const { return model.device(); }
  std::int64_t microTokens() const {
    return opt.microBatchTokens > 0 ? opt.microBatchTokens : device().is_cuda() ? 262144 : 4096;
  }

  // This rank's contiguous share of a step's (or the validation's) cells.
  std::vector<std::int64_t> shareOf(const std::vector<std::int64_t>& cells) const {
    if (!opt.dist || opt.dist->size() <= 1) return cells;
    const auto n = static_cast<std::int64_t>(cells.size());
    const std::int64_t r = opt.dist->rank(), N = opt.dist->size();
    return {cells.begin() + n * r / N, cells.begin() + n * (r + 1) / N};
  }

  // The cells of the step that starts at (epoch, position).
  std::vector<std::int64_t> stepCells(int epoch, std::int64_t position) {
    const auto o = epochOrder(epoch);
    const std::int64_t take = std::min<std::int64_t>(opt.cellsPerStep, static_cast<std::int64_t>(o->size()) - position);
    return {o->begin() + position, o->begin() + position + take};
  }

  std::shared_ptr<const std::vector<std::int64_t>> epochOrder(int epoch) {
    std::lock_guard<std::mutex> lock(orderMutex);
    if (epoch != orderEpoch) {
      auto o = std::make_shared<std::vector<std::int64_t>>(train);
      std::mt19937_64 rng(opt.seed * 7919ull + static_cast<std::uint64_t>(epoch));
      std::shuffle(o->begin(), o->end(), rng);
      order = std::move(o);
      orderEpoch = epoch;
    }
    return order;
  }

  // The compute-dtype weights from the float32 ones.
  void refreshCopies() {
    if (!flatLow.defined()) return model.refreshComputeCopies();
    torch::NoGradGuard noGrad;
    flatLow.copy_(flat);
  }
  // The compute copies' gradients of a backward added into flatGrad (foldComputeGradients), and
  // taken off the leaves for the next backward. One kernel on a GPU where every gradient is a
  // contiguous bf16 tensor of its slice's size (autograd hands them over as computed); ATen's add
  // for any other.
  void foldComputeGradients() {
    if (folds.empty()) return;
    torch::NoGradGuard noGrad;
    std::vector<const std::uint16_t*> src;
    std::vector<float*> dst;
    std::vector<std::int64_t> counts;
    std::vector<torch::Tensor> held; // alive until the kernel is queued (then freed in stream order)
    for (auto& [low, slice] : folds) {
      torch::Tensor g = low.grad();
      if (!g.defined()) continue; // not used by this forward
      low.mutable_grad() = torch::Tensor();
#ifdef ATLASCOPE_FUSED_KERNELS
      if (g.is_cuda() && model.fusedKernels() && g.scalar_type() == torch::kBFloat16 && g.is_contiguous() &&
          g.numel() == slice.numel() && g.device() == slice.device()) {
        src.push_back(static_cast<const std::uint16_t*>(g.data_ptr()));
        dst.push_back(slice.data_ptr<float>());
        counts.push_back(g.numel());
        held.push_back(std::move(g));
        continue;
      }
#endif
      slice.add_(g);
    }
#ifdef ATLASCOPE_FUSED_KERNELS
    if (!src.empty() && !cuda::foldGradientsBf16(src.data(), dst.data(), counts.data(), static_cast<int>(src.size()),
                                                 at::cuda::getCurrentCUDAStream(flatGrad.device().index()).stream()))
      throw Error("the gradient fold kernel could not run (" + std::to_string(src.size()) + " gradients)");
#endif
  }
  // Whether a step's forward casts the weights first (not when the optimiser step wrote them).
  bool castsInStep() const { return model.computeType() != torch::kFloat32 && !adamCasts; }

  // torch.optim.Adam's update (L2 weight decay added to the gradient, bias corrections).
  void adamStep(double lr) {
    torch::NoGradGuard noGrad;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++adamSteps;
#ifdef ATLASCOPE_FUSED_KERNELS
    if (fusedAdam) {
      const double c1 = 1 - std::pow(b1, static_cast<double>(adamSteps)),
                   c2 = 1 - std::pow(b2, static_cast<double>(adamSteps));
      if (cuda::adamStep(
              flat.data_ptr<float>(), flatGrad.data_ptr<float>(), expAvg.data_ptr<float>(), expAvgSq.data_ptr<float>(),
              flatLow.defined() ? static_cast<std::uint16_t*>(flatLow.data_ptr()) : nullptr, flat.numel(),
              static_cast<float>(lr / c1), static_cast<float>(b1), static_cast<float>(b2), static_cast<float>(eps),
              static_cast<float>(opt.weightDecay), static_cast<float>(std::sqrt(c2)),
              at::cuda::getCurrentCUDAStream(flat.device().index()).stream()))
        return;
      // Not launched: ATen's operations below (which cast the compute copies after them).
      fusedAdam = false;
      if (opt.onNotice) opt.onNotice("the fused Adam kernel could not run: ATen's Adam from here on");
    }
#endif
    torch::Tensor g = flatGrad;
    if (opt.weightDecay != 0) g = g.add(flat, opt.weightDecay);
    expAvg.mul_(b1).add_(g, 1 - b1);
    expAvgSq.mul_(b2).addcmul_(g, g, 1 - b2);
    const double c1 = 1 - std::pow(b1, static_cast<double>(adamSteps)),
                 c2 = 1 - std::pow(b2, static_cast<double>(adamSteps));
    const torch::Tensor denom = (expAvgSq.sqrt() / std::sqrt(c2)).add_(eps);
    flat.addcdiv_(expAvg, denom, -lr / c1);
    if (adamCasts) refreshCopies();
  }

  // Neighbourhoods of the given cells as a list (indices into the whole table).
  NeighborhoodList hoodsOf(const std::vector<std::int64_t>& cells) const {
    NeighborhoodList h;
    h.indptr.push_back(0);
    std::vector<std::int32_t> buf;
    for (std::int64_t c : cells) {
      buf.clear();
      index->neighbors(c, buf);
      h.indices.insert(h.indices.end(), buf.begin(), buf.end());
      h.indptr.push_back(static_cast<std::int64_t>(h.indices.size()));
    }
    return h;
  }

  // Packed batches of the given cells (table rows), their neighbourhoods as observed tokens, in
  // host memory (pinned for a GPU; toDevice moves them). On a GPU their shapes are rounded to
  // multiples of TrainOptions::tokenMultiple tokens and 32 neighbours (PackShape), so that steps
  // repeat a few shapes.
  std::vector<Batch> batchesOf(const std::vector<std::int64_t>& cells) const {
    const NeighborhoodList h = hoodsOf(cells);
    // Packed batches (packBatch): projections and feed-forwards on real tokens only, attention in
    // the padded layout. Sorted by size, so that a step needing several micro-batches (the CPU's
    // small ones) pads each to its own longest. One micro-batch per step on a GPU: each costs
    // ~1,000 eager operations (~40 ms of host time measured on the H200 machine), so splitting
    // the step slowed it (16k-token buckets: 3,900 cells/s; 262k: 11,700). The summed loss does
    // not depend on how the cells are grouped.
    std::vector<std::int64_t> order(cells.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&h](std::int64_t a, std::int64_t b) { return h.size(a) < h.size(b); });
    std::vector<Batch> out;
    for (const auto& [first, last] : planBatches(h, order, microTokens()).ranges) {
      Batch b = makeBatch(h, order, first, last, 0, torch::kCPU);
      // makeBatch numbers cells by list position: map them to table rows (padding too).
      auto* ref = b.reference.data_ptr<std::int64_t>();
      auto* obs = b.observed.data_ptr<std::int64_t>();
      const auto* val = b.valid.data_ptr<bool>();
      const std::int64_t N = b.observed.size(1);
      for (std::int64_t k = 0; k < b.reference.size(0); ++k) {
        ref[k] = cells[static_cast<std::size_t>(ref[k])];
        for (std::int64_t j = 0; j < N; ++j)
          if (!val[k * N + j]) obs[k * N + j] = ref[k];
      }
      Batch packed = packBatch(b, model.trainingPackShape(opt.tokenMultiple, opt.virtualZeroSlots));
      out.push_back(device().is_cuda() ? pinned(std::move(packed)) : std::move(packed));
    }
    return out;
  }

  // The summed loss over the batches (on the device; one value, no synchronisation per batch);
  // backward when `grad`.
  torch::Tensor lossOver(const std::vector<Batch>& batches, bool grad, double scale) {
    torch::Tensor total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device()));
    // Gradients a failed backward (or graph capture) left on the compute copies are not this one's.
    if (grad)
      for (auto& fold : folds) fold.first.mutable_grad() = torch::Tensor();
    for (std::size_t i = 0; i < batches.size(); ++i) {
      const Batch& b = batches[i];
      mark(nullptr);
      if (grad && castsInStep()) refreshCopies();
      mark("weight casts");
      const Output o = model.forward(inputs(), types, b, opt.fusedHeads ? Heads::logits : Heads::values,
                                     grad ? opt.profile : nullptr);
      mark(nullptr);
      const torch::Tensor target = expression.index_select(0, b.reference);
      const torch::Tensor nll =
          (o.headLogits.defined() ? zinbHeadsRowMean(target, o.headLogits, opt.fusedLoss)
                                  : zinbNllRowMean(target, o.mu, o.theta, o.ziLogits, opt.fusedLoss))
              .sum();
      total += nll.detach();
      mark("loss");
      if (grad && reducer && i + 1 == batches.size()) reducer->arm(); // the step's last backward
      if (grad) (nll * scale).backward();
      if (grad) foldComputeGradients();
      mark("backward");
    }
    if (grad && reducer) reducer->finish();
    return total;
  }

  // The optimiser's state in the order of model.parameters(), from the layout of flat (and back).
  torch::Tensor canonical(const torch::Tensor& t) const {
    std::vector<torch::Tensor> parts;
    for (const auto& [offset, count] : layout) parts.push_back(t.narrow(0, offset, count));
    return torch::cat(parts);
  }
  void fromCanonical(torch::Tensor& t, const torch::Tensor& c) const {
    std::int64_t at = 0;
    for (const auto& [offset, count] : layout) {
      t.narrow(0, offset, count).copy_(c.narrow(0, at, count));
      at += count;
    }
  }

  // Profiling: the seconds since the last mark go to `part` (nullptr: restart the clock).
  std::chrono::steady_clock::time_point lastMark;
  void mark(const char* part) {
    if (!opt.profile) return;
    if (device().is_cuda()) torch::cuda::synchronize();
    const auto now = std::chrono::steady_clock::now();
    if (part) (*opt.profile)[part] += std::chrono::duration<double>(now - lastMark).count();
    lastMark = now;
  }
};

Trainer::Trainer(CellTransformer& model, torch::Tensor expression, torch::Tensor types, std::vector<float> x,
                 std::vector<float> y, std::vector<std::int64_t> section, TrainOptions options)
    : impl_(new Impl(model)) {
  Impl& m = *impl_;
  // Training steps and validation in the model's own precision: FP8's weights are derived from
  // the float32 ones once, and the steps change those in place.
  model.setFp8FeedForward(false);
  // The targets stay float32 on the device too: counts are exp(x) - 1 of these values.
  m.expression = expression.to(model.device(), torch::kFloat32).contiguous();
  m.types = types.to(model.device(), torch::kInt64).contiguous();
  m.x = std::move(x);
  m.y = std::move(y);
  m.section = std::move(section);
  m.opt = options;
  const std::int64_t n = m.expression.size(0);
  if (options.computeInputs && model.computeType() != torch::kFloat32 && m.expression.dim() == 2 &&
      m.expression.size(1) == model.config().genes) {
    // On a GPU only where the copy takes at most an eighth of its memory (4M cells x 500 genes in
    // bf16: 4 GB).
    bool room = true;
#ifdef ATLASCOPE_FUSED_KERNELS
    if (model.device().is_cuda())
      room = static_cast<double>(n) * static_cast<double>(model.paddedGenes()) * 2 <=
             static_cast<double>(at::cuda::getDeviceProperties(model.device().index())->totalGlobalMem) / 8;
#endif
    if (room) {
      // Rows padded to 16 bytes (forward() reads the panel's columns): ATen's gather of 500 bf16
      // (1,000 bytes) a row ran element by element, 0.15 ms a step against ~0.05.
      m.computeInputs = torch::zeros({n, model.paddedGenes()}, m.expression.options().dtype(model.computeType()));
      m.computeInputs.narrow(1, 0, m.expression.size(1)).copy_(m.expression);
    }
  }
  if (n < 2) throw Error("training needs at least two cells");
  NeighborhoodOptions no;
  no.cap = options.cap;
  no.seed = options.seed;
  m.index = std::make_unique<NeighborhoodIndex>(m.x.data(), m.y.data(), m.section.data(), n, no);
  // The 80/20 split over cells, seeded.
  std::vector<std::int64_t> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(all.begin(), all.end(), rng);
  const auto nVal =
      static_cast<std::size_t>(std::max<double>(1, std::floor(options.validationFraction * static_cast<double>(n))));
  m.validation.assign(all.begin(), all.begin() + static_cast<long>(nVal));
  m.train.assign(all.begin() + static_cast<long>(nVal), all.end());
  std::sort(m.train.begin(), m.train.end());
  if (static_cast<std::int64_t>(m.validation.size()) > options.validationCells)
    m.validation.resize(static_cast<std::size_t>(options.validationCells));
  // Parameters become slices of one flat float32 buffer (leaves still: they keep their names,
  // shapes and .grad), their gradients slices of another, laid out in the order the backward
  // completes them (backwardRank), so that gradient buckets are contiguous slices.
  std::int64_t total = 0;
  std::vector<std::pair<int, std::size_t>> byRank; // (backward rank, index in parameters())
  for (const auto& [k, t] : model.parameters()) {
    byRank.emplace_back(backwardRank(k, model.config()), byRank.size());
    total += slotSize(t.numel());
  }
  std::stable_sort(byRank.begin(), byRank.end());
  const auto fo = torch::TensorOptions().dtype(torch::kFloat32).device(model.device());
  m.flat = torch::zeros({total}, fo);
  m.comm = torch::zeros({total + 2}, fo);
  m.tail = torch::zeros({2}, fo);
  m.flatGrad = m.comm.narrow(0, 0, total);
  m.expAvg = torch::zeros({total}, fo);
  m.expAvgSq = torch::zeros({total}, fo);
  std::vector<std::pair<std::string, torch::Tensor*>> params;
  for (auto& [k, t] : model.mutableParameters()) params.emplace_back(k, &t);
  m.layout.resize(params.size());
  if (model.computeType() != torch::kFloat32 && options.flatComputeCopies)
    m.flatLow = torch::zeros({total}, fo.dtype(model.computeType()));
  std::vector<torch::Tensor> leaves, lowLeaves; // in layout order (lowLeaves: undefined where none)
  // Gradient buckets count each compute copy's gradient as autograd adds it into its slice: they
  // keep that addition (TrainOptions::foldComputeGradients).
  const bool buckets = options.dist && options.dist->size() > 1 && options.allReduce == "buckets";
  const bool fold = options.foldComputeGradients && !buckets;
  StateDict copies;
  std::int64_t offset = 0;
  for (const auto& [rank, i] : byRank) {
    torch::Tensor& t = *params[i].second;
    const std::int64_t count = t.numel();
    torch::Tensor slot = m.flat.narrow(0, offset, count);
    slot.copy_(t.detach().reshape({-1}));
    torch::Tensor leaf = slot.view(t.sizes()).detach();
    leaf.set_requires_grad(true);
    const torch::Tensor grad = m.flatGrad.narrow(0, offset, count).view(t.sizes());
    leaf.mutable_grad() = grad;
    t = leaf;
    leaves.push_back(leaf);
    // The compute copy is a leaf of its own whose gradient (in the compute dtype) is added into the
    // same float32 slice: one addition per parameter where a cast, its backward and the
    // accumulation were three operations.
    torch::Tensor low;
    if (m.flatLow.defined() && t.dim() >= 1) {
      low = m.flatLow.narrow(0, offset, count).view(t.sizes()).detach();
      low.set_requires_grad(true);
      if (fold)
        m.folds.emplace_back(low, grad);
      else
        low.mutable_grad() = grad;
      copies[params[i].first] = low;
    }
    lowLeaves.push_back(low);
    m.layout[i] = {offset, count};
    offset += slotSize(count);
  }
#ifdef ATLASCOPE_FUSED_KERNELS
  m.fusedAdam = model.device().is_cuda() && model.fusedKernels();
#endif
  m.adamCasts = m.fusedAdam && m.flatLow.defined();
  if (m.flatLow.defined()) model.setComputeCopies(copies);
  if (options.cudaGraphs && StepGraphs::available(model.device()))
    // Staged copies pay only where the next step is queued while the device runs this one.
    m.graphs = std::make_unique<StepGraphs>(model.device(), options.stagedBatchCopies && options.overlapSteps &&
                                                                !(options.dist && options.dist->size() > 1));
  if (options.dist && options.dist->size() > 1) {
    // Every rank starts from rank 0's weights (as DDP does).
    options.dist->broadcast(m.flat, 0);
    if (options.allReduce == "buckets") {
      // Buckets of about bucketMiB over the layout; a parameter is never split.
      const auto cap = static_cast<std::int64_t>(std::max(0.0, options.bucketMiB) * 1024 * 1024 / 4);
      std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
      std::vector<std::pair<torch::Tensor, int>> members;
      std::int64_t start = 0;
      for (std::size_t j = 0; j < leaves.size(); ++j) {
        const auto& [rank, i] = byRank[j];
        members.emplace_back(leaves[j], static_cast<int>(ranges.size()));
        if (lowLeaves[j].defined()) members.emplace_back(lowLeaves[j], static_cast<int>(ranges.size()));
        const std::int64_t end = m.layout[i].first + m.layout[i].second;
        if (end - start >= cap || j + 1 == leaves.size()) {
          ranges.emplace_back(start, end - start);
          start = end;
        }
      }
      // Made on the stream the steps run on: the gradient accumulators it creates keep that stream
      // (a CUDA graph capture cannot contain work on another).
      const std::shared_ptr<void> onStream = m.graphs ? m.graphs->scope() : nullptr;
      m.reducer = std::make_unique<GradientBuckets>(*options.dist, m.flatGrad, ranges, members, model.device());
    } else if (options.allReduce != "after" && options.allReduce != "after-polling")
      throw Error("unknown all-reduce mode '" + options.allReduce + "' (buckets, after or after-polling)");
  }
  if (model.computeType() != torch::kFloat32) m.refreshCopies();
  // The GPU's variable-length attention against the padded path, on validation cells, once per
  // run: a LibTorch whose flash kernels disagree (or fail) falls back to the padded path. The
  // variable-length forward runs with gradients on, as the steps run it (their attention kernels:
  // the short-attention training kernels or flash), and is then dropped.
  if (model.variableLengthAttention()) {
    torch::NoGradGuard noGrad;
    std::vector<std::int64_t> some(m.validation.begin(),
                                   m.validation.begin() + std::min<std::size_t>(256, m.validation.size()));
    try {
      const Batch b = toDevice(m.batchesOf(some).front(), model.device());
      torch::Tensor fast;
      {
        const torch::AutoGradMode withGradients(true);
        fast = model.forward(m.inputs(), m.types, b).mu.detach();
      }
      model.setVariableLengthAttention(false);
      const torch::Tensor padded = model.forward(m.inputs(), m.types, b).mu;
      m.attentionCheck = ((fast - padded).abs().mean() / padded.abs().mean()).item<double>();
      if (m.attentionCheck < 0.02)
        model.setVariableLengthAttention(true);
      else if (options.onNotice)
        options.onNotice("variable-length attention off: it differs from the padded path by " +
                         std::to_string(m.attentionCheck));
    } catch (const std::exception& e) {
      model.setVariableLengthAttention(false);
      if (options.onNotice) options.onNotice(std::string("variable-length attention off: ") + e.what());
    }
  }
}

double Trainer::attentionCheck() const { return impl_->attentionCheck; }

bool Trainer::gathersComputeInputs() const { return impl_->computeInputs.defined(); }

bool Trainer::foldsComputeGradients() const { return !impl_->folds.empty(); }

std::pair<double, double> Trainer::batchSeconds() const {
  std::lock_guard<std::mutex> lock(impl_->buildMutex);
  return {impl_->batchWaitSeconds, impl_->batchBuildSeconds};
}

StepTimes Trainer::stepTimes() const {
  StepTimes t = impl_->times;
  {
    std::lock_guard<std::mutex> lock(impl_->buildMutex);
    t.validationBuildSeconds = impl_->validationBuildSeconds;
  }
  std::vector<double> v = impl_->replayIntervals;
  if (v.empty()) return t;
  std::sort(v.begin(), v.end());
  const auto at = [&v](double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
  t.replayMedian = at(0.5);
  t.replayP90 = at(0.9);
  t.replayMax = v.back();
  for (double x : v)
    if (x > 1.5 * t.replayMedian) {
      ++t.slowReplays;
      t.slowExcessSeconds += x - t.replayMedian;
    }
  return t;
}

int Trainer::graphs() const { return impl_->graphs ? impl_->graphs->graphs() : 0; }

Trainer::~Trainer() {
  if (impl_->graphs) {
    try {
      impl_->graphs->synchronize(); // before the weights are read below
    } catch (...) {}
  }
  impl_->dropAhead();
  impl_->dropValidationBuilds();
  impl_->reducer.reset();
  for (auto& [k, t] : impl_->model.mutableParameters()) {
    t.mutable_grad() = torch::Tensor();
    t.set_requires_grad(false);
  }
  if (impl_->flatLow.defined()) {
    torch::NoGradGuard noGrad;
    impl_->model.setComputeCopies({}); // the model's own again, from the trained weights
  }
  delete impl_;
}

double Trainer::step() {
  const double loss = lossOf(queueStep(false));
  if (impl_->graphs) impl_->graphs->synchronize();
  return loss;
}

double Trainer::lossOf(const Queued& q) {
  const double loss = q.loss();
  if (!std::isfinite(loss))
    throw Error("training stopped: the loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                " at step " + std::to_string(q.step - 1) +
                "; the last checkpoint is kept (lower the learning rate and resume)");
  return loss;
}

Trainer::Queued Trainer::queueStep(bool mayDefer) {
  Impl& m = *impl_;
  const std::vector<std::int64_t> all = m.stepCells(state_.epoch, state_.position);
  const std::int64_t take = static_cast<std::int64_t>(all.size()); // the whole step's, over every rank
  const std::vector<std::int64_t> cells = m.shareOf(all);
  std::vector<Batch> batches;
  m.mark(nullptr);
  const auto waitStart = std::chrono::steady_clock::now();
  if (!m.ahead.empty() && m.ahead.front().first != std::make_pair(state_.epoch, state_.position))
    m.dropAhead(); // built for another position (a resumed state)
  if (!m.ahead.empty()) {
    batches = m.ahead.front().second.get();
    m.ahead.pop_front();
  } else {
    batches = m.timedBatchesOf(state_.epoch, state_.position);
  }
  m.batchWaitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - waitStart).count();
  for (const Batch& b : batches) {
    const std::int64_t B = b.reference.size(0);
    m.times.rows += b.order.defined() ? b.order.size(0) : B * (b.observed.size(1) + 2);
    // Packed: the first B sequences are the neighbourhoods (observed cells, class token, the slot
    // where stored).
    if (b.cuSeqlens.defined() && b.cuSeqlens.device().is_cpu()) {
      const auto* cu = b.cuSeqlens.data_ptr<std::int32_t>();
      m.times.realRows += cu[B];
      auto& tiles = m.times.sequenceTiles;
      if (tiles.empty()) tiles.assign(StepTimes::kTileBins, 0);
      for (std::int64_t i = 0; i < B; ++i) {
        const std::int64_t t = (cu[i + 1] - cu[i] + 15) / 16; // 0: an empty sequence, which no kernel runs
        if (t > 0) ++tiles[static_cast<std::size_t>(std::min<std::int64_t>(t, StepTimes::kTileBins) - 1)];
      }
      continue;
    }
    const auto* v = b.valid.data_ptr<bool>();
    std::int64_t observed = 0;
    for (std::int64_t i = 0, n = b.valid.numel(); i < n; ++i) observed += v[i] ? 1 : 0;
    m.times.realRows += observed + 2 * B;
  }
  // Where the following step starts, and the next steps' batches built while this one runs.
  const TrainState after = m.advance(state_);
  TrainState cursor = m.ahead.empty() ? after : m.aheadEnd;
  while (static_cast<int>(m.ahead.size()) < m.lookahead() && cursor.epoch < m.opt.epochs &&
         (m.opt.maxSteps <= 0 || cursor.step < m.opt.maxSteps)) {
    const TrainState at = cursor;
    m.ahead.emplace_back(std::make_pair(at.epoch, at.position),
                         std::async(std::launch::async, [&m, at] { return m.timedBatchesOf(at.epoch, at.position); }));
    cursor = m.advance(cursor);
    m.aheadEnd = cursor;
  }
  m.mark("waiting for batches");
  // With graphs, all of the step runs on their stream (eager steps too: the graphs' warm-up).
  const std::shared_ptr<void> onStream = m.graphs ? m.graphs->scope() : nullptr;
  const bool hadGraphs = m.graphs != nullptr; // graphs dropped in this step: synchronised below
  const double scale = 1.0 / static_cast<double>(take);
  Queued queued;
  queued.step = state_.step + 1;
  torch::Tensor total; // this rank's summed loss, on the device
  bool done = false;
  // Full steps in one batch are replayed; the first steps of a run (warm-up: lazy initialisation
  // must not happen inside a capture) and an epoch's short last step run eagerly.
  if (m.graphs && m.eagerSteps >= 2 && batches.size() == 1 && take == m.opt.cellsPerStep && !m.opt.profile) {
    try {
      const int shapes = m.graphs->graphs();
      total = m.graphs->run(batches[0], [&m, scale](const Batch& b) {
        m.flatGrad.zero_();
        return m.lossOver({b}, true, scale);
      });
      done = true;
      queued.kind = m.graphs->graphs() != shapes ? Queued::Capture : Queued::Replay;
    } catch (const std::exception& e) {
      // Not fatal: the run goes on eagerly, and says why.
      if (m.opt.onNotice) m.opt.onNotice(std::string("CUDA graphs off for this run: ") + e.what());
      m.graphs->synchronize();
      m.graphs.reset();
    }
  }
  if (!done) {
    std::vector<Batch> onDevice;
    for (const Batch& b : batches) onDevice.push_back(toDevice(b, m.device()));
    m.flatGrad.zero_();
    total = m.lossOver(onDevice, true, scale);
    ++m.eagerSteps;
  }
  if (m.opt.dist && m.opt.dist->size() > 1) {
    // The gradients (already scaled by the whole step's cell count; with buckets, summed during
    // the backward), the loss and the ranks' cancel requests.
    m.mark(nullptr);
    const std::int64_t n = m.flatGrad.numel();
    const bool withGrads = !m.reducer;
    torch::Tensor& buffer = withGrads ? m.comm : m.tail;
    const std::int64_t at = withGrads ? n : 0;
    buffer.narrow(0, at, 1).copy_(total.reshape({1}));
    buffer.narrow(0, at + 1, 1).fill_(m.opt.cancel && m.opt.cancel->isCancelled() ? 1.0 : 0.0);
    if (m.opt.allReduce == "after-polling")
      m.opt.dist->allReduceSumPolling(buffer);
    else
      m.opt.dist->allReduceSum(buffer);
    const torch::Tensor tail = buffer.narrow(0, at, 2).cpu();
    const double loss = static_cast<double>(tail[0].item<float>()) / static_cast<double>(take);
    m.mark("all-reduce");
    // Every rank sees the same requests: all stop here, before the optimiser step, so the
    // weights and the state still agree.
    if (tail[1].item<float>() > 0) throw Cancelled();
    queued.loss = [loss] { return loss; };
  } else if (mayDefer && m.opt.overlapSteps) {
    // Read after the next step is queued (run()); the optimiser step follows on the same stream.
    // With graphs, a copy behind this step's work on their stream (eager steps run there too);
    // without them (the CPU; a GPU's default stream), the tensor itself, read in stream order.
    if (m.graphs)
      queued.loss = [value = m.graphs->later(total), take] { return value() / static_cast<double>(take); };
    else
      queued.loss = [total, take] { return total.item<double>() / static_cast<double>(take); };
    queued.deferred = true;
  } else {
    const double loss = total.item<double>() / static_cast<double>(take);
    queued.loss = [loss] { return loss; };
  }
  // A step whose loss is read now is checked before its optimiser step (its weights stay as they
  // were); a deferred one, by run() after the next step is queued.
  if (!queued.deferred) lossOf(queued);
  m.mark(nullptr);
  m.adamStep(learningRate(m.opt, state_.step));
  // Nothing of the step may still run on the graphs' stream when others use the weights: run()
  // and step() synchronise before validation, checkpoints and the end of the run.
  if (m.graphs && !queued.deferred) m.graphs->synchronize();
  // Graphs dropped in this step (a failed capture): its eager work and Adam ran on their stream,
  // which neither the next step (on the default stream) nor a lazy read of its loss would wait for.
  if (!m.graphs && hadGraphs) torch::cuda::synchronize(m.device().index());
  m.mark("optimiser");
  if (m.opt.profile) (*m.opt.profile)["micro-batches"] += static_cast<double>(batches.size());
  ++state_.step;
  if (m.opt.dist && m.opt.dist->size() > 1 && m.opt.checkWeightsEvery > 0 &&
      state_.step % m.opt.checkWeightsEvery == 0) {
    // The same reduced gradients and the same Adam on every rank: the weights must agree bit for bit.
    torch::NoGradGuard noGrad;
    const torch::Tensor s = m.flat.to(torch::kFloat64).sum().reshape({1});
    torch::Tensor both = torch::cat({s, -s});
    m.opt.dist->allReduceMax(both);
    const torch::Tensor h = both.cpu();
    const double hi = h[0].item<double>(), lo = -h[1].item<double>();
    if (hi != lo)
      throw Error("the ranks' weights differ after step " + std::to_string(state_.step) + " (checksums from " +
                  std::to_string(lo) + " to " + std::to_string(hi) + ")");
  }
  state_.position = after.position;
  state_.epoch = after.epoch;
  return queued;
}

std::int64_t Trainer::stepsPerEpoch() const {
  const auto n = static_cast<std::int64_t>(impl_->train.size());
  return (n + impl_->opt.cellsPerStep - 1) / std::max<std::int64_t>(1, impl_->opt.cellsPerStep);
}

std::int64_t Trainer::totalSteps() const {
  const std::int64_t all = stepsPerEpoch() * impl_->opt.epochs;
  return impl_->opt.maxSteps > 0 ? std::min(all, impl_->opt.maxSteps) : all;
}

void Trainer::run() {
  Impl& m = *impl_;
  double stepSeconds = 0;
  std::int64_t cellsDone = 0;
  bool validatedLast = false;
  KernelTrace trace;
  // With ranks, rank 0 traces (its file alone).
  const bool tracing = !m.opt.traceFile.empty() && (!m.opt.dist || m.opt.dist->rank() == 0);
  const bool oneRank = !(m.opt.dist && m.opt.dist->size() > 1);
  // The step queued last whose loss is not read yet (TrainOptions::overlapSteps), and its cells.
  std::optional<Queued> pending;
  std::int64_t pendingCells = 0;
  auto report = [&](const Queued& q, std::int64_t cells) {
    const auto t = std::chrono::steady_clock::now();
    const double loss = lossOf(q); // waits for the step's device work (not the next step's)
    stepSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    cellsDone += cells;
    if (m.opt.onStep)
      m.opt.onStep(q.step, loss, learningRate(m.opt, q.step - 1),
                   static_cast<double>(cellsDone) / std::max(1e-9, stepSeconds));
  };
  auto flush = [&] {
    if (!pending) return;
    const Queued q = std::move(*pending);
    pending.reset();
    report(q, pendingCells);
  };
  // However run() ends (a cancel, an error, the last step), nothing of a step may still run on
  // the graphs' stream when the caller reads the weights.
  struct Drain {
    Impl& m;
    ~Drain() {
      try {
        if (m.graphs) m.graphs->synchronize();
      } catch (...) {} // the error that ended the run is the one to report
    }
  } drain{m};
  std::int64_t runSteps = 0;
  Queued::Kind previousKind = Queued::Eager;
  auto validateTimed = [&] {
    const auto start = std::chrono::steady_clock::now();
    m.opt.onValidation(validate());
    m.times.validationSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while (state_.epoch < m.opt.epochs && (m.opt.maxSteps <= 0 || state_.step < m.opt.maxSteps)) {
    // With ranks, a cancel is agreed on inside the step (all stop at the same one). A queued step
    // is finished first: its loss checked, so that a cancelled run keeps only finite weights.
    if (m.opt.cancel && oneRank && m.opt.cancel->isCancelled()) {
      flush();
      m.opt.cancel->throwIfCancelled();
    }
    if (tracing && (runSteps == m.opt.traceFrom || runSteps == m.opt.traceFrom + 5)) {
      // The window holds these five steps' work alone: none of a step before it still queued,
      // all of theirs done when it closes (steps otherwise overlap, TrainOptions::overlapSteps).
      flush();
      if (m.graphs) m.graphs->synchronize();
      if (runSteps == m.opt.traceFrom)
        trace.start();
      else
        trace.stop(m.opt.traceFile);
    }
    ++runSteps;
    // The next validation's first batches, built on host threads while the steps run.
    if (m.opt.onValidation && m.opt.validationAhead) m.startValidationBuilds();
    const TrainState before = state_;
    const auto t = std::chrono::steady_clock::now();
    Queued q = queueStep(oneRank);
    const Queued::Kind kind = q.kind;
    stepSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    const std::int64_t cells =
        std::min<std::int64_t>(m.opt.cellsPerStep, static_cast<std::int64_t>(m.train.size()) - before.position);
    flush(); // the step before this one: its work ran while this one's was queued
    if (q.deferred) {
      pending = std::move(q);
      pendingCells = cells;
    } else {
      report(q, cells);
    }
    const bool due = m.opt.validateEvery > 0 ? state_.step % m.opt.validateEvery == 0 : state_.epoch != before.epoch;
    validatedLast = false;
    const bool validating = due && m.opt.onValidation;
    if (validating) flush(); // this step's wait is its own time, not validation's
    const double iteration = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    StepTimes& st = m.times;
    (kind == Queued::Replay    ? st.replaySeconds
     : kind == Queued::Capture ? st.captureSeconds
                               : st.eagerSeconds) += iteration;
    ++(kind == Queued::Replay ? st.replays : kind == Queued::Capture ? st.captures : st.eager);
    // An iteration also waits for the step before it: after a capture or an eager step that wait
    // is theirs, so the spread counts replays that follow replays.
    if (kind == Queued::Replay && previousKind == Queued::Replay) m.replayIntervals.push_back(iteration);
    previousKind = kind;
    if (validating) {
      validateTimed();
      validatedLast = true;
    }
  }
  flush();
  if (tracing) {
    // A run shorter than the window: its steps' work done (eager steps too, on any stream).
    if (m.device().is_cuda()) torch::cuda::synchronize(m.device().index());
    trace.stop(m.opt.traceFile);
  }
  if (!validatedLast && m.opt.onValidation) validateTimed();
}

ValidationMetrics Trainer::validate() {
  Impl& m = *impl_;
  std::map<std::string, double>* profile = m.opt.validationProfile;
  auto last = std::chrono::steady_clock::now();
  auto mark = [&](const char* part) { // TrainOptions::validationProfile
    if (!profile) return;
    if (m.device().is_cuda()) torch::cuda::synchronize(m.device().index());
    const auto now = std::chrono::steady_clock::now();
    (*profile)[part] += std::chrono::duration<double>(now - last).count();
    last = now;
  };
  if (m.graphs) m.graphs->synchronize(); // the last queued step's optimiser step, before its weights are read
  mark("last step");
  torch::NoGradGuard noGrad;
  // The compute copies are rebuilt here: after graph replays the model's own copies are stale.
  if (m.model.computeType() != torch::kFloat32) m.refreshCopies(); // the weights of the last step
  // Baseline: each gene's training mean count, NB dispersion by the method of moments, no zero inflation.
  torch::Tensor mean, theta;
  if (m.opt.validationAhead) {
    m.makeBaseline();
    mean = m.baselineMean;
    theta = m.baselineTheta;
  } else {
    const torch::Tensor trainIdx = torch::tensor(m.train, torch::kInt64).to(m.device());
    const torch::Tensor trainCounts = torch::exp(m.expression.index_select(0, trainIdx)) - 1;
    mean = trainCounts.mean(0);
    const torch::Tensor var = trainCounts.var(0, false);
    theta = (mean * mean / (var - mean).clamp_min(1e-6)).clamp(1e-3, 1e6);
  }
  mark("baseline");
  auto pearson = [](const torch::Tensor& a, const torch::Tensor& b) { // per row
    const torch::Tensor ac = a - a.mean(1, true), bc = b - b.mean(1, true);
    return (ac * bc).sum(1) / (ac.norm(2, 1) * bc.norm(2, 1)).clamp_min(1e-12);
  };
  // The sums of the model's NLL and Pearson, the baseline's, and the cells: on the device, read
  // once at the end (validationAhead; before, after every batch).
  torch::Tensor sums = torch::zeros({5}, torch::TensorOptions().dtype(torch::kFloat64));
  torch::Tensor deviceSums = torch::zeros({5}, torch::TensorOptions().dtype(torch::kFloat64).device(m.device()));
  // Every chunk's host batches until the sums are read (toDevice copies without waiting): all of
  // the validation's, as the path before held them.
  std::vector<std::vector<Batch>> held;
  std::map<std::string, double> stages; // the forward's, with a profile
  auto score = [&](const Batch& host) {
    const Batch b = toDevice(host, m.device());
    mark("copies");
    const Output o = m.model.forward(m.inputs(), m.types, b, true, profile ? &stages : nullptr);
    mark("forward");
    const torch::Tensor target = m.expression.index_select(0, b.reference);
    const torch::Tensor counts = torch::exp(target) - 1;
    const std::int64_t B = b.reference.size(0);
    const torch::Tensor predicted = (1 - torch::sigmoid(o.ziLogits)) * o.mu;
    const torch::Tensor bm = mean.view({1, -1}).expand({B, -1}), bt = theta.view({1, -1}).expand({B, -1});
    const torch::Tensor s =
        torch::stack({zinbNll(target, o.mu, o.theta, o.ziLogits).mean(1).sum(), pearson(predicted, counts).sum(),
                      zinbNll(target, bm, bt, torch::full({B, mean.size(0)}, -20.0, bm.options())).mean(1).sum(),
                      pearson(bm + 1e-9 * torch::randn_like(bm), counts).sum(),
                      torch::full({}, static_cast<double>(B), counts.options())})
            .to(torch::kFloat64);
    if (m.opt.validationAhead)
      deviceSums += s;
    else
      sums += s.cpu();
    mark("scores");
  };
  if (m.opt.validationAhead) {
    // The chunks in order from the first (Reset leaves none started past it, run() starts them from 0).
    m.splitValidation();
    struct Reset { // however this ends, the next validation starts from the first chunk
      Impl& m;
      ~Reset() {
        if (!m.validationBuilt.empty()) m.dropValidationBuilds();
        m.validationQueued = 0;
      }
    } reset{m};
    for (std::size_t i = 0; i < m.validationChunks.size(); ++i) {
      m.startValidationBuilds();
      if (m.validationBuilt.empty() || m.validationBuilt.front().first != i)
        throw Error("validation's batches out of order (chunk " + std::to_string(i) + ")");
      const auto wait = std::chrono::steady_clock::now();
      held.push_back(m.validationBuilt.front().second.get());
      m.validationBuilt.pop_front();
      m.times.validationWaitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait).count();
      mark("batches");
      for (const Batch& host : held.back()) score(host);
    }
    sums = deviceSums.cpu();
  } else {
    const auto wait = std::chrono::steady_clock::now();
    held.push_back(m.batchesOf(m.shareOf(m.validation)));
    const double built = std::chrono::duration<double>(std::chrono::steady_clock::now() - wait).count();
    m.times.validationWaitSeconds += built;
    {
      std::lock_guard<std::mutex> lock(m.buildMutex);
      m.validationBuildSeconds += built;
    }
    mark("batches");
    for (const Batch& host : held.back()) score(host);
  }
  if (m.opt.dist && m.opt.dist->size() > 1) {
    // Each rank scored its share: the sums over every rank.
    torch::Tensor reduced = sums.to(m.device());
    m.opt.dist->allReduceSum(reduced);
    sums = reduced.cpu();
  }
  mark("scores");
  // The forward's stages, inside "forward" above.
  if (profile)
    for (const auto& [stage, seconds] : stages) (*profile)["forward: " + stage] += seconds;
  const auto* h = sums.data_ptr<double>();
  if (!(h[4] > 0)) throw Error("validation has no cells to score (validation cells must be at least 1)");
  ValidationMetrics v;
  v.nll = h[0] / h[4];
  v.pearson = h[1] / h[4];
  v.baselineNll = h[2] / h[4];
  v.baselinePearson = h[3] / h[4];
  return v;
}

void Trainer::saveState(const std::string& path) const {
  if (impl_->graphs) impl_->graphs->synchronize(); // Adam's moments as the last queued step left them
  // Adam's moments in HDF5 (exp_avg, exp_avg_sq: float32 in the order of parameters(); steps):
  // written as they are, where torch::save's archive took ~0.9 s for the released model's 144 MB
  // (most of a validation's checkpointing). Files of torch::save are still read (loadState).
  {
    Hdf5Writer out(path + ".adam");
    out.setStringAttribute("/", "format", "atlascope-adam");
    const torch::Tensor m1 = impl_->canonical(impl_->expAvg).cpu().contiguous(),
                        m2 = impl_->canonical(impl_->expAvgSq).cpu().contiguous();
    out.writeArray("/exp_avg", H5Type::Float32, {m1.numel()}, m1.data_ptr<float>());
    out.writeArray("/exp_avg_sq", H5Type::Float32, {m2.numel()}, m2.data_ptr<float>());
    const std::int64_t steps = impl_->adamSteps;
    out.writeArray("/steps", H5Type::Int64, {1}, &steps);
    out.commit();
  }
  const std::string s =
      nlohmann::json{{"step", state_.step}, {"epoch", state_.epoch}, {"position", state_.position}}.dump();
  writeFileAtomically(path, s.data(), s.size());
}

void Trainer::loadState(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FileError(path, "no training state to resume from");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception&) {
    throw FileError(path, "damaged training state");
  }
  try { // counts, range-checked: a float such as 1e300 cast to an integer is undefined
    const long long most = 1ll << 62;
    state_.step = jsonIntegerOrThrow(j.at("step"), 0, most, path, "step");
    state_.epoch = static_cast<int>(jsonIntegerOrThrow(j.at("epoch"), 0, 1 << 30, path, "epoch"));
    state_.position = jsonIntegerOrThrow(j.at("position"), 0, most, path, "position");
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("damaged training state: ") + e.what());
  }
  std::vector<torch::Tensor> adam;
  const std::string optPath = path + ".adam";
  if (isHdf5File(optPath)) {
    try {
      const Hdf5File f(optPath);
      for (const char* name : {"/exp_avg", "/exp_avg_sq"}) {
        NdArray<float> a = f.readFloat(name);
        adam.push_back(
            torch::from_blob(a.data.data(), {static_cast<std::int64_t>(a.data.size())}, torch::kFloat32).clone());
      }
      const NdArray<std::int64_t> steps = f.readInt64("/steps");
      if (steps.data.size() != 1 || steps.data[0] < 0) throw FileError(optPath, "damaged optimiser state (steps)");
      adam.push_back(torch::tensor({steps.data[0]}, torch::kInt64));
    } catch (const FileError&) {
      throw;
    } catch (const std::exception& e) {
      throw FileError(optPath, std::string("damaged optimiser state: ") + e.what());
    }
  } else {
    try { // written by torch::save (before 2026-12-05)
      torch::load(adam, optPath);
    } catch (const std::exception&) {
      throw FileError(optPath, "damaged or missing optimiser state");
    }
  }
  std::int64_t count = 0; // values in the order of parameters(), without the layout's gaps
  for (const auto& [offset, n] : impl_->layout) count += n;
  if (adam.size() != 3 || adam[0].numel() != count || adam[1].numel() != count)
    throw FileError(path + ".adam", "optimiser state of another model");
  torch::NoGradGuard noGrad;
  impl_->fromCanonical(impl_->expAvg, adam[0].to(impl_->expAvg.device()));
  impl_->fromCanonical(impl_->expAvgSq, adam[1].to(impl_->expAvgSq.device()));
  impl_->adamSteps = adam[2].item<std::int64_t>();
}

} // namespace atlascope::inference
