#include "inference/CellTyping.h"

#include "core/Error.h"
#include "core/Leiden.h"
#include "inference/Device.h"
#include "inference/ExpressionTable.h"
#include "inference/KMeans.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace atlascope::inference {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What the first rows say about how X holds expression (CellTypingOptions::input).
std::string detectInputScale(const torch::Tensor& x) {
  const torch::Tensor s = x.narrow(0, 0, std::min<std::int64_t>(x.size(0), 2000)).to(torch::kCPU, torch::kFloat64);
  if (s.numel() == 0) return "counts";
  if (s.min().item<double>() < 0)
    throw Error(
        "the expression holds negative values (scaled or centred data?): cell typing needs counts or log counts "
        "(an h5ad's raw counts may be in a layer: --layer NAME)");
  auto integral = [](const torch::Tensor& v) {
    return ((v - v.round()).abs() <= 1e-3 * v.abs().clamp_min(1.0)).all().item<bool>();
  };
  if (integral(s)) return "counts";
  if (integral(torch::exp2(s) - 1)) return "log2";
  if (integral(torch::expm1(s))) return "log1p";
  return "intensities"; // e.g. counts divided by cell volume: non-negative, normalised as they are
}

// The highly variable genes (Seurat's flavour, as scanpy's default): the dispersion (variance
// over mean) of each gene's normalised log expression, z-scored among genes of similar mean
// (20 bins of equal width in mean), the `keep` highest; in panel order.
torch::Tensor highlyVariableGenes(const torch::Tensor& logX, int keep) {
  const torch::Tensor mean = logX.mean(0).to(torch::kCPU, torch::kFloat64);
  const torch::Tensor var = logX.var(0).to(torch::kCPU, torch::kFloat64);
  const torch::Tensor disp = torch::log(var.clamp_min(1e-12) / mean.clamp_min(1e-12));
  const double lo = mean.min().item<double>(), hi = mean.max().item<double>();
  const torch::Tensor bin = ((mean - lo) / std::max(hi - lo, 1e-12) * 20).floor().clamp(0, 19).to(torch::kInt64);
  torch::Tensor z = torch::zeros_like(disp);
  for (int b = 0; b < 20; ++b) {
    const torch::Tensor in = (bin == b).nonzero().flatten();
    if (in.numel() == 0) continue;
    const torch::Tensor d = disp.index_select(0, in);
    const double sd = in.numel() > 1 ? d.std().item<double>() : 0.0;
    // A bin of one gene (or equal dispersions) scores 1, as in scanpy.
    z.index_copy_(0, in, sd > 0 ? (d - d.mean()) / sd : torch::ones_like(d));
  }
  return std::get<0>(torch::sort(std::get<1>(torch::topk(z, keep)))).to(logX.device());
}

// The k nearest other cells of every cell by Euclidean distance on `pcs` (exact: distances by
// matrix products in row blocks of bounded memory). [n, k] int64 on the CPU.
torch::Tensor nearestNeighbours(const torch::Tensor& pcs, int k, const Progress& progress) {
  const std::int64_t n = pcs.size(0);
  const torch::Tensor sq = pcs.pow(2).sum(1);
  // Blocks of ~16M distances (64 MB, a few temporaries of that size at once).
  const std::int64_t block =
      std::max<std::int64_t>(1, std::min<std::int64_t>(n, (std::int64_t{16} << 20) / std::max<std::int64_t>(1, n)));
  torch::Tensor out = torch::empty({n, k}, torch::kInt64);
  for (std::int64_t b = 0; b < n; b += block) {
    const std::int64_t m = std::min(block, n - b);
    torch::Tensor d =
        torch::addmm(sq.narrow(0, b, m).unsqueeze(1) + sq.unsqueeze(0), pcs.narrow(0, b, m), pcs.t(), 1.0, -2.0);
    d.narrow(1, b, m).diagonal().fill_(std::numeric_limits<float>::infinity()); // not its own neighbour
    out.narrow(0, b, m).copy_(std::get<1>(torch::topk(d, k, 1, /*largest=*/false, /*sorted=*/true)).to(torch::kCPU));
    progress("neighbours", b + m, n);
  }
  return out;
}

