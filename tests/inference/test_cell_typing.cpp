// Cell types from expression (CellTyping): on the synthetic brain, Leiden on the kNN graph of the
// principal components recovers the generator's types (adjusted Rand index against `subclass`),
// deterministically for a seed; the k-means fallback, the highly-variable-gene selection of a
// large panel, the input-scale detection, markers and cancellation.
#include "core/Agreement.h"
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/SyntheticBrain.h"
#include "inference/CellTyping.h"

#include <QTemporaryDir>
#include <QTest>

#include <set>

using namespace atlascope;
using namespace atlascope::inference;

class TestCellTyping : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::string data_;
  std::unique_ptr<CellTable> cells_;
  std::unique_ptr<ExpressionSource> x_;

  double ari(const CellTypingResult& r) const { return agreement(cells_->cellType, r.labels).adjustedRand; }
  CellTypingOptions cpu() const {
    CellTypingOptions o;
    o.device = "cpu";
    return o;
  }

private Q_SLOTS:
  void initTestCase() {
    // The generator's default noise, panel and depth; fewer types than its 150 so that a small
    // brain has enough cells of each.
    SyntheticBrainOptions g;
    g.maxCells = 6000;
    g.cellTypes = 30;
    g.seed = 11;
    data_ = dir_.filePath("brain.h5ad").toStdString();
    generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, data_);
    cells_ = std::make_unique<CellTable>(readCellTable(data_));
    x_ = std::make_unique<ExpressionSource>(data_);
  }

  void recoversGeneratorTypes() {
    const CellTypingResult r = typeCells(*cells_, *x_, cpu());
    const double a = ari(r);
    qInfo("Leiden: %zu types for %zu generated, ARI %.3f, %d components (%.0f%% of the variance), input %s",
          r.names.size(), std::set<std::int32_t>(cells_->cellType.begin(), cells_->cellType.end()).size(), a,
          r.components, 100 * r.explainedVariance, r.inputScale.c_str());
    QVERIFY2(a >= 0.8, qPrintable(QString("ARI %1").arg(a)));
    QCOMPARE(r.inputScale, std::string("log2")); // the generator stores log2(count + 1)
    QCOMPARE(r.labels.size(), static_cast<std::size_t>(cells_->size()));
    QCOMPARE(r.markers.size(), r.names.size());
    QCOMPARE(r.markers.front().size(), std::size_t(10));
    QCOMPARE(r.names.front(), std::string("C01"));
    QCOMPARE(r.pcs.size(), static_cast<std::size_t>(cells_->size() * r.components));
    // Types are numbered by size, the largest first.
    std::vector<int> size(r.names.size(), 0);
    for (auto l : r.labels) ++size[static_cast<std::size_t>(l)];
    QVERIFY(std::is_sorted(size.rbegin(), size.rend()));
    // Deterministic for a seed.
    QCOMPARE(typeCells(*cells_, *x_, cpu()).labels, r.labels);
  }

  void resolutionAndKMeans() {
    CellTypingOptions o = cpu();
    o.resolution = 0.2;
    const auto coarse = typeCells(*cells_, *x_, o);
    o.resolution = 3;
    const auto fine = typeCells(*cells_, *x_, o);
    QVERIFY2(coarse.names.size() < fine.names.size(),
             qPrintable(QString("%1 vs %2").arg(coarse.names.size()).arg(fine.names.size())));
    o = cpu();
    o.method = "kmeans";
    o.k = 30;
    const auto k = typeCells(*cells_, *x_, o);
    QVERIFY(k.names.size() <= 30);
    qInfo("k-means (k 30): ARI %.3f", ari(k));
    QVERIFY(ari(k) > 0.5);
    QCOMPARE(typeCells(*cells_, *x_, o).labels, k.labels);
  }

  void largePanelKeepsVariableGenes() {
    CellTypingOptions o = cpu();
    o.highlyVariableGenes = 150; // the 500-gene panel counts as large
    const auto r = typeCells(*cells_, *x_, o);
    QCOMPARE(r.genesUsed, 150);
    qInfo("150 highly variable genes: ARI %.3f", ari(r));
    QVERIFY(ari(r) > 0.6);
  }

  void badInputAndCancel() {
    CellTypingOptions o = cpu();
    o.input = "counts"; // log values taken as counts still cluster; an unknown scale is an error
    QVERIFY(!typeCells(*cells_, *x_, o).names.empty());
    o.input = "sideways";
    QVERIFY_EXCEPTION_THROWN(typeCells(*cells_, *x_, o), Error);
    o = cpu();
    o.method = "kmeans";
    o.k = 100000;
    QVERIFY_EXCEPTION_THROWN(typeCells(*cells_, *x_, o), Error);
    CancellationToken cancel;
    cancel.cancel();
    o = cpu();
    o.progress.cancel = &cancel;
    QVERIFY_EXCEPTION_THROWN(typeCells(*cells_, *x_, o), Cancelled);
  }
};

QTEST_APPLESS_MAIN(TestCellTyping)
#include "test_cell_typing.moc"
