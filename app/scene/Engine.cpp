#include "app/scene/Engine.h"

#include "app/scene/SurfaceLoader.h"
#include "core/AtlasCatalog.h"
#include "core/AtlasComparison.h"
#include "core/FileSystem.h"
#include "viewer/RegionLayer.h"
#include "viewer/SurfaceCache.h"

#include <QCryptographicHash>
#include <QTimer>

#include <algorithm>

namespace atlascope::app {

namespace {
// A template is read with atlases of voxels this size or coarser (2 bytes a voxel: 0.15 GB for the
// 25 um mouse); a 10 um mouse atlas (1.2 G voxels) opens without it rather than take 2.4 GB more.
constexpr double kTemplateMinVoxelUm = 20;

// A BrainGlobe atlas as the workspace reads it: labels, the list of its meshes, and its template
// when affordable (its metadata read first, cheaply, to know).
Atlas openWithTemplate(const std::string& source, const Progress& progress) {
  AtlasOpenOptions probe;
  probe.labels = false;
  probe.meshes = false;
  const AtlasDescription about = openAtlas(source, probe).description();
  const auto& um = about.resolutionUm;
  AtlasOpenOptions options;
  options.progress = progress;
  options.reference = about.format != "nrrd" && std::min({um[0], um[1], um[2]}) >= kTemplateMinVoxelUm;
  return openAtlas(source, options);
}

QString shownName(const Atlas& atlas) {
  const std::string& n = atlas.name();
  return n.empty() || n == kBundledAtlasName ? QObject::tr("Allen CCF") : QString::fromStdString(n);
}
} // namespace

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
          if (!name.empty()) return std::make_shared<Atlas>(openWithTemplate(name, {}));
          return std::make_shared<Atlas>(Atlas::load(paths));
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          throw Error(std::string("could not load the atlas: ") + e.what());
        }
      },
      [self](std::shared_ptr<Atlas> atlas) {
        self->addRuntime(kMainAtlas, std::move(atlas));
        self->onAtlasLoaded();
      });
  connect(&tasks_, &TaskRunner::failed, this, [this](const QString& what, const QString& error) {
    if (what != tr("Loading the atlas") || atlas()) return;
    atlasError_ = error;
    emit atlasFailed(error);
    checkIdle();
  });
  // Atlases opened beside the window's: read when the workspace gains them, drawn once read (a
  // redo brings back one read before), dropped from the scene when closed.
  connect(&ws_, &Workspace::atlasAdded, this, [this](AtlasId id) {
    if (!atlases_.count(id)) readAtlas(id);
  });
  connect(&ws_, &Workspace::atlasLoaded, this, &Engine::showAtlasInScene);
  connect(&ws_, &Workspace::atlasRemoved, this, [this](AtlasId id) {
    if (reading_.erase(id)) tasks_.invalidate(QStringLiteral("atlas:%1").arg(id));
    if (scene_) scene_->removeAtlas(id);
    checkIdle();
  });
}

Engine::~Engine() {
  tasks_.waitForAll();             // they read the atlas and the cells
  for (auto& [id, r] : atlases_) { // waits for running surface builds, which use the cache and the atlas
    delete r.loader;
    r.loader = nullptr;
  }
  scene_.reset();
}

std::shared_ptr<const Atlas> Engine::sharedAtlas(AtlasId id) const {
  const auto it = atlases_.find(id);
  return it == atlases_.end() ? nullptr : it->second.atlas;
}

int Engine::atlasesLoading() const { return static_cast<int>(reading_.size()); }

QString Engine::cacheDir() const {
  return options_.cacheDir.isEmpty() ? QString::fromStdString(defaultCacheDir()) : options_.cacheDir;
}

void Engine::setRenderWindow(vtkRenderWindow* window) {
  window_ = window;
  if (scene_) scene_->setRenderWindow(window);
}

