#include "app/gui/RegionsAcrossPanel.h"

#include "app/gui/OverlapChart.h"
#include "app/scene/Engine.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>

namespace atlascope::app {

namespace {
bool isRegions(const CellColouring* c) { return c && c->categorical && c->colourBy.startsWith("regions_k"); }
QString nameOf(const std::vector<std::string>& names, std::int32_t code) {
  return code >= 0 && static_cast<std::size_t>(code) < names.size()
             ? QString::fromStdString(names[static_cast<std::size_t>(code)])
             : QString::number(code);
}
} // namespace

RegionsAcrossPanel::RegionsAcrossPanel(Engine& engine, QWidget* parent) : QWidget(parent), engine_(engine) {
  other_ = new QComboBox(this);
  other_->setObjectName("matchWith");
  other_->setToolTip(
      tr("The dataset whose discovered regions the current dataset's are matched with (both coloured by regions_k…)"));
  run_ = new QPushButton(tr("Match"), this);
  run_->setObjectName("matchRegions");
  summary_ = new QLabel(tr("Colour two datasets by their discovered regions, then match them."), this);
  summary_->setObjectName(QStringLiteral("summary"));
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  table_ = new QTableWidget(0, 4, this);
  table_->setObjectName("regionPairs");
  table_->setHorizontalHeaderLabels({tr("This dataset"), tr("Other dataset"), tr("Jaccard"), tr("Kind")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSortingEnabled(true);
  chart_ = makeOverlapChart(tr("Jaccard of the one-to-one pairs"));
  auto* chartView = new QChartView(chart_, this);
  chartView->setMinimumHeight(180);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("Match with"), this));
  row->addWidget(other_, 1);
  row->addWidget(run_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(row);
  layout->addWidget(summary_);
  layout->addWidget(table_, 2);
  layout->addWidget(chartView, 1);

  Workspace& ws = engine_.workspace();
  for (auto signal : {&Workspace::datasetLoaded, &Workspace::datasetRemoved, &Workspace::datasetChanged,
                      &Workspace::currentDatasetChanged})
    connect(&ws, signal, this, &RegionsAcrossPanel::refreshChoices);
  connect(&engine_.data(), &DatasetData::colouringReady, this, &RegionsAcrossPanel::refreshChoices);
  connect(&engine_.tasks(), &TaskRunner::failed, this, [this](const QString& what, const QString& message) {
    if (what != tr("Matching regions across datasets")) return;
    result_.reset();
    summary_->setText(tr("Could not match the regions: %1").arg(message));
    run_->setEnabled(true);
    emit matched();
  });
  connect(run_, &QPushButton::clicked, this, [this, &ws] {
    if (other_->currentIndex() >= 0) match(ws.currentDataset(), other_->currentData().toInt());
  });
  refreshChoices();
}

void RegionsAcrossPanel::refreshChoices() {
  const Workspace& ws = engine_.workspace();
  const int keep = other_->currentData().toInt();
  other_->clear();
  for (DatasetId id : ws.loadedDatasetIds())
    if (id != ws.currentDataset() && isRegions(engine_.data().colouring(id)))
      other_->addItem(QStringLiteral("%1 (%2)").arg(ws.dataset(id)->name, engine_.data().colouring(id)->colourBy), id);
  if (const int i = other_->findData(keep); i >= 0) other_->setCurrentIndex(i);
  run_->setEnabled(other_->count() > 0 && isRegions(engine_.data().colouring(ws.currentDataset())) && engine_.atlas());
}

void RegionsAcrossPanel::match(DatasetId a, DatasetId b, bool shareColours) {
  Workspace& ws = engine_.workspace();
  const DatasetDocument *da = ws.dataset(a), *db = ws.dataset(b);
  const CellColouring *ca = engine_.data().colouring(a), *cb = engine_.data().colouring(b);
  if (!engine_.atlas() || !da || !db || !isRegions(ca) || !isRegions(cb)) {
    summary_->setText(tr("Both datasets must be open and coloured by their discovered regions (regions_k…)."));
    return;
  }
  struct Job {
    std::shared_ptr<const CellTable> cellsA, cellsB;
    std::vector<std::int32_t> codesA, codesB;
  };
  auto job = std::make_shared<Job>(Job{da->cells, db->cells, ca->codes, cb->codes});
  const std::vector<std::string> namesA = displayNames(*da, *ca), namesB = displayNames(*db, *cb);
  const auto coloursA = displayColours(*da, *ca);
  const auto coloursB = cb->colours; // B's own, before any earlier match
  const QString columnB = cb->colourBy;
  const AnnotationVolume* grid = &engine_.atlas()->annotation();
  summary_->setText(tr("Matching %1 with %2 on the CCF grid…").arg(da->name, db->name));
  run_->setEnabled(false);
  engine_.tasks().run<std::shared_ptr<const RegionCorrespondence>>(
      QStringLiteral("regions-across"), tr("Matching regions across datasets"),
      [job, grid](const CancellationToken& cancel) {
        Progress p;
        p.cancel = &cancel;
        return std::make_shared<const RegionCorrespondence>(
            correspondRegions(*grid, *job->cellsA, job->codesA, *job->cellsB, job->codesB, {}, p));
      },
      [this, a, b, job, namesA, namesB, coloursA, coloursB, columnB,
       shareColours](std::shared_ptr<const RegionCorrespondence> r) {
        Workspace& w = engine_.workspace();
        run_->setEnabled(true);
        // Dropped when either dataset went or was re-read meanwhile.
        if (!w.dataset(a) || !w.dataset(b) || w.dataset(a)->cells != job->cellsA || w.dataset(b)->cells != job->cellsB)
          return;
        result_ = r;
        show(*r, namesA, namesB);
        if (shareColours) {
          const auto shared = sharedColours(*r, coloursA, coloursB);
          std::map<int, std::array<std::uint8_t, 3>> changed;
          for (std::size_t code = 0; code < shared.size() && code < coloursB.size(); ++code)
            if (shared[code] != coloursB[code]) changed[static_cast<int>(code)] = shared[code];
          w.setRegionColours(b, columnB, changed);
        }
        emit matched();
      });
}

void RegionsAcrossPanel::show(const RegionCorrespondence& r, const std::vector<std::string>& namesA,
                              const std::vector<std::string>& namesB) {
  summary_->setText(
      tr("On %L1 voxels of %2 um labelled in both: AMI %3, ARI %4, matched share %5; %6 one-to-one pairs, %7 splits, "
         "%8 merges")
          .arg(r.jointVoxels)
          .arg(r.voxelUm, 0, 'f', 0)
          .arg(r.agreement.adjustedMutualInformation, 0, 'f', 3)
          .arg(r.agreement.adjustedRand, 0, 'f', 3)
          .arg(r.matchedShare, 0, 'f', 3)
          .arg(r.oneToOne.size())
          .arg(r.splits.size())
          .arg(r.merges.size()));
  table_->setSortingEnabled(false);
  table_->setRowCount(0);
  auto add = [&](const QString& a, const QString& b, double jaccard, const QString& kind) {
    const int row = table_->rowCount();
    table_->insertRow(row);
    table_->setItem(row, 0, new QTableWidgetItem(a));
    table_->setItem(row, 1, new QTableWidgetItem(b));
    auto* j = new QTableWidgetItem;
    j->setData(Qt::DisplayRole, jaccard);
    table_->setItem(row, 2, j);
    table_->setItem(row, 3, new QTableWidgetItem(kind));
  };
  for (const RegionOverlap& o : r.oneToOne) add(nameOf(namesA, o.a), nameOf(namesB, o.b), o.jaccard, tr("one-to-one"));
  for (const RegionSplit& s : r.splits)
    for (const RegionOverlap& o : s.parts) add(nameOf(namesA, s.region), nameOf(namesB, o.b), o.jaccard, tr("split"));
  for (const RegionSplit& m : r.merges)
    for (const RegionOverlap& o : m.parts) add(nameOf(namesA, o.a), nameOf(namesB, m.region), o.jaccard, tr("merge"));
  table_->setSortingEnabled(true);
  table_->sortByColumn(2, Qt::DescendingOrder);

  QStringList labels;
  std::vector<double> jaccards;
  const std::size_t shown = std::min<std::size_t>(r.oneToOne.size(), 20);
  for (std::size_t i = 0; i < shown; ++i) {
    jaccards.push_back(r.oneToOne[i].jaccard);
    labels << nameOf(namesA, r.oneToOne[i].a).section(QStringLiteral(" · "), 0, 0);
  }
  setOverlapBars(chart_, tr("Jaccard"), labels, jaccards);
}

} // namespace atlascope::app
