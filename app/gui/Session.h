#pragma once
// Sessions: everything visible, saved to a versioned JSON file and restored (the dataset and how
// its cells are coloured, the shown CCF structures with their opacity and colour, the camera,
// side by side or overlaid, the region panel's settings). Paths are stored as given; a missing
// dataset is reported when the session is restored, the rest still applies.
//
// Versions: 1 is the first. A reader accepts any version up to its own (fields a file lacks take
// their defaults, so older files restore) and refuses newer ones with a message saying so.
#include <QJsonObject>
#include <QString>
#include <QStringList>

#include <array>
#include <optional>
#include <vector>

namespace atlascope::app {

struct SessionStructure {
  QString acronym;
  bool visible = true;
  double opacity = 1.0;
  std::optional<std::array<double, 3>> colour; // none: the atlas colour
};

struct SessionCamera {
  std::array<double, 3> position{0, 0, 1}, focalPoint{0, 0, 0}, viewUp{0, 1, 0};
  double viewAngle = 30;
};

struct Session {
  static constexpr int kVersion = 1;
  int version = kVersion;
  QString dataset;  // empty: none
  QString colourBy; // "type", "section", "gene:NAME" or an obs column
  bool sideBySide = false;
  bool regionSurfaces = false; // View > Region surfaces (absent in older sessions: off)
  bool sectionView = false;    // the 2D section view shown (absent: hidden)
  int selectedRegion = -1;     // the discovered region highlighted (code at colourBy's k; absent: none)
  QString sectionAxis = "none"; // none, coronal, sagittal, horizontal
  double sectionPosition = 0, sectionThickness = 200; // um
  std::vector<SessionStructure> structures;
  std::optional<SessionCamera> camera;
  std::vector<SessionCamera> bookmarks; // View > Camera bookmarks, in order
  // The region panel.
  QString model, resolutions = "25,100", device = "auto";
  bool smooth = false;
  int width = 0, height = 0; // window size (0: unchanged)

  QJsonObject toJson() const;
  static Session fromJson(const QJsonObject& json); // throws atlascope::Error with the reason
  void save(const QString& path) const;             // atomic (QSaveFile)
  static Session load(const QString& path);         // throws atlascope::FileError
};

} // namespace atlascope::app
