#pragma once
// The discovered regions dock: the resolution (which regions_k<k> column), the regions of that
// resolution with their sizes, and for the selected one its best CCF matches (Jaccard, share of
// the region's cells) as a table and an overlap bar chart; for a CCF structure selected in the
// atlas tree, the discovered regions that split it. Cells are matched to CCF structures (leaf
// level) by their CCF coordinates, off the GUI thread, once per dataset and resolution.
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/ComparisonReport.h"

#include <QFutureWatcher>
#include <QWidget>

#include <array>
#include <memory>
#include <vector>

class QChart;
class QChartView;
class QComboBox;
class QLabel;
class QListWidget;
class QTableWidget;
class QTreeWidget;

namespace atlascope::app {

class RegionMatchPanel : public QWidget {
  Q_OBJECT
public:
  explicit RegionMatchPanel(QWidget* parent = nullptr);

  // The atlas the regions are matched against (its name in the texts); a change re-matches on the
  // next setRegions.
  void setAtlas(const Atlas* atlas, const QString& name = QStringLiteral("CCF"));
  // The atlases of the workspace to choose from (the "against" box; hidden with one); `current` is
  // shown. A choice is reported by atlasChosen(index in `names`).
  void setAtlasChoices(const QStringList& names, int current);
  // The dataset's regions_k<k> columns (empty: no results open); `current` is shown.
  void setResolutions(const QStringList& columns, const QString& current);
  // The cells and one resolution's labels (codes per cell, names, colours); starts the matching.
  void setRegions(const CellTable* cells, const QString& column, std::vector<std::int32_t> codes,
                  std::vector<std::string> names, std::vector<std::array<std::uint8_t, 3>> colours);
  void clear();
  // Every resolution's regions as one tree, coarsest first: each region under the coarser region
  // that holds most of its cells (computed by the window from the result's columns).
  struct Level {
    QString column;
    std::vector<std::string> names;
    std::vector<std::array<std::uint8_t, 3>> colours;
    std::vector<std::int64_t> sizes;  // cells per region
    std::vector<std::int32_t> parent; // per region: its region at the previous level (-1: none)
  };
  void setHierarchy(const std::vector<Level>& levels);
  // Selects a discovered region (its code) or none (-1), as a click in the list does.
  void selectRegion(int code);
  // Lists the discovered regions that split this CCF structure (tree index; -1: none).
  void showSplitsOf(int structure);

  bool isMatching() const { return watcher_.isRunning(); }
  // Waits for every matching started (they read the atlas): the window calls it before the atlas goes.
  void waitForMatching();
  bool hasMatches() const { return result_ != nullptr; } // the matching of the current resolution is done
  int selectedRegion() const { return selected_; }

Q_SIGNALS:
  void atlasChosen(int index);
  void resolutionChosen(QString column); // colour the cells by this column
  void regionSelected(int code);         // -1: none
  // A double click on a discovered region: its code and the name shown (without the match).
  void regionActivated(int code, QString shownName);
  void matchesReady();
  void regionInResolutionChosen(QString column, int code); // a click in the tree

private:
  struct Result {
    std::vector<std::int32_t> regionLabels; // contingency column -> region code
    std::vector<std::int64_t> regionSizes;
    std::vector<std::vector<RegionMatch>> best; // per column
    std::vector<std::vector<std::pair<std::int64_t, std::int32_t>>>
        splits;                               // per CCF structure (tree index): (cells, region)
    std::vector<std::int64_t> structureCells; // per tree index
    std::string error;                        // e.g. no CCF coordinates
  };
  void showMatches();
  const Atlas* atlas_ = nullptr;
  std::vector<std::string> names_;
  std::vector<std::array<std::uint8_t, 3>> colours_;
  std::shared_ptr<Result> result_;
  QFutureWatcher<std::shared_ptr<Result>> watcher_;
  std::vector<QFuture<std::shared_ptr<Result>>> started_; // including ones a newer resolution replaced
  int selected_ = -1, splitStructure_ = -1, generation_ = 0;
  QString atlasName_ = QStringLiteral("CCF");
  QComboBox* against_;
  QComboBox* resolution_;
  QLabel* status_;
  QListWidget* regions_;
  QTableWidget* matches_;
  QChart* chart_;
  QChartView* chartView_;
  QLabel* splits_;
  QTreeWidget* tree_;
};

} // namespace atlascope::app
