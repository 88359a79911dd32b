#include "app/gui/AtlasComparePanel.h"

#include "app/gui/OverlapChart.h"
#include "core/AtlasComparison.h"
#include "core/CcfLabels.h"
#include "core/Error.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFont>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtCharts/QChartView>
#include <QtConcurrent/QtConcurrent>

#include <algorithm>
#include <cmath>
#include <map>

namespace atlascope::app {

// One comparison as the worker thread sees it: its own copy of the choice, the atlases held.
struct AtlasComparePanel::Job {
  int generation = 0;
  AtlasEntry a, b;
  AtlasComparisonOptions options;
  CancellationToken cancel;
  std::shared_ptr<const Result> result; // set by the worker on success
  std::string error;                    // set by the worker on failure
};

struct AtlasComparePanel::Result {
  AtlasEntry a, b;
  AtlasComparisonOptions options;
  AtlasComparison comparison; // its per-voxel grid labels dropped (the report does not read them)
  // The voxels inside both atlases by their leaf structures (tree indices): what a selected
  // structure's overlaps are summed from, whatever the levels.
  struct LeafPair {
    std::int32_t a = -1, b = -1;
    std::int64_t voxels = 0;
  };
  std::vector<LeafPair> pairs;
  std::vector<std::int32_t> levelOfA, levelOfB; // per tree index: its structure at the chosen level (-1: none)
};

namespace {

constexpr int kProgressSteps = 4; // compareAtlases' three stages, then the leaf overlaps

QString levelText(const QString& spec) {
  if (spec == QLatin1String("leaf")) return QObject::tr("leaf (each voxel's own structure)");
  if (spec == QLatin1String("major")) return QObject::tr("major divisions");
  return QObject::tr("depth %1").arg(spec.section(':', 1));
}

int deepestLevel(const StructureTree& tree) {
  int d = 0;
  for (std::size_t i = 0; i < tree.size(); ++i) d = std::max(d, tree[static_cast<int>(i)].depth);
  return d;
}

QString triple(const std::array<double, 3>& v) {
  return v[0] == v[1] && v[1] == v[2] ? QStringLiteral("%1").arg(v[0])
                                      : QStringLiteral("%1 x %2 x %3").arg(v[0]).arg(v[1]).arg(v[2]);
}

QTableWidgetItem* number(double v, int decimals) {
  auto* item = new QTableWidgetItem;
  item->setData(Qt::DisplayRole,
                decimals < 0 ? v : std::round(v * std::pow(10.0, decimals)) / std::pow(10.0, decimals));
  item->setData(Qt::UserRole, v); // the exact value, for tests and copies
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

QTableWidgetItem* count(std::int64_t n) {
  auto* item = new QTableWidgetItem;
  item->setData(Qt::DisplayRole, static_cast<qlonglong>(n));
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

QTableWidget* table(const QStringList& headers, const char* name, QWidget* parent) {
  auto* t = new QTableWidget(0, static_cast<int>(headers.size()), parent);
  t->setObjectName(QString::fromLatin1(name));
  t->setHorizontalHeaderLabels(headers);
  t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  t->horizontalHeader()->setStretchLastSection(true);
  t->verticalHeader()->hide();
  t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 6); // a dock shows more rows
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  return t;
}

} // namespace

AtlasComparePanel::AtlasComparePanel(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("atlasComparePanel"));
  atlasA_ = new QComboBox(this);
  atlasA_->setObjectName(QStringLiteral("atlasA"));
  atlasA_->setToolTip(tr("A: the reference atlas"));
  atlasB_ = new QComboBox(this);
  atlasB_->setObjectName(QStringLiteral("atlasB"));
  atlasB_->setToolTip(tr("B: the atlas compared with A"));
  levelA_ = new QComboBox(this);
  levelA_->setObjectName(QStringLiteral("atlasLevelA"));
  levelA_->setToolTip(tr("A's structures as compared: each voxel's own, or its ancestor at a depth of A's tree"));
  levelB_ = new QComboBox(this);
  levelB_->setObjectName(QStringLiteral("atlasLevelB"));
  levelB_->setToolTip(tr("B's structures as compared: each voxel's own, or its ancestor at a depth of B's tree"));
  swap_ = new QPushButton(tr("Swap"), this);
  swap_->setObjectName(QStringLiteral("atlasSwap"));
  swap_->setToolTip(tr("Make B the reference"));
  compare_ = new QPushButton(tr("Compare"), this);
  compare_->setObjectName(QStringLiteral("atlasCompare"));
  report_ = new QPushButton(tr("Write report…"), this);
  report_->setObjectName(QStringLiteral("atlasWriteReport"));
  report_->setToolTip(tr("summary.json, overlap.csv, best_matches.csv, splits.csv and matches.csv in a folder "
                         "(what atlascope-cli atlas compare writes)"));
  progress_ = new QProgressBar(this);
  progress_->setObjectName(QStringLiteral("atlasProgress"));
  progress_->setRange(0, kProgressSteps);
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setObjectName(QStringLiteral("atlasCancel"));
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("atlasStatus"));
  grid_ = new QLabel(this);
  grid_->setObjectName(QStringLiteral("atlasGrid"));
  structure_ = new QLabel(this);
  structure_->setObjectName(QStringLiteral("atlasStructure"));
  for (QLabel* l : {status_, grid_, structure_}) {
    l->setWordWrap(true);
    l->setTextInteractionFlags(Qt::TextSelectableByMouse);
  }
  scores_ = table({tr("Score"), tr("Value")}, "atlasScores", this);
  byDepth_ = table({tr("A cut at depth"), tr("A structures"), tr("AMI"), tr("ARI"), tr("V-measure")},
                   "atlasScoresByDepth", this);
  byDepth_->setToolTip(tr("A's structures merged into their ancestors at each depth of A's tree, each cut against B: "
                          "the depth scoring best is the depth B's parcellation resembles (bold)"));
  overlap_ = table({tr("Acronym"), tr("Name"), tr("Voxels"), tr("Share of selected"), tr("Share of it"), tr("Jaccard")},
                   "atlasOverlap", this);
  overlap_->horizontalHeaderItem(3)->setToolTip(tr("The share of the selected structure's voxels inside this one"));
  overlap_->horizontalHeaderItem(4)->setToolTip(tr("The share of this structure's voxels inside the selected one"));
  overlap_->horizontalHeaderItem(5)->setToolTip(tr("Shared voxels over the voxels of either"));
  overlap_->setToolTip(tr("Double click: select the structure in its atlas' tree"));
  overlap_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  overlap_->horizontalHeader()->setStretchLastSection(false);
  overlap_->setSortingEnabled(true);
  chart_ = makeOverlapChart(tr("Overlap with the other atlas' structures"));
  auto* chartView = new QChartView(chart_, this);
  chartView->setObjectName(QStringLiteral("atlasOverlapChart"));
  chartView->setMinimumHeight(200);
  chartView->setRenderHint(QPainter::Antialiasing);

