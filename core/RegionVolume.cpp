#include "core/RegionVolume.h"

#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace atlascope {

RegionVolume voxeliseRegions(const AnnotationVolume& ann, const std::vector<float>& ap, const std::vector<float>& dv,
                             const std::vector<float>& ml, const std::vector<std::int32_t>& labels, int factor,
                             const Progress& progress) {
  if (factor < 1) throw Error("voxelising regions: the voxel factor must be at least 1");
  if (ap.size() != labels.size() || dv.size() != labels.size() || ml.size() != labels.size())
    throw Error("voxelising regions: one label and one CCF position per cell are needed");
  const auto full = ann.size();
  const auto spacing = ann.spacingUm();
  RegionVolume v;
  v.voxelUm = spacing[0] * factor;
  for (std::size_t a = 0; a < 3; ++a) v.size[a] = (full[a] + factor - 1) / factor;
  const std::size_t total = static_cast<std::size_t>(v.size[0] * v.size[1] * v.size[2]);
  v.labels.assign(total, -1);
  auto index = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    return static_cast<std::size_t>(i + v.size[0] * (j + v.size[1] * k));
  };
  // Brain mask: the annotation at each voxel's centre.
  std::vector<std::uint8_t> brain(total, 0);
  for (std::int64_t k = 0; k < v.size[2]; ++k)
    for (std::int64_t j = 0; j < v.size[1]; ++j)
      for (std::int64_t i = 0; i < v.size[0]; ++i) {
        const VoxelIndex centre{std::min(full[0] - 1, i * factor + factor / 2),
                                std::min(full[1] - 1, j * factor + factor / 2),
                                std::min(full[2] - 1, k * factor + factor / 2)};
        brain[index(i, j, k)] = ann.idAt(centre) != 0;
      }
  progress("voxelising regions", 1, 3);

  // Majority per voxel: (voxel, label) pairs sorted, runs counted.
  std::vector<std::pair<std::uint32_t, std::int32_t>> pairs;
  pairs.reserve(labels.size());
  for (std::size_t c = 0; c < labels.size(); ++c) {
    if (labels[c] < 0 || !std::isfinite(ap[c]) || !std::isfinite(dv[c]) || !std::isfinite(ml[c])) continue;
    const auto i = static_cast<std::int64_t>(std::floor(ap[c] / v.voxelUm)),
               j = static_cast<std::int64_t>(std::floor(dv[c] / v.voxelUm)),
               k = static_cast<std::int64_t>(std::floor(ml[c] / v.voxelUm));
    if (i < 0 || j < 0 || k < 0 || i >= v.size[0] || j >= v.size[1] || k >= v.size[2]) continue;
    const std::size_t at = index(i, j, k);
    if (brain[at]) pairs.emplace_back(static_cast<std::uint32_t>(at), labels[c]);
  }
  std::sort(pairs.begin(), pairs.end());
  std::deque<std::uint32_t> queue;
  for (std::size_t a = 0; a < pairs.size();) {
    std::size_t b = a, bestCount = 0;
    std::int32_t best = -1;
    while (b < pairs.size() && pairs[b].first == pairs[a].first) {
      std::size_t e = b;
      while (e < pairs.size() && pairs[e].first == pairs[b].first && pairs[e].second == pairs[b].second) ++e;
      if (e - b > bestCount) {
        bestCount = e - b;
        best = pairs[b].second;
      } // ties: the smaller label
      b = e;
    }
    v.labels[pairs[a].first] = best;
    queue.push_back(pairs[a].first);
    a = b;
  }
  progress("voxelising regions", 2, 3);

  // Fill: breadth first from every measured voxel at once, through brain voxels.
  const std::int64_t strides[3] = {1, v.size[0], v.size[0] * v.size[1]};
  while (!queue.empty()) {
    const std::uint32_t at = queue.front();
    queue.pop_front();
    const std::int64_t i = at % v.size[0], j = (at / v.size[0]) % v.size[1], k = at / (v.size[0] * v.size[1]);
    const std::int64_t pos[3] = {i, j, k};
    for (int axis = 0; axis < 3; ++axis)
      for (int step : {-1, 1}) {
        const std::int64_t p = pos[axis] + step;
        if (p < 0 || p >= v.size[static_cast<std::size_t>(axis)]) continue;
        const std::size_t next = static_cast<std::size_t>(static_cast<std::int64_t>(at) + step * strides[axis]);
        if (brain[next] && v.labels[next] < 0) {
          v.labels[next] = v.labels[at];
          queue.push_back(static_cast<std::uint32_t>(next));
        }
      }
  }
  progress("voxelising regions", 3, 3);
  return v;
}

} // namespace atlascope
