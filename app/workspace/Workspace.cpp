#include "app/workspace/Workspace.h"

#include <QFileInfo>
#include <QUndoCommand>
#include <QUndoStack>

#include <algorithm>

namespace atlascope::app {

QString atlasLayer(AtlasId id) {
  return id == kMainAtlas ? QStringLiteral("atlas") : QStringLiteral("atlas:%1").arg(id);
}
QString cellsLayer(DatasetId id) { return QStringLiteral("cells:%1").arg(id); }
QString surfacesLayer(DatasetId id) { return QStringLiteral("surfaces:%1").arg(id); }
namespace {
std::optional<int> layerNumber(const QString& layer) {
  const int colon = layer.indexOf(':');
  if (colon < 0) return std::nullopt;
  bool ok = false;
  const int id = layer.mid(colon + 1).toInt(&ok);
  return ok ? std::optional<int>(id) : std::nullopt;
}
} // namespace
std::optional<DatasetId> layerDataset(const QString& layer) {
  if (!layer.startsWith(QLatin1String("cells:")) && !layer.startsWith(QLatin1String("surfaces:"))) return std::nullopt;
  return layerNumber(layer);
}
std::optional<AtlasId> layerAtlas(const QString& layer) {
  if (layer == QLatin1String("atlas")) return kMainAtlas;
  if (!layer.startsWith(QLatin1String("atlas:"))) return std::nullopt;
  const auto id = layerNumber(layer);
  return id && *id > kMainAtlas ? id : std::nullopt;
}

namespace {

// One undoable step: two closures that set the state after and before. Steps of one kind and key
// (a dragged slider) merge into one, keeping the state from before the first.
class Step : public QUndoCommand {
public:
  Step(const QString& text, std::function<void()> undo, std::function<void()> redo, int kind = -1, qint64 key = -1,
       bool alreadyDone = false)
      : undo_(std::move(undo)), redo_(std::move(redo)), kind_(kind), key_(key), skip_(alreadyDone) {
    setText(text);
  }
  void undo() override { undo_(); }
  void redo() override {
    if (skip_) { // the change was made before it was recorded (a dataset read, a camera dragged)
      skip_ = false;
      return;
    }
    redo_();
  }
  int id() const override { return kind_; }
  bool mergeWith(const QUndoCommand* other) override {
    const auto* o = static_cast<const Step*>(other);
    if (key_ < 0 || o->key_ != key_) return false;
    redo_ = o->redo_;
    return true;
  }

private:
  std::function<void()> undo_, redo_;
  int kind_;
  qint64 key_;
  bool skip_;
};

struct ViewEdit {
  int rows, cols;
  std::vector<ViewState> views;
  std::map<int, CameraState> cameras;
};

// Kinds of steps that merge when repeated on one object.
enum MergeKind { PointSize = 1, Opacity, SectionMove };

} // namespace

Workspace::Workspace(QObject* parent) : QObject(parent), undo_(new QUndoStack(this)) { clear(); }

Workspace::~Workspace() {
  // Commands hold closures over this object: drop them first.
  undo_->clear();
}

void Workspace::push(QUndoCommand* command) { undo_->push(command); }

void Workspace::clear() {
  undo_->clear();
  const auto ids = datasetIds();
  datasets_.clear();
  restoredDatasets_.clear();
  for (DatasetId id : ids) emit datasetRemoved(id);
  current_ = -1;
  // The window's atlas stays (it is the window's, read once); the others close.
  // The new list is in place before anything is told (an observer asks for the window's atlas).
  std::shared_ptr<AtlasDocument> main = atlases_.empty() ? nullptr : atlases_.front();
  const auto atlasIdsBefore = atlasIds();
  auto fresh = std::make_shared<AtlasDocument>();
  if (main) {
    fresh->name = main->name;
    fresh->source = main->source;
    fresh->loaded = main->loaded;
  }
  atlases_ = {fresh};
  restoredAtlases_.clear();
  for (AtlasId id : atlasIdsBefore)
    if (id != kMainAtlas) emit atlasRemoved(id);
  if (main && (!main->structures.empty() || main->templateShown || !main->boundariesShown)) {
    emit structuresChanged(kMainAtlas, {});
    emit atlasChanged(kMainAtlas);
  }
  rows_ = cols_ = 1;
  views_ = {ViewState{{atlasLayer()}, 0, true}};
  cameras_.clear();
  bookmarks_.clear();
  section_ = {};
  extras_ = {};
}

// --- datasets

DatasetDocument* Workspace::find(DatasetId id) {
  for (auto& d : datasets_)
    if (d->id == id) return d.get();
  return nullptr;
}

const DatasetDocument* Workspace::dataset(DatasetId id) const {
  for (const auto& d : datasets_)
    if (d->id == id) return d.get();
  return nullptr;
}

std::vector<DatasetId> Workspace::datasetIds() const {
  std::vector<DatasetId> ids;
  for (const auto& d : datasets_) ids.push_back(d->id);
  return ids;
}

std::vector<DatasetId> Workspace::loadedDatasetIds() const {
  std::vector<DatasetId> ids;
  for (const auto& d : datasets_)
    if (d->cells) ids.push_back(d->id);
  return ids;
}

DatasetId Workspace::addDataset(const QString& path, const ColumnOptions& columns, const QString& name,
                                const QString& colourBy) {
  auto doc = std::make_shared<DatasetDocument>();
  doc->display.colourBy = colourBy;
  doc->id = nextId_++;
  doc->path = path;
  doc->columns = columns;
  doc->name = name.isEmpty() ? QFileInfo(path).fileName() : name;
  insertDataset(doc, static_cast<int>(datasets_.size()));
  return doc->id;
}

void Workspace::insertDataset(std::shared_ptr<DatasetDocument> doc, int position) {
  const DatasetId id = doc->id;
  datasets_.insert(datasets_.begin() + std::clamp(position, 0, static_cast<int>(datasets_.size())), std::move(doc));
  nextId_ = std::max(nextId_, id + 1);
  emit datasetAdded(id);
  if (dataset(id)->cells) emit datasetLoaded(id);
  if (current_ < 0) setCurrentDataset(id);
}

std::shared_ptr<DatasetDocument> Workspace::takeDataset(DatasetId id, int* position) {
  const auto it = std::find_if(datasets_.begin(), datasets_.end(), [id](const auto& d) { return d->id == id; });
  if (it == datasets_.end()) return nullptr;
  auto doc = *it;
  if (position) *position = static_cast<int>(it - datasets_.begin());
  datasets_.erase(it);
  emit datasetRemoved(id);
  if (current_ == id) setCurrentDataset(datasets_.empty() ? -1 : datasets_.back()->id);
  return doc;
}

void Workspace::setDatasetCells(DatasetId id, std::shared_ptr<const CellTable> cells,
                                std::vector<std::string> obsColumns) {
  DatasetDocument* d = find(id);
  if (!d || !cells) return;
  d->cells = std::move(cells);
  d->obsColumns = std::move(obsColumns);
  if (d->display.colourBy.isEmpty()) d->display.colourBy = d->cells->types.names.empty() ? "section" : "type";
  // A session's datasets are where the workspace starts, not an edit: the session's views say
  // where they are drawn.
  if (restoredDatasets_.erase(id)) {
    emit datasetLoaded(id);
    return;
  }
  // Views that follow datasets show the new one (cells, and its region surfaces when turned on).
  std::vector<ViewState> views = views_;
  bool changed = false;
  for (ViewState& v : views) {
    if (!v.followsDatasets || v.layers.contains(cellsLayer(id))) continue;
    v.layers << cellsLayer(id) << surfacesLayer(id);
    changed = true;
  }
  if (changed) applyViews(rows_, cols_, std::move(views), cameras_);
  emit datasetLoaded(id);
  // Undo closes it; redo opens it again from the cells kept here.
  std::shared_ptr<DatasetDocument> doc;
  for (auto& p : datasets_)
    if (p->id == id) doc = p;
  auto position = std::make_shared<int>(0);
  push(new Step(
      tr("Open %1").arg(d->name), [this, id, position] { takeDataset(id, position.get()); },
      [this, doc, position] { insertDataset(doc, *position); }, -1, -1, true));
}

void Workspace::discardDataset(DatasetId id) { takeDataset(id, nullptr); }

void Workspace::closeDataset(DatasetId id) {
  const DatasetDocument* d = dataset(id);
  if (!d) return;
  const QString text = tr("Close %1").arg(d->name);
  auto where = std::make_shared<int>(0);
  auto kept = std::make_shared<std::shared_ptr<DatasetDocument>>();
  const DatasetId wasCurrent = current_;
  push(new Step(
      text,
      [this, kept, where, wasCurrent] {
        insertDataset(*kept, *where);
        setCurrentDataset(wasCurrent);
      },
      [this, id, kept, where] { *kept = takeDataset(id, where.get()); }));
}

void Workspace::setCurrentDataset(DatasetId id) {
  if (id == current_ || (id >= 0 && !dataset(id))) return;
  current_ = id;
  emit currentDatasetChanged(id);
}

void Workspace::applyDisplay(DatasetId id, const DatasetDisplay& display) {
  DatasetDocument* d = find(id);
  if (!d) return;
  d->display = display;
  emit datasetChanged(id);
}

namespace {
template <class Edit> bool editDisplay(const DatasetDocument* d, DatasetDisplay& after, Edit edit) {
  if (!d) return false;
  after = d->display;
  edit(after);
  return after != d->display;
}
} // namespace

#define ATLASCOPE_DISPLAY_STEP(TEXT, KIND, EDIT)                                                                       \
  DatasetDisplay after;                                                                                                \
  const DatasetDocument* d = dataset(id);                                                                              \
  if (!editDisplay(d, after, EDIT)) return;                                                                            \
  const DatasetDisplay before = d->display;                                                                            \
  push(new Step(                                                                                                       \
      TEXT, [this, id, before] { applyDisplay(id, before); }, [this, id, after] { applyDisplay(id, after); }, KIND,    \
      KIND < 0 ? -1 : id))

void Workspace::setDatasetVisible(DatasetId id, bool visible) {
  ATLASCOPE_DISPLAY_STEP(tr("%1 %2").arg(visible ? tr("Show") : tr("Hide"), d ? d->name : QString()), -1,
                         [visible](DatasetDisplay& x) { x.visible = visible; });
}

void Workspace::setColourBy(DatasetId id, const QString& colourBy) {
  ATLASCOPE_DISPLAY_STEP(tr("Colour %1 by %2").arg(d ? d->name : QString(), colourBy), -1,
                         [colourBy](DatasetDisplay& x) {
                           if (x.colourBy == colourBy) return;
                           x.colourBy = colourBy;
                           x.hiddenCategories.clear();
                           x.highlightedRegion = -1;
                         });
}

void Workspace::setPointSize(DatasetId id, double pixels) {
  ATLASCOPE_DISPLAY_STEP(tr("Point size of %1").arg(d ? d->name : QString()), PointSize,
                         [pixels](DatasetDisplay& x) { x.pointSize = pixels; });
}

void Workspace::setHiddenCategories(DatasetId id, std::vector<int> hidden) {
  std::sort(hidden.begin(), hidden.end());
  hidden.erase(std::unique(hidden.begin(), hidden.end()), hidden.end());
  ATLASCOPE_DISPLAY_STEP(tr("Filter %1").arg(d ? d->name : QString()), -1,
                         [hidden](DatasetDisplay& x) { x.hiddenCategories = hidden; });
}

void Workspace::setHighlightedRegion(DatasetId id, int code) {
  ATLASCOPE_DISPLAY_STEP(code >= 0 ? tr("Highlight region %1").arg(code) : tr("Show every region"), -1,
                         [code](DatasetDisplay& x) { x.highlightedRegion = code; });
}

void Workspace::setRegionSurfaces(DatasetId id, bool on) {
  ATLASCOPE_DISPLAY_STEP(on ? tr("Show region surfaces") : tr("Hide region surfaces"), -1,
                         [on](DatasetDisplay& x) { x.regionSurfaces = on; });
}

void Workspace::setSectionSpacing(DatasetId id, double um) {
  ATLASCOPE_DISPLAY_STEP(tr("Section spacing of %1").arg(d ? d->name : QString()), -1,
                         [um](DatasetDisplay& x) { x.sectionSpacing = um > 0 ? um : 0; });
}

#undef ATLASCOPE_DISPLAY_STEP

void Workspace::setDatasetName(DatasetId id, const QString& name) {
  const DatasetDocument* d = dataset(id);
  if (!d || name.isEmpty() || d->name == name) return;
  auto apply = [this, id](const QString& n) {
    if (DatasetDocument* x = find(id)) {
      x->name = n;
      emit datasetChanged(id);
    }
  };
  const QString before = d->name;
  push(new Step(
      tr("Rename %1 to %2").arg(before, name), [apply, before] { apply(before); }, [apply, name] { apply(name); }));
}

void Workspace::setRegionName(DatasetId id, const QString& column, int code, const QString& name) {
  const DatasetDocument* d = dataset(id);
  if (!d) return;
  const auto col = d->regionNames.find(column);
  const QString before = col == d->regionNames.end() || !col->second.count(code) ? QString() : col->second.at(code);
  if (before == name) return;
  auto apply = [this, id, column, code](const QString& n) {
    DatasetDocument* x = find(id);
    if (!x) return;
    if (n.isEmpty())
      x->regionNames[column].erase(code);
    else
      x->regionNames[column][code] = n;
    emit datasetChanged(id);
  };
  push(new Step(
      name.isEmpty() ? tr("Default name for region %1").arg(code) : tr("Name region %1 \"%2\"").arg(code).arg(name),
      [apply, before] { apply(before); }, [apply, name] { apply(name); }));
}

void Workspace::setRegionColours(DatasetId id, const QString& column,
                                 std::map<int, std::array<std::uint8_t, 3>> colours) {
  const DatasetDocument* d = dataset(id);
  if (!d) return;
  const auto col = d->regionColours.find(column);
  const auto before = col == d->regionColours.end() ? std::map<int, std::array<std::uint8_t, 3>>{} : col->second;
  if (before == colours) return;
  auto apply = [this, id, column](const std::map<int, std::array<std::uint8_t, 3>>& c) {
    DatasetDocument* x = find(id);
    if (!x) return;
    if (c.empty())
      x->regionColours.erase(column);
    else
      x->regionColours[column] = c;
    emit datasetChanged(id);
  };
  push(new Step(
      colours.empty() ? tr("Own region colours of %1").arg(d->name) : tr("Matched region colours for %1").arg(d->name),
      [apply, before] { apply(before); }, [apply, colours] { apply(colours); }));
}

// --- atlases

AtlasDocument* Workspace::findAtlas(AtlasId id) {
  for (auto& a : atlases_)
    if (a->id == id) return a.get();
  return nullptr;
}

const AtlasDocument* Workspace::atlas(AtlasId id) const {
  for (const auto& a : atlases_)
    if (a->id == id) return a.get();
  return nullptr;
}

std::vector<AtlasId> Workspace::atlasIds() const {
  std::vector<AtlasId> ids;
  for (const auto& a : atlases_) ids.push_back(a->id);
  return ids;
}

AtlasId Workspace::addAtlas(const QString& source, const QString& name) {
  auto doc = std::make_shared<AtlasDocument>();
  doc->id = nextAtlas_++;
  doc->source = source;
  doc->name = name.isEmpty() ? QFileInfo(source).fileName() : name;
  if (doc->name == QLatin1String("manifest.json")) doc->name = source; // named once read
  insertAtlas(doc);
  return doc->id;
}

void Workspace::insertAtlas(std::shared_ptr<AtlasDocument> doc) {
  const AtlasId id = doc->id;
  // In id order, the window's first: tabs and titles keep their places through undo and redo.
  const auto at = std::find_if(atlases_.begin(), atlases_.end(), [id](const auto& a) { return a->id > id; });
  atlases_.insert(at, std::move(doc));
  nextAtlas_ = std::max(nextAtlas_, id + 1);
  emit atlasAdded(id);
  if (atlas(id)->loaded) emit atlasLoaded(id);
}

std::shared_ptr<AtlasDocument> Workspace::takeAtlas(AtlasId id) {
  const auto it = std::find_if(atlases_.begin(), atlases_.end(), [id](const auto& a) { return a->id == id; });
  if (it == atlases_.end() || id == kMainAtlas) return nullptr;
  auto doc = *it;
  atlases_.erase(it);
  emit atlasRemoved(id);
  return doc;
}

QString Workspace::uniqueAtlasName(const QString& name, AtlasId id) const {
  // Taken: by an atlas read, or the window's (named when read); not by one named after its source.
  auto taken = [this, id](const QString& n) {
    for (const auto& other : atlases_)
      if (other->id != id && (other->loaded || other->id == kMainAtlas) && other->name == n) return true;
    return false;
  };
  QString unique = name;
  for (int k = 2; taken(unique); ++k) unique = QStringLiteral("%1 (%2)").arg(name).arg(k);
  return unique;
}

void Workspace::setAtlasLoaded(AtlasId id, const QString& name, const QString& source, bool sameSpace) {
  AtlasDocument* a = findAtlas(id);
  if (!a) return;
  a->loaded = true;
  // Names tell atlases apart in tabs, view titles, figures and the comparison dock: the same atlas
  // opened twice (two folders of one name) is "name (2)". The window's atlas keeps its own name
  // whenever it is read: an atlas read before it under that name is renamed then.
  std::vector<AtlasId> renamed;
  if (!name.isEmpty()) {
    a->name = id == kMainAtlas ? name : uniqueAtlasName(name, id);
    if (id == kMainAtlas)
      for (auto& other : atlases_)
        if (other->id != kMainAtlas && other->loaded && other->name == name) {
          other->name = uniqueAtlasName(name, other->id);
          renamed.push_back(other->id);
        }
  }
  if (!source.isEmpty()) a->source = source;
  if (!sameSpace && id != kMainAtlas && !restoredAtlases_.count(id)) a->boundariesShown = false;
  if (id == kMainAtlas || restoredAtlases_.erase(id)) { // where the workspace starts, not an edit
    emit atlasLoaded(id);
    for (AtlasId r : renamed) emit atlasChanged(r);
    return;
  }
  // A view of its own beside the others, same camera.
  std::vector<ViewState> views = views_;
  int rows = rows_, cols = cols_;
  const int group = views.front().cameraGroup;
  if (rows == 1 && cols < 3) {
    cols += 1;
    views.push_back(ViewState{{atlasLayer(id)}, group, false});
  } else {
    views.back().layers << atlasLayer(id);
  }
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{rows, cols, views, cameras_};
  applyViews(after.rows, after.cols, after.views, after.cameras);
  emit atlasLoaded(id);
  std::shared_ptr<AtlasDocument> doc;
  for (auto& p : atlases_)
    if (p->id == id) doc = p;
  push(new Step(
      tr("Open atlas %1").arg(a->name),
      [this, id, before] {
        takeAtlas(id);
        applyViews(before.rows, before.cols, before.views, before.cameras);
      },
      [this, doc, after] {
        insertAtlas(doc);
        applyViews(after.rows, after.cols, after.views, after.cameras);
      },
      -1, -1, true));
}

void Workspace::discardAtlas(AtlasId id) {
  // A session's atlas that could not be read leaves no layer behind in the session's views.
  const bool restored = restoredAtlases_.erase(id) > 0;
  if (!takeAtlas(id) || !restored) return;
  for (ViewState& v : views_) v.layers.removeAll(atlasLayer(id));
  emit layoutChanged();
}

void Workspace::closeAtlas(AtlasId id) {
  const AtlasDocument* a = atlas(id);
  if (!a || id == kMainAtlas) return;
  // Views lose its layer; a view that showed only it goes with it when the grid is one row.
  std::vector<ViewState> views = views_;
  int rows = rows_, cols = cols_;
  for (ViewState& v : views) v.layers.removeAll(atlasLayer(id));
  for (std::size_t i = views.size(); i-- > 1;)
    if (rows == 1 && views[i].layers.isEmpty()) {
      views.erase(views.begin() + static_cast<std::ptrdiff_t>(i));
      --cols;
    }
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{rows, cols, views, cameras_};
  auto kept = std::make_shared<std::shared_ptr<AtlasDocument>>();
  push(new Step(
      tr("Close atlas %1").arg(a->name),
      [this, kept, before] {
        insertAtlas(*kept);
        applyViews(before.rows, before.cols, before.views, before.cameras);
      },
      [this, id, kept, after] {
        *kept = takeAtlas(id);
        applyViews(after.rows, after.cols, after.views, after.cameras);
      }));
}

void Workspace::setAtlasFlag(AtlasId id, bool AtlasDocument::*flag, bool on, const QString& text) {
  const AtlasDocument* a = atlas(id);
  if (!a || a->*flag == on) return;
  auto apply = [this, id, flag](bool value) {
    if (AtlasDocument* x = findAtlas(id)) {
      x->*flag = value;
      emit atlasChanged(id);
    }
  };
  push(new Step(
      text, [apply, on] { apply(!on); }, [apply, on] { apply(on); }));
}

void Workspace::setTemplateShown(AtlasId id, bool shown) {
  const AtlasDocument* a = atlas(id);
  if (!a) return;
  setAtlasFlag(id, &AtlasDocument::templateShown, shown,
               shown ? tr("Show the template of %1").arg(a->name) : tr("Hide the template of %1").arg(a->name));
}

void Workspace::setBoundariesShown(AtlasId id, bool shown) {
  const AtlasDocument* a = atlas(id);
  if (!a) return;
  setAtlasFlag(id, &AtlasDocument::boundariesShown, shown,
               shown ? tr("Show the 2D boundaries of %1").arg(a->name)
                     : tr("Hide the 2D boundaries of %1").arg(a->name));
}

// --- structures

StructureDisplay Workspace::structureDisplay(AtlasId atlas, int structure) const {
  const AtlasDocument* a = this->atlas(atlas);
  if (!a) return {};
  const auto it = a->structures.find(structure);
  return it == a->structures.end() ? StructureDisplay{} : it->second;
}

const std::map<int, StructureDisplay>& Workspace::structureDisplays(AtlasId atlas) const {
  static const std::map<int, StructureDisplay> none;
  const AtlasDocument* a = this->atlas(atlas);
  return a ? a->structures : none;
}

void Workspace::applyStructures(AtlasId atlas, const std::map<int, StructureDisplay>& changes) {
  AtlasDocument* a = findAtlas(atlas);
  if (!a) return;
  QList<int> changed;
  for (const auto& [i, d] : changes) {
    if (d == StructureDisplay{})
      a->structures.erase(i);
    else
      a->structures[i] = d;
    changed << i;
  }
  emit structuresChanged(atlas, changed);
}

void Workspace::resolvePendingStructures(AtlasId id, const std::function<std::optional<int>(const QString&)>& find,
                                         const QJsonArray& otherwise) {
  AtlasDocument* a = findAtlas(id);
  if (!a) return;
  if (!a->structuresFromSession) a->pendingStructures = otherwise; // a session's list, even empty, stands
  a->structuresFromSession = false;
  if (a->pendingStructures.isEmpty()) return;
  for (const QJsonValue& v : a->pendingStructures) {
    const QJsonObject e = v.toObject();
    if (const auto i = find(e.value("acronym").toString())) a->structures[*i] = structureDisplayFromJson(e);
  }
  a->pendingStructures = {};
  emit structuresChanged(id, {});
}

void Workspace::setStructureDisplays(AtlasId atlas, std::map<int, StructureDisplay> displays, const QString& text) {
  std::map<int, StructureDisplay> before, after;
  for (const auto& [i, d] : displays) {
    if (structureDisplay(atlas, i) == d) continue;
    before[i] = structureDisplay(atlas, i);
    after[i] = d;
  }
  if (after.empty() || !this->atlas(atlas)) return;
  push(new Step(
      text, [this, atlas, before] { applyStructures(atlas, before); },
      [this, atlas, after] { applyStructures(atlas, after); }));
}

void Workspace::setStructureVisible(AtlasId atlas, int structure, bool visible) {
  StructureDisplay d = structureDisplay(atlas, structure);
  d.visible = visible;
  setStructureDisplays(atlas, {{structure, d}}, visible ? tr("Show structure") : tr("Hide structure"));
}

void Workspace::setStructureOpacity(AtlasId atlas, int structure, double opacity) {
  StructureDisplay before = structureDisplay(atlas, structure), after = before;
  after.opacity = opacity;
  if (after == before || !this->atlas(atlas)) return;
  push(new Step(
      tr("Opacity"),
      [this, atlas, structure, before] {
        applyStructures(atlas, {{structure, before}});
      },
      [this, atlas, structure, after] {
        applyStructures(atlas, {{structure, after}});
      },
      Opacity, (static_cast<qint64>(atlas) << 32) | static_cast<quint32>(structure)));
}

void Workspace::setStructureColour(AtlasId atlas, int structure, std::optional<std::array<double, 3>> colour) {
  StructureDisplay d = structureDisplay(atlas, structure);
  d.colour = colour;
  setStructureDisplays(atlas, {{structure, d}}, colour ? tr("Colour") : tr("Atlas colour"));
}

// --- views

void Workspace::applyViews(int rows, int cols, std::vector<ViewState> views, std::map<int, CameraState> cameras) {
  rows_ = rows;
  cols_ = cols;
  views_ = std::move(views);
  const bool camerasChanged = cameras != cameras_;
  cameras_ = std::move(cameras);
  emit layoutChanged();
  if (camerasChanged)
    for (const auto& [g, c] : cameras_) emit cameraChanged(g);
}

int Workspace::newCameraGroup() const {
  int g = 0;
  for (const ViewState& v : views_) g = std::max(g, v.cameraGroup + 1);
  for (const auto& [k, c] : cameras_) g = std::max(g, k + 1);
  return g;
}

void Workspace::setLayout(int rows, int columns) {
  rows = std::clamp(rows, 1, 3);
  columns = std::clamp(columns, 1, 3);
  if (rows == rows_ && columns == cols_) return;
  std::vector<ViewState> views = views_;
  const std::size_t n = static_cast<std::size_t>(rows * columns);
  // New views: the next dataset not yet shown alone in a view, else the atlas and every dataset.
  std::vector<DatasetId> alone;
  for (const ViewState& v : views)
    if (v.layers.size() <= 2 && !v.layers.contains(atlasLayer()) && !v.layers.isEmpty())
      if (const auto id = layerDataset(v.layers.first())) alone.push_back(*id);
  while (views.size() < n) {
    ViewState v;
    v.cameraGroup = views_.empty() ? 0 : views_.front().cameraGroup;
    for (DatasetId id : loadedDatasetIds()) {
      if (std::find(alone.begin(), alone.end(), id) != alone.end()) continue;
      v.layers = {cellsLayer(id), surfacesLayer(id)};
      v.followsDatasets = false;
      alone.push_back(id);
      break;
    }
    if (v.layers.isEmpty()) {
      v.layers << atlasLayer();
      for (DatasetId id : loadedDatasetIds()) v.layers << cellsLayer(id) << surfacesLayer(id);
    }
    views.push_back(v);
  }
  views.resize(n);
  // Every dataset now in a view of its own: the first view, if it showed everything, keeps the
  // atlas alone (the CCF | animal 1 | animal 2 comparison).
  const auto loaded = loadedDatasetIds();
  if (views.size() > loaded.size() && !loaded.empty() && views.front().followsDatasets &&
      views.front().layers.contains(atlasLayer()) && std::all_of(loaded.begin(), loaded.end(), [&alone](DatasetId id) {
        return std::find(alone.begin(), alone.end(), id) != alone.end();
      }))
    views.front() = ViewState{{atlasLayer()}, views.front().cameraGroup, false};
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{rows, columns, views, cameras_};
  push(new Step(
      tr("Layout %1x%2").arg(rows).arg(columns),
      [this, before] { applyViews(before.rows, before.cols, before.views, before.cameras); },
      [this, after] { applyViews(after.rows, after.cols, after.views, after.cameras); }));
}

void Workspace::setViewLayers(int view, const QStringList& layers) {
  if (view < 0 || view >= viewCount() || views_[static_cast<std::size_t>(view)].layers == layers) return;
  std::vector<ViewState> views = views_;
  views[static_cast<std::size_t>(view)].layers = layers;
  views[static_cast<std::size_t>(view)].followsDatasets = false; // the user chose what it shows
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{rows_, cols_, views, cameras_};
  push(new Step(
      tr("Layers of view %1").arg(view + 1),
      [this, before] { applyViews(before.rows, before.cols, before.views, before.cameras); },
      [this, after] { applyViews(after.rows, after.cols, after.views, after.cameras); }));
}

void Workspace::setLayerShown(int view, const QString& layer, bool shown) {
  if (view < 0 || view >= viewCount()) return;
  QStringList layers = views_[static_cast<std::size_t>(view)].layers;
  if (shown == layers.contains(layer)) return;
  if (shown)
    layers << layer;
  else
    layers.removeAll(layer);
  setViewLayers(view, layers);
}

bool Workspace::viewLinked(int view) const {
  return view >= 0 && view < viewCount() &&
         views_[static_cast<std::size_t>(view)].cameraGroup == views_.front().cameraGroup;
}

void Workspace::setViewLinked(int view, bool linked) {
  if (view <= 0 || view >= viewCount() || viewLinked(view) == linked) return;
  std::vector<ViewState> views = views_;
  std::map<int, CameraState> cameras = cameras_;
  const int own = views[static_cast<std::size_t>(view)].cameraGroup;
  if (linked) {
    views[static_cast<std::size_t>(view)].cameraGroup = views.front().cameraGroup;
  } else {
    const int g = newCameraGroup();
    views[static_cast<std::size_t>(view)].cameraGroup = g;
    if (cameras.count(own)) cameras[g] = cameras.at(own);
  }
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{rows_, cols_, views, cameras};
  push(new Step(
      linked ? tr("Link view %1").arg(view + 1) : tr("Unlink view %1").arg(view + 1),
      [this, before] { applyViews(before.rows, before.cols, before.views, before.cameras); },
      [this, after] { applyViews(after.rows, after.cols, after.views, after.cameras); }));
}

bool Workspace::sideBySide() const {
  const QStringList& first = views_.front().layers;
  return rows_ == 1 && cols_ == 2 && !first.isEmpty() &&
         std::all_of(first.begin(), first.end(), [](const QString& l) { return layerAtlas(l).has_value(); });
}

void Workspace::setSideBySide(bool on) {
  if (on == sideBySide()) return;
  const int group = views_.front().cameraGroup;
  // Every atlas read goes with the atlas side (overlaid with each other when there are several).
  QStringList atlases, data;
  for (const auto& a : atlases_)
    if (a->loaded || a->id == kMainAtlas) atlases << atlasLayer(a->id);
  for (DatasetId id : loadedDatasetIds()) data << cellsLayer(id) << surfacesLayer(id);
  std::vector<ViewState> views;
  if (on)
    views = {ViewState{atlases, group, false}, ViewState{data, group, true}};
  else
    views = {ViewState{atlases + data, group, true}};
  const ViewEdit before{rows_, cols_, views_, cameras_}, after{1, on ? 2 : 1, views, cameras_};
  push(new Step(
      on ? tr("Side by side") : tr("Overlaid"),
      [this, before] { applyViews(before.rows, before.cols, before.views, before.cameras); },
      [this, after] { applyViews(after.rows, after.cols, after.views, after.cameras); }));
}

// --- cameras

CameraState Workspace::camera(int group) const {
  const auto it = cameras_.find(group);
  return it == cameras_.end() ? CameraState{} : it->second;
}

void Workspace::setCamera(int group, const CameraState& camera, const QString& text) {
  const bool had = hasCamera(group);
  const CameraState before = this->camera(group);
  if (had && before == camera) return;
  auto apply = [this, group](std::optional<CameraState> c) {
    if (c)
      cameras_[group] = *c;
    else
      cameras_.erase(group);
    emit cameraChanged(group);
  };
  const std::optional<CameraState> was = had ? std::optional<CameraState>(before) : std::nullopt;
  if (!had) { // the first camera (the initial preset) is where a workspace starts, not an edit
    apply(camera);
    return;
  }
  push(new Step(
      text, [apply, was] { apply(was); }, [apply, camera] { apply(camera); }));
}

void Workspace::addBookmark(const CameraState& camera) {
  auto apply = [this](std::vector<CameraState> b) {
    bookmarks_ = std::move(b);
    emit bookmarksChanged();
  };
  std::vector<CameraState> after = bookmarks_;
  after.push_back(camera);
  const std::vector<CameraState> before = bookmarks_;
  push(new Step(
      tr("Bookmark camera"), [apply, before] { apply(before); }, [apply, after] { apply(after); }));
}

// --- section

void Workspace::setSection(const SectionState& section) {
  if (section == section_) return;
  const SectionState before = section_;
  auto apply = [this](const SectionState& s) {
    section_ = s;
    emit sectionChanged();
  };
  // Moves along one axis (a dragged slider) merge; a change of axis is a step of its own.
  const bool move = before.axis == section.axis && section.axis != "none";
  push(new Step(
      section.axis == "none" ? tr("No section")
                             : tr("Section %1 %2 um").arg(section.axis).arg(section.position, 0, 'f', 0),
      [apply, before] { apply(before); }, [apply, section] { apply(section); }, move ? SectionMove : -1,
      move ? 1 : -1));
}

} // namespace atlascope::app
