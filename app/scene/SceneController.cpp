#include "app/scene/SceneController.h"

#include "core/AtomicFile.h"
#include "core/CellFileSet.h"
#include "core/Error.h"
#include "viewer/CellCloud.h"
#include "viewer/RegionLayer.h"
#include "viewer/SectionPlane.h"
#include "viewer/TemplateSlice.h"

#include <QFile>

#include <vtkActor.h>
#include <vtkCamera.h>
#include <vtkImageActor.h>
#include <vtkImageData.h>
#include <vtkMapper.h>
#include <vtkPolyData.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>
#include <vtkScalarBarActor.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>
#include <vtkWindowToImageFilter.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace atlascope::app {

namespace {
constexpr double kGap = 0.003; // between views, in window fractions
}

QImage grabImage(vtkRenderWindow* window) {
  auto grab = vtkSmartPointer<vtkWindowToImageFilter>::New();
  grab->SetInput(window);
  grab->SetInputBufferTypeToRGB();
  grab->ReadFrontBufferOff();
  grab->Update();
  vtkImageData* data = grab->GetOutput();
  int dims[3];
  data->GetDimensions(dims);
  QImage image(dims[0], dims[1], QImage::Format_RGB888);
  const auto* src = static_cast<const unsigned char*>(data->GetScalarPointer());
  for (int y = 0; y < dims[1]; ++y) // VTK rows go bottom-up
    std::memcpy(image.scanLine(dims[1] - 1 - y),
                src + static_cast<std::size_t>(y) * static_cast<std::size_t>(dims[0]) * 3,
                static_cast<std::size_t>(dims[0]) * 3);
  return image;
}

SceneController::SceneController(Workspace& workspace, DatasetData& data, std::shared_ptr<const Atlas> atlas,
                                 TaskRunner* tasks, QObject* parent)
    : QObject(parent), ws_(workspace), data_(data), section_(std::make_unique<viewer::SectionPlane>()),
      background_(vtkSmartPointer<vtkRenderer>::New()) {
  tasks_ = tasks;
  AtlasLayer& main = atlases_[kMainAtlas];
  main.atlas = std::move(atlas);
  main.scene = std::make_unique<viewer::AtlasScene>(*main.atlas);
  main.scene->setSection(section_.get());
  background_->SetBackground(0.82, 0.82, 0.82);
  background_->SetInteractive(0);
  background_->SetViewport(0, 0, 1, 1);
  connect(&ws_, &Workspace::layoutChanged, this, &SceneController::rebuildViews);
  connect(&ws_, &Workspace::structuresChanged, this, &SceneController::applyStructures);
  connect(&ws_, &Workspace::cameraChanged, this, &SceneController::applyCamera);
  connect(&ws_, &Workspace::sectionChanged, this, &SceneController::applySection);
  connect(&ws_, &Workspace::datasetLoaded, this, &SceneController::datasetLoaded);
  connect(&ws_, &Workspace::datasetRemoved, this, &SceneController::datasetRemoved);
  connect(&ws_, &Workspace::datasetChanged, this, &SceneController::applyDataset);
  connect(&data_, &DatasetData::colouringReady, this, &SceneController::applyDataset);
  connect(&ws_, &Workspace::atlasRemoved, this, &SceneController::removeAtlas);
  connect(&ws_, &Workspace::atlasChanged, this, &SceneController::applyTemplate);
  connect(&ws_, &Workspace::restored, this, [this] {
    for (const auto& [id, layer] : atlases_) applyStructures(id, {});
    applySection();
  });
  for (DatasetId id : ws_.loadedDatasetIds()) datasetLoaded(id);
  rebuildViews();
  applyStructures(kMainAtlas, {});
  applyTemplate(kMainAtlas);
  applySection();
}

