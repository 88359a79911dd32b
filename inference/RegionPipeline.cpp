#include "inference/RegionPipeline.h"

#include "core/Agreement.h"
#include "core/AnnDataResults.h"
#include "core/Atlas.h"
#include "core/AtlasCatalog.h"
#include "core/CcfLabels.h"
#include "core/Composition.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Neighborhood.h"
#include "core/Palette.h"
#include "core/RegionNames.h"
#include "inference/Device.h"
#include "inference/DeviceSmoothing.h"
#include "inference/ExpressionTable.h"
#include "inference/KMeans.h"
#include "inference/ModelFile.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <regex>

namespace atlascope::inference {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nlohmann::json scoresJson(const AgreementScores& s) {
  return {{"ami", s.adjustedMutualInformation},    {"ari", s.adjustedRand},
          {"nmi", s.normalizedMutualInformation},  {"homogeneity", s.homogeneity},
          {"completeness", s.completeness},        {"v_measure", s.vMeasure},
          {"reference_labels", s.referenceLabels}, {"cells", s.cells}};
}
} // namespace

RegionPipelineResult runRegionPipeline(const std::string& data, const std::string& out,
                                       const RegionPipelineOptions& o) {
  const auto start = Clock::now();
  RegionPipelineResult result;
  nlohmann::json& summary = result.summary;
  summary["stages"] = nlohmann::json::object();
  auto report = [&](const std::string& stage, std::int64_t done, std::int64_t total) {
    if (o.progress) o.progress(stage, done, total);
    if (o.cancel) o.cancel->throwIfCancelled();
  };
  if (o.ks.empty()) throw Error("no resolutions (k) given");
  auto t = Clock::now();
  report("reading cells", 0, 1);
  const CellTable cells = readCellTable(data, o.columns);
  const std::int64_t n = cells.size();
  for (int k : o.ks)
    if (k < 1 || k > n)
      throw Error("k = " + std::to_string(k) + " is not between 1 and the number of cells (" + std::to_string(n) + ")");
  summary["cells"] = n;
  summary["stages"]["read"] = since(t);

  // Features.
  t = Clock::now();
  const std::string dev = resolveDevice(o.device);
  const torch::Device td = dev == "cuda" ? torch::Device(torch::kCUDA, cudaIndex()) : torch::Device(torch::kCPU);
  if (dev == "cpu") configureCpuThreads();
  summary["device"] = dev;
  torch::Tensor features;
  std::string embeddingPath = o.embedding;
  if (embeddingPath.empty() && !o.weights.empty()) {
    embeddingPath = !o.embeddingOut.empty() ? o.embeddingOut : (out.empty() ? data : out) + ".embedding.h5";
    ModelFile mf = loadModelFile(o.weights);
    EmbedRunOptions eo = o.embed;
    eo.device = dev;
    eo.cancel = o.cancel;
    eo.progress = [&](const std::string& stage, std::int64_t done, std::int64_t total, double) {
      report(stage, done, total);
    };
    const EmbedRunResult r = embedDataset(mf, data, o.columns, embeddingPath, eo);
    if (r.rank != 0) return {}; // a rank of a sharded embedding: the rest runs on rank 0
    summary["embedding"] = {{"path", embeddingPath}, {"cells_per_s", r.cellsPerSecond}, {"seconds", r.seconds}};
  }
  if (!embeddingPath.empty()) {
    Hdf5File e(embeddingPath);
    // The tensor keeps the values read (4M x 384 floats: no second copy).
    auto emb = std::make_shared<NdArray<float>>(e.readFloat("/embedding"));
    if (emb->shape.size() != 2 || emb->shape[0] != n)
      throw FileError(embeddingPath, "has " + std::to_string(emb->shape.empty() ? 0 : emb->shape[0]) +
                                         " embeddings for " + std::to_string(n) +
                                         " cells (was it computed for this dataset?)");
    features = torch::from_blob(
        emb->data.data(), {emb->shape[0], emb->shape[1]}, [emb](void*) {}, torch::kFloat32);
    summary["features"] = "CellTransformer embedding";
  } else if (o.baseline == "expression") {
    report("reading expression", 0, n);
    ExpressionTableOptions eo;
    eo.device = td;
    Progress p;
    p.report = [&](const std::string& stage, std::int64_t done, std::int64_t total) { report(stage, done, total); };
    p.cancel = o.cancel;
    features = loadExpressionTable(ExpressionSource(data, o.columns), cells, eo, p);
    summary["features"] = "own expression";
  } else if (o.baseline != "composition") {
    throw Error("unknown baseline '" + o.baseline + "' (composition or expression)");
  } else {
    if (cells.types.names.empty()) throw Error("the composition baseline needs a cell-type column (--type COL)");
    report("neighbourhood composition", 0, n);
    const ModelPositions pos = modelPositions(cells);
    NeighborhoodIndex index(pos.x.data(), pos.y.data(), pos.section.data(), n);
    const auto comp =
        neighborhoodComposition(index.compute(0, n), cells.cellType, static_cast<int>(cells.types.names.size()));
    features =
        torch::from_blob(const_cast<float*>(comp.data()), {n, static_cast<std::int64_t>(cells.types.names.size())})
            .clone();
    summary["features"] = "composition baseline";
  }
  summary["stages"]["features"] = since(t);

  features = features.to(td);
  if (o.smooth) {
    // On a GPU by products and topk (DeviceSmoothing); on the CPU the grid search of core.
    t = Clock::now();
    Progress p;
    p.report = [&](const std::string& stage, std::int64_t done, std::int64_t total) { report(stage, done, total); };
    p.cancel = o.cancel;
    if (td.is_cuda()) {
      features = smoothFeaturesOnDevice(features, cells.x, cells.y, cells.section, o.smoothing, p);
    } else {
      const torch::Tensor f = features.contiguous();
      const std::vector<float> in(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
      const auto sm = smoothFeatures(cells.x, cells.y, cells.section, in, f.size(1), o.smoothing, p);
      features = torch::from_blob(const_cast<float*>(sm.data()), f.sizes()).clone();
    }
    summary["stages"]["smoothing"] = since(t);
  }

  // Clustering at each k, coarse to fine, each linked to the previous.
  std::vector<int> ks = o.ks;
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  t = Clock::now();
  summary["resolutions"] = nlohmann::json::array();
  for (std::size_t r = 0; r < ks.size(); ++r) {
    const auto tk = Clock::now();
    KMeansOptions ko;
    ko.k = ks[r];
    ko.restarts = o.restarts;
    ko.maxIterations = o.maxIterations;
    ko.tolerance = o.tolerance;
    ko.seed = o.seed;
    Progress p;
    const std::string stage = "k-means k=" + std::to_string(ks[r]);
    p.report = [&](const std::string&, std::int64_t done, std::int64_t total) { report(stage, done, total); };
    p.cancel = o.cancel;
    KMeansResult km = kmeans(features, ko, p);
    DiscoveredResolution d;
    d.k = ks[r];
    d.labels = std::move(km.labels);
    if (o.smoothLabelsK > 0) {
      SmoothingOptions lo = o.smoothing;
      lo.k = o.smoothLabelsK;
      d.labels = smoothLabels(cells.x, cells.y, cells.section, d.labels, lo);
    }
    d.parent = r == 0 ? std::vector<std::int32_t>(static_cast<std::size_t>(d.k), -1)
                      : linkResolutions(result.resolutions.back().labels, d.labels, d.k);
    d.inertia = km.inertia;
    d.iterations = km.iterations;
    summary["resolutions"].push_back(
        {{"k", d.k}, {"inertia", d.inertia}, {"iterations", d.iterations}, {"seconds", since(tk)}});
    result.resolutions.push_back(std::move(d));
  }
  summary["stages"]["clustering"] = since(t);

  // Scores.
  t = Clock::now();
  report("scores", 0, 1);
  std::vector<std::pair<std::string, std::vector<std::int32_t>>> references;
  // The CCF leaves name the regions in the result ("k25-3 · CP 82%").
  std::unique_ptr<Atlas> atlas;
  std::vector<std::int32_t> ccfLeaves;
  if (cells.hasCcf() && (!o.ccfLevel.empty() || !out.empty())) {
    atlas = std::make_unique<Atlas>(openAtlas(o.atlas));
    requireCcfSpace(*atlas);
    if (!out.empty()) ccfLeaves = ccfLabels(*atlas, cells, {"leaf"});
  }
  if (!o.ccfLevel.empty()) {
    if (atlas) {
      const std::string prefix = o.atlas.empty() || o.atlas == kBundledAtlasName ? "ccf" : atlas->name();
      references.emplace_back(prefix + "_" + o.ccfLevel, o.ccfLevel == "leaf" && !ccfLeaves.empty()
                                                             ? ccfLeaves
                                                             : ccfLabels(*atlas, cells, {o.ccfLevel}));
    } else {
      summary["ccf"] = "the dataset has no CCF coordinates: no comparison with the CCF";
    }
  }
  for (const std::string& column : o.compareColumns) {
    const ObsLabels l = readObsLabels(data, column);
    std::vector<std::int32_t> ref;
    ref.reserve(static_cast<std::size_t>(n));
    for (std::int64_t r : cells.fileRow) ref.push_back(l.codes[static_cast<std::size_t>(r)]);
    references.emplace_back(column, std::move(ref));
  }
  std::vector<std::int32_t> parts;
  if (!o.subregionColumn.empty()) {
    const ObsLabels l = readObsLabels(data, o.subregionColumn);
    for (std::int64_t r : cells.fileRow) {
      const std::int32_t code = l.codes[static_cast<std::size_t>(r)];
      // Categorical columns carry names: use the numeric value of the name when there is one.
      std::int32_t v = code;
      if (code >= 0 && !l.names.empty()) {
        try {
          v = std::stoi(l.names[static_cast<std::size_t>(code)]);
        } catch (const std::exception&) {
          v = code;
        }
      }
      parts.push_back(v);
    }
  }
  std::vector<std::int32_t> section32(cells.section.begin(), cells.section.end());
  for (std::size_t r = 0; r < result.resolutions.size(); ++r) {
    const DiscoveredResolution& d = result.resolutions[r];
    nlohmann::json& entry = summary["resolutions"][r];
    for (const auto& [name, ref] : references)
      entry["scores"][name] = scoresJson(agreement(contingency(ref, d.labels)));
    if (!parts.empty()) {
      // Per split region: its cells' part (1 or 2) against their discovered labels.
      std::map<std::int32_t, std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>>> byRegion;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int32_t v = parts[static_cast<std::size_t>(i)];
        if (v <= 0) continue;
        auto& [truth, found] = byRegion[(v - 1) / 2];
        truth.push_back((v - 1) % 2);
        found.push_back(d.labels[static_cast<std::size_t>(i)]);
      }
      nlohmann::json regions = nlohmann::json::array();
      double meanAmi = 0;
      for (const auto& [region, pair] : byRegion) {
        const AgreementScores s = agreement(contingency(pair.first, pair.second));
        regions.push_back(
            {{"region", region}, {"cells", s.cells}, {"ami", s.adjustedMutualInformation}, {"ari", s.adjustedRand}});
        meanAmi += s.adjustedMutualInformation / static_cast<double>(byRegion.size());
      }
      entry["hidden_subregions"] = {{"mean_ami", meanAmi}, {"regions", regions}};
    }
    entry["spatial_coherence"] = spatialCoherence(cells.x, cells.y, section32, d.labels, d.k, o.coherenceK).overall;
  }
  summary["stages"]["scores"] = since(t);

  // Into a copy of the dataset (obs rows: cells skipped for bad positions have no region).
  if (!out.empty()) {
    t = Clock::now();
    report("writing results", 0, 1);
    std::int64_t rows = 0;
    {
      Hdf5File f(data);
      const std::string index = f.hasAttribute("/obs", "_index") ? f.readStringAttribute("/obs", "_index") : "_index";
      rows = f.shape("/obs/" + index)[0];
    }
    std::vector<CategoricalColumn> columns;
    std::vector<UnsIntArray> parents;
    std::vector<UnsStringArray> names;
    for (const DiscoveredResolution& d : result.resolutions) {
      CategoricalColumn col;
      col.name = "regions_k" + std::to_string(d.k);
      col.codes.assign(static_cast<std::size_t>(rows), -1);
      for (std::int64_t i = 0; i < n; ++i)
        col.codes[static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)])] =
            d.labels[static_cast<std::size_t>(i)];
      for (int c = 0; c < d.k; ++c) col.categories.push_back("k" + std::to_string(d.k) + "-" + std::to_string(c));
      col.colours = categoricalPalette(static_cast<std::size_t>(d.k));
      if (!ccfLeaves.empty())
        names.push_back(
            {regionNamesKey(col.name), ccfRegionNames(ccfLeaves, d.labels, col.categories, atlas->structures())});
      columns.push_back(std::move(col));
      parents.push_back({"regions_k" + std::to_string(d.k) + "_parent", d.parent});
    }
    writeResultsToCopy(data, out, columns, {}, parents, names);
    summary["out"] = out;
    summary["stages"]["write"] = since(t);
  }
  result.fileRow = cells.fileRow;
  summary["seconds"] = since(start);
  return result;
}

std::vector<DiscoveredResolution> readDiscoveredRegions(const std::string& h5ad) {
  std::vector<DiscoveredResolution> out;
  const std::regex name(R"(regions_k(\d+))");
  Hdf5File f(h5ad);
  for (const std::string& column : listObsColumns(h5ad)) {
    std::smatch m;
    if (!std::regex_match(column, m, name)) continue;
    DiscoveredResolution d;
    d.k = std::stoi(m[1]);
    const ObsLabels l = readObsLabels(h5ad, column);
    d.labels = l.codes;
    const std::string parentKey = "/uns/" + column + "_parent";
    if (f.exists(parentKey)) {
      const auto p = f.readInt64(parentKey);
      d.parent.assign(p.data.begin(), p.data.end());
    }
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(),
            [](const DiscoveredResolution& a, const DiscoveredResolution& b) { return a.k < b.k; });
  return out;
}

} // namespace atlascope::inference
