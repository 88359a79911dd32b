#include "core/Assignment.h"

#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace atlascope {

std::vector<std::int32_t> maximumWeightAssignment(const std::vector<double>& weights, std::int32_t rows,
                                                  std::int32_t columns) {
  if (rows < 0 || columns < 0 || weights.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns))
    throw Error("assignment: the weight matrix does not have rows x columns entries");
  for (double w : weights)
    if (!std::isfinite(w)) throw Error("assignment: the weights must be finite");
  std::vector<std::int32_t> out(static_cast<std::size_t>(rows), -1);
  if (rows == 0 || columns == 0) return out;
  // Minimum cost on the square matrix padded with zeros (cost = -weight), 1-based as in the
  // classic formulation: u, v are the potentials, match[j] the row of column j, 0 for none.
  const std::size_t n = static_cast<std::size_t>(std::max(rows, columns));
  auto cost = [&](std::size_t i, std::size_t j) {
    return i < static_cast<std::size_t>(rows) && j < static_cast<std::size_t>(columns)
               ? -weights[i * static_cast<std::size_t>(columns) + j]
               : 0.0;
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0), minv(n + 1);
  std::vector<std::size_t> match(n + 1, 0), way(n + 1, 0);
  std::vector<char> used(n + 1);
  for (std::size_t i = 1; i <= n; ++i) {
    match[0] = i;
    std::size_t j0 = 0;
    std::fill(minv.begin(), minv.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const std::size_t i0 = match[j0];
      double delta = inf;
      std::size_t j1 = 0;
      for (std::size_t j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double reduced = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (reduced < minv[j]) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (std::size_t j = 0; j <= n; ++j) {
        if (used[j]) {
          u[match[j]] += delta;
          v[j] -= delta;
        } else
          minv[j] -= delta;
      }
      j0 = j1;
    } while (match[j0] != 0);
    do { // the augmenting path, back to its start
      const std::size_t j1 = way[j0];
      match[j0] = match[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  for (std::size_t j = 1; j <= n; ++j)
    if (match[j] - 1 < static_cast<std::size_t>(rows) && j - 1 < static_cast<std::size_t>(columns))
      out[match[j] - 1] = static_cast<std::int32_t>(j - 1);
  return out;
}

} // namespace atlascope