namespace {
QString cloudChannel(DatasetId id) { return QStringLiteral("cloud:%1").arg(id); }

// The section spacing a file states (uns["section_spacing_um"]), for cells without CCF
// coordinates; 0: none stated (or CCF coordinates, which need none).
double fileSectionSpacing(const CellTable& cells) {
  if (cells.hasCcf()) return 0;
  try {
    return readSectionSpacing(cells.source);
  } catch (const std::exception&) {
    return 0;
  }
}
double spacingFor(const DatasetDisplay& display, double fileSpacing) {
  return display.sectionSpacing > 0 ? display.sectionSpacing
         : fileSpacing > 0          ? fileSpacing
                                    : viewer::CellCloud::kDefaultSectionSpacingUm;
}
} // namespace

SceneController::~SceneController() {
  if (tasks_) tasks_->invalidatePrefix("cloud:"); // no cloud may arrive after this
  setRenderWindow(nullptr);
  for (View& v : views_)
    for (auto& [id, layer] : atlases_) layer.scene->showIn(v.renderer, false);
}

// --- window and views

void SceneController::setRenderWindow(vtkRenderWindow* window) {
  if (window == window_) return;
  if (window_) {
    window_->RemoveRenderer(background_);
    for (View& v : views_) window_->RemoveRenderer(v.renderer);
  }
  window_ = window;
  if (!window_) return;
  background_->SetLayer(0);
  window_->AddRenderer(background_);
  for (View& v : views_) window_->AddRenderer(v.renderer);
}

void SceneController::rebuildViews() {
  const int n = ws_.viewCount();
  while (static_cast<int>(views_.size()) > n) {
    View& v = views_.back();
    for (auto& [id, layer] : atlases_) {
      layer.scene->showIn(v.renderer, false);
      if (layer.templateSlice) v.renderer->RemoveViewProp(layer.templateSlice->actor());
    }
    if (window_) window_->RemoveRenderer(v.renderer);
    views_.pop_back();
  }
  while (static_cast<int>(views_.size()) < n) {
    View v;
    v.renderer = vtkSmartPointer<vtkRenderer>::New();
    viewer::configureRenderer(v.renderer);
    v.title = vtkSmartPointer<vtkTextActor>::New();
    v.title->GetTextProperty()->SetFontSize(14);
    v.title->GetTextProperty()->SetColor(0.15, 0.15, 0.15);
    v.title->SetPosition(8, 8);
    v.renderer->AddActor2D(v.title);
    if (window_) window_->AddRenderer(v.renderer);
    views_.push_back(std::move(v));
  }
  for (int i = 0; i < n; ++i) {
    View& v = views_[static_cast<std::size_t>(i)];
    const ViewState& state = ws_.view(i);
    v.group = state.cameraGroup;
    v.renderer->SetActiveCamera(cameraOf(v.group));
    v.atlases.clear();
    for (auto& [id, layer] : atlases_) {
      const bool shown = state.layers.contains(atlasLayer(id));
      layer.scene->showIn(v.renderer, shown);
      if (layer.templateSlice) {
        v.renderer->RemoveViewProp(layer.templateSlice->actor());
        if (shown) v.renderer->AddViewProp(layer.templateSlice->actor());
      }
      if (shown) v.atlases.push_back(id);
    }
    // Cells: the layer's actors in this renderer, in the order the view lists them.
    for (DatasetId id : v.cells)
      if (const auto it = clouds_.find(id); it != clouds_.end()) {
        v.renderer->RemoveActor(it->second->actor());
        v.renderer->RemoveActor2D(it->second->colourBar());
      }
    v.cells.clear();
    for (const QString& layer : state.layers) {
      const auto id = layerDataset(layer);
      if (!id || !layer.startsWith("cells:") || !clouds_.count(*id)) continue;
      v.renderer->AddActor(clouds_[*id]->actor());
      v.renderer->AddActor2D(clouds_[*id]->colourBar());
      v.cells.push_back(*id);
    }
    // Region surfaces: a layer per dataset shown here (filled by applyDataset).
    for (auto it = v.regions.begin(); it != v.regions.end();)
      it = state.layers.contains(surfacesLayer(it->first)) ? std::next(it) : v.regions.erase(it);
  }
  placeViewports();
  // Each view's camera exists in the model from the first frame on (the initial preset).
  for (const View& v : views_)
    if (!ws_.hasCamera(v.group)) {
      atlasScene().applyCameraPreset(viewer::CameraPreset::ThreeQuarter, v.renderer);
      ws_.setCamera(v.group, stateOf(cameraOf(v.group)), tr("Camera"));
    }
  for (DatasetId id : ws_.loadedDatasetIds()) applyDataset(id);
  updateTitles();
  emit changed();
}

