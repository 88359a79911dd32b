// The region pipeline end to end on a small synthetic brain (the composition baseline and a
// model's embeddings): regions at each k linked into a tree, scores against the CCF and the hidden
// sub-regions, results reloaded from the dataset copy without recomputation, a cancelled run
// leaving an earlier result intact, and bad requests answered clearly.
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/Hdf5Writer.h"
#include "core/RegionNames.h"
#include "core/SpatialSmoothing.h"
#include "core/SyntheticBrain.h"
#include "inference/Device.h"
#include "inference/DeviceSmoothing.h"
#include "inference/Init.h"
#include "inference/ModelFile.h"
#include "inference/RegionPipeline.h"
#include "tests/TestPaths.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QTest>

#include <torch/torch.h>

#include <random>

using namespace atlascope;
using namespace atlascope::inference;

class TestRegionPipeline : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::string data_;

  std::string path(const char* n) { return dir_.filePath(n).toStdString(); }

private Q_SLOTS:
  void initTestCase() {
    configureCpuThreads(2);
    SyntheticBrainOptions o;
    o.maxCells = 12000;
    o.genes = 16;
    o.cellTypes = 20;
    o.cellsPerMm2 = 3000;
    o.hiddenSubregions = 2;
    data_ = path("cells.h5ad");
    generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), o, data_);
  }

  void baselineRegionsReloadAndScore() {
    RegionPipelineOptions o;
    o.ks = {20, 6};
    o.subregionColumn = "hidden_subregion";
    std::vector<std::string> stages;
    o.progress = [&](const std::string& s, std::int64_t, std::int64_t) {
      if (stages.empty() || stages.back() != s) stages.push_back(s);
    };
    const RegionPipelineResult r = runRegionPipeline(data_, path("regions.h5ad"), o);
    QCOMPARE(int(r.resolutions.size()), 2);
    QCOMPARE(r.resolutions[0].k, 6); // ascending
    QVERIFY(std::find(stages.begin(), stages.end(), "k-means k=20") != stages.end());
    // The tree: every fine region has a coarse parent holding most of its cells.
    for (std::int32_t p : r.resolutions[1].parent) QVERIFY(p >= 0 && p < 6);
    // Scores against the CCF (the generated brain has CCF coordinates) and the ground truth.
    const auto& s = r.summary["resolutions"][1];
    QVERIFY(s["scores"]["ccf_major"]["ami"].get<double>() > 0.05);
    QVERIFY(s.contains("hidden_subregions"));
    const double coherence = s["spatial_coherence"];
    QVERIFY2(coherence > 0.3 && coherence <= 1.0, qPrintable(QString::number(coherence)));
    // Reloaded from the copy: the same labels, per obs row, and the same tree.
    const auto back = readDiscoveredRegions(path("regions.h5ad"));
    QCOMPARE(int(back.size()), 2);
    const CellTable cells = readCellTable(data_);
    for (std::size_t k = 0; k < 2; ++k) {
      QCOMPARE(back[k].k, r.resolutions[k].k);
      QCOMPARE(back[k].parent, r.resolutions[k].parent);
      for (std::int64_t i = 0; i < cells.size(); ++i)
        QCOMPARE(back[k].labels[static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)])],
                 r.resolutions[k].labels[static_cast<std::size_t>(i)]);
    }
    // Each region named after its best CCF match, in uns/region_names.
    const auto names = readRegionNames(path("regions.h5ad"), "regions_k6");
    QCOMPARE(names.size(), std::size_t(6));
    for (std::size_t j = 0; j < names.size(); ++j)
      QVERIFY2(names[j].rfind("k6-" + std::to_string(j) + " \u00b7 ", 0) == 0 && names[j].back() == '%',
               names[j].c_str());
    QCOMPARE(readRegionNames(path("regions.h5ad"), "regions_k20").size(), std::size_t(20));
  }

  void embeddingsFromAModel() {
    const CellTable cells = readCellTable(data_);
    ModelConfig cfg;
    cfg.embedDim = 16;
    cfg.heads = 2;
    cfg.encoderLayers = 1;
    cfg.decoderLayers = 1;
    cfg.feedForward = 32;
    cfg.genes = 16;
    cfg.cellTypes = static_cast<int>(cells.types.names.size());
    std::vector<std::string> types = cells.types.names;
    std::sort(types.begin(), types.end());
    saveCheckpoint(CellTransformer(initWeights(cfg, 2), cfg, "init"), cells.genes, types, path("model.h5"));
    RegionPipelineOptions o;
    o.ks = {8};
    o.weights = path("model.h5");
    o.device = "cpu";
    const RegionPipelineResult r = runRegionPipeline(data_, path("model-regions.h5ad"), o);
    QCOMPARE(r.summary["features"].get<std::string>(), std::string("CellTransformer embedding"));
    QVERIFY(QFileInfo::exists(dir_.filePath("model-regions.h5ad.embedding.h5")));
    QCOMPARE(std::int64_t(r.resolutions[0].labels.size()), cells.size());
  }

  // The other yardstick: k-means on each cell's own expression finds cell types more than
  // regions, so on the synthetic brain it scores below the neighbourhood composition.
  void ownExpressionBaseline() {
    RegionPipelineOptions o;
    o.ks = {12};
    o.device = "cpu";
    o.restarts = 1;
    o.baseline = "expression";
    const RegionPipelineResult e = runRegionPipeline(data_, "", o);
    QCOMPARE(e.summary["features"].get<std::string>(), std::string("own expression"));
    o.baseline = "composition";
    const RegionPipelineResult c = runRegionPipeline(data_, "", o);
    const double amiE = e.summary["resolutions"][0]["scores"]["ccf_major"]["ami"],
                 amiC = c.summary["resolutions"][0]["scores"]["ccf_major"]["ami"];
    QVERIFY2(amiC > amiE, qPrintable(QString("composition %1, own expression %2").arg(amiC).arg(amiE)));
    o.baseline = "types";
    QVERIFY_THROWS_EXCEPTION(Error, runRegionPipeline(data_, "", o));
  }

  void cancelKeepsTheEarlierResult() {
    const auto before = QFileInfo(dir_.filePath("regions.h5ad")).lastModified();
    CancellationToken cancel;
    RegionPipelineOptions o;
    o.ks = {6, 20};
    o.cancel = &cancel;
    o.progress = [&](const std::string& s, std::int64_t, std::int64_t) {
      if (s == "k-means k=20") cancel.cancel();
    };
    QVERIFY_THROWS_EXCEPTION(Cancelled, runRegionPipeline(data_, path("regions.h5ad"), o));
    QCOMPARE(QFileInfo(dir_.filePath("regions.h5ad")).lastModified(), before);
    QCOMPARE(int(readDiscoveredRegions(path("regions.h5ad")).size()), 2);
  }

  void badRequests() {
    RegionPipelineOptions o;
    o.ks = {100000};
    try {
      runRegionPipeline(data_, path("x.h5ad"), o);
      QFAIL("no error for k larger than the cells");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("number of cells"), e.what());
    }
    o.ks = {5};
    o.embedding = path("model.h5"); // not an embedding file
    QVERIFY_THROWS_EXCEPTION(Error, runRegionPipeline(data_, path("x.h5ad"), o));
  }

  void deviceSmoothingEqualsCoreSmoothing() {
    // Random positions (no distance ties) in two sections; the torch path (the GPU's, run here on
    // the CPU) and the grid path must give the same weighted means.
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0, 2000);
    const std::int64_t n = 1500, d = 6;
    std::vector<float> x, y, f;
    std::vector<std::int32_t> s;
    for (std::int64_t i = 0; i < n; ++i) {
      x.push_back(u(rng));
      y.push_back(u(rng));
      s.push_back(i % 3 == 0 ? 1 : 0);
      for (std::int64_t c = 0; c < d; ++c) f.push_back(u(rng) / 100);
    }
    SmoothingOptions o;
    o.k = 40;
    o.sigma = 150;
    const std::vector<float> core = smoothFeatures(x, y, s, f, d, o);
    const torch::Tensor dev = smoothFeaturesOnDevice(torch::from_blob(f.data(), {n, d}).clone(), x, y, s, o);
    const torch::Tensor expected = torch::from_blob(const_cast<float*>(core.data()), {n, d});
    const double err = (dev - expected).abs().max().item<double>();
    QVERIFY2(err < 1e-4, qPrintable(QString::number(err)));
  }

  void noCcfCoordinatesIsSaidNotFatal() {
    // A dataset without CCF coordinates: regions and coherence as usual, and the summary says
    // why there are no CCF scores.
    const std::string p = path("noccf.h5ad");
    {
      Hdf5Writer w(p);
      w.createGroup("/obs");
      w.createGroup("/obs/subclass");
      w.createGroup("/obsm");
      std::vector<float> xy;
      std::vector<std::int64_t> sec;
      std::vector<std::int8_t> type;
      for (int i = 0; i < 400; ++i) {
        xy.push_back(static_cast<float>(i % 20) * 30);
        xy.push_back(static_cast<float>(i / 20) * 30);
        sec.push_back(0);
        type.push_back(static_cast<std::int8_t>((i % 20) < 10 ? 0 : 1));
      }
      w.writeArray("/obsm/spatial", H5Type::Float32, {400, 2}, xy.data());
      w.writeArray("/obs/section", H5Type::Int64, {400}, sec.data());
      w.setStringAttribute("/obs/subclass", "encoding-type", "categorical");
      w.writeArray("/obs/subclass/codes", H5Type::Int8, {400}, type.data());
      w.writeStrings("/obs/subclass/categories", {"A", "B"});
      w.commit();
    }
    RegionPipelineOptions o;
    o.ks = {2};
    const RegionPipelineResult r = runRegionPipeline(p, "", o);
    QVERIFY(r.summary.contains("ccf"));
    QVERIFY(QString::fromStdString(r.summary["ccf"].get<std::string>()).contains("no CCF coordinates"));
    QVERIFY(!r.summary["resolutions"][0].contains("scores"));
    QVERIFY(r.summary["resolutions"][0]["spatial_coherence"].get<double>() > 0.8);
  }

  void coherenceOfSolidAndScatteredLabels() {
    std::vector<float> x, y;
    std::vector<std::int32_t> s, solid, scattered;
    for (int i = 0; i < 60; ++i)
      for (int j = 0; j < 60; ++j) {
        x.push_back(float(i));
        y.push_back(float(j));
        s.push_back(0);
        solid.push_back(i < 30 ? 0 : 1);
        scattered.push_back((i * 7 + j * 13) % 4);
      }
    const SpatialCoherence a = spatialCoherence(x, y, s, solid, 2, 8);
    const SpatialCoherence b = spatialCoherence(x, y, s, scattered, 4, 8);
    QVERIFY2(a.overall > 0.9, qPrintable(QString::number(a.overall)));
    QVERIFY2(b.overall < 0.4, qPrintable(QString::number(b.overall)));
    QCOMPARE(int(a.perLabel.size()), 2);
  }
};

QTEST_APPLESS_MAIN(TestRegionPipeline)
#include "test_region_pipeline.moc"
