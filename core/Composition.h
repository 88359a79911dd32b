#pragma once
// The model-free baseline of region discovery: each cell's neighbourhood cell-type composition
// (the same window as CellTransformer's), as fractions; an empty neighbourhood is all zeros.
#include "core/Neighborhood.h"

#include <cstdint>
#include <vector>

namespace atlascope {

// [cells x types] row-major, rows summing to 1 (or 0 for empty neighbourhoods).
std::vector<float> neighborhoodComposition(const NeighborhoodList& hoods, const std::vector<std::int32_t>& types,
                                           int typeCount);

} // namespace atlascope
