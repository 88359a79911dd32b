#pragma once
// The data behind the workspace's datasets, made in the background through the TaskRunner:
// - reading: a dataset entry added without cells (File > Open, a session, --open) is read; a read
//   that fails removes the entry and reports why, leaving every open dataset as it was;
// - colouring: each dataset's colourBy resolved to per-cell codes with names and colours (type,
//   section, any obs column, with the file's own colours) or to a gene's values. A result is
//   applied only to the dataset, and the very cells, it was read for: a slow column read that
//   finishes after its dataset closed, was replaced or was coloured otherwise is dropped.
#include "app/workspace/TaskRunner.h"
#include "app/workspace/Workspace.h"

#include <QObject>

#include <array>
#include <map>
#include <string>
#include <vector>

namespace atlascope::app {

struct CellColouring {
  QString colourBy;
  const CellTable* cells = nullptr; // the cells it was made for
  bool categorical = true;
  std::vector<std::int32_t> codes; // per cell (-1: missing)
  std::vector<std::string> names;  // per category, as the file has them
  std::vector<std::array<std::uint8_t, 3>> colours;
  std::vector<float> values; // per cell, for a gene
  QString gene;
  QString error; // why it could not be made (the previous colouring stays)
};

// The names and colours a legend shows: the user's region names and matched colours over the file's.
std::vector<std::string> displayNames(const DatasetDocument& d, const CellColouring& c);
std::vector<std::array<std::uint8_t, 3>> displayColours(const DatasetDocument& d, const CellColouring& c);

// Which cells are drawn: one flag per cell from the legend's filter, or the highlighted region's
// cells alone; empty when every cell is.
std::vector<std::uint8_t> shownCells(const DatasetDisplay& display, const CellColouring& colouring);

class DatasetData : public QObject {
  Q_OBJECT
public:
  // `cacheDir`: where gene-major stores of large datasets are kept (empty: defaultCacheDir()).
  DatasetData(Workspace& workspace, TaskRunner& tasks, QString cacheDir = {}, QObject* parent = nullptr);

  // The colouring of a dataset now (nullptr until the first one is read).
  const CellColouring* colouring(DatasetId id) const;
  bool reading(DatasetId id) const;
  // Stops reading a dataset; its entry goes, the open ones stay.
  void cancelReading(DatasetId id);
  // Tests: each obs-column read waits this long first (a slow disk).
  static void setColumnReadDelayForTesting(int ms);

signals:
  void readFailed(DatasetId id, QString path, QString message);
  void colouringReady(DatasetId id);
  void colouringFailed(DatasetId id, QString message);

private:
  void read(DatasetId id);
  void resolve(DatasetId id);

  Workspace& ws_;
  TaskRunner& tasks_;
  QString cacheDir_;
  std::map<DatasetId, CellColouring> colourings_;
  std::map<DatasetId, QString> pending_; // the colouring being read per dataset
};

} // namespace atlascope::app
