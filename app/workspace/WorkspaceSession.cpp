// Sessions: the workspace serialised as JSON ("format": "atlascope-session").
//
// Version 2 (this one): every open dataset with its display (section_spacing_um only when set),
// region names and matched colours; the views (grid, each view's layers, camera groups) and one
// camera per group; the window's atlas's structures by acronym ("structures", its template as
// "template" when shown); the atlases opened beside it ("atlases": source, name, template, their
// structures by acronym; read again when the session opens; written when present, so older
// readers ignore them); the section; camera bookmarks; the window's extras (the region panel's
// fields, the window size, the 2D view) as given. The window's atlas itself is the window's
// (`--atlas`), not the session's.
// Version 1 (earlier releases): one dataset and its colouring, side by side or not, one camera.
// It is read into the same model (side by side becomes a 1x2 layout), so old files keep opening.
// Files of a newer version are refused with a message saying so; fields a file lacks take their
// defaults.
#include "app/workspace/Workspace.h"
#include "core/Error.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>
#include <QUndoStack>

#include <algorithm>
#include <map>

namespace atlascope::app {

namespace {

QJsonArray vec(const std::array<double, 3>& v) { return {v[0], v[1], v[2]}; }
std::array<double, 3> vec(const QJsonValue& v, std::array<double, 3> fallback) {
  const QJsonArray a = v.toArray();
  if (a.size() != 3) return fallback;
  return {a[0].toDouble(), a[1].toDouble(), a[2].toDouble()};
}

QJsonObject cameraJson(const CameraState& c) {
  return QJsonObject{{"position", vec(c.position)},
                     {"focal_point", vec(c.focalPoint)},
                     {"view_up", vec(c.viewUp)},
                     {"view_angle", c.viewAngle}};
}
CameraState cameraFrom(const QJsonObject& o) {
  CameraState c;
  c.position = vec(o.value("position"), c.position);
  c.focalPoint = vec(o.value("focal_point"), c.focalPoint);
  c.viewUp = vec(o.value("view_up"), c.viewUp);
  c.viewAngle = o.value("view_angle").toDouble(30);
  return c;
}

QJsonObject columnsJson(const ColumnOptions& c) {
  QJsonObject o;
  forEachColumnOption(c, [&o](const char* key, const std::string& v) {
    if (columnOptionSet(key, v)) o[key] = QString::fromStdString(v);
  });
  return o;
}
ColumnOptions columnsFrom(const QJsonObject& o) {
  ColumnOptions c;
  forEachColumnOption(c, [&o](const char* key, std::string& v) {
    if (o.contains(key)) v = o.value(key).toString().toStdString();
  });
  return c;
}

QString hexColour(const std::array<std::uint8_t, 3>& c) {
  return QStringLiteral("#%1%2%3")
      .arg(c[0], 2, 16, QChar('0'))
      .arg(c[1], 2, 16, QChar('0'))
      .arg(c[2], 2, 16, QChar('0'));
}
std::optional<std::array<std::uint8_t, 3>> colourFrom(const QString& hex) {
  if (hex.size() != 7 || !hex.startsWith('#')) return std::nullopt;
  bool ok = false;
  const uint v = hex.mid(1).toUInt(&ok, 16);
  if (!ok) return std::nullopt;
  return std::array<std::uint8_t, 3>{static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
                                     static_cast<std::uint8_t>(v)};
}

SectionState sectionFrom(const QJsonObject& o) {
  SectionState s;
  s.axis = o.value("axis").toString("none");
  if (s.axis != "none" && s.axis != "coronal" && s.axis != "sagittal" && s.axis != "horizontal") s.axis = "none";
  s.position = o.value("position").toDouble(0);
  s.thickness = o.value("thickness").toDouble(200);
  return s;
}

} // namespace

QJsonObject structureDisplayJson(const QString& acronym, const StructureDisplay& d) {
  QJsonObject e{{"acronym", acronym}, {"visible", d.visible}};
  if (d.opacity) e["opacity"] = *d.opacity;
  if (d.colour) e["colour"] = vec(*d.colour);
  return e;
}

StructureDisplay structureDisplayFromJson(const QJsonObject& e) {
  StructureDisplay d;
  d.visible = e.value("visible").toBool(true);
  if (e.contains("opacity")) d.opacity = std::clamp(e.value("opacity").toDouble(1.0), 0.0, 1.0);
  if (e.contains("colour")) d.colour = vec(e.value("colour"), {1, 1, 1});
  return d;
}

void writeSessionFile(const QString& path, const QJsonObject& session) {
  QSaveFile f(path); // temp file + rename on commit
  if (!f.open(QIODevice::WriteOnly))
    throw FileError(path.toStdString(), "cannot write: " + f.errorString().toStdString());
  f.write(QJsonDocument(session).toJson(QJsonDocument::Indented));
  if (!f.commit()) throw FileError(path.toStdString(), "cannot write: " + f.errorString().toStdString());
}

QJsonObject readSessionFile(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly))
    throw FileError(path.toStdString(), "cannot read: " + f.errorString().toStdString());
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &err);
  if (!doc.isObject())
    throw FileError(path.toStdString(), "not a session (not a JSON object: " + err.errorString().toStdString() + ")");
  return doc.object();
}