  auto* choice = new QGridLayout;
  choice->addWidget(new QLabel(tr("A"), this), 0, 0);
  choice->addWidget(atlasA_, 0, 1);
  choice->addWidget(levelA_, 0, 2);
  choice->addWidget(new QLabel(tr("B"), this), 1, 0);
  choice->addWidget(atlasB_, 1, 1);
  choice->addWidget(levelB_, 1, 2);
  choice->setColumnStretch(1, 2);
  choice->setColumnStretch(2, 1);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(swap_);
  buttons->addWidget(compare_);
  buttons->addStretch(1);
  buttons->addWidget(report_);
  auto* running = new QHBoxLayout;
  running->addWidget(progress_, 1);
  running->addWidget(cancel_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(choice);
  layout->addLayout(buttons);
  layout->addLayout(running);
  layout->addWidget(status_);
  layout->addWidget(grid_);
  auto* numbers = new QHBoxLayout;
  numbers->addWidget(scores_, 2);
  numbers->addWidget(byDepth_, 3);
  layout->addLayout(numbers, 2);
  layout->addWidget(structure_);
  layout->addWidget(overlap_, 2);
  layout->addWidget(chartView, 2);

  connect(atlasA_, &QComboBox::currentIndexChanged, this, [this] {
    fillLevelBox(levelA_, entry(atlasA()));
    start();
  });
  connect(atlasB_, &QComboBox::currentIndexChanged, this, [this] {
    fillLevelBox(levelB_, entry(atlasB()));
    start();
  });
  connect(levelA_, &QComboBox::currentIndexChanged, this, [this] { start(); });
  connect(levelB_, &QComboBox::currentIndexChanged, this, [this] { start(); });
  connect(swap_, &QPushButton::clicked, this, [this] {
    const QString la = levelA_->currentData().toString(), lb = levelB_->currentData().toString();
    {
      const QSignalBlocker blockA(atlasA_), blockB(atlasB_), blockLa(levelA_), blockLb(levelB_);
      const QString a = atlasA();
      atlasA_->setCurrentText(atlasB());
      atlasB_->setCurrentText(a);
      fillLevelBox(levelA_, entry(atlasA()));
      fillLevelBox(levelB_, entry(atlasB()));
      levelA_->setCurrentIndex(std::max(0, levelA_->findData(lb)));
      levelB_->setCurrentIndex(std::max(0, levelB_->findData(la)));
    }
    start();
  });
  connect(compare_, &QPushButton::clicked, this, &AtlasComparePanel::compare);
  connect(cancel_, &QPushButton::clicked, this, &AtlasComparePanel::cancel);
  connect(report_, &QPushButton::clicked, this, [this] {
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Write the comparison report into"));
    if (!folder.isEmpty()) writeReport(folder);
  });
  connect(overlap_, &QTableWidget::cellDoubleClicked, this, [this](int row) {
    if (!result_) return;
    const QTableWidgetItem* item = overlap_->item(row, 0);
    const QString other = structureAtlas_ == result_->a.name ? result_->b.name : result_->a.name;
    if (item) emit structureChosen(other, item->data(Qt::UserRole).toInt());
  });
  setAtlases({});
}

AtlasComparePanel::~AtlasComparePanel() {
  if (running_) running_->cancel.cancel();
  for (auto& f : started_) f.waitForFinished();
}

const AtlasEntry* AtlasComparePanel::entry(const QString& name) const {
  for (const AtlasEntry& e : atlases_)
    if (e.name == name && e.atlas) return &e;
  return nullptr;
}

QString AtlasComparePanel::atlasA() const { return atlasA_->currentText(); }
QString AtlasComparePanel::atlasB() const { return atlasB_->currentText(); }

void AtlasComparePanel::setAtlases(std::vector<AtlasEntry> atlases) {
  const QString keepA = atlasA(), keepB = atlasB();
  atlases_ = std::move(atlases);
  {
    const QSignalBlocker blockA(atlasA_), blockB(atlasB_);
    atlasA_->clear();
    atlasB_->clear();
    for (const AtlasEntry& e : atlases_) {
      atlasA_->addItem(e.name);
      atlasB_->addItem(e.name);
    }
    // A kept while open, else the first; B kept while open and not A, else the first other.
    const QString a = entry(keepA) ? keepA : atlases_.empty() ? QString() : atlases_.front().name;
    QString b = entry(keepB) && keepB != a ? keepB : QString();
    for (const AtlasEntry& e : atlases_)
      if (b.isEmpty() && e.name != a) b = e.name;
    atlasA_->setCurrentIndex(atlasA_->findText(a));
    atlasB_->setCurrentIndex(atlasB_->findText(b));
  }
  {
    const QSignalBlocker blockA(levelA_), blockB(levelB_);
    fillLevelBox(levelA_, entry(atlasA()));
    fillLevelBox(levelB_, entry(atlasB()));
  }
  // The same atlases under the same names at the same levels: what is shown (or running) stands.
  const auto same = [this](const AtlasEntry& a, const AtlasEntry& b, const AtlasComparisonOptions& o) {
    const AtlasEntry *ea = entry(atlasA()), *eb = entry(atlasB());
    return ea && eb && ea->name == a.name && ea->atlas == a.atlas && eb->name == b.name && eb->atlas == b.atlas &&
           o.levelA.spec == levelA_->currentData().toString().toStdString() &&
           o.levelB.spec == levelB_->currentData().toString().toStdString();
  };
  if (running_ && same(running_->a, running_->b, running_->options)) return;
  if (!running_ && result_ && same(result_->a, result_->b, result_->options)) return;
  start();
}

void AtlasComparePanel::fillLevelBox(QComboBox* box, const AtlasEntry* atlas) {
  const QString keep = box->currentData().toString();
  box->clear();
  if (!atlas) return;
  QStringList specs{QStringLiteral("leaf")};
  const StructureTree& tree = atlas->atlas->structures();
  const auto major = ccfLevelLabels(tree, {"major"});
  if (std::any_of(major.begin(), major.end(), [](std::int32_t l) { return l >= 0; })) specs << QStringLiteral("major");
  for (int d = 1; d <= deepestLevel(tree); ++d) specs << QStringLiteral("depth:%1").arg(d);
  for (const QString& spec : specs) box->addItem(levelText(spec), spec);
  box->setCurrentIndex(std::max(0, box->findData(keep)));
}

void AtlasComparePanel::choose(const QString& a, const QString& b) {
  {
    const QSignalBlocker blockA(atlasA_), blockB(atlasB_), blockLa(levelA_), blockLb(levelB_);
    atlasA_->setCurrentIndex(atlasA_->findText(a));
    atlasB_->setCurrentIndex(atlasB_->findText(b));
    fillLevelBox(levelA_, entry(atlasA()));
    fillLevelBox(levelB_, entry(atlasB()));
  }
  start();
}

void AtlasComparePanel::chooseLevels(const QString& levelA, const QString& levelB) {
  {
    const QSignalBlocker blockLa(levelA_), blockLb(levelB_);
    levelA_->setCurrentIndex(levelA_->findData(levelA));
    levelB_->setCurrentIndex(levelB_->findData(levelB));
  }
  start();
}

void AtlasComparePanel::compare() { start(); }

void AtlasComparePanel::clearResult() {
  result_.reset();
  grid_->clear();
  scores_->setRowCount(0);
  byDepth_->setRowCount(0);
  overlap_->setRowCount(0);
  structure_->clear();
  clearOverlapBars(chart_);
  report_->setEnabled(false);
}

void AtlasComparePanel::start() {
  if (running_) running_->cancel.cancel();
  running_.reset();
  clearResult();
  progress_->hide();
  cancel_->hide();
  const AtlasEntry *a = entry(atlasA()), *b = entry(atlasB());
  swap_->setEnabled(a && b);
  compare_->setEnabled(a && b && a != b);
  if (atlases_.size() < 2) {
    status_->setText(tr("Open two atlases of the same space (File > Open atlas) to compare their parcellations."));
    return;
  }
  if (!a || !b) {
    status_->setText(tr("Choose the two atlases to compare: A, the reference, and B."));
    return;
  }
  if (a == b) {
    status_->setText(tr("Choose two different atlases."));
    return;
  }
  auto job = std::make_shared<Job>();
  job->generation = ++generation_;
  job->a = *a;
  job->b = *b;
  job->options.levelA = {levelA_->currentData().toString().toStdString()};
  job->options.levelB = {levelB_->currentData().toString().toStdString()};
  running_ = job;
  status_->setText(
      tr("Comparing %1 (%2) with %3 (%4)…").arg(a->name, levelA_->currentText(), b->name, levelB_->currentText()));
  progress_->setValue(0);
  progress_->setFormat(tr("starting"));
  progress_->show();
  cancel_->show();

  started_.erase(std::remove_if(started_.begin(), started_.end(), [](const auto& f) { return f.isFinished(); }),
                 started_.end());
  const int generation = job->generation;
  const auto report = [this, generation](const std::string& stage, int done, int total) {
    QMetaObject::invokeMethod(
        this,
        [this, generation, stage = QString::fromStdString(stage), done, total] {
          if (!running_ || running_->generation != generation) return;
          progress_->setRange(0, total);
          progress_->setValue(done);
          progress_->setFormat(stage);
        },
        Qt::QueuedConnection);
  };
  QFuture<void> future = QtConcurrent::run([job, report] {
    try {
      Progress p;
      p.cancel = &job->cancel;
      p.report = [&report](const std::string& stage, std::int64_t done, std::int64_t) {
        report(stage, static_cast<int>(done), kProgressSteps);
      };
      auto r = std::make_shared<Result>();
      r->a = job->a;
      r->b = job->b;
      r->options = job->options;
      r->comparison = compareAtlases(*job->a.atlas, *job->b.atlas, job->options, p);
      p("each structure's overlaps", kProgressSteps - 1, kProgressSteps);
      // The leaf labels: the comparison's own when both levels are leaf, else sampled again
      // (after its arrays are let go: the two grids of a 10 um atlas are 8 GB).
      AtlasGridLabels& grid = r->comparison.grid;
      std::vector<std::int32_t> leafA, leafB;
      if (job->options.levelA.spec == "leaf" && job->options.levelB.spec == "leaf") {
        leafA.swap(grid.a);
        leafB.swap(grid.b);
      } else {
        std::vector<std::int32_t>().swap(grid.a);
        std::vector<std::int32_t>().swap(grid.b);
        AtlasGridLabels leaf = atlasLabelsOnSharedGrid(*job->a.atlas, *job->b.atlas);
        leafA.swap(leaf.a);
        leafB.swap(leaf.b);
      }
      job->cancel.throwIfCancelled();
      const Contingency leaf = contingency(leafA, leafB);
      for (const auto& [cell, voxels] : leaf.cells)
        r->pairs.push_back({leaf.referenceLabels[static_cast<std::size_t>(cell.first)],
                            leaf.predictedLabels[static_cast<std::size_t>(cell.second)], voxels});
      r->levelOfA = ccfLevelLabels(job->a.atlas->structures(), job->options.levelA);
      r->levelOfB = ccfLevelLabels(job->b.atlas->structures(), job->options.levelB);
      job->result = std::move(r);
    } catch (const Cancelled&) {
      // Dropped: the panel moved on when it cancelled.
    } catch (const std::exception& e) {
      job->error = oneLine(e.what());
    } catch (...) {
      job->error = "unexpected error";
    }
  });
  started_.push_back(future);
  auto* watcher = new QFutureWatcher<void>(this);
  connect(watcher, &QFutureWatcher<void>::finished, this, [this, watcher, job] {
    watcher->deleteLater();
    finished(job);
  });
  watcher->setFuture(future);
}

void AtlasComparePanel::finished(const std::shared_ptr<Job>& job) {
  if (job != running_) return; // cancelled, or replaced by a newer choice
  running_.reset();
  progress_->hide();
  cancel_->hide();
  if (!job->result) {
    status_->setText(
        tr("Cannot compare %1 with %2: %3").arg(job->a.name, job->b.name, QString::fromStdString(job->error)));
    emit comparisonReady();
    return;
  }
  result_ = job->result;
  showResult();
  showOverlap();
  emit comparisonReady();
}

void AtlasComparePanel::cancel() {
  if (!running_) return;
  running_->cancel.cancel();
  running_.reset();
  progress_->hide();
  cancel_->hide();
  status_->setText(tr("Comparison cancelled; Compare runs it again."));
}

void AtlasComparePanel::waitForComparison() {
  for (auto& f : started_) f.waitForFinished();
  started_.clear();
  // The awaited result now, not at the next turn of the event loop (its watcher then finds it shown).
  if (running_ && (running_->result || !running_->error.empty())) finished(running_);
}

void AtlasComparePanel::showResult() {
  const Result& r = *result_;
  const AtlasComparison& c = r.comparison;
  const AtlasGridLabels& g = c.grid;
  const QString levelA = levelText(QString::fromStdString(r.options.levelA.spec));
  const QString levelB = levelText(QString::fromStdString(r.options.levelB.spec));
  status_->setText(tr("A: %1 at %2, against B: %3 at %4, over %L5 voxels inside both.")
                       .arg(r.a.name, levelA, r.b.name, levelB)
                       .arg(c.table.total));
  const QString size = QStringLiteral("%1 x %2 x %3").arg(g.size[0]).arg(g.size[1]).arg(g.size[2]);
  QString grid = g.resampled.empty()
                     ? tr("Same grid: %1 voxels of %2 µm.").arg(size, triple(g.spacingUm))
                     : tr("%1 sampled on %2's grid (the label at each voxel's centre): %3 voxels of %4 µm.")
                           .arg(g.resampled == "a" ? r.a.name : r.b.name, g.resampled == "a" ? r.b.name : r.a.name,
                                size, triple(g.spacingUm));
  if (g.unknownVoxelsA > 0)
    grid += tr(" %L1 voxels of %2 carry labels its tree does not name (left out).").arg(g.unknownVoxelsA).arg(r.a.name);
  if (g.unknownVoxelsB > 0)
    grid += tr(" %L1 voxels of %2 carry labels its tree does not name (left out).").arg(g.unknownVoxelsB).arg(r.b.name);
  grid_->setText(grid);

  const AgreementScores& s = c.scores;
  const RegionCorrespondence& m = c.correspondence;
  struct Row {
    QString name, tip;
    double value;
    int decimals; // -1: a count
  };
  const std::vector<Row> rows = {
      {tr("AMI"), tr("Adjusted mutual information: 0 for unrelated parcellations, 1 for the same up to names"),
       s.adjustedMutualInformation, 4},
      {tr("ARI"), tr("Adjusted Rand index over voxel pairs"), s.adjustedRand, 4},
      {tr("NMI"), tr("Normalised mutual information (arithmetic mean)"), s.normalizedMutualInformation, 4},
      {tr("V-measure"), tr("The mean of homogeneity and completeness"), s.vMeasure, 4},
      {tr("Homogeneity"), tr("1 when each of B's structures lies within one of A's"), s.homogeneity, 4},
      {tr("Completeness"), tr("1 when each of A's structures lies within one of B's"), s.completeness, 4},
      {tr("Voxels compared"), tr("Voxels of the grid inside both atlases"), static_cast<double>(c.table.total), -1},
      {tr("Structures of A"), tr("A's structures on those voxels, at A's level"),
       static_cast<double>(s.referenceLabels), -1},
      {tr("Structures of B"), tr("B's structures on those voxels, at B's level"),
       static_cast<double>(s.predictedLabels), -1},
      {tr("One-to-one pairs"),
       tr("Pairs of the Hungarian method (largest total Jaccard) with Jaccard of at least %1")
           .arg(r.options.correspondence.minimumJaccard),
       static_cast<double>(m.oneToOne.size()), -1},
      {tr("Matched share"), tr("The share of the voxels that lie in a one-to-one pair"), m.matchedShare, 4},
      {tr("Splits"), tr("A's structures split among several of B's"), static_cast<double>(m.splits.size()), -1},
      {tr("Merges"), tr("B's structures that merge several of A's"), static_cast<double>(m.merges.size()), -1},
  };
  scores_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const Row& row = rows[static_cast<std::size_t>(i)];
    auto* name = new QTableWidgetItem(row.name);
    name->setToolTip(row.tip);
    scores_->setItem(i, 0, name);
    scores_->setItem(i, 1,
                     row.decimals < 0 ? count(static_cast<std::int64_t>(row.value)) : number(row.value, row.decimals));
  }

