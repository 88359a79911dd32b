#pragma once
// A workspace with everything it takes to draw it (F3D's engine): the model, its datasets read and
// coloured in the background, its atlases (each read off the GUI thread: the window's at start,
// the others as the workspace gains them) with their structure surfaces built and cached on demand
// (or the atlas' own meshes), the discovered regions' surfaces, and the scene. No widget in it:
// the window hands it the render window of its view, a headless export an offscreen one, and both
// wait for idle() before they take a picture.
#include "app/scene/SceneController.h"
#include "app/workspace/DatasetData.h"
#include "app/workspace/TaskRunner.h"
#include "app/workspace/Workspace.h"
#include "core/Atlas.h"

#include <QObject>
#include <QStringList>

#include <map>
#include <memory>
#include <set>

class vtkRenderWindow;

namespace atlascope::viewer {
class SurfaceCache;
}

namespace atlascope::app {

class SurfaceLoader;

struct EngineOptions {
  AtlasPaths atlas = bundledAtlasPaths();
  // A BrainGlobe atlas (a cached name, a v1 folder or a v3 manifest; core/AtlasCatalog.h) instead of
  // `atlas`; empty: `atlas`.
  QString atlasName;
  QString cacheDir; // empty: defaultCacheDir() (core/FileSystem.h): surfaces, gene stores
};

class Engine : public QObject {
  Q_OBJECT
public:
  explicit Engine(EngineOptions options = {}, QObject* parent = nullptr);
  ~Engine() override;

  Workspace& workspace() { return ws_; }
  TaskRunner& tasks() { return tasks_; }
  DatasetData& data() { return *data_; }
  // The window's atlas (null until read).
  const Atlas* atlas() const { return atlas(kMainAtlas); }
  // Any atlas of the workspace, once read (null before, or when its id is unknown); shared for
  // work that outlives a close (a comparison running).
  const Atlas* atlas(AtlasId id) const { return sharedAtlas(id).get(); }
  std::shared_ptr<const Atlas> sharedAtlas(AtlasId id) const;
  QString atlasError() const { return atlasError_; }
  bool atlasLoading() const { return !atlas() && atlasError_.isEmpty(); }
  // Atlases the workspace has asked for that are still being read.
  int atlasesLoading() const;
  SceneController* scene() const { return scene_.get(); } // null until the atlas is loaded
  QString cacheDir() const;
  // Where the scene draws (kept until the scene exists).
  void setRenderWindow(vtkRenderWindow* window);

  // A scene of its own for pictures of any size (exports, figures, animations): it draws the
  // workspace as the window's scene does, sharing its surfaces, cells and colourings, and leaves
  // the window's scene alone. Null before the atlas is loaded.
  std::unique_ptr<SceneController> offscreenScene();
  // Every view as laid out, at exactly `size` pixels; PNG, atomic (throws Error / FileError).
  QImage renderImage(QSize size);
  void writeImage(const QString& path, QSize size);

  // The model's names of structures (acronyms), for sessions; empty before the atlas is loaded.
  Workspace::StructureNames structureNames() const;
  // Shows these structures (acronyms) and the whole-brain shell in one step; unknown ones returned.
  QStringList showStructures(const QStringList& acronyms, const QString& text, AtlasId atlas = kMainAtlas);

  int pendingSurfaces() const;
  // Nothing left to read, build or load: what a picture taken now shows is final.
  bool isIdle() const;

signals:
  void atlasLoaded();
  void atlasFailed(QString message);
  void busyChanged();
  void idle();
  void message(QString text); // for the status line: a surface that could not be built, ...

private:
  // A read atlas and what builds its surfaces. Kept after the workspace closes the atlas (undo
  // opens it again at once), freed with the engine.
  struct AtlasRuntime {
    std::shared_ptr<const Atlas> atlas;
    std::unique_ptr<viewer::SurfaceCache> cache;
    SurfaceLoader* loader = nullptr; // owned: deleted before the cache (it waits for its builds)
    std::set<int> unavailable;       // structures without voxels or whose build failed
  };
  void onAtlasLoaded();
  void readAtlas(AtlasId id);
  AtlasRuntime& addRuntime(AtlasId id, std::shared_ptr<const Atlas> atlas);
  void showAtlasInScene(AtlasId id);
  void buildRegionSurfaces(DatasetId id, const QString& column);
  void checkIdle();

  EngineOptions options_;
  Workspace ws_;
  TaskRunner tasks_;
  std::unique_ptr<DatasetData> data_;
  std::map<AtlasId, AtlasRuntime> atlases_;
  std::set<AtlasId> reading_; // atlases being read
  QString atlasError_;
  std::unique_ptr<SceneController> scene_;
  vtkRenderWindow* window_ = nullptr;
  std::map<DatasetId, QString> regionBuilding_; // the column whose surfaces are being built
  bool idleQueued_ = false;
};

} // namespace atlascope::app
