#pragma once
// The View menu and the camera toolbar, bound to the workspace: camera presets and reset for the
// active view, camera bookmarks, the layout (1x1 to 3x3, or side by side), each view's layers and
// camera link, region surfaces of the current dataset. Every entry is an undoable command on the
// model; the check marks follow the model (undo, sessions).
#include <QObject>

#include <functional>

class QMainWindow;
class QMenu;
class QToolBar;

namespace atlascope::app {

class Engine;

class ViewMenu : public QObject {
  Q_OBJECT
public:
  // `activeView`: the view presets and bookmarks act on (the last one clicked).
  ViewMenu(Engine& engine, QMainWindow* window, std::function<int()> activeView);
  QMenu* menu() const { return menu_; }
  QToolBar* toolBar() const { return bar_; }
  // A view's own menu (its layers, its camera link), also shown on a right click in it.
  QMenu* viewMenu(int view) const;

private:
  void rebuildViews();
  void rebuildBookmarks();
  void syncChecks();

  Engine& engine_;
  std::function<int()> active_;
  QMenu* menu_;
  QMenu* layouts_;
  QMenu* views_;
  QMenu* bookmarks_;
  QToolBar* bar_;
};

} // namespace atlascope::app
