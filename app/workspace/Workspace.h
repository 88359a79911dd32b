#pragma once
// The workspace: the document the window shows (3D Slicer's scene, ParaView's proxies), with no
// widget and no VTK in it. It holds the open datasets (their cells and how they are drawn), the
// open atlases (the window's own, plus BrainGlobe atlases opened beside it) with their structure
// displays, the views (a grid of 1x1 to 3x3, each showing chosen layers, the
// cameras linked in groups), the section, camera bookmarks and the names users give regions.
//
// Every change a user makes goes through a setter here, which pushes a QUndoCommand onto the
// workspace's undo stack (ParaView's and MITK's operation-level undo: no scene snapshots, a 4M-cell
// dataset is never copied; closing a dataset keeps its cells in the command by shared pointer).
// Widgets and the scene observe the signals below and never hold state of their own; sessions are
// this model serialised (WorkspaceSession.cpp), CLI flags are a patch applied to it, headless
// export renders from it.
#include "core/CellTable.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QObject>
#include <QString>
#include <QStringList>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

class QUndoCommand;
class QUndoStack;

namespace atlascope::app {

using DatasetId = int; // stable for the workspace's life, never reused
// Atlases: 0 is the window's atlas (the bundled CCF unless `--atlas` says otherwise), always
// there; atlases opened beside it are numbered from 1, never reused.
using AtlasId = int;
constexpr AtlasId kMainAtlas = 0;

struct CameraState {
  std::array<double, 3> position{0, 0, 1}, focalPoint{0, 0, 0}, viewUp{0, 1, 0};
  double viewAngle = 30;
  bool operator==(const CameraState& o) const {
    return position == o.position && focalPoint == o.focalPoint && viewUp == o.viewUp && viewAngle == o.viewAngle;
  }
  bool operator!=(const CameraState& o) const { return !(*this == o); }
};

// How one atlas structure is drawn; unset opacity/colour = the atlas's default look.
struct StructureDisplay {
  bool visible = false;
  std::optional<double> opacity;
  std::optional<std::array<double, 3>> colour; // 0..1
  bool operator==(const StructureDisplay& o) const {
    return visible == o.visible && opacity == o.opacity && colour == o.colour;
  }
  bool operator!=(const StructureDisplay& o) const { return !(*this == o); }
};

// How a dataset's cells are drawn.
struct DatasetDisplay {
  bool visible = true;
  QString colourBy;                  // "type", "section", "gene:NAME" or an obs column (e.g. regions_k25)
  double pointSize = 3;              // pixels
  std::vector<int> hiddenCategories; // codes of the colouring's categories not drawn (legend filter), ascending
  int highlightedRegion = -1;        // a discovered region of a regions_k colouring drawn alone (-1: none)
  bool regionSurfaces = false;       // the regions_k colouring's regions as surfaces
  // Between consecutive sections of data without CCF coordinates, um (the layout along AP);
  // 0: the file's uns["section_spacing_um"], else 200.
  double sectionSpacing = 0;
  bool operator==(const DatasetDisplay& o) const {
    return visible == o.visible && colourBy == o.colourBy && pointSize == o.pointSize &&
           hiddenCategories == o.hiddenCategories && highlightedRegion == o.highlightedRegion &&
           regionSurfaces == o.regionSurfaces && sectionSpacing == o.sectionSpacing;
  }
  bool operator!=(const DatasetDisplay& o) const { return !(*this == o); }
};

struct DatasetDocument {
  DatasetId id = 0;
  QString name; // shown in the docks, legends and figures; the file name unless renamed
  QString path;
  ColumnOptions columns;
  std::shared_ptr<const CellTable> cells; // null until read
  std::vector<std::string> obsColumns;    // further columns to colour by (e.g. regions_k25)
  DatasetDisplay display;
  // Names users gave discovered regions: column -> region code -> name (others: the default name).
  std::map<QString, std::map<int, QString>> regionNames;
  // Colours of discovered regions set by a match with another dataset: column -> code -> rgb.
  std::map<QString, std::map<int, std::array<std::uint8_t, 3>>> regionColours;
};

// An atlas of the workspace. Its structures are indices in its own StructureTree.
struct AtlasDocument {
  AtlasId id = kMainAtlas;
  QString name;   // shown on its tree tab, view titles and figures ("Allen CCF", "kim_mouse_25um")
  QString source; // what openAtlas (core/AtlasCatalog.h) takes: a cached name, a v1 folder, a v3 manifest
  bool loaded = false;
  bool templateShown = false; // its reference template under the section (3D) and in the 2D view
  // Its structures' boundaries on the 2D section view's plane, over the cells, each atlas in a
  // colour of its own. On by default: two atlases' boundaries over one section is the comparison.
  bool boundariesShown = true;
  std::map<int, StructureDisplay> structures;
  // A session's structure displays by acronym, kept until the atlas' tree is read.
  QJsonArray pendingStructures;
  bool structuresFromSession = false; // pendingStructures came from a session (even empty)
};

// What a view draws, as a key: "atlas" (the window's atlas's shown structures), "atlas:<id>"
// (another atlas's), "cells:<id>" (a dataset's cells), "surfaces:<id>" (its discovered regions as
// surfaces). The section applies to them all.
QString atlasLayer(AtlasId id = kMainAtlas);
QString cellsLayer(DatasetId id);
QString surfacesLayer(DatasetId id);
// The dataset a cells or surfaces key names (nullopt for atlases or a malformed key).
std::optional<DatasetId> layerDataset(const QString& layer);
// The atlas an atlas key names (nullopt for datasets or a malformed key).
std::optional<AtlasId> layerAtlas(const QString& layer);

struct ViewState {
  QStringList layers;
  int cameraGroup = 0;         // views of one group share a camera (linked); an unlinked view has a group of its own
  bool followsDatasets = true; // a dataset opened later is added to this view
  bool operator==(const ViewState& o) const {
    return layers == o.layers && cameraGroup == o.cameraGroup && followsDatasets == o.followsDatasets;
  }
};

struct SectionState {
  QString axis = "none";                // none, coronal, sagittal, horizontal
  double position = 0, thickness = 200; // um
  bool operator==(const SectionState& o) const {
    return axis == o.axis && position == o.position && thickness == o.thickness;
  }
  bool operator!=(const SectionState& o) const { return !(*this == o); }
};

// A structure display in sessions: {"acronym", "visible", "opacity"?, "colour"?}.
QJsonObject structureDisplayJson(const QString& acronym, const StructureDisplay& d);
StructureDisplay structureDisplayFromJson(const QJsonObject& o);

// Session files: the JSON of Workspace::toJson written atomically (temp file + rename), and read
// back (errors name the file: unreadable, not JSON).
void writeSessionFile(const QString& path, const QJsonObject& session);
QJsonObject readSessionFile(const QString& path);

class Workspace : public QObject {
  Q_OBJECT
public:
  explicit Workspace(QObject* parent = nullptr);
  ~Workspace() override;

