#include "app/gui/DatasetDocks.h"

#include "app/gui/RegionMatchPanel.h"
#include "app/gui/SectionView.h"
#include "app/scene/Engine.h"
#include "core/Agreement.h"
#include "core/Palette.h"
#include "viewer/SectionPlane.h"

#include <QInputDialog>
#include <QLineEdit>
#include <QListWidget>

#include <algorithm>
#include <iterator>

namespace atlascope::app {

DatasetDocks::DatasetDocks(Engine& engine, RegionMatchPanel* regions, SectionView* section, QObject* parent)
    : QObject(parent), engine_(engine), regions_(regions), section_(section) {
  Workspace& ws = engine_.workspace();
  connect(&engine_, &Engine::atlasLoaded, this, [this] {
    regions_->setAtlas(engine_.atlas(), engine_.workspace().atlas(kMainAtlas)->name);
    section_->setAtlas(engine_.atlas());
    refresh();
  });
  // Discovered regions can be matched against any atlas read (those of the CCF's space place the
  // cells; another space leaves every cell outside it, which the panel says).
  for (auto signal : {&Workspace::atlasLoaded, &Workspace::atlasRemoved})
    connect(&ws, signal, this, &DatasetDocks::offerAtlases);
  connect(regions_, &RegionMatchPanel::atlasChosen, this, [this](int index) {
    if (index < 0 || index >= static_cast<int>(offered_.size()) ||
        !engine_.atlas(offered_[static_cast<std::size_t>(index)]))
      return;
    matchedAtlas_ = offered_[static_cast<std::size_t>(index)];
    regions_->setAtlas(engine_.atlas(matchedAtlas_), engine_.workspace().atlas(matchedAtlas_)->name);
    shownColouring_ = nullptr; // matched again
    refresh();
  });
  for (auto signal : {&Workspace::currentDatasetChanged, &Workspace::datasetLoaded, &Workspace::datasetChanged,
                      &Workspace::datasetRemoved})
    connect(&ws, signal, this, &DatasetDocks::refresh);
  connect(&engine_.data(), &DatasetData::colouringReady, this, &DatasetDocks::refresh);
  // The 2D view's background: the template of the first atlas that shows one (the engine keeps
  // a read atlas while the engine lives, so the pointer outlives a close).
  auto showTemplate = [this] {
    const Workspace& w = engine_.workspace();
    const Atlas* shown = nullptr;
    for (AtlasId id : w.atlasIds())
      if (!shown && w.atlas(id)->templateShown) shown = engine_.atlas(id);
    section_->setTemplate(shown);
  };
  for (auto signal : {&Workspace::atlasChanged, &Workspace::atlasLoaded, &Workspace::atlasRemoved})
    connect(&ws, signal, this, showTemplate);
  // Its boundaries: every read atlas that shows them, the window's first (dark grey, as the CCF's
  // always were), each other in a colour of its own kept by its id (closing one recolours none).
  auto showBoundaries = [this] {
    static const QColor others[] = {QColor(230, 110, 0), QColor(0, 140, 210), QColor(200, 0, 150), QColor(30, 150, 60),
                                    QColor(130, 80, 200)};
    const Workspace& w = engine_.workspace();
    std::vector<SectionView::Boundaries> shown;
    for (AtlasId id : w.atlasIds()) {
      const AtlasDocument* doc = w.atlas(id);
      const Atlas* atlas = engine_.atlas(id);
      if (!doc || !atlas || !doc->boundariesShown) continue;
      const QColor colour =
          id == kMainAtlas ? QColor(40, 40, 40, 200) : others[static_cast<std::size_t>(id - 1) % std::size(others)];
      shown.push_back({atlas, doc->name, colour});
    }
    section_->setBoundaryAtlases(std::move(shown));
  };
  // (The window's atlas: Workspace::atlasLoaded comes once the engine holds it.)
  for (auto signal : {&Workspace::atlasChanged, &Workspace::atlasLoaded, &Workspace::atlasRemoved})
    connect(&ws, signal, this, showBoundaries);
  connect(&ws, &Workspace::sectionChanged, this, [this] {
    const SectionState& s = engine_.workspace().section();
    const int normal = viewer::sectionAxisIndex(viewer::sectionAxisFromName(s.axis.toStdString()));
    section_->setPlane(normal < 0 ? 0 : normal, s.position, s.thickness);
  });
  auto current = [&ws] { return ws.currentDataset(); };
  connect(regions_, &RegionMatchPanel::resolutionChosen, this,
          [&ws, current](const QString& column) { ws.setColourBy(current(), column); });
  connect(regions_, &RegionMatchPanel::regionSelected, this,
          [&ws, current](int code) { ws.setHighlightedRegion(current(), code); });
  connect(regions_, &RegionMatchPanel::regionInResolutionChosen, this,
          [this, &ws, current](const QString& column, int code) {
            const DatasetDocument* d = ws.dataset(current());
            if (!d) return;
            if (d->display.colourBy == column) {
              ws.setHighlightedRegion(d->id, code);
              return;
            }
            pendingRegion_ = code; // selected once that resolution's matches are in
            ws.setColourBy(d->id, column);
          });
  // A double click on a region renames it (undoable; saved in sessions; File > Save region names
  // writes it into the dataset file).
  connect(regions_, &RegionMatchPanel::regionActivated, this, [this, &ws, current](int code, const QString& shown) {
    const DatasetDocument* d = ws.dataset(current());
    if (!d) return;
    bool ok = false;
    const QString name = QInputDialog::getText(regions_, tr("Rename region"), tr("Name (empty: the default)"),
                                               QLineEdit::Normal, shown, &ok);
    if (ok) ws.setRegionName(d->id, d->display.colourBy, code, name.trimmed());
  });
  // Matches in: the region the tree asked for, else the model's highlighted region, selected.
  connect(regions_, &RegionMatchPanel::matchesReady, this, [this, &ws, current] {
    if (pendingRegion_ < 0) {
      refresh();
      return;
    }
    ws.setHighlightedRegion(current(), pendingRegion_);
    pendingRegion_ = -1;
  });
}

void DatasetDocks::offerAtlases() {
  const Workspace& ws = engine_.workspace();
  if (!ws.atlas(matchedAtlas_) && matchedAtlas_ != kMainAtlas) { // closed: back to the window's
    matchedAtlas_ = kMainAtlas;
    regions_->setAtlas(engine_.atlas(), ws.atlas(kMainAtlas) ? ws.atlas(kMainAtlas)->name : QString());
    shownColouring_ = nullptr;
    refresh();
  }
  // Only atlases read can be chosen.
  QStringList names;
  int current = 0;
  offered_.clear();
  for (AtlasId id : ws.atlasIds()) {
    if (!engine_.atlas(id) || (id != kMainAtlas && !ws.atlas(id)->loaded)) continue;
    if (id == matchedAtlas_) current = static_cast<int>(names.size());
    names << ws.atlas(id)->name;
    offered_.push_back(id);
  }
  regions_->setAtlasChoices(names, current);
}

QStringList DatasetDocks::regionColumns() const {
  QStringList columns;
  const DatasetDocument* d = engine_.workspace().dataset(engine_.workspace().currentDataset());
  if (!d) return columns;
  for (const auto& c : d->obsColumns)
    if (QString::fromStdString(c).startsWith("regions_k")) columns << QString::fromStdString(c);
  std::sort(columns.begin(), columns.end(),
            [](const QString& a, const QString& b) { return a.mid(9).toInt() < b.mid(9).toInt(); });
  return columns;
}

void DatasetDocks::refresh() {
  const Workspace& ws = engine_.workspace();
  const DatasetDocument* d = ws.dataset(ws.currentDataset());
  const bool loaded = d && d->cells;
  const CellColouring* c = loaded ? engine_.data().colouring(d->id) : nullptr;
  if (c && c->cells != d->cells.get()) c = nullptr;
  if (!loaded || d->id != shownDataset_) {
    section_->setCells(loaded ? d->cells.get() : nullptr);
    regions_->clear();
    shownColouring_ = nullptr;
    shownDataset_ = loaded ? d->id : -1;
    regions_->setHierarchy({});
    if (loaded) buildHierarchy();
  }
  if (!loaded) {
    emit regionsAvailable(false);
    return;
  }
  if (c && c->categorical)
    section_->setColours(c->codes, displayColours(*d, *c));
  else
    section_->setColours({}, {});
  section_->setShownCells(c ? shownCells(d->display, *c) : std::vector<std::uint8_t>{});

  const QStringList columns = regionColumns();
  emit regionsAvailable(!columns.isEmpty());
  if (c && c->colourBy.startsWith("regions_k")) {
    const auto names = displayNames(*d, *c);
    if (shownColouring_ != c || shownNames_ != names) {
      regions_->setResolutions(columns, c->colourBy);
      regions_->setRegions(d->cells.get(), c->colourBy, c->codes, names, displayColours(*d, *c));
      shownColouring_ = c;
      shownNames_ = names;
    }
    if (regions_->selectedRegion() != d->display.highlightedRegion && regions_->hasMatches())
      regions_->selectRegion(d->display.highlightedRegion);
  } else if (shownColouring_) {
    regions_->clear();
    shownColouring_ = nullptr;
  }
}

void DatasetDocks::buildHierarchy() {
  using Level = RegionMatchPanel::Level;
  const DatasetDocument* d = engine_.workspace().dataset(shownDataset_);
  const QStringList columns = regionColumns();
  if (!d || columns.isEmpty()) return;
  const std::string path = d->path.toStdString();
  std::shared_ptr<const CellTable> cells = d->cells;
  engine_.tasks().run<std::vector<Level>>(
      QStringLiteral("dataset:%1/hierarchy").arg(d->id), tr("Reading the regions of %1").arg(d->name),
      [path, cells, columns](const CancellationToken&) {
        std::vector<Level> levels;
        std::vector<std::int32_t> previous;
        for (const QString& column : columns) {
          const ObsLabels l = readObsLabels(path, column.toStdString());
          Level level;
          level.column = column;
          level.names = l.names;
          level.colours = readObsColours(path, column.toStdString());
          if (level.colours.size() != level.names.size()) level.colours = categoricalPalette(level.names.size());
          std::vector<std::int32_t> codes;
          codes.reserve(cells->fileRow.size());
          for (std::int64_t r : cells->fileRow) codes.push_back(l.codes.at(static_cast<std::size_t>(r)));
          level.sizes.assign(l.names.size(), 0);
          for (std::int32_t code : codes)
            if (code >= 0 && static_cast<std::size_t>(code) < level.sizes.size())
              ++level.sizes[static_cast<std::size_t>(code)];
          // The links `segment` writes: each region under the coarser region holding most of its cells.
          level.parent = levels.empty() ? std::vector<std::int32_t>(l.names.size(), -1)
                                        : linkResolutions(previous, codes, static_cast<int>(l.names.size()));
          previous = std::move(codes);
          levels.push_back(std::move(level));
        }
        return levels;
      },
      [this](std::vector<Level> levels) { regions_->setHierarchy(levels); });
}

} // namespace atlascope::app
