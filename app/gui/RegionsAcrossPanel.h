#pragma once
// The "Regions across datasets" dock: the current dataset's discovered regions matched with
// another dataset's on the shared CCF grid (core/RegionCorrespondence: each labeling voxelised,
// Jaccard of every pair, one-to-one pairs by the Hungarian method, splits and merges): how well
// the two agree (AMI, the matched share), the pairs as a table and an overlap chart, and matched
// regions drawn in the same colour in both (one undoable step in the workspace). Runs in the
// background; a match whose datasets changed meanwhile is dropped.
#include "app/workspace/Workspace.h"
#include "core/RegionCorrespondence.h"

#include <QWidget>

#include <memory>

class QChart;
class QComboBox;
class QLabel;
class QPushButton;
class QTableWidget;

namespace atlascope::app {

class Engine;

class RegionsAcrossPanel : public QWidget {
  Q_OBJECT
public:
  explicit RegionsAcrossPanel(Engine& engine, QWidget* parent = nullptr);

  // Matches the regions dataset `a` and `b` are coloured by (both regions_k columns); the result
  // arrives with matched(); `shareColours`: B's matched regions take A's colours.
  void match(DatasetId a, DatasetId b, bool shareColours = true);
  const RegionCorrespondence* result() const { return result_.get(); }

signals:
  // A match finished: result() holds it, or is null when it failed (the summary says why).
  void matched();

private:
  void refreshChoices();
  void show(const RegionCorrespondence& r, const std::vector<std::string>& namesA,
            const std::vector<std::string>& namesB);

  Engine& engine_;
  QComboBox* other_;
  QPushButton* run_;
  QLabel* summary_;
  QTableWidget* table_;
  QChart* chart_;
  std::shared_ptr<const RegionCorrespondence> result_;
};

} // namespace atlascope::app
