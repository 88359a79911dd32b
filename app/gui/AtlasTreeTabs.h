#pragma once
// The atlases dock: one tab per atlas of the workspace (the window's first, then each atlas opened
// beside it, named as it names itself), each holding that atlas's structure tree bound to the
// model, a "Template" check box (its reference template drawn under the section and in the 2D
// view; disabled when the atlas ships none), "2D boundaries" (its boundaries over the 2D section
// view's cells) and, for atlases opened beside the window's, "Close".
// Tabs follow the model: undo of an opening removes its tab, a session brings its atlases' tabs.
#include "app/workspace/Workspace.h"

#include <QTabWidget>

#include <map>
#include <optional>

namespace atlascope::app {

class Engine;
class RegionTreePanel;

class AtlasTreeTabs : public QTabWidget {
  Q_OBJECT
public:
  explicit AtlasTreeTabs(Engine& engine, QWidget* parent = nullptr);

  // Shows the atlas's tab and selects the structure there (as a click in its tree does).
  void select(AtlasId atlas, int structure);
  AtlasId currentAtlas() const;
  std::optional<int> selected(AtlasId atlas) const;

signals:
  void selectionChanged(AtlasId atlas, int structure); // -1: none

private:
  void addAtlasTab(AtlasId id);
  void removeAtlasTab(AtlasId id);
  void updateTemplateBox(AtlasId id); // and the boundaries box: both follow the model

  Engine& engine_;
  std::map<AtlasId, QWidget*> pages_;
  std::map<AtlasId, RegionTreePanel*> trees_;
};

} // namespace atlascope::app