  QUndoStack* undoStack() const { return undo_; }

  // --- datasets
  // A dataset entry waiting for its cells (the reader fills them with setDatasetCells); the
  // undoable step is taken when they arrive (undo closes it).
  // `colourBy`: how its cells are coloured once read (empty: by type, else by section).
  DatasetId addDataset(const QString& path, const ColumnOptions& columns = {}, const QString& name = {},
                       const QString& colourBy = {});
  // The cells read (not undoable: reading is not an edit). Views that show every dataset gain it.
  void setDatasetCells(DatasetId id, std::shared_ptr<const CellTable> cells, std::vector<std::string> obsColumns);
  void closeDataset(DatasetId id); // undoable; the cells stay alive in the command
  // A dataset entry removed without an undo step (its read failed or was cancelled).
  void discardDataset(DatasetId id);
  const DatasetDocument* dataset(DatasetId id) const;
  std::vector<DatasetId> datasetIds() const; // in opening order
  std::vector<DatasetId> loadedDatasetIds() const;
  // The dataset the docks act on (the Data dock's selection); -1: none. Not undoable (a selection).
  DatasetId currentDataset() const { return current_; }
  void setCurrentDataset(DatasetId id);

  void setDatasetName(DatasetId id, const QString& name);
  void setDatasetVisible(DatasetId id, bool visible);
  void setColourBy(DatasetId id, const QString& colourBy); // clears the category filter and highlight
  void setPointSize(DatasetId id, double pixels);          // consecutive changes merge (a dragged slider)
  void setHiddenCategories(DatasetId id, std::vector<int> hidden);
  void setHighlightedRegion(DatasetId id, int code);
  void setRegionSurfaces(DatasetId id, bool on);
  void setSectionSpacing(DatasetId id, double um);                                        // 0: the file's, else 200 um
  void setRegionName(DatasetId id, const QString& column, int code, const QString& name); // empty: the default again
  void setRegionColours(DatasetId id, const QString& column, std::map<int, std::array<std::uint8_t, 3>> colours);

