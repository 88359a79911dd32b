#include "inference/DeviceSmoothing.h"

#include "core/Error.h"

#include <torch/torch.h>

#include <map>

namespace atlascope::inference {

torch::Tensor smoothFeaturesOnDevice(const torch::Tensor& features, const std::vector<float>& x,
                                     const std::vector<float>& y, const std::vector<std::int32_t>& section,
                                     const SmoothingOptions& o, const Progress& progress) {
  torch::NoGradGuard noGrad;
  const std::int64_t n = features.size(0), d = features.size(1);
  if (static_cast<std::int64_t>(x.size()) != n || y.size() != x.size() || section.size() != x.size())
    throw Error("smoothing: positions, sections and features have different lengths");
  if (o.k < 1) throw Error("smoothing: k must be at least 1");
  if (!(o.sigma > 0)) throw Error("smoothing: sigma must be positive");
  const torch::Device dev = features.device();
  const torch::Tensor f = features.to(torch::kFloat32).contiguous();
  torch::Tensor out = torch::empty_like(f);
  std::map<std::int32_t, std::vector<std::int64_t>> bySection;
  for (std::int64_t i = 0; i < n; ++i) bySection[section[static_cast<std::size_t>(i)]].push_back(i);
  const double inv2s2 = 1.0 / (2.0 * o.sigma * o.sigma);
  std::int64_t done = 0;
  for (const auto& [s, members] : bySection) {
    const std::int64_t m = static_cast<std::int64_t>(members.size());
    const torch::Tensor idx = torch::tensor(members, torch::kInt64).to(dev);
    std::vector<float> pts;
    pts.reserve(static_cast<std::size_t>(2 * m));
    for (std::int64_t i : members) {
      pts.push_back(x[static_cast<std::size_t>(i)]);
      pts.push_back(y[static_cast<std::size_t>(i)]);
    }
    // Coordinates relative to the section's centre: squared distances by products stay precise.
    torch::Tensor p = torch::from_blob(pts.data(), {m, 2}, torch::kFloat32).clone().to(dev);
    p = p - p.mean(0, true);
    const torch::Tensor pNorm = p.pow(2).sum(1);
    const torch::Tensor fs = f.index_select(0, idx);
    const std::int64_t k = std::min<std::int64_t>(o.k, m);
    // Rows per block: the distance block and the gathered neighbours stay within ~1 GiB each.
    const std::int64_t rows = std::max<std::int64_t>(
        1, std::min((1ll << 28) / std::max<std::int64_t>(1, m), (1ll << 28) / std::max<std::int64_t>(1, k * d)));
    for (std::int64_t a = 0; a < m; a += rows) {
      const std::int64_t c = std::min(rows, m - a);
      const torch::Tensor q = p.narrow(0, a, c);
      const torch::Tensor d2 =
          (pNorm.narrow(0, a, c).unsqueeze(1) - 2 * torch::matmul(q, p.t()) + pNorm.unsqueeze(0)).clamp_min(0);
      const auto [dist, nearest] = d2.topk(k, 1, /*largest=*/false, /*sorted=*/false);
      torch::Tensor w = torch::exp(dist * -inv2s2);
      w = w / w.sum(1, true).clamp_min(1e-30);
      const torch::Tensor gathered = fs.index_select(0, nearest.reshape({-1})).view({c, k, d});
      const torch::Tensor smoothed = torch::bmm(w.unsqueeze(1), gathered).squeeze(1);
      out.index_copy_(0, idx.narrow(0, a, c), smoothed);
      done += c;
      progress("smoothing", done, n);
    }
  }
  return out;
}

} // namespace atlascope::inference
