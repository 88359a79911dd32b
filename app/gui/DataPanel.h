#pragma once
// The Data dock: every open dataset (name, cells, reading or not), its visibility as a check box,
// its name editable in place, and Close; the selected one is the workspace's current dataset, the
// one the Cells, Discover regions and Train docks act on. Bound to the workspace: it holds no
// state of its own and every change it makes is an undoable command.
#include <QWidget>

class QListWidget;
class QPushButton;

namespace atlascope::app {

class Engine;

class DataPanel : public QWidget {
  Q_OBJECT
public:
  explicit DataPanel(Engine& engine, QWidget* parent = nullptr);

private:
  void refresh();
  Engine& engine_;
  QListWidget* list_;
  QPushButton* close_;
  bool updating_ = false;
};

} // namespace atlascope::app
