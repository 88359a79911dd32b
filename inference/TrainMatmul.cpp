// Training's products by a chosen cuBLASLt algorithm, and their bench (TrainMatmul.h).
#include "inference/TrainMatmul.h"

#include "inference/TensorBits.h"

#if defined(ATLASCOPE_WITH_CUDA_KERNELS) && defined(__has_include)
#if __has_include(<ATen/cuda/CUDAContext.h>)
#include "inference/Matmul.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define ATLASCOPE_TRAIN_MATMUL 1
#endif
#endif

#include <atomic>

namespace atlascope::inference {

namespace {
std::atomic<bool> gTuned{true};
// Products smaller than this (rows x n x k; the decoder's, ~2,048 rows) stay with ATen: timing
// their offers would load a dozen more kernels for microseconds.
constexpr double kTunedMinimum = 4.0e9;
std::atomic<std::int64_t> gTunedCalls{0};
} // namespace

bool matmulProductsBuilt() {
#if defined(ATLASCOPE_TRAIN_MATMUL)
  return cuda::matmulAvailable();
#else
  return false;
#endif
}

void setTunedInputGradients(bool on) { gTuned.store(on); }
bool tunedInputGradients() { return gTuned.load(); }
TunedInputGradientCounts tunedInputGradientCounts() {
  TunedInputGradientCounts c;
  c.calls = gTunedCalls.load();
#if defined(ATLASCOPE_TRAIN_MATMUL)
  const cuda::MatmulTunedCounts tuned = cuda::matmulTunedCounts();
  c.timedShapes = tuned.timed, c.borrowed = tuned.borrowed;
#endif
  return c;
}

torch::Tensor inputGradient(const torch::Tensor& dy, const torch::Tensor& w) {
#if defined(ATLASCOPE_TRAIN_MATMUL)
  if (gTuned.load(std::memory_order_relaxed) && dy.is_cuda() && dy.dim() == 2 && w.dim() == 2 &&
      dy.scalar_type() == torch::kBFloat16 && w.scalar_type() == torch::kBFloat16 && dy.size(1) == w.size(0) &&
      dy.is_contiguous() && w.is_contiguous() && dy.device() == w.device() && w.size(0) <= (1 << 30) &&
      w.size(1) <= (1 << 30) &&
      static_cast<double>(dy.size(0)) * static_cast<double>(w.size(0)) * static_cast<double>(w.size(1)) >=
          kTunedMinimum) {
    const c10::cuda::CUDAGuard guard(dy.device());
    torch::Tensor out = torch::empty({dy.size(0), w.size(1)}, dy.options());
    cuda::MatmulCall call;
    call.op = cuda::MatmulOp::InputGrad, call.rows = dy.size(0), call.n = static_cast<int>(w.size(0));
    call.k = static_cast<int>(w.size(1)), call.a = bits(dy), call.b = bits(w), call.out = mutableBits(out);
    if (cuda::matmulTunedBf16(call, at::cuda::getCurrentCUDAStream(dy.device().index()).stream())) {
      gTunedCalls.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
  }
#endif
  return dy.mm(w);
}

double checkTunedInputGradient([[maybe_unused]] torch::Device device, [[maybe_unused]] std::int64_t rows,
                               [[maybe_unused]] int n, [[maybe_unused]] int k) {
#if defined(ATLASCOPE_TRAIN_MATMUL)
  if (!device.is_cuda()) return -1;
  torch::manual_seed(11);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const torch::Tensor dy = torch::randn({rows, n}, o), w = torch::randn({n, k}, o) * 0.05;
  const bool before = gTuned.exchange(true);
  const std::int64_t calls = gTunedCalls.load();
  const torch::Tensor tuned = inputGradient(dy, w);
  gTuned.store(before);
  if (gTunedCalls.load() == calls) return -1;
  return largestRelativeDifference(tuned, dy.mm(w));
#else
  return -1;
#endif
}

std::vector<MatmulBenchShape> benchTrainMatmul([[maybe_unused]] torch::Device device,
                                               [[maybe_unused]] std::int64_t rows, [[maybe_unused]] int iterations) {
  std::vector<MatmulBenchShape> out;
#if defined(ATLASCOPE_TRAIN_MATMUL)
  if (!device.is_cuda() || !cuda::matmulAvailable()) return out;
  const c10::cuda::CUDAGuard guard(device);
  // A stream of the pool: graphs are not captured on the default one.
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  const c10::cuda::CUDAStreamGuard onSide(side);
  const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const auto stream = side.stream();
  torch::Tensor workspace = torch::empty({cuda::matmulWorkspace()}, o.dtype(torch::kUInt8));
  using Op = cuda::MatmulOp;
  struct Shape {
    const char* name;
    Op op;
    int n, k;
  };
  // The encoder's four layers each make one of these (the decoder's products are ~1% of the rows).
  const Shape shapes[] = {
      {"qkv forward", Op::Forward, 1152, 384},          {"out_proj forward", Op::Forward, 384, 384},
      {"ff2 forward", Op::Forward, 384, 2048},          {"qkv input grad", Op::InputGrad, 1152, 384},
      {"out_proj input grad", Op::InputGrad, 384, 384}, {"ff1 input grad", Op::InputGrad, 2048, 384},
      {"qkv weight grad", Op::WeightGrad, 1152, 384},   {"out_proj weight grad", Op::WeightGrad, 384, 384},
      {"ff1 weight grad", Op::WeightGrad, 2048, 384},   {"ff2 weight grad", Op::WeightGrad, 384, 2048}};
  torch::manual_seed(7);
  for (const Shape& s : shapes) {
    MatmulBenchShape r;
    r.name = s.name, r.op = static_cast<int>(s.op), r.n = s.n, r.k = s.k, r.callsPerStep = 4;
    // a: x [rows, k] (Forward) or dy [rows, n]; b: W [n, k] or x [rows, k] (WeightGrad).
    const torch::Tensor a = torch::randn({rows, s.op == Op::Forward ? s.k : s.n}, o);
    const torch::Tensor b = s.op == Op::WeightGrad ? torch::randn({rows, s.k}, o) : torch::randn({s.n, s.k}, o) * 0.05;
    const torch::Tensor bias = s.op == Op::Forward ? torch::randn({s.n}, o) : torch::Tensor();
    torch::Tensor reference = s.op == Op::Forward     ? torch::empty({rows, s.n}, o)
                              : s.op == Op::InputGrad ? torch::empty({rows, s.k}, o)
                                                      : torch::empty({s.n, s.k}, o);
    // Into one output (a graph of `iterations` calls allocates nothing), by the calls training makes.
    auto aten = [&] {
      if (s.op == Op::Forward)
        at::addmm_out(reference, bias, a, b.t());
      else if (s.op == Op::InputGrad)
        at::mm_out(reference, a, b);
      else
        at::mm_out(reference, a.t(), b);
    };
    at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
    for (int w = 0; w < 2; ++w) aten();
    start.record(side);
    for (int i = 0; i < iterations; ++i) aten();
    stop.record(side);
    stop.synchronize();
    r.atenEagerMs = static_cast<double>(start.elapsed_time(stop)) / iterations;
    {
      at::cuda::CUDAGraph graph;
      graph.capture_begin();
      for (int i = 0; i < iterations; ++i) aten();
      graph.capture_end();
      graph.replay();
      start.record(side);
      for (int i = 0; i < 3; ++i) graph.replay();
      stop.record(side);
      stop.synchronize();
      r.atenMs = static_cast<double>(start.elapsed_time(stop)) / (3.0 * iterations);
    }
    torch::Tensor result = torch::empty_like(reference);
    cuda::MatmulCall call;
    call.op = s.op, call.rows = rows, call.n = s.n, call.k = s.k, call.a = bits(a), call.b = bits(b);
    call.bias = bias.defined() ? bits(bias) : nullptr, call.out = mutableBits(result);
    for (const bool bare : {false, true}) {
      const std::int64_t bytes = bare ? 0 : workspace.numel();
      for (const auto& t : cuda::matmulTimeAlgorithms(call, iterations, workspace.data_ptr(), bytes, stream)) {
        (bare ? r.bareOfferMs : r.offerMs).push_back(t.ms);
        (bare ? r.bareOfferMemsets : r.offerMemsets).push_back(t.memsets);
      }
    }
    for (int i = 0; i < static_cast<int>(r.bareOfferMs.size()); ++i)
      r.bareOfferMaxDiff.push_back(
          cuda::matmulBf16(call, i, nullptr, 0, stream)
              ? (result.to(torch::kFloat32) - reference.to(torch::kFloat32)).abs().max().item<double>()
              : -1.0);
    int best = -1;
    for (int i = 0; i < static_cast<int>(r.offerMs.size()); ++i)
      if (r.offerMs[static_cast<std::size_t>(i)] > 0 &&
          (best < 0 || r.offerMs[static_cast<std::size_t>(i)] < r.offerMs[static_cast<std::size_t>(best)]))
        best = i;
    r.maxRelFromAten = best >= 0 && cuda::matmulBf16(call, best, workspace.data_ptr(), workspace.numel(), stream)
                           ? largestRelativeDifference(result, reference)
                           : -1.0;
    out.push_back(std::move(r));
  }
#endif
  return out;
}

} // namespace atlascope::inference