Workspace::StructureNames Engine::structureNames() const {
  auto treeOf = [this](AtlasId id) -> const StructureTree* {
    const Atlas* a = atlas(id);
    return a ? &a->structures() : nullptr;
  };
  return {[treeOf](AtlasId id, int i) {
            const StructureTree* t = treeOf(id);
            return t && i >= 0 && i < static_cast<int>(t->size()) ? QString::fromStdString((*t)[i].acronym) : QString();
          },
          [treeOf](AtlasId id, const QString& acronym) -> std::optional<int> {
            const StructureTree* t = treeOf(id);
            if (!t) return std::nullopt;
            return t->find(acronym.toStdString());
          }};
}

QStringList Engine::showStructures(const QStringList& acronyms, const QString& text, AtlasId id) {
  QStringList unknown;
  const Atlas* a = atlas(id);
  if (!a) return acronyms;
  std::map<int, StructureDisplay> shown;
  StructureDisplay on;
  on.visible = true;
  shown[a->structures().root()] = on;
  for (const QString& s : acronyms) {
    if (const auto i = a->structures().find(s.toStdString()))
      shown[*i] = on;
    else
      unknown << s;
  }
  ws_.setStructureDisplays(id, shown, text);
  return unknown;
}

Engine::AtlasRuntime& Engine::addRuntime(AtlasId id, std::shared_ptr<const Atlas> atlas) {
  AtlasRuntime& r = atlases_[id];
  r.atlas = std::move(atlas);
  viewer::SurfaceOptions surfaceOptions;
  surfaceOptions.downsampleAboveVoxels = 4'000'000; // whole brain, cortex: 50 um blocks (RegionSurface.h)
  r.cache = std::make_unique<viewer::SurfaceCache>(*r.atlas, cacheDir().toStdString(), surfaceOptions);
  r.loader = new SurfaceLoader(*r.cache);
  const Atlas* a = r.atlas.get();
  connect(r.loader, &SurfaceLoader::surfaceReady, this, [this, id, a](int i, vtkSmartPointer<vtkPolyData> mesh) {
    if (!mesh || mesh->GetNumberOfPoints() == 0) {
      atlases_[id].unavailable.insert(i);
      emit message(tr("%1 has no voxels in this annotation (an ontology-only structure)")
                       .arg(QString::fromStdString(a->structures()[i].acronym)));
    } else if (scene_) {
      scene_->setStructureSurface(id, i, mesh);
    }
    checkIdle();
  });
  connect(r.loader, &SurfaceLoader::failed, this, [this, id, a](int i, const QString& error) {
    atlases_[id].unavailable.insert(i);
    if (error != QLatin1String("cancelled"))
      emit message(tr("Could not build %1: %2").arg(QString::fromStdString(a->structures()[i].acronym), error));
    checkIdle();
  });
  connect(r.loader, &SurfaceLoader::pendingChanged, this, &Engine::checkIdle);
  return r;
}

void Engine::readAtlas(AtlasId id) {
  const AtlasDocument* doc = ws_.atlas(id);
  if (!doc || id == kMainAtlas) return;
  reading_.insert(id);
  const std::string source = doc->source.toStdString();
  struct Read {
    std::shared_ptr<const Atlas> atlas;
    QString error;
  };
  tasks_.run<Read>(
      QStringLiteral("atlas:%1").arg(id), tr("Reading the atlas %1").arg(doc->name),
      [source](const CancellationToken& cancel) -> Read {
        try {
          Progress progress;
          progress.cancel = &cancel;
          return {std::make_shared<Atlas>(openWithTemplate(source, progress)), {}};
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          return {nullptr, QString::fromUtf8(e.what())};
        }
      },
      [this, id](Read read) {
        reading_.erase(id);
        const AtlasDocument* doc = ws_.atlas(id);
        if (!doc) return;
        if (!read.atlas) {
          const QString name = doc->name;
          ws_.discardAtlas(id);
          emit message(tr("Could not open the atlas %1: %2").arg(name, read.error));
          checkIdle();
          return;
        }
        addRuntime(id, read.atlas);
        const Atlas* a = read.atlas.get();
        // Unless a session says otherwise: its shell and the structures the window's atlas shows,
        // where this atlas's tree has them (the same anatomy side by side).
        QJsonArray same;
        const auto names = structureNames();
        same.append(structureDisplayJson(QString::fromStdString(a->structures()[a->structures().root()].acronym),
                                         StructureDisplay{true, {}, {}}));
        for (const auto& [i, d] : ws_.structureDisplays(kMainAtlas))
          if (d.visible)
            same.append(structureDisplayJson(names.acronym(kMainAtlas, i), StructureDisplay{true, {}, {}}));
        ws_.resolvePendingStructures(
            id, [a](const QString& acronym) { return a->structures().find(acronym.toStdString()); }, same);
        // Read before the window's atlas: assumed of its space (the window's is read first in practice).
        const Atlas* main = atlas(kMainAtlas);
        ws_.setAtlasLoaded(id, shownName(*a), {}, !main || coverSameSpace(*main, *a));
        checkIdle();
      });
}

