#include "app/gui/RegionMatchPanel.h"

#include "app/gui/OverlapChart.h"
#include "core/Agreement.h"
#include "core/CcfLabels.h"

#include <QComboBox>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QPixmap>
#include <QTableWidget>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtConcurrent/QtConcurrent>

#include <algorithm>

namespace atlascope::app {

RegionMatchPanel::RegionMatchPanel(QWidget* parent) : QWidget(parent) {
  setObjectName("regionMatchPanel");
  auto* layout = new QVBoxLayout(this);
  against_ = new QComboBox(this);
  against_->setObjectName("matchAtlas");
  against_->setToolTip(tr("The atlas the regions are matched against (atlases of the CCF's space)"));
  against_->hide();
  layout->addWidget(against_);
  connect(against_, QOverload<int>::of(&QComboBox::activated), this, &RegionMatchPanel::atlasChosen);
  resolution_ = new QComboBox(this);
  resolution_->setObjectName("resolution");
  resolution_->setToolTip(tr("Resolution: which k of the discovered regions is shown"));
  layout->addWidget(resolution_);
  status_ = new QLabel(tr("Open a region result (Discover regions) to compare its regions with the CCF."), this);
  status_->setWordWrap(true);
  layout->addWidget(status_);
  regions_ = new QListWidget(this);
  regions_->setObjectName("discoveredRegions");
  layout->addWidget(regions_, 2);
  tree_ = new QTreeWidget(this);
  tree_->setObjectName("regionHierarchy");
  tree_->setHeaderLabels({tr("Regions across resolutions"), tr("Cells")});
  tree_->setToolTip(
      tr("Each region under the coarser region holding most of its cells; click to show it at its resolution"));
  layout->addWidget(tree_, 2);
  connect(tree_, &QTreeWidget::itemClicked, this, [this](QTreeWidgetItem* item) {
    emit regionInResolutionChosen(item->data(0, Qt::UserRole).toString(), item->data(0, Qt::UserRole + 1).toInt());
  });
  matches_ = new QTableWidget(0, 4, this);
  matches_->setObjectName("ccfMatches");
  matches_->setHorizontalHeaderLabels({tr("CCF structure"), tr("Jaccard"), tr("Share of region"), tr("Cells")});
  matches_->horizontalHeader()->setStretchLastSection(true);
  matches_->verticalHeader()->hide();
  matches_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  matches_->setSortingEnabled(true);
  layout->addWidget(matches_, 2);
  chart_ = makeOverlapChart(tr("Overlap with CCF structures"));
  chartView_ = new QChartView(chart_, this);
  chartView_->setObjectName(QStringLiteral("overlapChart"));
  chartView_->setMinimumHeight(160);
  chartView_->setRenderHint(QPainter::Antialiasing);
  layout->addWidget(chartView_, 2);
  splits_ = new QLabel(this);
  splits_->setObjectName("ccfSplits");
  splits_->setWordWrap(true);
  splits_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(splits_);

  connect(resolution_, &QComboBox::activated, this, [this](int i) { emit resolutionChosen(resolution_->itemText(i)); });
  connect(regions_, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) {
    emit regionActivated(item->data(Qt::UserRole).toInt(), item->text().section(QStringLiteral(" — "), 0, 0));
  });
  connect(regions_, &QListWidget::currentRowChanged, this, [this](int row) {
    selected_ = row < 0 ? -1 : regions_->item(row)->data(Qt::UserRole).toInt();
    showMatches();
    emit regionSelected(selected_);
  });
  connect(&watcher_, &QFutureWatcher<std::shared_ptr<Result>>::finished, this, [this] {
    result_ = watcher_.result();
    if (!result_) return;
    if (!result_->error.empty()) {
      status_->setText(tr("Cannot match with the %1: %2").arg(atlasName_, QString::fromStdString(result_->error)));
      result_.reset();
      return;
    }
    status_->setText(tr("%1 regions; select one for its %2 matches, or a %2 structure for the regions that split it.")
                         .arg(names_.size())
                         .arg(atlasName_));
    showMatches();
    showSplitsOf(splitStructure_);
    emit matchesReady();
  });
}

void RegionMatchPanel::setAtlas(const Atlas* atlas, const QString& name) {
  if (atlas != atlas_) splitStructure_ = -1; // an index in the other atlas's tree
  atlas_ = atlas;
  atlasName_ = name;
  matches_->setHorizontalHeaderItem(0, new QTableWidgetItem(tr("%1 structure").arg(name)));
  chart_->setTitle(tr("Overlap with %1 structures").arg(name));
}

void RegionMatchPanel::setAtlasChoices(const QStringList& names, int current) {
  const QSignalBlocker block(against_);
  against_->clear();
  for (const QString& n : names) against_->addItem(tr("Against %1").arg(n));
  against_->setCurrentIndex(current);
  against_->setVisible(names.size() > 1);
}

