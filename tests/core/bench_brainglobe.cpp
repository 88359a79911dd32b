// Figures for issue 17 (not a test): the bundled CCF written as a BrainGlobe v1 folder and a v3
// layout at 25 um (factor 1) or coarser, the time to open each (labels only, then with template and
// hemispheres), and the CCF scored against its own tree cut at a depth. One JSON line per figure.
//   build/tests/bench_brainglobe [FACTOR [DEPTH [FOLDER]]]   default: 1 5 /tmp/atlascope-bench-brainglobe
#include "core/AtlasCatalog.h"
#include "core/AtlasComparison.h"
#include "core/FileSystem.h"
#include "tests/BrainGlobeFixtures.h"

#include <chrono>
#include <cstdio>
#include <iostream>

using namespace atlascope;

int main(int argc, char** argv) {
  const int factor = argc > 1 ? std::atoi(argv[1]) : 1;
  const int depth = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string dir = argc > 3 ? argv[3] : "/tmp/atlascope-bench-brainglobe";
  const auto now = [] { return std::chrono::steady_clock::now(); };
  const auto since = [&](auto t) { return std::chrono::duration<double>(now() - t).count(); };
  auto t = now();
  const Atlas ccf = Atlas::load(bundledAtlasPaths());
  const double ccfSeconds = since(t);
  const fixtures::LabelGrid g = fixtures::downsample(ccf, factor);
  removeFolder(dir);
  fixtures::WriteOptions o;
  o.chunk = 128; // brainglobe-atlasapi's chunks
  o.symmetric = false;
  t = now();
  const std::string v1 = fixtures::writeV1(dir, g, ccf.structures(), o);
  const std::string v3 = fixtures::writeV3(dir, g, ccf.structures(), o);
  const double writeSeconds = since(t);
  nlohmann::json line = {{"figure", "brainglobe_open"},
                         {"shape", g.shape},
                         {"spacing_um", g.spacingUm},
                         {"bundled_nrrd_open_s", ccfSeconds},
                         {"fixtures_write_s", writeSeconds}};
  for (const auto& [name, where] : {std::pair<std::string, std::string>{"v1", v1}, {"v3", v3}}) {
    t = now();
    const Atlas a = openAtlas(where);
    line[name + "_labels_s"] = since(t);
    AtlasOpenOptions all;
    all.reference = all.hemispheres = true;
    t = now();
    const Atlas b = openAtlas(where, all);
    line[name + "_labels_template_hemispheres_s"] = since(t);
    bool same = a.annotation().codes().size() == ccf.annotation().codes().size() || factor != 1;
    if (factor == 1)
      for (std::int64_t i = 0; same && i < a.annotation().voxelCount(); i += 97)
        same = a.annotation().codeIds()[a.annotation().codes()[static_cast<std::size_t>(i)]] ==
               ccf.annotation().codeIds()[ccf.annotation().codes()[static_cast<std::size_t>(i)]];
    line[name + "_equals_bundled_ccf"] = same;
  }
  std::cout << line.dump() << std::endl;
  const Atlas a = openAtlas(v1);
  fixtures::WriteOptions c;
  c.name = "ccf_depth" + std::to_string(depth);
  const Atlas b =
      openAtlas(fixtures::writeV1(dir, fixtures::coarsened(g, ccf.structures(), depth), ccf.structures(), c));
  t = now();
  const AtlasComparison cmp = compareAtlases(a, b);
  const double compareSeconds = since(t);
  nlohmann::json depths = nlohmann::json::array();
  for (const auto& d : cmp.byDepth)
    depths.push_back({{"depth", d.depth}, {"ami", d.scores.adjustedMutualInformation}, {"ari", d.scores.adjustedRand}});
  std::cout << nlohmann::json{{"figure", "atlas_vs_coarsened_self"},
                              {"depth", depth},
                              {"voxels", cmp.table.total},
                              {"a_labels", cmp.scores.referenceLabels},
                              {"b_labels", cmp.scores.predictedLabels},
                              {"ami", cmp.scores.adjustedMutualInformation},
                              {"ari", cmp.scores.adjustedRand},
                              {"v_measure", cmp.scores.vMeasure},
                              {"homogeneity", cmp.scores.homogeneity},
                              {"completeness", cmp.scores.completeness},
                              {"merges", cmp.correspondence.merges.size()},
                              {"one_to_one", cmp.correspondence.oneToOne.size()},
                              {"by_depth_of_a", depths},
                              {"compare_s", compareSeconds}}
                   .dump()
            << std::endl;
  return 0;
}
