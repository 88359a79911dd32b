// The atlas-against-atlas panel (issue 17) as a user reads it: the scores shown are
// compareAtlases' on the same atlases (and, for the voxel count and AMI, the label arrays'
// directly), a structure's overlaps with the other atlas, levels, swapping A and B, atlases of
// different spaces answered in the panel, cancel and replaced atlases mid-comparison, the report.
// Fixtures: the bundled CCF at 400 um written as BrainGlobe v1 atlases (tests/BrainGlobeFixtures.h):
// itself, with every label replaced by its depth-5 ancestor, its first 15 AP planes (another
// space) and at 800 um (another grid).
#include "app/gui/AtlasComparePanel.h"
#include "core/AtlasCatalog.h"
#include "core/AtlasComparison.h"
#include "tests/BrainGlobeFixtures.h"
#include "tests/app/Widgets.h"

#include <QComboBox>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QtCharts/QBarSet>
#include <QtCharts/QChartView>
#include <QtCharts/QHorizontalBarSeries>

#include <memory>

using namespace atlascope;
using namespace atlascope::app;
using atlascope::app::test::child;

namespace {

std::shared_ptr<const Atlas> open(const std::string& path) { return std::make_shared<const Atlas>(openAtlas(path)); }

// The value a row of the scores table holds (its exact value; the cell shows it rounded).
double score(const AtlasComparePanel& p, const QString& name) {
  const auto* t = child<QTableWidget>(p, "atlasScores");
  for (int row = 0; row < t->rowCount(); ++row)
    if (t->item(row, 0)->text() == name) {
      const QTableWidgetItem* v = t->item(row, 1);
      const QVariant exact = v->data(Qt::UserRole);
      return exact.isValid() ? exact.toDouble() : v->data(Qt::DisplayRole).toDouble();
    }
  qFatal("no score named %s", qPrintable(name));
  return 0;
}

void expectScores(const AtlasComparePanel& p, const AtlasComparison& c) {
  QCOMPARE(score(p, "AMI"), c.scores.adjustedMutualInformation);
  QCOMPARE(score(p, "ARI"), c.scores.adjustedRand);
  QCOMPARE(score(p, "NMI"), c.scores.normalizedMutualInformation);
  QCOMPARE(score(p, "V-measure"), c.scores.vMeasure);
  QCOMPARE(score(p, "Homogeneity"), c.scores.homogeneity);
  QCOMPARE(score(p, "Completeness"), c.scores.completeness);
  QCOMPARE(score(p, "Voxels compared"), static_cast<double>(c.table.total));
  QCOMPARE(score(p, "One-to-one pairs"), static_cast<double>(c.correspondence.oneToOne.size()));
  QCOMPARE(score(p, "Splits"), static_cast<double>(c.correspondence.splits.size()));
  QCOMPARE(score(p, "Merges"), static_cast<double>(c.correspondence.merges.size()));
  // Shown rounded to 4 places.
  const auto* t = child<QTableWidget>(p, "atlasScores");
  QVERIFY(std::abs(t->item(0, 1)->data(Qt::DisplayRole).toDouble() - c.scores.adjustedMutualInformation) <= 5e-5);
}

// Waits for the comparison started, through the signal the window would use.
bool compared(AtlasComparePanel& p) {
  QSignalSpy ready(&p, &AtlasComparePanel::comparisonReady);
  return p.isComparing() ? ready.wait(60000) && !p.isComparing() : false;
}

int row(const QTableWidget* t, const QString& acronym) {
  for (int r = 0; r < t->rowCount(); ++r)
    if (t->item(r, 0)->text() == acronym) return r;
  return -1;
}

} // namespace

class TestAtlasComparePanel : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::unique_ptr<Atlas> ccf_;
  fixtures::LabelGrid grid_, coarse_;
  std::string finePath_, coarsePath_, cutPath_, halfPath_;
  std::shared_ptr<const Atlas> fine_, coarse5_, cut_, half_;
  QString fineName_, coarseName_, cutName_, halfName_;

  std::vector<AtlasEntry> all() const {
    return {{fineName_, fine_}, {coarseName_, coarse5_}, {cutName_, cut_}, {halfName_, half_}};
  }

