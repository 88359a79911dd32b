#pragma once
// One-to-one assignment of rows to columns that maximises the total weight (the Hungarian
// method, Kuhn-Munkres with potentials, O(n^3) for n = max(rows, columns)). Used to pair the
// regions of two datasets by Jaccard; small enough (a few thousand regions) for a dense matrix.
#include <cstdint>
#include <vector>

namespace atlascope {

// weights: rows x columns, row-major, finite. Returns, per row, its column, or -1 for the rows
// left over when there are more rows than columns. Every row (or every column, when there are
// fewer columns) is assigned, also to weight-0 pairs: a caller that wants only real overlaps
// drops those.
std::vector<std::int32_t> maximumWeightAssignment(const std::vector<double>& weights, std::int32_t rows,
                                                  std::int32_t columns);

} // namespace atlascope
