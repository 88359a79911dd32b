#include "core/TemplatePlane.h"

#include <algorithm>
#include <cmath>

namespace atlascope {

GreyWindow templateWindow(const Volume& reference) {
  const std::int64_t n = reference.voxelCount();
  if (n <= 0 || reference.bytes.size() < static_cast<std::size_t>(n) * scalarSize(reference.type)) return {0, 1};
  const std::int64_t step = std::max<std::int64_t>(1, n / 1'000'000);
  std::vector<double> values;
  values.reserve(static_cast<std::size_t>(n / step + 1));
  for (std::int64_t i = 0; i < n; i += step) {
    const double v = reference.value(i);
    if (v != 0 && std::isfinite(v)) values.push_back(v);
  }
  if (values.empty()) return {0, 1};
  auto at = [&values](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
    return values[k];
  };
  const double low = at(0.005), high = at(0.995);
  return high > low ? GreyWindow{low, high} : GreyWindow{low, low + 1};
}

TemplatePlane templatePlane(const Volume& reference, const std::array<double, 3>& spacingUm, int normal,
                            double positionUm, const GreyWindow& window) {
  TemplatePlane plane;
  if (normal < 0 || normal > 2 || !std::isfinite(positionUm) || spacingUm[normal] <= 0) return plane;
  const std::int64_t n = reference.voxelCount();
  if (n <= 0 || reference.bytes.size() < static_cast<std::size_t>(n) * scalarSize(reference.type)) return plane;
  const auto k = static_cast<std::int64_t>(std::floor(positionUm / spacingUm[normal]));
  if (k < 0 || k >= reference.size[normal]) return plane;
  plane.axes = planeAxes(normal);
  const int u = plane.axes.u, v = plane.axes.v;
  plane.width = static_cast<int>(reference.size[u]);
  plane.height = static_cast<int>(reference.size[v]);
  plane.spacingUm = {spacingUm[u], spacingUm[v]};
  plane.positionUm = (static_cast<double>(k) + 0.5) * spacingUm[normal];
  plane.grey.assign(static_cast<std::size_t>(plane.width) * static_cast<std::size_t>(plane.height), 0);
  const double scale = 254.0 / (window.high - window.low);
  std::array<std::int64_t, 3> idx{};
  idx[normal] = k;
  for (int y = 0; y < plane.height; ++y) {
    idx[v] = y;
    for (int x = 0; x < plane.width; ++x) {
      idx[u] = x;
      const double value = reference.value(reference.linearIndex(idx[0], idx[1], idx[2]));
      if (value == 0 || !std::isfinite(value)) continue; // outside the brain stays background
      plane.grey[static_cast<std::size_t>(y) * static_cast<std::size_t>(plane.width) + static_cast<std::size_t>(x)] =
          static_cast<std::uint8_t>(1 + std::clamp((value - window.low) * scale, 0.0, 254.0));
    }
  }
  return plane;
}

} // namespace atlascope
