#include "inference/StepGraphs.h"

#include "core/Error.h"

#include <torch/torch.h>

#include <map>
#include <vector>

#if __has_include(<ATen/cuda/CUDAGraph.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define ATLASCOPE_WITH_CUDA_GRAPHS 1
#endif

namespace atlascope::inference {

#ifdef ATLASCOPE_WITH_CUDA_GRAPHS

namespace {
struct Captured {
  at::cuda::CUDAGraph graph;
  Batch inputs;         // static device tensors the graph reads
  torch::Tensor output; // written by each replay
  // Staged copies: the batch's device copy, made on the copy stream beside the previous replay, and
  // the events that order it with the copy into `inputs` on the graphs' stream (copied: the staging
  // is free again).
  Batch staging;
  at::cuda::CUDAEvent staged, copied;
};

void copyInto(Batch& to, const Batch& from) {
  const auto dst = to.tensors();
  const auto src = from.tensors();
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i]->copy_(*src[i], true);
}
} // namespace

struct StepGraphs::Impl {
  torch::Device device;
  c10::cuda::CUDAStream stream;
  c10::cuda::CUDAStream copies; // the staged batches' host-to-device copies
  bool staged;
  decltype(at::cuda::graph_pool_handle()) pool;
  std::map<std::vector<std::int64_t>, std::unique_ptr<Captured>> graphs;
  Impl(torch::Device d, bool stagedCopies)
      : device(d), stream(c10::cuda::getStreamFromPool(false, d.has_index() ? d.index() : 0)),
        copies(c10::cuda::getStreamFromPool(false, d.has_index() ? d.index() : 0)), staged(stagedCopies),
        pool(at::cuda::graph_pool_handle()) {}
};

bool StepGraphs::available(torch::Device device) { return device.is_cuda(); }

StepGraphs::StepGraphs(torch::Device device, bool stagedCopies) : impl_(std::make_unique<Impl>(device, stagedCopies)) {}

StepGraphs::~StepGraphs() {
  if (!impl_) return;
  impl_->copies.synchronize();
  impl_->stream.synchronize();
}

std::shared_ptr<void> StepGraphs::scope() { return std::make_shared<c10::cuda::CUDAStreamGuard>(impl_->stream); }

torch::Tensor StepGraphs::run(const Batch& batch, const std::function<torch::Tensor(const Batch&)>& body) {
  Impl& m = *impl_;
  c10::cuda::CUDAStreamGuard guard(m.stream);
  // (The layout too: a batch with virtual zero slots has B rows less for the same other sizes.)
  const std::vector<std::int64_t> key{batch.observed.size(0),  batch.observed.size(1), batch.rows.size(0),
                                      batch.cuSeqlens.size(0), batch.maxLength,        batch.virtualZeroSlot ? 1 : 0};
  auto it = m.graphs.find(key);
  if (it != m.graphs.end()) {
    Captured& c = *it->second;
    if (m.staged) {
      {
        // The host-to-device copies on a stream of their own: the trainer queues a step while the
        // device still runs the one before (TrainOptions::overlapSteps), so that they run beside
        // its replay instead of after it (~0.1 ms of a ~18 ms step at the released size). The
        // staging is free once the previous step's device copy read it, early in that step.
        const c10::cuda::CUDAStreamGuard onCopies(m.copies);
        c.copied.block(m.copies);
        copyInto(c.staging, batch);
        c.staged.record(m.copies);
      }
      c.staged.block(m.stream);
      copyInto(c.inputs, c.staging); // device to device, a few microseconds
      c.copied.record(m.stream);
    } else {
      copyInto(c.inputs, batch);
    }
    c.graph.replay();
    return c.output;
  }
  auto c = std::make_unique<Captured>();
  c->inputs = toDevice(batch, m.device); // ordinary allocations, before the capture
  if (m.staged) {
    c->staging = toDevice(batch, m.device);
    // The staging's allocation and first copy are the graphs' stream's: the copy stream's first
    // write to it (the next replay of this shape) waits for them.
    c->copied.record(m.stream);
  }
  // Thread-local capture: the batch builder thread keeps pinning host memory meanwhile, which a
  // global-mode capture would forbid to every thread.
  c->graph.capture_begin(m.pool, cudaStreamCaptureModeThreadLocal);
  try {
    c->output = body(c->inputs);
  } catch (...) {
    try {
      c->graph.capture_end();
    } catch (...) {}
    throw;
  }
  c->graph.capture_end();
  c->graph.replay();
  torch::Tensor out = c->output;
  m.graphs.emplace(key, std::move(c));
  return out;
}

void StepGraphs::synchronize() {
  impl_->copies.synchronize();
  impl_->stream.synchronize();
}

std::function<double()> StepGraphs::later(const torch::Tensor& scalar) {
  Impl& m = *impl_;
  c10::cuda::CUDAStreamGuard guard(m.stream);
  // A fresh pinned tensor each time (the caching host allocator keeps its block from reuse until
  // the copy is done), so that two pending values never share one.
  torch::Tensor host = torch::empty({1}, torch::TensorOptions().dtype(scalar.scalar_type()).pinned_memory(true));
  host.copy_(scalar.reshape({1}), /*non_blocking=*/true);
  auto done = std::make_shared<at::cuda::CUDAEvent>();
  done->record(m.stream);
  return [host, done] {
    done->synchronize();
    return host.to(torch::kFloat64).item<double>();
  };
}

int StepGraphs::graphs() const { return static_cast<int>(impl_->graphs.size()); }

#else

struct StepGraphs::Impl {};

bool StepGraphs::available(torch::Device) { return false; }

StepGraphs::StepGraphs(torch::Device, bool) { throw Error("CUDA graphs need a LibTorch build with CUDA"); }

StepGraphs::~StepGraphs() = default;

std::shared_ptr<void> StepGraphs::scope() { return nullptr; }

torch::Tensor StepGraphs::run(const Batch&, const std::function<torch::Tensor(const Batch&)>&) {
  throw Error("CUDA graphs need a LibTorch build with CUDA");
}

void StepGraphs::synchronize() {}

std::function<double()> StepGraphs::later(const torch::Tensor&) {
  throw Error("CUDA graphs need a LibTorch build with CUDA");
}

int StepGraphs::graphs() const { return 0; }

#endif

} // namespace atlascope::inference