void Engine::showAtlasInScene(AtlasId id) {
  const auto it = atlases_.find(id);
  if (!scene_ || id == kMainAtlas || it == atlases_.end()) return;
  scene_->addAtlas(id, it->second.atlas);
  for (int i : scene_->missingSurfaces(id))
    if (!it->second.unavailable.count(i)) it->second.loader->request(i);
  checkIdle();
}

void Engine::onAtlasLoaded() {
  AtlasRuntime& main = atlases_.at(kMainAtlas);
  scene_ = std::make_unique<SceneController>(ws_, *data_, main.atlas, &tasks_);
  connect(scene_.get(), &SceneController::surfaceNeeded, this, [this](AtlasId id, int i) {
    const auto it = atlases_.find(id);
    if (it != atlases_.end() && !it->second.unavailable.count(i)) it->second.loader->request(i);
  });
  connect(scene_.get(), &SceneController::regionSurfacesNeeded, this, &Engine::buildRegionSurfaces);
  if (window_) scene_->setRenderWindow(window_);
  for (int i : scene_->missingSurfaces(kMainAtlas)) main.loader->request(i);
  ws_.setAtlasLoaded(kMainAtlas, shownName(*main.atlas), options_.atlasName); // (--add-atlas of it: no second copy)
  for (AtlasId id : ws_.atlasIds())                                           // read before the window's atlas
    if (const AtlasDocument* d = ws_.atlas(id); d && d->loaded) showAtlasInScene(id);
  emit atlasLoaded();
  checkIdle();
}

void Engine::buildRegionSurfaces(DatasetId id, const QString& column) {
  const DatasetDocument* d = ws_.dataset(id);
  const CellColouring* c = data_->colouring(id);
  if (!atlas() || !d || !d->cells || !c || c->colourBy != column || c->cells != d->cells.get())
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
  std::shared_ptr<const Atlas> atlas = sharedAtlas(kMainAtlas);
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
  if (!atlas() || !scene_) return nullptr;
  auto copy = std::make_unique<SceneController>(ws_, *data_, sharedAtlas(kMainAtlas));
  for (AtlasId id : ws_.atlasIds())
    if (const AtlasDocument* d = ws_.atlas(id); id != kMainAtlas && d && d->loaded && atlases_.count(id))
      copy->addAtlas(id, atlases_.at(id).atlas);
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

int Engine::pendingSurfaces() const {
  int n = 0;
  for (const auto& [id, r] : atlases_) n += r.loader ? r.loader->pending() : 0;
  return n;
}

bool Engine::isIdle() const {
  if (atlasLoading() || !reading_.empty() || tasks_.busy() > 0 || pendingSurfaces() > 0) return false;
  if (scene_)
    for (const auto& [id, r] : atlases_)
      if (const AtlasDocument* d = ws_.atlas(id); d && d->loaded)
        for (int i : scene_->missingSurfaces(id))
          if (!r.unavailable.count(i)) return false;
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