  byDepth_->setRowCount(static_cast<int>(c.byDepth.size()));
  int best = -1;
  for (int i = 0; i < static_cast<int>(c.byDepth.size()); ++i) {
    const auto& d = c.byDepth[static_cast<std::size_t>(i)];
    byDepth_->setItem(i, 0, count(d.depth));
    byDepth_->setItem(i, 1, count(d.scores.referenceLabels));
    byDepth_->setItem(i, 2, number(d.scores.adjustedMutualInformation, 4));
    byDepth_->setItem(i, 3, number(d.scores.adjustedRand, 4));
    byDepth_->setItem(i, 4, number(d.scores.vMeasure, 4));
    if (best < 0 ||
        d.scores.adjustedMutualInformation > c.byDepth[static_cast<std::size_t>(best)].scores.adjustedMutualInformation)
      best = i;
  }
  if (best >= 0)
    for (int col = 0; col < byDepth_->columnCount(); ++col) {
      QFont bold = byDepth_->item(best, col)->font();
      bold.setBold(true);
      byDepth_->item(best, col)->setFont(bold);
    }
  report_->setEnabled(true);
}

void AtlasComparePanel::showStructure(const QString& atlas, int structureIndex) {
  structureAtlas_ = atlas;
  structureIndex_ = structureIndex;
  showOverlap();
}

