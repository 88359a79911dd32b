#include "core/Composition.h"

#include "core/Error.h"

namespace atlascope {

std::vector<float> neighborhoodComposition(const NeighborhoodList& hoods, const std::vector<std::int32_t>& types,
                                           int typeCount) {
  if (typeCount <= 0) throw Error("the composition baseline needs cell types");
  const std::int64_t n = hoods.cells();
  std::vector<float> out(static_cast<std::size_t>(n) * static_cast<std::size_t>(typeCount), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t s = hoods.indptr[static_cast<std::size_t>(i)], len = hoods.size(i);
    if (len == 0) continue;
    float* row = &out[static_cast<std::size_t>(i) * static_cast<std::size_t>(typeCount)];
    for (std::int64_t k = 0; k < len; ++k) {
      const std::int32_t t = types[static_cast<std::size_t>(hoods.indices[static_cast<std::size_t>(s + k)])];
      if (t >= 0 && t < typeCount) row[t] += 1.0f;
    }
    for (int t = 0; t < typeCount; ++t) row[t] /= static_cast<float>(len);
  }
  return out;
}

} // namespace atlascope