  // --- atlases
  // An atlas to open beside the window's (`source` as openAtlas takes it); the engine reads it and
  // calls setAtlasLoaded (the undoable step: undo closes it) or discardAtlas.
  AtlasId addAtlas(const QString& source, const QString& name = {});
  // Read: named as the atlas calls itself. An atlas opened by the user gets a view of its own
  // beside the others (the grid grows by a column up to 3, else the last view shows it too),
  // linked to the first view's camera; one from a session keeps the session's views.
  // `source`, when given, records what it was opened from (the window's atlas: `--atlas`).
  // A name another atlas of the workspace has gets " (2)", " (3)"...
  // An atlas the user opened in another space than the window's atlas (`sameSpace` false: a rat
  // atlas beside the CCF) starts with its 2D boundaries off: they would lie over the cells in a
  // frame that is not theirs. A session's atlas keeps the session's choice.
  void setAtlasLoaded(AtlasId id, const QString& name, const QString& source = {}, bool sameSpace = true);
  void discardAtlas(AtlasId id); // its read failed or was cancelled: no undo step
  void closeAtlas(AtlasId id);   // undoable; not the window's atlas
  const AtlasDocument* atlas(AtlasId id) const;
  std::vector<AtlasId> atlasIds() const; // the window's atlas first, then in opening order
  void setTemplateShown(AtlasId id, bool shown);
  void setBoundariesShown(AtlasId id, bool shown);
  // A session's structures by acronym (without any: `otherwise`, e.g. those the window's atlas
  // shows), resolved once the atlas' tree is known (no undo step: where the atlas starts).
  void resolvePendingStructures(AtlasId id, const std::function<std::optional<int>(const QString&)>& find,
                                const QJsonArray& otherwise = {});

  // --- an atlas's structures (by index in its StructureTree); without an atlas: the window's
  StructureDisplay structureDisplay(AtlasId atlas, int structure) const;
  const std::map<int, StructureDisplay>& structureDisplays(AtlasId atlas) const;
  void setStructureVisible(AtlasId atlas, int structure, bool visible);
  void setStructureOpacity(AtlasId atlas, int structure, double opacity); // consecutive changes of one merge
  void setStructureColour(AtlasId atlas, int structure,
                          std::optional<std::array<double, 3>> colour); // nullopt: atlas colour
  // Several structures in one step (a session's or the command line's selection).
  void setStructureDisplays(AtlasId atlas, std::map<int, StructureDisplay> displays, const QString& text);
  StructureDisplay structureDisplay(int structure) const { return structureDisplay(kMainAtlas, structure); }
  const std::map<int, StructureDisplay>& structureDisplays() const { return structureDisplays(kMainAtlas); }
  void setStructureVisible(int structure, bool visible) { setStructureVisible(kMainAtlas, structure, visible); }
  void setStructureOpacity(int structure, double opacity) { setStructureOpacity(kMainAtlas, structure, opacity); }
  void setStructureColour(int structure, std::optional<std::array<double, 3>> colour) {
    setStructureColour(kMainAtlas, structure, colour);
  }
  void setStructureDisplays(std::map<int, StructureDisplay> displays, const QString& text) {
    setStructureDisplays(kMainAtlas, std::move(displays), text);
  }

  // --- views
  int rows() const { return rows_; }
  int columns() const { return cols_; }
  int viewCount() const { return static_cast<int>(views_.size()); }
  const ViewState& view(int index) const { return views_.at(static_cast<std::size_t>(index)); }
  // A grid of rows x columns (1..3 each). Views kept keep their layers; new ones show the atlas
  // and every dataset's cells, linked to the first view's camera.
  void setLayout(int rows, int columns);
  void setViewLayers(int view, const QStringList& layers);
  void setLayerShown(int view, const QString& layer, bool shown);
  // Linked: the view takes the first view's camera group; unlinked: a group of its own that starts
  // from the camera it had.
  void setViewLinked(int view, bool linked);
  bool viewLinked(int view) const;
  // Side by side (the layout of earlier versions): the atlas in view 1, the datasets in view 2,
  // one camera; off: one view with everything.
  void setSideBySide(bool on);
  bool sideBySide() const;

