#pragma once
// Cell types from expression, for data straight out of segmentation (no clustering yet), so that
// CellTransformer, which conditions on each cell's type, can be trained and run on it. The
// recipe is scanpy's standard one: counts normalised to the median total per cell, log1p, the
// most variable genes of a large panel, z-scored genes, PCA (on the GPU when there is one), a
// k-nearest-neighbour graph on the components, and Leiden (modularity, a resolution) on it, or
// k-means on the components. Each type's marker genes are the genes whose mean (normalised,
// log1p) expression exceeds the rest of the cells' by the most. Deterministic for a seed on the
// CPU; on a GPU up to floating-point ties in the neighbour search.
//
// The header keeps LibTorch out of its users (the CLI command that calls it stays cheap to build).
#include "core/CellTable.h"
#include "core/Progress.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace atlascope::inference {

struct CellTypingOptions {
  std::string method = "leiden"; // or "kmeans"
  double resolution = 1.0;       // Leiden: > 1 gives more, smaller types
  int k = 25;                    // k-means: the number of types
  int neighbours = 15;           // of each cell in the graph (scanpy's default)
  int components = 50;           // principal components at most (scanpy's default)
  // Panels up to this many genes are used whole: targeted MERFISH panels (100-1,000 genes) are
  // chosen gene by gene to tell types apart, and dropping "less variable" genes loses rare
  // types' markers. Larger panels (whole transcriptome, 5k panels) keep this many genes of the
  // highest normalised dispersion (Seurat's flavour, scanpy's default of 2,000).
  int highlyVariableGenes = 2000;
  int markers = 10; // marker genes kept per type
  // How X holds expression: "auto" (detected on the first rows: integers are counts;
  // log2(count + 1), as the ABC atlas and the synthetic brain store it, and log1p are undone to
  // counts; anything else non-negative, e.g. counts divided by cell volume, is taken as it is),
  // "counts", "log2", "log1p" or "normalised" (X is already normalised and logged: used as is).
  std::string input = "auto";
  std::uint64_t seed = 0;
  std::string device = "auto"; // "cpu", "cuda" or "auto"
  Progress progress;
};

struct CellTypingResult {
  std::vector<std::int32_t> labels;              // per cell of the table: the type, 0 the largest
  std::vector<std::string> names;                // "C01", "C02", ... (sort as numbered)
  std::vector<std::vector<std::string>> markers; // per type, the best first
  std::vector<float> pcs;                        // cells x components, row-major (obsm X_pca)
  int components = 0;
  double explainedVariance = 0; // fraction of the scaled genes' variance the components hold
  int genesUsed = 0;            // after the highly-variable selection
  std::string inputScale;       // what "auto" decided, or the option
  std::string device;
  double quality = 0;                    // Leiden: the modularity; k-means: the inertia
  std::map<std::string, double> seconds; // per step
};

CellTypingResult typeCells(const CellTable& cells, const ExpressionSource& expression,
                           const CellTypingOptions& options);

} // namespace atlascope::inference
