#include "inference/KMeans.h"

#include "core/Error.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <random>

namespace atlascope::inference {

namespace {
// k-means++ (D^2 sampling). The sampling stays on the device: the cumulative sum of the squared
// distances is searched for a host-drawn uniform target, so no value comes back per centre (on a
// GPU, 1,300 centres cost 1,300 small kernels, not 1,300 round trips). On the CPU the cumulative
// sum is sequential, so the picks are deterministic for a seed.
torch::Tensor seedPlusPlus(const torch::Tensor& x, int k, std::mt19937_64& rng) {
  const std::int64_t n = x.size(0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  torch::Tensor pick = torch::full({1}, static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n)),
                                   torch::TensorOptions().dtype(torch::kInt64).device(x.device()));
  std::vector<torch::Tensor> chosen{pick};
  // |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one matrix-vector product per centre, no [n, d] temporary.
  const torch::Tensor xNorm = x.pow(2).sum(1);
  auto distanceTo = [&](const torch::Tensor& p) {
    const torch::Tensor c = x.index_select(0, p).view({-1});
    return (xNorm - 2 * torch::mv(x, c) + c.dot(c)).clamp_min(0);
  };
  torch::Tensor minDist = distanceTo(pick);
  for (int c = 1; c < k; ++c) {
    const torch::Tensor cumulative = minDist.to(torch::kFloat64).cumsum(0);
    const torch::Tensor target = cumulative.narrow(0, n - 1, 1) * uniform(rng);
    pick = torch::searchsorted(cumulative, target).clamp_max(n - 1);
    chosen.push_back(pick);
    minDist = torch::minimum(minDist, distanceTo(pick));
  }
  return x.index_select(0, torch::cat(chosen)).clone();
}

// Matrix products in TF32 on a GPU for the assignment step only (restored afterwards): the
// distances that decide labels lose a little precision at near-ties, the inertia and the
// centroids are computed exactly in float32.
struct FastMatmul {
  bool active;
  explicit FastMatmul(bool on) : active(on) {
    if (active) at::globalContext().setFloat32MatmulPrecision("high");
  }
  ~FastMatmul() {
    if (active) at::globalContext().setFloat32MatmulPrecision("highest");
  }
};
} // namespace

KMeansResult kmeans(const torch::Tensor& input, const KMeansOptions& opt, const Progress& progress) {
  torch::NoGradGuard noGrad;
  const torch::Tensor x = input.to(torch::kFloat32).contiguous();
  const std::int64_t n = x.size(0), dim = x.size(1);
  if (opt.k < 1) throw Error("k must be at least 1");
  if (opt.k > n)
    throw Error("k (" + std::to_string(opt.k) + ") is larger than the number of cells (" + std::to_string(n) + ")");
  const auto dev = x.device();
  const FastMatmul fast(dev.is_cuda());
  const std::int64_t rowChunk = dev.is_cuda() ? std::max<std::int64_t>(opt.rowChunk, 262144) : opt.rowChunk;
  const torch::Tensor xNorm = x.pow(2).sum(1, true);
  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int restart = 0; restart < std::max(1, opt.restarts); ++restart) {
    std::mt19937_64 rng(opt.seed * 1000003ull + static_cast<std::uint64_t>(restart));
    // Seeding on a subsample (uniform, seeded).
    torch::Tensor sample = x;
    if (n > opt.seedingSample) {
      std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      std::shuffle(idx.begin(), idx.end(), rng);
      idx.resize(static_cast<std::size_t>(std::max<std::int64_t>(opt.seedingSample, opt.k)));
      std::sort(idx.begin(), idx.end());
      sample = x.index_select(0, torch::tensor(idx, torch::kInt64).to(dev));
    }
    torch::Tensor c = seedPlusPlus(sample, opt.k, rng);
    torch::Tensor labels = torch::empty({n}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
    torch::Tensor nearest = torch::empty({n}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
    double previous = std::numeric_limits<double>::infinity(), inertia = 0;
    int it = 0, repairs = 0;
    for (; it < opt.maxIterations; ++it) {
      const torch::Tensor cNorm = c.pow(2).sum(1);
      for (std::int64_t r = 0; r < n; r += rowChunk) {
        const std::int64_t m = std::min(rowChunk, n - r);
        const torch::Tensor d =
            (xNorm.narrow(0, r, m) - 2 * torch::matmul(x.narrow(0, r, m), c.t()) + cNorm.view({1, -1}));
        labels.narrow(0, r, m).copy_(d.argmin(1));
      }
      // Exact squared distances to the chosen centroids (the products above may be TF32).
      for (std::int64_t r = 0; r < n; r += rowChunk) {
        const std::int64_t m = std::min(rowChunk, n - r);
        nearest.narrow(0, r, m).copy_((x.narrow(0, r, m) - c.index_select(0, labels.narrow(0, r, m))).pow(2).sum(1));
      }
      inertia = nearest.sum().item<double>();
      // New centroids: sums by index_add (deterministic on the CPU), then means.
      torch::Tensor sums = torch::zeros({opt.k, dim}, x.options()).index_add_(0, labels, x);
      torch::Tensor counts = torch::zeros({opt.k}, x.options()).index_add_(0, labels, torch::ones({n}, x.options()));
      // Empty clusters take the points farthest from their centroids.
      const torch::Tensor empty = (counts == 0).nonzero().view(-1).to(torch::kCPU);
      if (empty.numel() > 0) {
        const torch::Tensor far = std::get<1>(nearest.topk(empty.numel()));
        for (std::int64_t e = 0; e < empty.numel(); ++e) {
          const std::int64_t cl = empty[e].item<std::int64_t>();
          const std::int64_t p = far[e].item<std::int64_t>();
          sums[cl] = x[p];
          counts[cl] = 1;
          nearest[p] = 0;
          ++repairs;
        }
      }
      c = sums / counts.clamp_min(1).view({-1, 1});
      progress("k-means", it + 1, opt.maxIterations);
      if (std::isfinite(previous) && std::abs(previous - inertia) <= opt.tolerance * std::max(previous, 1e-30) &&
          empty.numel() == 0) {
        ++it;
        break;
      }
      previous = inertia;
    }
    if (inertia < best.inertia) {
      best.inertia = inertia;
      best.iterations = it;
      best.emptyRepairs = repairs;
      best.centroids = c;
      const torch::Tensor l = labels.to(torch::kCPU, torch::kInt32).contiguous();
      best.labels.assign(l.data_ptr<std::int32_t>(), l.data_ptr<std::int32_t>() + n);
    }
  }
  return best;
}

} // namespace atlascope::inference