void SceneController::placeViewports() {
  const int rows = ws_.rows(), cols = ws_.columns();
  for (std::size_t i = 0; i < views_.size(); ++i) {
    const int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
    const double x0 = static_cast<double>(c) / cols, x1 = static_cast<double>(c + 1) / cols;
    const double y1 = 1.0 - static_cast<double>(r) / rows, y0 = 1.0 - static_cast<double>(r + 1) / rows;
    const double gx = cols > 1 ? kGap : 0, gy = rows > 1 ? kGap : 0;
    views_[i].renderer->SetViewport(x0 + (c > 0 ? gx : 0), y0 + (r + 1 < rows ? gy : 0), x1 - (c + 1 < cols ? gx : 0),
                                    y1 - (r > 0 ? gy : 0));
  }
}

void SceneController::updateTitles() {
  // A view says what it shows when there is more than one (a figure's panels name themselves).
  for (View& v : views_) {
    QStringList parts;
    for (AtlasId id : v.atlases)
      if (const AtlasDocument* a = ws_.atlas(id)) parts << (a->name.isEmpty() ? tr("Allen CCF") : a->name);
    for (DatasetId id : v.cells)
      if (const DatasetDocument* d = ws_.dataset(id); d && d->display.visible) parts << d->name;
    v.title->SetInput(views_.size() > 1 ? parts.join(" + ").toUtf8().constData() : "");
  }
}

vtkRenderer* SceneController::renderer(int view) const {
  return view >= 0 && view < viewCount() ? views_[static_cast<std::size_t>(view)].renderer.Get() : nullptr;
}

int SceneController::viewAt(int x, int y) const {
  if (!window_) return -1;
  const int* size = window_->GetSize();
  const double fx = static_cast<double>(x) / std::max(1, size[0]), fy = static_cast<double>(y) / std::max(1, size[1]);
  for (std::size_t i = 0; i < views_.size(); ++i) {
    double vp[4];
    views_[i].renderer->GetViewport(vp);
    if (fx >= vp[0] && fx <= vp[2] && fy >= vp[1] && fy <= vp[3]) return static_cast<int>(i);
  }
  return -1;
}

void SceneController::render() {
  if (!window_) return;
  for (View& v : views_) v.renderer->ResetCameraClippingRange();
  window_->Render();
}

QImage SceneController::renderImage(QSize size) {
  if (size.width() < 1 || size.height() < 1) throw Error("an image needs at least 1x1 pixels");
  // The same renderers, moved for a moment into an offscreen window of exactly that size.
  auto offscreen = vtkSmartPointer<vtkRenderWindow>::New();
  offscreen->SetOffScreenRendering(1);
  viewer::configureRenderWindow(offscreen);
  offscreen->SetSize(size.width(), size.height());
  vtkRenderWindow* was = window_;
  setRenderWindow(offscreen);
  render();
  const QImage image = grabImage(offscreen);
  setRenderWindow(was);
  return image;
}

void SceneController::writeImage(const QString& path, QSize size) {
  const QImage image = renderImage(size);
  const std::string tmp = temporaryPathFor(path.toStdString());
  if (!image.save(QString::fromStdString(tmp), "PNG")) {
    QFile::remove(QString::fromStdString(tmp));
    throw FileError(path.toStdString(), "cannot write the PNG (is the folder writable?)");
  }
  moveIntoPlace(tmp, path.toStdString());
}

// --- atlases

void SceneController::addAtlas(AtlasId id, std::shared_ptr<const Atlas> atlas) {
  if (id == kMainAtlas || !atlas || atlases_.count(id)) return;
  AtlasLayer& layer = atlases_[id];
  layer.atlas = std::move(atlas);
  layer.scene = std::make_unique<viewer::AtlasScene>(*layer.atlas);
  layer.scene->setSection(section_.get());
  rebuildViews();
  applyStructures(id, {});
  applyTemplate(id);
}

