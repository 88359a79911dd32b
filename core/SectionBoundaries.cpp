#include "core/SectionBoundaries.h"

#include <cmath>

namespace atlascope {

PlaneAxes planeAxes(int normal) {
  switch (normal) {
  case 1: return {1, 2, 0};  // horizontal: lateral across, anterior-posterior down
  case 2: return {2, 0, 1};  // sagittal: anterior-posterior across, dorsal-ventral down
  default: return {0, 2, 1}; // coronal: lateral across, dorsal-ventral down
  }
}

std::vector<PlaneSegment> annotationBoundaries(const AnnotationVolume& annotation, int normal, double positionUm) {
  const PlaneAxes ax = planeAxes(normal);
  const auto& size = annotation.size();
  const auto& spacing = annotation.spacingUm();
  const auto slice = static_cast<std::int64_t>(std::floor(positionUm / spacing[static_cast<std::size_t>(normal)]));
  std::vector<PlaneSegment> out;
  if (slice < 0 || slice >= size[static_cast<std::size_t>(normal)]) return out;
  const std::int64_t nu = size[static_cast<std::size_t>(ax.u)], nv = size[static_cast<std::size_t>(ax.v)];
  const double su = spacing[static_cast<std::size_t>(ax.u)], sv = spacing[static_cast<std::size_t>(ax.v)];
  const auto& codes = annotation.codes();
  auto code = [&](std::int64_t iu, std::int64_t iv) {
    std::array<std::int64_t, 3> idx{};
    idx[static_cast<std::size_t>(normal)] = slice;
    idx[static_cast<std::size_t>(ax.u)] = iu;
    idx[static_cast<std::size_t>(ax.v)] = iv;
    return codes[static_cast<std::size_t>(annotation.linearIndex({idx[0], idx[1], idx[2]}))];
  };
  // Edges between (iu, iv) and (iu + 1, iv): vertical segments at u = (iu + 1) * su, merged down v.
  for (std::int64_t iu = 0; iu + 1 < nu; ++iu) {
    std::int64_t start = -1;
    for (std::int64_t iv = 0; iv <= nv; ++iv) {
      const bool edge = iv < nv && code(iu, iv) != code(iu + 1, iv);
      if (edge && start < 0) start = iv;
      if (!edge && start >= 0) {
        const auto u = static_cast<float>((iu + 1) * su);
        out.push_back({u, static_cast<float>(start * sv), u, static_cast<float>(iv * sv)});
        start = -1;
      }
    }
  }
  // Edges between (iu, iv) and (iu, iv + 1): horizontal segments, merged across u.
  for (std::int64_t iv = 0; iv + 1 < nv; ++iv) {
    std::int64_t start = -1;
    for (std::int64_t iu = 0; iu <= nu; ++iu) {
      const bool edge = iu < nu && code(iu, iv) != code(iu, iv + 1);
      if (edge && start < 0) start = iu;
      if (!edge && start >= 0) {
        const auto v = static_cast<float>((iv + 1) * sv);
        out.push_back({static_cast<float>(start * su), v, static_cast<float>(iu * su), v});
        start = -1;
      }
    }
  }
  return out;
}

} // namespace atlascope