private slots:
  void initTestCase() {
    if (!brainGlobeSupported()) QSKIP("this build reads no BrainGlobe atlases");
    ccf_ = std::make_unique<Atlas>(Atlas::load(bundledAtlasPaths()));
    const StructureTree& tree = ccf_->structures();
    grid_ = fixtures::downsample(*ccf_, 16); // 400 um: 33 x 20 x 28
    coarse_ = fixtures::coarsened(grid_, tree, 5);
    const std::string root = dir_.path().toStdString();
    fixtures::WriteOptions o;
    finePath_ = fixtures::writeV1(root + "/fine", grid_, tree, o);
    o.name = "ccf_depth5";
    coarsePath_ = fixtures::writeV1(root + "/coarse", coarse_, tree, o);
    fixtures::LabelGrid cut = grid_;
    cut.shape[0] = 15;
    cut.ids.clear();
    for (std::int64_t k = 0; k < grid_.shape[2]; ++k)
      for (std::int64_t j = 0; j < grid_.shape[1]; ++j)
        for (std::int64_t i = 0; i < cut.shape[0]; ++i) cut.ids.push_back(grid_.at(i, j, k));
    o.name = "front";
    cutPath_ = fixtures::writeV1(root + "/cut", cut, tree, o);
    o.name = "ccf_half";
    halfPath_ = fixtures::writeV1(root + "/half", fixtures::downsample(*ccf_, 32), tree, o);
    fine_ = open(finePath_);
    coarse5_ = open(coarsePath_);
    cut_ = open(cutPath_);
    half_ = open(halfPath_);
    fineName_ = QString::fromStdString(fine_->name());
    coarseName_ = QString::fromStdString(coarse5_->name());
    cutName_ = QString::fromStdString(cut_->name());
    halfName_ = QString::fromStdString(half_->name());
  }

  void scoresAreCompareAtlases() {
    AtlasComparePanel p;
    p.resize(900, 1000);
    p.show();
    QVERIFY(!p.isComparing());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("Open two atlases"));
    p.setAtlases(all());
    // The first two, compared at once.
    QCOMPARE(p.atlasA(), fineName_);
    QCOMPARE(p.atlasB(), coarseName_);
    QVERIFY(compared(p));
    QVERIFY(p.hasComparison());
    const AtlasComparison c = compareAtlases(*fine_, *coarse5_);
    expectScores(p, c);
    // From the label arrays directly: the voxels inside both, and AMI.
    const StructureTree& tree = ccf_->structures();
    std::vector<std::int32_t> ra, rb;
    std::int64_t inside = 0;
    for (std::size_t v = 0; v < grid_.ids.size(); ++v) {
      const auto ia = grid_.ids[v] ? tree.indexOf(grid_.ids[v]) : std::nullopt;
      const auto ib = coarse_.ids[v] ? tree.indexOf(coarse_.ids[v]) : std::nullopt;
      ra.push_back(ia ? *ia : -1);
      rb.push_back(ib ? *ib : -1);
      inside += ia && ib;
    }
    QCOMPARE(score(p, "Voxels compared"), static_cast<double>(inside));
    QVERIFY(qFuzzyCompare(score(p, "AMI"), agreement(ra, rb).adjustedMutualInformation));
    QCOMPARE(score(p, "Completeness"), 1.0); // each leaf lies inside one depth-5 structure
    QVERIFY(score(p, "Merges") > 0);
    QCOMPARE(score(p, "Splits"), 0.0);
    const QString grid = child<QLabel>(p, "atlasGrid")->text();
    QVERIFY2(grid.contains("Same grid") && grid.contains("33 x 20 x 28") && grid.contains("400"), qPrintable(grid));
    // By depth: A cut at depth 5 is B, and the depth shown in bold.
    const auto* depths = child<QTableWidget>(p, "atlasScoresByDepth");
    QCOMPARE(depths->rowCount(), static_cast<int>(c.byDepth.size()));
    QCOMPARE(depths->item(4, 0)->data(Qt::DisplayRole).toInt(), 5);
    QCOMPARE(depths->item(4, 2)->data(Qt::UserRole).toDouble(), c.byDepth[4].scores.adjustedMutualInformation);
    QVERIFY(qFuzzyCompare(depths->item(4, 2)->data(Qt::UserRole).toDouble(), 1.0));
    QVERIFY(depths->item(4, 2)->font().bold());
    QVERIFY(!depths->item(0, 2)->font().bold());
    // The same atlases handed again (the window does on every atlas opened): kept, not re-run.
    p.setAtlases(all());
    QVERIFY(!p.isComparing() && p.hasComparison());
  }

  void overlapOfAStructure() {
    AtlasComparePanel p;
    p.resize(900, 1000);
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    p.setAtlases(all());
    p.showStructure(fineName_, -1); // before the result: remembered, shown with it
    const StructureTree& tree = ccf_->structures();
    const int ca1 = *tree.indexOfAcronym("CA1"), hpf = *tree.indexOfAcronym("HPF");
    QCOMPARE(tree[hpf].depth, 5);
    QVERIFY(tree.isAncestorOrSelf(hpf, ca1));
    p.showStructure(fineName_, ca1);
    QVERIFY(compared(p));
    // Counted from the label arrays: CA1 (and below) in A, HPF in B.
    std::int64_t ca1Voxels = 0, hpfVoxels = 0;
    for (std::size_t v = 0; v < grid_.ids.size(); ++v) {
      if (grid_.ids[v] && tree.isAncestorOrSelf(ca1, *tree.indexOf(grid_.ids[v]))) ++ca1Voxels;
      if (coarse_.ids[v] == tree[hpf].id) ++hpfVoxels;
    }
    QVERIFY(ca1Voxels > 0 && hpfVoxels > ca1Voxels);
    // CA1 lies wholly in its depth-5 ancestor HPF.
    const auto* overlap = child<QTableWidget>(p, "atlasOverlap");
    QCOMPARE(overlap->rowCount(), 1);
    QCOMPARE(overlap->item(0, 0)->text(), QString("HPF"));
    QCOMPARE(overlap->item(0, 0)->data(Qt::UserRole).toInt(), hpf);
    QCOMPARE(overlap->item(0, 2)->data(Qt::DisplayRole).toLongLong(), ca1Voxels);
    QCOMPARE(overlap->item(0, 3)->data(Qt::UserRole).toDouble(), 1.0);
    QVERIFY(qFuzzyCompare(overlap->item(0, 4)->data(Qt::UserRole).toDouble(),
                          static_cast<double>(ca1Voxels) / static_cast<double>(hpfVoxels)));
    QVERIFY(qFuzzyCompare(overlap->item(0, 5)->data(Qt::UserRole).toDouble(),
                          static_cast<double>(ca1Voxels) / static_cast<double>(hpfVoxels)));
    QVERIFY(child<QLabel>(p, "atlasStructure")->text().contains("CA1"));
    auto* chart = child<QChartView>(p, "atlasOverlapChart")->chart();
    QCOMPARE(chart->series().size(), 1);
    auto* bars = qobject_cast<QHorizontalBarSeries*>(chart->series().first());
    QVERIFY(bars && bars->barSets().first()->count() == 1);
    QCOMPARE(bars->barSets().first()->at(0), 1.0);

    // The reverse: HPF of B holds A's structures below it, each wholly; they add up to HPF.
    p.showStructure(coarseName_, hpf);
    QVERIFY(overlap->rowCount() > 3);
    std::int64_t sum = 0;
    for (int r = 0; r < overlap->rowCount(); ++r) {
      QVERIFY(tree.isAncestorOrSelf(hpf, overlap->item(r, 0)->data(Qt::UserRole).toInt()));
      QCOMPARE(overlap->item(r, 4)->data(Qt::UserRole).toDouble(), 1.0);
      sum += overlap->item(r, 2)->data(Qt::DisplayRole).toLongLong();
      if (r > 0) // sorted by voxels, largest first
        QVERIFY(overlap->item(r, 2)->data(Qt::DisplayRole).toLongLong() <=
                overlap->item(r - 1, 2)->data(Qt::DisplayRole).toLongLong());
    }
    QCOMPARE(sum, hpfVoxels);
    QVERIFY(row(overlap, "CA1") >= 0 || row(overlap, "CA1sp") >= 0);
    bars = qobject_cast<QHorizontalBarSeries*>(chart->series().first());
    QCOMPARE(bars->barSets().first()->count(), std::min(overlap->rowCount(), 8));
    // The largest share on top (the last bar).
    const QBarSet* set = bars->barSets().first();
    QCOMPARE(set->at(set->count() - 1), overlap->item(0, 3)->data(Qt::UserRole).toDouble());

    // A double click selects that structure in the other atlas' tree.
    QSignalSpy chosen(&p, &AtlasComparePanel::structureChosen);
    const QRect cell = overlap->visualItemRect(overlap->item(0, 1));
    // (A press first: QTest's double click alone leaves the view without the pressed index.)
    QTest::mouseClick(overlap->viewport(), Qt::LeftButton, {}, cell.center());
    QTest::mouseDClick(overlap->viewport(), Qt::LeftButton, {}, cell.center());
    QCOMPARE(chosen.count(), 1);
    QCOMPARE(chosen.first().at(0).toString(), fineName_);
    QCOMPARE(chosen.first().at(1).toInt(), overlap->item(0, 0)->data(Qt::UserRole).toInt());

    // A structure of an atlas not compared: nothing shown.
    p.showStructure(halfName_, hpf);
    QCOMPARE(overlap->rowCount(), 0);
    QVERIFY(chart->series().isEmpty());
  }

  void levelsAndSwap() {
    AtlasComparePanel p;
    p.setAtlases(all());
    QVERIFY(compared(p));
    const double merges = score(p, "Merges"), ami = score(p, "AMI");
    // A at depth 5 against B as it is: the same parcellation.
    p.chooseLevels("depth:5", "leaf");
    QVERIFY(compared(p));
    AtlasComparisonOptions o;
    o.levelA = {"depth:5"};
    expectScores(p, compareAtlases(*fine_, *coarse5_, o));
    QVERIFY(qFuzzyCompare(score(p, "AMI"), 1.0));
    QCOMPARE(score(p, "Merges"), 0.0);
    // The level box as a user picks it.
    auto* levelA = child<QComboBox>(p, "atlasLevelA");
    levelA->setCurrentIndex(levelA->findData("leaf"));
    QVERIFY(p.isComparing());
    QVERIFY(compared(p));
    QCOMPARE(score(p, "AMI"), ami);

    // Swapped: B is the reference; homogeneity and completeness, splits and merges trade places.
    const double homogeneity = score(p, "Homogeneity");
    child<QPushButton>(p, "atlasSwap")->click();
    QCOMPARE(p.atlasA(), coarseName_);
    QCOMPARE(p.atlasB(), fineName_);
    QVERIFY(compared(p));
    expectScores(p, compareAtlases(*coarse5_, *fine_));
    QCOMPARE(score(p, "Homogeneity"), 1.0);
    QVERIFY(qFuzzyCompare(score(p, "Completeness"), homogeneity));
    QCOMPARE(score(p, "Splits"), merges);
    QCOMPARE(score(p, "Merges"), 0.0);
    QVERIFY(qFuzzyCompare(score(p, "AMI"), ami));
    // Swapping moves the levels along.
    p.chooseLevels("leaf", "depth:5");
    QVERIFY(compared(p));
    child<QPushButton>(p, "atlasSwap")->click();
    QCOMPARE(levelA->currentData().toString(), QString("depth:5"));
    QCOMPARE(child<QComboBox>(p, "atlasLevelB")->currentData().toString(), QString("leaf"));
    QVERIFY(compared(p));
    QVERIFY(qFuzzyCompare(score(p, "AMI"), 1.0));
  }

  void otherSpaceAndOtherGrid() {
    AtlasComparePanel p;
    p.setAtlases(all());
    QVERIFY(compared(p));
    p.choose(fineName_, cutName_);
    QVERIFY(compared(p));
    QVERIFY(!p.hasComparison());
    const QString status = child<QLabel>(p, "atlasStatus")->text();
    QVERIFY2(status.contains("do not cover the same space") && status.contains(cutName_), qPrintable(status));
    QCOMPARE(child<QTableWidget>(p, "atlasScores")->rowCount(), 0);
    QVERIFY(!child<QPushButton>(p, "atlasWriteReport")->isEnabled());
    QVERIFY(!p.writeReport(dir_.filePath("never")));
    // An atlas not open (a stale name): nothing to run, saying so.
    p.choose(fineName_, "closed meanwhile");
    QVERIFY(!p.isComparing());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("Choose the two atlases"));
    // The same atlas twice: nothing to run.
    p.choose(fineName_, fineName_);
    QVERIFY(!p.isComparing());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("two different atlases"));
    // Another grid of the same space: A sampled on B's coarser grid.
    p.choose(fineName_, halfName_);
    QVERIFY(compared(p));
    expectScores(p, compareAtlases(*fine_, *half_));
    const QString grid = child<QLabel>(p, "atlasGrid")->text();
    QVERIFY2(grid.contains(fineName_ + " sampled on " + halfName_) && grid.contains("800"), qPrintable(grid));
  }

  void cancelLeavesThePanelUsable() {
    AtlasComparePanel p;
    p.show();
    QSignalSpy ready(&p, &AtlasComparePanel::comparisonReady);
    p.setAtlases(all());
    QVERIFY(p.isComparing());
    auto* cancel = child<QPushButton>(p, "atlasCancel");
    auto* progress = child<QProgressBar>(p, "atlasProgress");
    QVERIFY(cancel->isVisible() && progress->isVisible());
    cancel->click();
    QVERIFY(!p.isComparing());
    QVERIFY(!cancel->isVisible() && !progress->isVisible());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("cancelled"));
    // Whatever the job had done by then is dropped, now and when it ends.
    p.waitForComparison();
    QTest::qWait(50);
    QCOMPARE(ready.count(), 0);
    QVERIFY(!p.hasComparison());
    child<QPushButton>(p, "atlasCompare")->click();
    QVERIFY(compared(p));
    expectScores(p, compareAtlases(*fine_, *coarse5_));
    QCOMPARE(ready.count(), 1);
  }

  void atlasesReplacedMidComparison() {
    AtlasComparePanel p;
    // Atlases only the panel's job holds once replaced.
    auto a = open(finePath_), b = open(coarsePath_);
    p.setAtlases({{"a", a}, {"b", b}});
    QVERIFY(p.isComparing());
    std::weak_ptr<const Atlas> gone = a;
    a.reset();
    b.reset();
    // The same names, atlases read again: compared again.
    auto a2 = open(finePath_), b2 = open(halfPath_);
    p.setAtlases({{"a", a2}, {"b", b2}});
    QVERIFY(p.isComparing());
    QVERIFY(compared(p));
    expectScores(p, compareAtlases(*fine_, *half_));
    QTRY_VERIFY(gone.expired()); // the first job let its atlases go
    // One atlas left while comparing: nothing to compare, nothing shown.
    p.choose("b", "a");
    QVERIFY(p.isComparing());
    p.setAtlases({{"b", b2}});
    QVERIFY(!p.isComparing() && !p.hasComparison());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("Open two atlases"));
    p.waitForComparison();
    QVERIFY(!p.hasComparison());
  }

  void reportFolder() {
    AtlasComparePanel p;
    p.setAtlases(all());
    QVERIFY(compared(p));
    QVERIFY(child<QPushButton>(p, "atlasWriteReport")->isEnabled());
    const QString out = dir_.filePath("report");
    QSignalSpy written(&p, &AtlasComparePanel::reportWritten);
    QVERIFY(p.writeReport(out));
    QVERIFY(written.wait(30000));
    QCOMPARE(written.first().at(1).toString(), QString());
    for (const char* f : {"summary.json", "overlap.csv", "best_matches.csv", "splits.csv", "matches.csv"})
      QVERIFY2(QFileInfo::exists(out + "/" + f), f);
    QFile file(out + "/summary.json");
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QJsonObject summary = QJsonDocument::fromJson(file.readAll()).object();
    QCOMPARE(summary["a"].toObject()["name"].toString(), fineName_);
    QCOMPARE(summary["b"].toObject()["name"].toString(), coarseName_);
    QCOMPARE(summary["voxels_compared"].toDouble(), score(p, "Voxels compared"));
    QVERIFY(std::abs(summary["scores"].toObject()["adjusted_mutual_information"].toDouble() - score(p, "AMI")) < 1e-12);
    // A folder that cannot be made (below a file): the error in the panel.
    fixtures::writeText(dir_.filePath("a-file").toStdString(), "not a folder");
    QSignalSpy failed(&p, &AtlasComparePanel::reportWritten);
    QVERIFY(p.writeReport(dir_.filePath("a-file/report")));
    QVERIFY(failed.wait(30000));
    QVERIFY(!failed.first().at(1).toString().isEmpty());
    QVERIFY(child<QLabel>(p, "atlasStatus")->text().contains("Cannot write the report"));
  }
};

QTEST_MAIN(TestAtlasComparePanel)
#include "test_atlas_compare_panel.moc"
