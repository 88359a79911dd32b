#pragma once
// The main window assembles the pieces (view, region tree, reactions); the work lives in them.
#include "app/gui/Session.h"
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/Progress.h"
#include "viewer/AtlasScene.h"
#include "viewer/SurfaceCache.h"

#include <QImage>
#include <QFuture>
#include <QMainWindow>
#include <QUndoStack>

#include <vtkRenderer.h>
#include <vtkPolyData.h>
#include <vtkSmartPointer.h>

#include <memory>
#include <optional>
#include <vector>

class QComboBox;
class QLabel;
class QMenu;
class QProgressBar;
class QSlider;
class QToolButton;

namespace atlascope::viewer {
class CellCloud;
class RegionLayer;
class SectionPlane;
enum class SectionAxis;
}

namespace atlascope::app {

class CellPanel;
class RegionMatchPanel;
class SectionView;
struct Session;
class PipelinePanel;
class RegionTreePanel;
class TrainingPanel;
class SurfaceLoader;
class VtkView;

struct MainWindowOptions {
  AtlasPaths atlas = bundledAtlasPaths();
  QString cacheDir; // empty: defaultCacheDir() (core/FileSystem.h)
  // Shown at start besides the whole-brain shell: a few major divisions, chosen so that none
  // hides another (striatum, thalamus, hypothalamus, cerebellum).
  QStringList initialStructures{"STR", "TH", "HY", "CB"};
  viewer::CameraPreset initialView = viewer::CameraPreset::ThreeQuarter;
  QString dataset; // opened once the atlas is loaded
  QString colourBy; // "type", "section", "gene:NAME" or an obs column, applied when it opens
  bool sideBySide = false; // the CCF and the cells in two linked views
  bool regionSurfaces = false; // View > Region surfaces on from the start
};

class MainWindow : public QMainWindow {
  Q_OBJECT
public:
  explicit MainWindow(MainWindowOptions options = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  // True once the atlas is loaded and no surface is being built.
  bool isIdle() const;
  bool atlasLoaded() const { return atlas_ != nullptr; }
  QString loadError() const { return loadError_; }
  const Atlas* atlas() const { return atlas_.get(); }
  viewer::AtlasScene* scene() const { return scene_.get(); }
  RegionTreePanel* regionPanel() const { return panel_; }
  VtkView* view() const { return view_; }
  QString statusText() const;

  // Shows or hides a structure (building its surface in the background when needed).
  void setStructureVisible(int structureIndex, bool visible);
  void applyCameraPreset(viewer::CameraPreset preset);
  void renderViews();
  // The 3D view alone, at `scale` times its pixel size.
  void saveViewImage(const QString& path, int scale = 1);
  // The whole window as the user sees it (Qt widgets with the 3D view composited in).
  QImage windowImage();

  // Opens a cell dataset (.h5ad, .csv, .tsv) in the background; replaces the open one.
  // CSV/TSV tables with `columns` (File > Open asks with a column-mapping dialog); the gene
  // colouring reads with the same mapping.
  void openDataset(const QString& path, const ColumnOptions& columns = {});
  // Drops the dataset being read (the Cancel button beside the progress bar): the open one stays.
  void cancelDatasetLoading();
  const CellTable* cells() const { return cells_.get(); }
  viewer::CellCloud* cellCloud() const { return cloud_.get(); }
  CellPanel* cellPanel() const { return cellPanel_; }
  PipelinePanel* pipelinePanel() const { return pipelinePanel_; }
  TrainingPanel* trainingPanel() const { return trainingPanel_; }
  QString datasetError() const { return datasetError_; }
  void colourCellsByGene(const QString& gene);
  void colourCellsByCategory(const QString& what);
  // Draws only the cells whose category (of the current categorical colouring) is shown.
  void showCategories(const std::vector<bool>& shown);
  // Sessions (Session.h): what is visible now, and restoring it (after the atlas has loaded, if
  // it has not yet; the dataset opens in the background).
  Session captureSession() const;
  void applySession(const Session& session);
  QString colouring() const { return colouring_; }
  QUndoStack* history() const { return history_; }
  // Camera bookmarks (View menu; saved in sessions): keep a view, go back to it (undoable).
  void addCameraBookmark(const SessionCamera& camera);
  void goToCameraBookmark(int index);
  int cameraBookmarkCount() const { return static_cast<int>(bookmarks_.size()); }
  // A section through both views: the CCF surfaces and the cells clipped to a slab (thickness in
  // um) across the axis at positionUm; SectionAxis::None shows everything.
  void setSection(viewer::SectionAxis axis, double positionUm, double thicknessUm = 200);
  const viewer::SectionPlane* section() const { return section_.get(); }
  // Side by side: the CCF in the first view, the cells in a second one, one shared camera.
  // Off (the default): the cells overlaid on the CCF in one view.
  void setSideBySide(bool on);
  bool sideBySide() const { return sideBySide_; }
  VtkView* cellsView() const { return view2_; }
  vtkRenderer* cellRenderer() const; // where the cells are drawn now
  // Discovered regions as translucent surfaces with the cells (View > Region surfaces): built in
  // the background for the regions_k<k> column the cells are coloured by, cached per dataset and
  // column; they follow the colouring to another k and the cells into the side-by-side view.
  void setRegionSurfacesShown(bool on);
  bool regionSurfacesShown() const { return regionSurfacesOn_; }
  int regionSurfaceCount() const; // regions drawn now
  // The discovered regions dock (resolution, regions, CCF matches, splits) and the 2D section view.
  RegionMatchPanel* regionMatchPanel() const { return matchPanel_; }
  SectionView* sectionView() const { return sectionView_; }
  // Highlights one discovered region of the current resolution (its cells alone, its surface
  // outlined) or none (-1); the dock's list does the same.
  void highlightRegion(int code);
  // Figure mode: the 3D view(s), the 2D section (when a section is set and cells are open), the
  // legend of the current colouring and a title, laid out as one image of `size` pixels; PNG, SVG
  // or PDF by the extension (the section and legend stay vector in SVG/PDF). Atomic; false on failure.
  bool writeFigure(const QString& path, QSize size);

signals:
  void idle();

private:
  void buildMenus();
  void onAtlasLoaded();
  void onSurfaceReady(int index, vtkSmartPointer<vtkPolyData> mesh);
  void onSelection(int index);
  void onClicked(int x, int y);
  bool pickRegionSurface(int x, int y); // selects the discovered region under (x, y) of its view
  void updateBusy();
  void showCellDetails(std::int64_t cell);
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  // A categorical colouring shown everywhere: the cells, the legend, the 2D section, and (for a
  // regions_k column) the discovered-regions dock.
  void showCategorical(std::vector<std::int32_t> codes, const std::vector<std::string>& names,
                       const std::vector<std::array<std::uint8_t, 3>>& colours);
  QImage viewImage(VtkView* view); // one 3D view as rendered
  void buildRegionHierarchy();     // the dock's tree across resolutions, read in the background

  MainWindowOptions options_;
  std::unique_ptr<Atlas> atlas_;
  std::unique_ptr<viewer::SurfaceCache> cache_;
  std::unique_ptr<viewer::AtlasScene> scene_;
  SurfaceLoader* loader_ = nullptr;
  VtkView* view_;
  VtkView* view2_;
  vtkSmartPointer<vtkRenderer> cellsRenderer_;
  bool sideBySide_ = false, syncing_ = false;
  QString colouring_; // the cells' colouring, as --colour-by takes it
  std::unique_ptr<Session> pendingSession_;
  std::unique_ptr<viewer::SectionPlane> section_;
  QComboBox* sectionAxis_ = nullptr;
  QSlider* sectionSlider_ = nullptr;
  QLabel* sectionLabel_ = nullptr;
  RegionTreePanel* panel_;
  QLabel* selectionLabel_;
  QProgressBar* busy_;
  QToolButton* cancelLoad_ = nullptr;
  int loadGeneration_ = 0;
  QString loadError_;
  bool loading_ = true;
  CellPanel* cellPanel_;
  RegionMatchPanel* matchPanel_;
  SectionView* sectionView_;
  std::vector<std::string> legendNames_;
  std::vector<std::array<std::uint8_t, 3>> legendColours_;
  QStringList regionColumns_; // the open dataset's regions_k<k> columns
  int pendingRegion_ = -1;    // a session's highlighted region, selected when its matches are in
  PipelinePanel* pipelinePanel_;
  TrainingPanel* trainingPanel_;
  std::unique_ptr<CellTable> cells_;
  std::unique_ptr<viewer::CellCloud> cloud_;
  QString datasetPath_, datasetError_, colourGene_;
  std::vector<float> geneValues_;
  std::vector<std::int32_t> categoryCodes_; // the current categorical colouring, per cell
  ColumnOptions datasetColumns_, pendingColumns_; // the open dataset's mapping; one waiting for the atlas
  int datasetJobs_ = 0;
  // Region surfaces: the labelling they are for (column, per-cell codes, names, colours), the
  // surfaces once built, the layer drawing them, and the build in flight (cancelled when
  // another starts or the window closes).
  void buildRegionSurfaces();
  std::string cacheDir() const; // --cache-dir, else defaultCacheDir(): surfaces, gene stores
  // Undo/redo of view changes (Edit menu): recorded after each change is made.
  void recordDisplayChange(int index, const QString& what, double opacityBefore, double opacityAfter);
  void recordDisplayChange(int index, const QString& what, const viewer::RegionDisplay& before, const viewer::RegionDisplay& after);
  void recordCameraChange(const QString& what, const SessionCamera& before);
  SessionCamera currentCamera() const;
  void applyCamera(const SessionCamera& camera); // (the caller renders)
  QUndoStack* history_ = new QUndoStack(this);
  SessionCamera cameraBefore_;
  std::vector<SessionCamera> bookmarks_;
  QMenu* bookmarksMenu_ = nullptr;
  void placeRegionLayer();
  bool regionSurfacesOn_ = false;
  QString regionColumn_;
  std::vector<std::int32_t> regionCodes_;
  int regionCount_ = 0;
  std::vector<std::array<std::uint8_t, 3>> regionColours_;
  std::vector<vtkSmartPointer<vtkPolyData>> regionSurfaces_;
  QString regionSurfacesColumn_; // the column regionSurfaces_ were built for
  std::unique_ptr<viewer::RegionLayer> regionLayer_;
  std::shared_ptr<CancellationToken> regionCancel_;
  QFuture<void> regionBuild_;
};

} // namespace atlascope::app
