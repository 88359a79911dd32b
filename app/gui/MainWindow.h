#pragma once
// The main window assembles docks, menus and the 3D view around an Engine (the workspace, its
// data, atlas and scene); the state lives in the workspace, the behaviour in the panels and
// reactions that bind to it. Sessions, the command line and headless export read the same model.
#include "app/gui/CommandLine.h"
#include "app/scene/Engine.h"

#include <QImage>
#include <QJsonObject>
#include <QMainWindow>

#include <map>
#include <set>

class QLabel;
class QProgressBar;
class QToolButton;
class vtkRenderWindow;

namespace atlascope::viewer {
class CellCloud;
}

namespace atlascope::app {

class CellPanel;
class DataPanel;
class DatasetDocks;
class PipelinePanel;
class RegionMatchPanel;
class AtlasTreeTabs;
class SectionView;
class TrainingPanel;
class ViewMenu;
class VtkView;

class MainWindow : public QMainWindow {
  Q_OBJECT
public:
  // `patch`: what the command line asks for (datasets read at once, the rest once the atlas is in);
  // a session restored with applySession() before the atlas loads is applied first.
  explicit MainWindow(EngineOptions options = {}, StartupPatch patch = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  Engine& engine() { return *engine_; }
  Workspace& workspace() { return engine_->workspace(); }
  // True once the atlas is loaded and nothing is left to read or build.
  bool isIdle() const { return (patched_ || !engine_->atlasError().isEmpty()) && engine_->isIdle(); }
  QString loadError() const { return engine_->atlasError(); }
  const Atlas* atlas() const { return engine_->atlas(); }
  SceneController* scene() const { return engine_->scene(); }
  // The 3D area: its render window (every view draws into it), its size in pixels, a frame now.
  vtkRenderWindow* renderWindow() const;
  QSize viewPixels() const;
  void renderNow();
  // The figure of File > Save figure: the 3D views beside the 2D section, at `size` (FigureExport.h).
  bool writeFigure(const QString& path, QSize size);
  QString statusText() const;
  int activeView() const { return activeView_; }

  // Adds a dataset (.h5ad, .csv, .tsv, an ABC folder), read in the background; the open ones stay.
  // CSV/TSV tables with `columns` (File > Open asks with a column-mapping dialog); `colourBy`: how
  // its cells are coloured once read (empty: by type, else by section).
  DatasetId openDataset(const QString& path, const ColumnOptions& columns = {}, const QString& colourBy = {});
  // Stops the reads in progress (the Cancel button beside the progress bar): the open datasets stay.
  void cancelDatasetLoading();
  QString datasetError() const { return datasetError_; } // the last read that failed, with its reason
  // The current dataset's cells and their cloud (nullptr when none is open).
  const CellTable* cells() const;
  viewer::CellCloud* cellCloud() const;

  // Sessions: the workspace serialised, with the window's own settings; restoring one replaces
  // everything (after the atlas has loaded, if it has not yet) and clears the undo history.
  QJsonObject captureSession() const;
  void applySession(const QJsonObject& session); // throws atlascope::Error with the reason
  void renderViews();
  // Every view as laid out, at `scale` times the 3D area's pixels, as PNG (atomic; throws FileError).
  void saveViewImage(const QString& path, int scale = 1);
  // The whole window as the user sees it (Qt widgets with the 3D views composited in).
  QImage windowImage();

signals:
  void idle();

private:
  void onClicked(int x, int y);
  void showCellDetails(DatasetId id, std::int64_t cell);
  void updateBusy();
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

  Engine* engine_;
  VtkView* view_;
  AtlasTreeTabs* atlasTabs_;
  CellPanel* cellPanel_;
  DataPanel* dataPanel_;
  PipelinePanel* pipelinePanel_;
  TrainingPanel* trainingPanel_;
  RegionMatchPanel* matchPanel_;
  SectionView* sectionView_;
  DatasetDocks* docks_;
  ViewMenu* viewMenu_;
  QLabel* selectionLabel_;
  QProgressBar* busy_;
  QToolButton* cancelLoad_;
  QString datasetError_;
  QJsonObject pendingSession_;
  std::set<DatasetId> opening_;             // opened by the user: made current once read
  std::map<DatasetId, DatasetId> replaces_; // a region result -> the dataset it was made from (hidden when it opens)
  int activeView_ = 0;
  bool renderQueued_ = false;
  bool patched_ = false; // the atlas is in and the command line applied
};

} // namespace atlascope::app
