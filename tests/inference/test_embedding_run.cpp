// Embedding a dataset from disk to disk on the CPU: the output equals the model applied directly,
// a cancelled run resumes from its completed chunks to the same result, checkpoints carry their
// panel, and a dataset that does not match the model's genes or types is a clear error.
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/SyntheticBrain.h"
#include "inference/ChunkLayout.h"
#include "inference/Device.h"
#include "inference/Embedding.h"
#include "inference/EmbeddingRun.h"
#include "inference/Init.h"
#include "inference/ModelFile.h"
#include "tests/TestPaths.h"

#include <QTemporaryDir>
#include <QTest>

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

using namespace atlascope;
using namespace atlascope::inference;

class TestEmbeddingRun : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::string data_, model_;
  CellTable cells_;
  ModelConfig cfg_;

  std::string path(const char* n) { return dir_.filePath(n).toStdString(); }

private Q_SLOTS:
  void initTestCase() {
    configureCpuThreads(2);
    const Atlas atlas = Atlas::load(bundledAtlasPaths());
    SyntheticBrainOptions o;
    o.maxCells = 3000;
    o.genes = 24;
    o.cellTypes = 12;
    o.cellsPerMm2 = 3000;
    data_ = path("cells.h5ad");
    generateSyntheticBrain(atlas, o, data_);
    cells_ = readCellTable(data_);
    cfg_.embedDim = 32;
    cfg_.heads = 4;
    cfg_.encoderLayers = 1;
    cfg_.decoderLayers = 1;
    cfg_.feedForward = 64;
    cfg_.genes = 24;
    cfg_.cellTypes = 12;
    std::vector<std::string> types = cells_.types.names;
    std::sort(types.begin(), types.end());
    model_ = path("model.h5");
    saveCheckpoint(CellTransformer(initWeights(cfg_, 5), cfg_, "init"), cells_.genes, types, model_);
  }

  void checkpointRoundTrip() {
    const ModelFile m = loadModelFile(model_);
    QCOMPARE(m.genes, cells_.genes);
    QCOMPARE(m.cellTypes.size(), std::size_t(12));
    QCOMPARE(m.model->config().embedDim, 32);
    const auto w = initWeights(cfg_, 5);
    for (const auto& [k, v] : w) QVERIFY2(torch::equal(v, m.model->parameters().at(k)), k.c_str());
    QVERIFY_THROWS_EXCEPTION(FileError, loadModelFile(data_)); // not a model
  }

  void embedMatchesDirectAndResumes() {
    ModelFile m = loadModelFile(model_);
    EmbedRunOptions o;
    o.device = "cpu";
    o.chunkCells = 1000;
    const auto r = embedDataset(m, data_, {}, path("emb.h5"), o);
    QCOMPARE(r.cells, std::int64_t(3000));
    // Tapered chunks (the default): 125 125 250 500 | 1000 | 500 250 125 125.
    QCOMPARE(r.chunks, std::int64_t(9));
    QVERIFY(r.taperedChunks);
    QVERIFY(r.meanNeighbors > 50);
    Hdf5File f(path("emb.h5"));
    const auto emb = f.readFloat("/embedding");
    QCOMPARE(emb.shape, (std::vector<std::int64_t>{3000, 32}));
    QVERIFY(!QFileInfo::exists(dir_.filePath("emb.h5.parts")));

    // The same cells through the model directly.
    std::vector<float> x(cells_.x.size()), y(cells_.y.size());
    std::vector<std::int64_t> s(cells_.section.begin(), cells_.section.end());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = cells_.x[i] / 10;
      y[i] = cells_.y[i] / 10;
    }
    NeighborhoodIndex index(x.data(), y.data(), s.data(), cells_.size());
    ExpressionSource src(data_);
    torch::Tensor expr = torch::empty({cells_.size(), 24});
    src.readRows(0, cells_.size(), expr.data_ptr<float>());
    std::vector<std::string> sorted = cells_.types.names;
    std::sort(sorted.begin(), sorted.end());
    torch::Tensor types = torch::empty({cells_.size()}, torch::kInt64);
    for (std::int64_t i = 0; i < cells_.size(); ++i)
      types[i] =
          std::lower_bound(sorted.begin(), sorted.end(),
                           cells_.types.names[static_cast<std::size_t>(cells_.cellType[static_cast<std::size_t>(i)])]) -
          sorted.begin();
    const Output direct = embedNeighborhoods(*m.model, expr, types, index.compute(0, cells_.size()), 0, {});
    const torch::Tensor fromFile = torch::from_blob(const_cast<float*>(emb.data.data()), {3000, 32}).clone();
    QVERIFY((direct.embedding - fromFile).abs().max().item<double>() < 1e-5);

    // Uniform chunks (the layout before): other batches, the same embeddings.
    {
      EmbedRunOptions u = o;
      u.taperedChunks = false;
      const auto ur = embedDataset(m, data_, {}, path("emb-uniform.h5"), u);
      QCOMPARE(ur.chunks, std::int64_t(3));
      QVERIFY(!ur.taperedChunks);
      const auto ue = Hdf5File(path("emb-uniform.h5")).readFloat("/embedding");
      const torch::Tensor uniform = torch::from_blob(const_cast<float*>(ue.data.data()), {3000, 32});
      QVERIFY((uniform - fromFile).abs().max().item<double>() < 1e-5);
    }

    // Batches built on host threads ahead of the model (the default), across chunk boundaries or
    // not, or between batches on the queueing thread: the same batches, so the same bits, whatever
    // the lookahead.
    QVERIFY(r.batchBuildSeconds > 0);
    QVERIFY(r.chunksBuiltAhead <= r.chunks - 1); // never the first (how many: a matter of timing)
    for (const auto& [lookahead, across] : {std::pair{0, true}, {1, true}, {7, true}, {3, false}, {1, false}}) {
      EmbedRunOptions l = o;
      l.batchLookahead = lookahead;
      l.batchesAcrossChunks = across;
      const std::string out =
          dir_.filePath(QStringLiteral("emb-lookahead%1-%2.h5").arg(lookahead).arg(across)).toStdString();
      const auto lr = embedDataset(m, data_, {}, out, l);
      QVERIFY2(Hdf5File(out).readFloat("/embedding").data == emb.data, out.c_str());
      if (!across || lookahead == 0) QCOMPARE(lr.chunksBuiltAhead, std::int64_t(0));
    }

    // Cancel after the first chunk, then resume: the completed chunks (the writer also finishes the
    // chunk already computed when the cancel came) are reused, the result equal.
    CancellationToken cancel;
    EmbedRunOptions c = o;
    c.cancel = &cancel;
    c.progress = [&](const std::string& stage, std::int64_t done, std::int64_t, double) {
      if (stage == "embedding" && done >= 1000) cancel.cancel();
    };
    QVERIFY_THROWS_EXCEPTION(Cancelled, embedDataset(m, data_, {}, path("emb2.h5"), c));
    QVERIFY(!QFileInfo::exists(dir_.filePath("emb2.h5")));
    QVERIFY(QFileInfo::exists(dir_.filePath("emb2.h5.parts/chunk-000000.f32")));
    // Resumed with other defaults (uniform chunks): the parts keep the layout they were written in.
    EmbedRunOptions other = o;
    other.taperedChunks = false;
    const auto resumed = embedDataset(m, data_, {}, path("emb2.h5"), other);
    QVERIFY2(resumed.resumedCells >= 1000 && resumed.resumedCells < 3000,
             qPrintable(QString::number(resumed.resumedCells)));
    QCOMPARE(resumed.chunks, std::int64_t(9));
    Hdf5File f2(path("emb2.h5"));
    QCOMPARE(f2.readFloat("/embedding").data, emb.data);

    // A damaged layout in the record of the interrupted run: it starts over, with the same result.
    QVERIFY_THROWS_EXCEPTION(Cancelled, embedDataset(m, data_, {}, path("emb3.h5"), c));
    nlohmann::json record;
    std::ifstream(path("emb3.h5.parts/run.json")) >> record;
    QCOMPARE(record["chunk_starts"].size(), std::size_t(10));
    record["chunk_starts"] = {0, 1000, 500, 3000};
    std::ofstream(path("emb3.h5.parts/run.json")) << record.dump();
    const auto fresh = embedDataset(m, data_, {}, path("emb3.h5"), o);
    QCOMPARE(fresh.resumedCells, std::int64_t(0));
    QCOMPARE(Hdf5File(path("emb3.h5")).readFloat("/embedding").data, emb.data);
  }

  void chunkLayouts() {
    // One share of 4M cells in chunks of 250k: 1/8 1/8 1/4 1/2 at each end, 14 full between.
    const ChunkLayout t = taperedChunks(4000000, 250000, 1);
    QVERIFY(t.valid(4000000));
    QCOMPARE(t.chunks(), std::int64_t(22));
    const std::int64_t ends[4] = {31250, 31250, 62500, 125000};
    for (int i = 0; i < 4; ++i) {
      QCOMPARE(t.count(i), ends[i]);
      QCOMPARE(t.count(t.chunks() - 1 - i), ends[i]);
    }
    for (std::int64_t k = 4; k < t.chunks() - 4; ++k) QCOMPARE(t.count(k), std::int64_t(250000));
    // Two ranks: each share tapered at its own ends, each rank exactly its share.
    const ChunkLayout two = taperedChunks(4000001, 250000, 2);
    QVERIFY(two.valid(4000001));
    const auto r0 = two.rankChunks(0, 2), r1 = two.rankChunks(1, 2);
    QCOMPARE(r0.first, std::int64_t(0));
    QCOMPARE(r0.second, r1.first);
    QCOMPARE(r1.second, two.chunks());
    QCOMPARE(two.begin(r1.first), std::int64_t(2000000));
    QCOMPARE(two.count(r1.first - 1), std::int64_t(31250));
    QCOMPARE(two.count(r1.first), std::int64_t(31250));
    // Any layout over any number of ranks (a resumed run): every chunk once, in order.
    for (const ChunkLayout& l : {t, two, uniformChunks(1001, 250), taperedChunks(37, 10, 3)})
      for (int world = 1; world <= 5; ++world) {
        std::int64_t next = 0;
        for (int r = 0; r < world; ++r) {
          const auto mine = l.rankChunks(r, world);
          QCOMPARE(mine.first, next);
          QVERIFY(mine.second >= mine.first);
          next = mine.second;
        }
        QCOMPARE(next, l.chunks());
      }
    // Short shares taper around half of themselves; tiny ones are one chunk; none is empty.
    QCOMPARE(taperedChunks(100, 1000, 1).starts, (std::vector<std::int64_t>{0, 6, 12, 24, 50, 76, 88, 94, 100}));
    QCOMPARE(taperedChunks(10, 250000, 1).chunks(), std::int64_t(1));
    QCOMPARE(taperedChunks(20, 4, 1).starts, (std::vector<std::int64_t>{0, 4, 8, 12, 16, 20}));
    QCOMPARE(taperedChunks(0, 250000, 1).chunks(), std::int64_t(0));
    QCOMPARE(taperedChunks(3, 1, 8).chunks(), std::int64_t(3));
    QCOMPARE(uniformChunks(1001, 250).count(4), std::int64_t(1));
    // What a record read back must be.
    const auto layoutOf = [](std::vector<std::int64_t> starts) { return ChunkLayout{std::move(starts)}; };
    QVERIFY(!layoutOf({0, 5, 5, 10}).valid(10));
    QVERIFY(!layoutOf({1, 10}).valid(10));
    QVERIFY(!layoutOf({0, 9}).valid(10));
    QVERIFY(layoutOf({0}).valid(0));
  }

  void panelMismatches() {
    ModelFile m = loadModelFile(model_);
    CellTable t = cells_;
    // Missing genes are listed.
    t.genes.erase(t.genes.begin(), t.genes.begin() + 12);
    try {
      mapPanel(m, t, true);
      QFAIL("no error for missing genes");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("12 of the model's 24 genes are not in the data: Gene0001"), e.what());
    }
    // Another order: an error that names --reorder-genes, or a mapping with it.
    t = cells_;
    std::reverse(t.genes.begin(), t.genes.end());
    try {
      mapPanel(m, t, false);
      QFAIL("no error for reordered genes");
    } catch (const Error& e) {
      QVERIFY(QString(e.what()).contains("--reorder-genes"));
    }
    const PanelMapping map = mapPanel(m, t, true);
    QCOMPARE(map.geneColumns.front(), std::int64_t(23));
    // Unknown cell types are listed.
    t = cells_;
    t.types.names[0] = "999 Unheard-of type";
    try {
      mapPanel(m, t, false);
      QFAIL("no error for an unknown type");
    } catch (const Error& e) {
      QVERIFY(QString(e.what()).contains("999 Unheard-of type"));
    }
  }
};

QTEST_APPLESS_MAIN(TestEmbeddingRun)
#include "test_embedding_run.moc"