void RegionMatchPanel::setResolutions(const QStringList& columns, const QString& current) {
  const QSignalBlocker block(resolution_);
  resolution_->clear();
  resolution_->addItems(columns);
  resolution_->setCurrentText(current);
}

void RegionMatchPanel::clear() {
  ++generation_;
  result_.reset();
  names_.clear();
  colours_.clear();
  selected_ = -1;
  const QSignalBlocker block(regions_);
  regions_->clear();
  matches_->setRowCount(0);
  clearOverlapBars(chart_);
  splits_->clear();
}

void RegionMatchPanel::setRegions(const CellTable* cells, const QString& column, std::vector<std::int32_t> codes,
                                  std::vector<std::string> names, std::vector<std::array<std::uint8_t, 3>> colours) {
  clear();
  if (!cells || !atlas_) return;
  names_ = std::move(names);
  colours_ = std::move(colours);
  std::vector<std::int64_t> sizes(names_.size(), 0);
  for (std::int32_t c : codes)
    if (c >= 0 && static_cast<std::size_t>(c) < sizes.size()) ++sizes[static_cast<std::size_t>(c)];
  {
    const QSignalBlocker block(regions_);
    for (std::size_t r = 0; r < names_.size(); ++r) {
      if (sizes[r] == 0) continue;
      QPixmap swatch(12, 12);
      swatch.fill(r < colours_.size() ? QColor(colours_[r][0], colours_[r][1], colours_[r][2]) : QColor(Qt::gray));
      auto* item = new QListWidgetItem(
          QIcon(swatch), tr("%1 — %2 cells").arg(QString::fromStdString(names_[r])).arg(sizes[r]), regions_);
      item->setData(Qt::UserRole, static_cast<int>(r));
    }
  }
  status_->setText(tr("Matching %1 with the %2…").arg(column, atlasName_));
  // Leaf structures of each cell, the contingency and the best matches: seconds for millions of
  // cells, off the GUI thread. The table copies what it needs.
  const Atlas* atlas = atlas_;
  CellTable table;
  table.ccfAp = cells->ccfAp;
  table.ccfDv = cells->ccfDv;
  table.ccfMl = cells->ccfMl;
  table.x = cells->x; // size() counts x
  started_.erase(std::remove_if(started_.begin(), started_.end(), [](const auto& f) { return f.isFinished(); }),
                 started_.end());
  started_.push_back(
      QtConcurrent::run([atlas, table = std::move(table), codes = std::move(codes)]() -> std::shared_ptr<Result> {
        auto r = std::make_shared<Result>();
        std::vector<std::int32_t> ccf;
        try {
          ccf = ccfLabels(*atlas, table, {"leaf"});
        } catch (const std::exception& e) {
          r->error = e.what();
          return r;
        }
        const Contingency t = contingency(ccf, codes);
        r->regionLabels = t.predictedLabels;
        r->regionSizes = t.predictedSizes;
        r->best = bestMatches(t, 8);
        for (auto& matches : r->best)
          for (RegionMatch& m : matches)
            m.reference = t.referenceLabels[static_cast<std::size_t>(m.reference)]; // -> tree index
        r->splits.resize(atlas->structures().size());
        r->structureCells.assign(atlas->structures().size(), 0);
        for (std::size_t i = 0; i < t.referenceLabels.size(); ++i)
          r->structureCells[static_cast<std::size_t>(t.referenceLabels[i])] = t.referenceSizes[i];
        for (const auto& [ij, n] : t.cells)
          r->splits[static_cast<std::size_t>(t.referenceLabels[static_cast<std::size_t>(ij.first)])].emplace_back(
              n, t.predictedLabels[static_cast<std::size_t>(ij.second)]);
        return r;
      }));
  watcher_.setFuture(started_.back());
}

void RegionMatchPanel::waitForMatching() {
  for (auto& f : started_) f.waitForFinished();
  started_.clear();
}

