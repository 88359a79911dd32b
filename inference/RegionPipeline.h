#pragma once
// Region discovery as one job: features (CellTransformer embeddings, computed here or read from
// `embed`'s output, or the model-free composition baseline) -> optional spatial smoothing ->
// k-means at each resolution -> links between resolutions -> optional label smoothing -> scores
// (against the CCF, against any obs labelling such as a ground truth, spatial coherence) ->
// results written into a copy of the dataset, from which they reload without recomputation.
// Progress per stage and within stages; cancellable at every progress report.
#include "core/CellTable.h"
#include "core/SpatialSmoothing.h"
#include "inference/EmbeddingRun.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlascope::inference {

struct RegionPipelineOptions {
  ColumnOptions columns;
  std::string device = "auto";
  // Features: embeddings from `embedding` (an `embed` output) or computed with `weights` (a model
  // file; the embeddings go to embeddingOut, default OUT.embedding.h5); neither: the baseline.
  std::string embedding, weights, embeddingOut;
  // Without a model: "composition" (each cell's neighbourhood cell-type mix, the baseline a model
  // must beat) or "expression" (each cell's own expression, as a k-means on single cells would:
  // the other yardstick; it finds cell types more than regions).
  std::string baseline = "composition";
  EmbedRunOptions embed;
  std::vector<int> ks{25, 354, 670, 1300}; // the paper's resolutions
  int restarts = 3;
  int maxIterations = 300;
  double tolerance = 1e-4;
  std::uint64_t seed = 42;
  bool smooth = false;                     // smooth the features before clustering
  SmoothingOptions smoothing;              // (sigma in um)
  int smoothLabelsK = 0;                   // majority of the k nearest after clustering (0: off)
  std::string ccfLevel = "major";          // scores against the CCF at this level (leaf, depth:N, major; empty: none)
  std::string atlas = "ccf";               // the atlas scored against: ccf, or a BrainGlobe atlas of the CCF's space
  std::vector<std::string> compareColumns; // obs labellings scored as well
  // The synthetic brain's ground truth of CCF regions it split in two (obs hidden_subregion: 0
  // outside them, 2r+1 and 2r+2 the two parts of split region r): per split region, how well
  // each k separates its two parts (AMI, ARI over the region's cells). Empty: not scored.
  std::string subregionColumn;
  int coherenceK = 10;
  const CancellationToken* cancel = nullptr;
  std::function<void(const std::string& stage, std::int64_t done, std::int64_t total)> progress;
};

struct DiscoveredResolution {
  int k = 0;
  std::vector<std::int32_t> labels; // per kept cell (CellTable order)
  std::vector<std::int32_t> parent; // per region: its region at the next coarser k (-1 for the coarsest)
  double inertia = 0;
  int iterations = 0;
};

struct RegionPipelineResult {
  std::vector<DiscoveredResolution> resolutions; // ascending k
  std::vector<std::int64_t> fileRow;             // each kept cell's obs row (the labels' cell order)
  nlohmann::json summary;                        // stages, seconds, scores per k
};

// `out`: the dataset copy (.h5ad) with obs regions_k<k> (+ colours) and uns regions_k<k>_parent;
// empty: nothing written.
RegionPipelineResult runRegionPipeline(const std::string& data, const std::string& out,
                                       const RegionPipelineOptions& options);

// The regions a pipeline stored in a dataset copy (labels per obs row, -1 for none), ascending k.
std::vector<DiscoveredResolution> readDiscoveredRegions(const std::string& h5ad);

} // namespace atlascope::inference