void SceneController::removeAtlas(AtlasId id) {
  const auto it = atlases_.find(id);
  if (id == kMainAtlas || it == atlases_.end()) return;
  for (View& v : views_) {
    it->second.scene->showIn(v.renderer, false);
    if (it->second.templateSlice) v.renderer->RemoveViewProp(it->second.templateSlice->actor());
    v.atlases.erase(std::remove(v.atlases.begin(), v.atlases.end(), id), v.atlases.end());
  }
  atlases_.erase(it);
  updateTitles();
  emit changed();
}

viewer::AtlasScene* SceneController::atlasScene(AtlasId id) const {
  const auto it = atlases_.find(id);
  return it == atlases_.end() ? nullptr : it->second.scene.get();
}

void SceneController::setStructureSurface(AtlasId atlas, int structure, vtkSmartPointer<vtkPolyData> mesh) {
  const auto it = atlases_.find(atlas);
  if (!mesh || mesh->GetNumberOfPoints() == 0 || it == atlases_.end()) return;
  it->second.scene->setSurface(structure, mesh);
  it->second.surfaces[structure] = mesh;
  applyStructures(atlas, {structure});
}

std::set<int> SceneController::missingSurfaces(AtlasId atlas) const {
  std::set<int> missing;
  const auto it = atlases_.find(atlas);
  if (it == atlases_.end()) return missing;
  for (const auto& [i, d] : ws_.structureDisplays(atlas))
    if (d.visible && !it->second.surfaces.count(i)) missing.insert(i);
  return missing;
}

void SceneController::applyStructures(AtlasId atlas, const QList<int>& structures) {
  const auto it = atlases_.find(atlas);
  if (it == atlases_.end()) return;
  AtlasLayer& layer = it->second;
  std::set<int> which(structures.begin(), structures.end());
  if (which.empty()) { // everything: what the model has and what the scene shows
    for (const auto& [i, mesh] : layer.surfaces) which.insert(i);
    for (const auto& [i, d] : ws_.structureDisplays(atlas)) which.insert(i);
  }
  for (int i : which) {
    if (i < 0 || i >= static_cast<int>(layer.atlas->structures().size())) continue;
    const StructureDisplay s = ws_.structureDisplay(atlas, i);
    viewer::RegionDisplay d = layer.scene->defaultDisplay(i);
    d.visible = s.visible;
    if (s.opacity) d.opacity = *s.opacity;
    if (s.colour) d.colour = *s.colour;
    if (layer.surfaces.count(i))
      layer.scene->setDisplay(i, d);
    else if (s.visible)
      emit surfaceNeeded(atlas, i);
  }
  emit changed();
}

void SceneController::applyTemplate(AtlasId atlas) {
  const auto it = atlases_.find(atlas);
  const AtlasDocument* doc = ws_.atlas(atlas);
  if (it == atlases_.end() || !doc) return;
  AtlasLayer& layer = it->second;
  const bool wanted = doc->templateShown && layer.atlas->hasReference();
  if (!wanted) {
    if (layer.templateSlice) layer.templateSlice->actor()->SetVisibility(0);
    emit changed();
    return;
  }
  if (!layer.templateSlice) {
    layer.templateSlice =
        std::make_unique<viewer::TemplateSlice>(layer.atlas->reference(), layer.atlas->annotation().spacingUm());
    rebuildViews(); // into the views that show the atlas
  }
  // On the section's plane; without a section, the coronal plane through the middle.
  const SectionState& s = ws_.section();
  const int normal = viewer::sectionAxisIndex(viewer::sectionAxisFromName(s.axis.toStdString()));
  if (normal >= 0)
    layer.templateSlice->setPlane(normal, s.position);
  else
    layer.templateSlice->setPlane(0, 0.5 * layer.atlas->annotation().extentUm()[0]);
  // Shown again after a hide on the same plane (setPlane has nothing to redo then).
  layer.templateSlice->actor()->SetVisibility(layer.templateSlice->placed() ? 1 : 0);
  emit changed();
}

