#pragma once
// Binds the docks that show the current dataset in detail to the workspace: the discovered
// regions dock (resolutions, regions, their CCF matches, the tree across resolutions) and the 2D
// section view (the nearest section's cells in their colours, the filter or highlighted region).
// A choice in the dock (a resolution, a region) goes to the model as an undoable command; the
// dock follows the model (undo, sessions, another dataset made current).
#include "app/workspace/Workspace.h"

#include <QObject>

#include <vector>

namespace atlascope::app {

struct CellColouring;
class Engine;
class RegionMatchPanel;
class SectionView;

class DatasetDocks : public QObject {
  Q_OBJECT
public:
  DatasetDocks(Engine& engine, RegionMatchPanel* regions, SectionView* section, QObject* parent = nullptr);
  // The current dataset's regions_k<k> columns, coarsest first.
  QStringList regionColumns() const;
  // The atlas the discovered regions are matched against (the window's unless chosen otherwise).
  AtlasId matchedAtlas() const { return matchedAtlas_; }

signals:
  // The current dataset has discovered regions (true) or none (the dock can hide).
  void regionsAvailable(bool available);

private:
  void refresh();
  void buildHierarchy();

  Engine& engine_;
  RegionMatchPanel* regions_;
  SectionView* section_;
  DatasetId shownDataset_ = -1;                   // the dataset the docks show
  const CellColouring* shownColouring_ = nullptr; // the colouring whose regions are being matched
  std::vector<std::string> shownNames_;
  int pendingRegion_ = -1; // chosen in the tree at another resolution: selected once matched
  AtlasId matchedAtlas_ = kMainAtlas;
  std::vector<AtlasId> offered_; // the atlases in the panel's "Against" box, in its order
  void offerAtlases();
};

} // namespace atlascope::app
