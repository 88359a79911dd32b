#pragma once
// The region tree dock: the ontology as a tree (collapsed below the top levels), a search box
// matching acronym or name that expands to the hits, a visibility check box per region, and
// opacity / colour controls for the selected region.
#include "app/workspace/Workspace.h"
#include "core/StructureTree.h"

#include <QColor>
#include <QWidget>

#include <optional>
#include <vector>

class QLabel;
class QLineEdit;
class QPushButton;
class QSlider;
class QSortFilterProxyModel;
class QStandardItem;
class QStandardItemModel;
class QTreeView;

namespace atlascope::app {

class Engine;

class RegionTreePanel : public QWidget {
  Q_OBJECT
public:
  explicit RegionTreePanel(QWidget* parent = nullptr);

  void setTree(const StructureTree* tree);
  // Binds the tree to one atlas of the engine (the window's by default) and the workspace's
  // structure displays: check boxes, opacity and colour read from the model, every change sent to
  // it as an undoable command. The tree appears when the atlas is read.
  void attach(Engine& engine, AtlasId atlas = kMainAtlas);
  void setChecked(int structureIndex, bool checked); // no visibilityChanged signal
  bool isChecked(int structureIndex) const;
  // Selects a structure, making it visible in the tree (expands its ancestors, clears a search
  // that hides it).
  void select(int structureIndex);
  std::optional<int> selected() const;
  // Shows the selected region's display values in the opacity/colour controls.
  void setDisplayControls(double opacity, const QColor& colour);
  // Structure indices of the rows the tree shows now (after filtering), in display order.
  std::vector<int> visibleRows() const;

signals:
  void visibilityChanged(int structureIndex, bool visible);
  void selectionChanged(int structureIndex); // -1: none
  void opacityChanged(int structureIndex, double opacity);
  void colourChanged(int structureIndex, QColor colour);
  void colourReset(int structureIndex);

private:
  void applyFilter(const QString& text);
  void expandDefault();
  QModelIndex viewIndexOf(int structureIndex) const;

  const StructureTree* tree_ = nullptr;
  QLineEdit* search_;
  QTreeView* view_;
  QStandardItemModel* model_;
  QSortFilterProxyModel* proxy_;
  QLabel* info_;
  QSlider* opacity_;
  QPushButton* colour_;
  QPushButton* resetColour_;
  std::vector<QStandardItem*> items_; // by structure index
  bool updating_ = false;
};

} // namespace atlascope::app