void AtlasComparePanel::showOverlap() {
  overlap_->setSortingEnabled(false);
  overlap_->setRowCount(0);
  clearOverlapBars(chart_);
  structure_->clear();
  if (!result_ || structureIndex_ < 0) return;
  const Result& r = *result_;
  const bool ofA = structureAtlas_ == r.a.name;
  if (!ofA && structureAtlas_ != r.b.name) return;
  const Atlas& own = ofA ? *r.a.atlas : *r.b.atlas;
  const Atlas& other = ofA ? *r.b.atlas : *r.a.atlas;
  const QString otherName = ofA ? r.b.name : r.a.name;
  if (static_cast<std::size_t>(structureIndex_) >= own.structures().size()) return;
  const std::vector<std::int32_t>& otherLevel = ofA ? r.levelOfB : r.levelOfA;

  // The structure whole (itself and below), against the other atlas' structures at its level.
  std::vector<char> inside(own.structures().size(), 0);
  for (int i : own.structures().descendants(structureIndex_)) inside[static_cast<std::size_t>(i)] = 1;
  std::map<std::int32_t, std::int64_t> shared;
  std::vector<std::int64_t> otherSize(other.structures().size(), 0);
  std::int64_t size = 0;
  for (const Result::LeafPair& p : r.pairs) {
    const std::int32_t mine = ofA ? p.a : p.b;
    const std::int32_t theirs = otherLevel[static_cast<std::size_t>(ofA ? p.b : p.a)];
    if (theirs < 0) continue;
    otherSize[static_cast<std::size_t>(theirs)] += p.voxels;
    if (!inside[static_cast<std::size_t>(mine)]) continue;
    shared[theirs] += p.voxels;
    size += p.voxels;
  }
  const Structure& s = own.structures()[structureIndex_];
  const QString acronym = QString::fromStdString(s.acronym);
  if (size == 0) {
    structure_->setText(tr("%1 (%2) of %3: no voxel inside %4 at its level.")
                            .arg(acronym, QString::fromStdString(s.name), structureAtlas_, otherName));
    return;
  }
  const QString in = shared.size() == 1 ? tr("in one structure of %1").arg(otherName)
                                        : tr("in %1 structures of %2").arg(shared.size()).arg(otherName);
  structure_->setText(tr("%1 (%2) of %3: %L4 voxels, %5.")
                          .arg(acronym, QString::fromStdString(s.name), structureAtlas_)
                          .arg(size)
                          .arg(in));
  struct Overlap {
    std::int32_t structure;
    std::int64_t voxels;
    double share, shareOfIt, jaccard;
  };
  std::vector<Overlap> rows;
  for (const auto& [o, n] : shared) {
    const std::int64_t their = otherSize[static_cast<std::size_t>(o)];
    rows.push_back({o, n, static_cast<double>(n) / static_cast<double>(size),
                    static_cast<double>(n) / static_cast<double>(their),
                    static_cast<double>(n) / static_cast<double>(size + their - n)});
  }
  std::sort(rows.begin(), rows.end(), [](const Overlap& x, const Overlap& y) { return x.voxels > y.voxels; });
  overlap_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const Overlap& o = rows[static_cast<std::size_t>(i)];
    const Structure& t = other.structures()[o.structure];
    auto* acr = new QTableWidgetItem(QString::fromStdString(t.acronym));
    acr->setData(Qt::UserRole, o.structure);
    overlap_->setItem(i, 0, acr);
    overlap_->setItem(i, 1, new QTableWidgetItem(QString::fromStdString(t.name)));
    overlap_->setItem(i, 2, count(o.voxels));
    overlap_->setItem(i, 3, number(o.share, 3));
    overlap_->setItem(i, 4, number(o.shareOfIt, 3));
    overlap_->setItem(i, 5, number(o.jaccard, 3));
  }
  overlap_->setSortingEnabled(true);
  overlap_->sortByColumn(2, Qt::DescendingOrder);

  // The largest shares on top: the bars go in bottom to top. Eight, as the regions-vs-CCF chart:
  // more and a dock's chart elides their names.
  const std::size_t shown = std::min<std::size_t>(rows.size(), 8);
  QStringList labels;
  std::vector<double> shares;
  for (std::size_t i = shown; i-- > 0;) {
    labels << QString::fromStdString(other.structures()[rows[i].structure].acronym);
    shares.push_back(rows[i].share);
  }
  chart_->setTitle(tr("%1 in %2's structures").arg(acronym, otherName));
  setOverlapBars(chart_, tr("share of %1's voxels").arg(acronym), labels, shares,
                 tr("share of %1's voxels").arg(acronym), QColor(s.rgb[0], s.rgb[1], s.rgb[2]));
}

bool AtlasComparePanel::writeReport(const QString& folder) {
  if (!result_) return false;
  std::shared_ptr<const Result> r = result_;
  status_->setText(tr("Writing the report into %1…").arg(folder));
  QFuture<QString> future = QtConcurrent::run([r, folder]() -> QString {
    try {
      writeAtlasComparisonReport(r->comparison, *r->a.atlas, *r->b.atlas, r->options, folder.toStdString());
      return {};
    } catch (const std::exception& e) {
      return QString::fromStdString(oneLine(e.what()));
    }
  });
  started_.push_back(QFuture<void>(future));
  auto* watcher = new QFutureWatcher<QString>(this);
  connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher, folder] {
    watcher->deleteLater();
    const QString error = watcher->result();
    status_->setText(error.isEmpty() ? tr("Report written into %1.").arg(folder)
                                     : tr("Cannot write the report: %1").arg(error));
    emit reportWritten(folder, error);
  });
  watcher->setFuture(future);
  return true;
}

} // namespace atlascope::app