bool SceneController::templateDrawn(AtlasId atlas) const {
  const auto it = atlases_.find(atlas);
  return it != atlases_.end() && it->second.templateSlice && it->second.templateSlice->actor()->GetVisibility() &&
         it->second.templateSlice->placed();
}

void SceneController::shareSurfacesOf(const SceneController& other) {
  for (const auto& [id, layer] : other.atlases_) {
    if (!atlases_.count(id)) continue;
    for (const auto& [i, mesh] : layer.surfaces) setStructureSurface(id, i, mesh);
    if (layer.scene->highlighted()) setHighlightedStructure(id, layer.scene->highlighted());
  }
  for (const auto& [id, set] : other.regionSets_) setRegionSurfaces(id, set.column, set.surfaces);
}

void SceneController::setHighlightedStructure(AtlasId atlas, std::optional<int> structure) {
  for (auto& [id, layer] : atlases_)
    layer.scene->setHighlighted(id == atlas && structure && layer.surfaces.count(*structure) ? structure
                                                                                             : std::nullopt);
  emit changed();
}

// --- cameras

vtkCamera* SceneController::cameraOf(int group) {
  auto& c = cameras_[group];
  if (!c) {
    c = vtkSmartPointer<vtkCamera>::New();
    if (ws_.hasCamera(group)) {
      const CameraState s = ws_.camera(group);
      c->SetPosition(s.position.data());
      c->SetFocalPoint(s.focalPoint.data());
      c->SetViewUp(s.viewUp.data());
      c->SetViewAngle(s.viewAngle);
    }
  }
  return c;
}

CameraState SceneController::stateOf(vtkCamera* c) const {
  CameraState s;
  c->GetPosition(s.position.data());
  c->GetFocalPoint(s.focalPoint.data());
  c->GetViewUp(s.viewUp.data());
  s.viewAngle = c->GetViewAngle();
  return s;
}

void SceneController::applyCamera(int group) {
  if (!ws_.hasCamera(group)) return;
  const CameraState s = ws_.camera(group);
  vtkCamera* c = cameraOf(group);
  if (stateOf(c) == s) return;
  c->SetPosition(s.position.data());
  c->SetFocalPoint(s.focalPoint.data());
  c->SetViewUp(s.viewUp.data());
  c->SetViewAngle(s.viewAngle);
  emit changed();
}

void SceneController::applyCameraPreset(int view, viewer::CameraPreset preset, const QString& text) {
  vtkRenderer* r = renderer(view);
  if (!r) return;
  atlasScene().applyCameraPreset(preset, r);
  ws_.setCamera(views_[static_cast<std::size_t>(view)].group, stateOf(r->GetActiveCamera()), text);
  emit changed();
}

void SceneController::resetCamera(int view, const QString& text) {
  vtkRenderer* r = renderer(view);
  if (!r) return;
  atlasScene().resetCamera(r);
  ws_.setCamera(views_[static_cast<std::size_t>(view)].group, stateOf(r->GetActiveCamera()), text);
  emit changed();
}

void SceneController::commitCameras(const QString& text) {
  for (const auto& [group, camera] : cameras_) {
    const CameraState now = stateOf(camera);
    if (ws_.hasCamera(group) && ws_.camera(group) != now) ws_.setCamera(group, now, text);
  }
}

void SceneController::setInteracting(bool on) {
  interacting_ = on;
  for (auto& [id, cloud] : clouds_) cloud->setInteracting(on);
}

// --- datasets

viewer::CellCloud* SceneController::cloud(DatasetId id) const {
  const auto it = clouds_.find(id);
  return it == clouds_.end() ? nullptr : it->second.get();
}