void RegionMatchPanel::setHierarchy(const std::vector<Level>& levels) {
  tree_->clear();
  std::vector<QTreeWidgetItem*> above; // the previous level's items, by code
  for (const Level& level : levels) {
    std::vector<QTreeWidgetItem*> items(level.names.size(), nullptr);
    for (std::size_t r = 0; r < level.names.size(); ++r) {
      if (r >= level.sizes.size() || level.sizes[r] == 0) continue;
      const int p = r < level.parent.size() ? level.parent[r] : -1;
      QTreeWidgetItem* parent =
          p >= 0 && static_cast<std::size_t>(p) < above.size() ? above[static_cast<std::size_t>(p)] : nullptr;
      auto* item = parent ? new QTreeWidgetItem(parent) : new QTreeWidgetItem(tree_);
      QPixmap swatch(12, 12);
      swatch.fill(r < level.colours.size() ? QColor(level.colours[r][0], level.colours[r][1], level.colours[r][2])
                                           : QColor(Qt::gray));
      item->setIcon(0, QIcon(swatch));
      item->setText(0, QString::fromStdString(level.names[r]));
      item->setData(1, Qt::DisplayRole, static_cast<qlonglong>(level.sizes[r]));
      item->setData(0, Qt::UserRole, level.column);
      item->setData(0, Qt::UserRole + 1, static_cast<int>(r));
      items[r] = item;
    }
    above = std::move(items);
  }
  tree_->resizeColumnToContents(0);
}

void RegionMatchPanel::selectRegion(int code) {
  for (int row = 0; row < regions_->count(); ++row)
    if (regions_->item(row)->data(Qt::UserRole).toInt() == code) {
      regions_->setCurrentRow(row);
      return;
    }
  regions_->setCurrentRow(-1);
}

void RegionMatchPanel::showMatches() {
  matches_->setSortingEnabled(false);
  matches_->setRowCount(0);
  clearOverlapBars(chart_);
  if (!result_ || selected_ < 0 || !atlas_) return;
  const auto it = std::find(result_->regionLabels.begin(), result_->regionLabels.end(), selected_);
  if (it == result_->regionLabels.end()) return;
  const auto& best = result_->best[static_cast<std::size_t>(it - result_->regionLabels.begin())];
  for (std::size_t i = 0; i < best.size(); ++i) {
    const RegionMatch& m = best[i];
    const Structure& s = atlas_->structures()[m.reference];
    const int row = matches_->rowCount();
    matches_->insertRow(row);
    auto* name = new QTableWidgetItem(QString::fromStdString(s.acronym + " — " + s.name));
    name->setData(Qt::UserRole, m.reference);
    matches_->setItem(row, 0, name);
    auto number = [](double v) {
      auto* item = new QTableWidgetItem;
      item->setData(Qt::DisplayRole, v);
      return item;
    };
    matches_->setItem(row, 1, number(std::round(m.jaccard * 1000) / 1000));
    matches_->setItem(row, 2, number(std::round(m.fraction * 1000) / 1000));
    matches_->setItem(row, 3, number(static_cast<double>(m.cells)));
  }
  std::vector<RegionMatch> byShare = best;
  std::sort(byShare.begin(), byShare.end(),
            [](const RegionMatch& a, const RegionMatch& b) { return a.fraction < b.fraction; });
  // The bar chart lists the largest shares first, top to bottom.
  QStringList labels;
  std::vector<double> shares;
  for (const RegionMatch& m : byShare) {
    shares.push_back(m.fraction);
    labels << QString::fromStdString(atlas_->structures()[m.reference].acronym);
  }
  QColor colour;
  if (selected_ < static_cast<int>(colours_.size())) {
    const auto& c = colours_[static_cast<std::size_t>(selected_)];
    colour = QColor(c[0], c[1], c[2]);
  }
  setOverlapBars(chart_, tr("share of the region's cells"), labels, shares,
                 tr("share of %1's cells").arg(QString::fromStdString(names_[static_cast<std::size_t>(selected_)])),
                 colour);
  matches_->setSortingEnabled(true);
  matches_->sortByColumn(1, Qt::DescendingOrder);
}

void RegionMatchPanel::showSplitsOf(int structure) {
  splitStructure_ = structure;
  if (!result_ || !atlas_ || structure < 0 || static_cast<std::size_t>(structure) >= result_->splits.size()) {
    splits_->clear();
    return;
  }
  auto parts = result_->splits[static_cast<std::size_t>(structure)];
  const Structure& s = atlas_->structures()[structure];
  const std::int64_t total = result_->structureCells[static_cast<std::size_t>(structure)];
  if (parts.empty() || total == 0) {
    splits_->setText(tr("%1: no cells of this dataset (leaf structures only)").arg(QString::fromStdString(s.acronym)));
    return;
  }
  std::sort(parts.rbegin(), parts.rend());
  QStringList list;
  for (const auto& [n, region] : parts) {
    if (list.size() == 8) break;
    list << QStringLiteral("%1 (%2%)")
                .arg(QString::fromStdString(names_[static_cast<std::size_t>(region)]))
                .arg(100.0 * static_cast<double>(n) / static_cast<double>(total), 0, 'f', 0);
  }
  splits_->setText(tr("%1 (%2 cells) is split into %3 discovered regions: %4")
                       .arg(QString::fromStdString(s.acronym))
                       .arg(total)
                       .arg(parts.size())
                       .arg(list.join(", ")));
}

} // namespace atlascope::app