// The symmetrised kNN graph (A + A^T): an edge per pair of cells where either names the other,
// weight 2 where both do.
WeightedEdges knnGraph(const torch::Tensor& knn) {
  const std::int64_t n = knn.size(0), k = knn.size(1);
  const auto a = knn.accessor<std::int64_t, 2>();
  std::vector<std::uint64_t> pairs;
  pairs.reserve(static_cast<std::size_t>(n * k));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j) {
      const auto u = static_cast<std::uint64_t>(std::min(i, a[i][j])),
                 v = static_cast<std::uint64_t>(std::max(i, a[i][j]));
      pairs.push_back(u << 32 | v);
    }
  std::sort(pairs.begin(), pairs.end());
  WeightedEdges e;
  for (std::size_t p = 0; p < pairs.size();) {
    std::size_t q = p;
    while (q < pairs.size() && pairs[q] == pairs[p]) ++q;
    e.from.push_back(static_cast<std::int64_t>(pairs[p] >> 32));
    e.to.push_back(static_cast<std::int64_t>(pairs[p] & 0xFFFFFFFFu));
    e.weight.push_back(static_cast<double>(q - p));
    p = q;
  }
  return e;
}

// Labels renumbered by cluster size, largest first (ties: the first cell), so names are stable.
std::vector<std::int32_t> bySize(const std::vector<std::int32_t>& labels, int& count) {
  std::vector<std::int64_t> size, first;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (c >= size.size()) {
      size.resize(c + 1, 0);
      first.resize(c + 1, static_cast<std::int64_t>(labels.size()));
    }
    ++size[c];
    first[c] = std::min<std::int64_t>(first[c], static_cast<std::int64_t>(i));
  }
  std::vector<std::size_t> order(size.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return size[a] != size[b] ? size[a] > size[b] : first[a] < first[b]; });
  std::vector<std::int32_t> rank(size.size(), -1);
  count = 0;
  for (std::size_t c : order)
    if (size[c] > 0) rank[c] = count++;
  std::vector<std::int32_t> out(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) out[i] = rank[static_cast<std::size_t>(labels[i])];
  return out;
}
} // namespace

