#pragma once
// The cells dock: what the open dataset holds, colour by cell type / section / a gene (searchable
// list), point size, a legend of the categories, and the picked cell's details.
#include "core/CellTable.h"

#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QSlider;

namespace atlascope::app {

class Engine;

class CellPanel : public QWidget {
  Q_OBJECT
public:
  explicit CellPanel(QWidget* parent = nullptr);

  // nullptr: no dataset. `obsColumns`: further columns to colour by (e.g. regions_k25).
  void setDataset(const CellTable* cells, const std::vector<std::string>& obsColumns = {});
  void setLegend(const std::vector<std::string>& names, const std::vector<std::array<std::uint8_t, 3>>& colours);
  void setCellInfo(const QString& html);
  // Binds the panel to the workspace's current dataset: its colouring, point size and legend
  // filter are read from the model and every change goes back to it as an undoable command.
  void attach(Engine& engine);

signals:
  void colourByCategory(QString what); // "type", "section" or "obs:<column>"
  void colourByGene(QString gene);
  void pointSizeChanged(double pixels);
  // The legend's check boxes: which categories of the current colouring are drawn (by code).
  // Filters cells by type, section or region: uncheck an entry to hide its cells.
  void categoriesShown(std::vector<bool> shown);

private:
  void showDataset(Engine& engine);   // the current dataset's cells, columns and display
  void showColouring(Engine& engine); // its legend (with user names and matched colours)
  const CellTable* cells_ = nullptr;
  QLabel* summary_;
  QComboBox* colourBy_;
  QLineEdit* gene_;
  QSlider* pointSize_;
  QListWidget* legend_;
  std::size_t legendCategories_ = 0; // categories of the current legend (checkable or not)
  QString legendFor_;                // the colouring the legend shows
  std::vector<std::string> legendNames_;
  std::vector<std::array<std::uint8_t, 3>> legendColours_;
  QLabel* cellInfo_;
};

} // namespace atlascope::app
