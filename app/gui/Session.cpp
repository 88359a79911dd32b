#include "app/gui/Session.h"

#include "core/Error.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>

namespace atlascope::app {

namespace {
QJsonArray vec(const std::array<double, 3>& v) { return {v[0], v[1], v[2]}; }
std::array<double, 3> vec(const QJsonValue& v, std::array<double, 3> fallback) {
  const QJsonArray a = v.toArray();
  if (a.size() != 3) return fallback;
  return {a[0].toDouble(), a[1].toDouble(), a[2].toDouble()};
}
} // namespace

QJsonObject Session::toJson() const {
  QJsonObject o{{"format", "atlascope-session"}, {"version", kVersion}, {"dataset", dataset}, {"colour_by", colourBy},
                {"side_by_side", sideBySide}, {"region_surfaces", regionSurfaces},
                {"section_view", sectionView}, {"selected_region", selectedRegion}};
  QJsonArray s;
  for (const auto& st : structures) {
    QJsonObject e{{"acronym", st.acronym}, {"visible", st.visible}, {"opacity", st.opacity}};
    if (st.colour) e["colour"] = vec(*st.colour);
    s.append(e);
  }
  o["structures"] = s;
  auto cameraJson = [](const SessionCamera& c) {
    return QJsonObject{{"position", vec(c.position)}, {"focal_point", vec(c.focalPoint)}, {"view_up", vec(c.viewUp)}, {"view_angle", c.viewAngle}};
  };
  if (camera) o["camera"] = cameraJson(*camera);
  if (!bookmarks.empty()) {
    QJsonArray b;
    for (const auto& c : bookmarks) b.append(cameraJson(c));
    o["camera_bookmarks"] = b;
  }
  o["section"] = QJsonObject{{"axis", sectionAxis}, {"position", sectionPosition}, {"thickness", sectionThickness}};
  o["regions"] = QJsonObject{{"model", model}, {"k", resolutions}, {"device", device}, {"smooth", smooth}};
  if (width > 0 && height > 0) o["window"] = QJsonObject{{"width", width}, {"height", height}};
  return o;
}

Session Session::fromJson(const QJsonObject& o) {
  if (o.value("format").toString() != "atlascope-session") throw Error("not an Atlascope session (no \"format\": \"atlascope-session\")");
  Session s;
  s.version = o.value("version").toInt(0);
  if (s.version < 1) throw Error("session without a valid \"version\"");
  if (s.version > kVersion)
    throw Error("session version " + std::to_string(s.version) + " is newer than this Atlascope reads (" + std::to_string(kVersion) +
                "): update Atlascope");
  s.dataset = o.value("dataset").toString();
  s.colourBy = o.value("colour_by").toString();
  s.sideBySide = o.value("side_by_side").toBool(false);
  s.regionSurfaces = o.value("region_surfaces").toBool(false);
  s.sectionView = o.value("section_view").toBool(false);
  s.selectedRegion = o.value("selected_region").toInt(-1);
  for (const QJsonValue& v : o.value("structures").toArray()) {
    const QJsonObject e = v.toObject();
    SessionStructure st;
    st.acronym = e.value("acronym").toString();
    if (st.acronym.isEmpty()) continue;
    st.visible = e.value("visible").toBool(true);
    st.opacity = e.value("opacity").toDouble(1.0);
    if (e.contains("colour")) st.colour = vec(e.value("colour"), {1, 1, 1});
    s.structures.push_back(st);
  }
  auto cameraFrom = [](const QJsonObject& c) {
    SessionCamera cam;
    cam.position = vec(c.value("position"), cam.position);
    cam.focalPoint = vec(c.value("focal_point"), cam.focalPoint);
    cam.viewUp = vec(c.value("view_up"), cam.viewUp);
    cam.viewAngle = c.value("view_angle").toDouble(30);
    return cam;
  };
  if (o.contains("camera")) s.camera = cameraFrom(o.value("camera").toObject());
  for (const QJsonValue& b : o.value("camera_bookmarks").toArray()) s.bookmarks.push_back(cameraFrom(b.toObject()));
  const QJsonObject sec = o.value("section").toObject();
  s.sectionAxis = sec.value("axis").toString("none");
  s.sectionPosition = sec.value("position").toDouble(0);
  s.sectionThickness = sec.value("thickness").toDouble(200);
  const QJsonObject r = o.value("regions").toObject();
  s.model = r.value("model").toString();
  s.resolutions = r.value("k").toString(s.resolutions);
  s.device = r.value("device").toString(s.device);
  s.smooth = r.value("smooth").toBool(false);
  const QJsonObject w = o.value("window").toObject();
  s.width = w.value("width").toInt(0);
  s.height = w.value("height").toInt(0);
  return s;
}

void Session::save(const QString& path) const {
  QSaveFile f(path); // temp file + rename on commit
  if (!f.open(QIODevice::WriteOnly)) throw FileError(path.toStdString(), "cannot write: " + f.errorString().toStdString());
  f.write(QJsonDocument(toJson()).toJson(QJsonDocument::Indented));
  if (!f.commit()) throw FileError(path.toStdString(), "cannot write: " + f.errorString().toStdString());
}

Session Session::load(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) throw FileError(path.toStdString(), "cannot read: " + f.errorString().toStdString());
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &err);
  if (!doc.isObject()) throw FileError(path.toStdString(), "not JSON (" + err.errorString().toStdString() + ")");
  try {
    return fromJson(doc.object());
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(path.toStdString(), e.what());
  }
}

} // namespace atlascope::app