CellTypingResult typeCells(const CellTable& cells, const ExpressionSource& source, const CellTypingOptions& o) {
  const Progress& progress = o.progress;
  const std::int64_t n = cells.size();
  if (n < 3) throw Error("cell typing needs at least 3 cells (the dataset has " + std::to_string(n) + ")");
  if (source.genes() < 2)
    throw Error("cell typing needs at least 2 genes (the dataset has " + std::to_string(source.genes()) + ")");
  if (o.method != "leiden" && o.method != "kmeans")
    throw Error("unknown typing method '" + o.method + "' (leiden or kmeans)");
  if (!(o.resolution > 0)) throw Error("the resolution must be positive");
  CellTypingResult r;
  r.device = resolveDevice(o.device);
  const torch::Device device = r.device == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (r.device == "cpu") configureCpuThreads();
  torch::NoGradGuard noGrad;

  auto t = Clock::now();
  ExpressionTableOptions eo;
  eo.device = device;
  torch::Tensor x = loadExpressionTable(source, cells, eo, progress);
  r.seconds["read"] = since(t);

  // Normalise: counts scaled to the median total per cell, then log1p.
  t = Clock::now();
  progress("normalising", 0, 1);
  r.inputScale = o.input == "auto" ? detectInputScale(x) : o.input;
  if (r.inputScale == "log2")
    x = torch::exp2(x).sub_(1);
  else if (r.inputScale == "log1p")
    x = torch::expm1(x);
  else if (r.inputScale != "counts" && r.inputScale != "intensities" && r.inputScale != "normalised")
    throw Error("unknown input scale '" + o.input + "' (auto, counts, log2, log1p or normalised)");
  if (r.inputScale != "normalised") {
    const torch::Tensor total = x.sum(1);
    const torch::Tensor positive = total.masked_select(total > 0);
    if (positive.numel() == 0) throw Error("every cell's expression is zero");
    const double median = positive.to(torch::kCPU, torch::kFloat64).median().item<double>();
    x.mul_((median / total.clamp_min(1e-12)).unsqueeze(1)).log1p_();
  }
  const torch::Tensor logX = x; // all genes: the markers are read from it

  // Genes for the components: the panel, or the most variable genes of a large one.
  torch::Tensor used = logX;
  if (logX.size(1) > o.highlyVariableGenes && o.highlyVariableGenes > 0)
    used = logX.index_select(1, highlyVariableGenes(logX, o.highlyVariableGenes));
  r.genesUsed = static_cast<int>(used.size(1));
  // z-scored genes, clipped at 10 (scanpy's sc.pp.scale(max_value=10)); constant genes stay 0.
  const torch::Tensor mean = used.mean(0), sd = used.std(0);
  torch::Tensor z = ((used - mean) / sd.clamp_min(1e-12)).clamp_(-10, 10);
  z.index_fill_(1, (sd <= 1e-12).nonzero().flatten(), 0.0);
  r.seconds["normalise"] = since(t);
  progress("normalising", 1, 1);

  // PCA: the eigenvectors of the genes' covariance (float64; a panel is at most a few thousand
  // genes wide), each signed so that its largest loading is positive (a deterministic sign).
  t = Clock::now();
  progress("pca", 0, 1);
  const std::int64_t c = std::max<std::int64_t>(1, std::min<std::int64_t>({o.components, z.size(1) - 1, n - 1}));
  const torch::Tensor z64 = z.to(torch::kFloat64);
  const torch::Tensor cov = torch::mm(z64.t(), z64) / static_cast<double>(n - 1);
  const auto [eigenvalues, eigenvectors] = torch::linalg_eigh(cov, "L"); // ascending
  torch::Tensor vectors = eigenvectors.flip({1}).narrow(1, 0, c);
  const torch::Tensor peak = vectors.abs().argmax(0);
  const torch::Tensor sign = vectors.gather(0, peak.unsqueeze(0)).sign().clamp_min(0) * 2 - 1;
  vectors = vectors * sign;
  const torch::Tensor values = eigenvalues.flip({0});
  r.explainedVariance = (values.narrow(0, 0, c).sum() / values.clamp_min(0).sum().clamp_min(1e-300)).item<double>();
  const torch::Tensor pcs = torch::mm(z, vectors.to(torch::kFloat32)).contiguous();
  r.components = static_cast<int>(c);
  r.seconds["pca"] = since(t);
  progress("pca", 1, 1);

  // Types.
  t = Clock::now();
  std::vector<std::int32_t> raw;
  if (o.method == "leiden") {
    const int k = static_cast<int>(std::min<std::int64_t>(o.neighbours, n - 1));
    const torch::Tensor knn = nearestNeighbours(pcs, k, progress);
    r.seconds["neighbours"] = since(t);
    t = Clock::now();
    LeidenOptions lo;
    lo.resolution = o.resolution;
    lo.seed = o.seed;
    const LeidenResult lr = leiden(n, knnGraph(knn), lo, progress);
    raw = lr.membership;
    r.quality = lr.quality;
    r.seconds["leiden"] = since(t);
  } else {
    if (o.k < 1 || o.k > n)
      throw Error("k = " + std::to_string(o.k) + " is not between 1 and the number of cells (" + std::to_string(n) +
                  ")");
    KMeansOptions ko;
    ko.k = o.k;
    ko.seed = o.seed;
    ko.restarts = 3;
    progress("kmeans", 0, 1);
    const KMeansResult kr = kmeans(pcs, ko, progress);
    raw = kr.labels;
    r.quality = kr.inertia;
    r.seconds["kmeans"] = since(t);
  }
  int types = 0;
  r.labels = bySize(raw, types);
  const int width = types >= 100 ? 3 : 2;
  for (int i = 0; i < types; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "C%0*d", width, i + 1);
    r.names.push_back(name);
  }

  // Markers: mean normalised log expression in the type minus in the other cells.
  t = Clock::now();
  progress("markers", 0, 1);
  const torch::Tensor label = torch::tensor(r.labels, torch::kInt64).to(device);
  const torch::Tensor sums = torch::zeros({types, logX.size(1)}, logX.options()).index_add_(0, label, logX);
  const torch::Tensor counts = torch::bincount(label, {}, types).to(logX.dtype()).unsqueeze(1);
  const torch::Tensor inside = sums / counts;
  const torch::Tensor outside = (sums.sum(0, true) - sums) / (static_cast<double>(n) - counts).clamp_min(1);
  const int m = static_cast<int>(std::min<std::int64_t>(o.markers, logX.size(1)));
  const torch::Tensor best = std::get<1>(torch::topk(types > 1 ? inside - outside : inside, m, 1)).to(torch::kCPU);
  const auto b = best.accessor<std::int64_t, 2>();
  for (int i = 0; i < types; ++i) {
    std::vector<std::string> genes;
    for (int j = 0; j < m; ++j) {
      const auto g = static_cast<std::size_t>(b[i][j]);
      genes.push_back(g < cells.genes.size() ? cells.genes[g] : "gene" + std::to_string(g));
    }
    r.markers.push_back(std::move(genes));
  }
  r.seconds["markers"] = since(t);
  progress("markers", 1, 1);

  const torch::Tensor p = pcs.to(torch::kCPU);
  r.pcs.assign(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  return r;
}

} // namespace atlascope::inference