void SceneController::datasetLoaded(DatasetId id) {
  const DatasetDocument* d = ws_.dataset(id);
  if (!d || !d->cells || clouds_.count(id)) return;
  if (!tasks_) {
    const double file = fileSectionSpacing(*d->cells);
    addCloud(id, std::make_unique<viewer::CellCloud>(d->cells, spacingFor(d->display, file)), file);
    return;
  }
  // Laid out on a worker (the cloud shares the cells' CCF arrays and moves), added on the GUI
  // thread if the dataset still has these cells.
  std::shared_ptr<const CellTable> cells = d->cells;
  struct Layout {
    std::shared_ptr<viewer::CellCloud> cloud;
    double fileSpacing = 0;
  };
  const DatasetDisplay display = d->display;
  tasks_->run<Layout>(
      cloudChannel(id), tr("Laying out the cells of %1").arg(d->name),
      [cells, display](const CancellationToken&) {
        const double file = fileSectionSpacing(*cells);
        return Layout{std::make_shared<viewer::CellCloud>(cells, spacingFor(display, file)), file};
      },
      [this, id, cells](Layout layout) {
        const DatasetDocument* now = ws_.dataset(id);
        if (!now || now->cells != cells || clouds_.count(id)) return;
        addCloud(id, std::make_unique<viewer::CellCloud>(std::move(*layout.cloud)), layout.fileSpacing);
      });
}

void SceneController::addCloud(DatasetId id, std::unique_ptr<viewer::CellCloud> cloud, double fileSpacing) {
  fileSpacing_[id] = fileSpacing;
  section_->attach(cloud->actor()->GetMapper());
  cloud->setInteracting(interacting_);
  clouds_[id] = std::move(cloud);
  applied_.erase(id);
  rebuildViews();
}

void SceneController::datasetRemoved(DatasetId id) {
  if (tasks_) tasks_->invalidate(cloudChannel(id));
  for (View& v : views_) {
    v.regions.erase(id);
    if (const auto it = clouds_.find(id); it != clouds_.end()) {
      v.renderer->RemoveActor(it->second->actor());
      v.renderer->RemoveActor2D(it->second->colourBar());
    }
    v.cells.erase(std::remove(v.cells.begin(), v.cells.end(), id), v.cells.end());
  }
  clouds_.erase(id);
  fileSpacing_.erase(id);
  applied_.erase(id);
  regionSets_.erase(id);
  updateTitles();
  emit changed();
}

void SceneController::applyDataset(DatasetId id) {
  const DatasetDocument* d = ws_.dataset(id);
  viewer::CellCloud* cloud = this->cloud(id);
  if (!d || !cloud) return;
  const DatasetDisplay& x = d->display;
  cloud->actor()->SetVisibility(x.visible ? 1 : 0);
  cloud->setPointSize(x.pointSize);
  cloud->setSectionSpacing(spacingFor(x, fileSpacing_[id])); // nothing to do with CCF coordinates
  Applied& a = applied_[id];
  const CellColouring* c = data_.colouring(id);
  if (c && c->cells == d->cells.get()) {
    const auto names = displayNames(*d, *c);
    const auto colours = displayColours(*d, *c);
    const bool recolour = a.colouring != c || a.colourBy != c->colourBy || a.names != names || a.colours != colours;
    if (recolour) {
      if (c->categorical)
        cloud->colourByCategory(c->codes, names, colours);
      else
        cloud->colourByValues(c->values, c->gene.toStdString());
      cloud->colourBar()->SetVisibility(!c->categorical && x.visible ? 1 : 0);
      a.colouring = c;
      a.colourBy = c->colourBy;
      a.names = names;
      a.colours = colours;
      a.hidden.clear();
      a.highlighted = -1;
    }
    // Which cells are drawn: the legend's filter, or one highlighted region alone.
    if (recolour || a.hidden != x.hiddenCategories || a.highlighted != x.highlightedRegion) {
      cloud->setVisibleCells(shownCells(x, *c));
      a.hidden = x.hiddenCategories;
      a.highlighted = x.highlightedRegion;
    }
  }
  // Region surfaces: shown in the views that have the dataset's surfaces layer, for the regions
  // the cells are coloured by; asked for when missing.
  const bool wantSurfaces = x.visible && x.regionSurfaces && x.colourBy.startsWith("regions_k");
  const auto set = regionSets_.find(id);
  const bool haveSurfaces = set != regionSets_.end() && set->second.column == x.colourBy;
  if (wantSurfaces && !haveSurfaces) emit regionSurfacesNeeded(id, x.colourBy);
  for (std::size_t i = 0; i < views_.size(); ++i) {
    View& v = views_[i];
    const bool here = wantSurfaces && haveSurfaces && ws_.view(static_cast<int>(i)).layers.contains(surfacesLayer(id));
    auto layer = v.regions.find(id);
    if (!here) {
      if (layer != v.regions.end()) layer->second->setVisible(false);
      continue;
    }
    if (layer == v.regions.end()) {
      auto made = std::make_unique<viewer::RegionLayer>(v.renderer);
      made->setSection(section_.get());
      std::vector<std::array<std::uint8_t, 3>> colours =
          c && c->colourBy == x.colourBy ? displayColours(*d, *c) : std::vector<std::array<std::uint8_t, 3>>{};
      if (colours.size() < set->second.surfaces.size()) colours.resize(set->second.surfaces.size(), {150, 150, 150});
      made->setSurfaces(set->second.surfaces, colours);
      layer = v.regions.emplace(id, std::move(made)).first;
    }
    layer->second->setVisible(true);
    layer->second->setHighlighted(x.highlightedRegion >= 0 ? std::optional<int>(x.highlightedRegion) : std::nullopt);
  }
  updateTitles();
  emit changed();
}

