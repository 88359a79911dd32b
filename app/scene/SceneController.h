#pragma once
// The workspace drawn with VTK (3D Slicer's displayable managers): the atlas's structures, each
// dataset's cells and region surfaces, per view of the layout, in one render window whose
// renderers sit side by side as the grid says. No widget in it: the window gives it the render
// window of its VtkView; headless export gives it an offscreen one. Either way the picture comes
// from the model alone, so a session, the window and `--export` draw the same thing.
//
// Actors are shared between the views' renderers (one window, one OpenGL context): a dataset's
// 4M points are uploaded once however many views show them. Views of one camera group share one
// vtkCamera (linked); a camera moved by the mouse is written back to the model when the drag ends.
#include "app/workspace/DatasetData.h"
#include "app/workspace/TaskRunner.h"
#include "app/workspace/Workspace.h"
#include "viewer/AtlasScene.h"

#include <QImage>
#include <QObject>
#include <QSize>

#include <vtkSmartPointer.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

class vtkCamera;
class vtkPolyData;
class vtkRenderWindow;
class vtkRenderer;
class vtkTextActor;

namespace atlascope::viewer {
class CellCloud;
class RegionLayer;
class SectionPlane;
class TemplateSlice;
} // namespace atlascope::viewer

namespace atlascope::app {

// What a render window shows now, read from VTK's own buffer (QWidget::grab cannot see it).
QImage grabImage(vtkRenderWindow* window);

class SceneController : public QObject {
  Q_OBJECT
public:
  // With `tasks`, each dataset's point cloud is laid out on a worker (4M cells take a few hundred
  // ms: too long for the GUI thread) and added when ready, counting as busy meanwhile; without
  // (an offscreen copy that draws at once), on the spot.
  // `atlas`: the window's atlas; the workspace's other atlases come with addAtlas once read.
  SceneController(Workspace& workspace, DatasetData& data, std::shared_ptr<const Atlas> atlas,
                  TaskRunner* tasks = nullptr, QObject* parent = nullptr);
  ~SceneController() override;

  // Where it draws (null: nowhere yet). The controller's renderers move to the new window.
  void setRenderWindow(vtkRenderWindow* window);
  vtkRenderWindow* renderWindow() const { return window_; }
  void render();
  // Every view as laid out, at exactly `size` pixels (rendered offscreen; the window is untouched).
  QImage renderImage(QSize size);
  // PNG, atomic; throws atlascope::FileError when it cannot be written.
  void writeImage(const QString& path, QSize size);

  // An atlas of the workspace, read (the engine reads it); drawn in the views with its layer.
  void addAtlas(AtlasId id, std::shared_ptr<const Atlas> atlas);
  void removeAtlas(AtlasId id);
  bool hasAtlas(AtlasId id) const { return atlases_.count(id) > 0; }
  viewer::AtlasScene& atlasScene() { return *atlases_.at(kMainAtlas).scene; }
  viewer::AtlasScene* atlasScene(AtlasId id) const;
  viewer::SectionPlane* section() const { return section_.get(); }
  // A structure's surface, built elsewhere (in the background); shown as the model says.
  void setStructureSurface(AtlasId atlas, int structure, vtkSmartPointer<vtkPolyData> mesh);
  // Shown structures of an atlas still waiting for their surface.
  std::set<int> missingSurfaces(AtlasId atlas = kMainAtlas) const;
  // Outlines one structure of one atlas (the others' outlines go).
  void setHighlightedStructure(std::optional<int> structure) { setHighlightedStructure(kMainAtlas, structure); }
  void setHighlightedStructure(AtlasId atlas, std::optional<int> structure);
  // Whether an atlas' template slice is drawn now (its template shown, read, and a section set).
  bool templateDrawn(AtlasId atlas) const;

  // The region surfaces of a dataset's regions_k colouring (index = region code).
  void setRegionSurfaces(DatasetId id, const QString& column, std::vector<vtkSmartPointer<vtkPolyData>> surfaces);
  QString regionSurfacesColumn(DatasetId id) const;
  int regionSurfaceCount(DatasetId id) const; // regions drawn now (0 when hidden)