QJsonObject Workspace::toJson(const StructureNames& names) const {
  QJsonObject o{{"format", "atlascope-session"}, {"version", kSessionVersion}};
  QJsonArray datasets;
  for (const auto& d : datasets_) {
    const DatasetDisplay& x = d->display;
    QJsonArray hidden;
    for (int c : x.hiddenCategories) hidden.append(c);
    QJsonObject e{{"id", d->id},
                  {"name", d->name},
                  {"path", d->path},
                  {"display", QJsonObject{{"visible", x.visible},
                                          {"colour_by", x.colourBy},
                                          {"point_size", x.pointSize},
                                          {"hidden_categories", hidden},
                                          {"highlighted_region", x.highlightedRegion},
                                          {"region_surfaces", x.regionSurfaces}}}};
    if (x.sectionSpacing > 0) { // written when set: older readers ignore it
      QJsonObject display = e.value("display").toObject();
      display["section_spacing_um"] = x.sectionSpacing;
      e["display"] = display;
    }
    const QJsonObject columns = columnsJson(d->columns);
    if (!columns.isEmpty()) e["columns"] = columns;
    QJsonObject regionNames;
    for (const auto& [column, byCode] : d->regionNames) {
      QJsonObject m;
      for (const auto& [code, name] : byCode) m[QString::number(code)] = name;
      if (!m.isEmpty()) regionNames[column] = m;
    }
    if (!regionNames.isEmpty()) e["region_names"] = regionNames;
    QJsonObject regionColours;
    for (const auto& [column, byCode] : d->regionColours) {
      QJsonObject m;
      for (const auto& [code, rgb] : byCode) m[QString::number(code)] = hexColour(rgb);
      if (!m.isEmpty()) regionColours[column] = m;
    }
    if (!regionColours.isEmpty()) e["region_colours"] = regionColours;
    datasets.append(e);
  }
  o["datasets"] = datasets;
  o["current_dataset"] = current_;
  auto structuresOf = [&names](const AtlasDocument& a) {
    QJsonArray structures = a.pendingStructures;
    for (const auto& [i, d] : a.structures) {
      const QString acronym = names.acronym ? names.acronym(a.id, i) : QString();
      if (!acronym.isEmpty()) structures.append(structureDisplayJson(acronym, d));
    }
    return structures;
  };
  o["structures"] = structuresOf(*atlases_.front());
  if (atlases_.front()->templateShown) o["template"] = true;
  if (!atlases_.front()->boundariesShown) o["boundaries"] = false;
  QJsonArray atlases;
  for (const auto& a : atlases_) {
    if (a->id == kMainAtlas) continue;
    QJsonObject e{{"id", a->id}, {"source", a->source}, {"name", a->name}, {"structures", structuresOf(*a)}};
    if (a->templateShown) e["template"] = true;
    if (!a->boundariesShown) e["boundaries"] = false;
    atlases.append(e);
  }
  if (!atlases.isEmpty()) o["atlases"] = atlases;
  QJsonArray views;
  for (const ViewState& v : views_)
    views.append(QJsonObject{{"layers", QJsonArray::fromStringList(v.layers)},
                             {"camera_group", v.cameraGroup},
                             {"follows_datasets", v.followsDatasets}});
  o["layout"] = QJsonObject{{"rows", rows_}, {"columns", cols_}, {"views", views}};
  QJsonObject cameras;
  for (const auto& [g, c] : cameras_) cameras[QString::number(g)] = cameraJson(c);
  o["cameras"] = cameras;
  if (!bookmarks_.empty()) {
    QJsonArray b;
    for (const auto& c : bookmarks_) b.append(cameraJson(c));
    o["camera_bookmarks"] = b;
  }
  o["section"] =
      QJsonObject{{"axis", section_.axis}, {"position", section_.position}, {"thickness", section_.thickness}};
  for (auto it = extras_.begin(); it != extras_.end(); ++it)
    if (!o.contains(it.key())) o[it.key()] = it.value();
  return o;
}

