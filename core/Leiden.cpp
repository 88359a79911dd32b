#include "core/Leiden.h"

#include "core/Error.h"

#include <algorithm>
#include <igraph/igraph.h>
#include <numeric>
#include <string>

namespace atlascope {

namespace {
void check(igraph_error_t e, const char* what) {
  if (e != IGRAPH_SUCCESS) throw Error(std::string("leiden: ") + what + " failed: " + igraph_strerror(e));
}

// igraph's default error handler aborts the process; a worker must report and exit instead.
struct IgnoreErrorsScope {
  igraph_error_handler_t* previous;
  IgnoreErrorsScope() : previous(igraph_set_error_handler(igraph_error_handler_ignore)) {}
  ~IgnoreErrorsScope() { igraph_set_error_handler(previous); }
};

// igraph draws from one process-wide generator; a seeded one of our own for the call's duration.
struct SeededRng {
  igraph_rng_t rng;
  igraph_rng_t* previous;
  explicit SeededRng(std::uint64_t seed) : previous(igraph_rng_default()) {
    check(igraph_rng_init(&rng, &igraph_rngtype_pcg32), "the random number generator");
    igraph_rng_seed(&rng, static_cast<igraph_uint_t>(seed));
    igraph_rng_set_default(&rng);
  }
  ~SeededRng() {
    igraph_rng_set_default(previous);
    igraph_rng_destroy(&rng);
  }
};
} // namespace

LeidenResult leiden(std::int64_t n, const WeightedEdges& edges, const LeidenOptions& opt, const Progress& progress) {
  const std::size_t m = edges.from.size();
  if (edges.to.size() != m || edges.weight.size() != m) throw Error("leiden: edge arrays of different lengths");
  LeidenResult r;
  if (n <= 0) return r;
  IgnoreErrorsScope errors;
  SeededRng rng(opt.seed);

  igraph_vector_int_t ends;
  check(igraph_vector_int_init(&ends, static_cast<igraph_integer_t>(2 * m)), "allocation");
  for (std::size_t e = 0; e < m; ++e) {
    if (edges.from[e] < 0 || edges.from[e] >= n || edges.to[e] < 0 || edges.to[e] >= n) {
      igraph_vector_int_destroy(&ends);
      throw Error("leiden: an edge names a vertex out of range");
    }
    VECTOR(ends)[2 * e] = edges.from[e];
    VECTOR(ends)[2 * e + 1] = edges.to[e];
  }
  igraph_t graph;
  const igraph_error_t made = igraph_create(&graph, &ends, static_cast<igraph_integer_t>(n), IGRAPH_UNDIRECTED);
  igraph_vector_int_destroy(&ends);
  check(made, "building the graph");

  // Modularity in igraph's Leiden: node weights = strengths, resolution = gamma / (2 m) (its docs).
  igraph_vector_t weights, strength;
  igraph_vector_int_t membership;
  igraph_vector_init(&weights, static_cast<igraph_integer_t>(m));
  igraph_vector_init(&strength, static_cast<igraph_integer_t>(n));
  igraph_vector_int_init(&membership, static_cast<igraph_integer_t>(n));
  struct Cleanup {
    igraph_t* g;
    igraph_vector_t *w, *s;
    igraph_vector_int_t* mem;
    ~Cleanup() {
      igraph_vector_int_destroy(mem);
      igraph_vector_destroy(s);
      igraph_vector_destroy(w);
      igraph_destroy(g);
    }
  } cleanup{&graph, &weights, &strength, &membership};
  double total = 0;
  for (std::size_t e = 0; e < m; ++e) {
    VECTOR(weights)[e] = edges.weight[e];
    total += edges.weight[e];
  }
  for (std::size_t e = 0; e < m; ++e) {
    VECTOR(strength)[edges.from[e]] += edges.weight[e];
    VECTOR(strength)[edges.to[e]] += edges.weight[e];
  }
  if (total <= 0) throw Error("leiden: the graph has no weighted edges");

  // One pass at a time (start = true continues from the last membership), so a job can be
  // cancelled between passes and stops as soon as a pass changes nothing.
  std::vector<igraph_integer_t> before;
  for (r.iterations = 0; r.iterations < std::max(1, opt.maxIterations);) {
    before.assign(VECTOR(membership), VECTOR(membership) + n);
    igraph_integer_t clusters = 0;
    igraph_real_t quality = 0;
    check(igraph_community_leiden(&graph, &weights, &strength, opt.resolution / (2.0 * total), 0.01, r.iterations > 0,
                                  1, &membership, &clusters, &quality),
          "clustering");
    ++r.iterations;
    r.quality = quality;
    progress("leiden", r.iterations, opt.maxIterations);
    if (r.iterations > 1 && std::equal(before.begin(), before.end(), VECTOR(membership))) break;
  }

  // Communities numbered by size (largest first, ties by first vertex) whatever igraph's order.
  std::vector<std::int64_t> size, first;
  for (std::int64_t v = 0; v < n; ++v) {
    const auto c = static_cast<std::size_t>(VECTOR(membership)[v]);
    if (c >= size.size()) {
      size.resize(c + 1, 0);
      first.resize(c + 1, n);
    }
    ++size[c];
    first[c] = std::min(first[c], v);
  }
  std::vector<std::size_t> order(size.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return size[a] != size[b] ? size[a] > size[b] : first[a] < first[b]; });
  std::vector<std::int32_t> rank(size.size(), -1);
  int used = 0;
  for (std::size_t c : order)
    if (size[c] > 0) rank[c] = used++;
  r.communities = used;
  r.membership.resize(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v)
    r.membership[static_cast<std::size_t>(v)] = rank[static_cast<std::size_t>(VECTOR(membership)[v])];
  return r;
}

} // namespace atlascope