  // Takes the other scene's structure and region surfaces (shared, not copied): a second scene of
  // the same workspace draws at once what the first has built.
  void shareSurfacesOf(const SceneController& other);

  viewer::CellCloud* cloud(DatasetId id) const;
  int viewCount() const { return static_cast<int>(views_.size()); }
  vtkRenderer* renderer(int view) const;
  // The view under a display pixel of the window (origin bottom left); -1: none.
  int viewAt(int x, int y) const;
  // What is under a display pixel: a cell, else a discovered region's surface, else a structure.
  struct Hit {
    int view = -1;
    DatasetId dataset = -1;
    std::int64_t cell = -1;
    int region = -1;
    int structure = -1;
    AtlasId atlas = kMainAtlas; // whose structure
  };
  Hit pick(int x, int y) const;

  // Camera presets and reset for a view (its whole camera group), recorded in the model.
  void applyCameraPreset(int view, viewer::CameraPreset preset, const QString& text);
  void resetCamera(int view, const QString& text);
  // After a drag: the cameras as the mouse left them, into the model (one undo step).
  void commitCameras(const QString& text);
  // Level of detail while the camera moves (CellCloud::setInteracting).
  void setInteracting(bool on);

signals:
  void surfaceNeeded(AtlasId atlas, int structure);
  void regionSurfacesNeeded(DatasetId id, QString column);
  void changed(); // something to draw

private:
  struct View {
    vtkSmartPointer<vtkRenderer> renderer;
    vtkSmartPointer<vtkTextActor> title;
    int group = 0;
    std::vector<AtlasId> atlases; // shown here, in the model's order
    std::vector<DatasetId> cells;
    std::map<DatasetId, std::unique_ptr<viewer::RegionLayer>> regions;
  };
  struct Applied { // what a dataset's cloud shows now, to redo only what changed
    const CellColouring* colouring = nullptr;
    QString colourBy;
    std::vector<std::string> names;
    std::vector<std::array<std::uint8_t, 3>> colours;
    std::vector<int> hidden;
    int highlighted = -1;
  };
  struct RegionSet {
    QString column;
    std::vector<vtkSmartPointer<vtkPolyData>> surfaces;
  };

  // An atlas as drawn: its actors, the surfaces it has, its template slice.
  struct AtlasLayer {
    std::shared_ptr<const Atlas> atlas;
    std::unique_ptr<viewer::AtlasScene> scene;
    std::map<int, vtkSmartPointer<vtkPolyData>> surfaces;
    std::unique_ptr<viewer::TemplateSlice> templateSlice; // made when first shown
  };
  void rebuildViews();
  void placeViewports();
  void applyStructures(AtlasId atlas, const QList<int>& structures);
  void applyTemplate(AtlasId atlas);
  void applyCamera(int group);
  vtkCamera* cameraOf(int group);
  void datasetLoaded(DatasetId id);
  void addCloud(DatasetId id, std::unique_ptr<viewer::CellCloud> cloud, double fileSpacing);
  void datasetRemoved(DatasetId id);
  void applyDataset(DatasetId id);
  void applySection();
  void updateTitles();
  CameraState stateOf(vtkCamera* camera) const;

  Workspace& ws_;
  DatasetData& data_;
  std::map<AtlasId, AtlasLayer> atlases_; // the window's (kMainAtlas) always
  std::unique_ptr<viewer::SectionPlane> section_;
  vtkRenderWindow* window_ = nullptr;
  vtkSmartPointer<vtkRenderer> background_; // the gaps between views
  std::vector<View> views_;
  std::map<int, vtkSmartPointer<vtkCamera>> cameras_;
  std::map<DatasetId, std::unique_ptr<viewer::CellCloud>> clouds_;
  std::map<DatasetId, double> fileSpacing_; // section spacing each dataset's file states (0: none)
  TaskRunner* tasks_ = nullptr;             // where clouds are laid out (none: on the GUI thread)
  std::map<DatasetId, Applied> applied_;
  std::map<DatasetId, RegionSet> regionSets_;
  bool interacting_ = false;
};

} // namespace atlascope::app
