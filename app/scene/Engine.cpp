#include "app/scene/Engine.h"

#include "app/scene/SurfaceLoader.h"
#include "core/AtlasCatalog.h"
#include "core/FileSystem.h"
#include "viewer/RegionLayer.h"
#include "viewer/SurfaceCache.h"

#include <QCryptographicHash>
#include <QTimer>

namespace atlascope::app {

Engine::Engine(EngineOptions options, QObject* parent) : QObject(parent), options_(std::move(options)) {
  data_ = std::make_unique<DatasetData>(ws_, tasks_, options_.cacheDir);
  connect(&tasks_, &TaskRunner::busyChanged, this, &Engine::checkIdle);
  connect(&tasks_, &TaskRunner::failed, this,
          [this](const QString& what, const QString& error) { emit message(what + ": " + error); });
  // Reading and decoding the 25 um CCF takes ~1.5 s: off the GUI thread.
  const AtlasPaths paths = options_.atlas;
  const std::string name = options_.atlasName.toStdString();
  auto* self = this;
  tasks_.run<std::shared_ptr<Atlas>>(
      "atlas", tr("Loading the atlas"),
      [paths, name](const CancellationToken&) -> std::shared_ptr<Atlas> {
        try {
          if (!name.empty()) return std::make_shared<Atlas>(openAtlas(name));
          return std::make_shared<Atlas>(Atlas::load(paths));
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          throw Error(std::string("could not load the atlas: ") + e.what());
        }
      },
      [self](std::shared_ptr<Atlas> atlas) {
        self->atlas_ = std::make_unique<Atlas>(std::move(*atlas));
        self->onAtlasLoaded();
      });
  connect(&tasks_, &TaskRunner::failed, this, [this](const QString& what, const QString& error) {
    if (what != tr("Loading the atlas") || atlas_) return;
    atlasError_ = error;
    emit atlasFailed(error);
    checkIdle();
  });
}

Engine::~Engine() {
  tasks_.waitForAll(); // they read the atlas and the cells
  delete loader_;      // waits for running surface builds, which use the cache and the atlas
  loader_ = nullptr;
  scene_.reset();
}

QString Engine::cacheDir() const {
  return options_.cacheDir.isEmpty() ? QString::fromStdString(defaultCacheDir()) : options_.cacheDir;
}

void Engine::setRenderWindow(vtkRenderWindow* window) {
  window_ = window;
  if (scene_) scene_->setRenderWindow(window);
}

Workspace::StructureNames Engine::structureNames() const {
  const Atlas* atlas = atlas_.get();
  return {[atlas](int i) {
            return atlas && i >= 0 && i < static_cast<int>(atlas->structures().size())
                       ? QString::fromStdString(atlas->structures()[i].acronym)
                       : QString();
          },
          [atlas](const QString& acronym) -> std::optional<int> {
            if (!atlas) return std::nullopt;
            return atlas->structures().find(acronym.toStdString());
          }};
}

QStringList Engine::showStructures(const QStringList& acronyms, const QString& text) {
  QStringList unknown;
  if (!atlas_) return acronyms;
  std::map<int, StructureDisplay> shown;
  StructureDisplay on;
  on.visible = true;
  shown[atlas_->structures().root()] = on;
  for (const QString& a : acronyms) {
    if (const auto i = atlas_->structures().find(a.toStdString()))
      shown[*i] = on;
    else
      unknown << a;
  }
  ws_.setStructureDisplays(shown, text);
  return unknown;
}

void Engine::onAtlasLoaded() {
  viewer::SurfaceOptions surfaceOptions;
  surfaceOptions.downsampleAboveVoxels = 4'000'000; // whole brain, cortex: 50 um blocks (RegionSurface.h)
  cache_ = std::make_unique<viewer::SurfaceCache>(*atlas_, cacheDir().toStdString(), surfaceOptions);
  loader_ = new SurfaceLoader(*cache_);
  scene_ = std::make_unique<SceneController>(ws_, *data_, *atlas_, &tasks_);
  connect(loader_, &SurfaceLoader::surfaceReady, this, [this](int i, vtkSmartPointer<vtkPolyData> mesh) {
    if (!mesh || mesh->GetNumberOfPoints() == 0) {
      unavailable_.insert(i);
      emit message(tr("%1 has no voxels in this annotation (an ontology-only structure)")
                       .arg(QString::fromStdString(atlas_->structures()[i].acronym)));
    } else {
      scene_->setStructureSurface(i, mesh);
    }
    checkIdle();
  });
  connect(loader_, &SurfaceLoader::failed, this, [this](int i, const QString& error) {
    unavailable_.insert(i);
    if (error != QLatin1String("cancelled"))
      emit message(tr("Could not build %1: %2").arg(QString::fromStdString(atlas_->structures()[i].acronym), error));
    checkIdle();
  });
  connect(loader_, &SurfaceLoader::pendingChanged, this, &Engine::checkIdle);
  connect(scene_.get(), &SceneController::surfaceNeeded, this, [this](int i) {
    if (!unavailable_.count(i)) loader_->request(i);
  });
  connect(scene_.get(), &SceneController::regionSurfacesNeeded, this, &Engine::buildRegionSurfaces);
  if (window_) scene_->setRenderWindow(window_);
  for (int i : scene_->missingSurfaces()) loader_->request(i);
  emit atlasLoaded();
  checkIdle();
}

void Engine::buildRegionSurfaces(DatasetId id, const QString& column) {
  const DatasetDocument* d = ws_.dataset(id);
  const CellColouring* c = data_->colouring(id);
  if (!atlas_ || !d || !d->cells || !c || c->colourBy != column || c->cells != d->cells.get())
    return; // asked again when it is
  if (!d->cells->hasCcf()) {
    emit message(tr("Region surfaces need cells with CCF coordinates"));
    return;
  }
  const QString channel = QStringLiteral("dataset:%1/surfaces").arg(id);
  if (tasks_.isRunning(channel) && regionBuilding_[id] == column) return; // on its way
  regionBuilding_[id] = column;
  std::string identity;
  try {
    identity = fileIdentity(d->path.toStdString());
  } catch (const std::exception& e) {
    emit message(tr("Region surfaces: %1").arg(QString::fromUtf8(e.what())));
    return;
  }
  // The cache key: the dataset file (path, size, modification time) and the column.
  const QByteArray name = QByteArray::fromStdString(identity) + "|" + column.toUtf8();
  const std::string hash = QCryptographicHash::hash(name, QCryptographicHash::Sha1).toHex().left(16).toStdString();
  const std::string cache = cacheDir().toStdString();
  const Atlas* atlas = atlas_.get();
  std::shared_ptr<const CellTable> cells = d->cells;
  const std::vector<std::int32_t> codes = c->codes;
  const int regions = static_cast<int>(c->names.size());
  using Surfaces = std::vector<vtkSmartPointer<vtkPolyData>>;
  tasks_.run<Surfaces>(
      channel, tr("Building the surfaces of %1").arg(column),
      [atlas, cells, codes, regions, cache, hash](const CancellationToken& cancel) {
        Progress p;
        p.cancel = &cancel;
        return viewer::buildRegionSurfaceSet(*atlas, cells->ccfAp, cells->ccfDv, cells->ccfMl, codes, regions, cache,
                                             hash, p);
      },
      [this, id, column](Surfaces surfaces) {
        if (scene_) scene_->setRegionSurfaces(id, column, std::move(surfaces));
        emit message(tr("%1: %2 region surfaces").arg(column).arg(scene_ ? scene_->regionSurfaceCount(id) : 0));
      });
}

std::unique_ptr<SceneController> Engine::offscreenScene() {
  if (!atlas_ || !scene_) return nullptr;
  auto copy = std::make_unique<SceneController>(ws_, *data_, *atlas_);
  copy->shareSurfacesOf(*scene_);
  return copy;
}

QImage Engine::renderImage(QSize size) {
  auto scene = offscreenScene();
  if (!scene) throw Error("the atlas is not loaded");
  return scene->renderImage(size);
}

void Engine::writeImage(const QString& path, QSize size) {
  auto scene = offscreenScene();
  if (!scene) throw Error("the atlas is not loaded");
  scene->writeImage(path, size);
}

int Engine::pendingSurfaces() const { return loader_ ? loader_->pending() : 0; }

bool Engine::isIdle() const {
  if (atlasLoading() || tasks_.busy() > 0 || pendingSurfaces() > 0) return false;
  if (scene_)
    for (int i : scene_->missingSurfaces())
      if (!unavailable_.count(i)) return false;
  return true;
}

void Engine::checkIdle() {
  emit busyChanged();
  if (idleQueued_) return;
  idleQueued_ = true;
  // Decided once the current event is handled: a finished task often starts the next one.
  QTimer::singleShot(0, this, [this] {
    idleQueued_ = false;
    if (isIdle()) emit idle();
  });
}

} // namespace atlascope::app