QStringList Workspace::restore(const QJsonObject& o, const StructureNames& names) {
  if (o.value("format").toString() != "atlascope-session")
    throw Error("not an Atlascope session (no \"format\": \"atlascope-session\")");
  const int version = o.value("version").toInt(0);
  if (version < 1) throw Error("session without a valid \"version\"");
  if (version > kSessionVersion)
    throw Error("session version " + std::to_string(version) + " is newer than this Atlascope reads (" +
                std::to_string(kSessionVersion) + "): update Atlascope");

  clear();
  // What the window keeps for itself: the region panel, the window size, the 2D view.
  QJsonObject extras;
  for (const char* key : {"regions", "window", "section_view"})
    if (o.contains(key)) extras[key] = o.value(key);
  extras_ = extras;

  QStringList unknown;
  AtlasDocument& main = *atlases_.front();
  for (const QJsonValue& v : o.value("structures").toArray()) {
    const QJsonObject e = v.toObject();
    const QString acronym = e.value("acronym").toString();
    if (acronym.isEmpty()) continue;
    const auto i = names.find ? names.find(kMainAtlas, acronym) : std::nullopt;
    if (!i) {
      unknown << acronym;
      continue;
    }
    main.structures[*i] = structureDisplayFromJson(e);
  }
  main.templateShown = o.value("template").toBool(false);
  main.boundariesShown = o.value("boundaries").toBool(true);
  // Atlases beside it: entries the engine reads again, under ids of this workspace (never one it
  // used before: the engine keeps what it read under those); their structures wait for their
  // trees. The views' atlas layers are renamed to match below.
  std::map<QString, QString> atlasLayers; // the file's "atlas:<id>" -> ours
  for (const QJsonValue& v : o.value("atlases").toArray()) {
    const QJsonObject e = v.toObject();
    auto doc = std::make_shared<AtlasDocument>();
    doc->source = e.value("source").toString();
    if (doc->source.isEmpty()) continue;
    doc->id = nextAtlas_++;
    const int fileId = e.value("id").toInt(-1);
    if (fileId > kMainAtlas) atlasLayers[atlasLayer(fileId)] = atlasLayer(doc->id);
    doc->name = e.value("name").toString(doc->source);
    doc->templateShown = e.value("template").toBool(false);
    doc->boundariesShown = e.value("boundaries").toBool(true);
    doc->pendingStructures = e.value("structures").toArray();
    doc->structuresFromSession = e.contains("structures");
    atlases_.push_back(doc);
  }
  for (const QJsonValue& b : o.value("camera_bookmarks").toArray()) bookmarks_.push_back(cameraFrom(b.toObject()));
  section_ = sectionFrom(o.value("section").toObject());

  if (version == 1) {
    const bool side = o.value("side_by_side").toBool(false);
    QStringList data;
    if (!o.value("dataset").toString().isEmpty()) {
      auto doc = std::make_shared<DatasetDocument>();
      doc->id = nextId_++;
      doc->path = o.value("dataset").toString();
      doc->name = QFileInfo(doc->path).fileName();
      doc->display.colourBy = o.value("colour_by").toString();
      doc->display.regionSurfaces = o.value("region_surfaces").toBool(false);
      doc->display.highlightedRegion = o.value("selected_region").toInt(-1);
      data << cellsLayer(doc->id) << surfacesLayer(doc->id);
      datasets_.push_back(doc);
    }
    if (side) {
      rows_ = 1;
      cols_ = 2;
      views_ = {ViewState{{atlasLayer()}, 0, false}, ViewState{data, 0, true}};
    } else {
      views_ = {ViewState{QStringList{atlasLayer()} + data, 0, true}};
    }
    if (o.contains("camera")) cameras_[0] = cameraFrom(o.value("camera").toObject());
    extras_["section_view"] = o.value("section_view").toBool(false);
  } else {
    for (const QJsonValue& v : o.value("datasets").toArray()) {
      const QJsonObject e = v.toObject();
      auto doc = std::make_shared<DatasetDocument>();
      doc->id = e.value("id").toInt(nextId_);
      if (doc->id < 1 || dataset(doc->id)) doc->id = nextId_;
      nextId_ = std::max(nextId_, doc->id + 1);
      doc->path = e.value("path").toString();
      if (doc->path.isEmpty()) continue;
      doc->name = e.value("name").toString(QFileInfo(doc->path).fileName());
      doc->columns = columnsFrom(e.value("columns").toObject());
      const QJsonObject x = e.value("display").toObject();
      doc->display.visible = x.value("visible").toBool(true);
      doc->display.colourBy = x.value("colour_by").toString();
      doc->display.pointSize = std::clamp(x.value("point_size").toDouble(3), 0.5, 50.0);
      for (const QJsonValue& c : x.value("hidden_categories").toArray())
        doc->display.hiddenCategories.push_back(c.toInt());
      doc->display.highlightedRegion = x.value("highlighted_region").toInt(-1);
      doc->display.regionSurfaces = x.value("region_surfaces").toBool(false);
      doc->display.sectionSpacing = std::clamp(x.value("section_spacing_um").toDouble(0), 0.0, 100000.0);
      const QJsonObject rn = e.value("region_names").toObject();
      for (auto it = rn.begin(); it != rn.end(); ++it) {
        const QJsonObject m = it.value().toObject();
        for (auto c = m.begin(); c != m.end(); ++c) doc->regionNames[it.key()][c.key().toInt()] = c.value().toString();
      }
      const QJsonObject rc = e.value("region_colours").toObject();
      for (auto it = rc.begin(); it != rc.end(); ++it) {
        const QJsonObject m = it.value().toObject();
        for (auto c = m.begin(); c != m.end(); ++c)
          if (const auto rgb = colourFrom(c.value().toString())) doc->regionColours[it.key()][c.key().toInt()] = *rgb;
      }
      datasets_.push_back(doc);
    }
    const QJsonObject layout = o.value("layout").toObject();
    rows_ = std::clamp(layout.value("rows").toInt(1), 1, 3);
    cols_ = std::clamp(layout.value("columns").toInt(1), 1, 3);
    views_.clear();
    for (const QJsonValue& v : layout.value("views").toArray()) {
      const QJsonObject e = v.toObject();
      ViewState view;
      for (const QJsonValue& l : e.value("layers").toArray()) view.layers << l.toString();
      view.cameraGroup = std::max(0, e.value("camera_group").toInt(0));
      view.followsDatasets = e.value("follows_datasets").toBool(true);
      views_.push_back(view);
    }
    // Atlas layers under this workspace's ids; one naming no atlas of the session is dropped.
    for (ViewState& view : views_) {
      QStringList layers;
      for (const QString& l : view.layers) {
        const auto id = layerAtlas(l);
        if (!id || *id == kMainAtlas)
          layers << l;
        else if (const auto it = atlasLayers.find(l); it != atlasLayers.end())
          layers << it->second;
      }
      view.layers = layers;
    }
    const std::size_t n = static_cast<std::size_t>(rows_ * cols_);
    while (views_.size() < n) views_.push_back(ViewState{{atlasLayer()}, 0, true});
    views_.resize(n);
    const QJsonObject cameras = o.value("cameras").toObject();
    for (auto it = cameras.begin(); it != cameras.end(); ++it)
      cameras_[it.key().toInt()] = cameraFrom(it.value().toObject());
  }
  const int current = o.value("current_dataset").toInt(datasets_.empty() ? -1 : datasets_.front()->id);
  current_ = dataset(current) ? current : (datasets_.empty() ? -1 : datasets_.front()->id);
  undo_->clear();
  for (const auto& d : datasets_) restoredDatasets_.insert(d->id);
  for (const auto& d : datasets_) emit datasetAdded(d->id);
  for (const auto& a : atlases_)
    if (a->id != kMainAtlas) restoredAtlases_.insert(a->id);
  for (const auto& a : atlases_)
    if (a->id != kMainAtlas) emit atlasAdded(a->id);
  emit currentDatasetChanged(current_);
  emit structuresChanged(kMainAtlas, {});
  emit atlasChanged(kMainAtlas);
  emit layoutChanged();
  for (const auto& [g, c] : cameras_) emit cameraChanged(g);
  emit bookmarksChanged();
  emit sectionChanged();
  emit restored();
  return unknown;
}

} // namespace atlascope::app