void SceneController::setRegionSurfaces(DatasetId id, const QString& column,
                                        std::vector<vtkSmartPointer<vtkPolyData>> surfaces) {
  if (!ws_.dataset(id)) return;
  regionSets_[id] = RegionSet{column, std::move(surfaces)};
  for (View& v : views_) v.regions.erase(id); // made again with the new surfaces
  applyDataset(id);
}

QString SceneController::regionSurfacesColumn(DatasetId id) const {
  const auto it = regionSets_.find(id);
  return it == regionSets_.end() ? QString() : it->second.column;
}

int SceneController::regionSurfaceCount(DatasetId id) const {
  for (const View& v : views_)
    if (const auto it = v.regions.find(id); it != v.regions.end() && it->second->visible()) return it->second->count();
  return 0;
}

// --- section and picking

void SceneController::applySection() {
  const SectionState& s = ws_.section();
  section_->set(viewer::sectionAxisFromName(s.axis.toStdString()), s.position, s.thickness);
  for (const auto& [id, layer] : atlases_)
    if (layer.templateSlice) applyTemplate(id);
  emit changed();
}

SceneController::Hit SceneController::pick(int x, int y) const {
  Hit hit;
  hit.view = viewAt(x, y);
  if (hit.view < 0) return hit;
  const View& v = views_[static_cast<std::size_t>(hit.view)];
  for (auto it = v.cells.rbegin(); it != v.cells.rend(); ++it) { // the one drawn last is on top
    const viewer::CellCloud* cloud = clouds_.at(*it).get();
    if (!cloud->actor()->GetVisibility()) continue;
    if (const auto cell = cloud->pick(v.renderer, x, y)) {
      hit.dataset = *it;
      hit.cell = *cell;
      return hit;
    }
  }
  for (const auto& [id, layer] : v.regions)
    if (const auto region = layer->pick(x, y)) {
      hit.dataset = id;
      hit.region = *region;
      return hit;
    }
  // Overlaid atlases: the structure nearest the camera among them all; a whole-brain shell only
  // when no atlas has another structure under the pixel (it would hide every structure inside).
  for (const bool shells : {false, true}) {
    double nearest = std::numeric_limits<double>::infinity();
    for (AtlasId id : v.atlases) {
      double d = 0;
      const auto s = atlases_.at(id).scene->pick(x, y, v.renderer, shells, &d);
      if (s && d < nearest) {
        nearest = d;
        hit.structure = *s;
        hit.atlas = id;
      }
    }
    if (hit.structure >= 0) return hit;
  }
  return hit;
}

} // namespace atlascope::app
