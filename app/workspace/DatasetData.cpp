#include "app/workspace/DatasetData.h"

#include "app/workspace/DatasetGuard.h"
#include "core/FileSystem.h"
#include "core/GeneStore.h"
#include "core/Palette.h"
#include "core/RegionNames.h"

#include <QThread>

#include <algorithm>
#include <atomic>

namespace atlascope::app {

namespace {
// From this many cells on, a gene is read through the cached gene-major store (seconds instead of
// a pass over the whole matrix for each gene).
constexpr std::size_t kGeneStoreCells = 1000000;
std::atomic<int> columnReadDelayMs{0};

QString readChannel(DatasetId id) { return QStringLiteral("dataset:%1/read").arg(id); }
QString colourChannel(DatasetId id) { return QStringLiteral("dataset:%1/colour").arg(id); }

std::vector<std::array<std::uint8_t, 3>> coloursFor(const std::vector<std::array<std::uint8_t, 3>>& own,
                                                    std::size_t n) {
  return own.size() == n ? own : categoricalPalette(n);
}
} // namespace

std::vector<std::string> displayNames(const DatasetDocument& d, const CellColouring& c) {
  std::vector<std::string> names = c.names;
  const auto it = d.regionNames.find(c.colourBy);
  if (it == d.regionNames.end()) return names;
  for (const auto& [code, name] : it->second)
    if (code >= 0 && static_cast<std::size_t>(code) < names.size())
      names[static_cast<std::size_t>(code)] = name.toStdString();
  return names;
}

std::vector<std::array<std::uint8_t, 3>> displayColours(const DatasetDocument& d, const CellColouring& c) {
  std::vector<std::array<std::uint8_t, 3>> colours = c.colours;
  const auto it = d.regionColours.find(c.colourBy);
  if (it == d.regionColours.end()) return colours;
  for (const auto& [code, rgb] : it->second)
    if (code >= 0 && static_cast<std::size_t>(code) < colours.size()) colours[static_cast<std::size_t>(code)] = rgb;
  return colours;
}

std::vector<std::uint8_t> shownCells(const DatasetDisplay& x, const CellColouring& c) {
  std::vector<std::uint8_t> mask;
  if (!c.categorical || (x.highlightedRegion < 0 && x.hiddenCategories.empty())) return mask;
  std::vector<std::uint8_t> shown(c.names.size(), 1);
  for (int h : x.hiddenCategories)
    if (h >= 0 && static_cast<std::size_t>(h) < shown.size()) shown[static_cast<std::size_t>(h)] = 0;
  mask.resize(c.codes.size());
  for (std::size_t i = 0; i < mask.size(); ++i) {
    const std::int32_t code = c.codes[i];
    mask[i] =
        x.highlightedRegion >= 0 ? code == x.highlightedRegion : (code < 0 || shown[static_cast<std::size_t>(code)]);
  }
  return mask;
}

DatasetData::DatasetData(Workspace& workspace, TaskRunner& tasks, QString cacheDir, QObject* parent)
    : QObject(parent), ws_(workspace), tasks_(tasks), cacheDir_(std::move(cacheDir)) {
  connect(&ws_, &Workspace::datasetAdded, this, [this](DatasetId id) {
    if (const DatasetDocument* d = ws_.dataset(id); d && !d->cells) read(id);
  });
  connect(&ws_, &Workspace::datasetLoaded, this, &DatasetData::resolve);
  connect(&ws_, &Workspace::datasetChanged, this, &DatasetData::resolve);
  connect(&ws_, &Workspace::datasetRemoved, this, [this](DatasetId id) {
    // Whatever was being read for it is dropped; its colouring with it.
    tasks_.invalidatePrefix(QStringLiteral("dataset:%1/").arg(id));
    colourings_.erase(id);
  });
}

const CellColouring* DatasetData::colouring(DatasetId id) const {
  const auto it = colourings_.find(id);
  return it == colourings_.end() ? nullptr : &it->second;
}

bool DatasetData::reading(DatasetId id) const { return tasks_.isRunning(readChannel(id)); }

void DatasetData::cancelReading(DatasetId id) {
  tasks_.invalidate(readChannel(id));
  const DatasetDocument* d = ws_.dataset(id);
  if (d && !d->cells) ws_.discardDataset(id);
}

void DatasetData::setColumnReadDelayForTesting(int ms) { columnReadDelayMs = ms; }

void DatasetData::read(DatasetId id) {
  const DatasetDocument* d = ws_.dataset(id);
  const std::string path = d->path.toStdString();
  const ColumnOptions columns = d->columns;
  struct Read {
    std::shared_ptr<const CellTable> cells;
    std::vector<std::string> obs;
  };
  // Failures are handled here rather than through failed(): the entry must go with its message.
  struct Outcome {
    std::optional<Read> read;
    QString error;
  };
  tasks_.run<Outcome>(
      readChannel(id), tr("Reading %1").arg(d->path),
      [path, columns](const CancellationToken&) -> Outcome {
        try {
          Read r;
          auto cells = std::make_shared<const CellTable>(readCellTable(path, columns));
          // A dataset the window cannot show is refused here, before anything replaces the open
          // ones (issue 14): the entry goes with the reason, the others stay.
          checkOpenable(*cells, path, columns);
          r.cells = std::move(cells);
          // Columns to colour by besides type and section (e.g. regions_k25 written by segment).
          if (!isTablePath(path))
            for (const auto& c : listObsColumns(path))
              if (c != "brain_section_label" && c != "section" && c != "subclass") r.obs.push_back(c);
          return {r, {}};
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          return {std::nullopt, QString::fromUtf8(e.what())};
        }
      },
      [this, id](Outcome o) {
        const DatasetDocument* doc = ws_.dataset(id);
        if (!doc) return;
        if (!o.read) {
          const QString path = doc->path;
          ws_.discardDataset(id);
          emit readFailed(id, path, o.error);
          return;
        }
        ws_.setDatasetCells(id, std::move(o.read->cells), std::move(o.read->obs));
      });
}

void DatasetData::resolve(DatasetId id) {
  const DatasetDocument* d = ws_.dataset(id);
  if (!d || !d->cells) return;
  const QString by = d->display.colourBy;
  const auto have = colourings_.find(id);
  if (have != colourings_.end() && have->second.colourBy == by && have->second.cells == d->cells.get()) return;
  if (tasks_.isRunning(colourChannel(id)) && pending_.count(id) && pending_[id] == by) return; // already on its way
  // Types and sections are in the cells already: coloured at once, and whatever column or gene was
  // on its way for this dataset is dropped.
  if (by == "type" || by == "section" || by.isEmpty()) {
    tasks_.invalidate(colourChannel(id));
    pending_.erase(id);
    CellColouring c;
    c.colourBy = by;
    c.cells = d->cells.get();
    const CellTable& cells = *d->cells;
    if (by == "section") {
      c.codes = cells.section;
      c.names = cells.sectionNames;
      c.colours = categoricalPalette(c.names.size());
    } else {
      c.codes = cells.cellType;
      c.names = cells.types.names;
      c.colours = coloursFor(cells.types.colours, c.names.size());
    }
    colourings_[id] = std::move(c);
    emit colouringReady(id);
    return;
  }
  std::shared_ptr<const CellTable> cells = d->cells;
  const std::string path = d->path.toStdString(),
                    cache = cacheDir_.isEmpty() ? defaultCacheDir() : cacheDir_.toStdString();
  const ColumnOptions columns = d->columns;
  pending_[id] = by;
  tasks_.run<CellColouring>(
      colourChannel(id), tr("Colouring %1 by %2").arg(d->name, by),
      [cells, by, path, cache, columns](const CancellationToken& cancel) -> CellColouring {
        CellColouring c;
        c.colourBy = by;
        c.cells = cells.get();
        const std::vector<std::int64_t>& rows = cells->fileRow;
        try {
          if (by.startsWith("gene:")) {
            c.categorical = false;
            c.gene = by.mid(5);
            const auto it = std::find(cells->genes.begin(), cells->genes.end(), c.gene.toStdString());
            if (it == cells->genes.end()) throw Error("no gene '" + c.gene.toStdString() + "' in this dataset");
            const std::int64_t g = it - cells->genes.begin();
            Progress progress;
            progress.cancel = &cancel;
            const std::vector<float> all = rows.size() >= kGeneStoreCells
                                               ? GeneStore::openOrBuild(path, columns, cache, progress).readGene(g)
                                               : ExpressionSource(path, columns).readGene(g);
            c.values.reserve(rows.size());
            for (std::int64_t r : rows) c.values.push_back(all.at(static_cast<std::size_t>(r)));
          } else {
            if (const int ms = columnReadDelayMs.load(); ms > 0) QThread::msleep(static_cast<unsigned long>(ms));
            cancel.throwIfCancelled();
            const ObsLabels l = readObsLabels(path, by.toStdString());
            c.names = l.names;
            c.codes.reserve(rows.size());
            for (std::int64_t r : rows) {
              const std::int32_t code = l.codes.at(static_cast<std::size_t>(r));
              c.codes.push_back(code >= 0 && static_cast<std::size_t>(code) < c.names.size() ? code : -1);
            }
            c.colours = coloursFor(readObsColours(path, by.toStdString()), c.names.size());
            // Discovered regions carry names saying where they are ("k25-3 · CP 82%", written by
            // segment or edited by a user): those are what legends and docks show.
            if (auto named = readRegionNames(path, by.toStdString()); named.size() == c.names.size())
              c.names = std::move(named);
          }
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          c = {};
          c.colourBy = by;
          c.error = QString::fromUtf8(e.what());
        }
        return c;
      },
      [this, id, cells](CellColouring c) {
        pending_.erase(id);
        // Only onto the very cells it was read for, and only if that colouring is still wanted.
        const DatasetDocument* doc = ws_.dataset(id);
        if (!doc || doc->cells != cells || doc->display.colourBy != c.colourBy) return;
        if (!c.error.isEmpty()) {
          emit colouringFailed(id, c.error);
          return;
        }
        colourings_[id] = std::move(c);
        emit colouringReady(id);
      });
}

} // namespace atlascope::app