  // --- cameras (one per group)
  CameraState camera(int group) const;
  bool hasCamera(int group) const { return cameras_.count(group) > 0; }
  // `text` names the step ("Anterior", "Rotate"); nothing is recorded when the camera did not move.
  void setCamera(int group, const CameraState& camera, const QString& text);
  const std::vector<CameraState>& bookmarks() const { return bookmarks_; }
  void addBookmark(const CameraState& camera);

  // --- section
  const SectionState& section() const { return section_; }
  void setSection(const SectionState& section); // consecutive moves along one axis merge

  // --- sessions (WorkspaceSession.cpp): format "atlascope-session", version 2; version 1 files
  // (one dataset, side by side or not) are read too. Restoring clears the undo history.
  static constexpr int kSessionVersion = 2;
  // Structure acronyms need the atlases' trees: `acronym(atlas, index)` and `find(atlas, acronym)`
  // (an atlas not read yet: empty / nullopt).
  struct StructureNames {
    std::function<QString(AtlasId, int)> acronym;
    std::function<std::optional<int>(AtlasId, const QString&)> find;
  };
  QJsonObject toJson(const StructureNames& names) const;
  // Replaces the whole state with the session's (datasets become entries waiting for their cells:
  // the caller reads them). Unknown structure acronyms are returned. Throws atlascope::Error on a
  // malformed or newer file.
  QStringList restore(const QJsonObject& session, const StructureNames& names);
  // Everything back to an empty workspace (no undo step).
  void clear();
  // Extra settings the window keeps in sessions (the region panel's fields, the window size,
  // whether the 2D section view is shown); kept as given.
  QJsonObject extras() const { return extras_; }
  void setExtras(const QJsonObject& extras) { extras_ = extras; }

signals:
  void datasetAdded(DatasetId id);  // an entry (cells may still be null)
  void datasetLoaded(DatasetId id); // its cells arrived
  void datasetRemoved(DatasetId id);
  void datasetChanged(DatasetId id); // name, visibility, colouring, point size, filter, highlight, surfaces, names
  void currentDatasetChanged(DatasetId id);
  void atlasAdded(AtlasId id);  // an entry (not read yet)
  void atlasLoaded(AtlasId id); // read (the window's atlas too)
  void atlasRemoved(AtlasId id);
  void atlasChanged(AtlasId id);                                // its template shown or hidden
  void structuresChanged(AtlasId atlas, QList<int> structures); // empty: any may have changed
  void layoutChanged();                                         // grid size, layers of a view or camera links
  void cameraChanged(int group);
  void bookmarksChanged();
  void sectionChanged();
  void restored(); // a session replaced everything

private:
  DatasetDocument* find(DatasetId id);
  void insertDataset(std::shared_ptr<DatasetDocument> doc, int position);
  std::shared_ptr<DatasetDocument> takeDataset(DatasetId id, int* position);
  void applyDisplay(DatasetId id, const DatasetDisplay& display);
  void applyStructures(AtlasId atlas, const std::map<int, StructureDisplay>& changes);
  AtlasDocument* findAtlas(AtlasId id);
  QString uniqueAtlasName(const QString& name, AtlasId id) const; // "name", else "name (2)", ...
  // One of an atlas's on/off display flags as an undoable step named `text` (atlasChanged).
  void setAtlasFlag(AtlasId id, bool AtlasDocument::*flag, bool on, const QString& text);
  void insertAtlas(std::shared_ptr<AtlasDocument> doc);
  std::shared_ptr<AtlasDocument> takeAtlas(AtlasId id);
  void applyViews(int rows, int cols, std::vector<ViewState> views, std::map<int, CameraState> cameras);
  void push(QUndoCommand* command);
  int newCameraGroup() const;

  QUndoStack* undo_;
  std::vector<std::shared_ptr<DatasetDocument>> datasets_;
  DatasetId nextId_ = 1;
  DatasetId current_ = -1;
  std::vector<std::shared_ptr<AtlasDocument>> atlases_; // the window's first
  AtlasId nextAtlas_ = 1;
  std::set<AtlasId> restoredAtlases_; // from a session: reading them is no undo step
  int rows_ = 1, cols_ = 1;
  std::vector<ViewState> views_;
  std::map<int, CameraState> cameras_;
  std::vector<CameraState> bookmarks_;
  SectionState section_;
  QJsonObject extras_;
  std::set<DatasetId> restoredDatasets_; // from a session: reading them is no undo step
};

} // namespace atlascope::app
