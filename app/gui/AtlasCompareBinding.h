#pragma once
// Feeds the Atlas comparison dock from the workspace: the atlases read (by their tab names, made
// unique), the structure selected in any atlas's tree, and a double click on one of its overlap
// rows selecting that structure in its atlas's tree. Comparing two 25 um atlases takes tens of
// seconds of CPU, so the panel is fed only while its dock is shown (a click on its tab starts
// the comparison), not whenever a second atlas opens.
#include "app/workspace/Workspace.h"

#include <QObject>

#include <map>

class QDockWidget;

namespace atlascope::app {

class AtlasComparePanel;
class AtlasTreeTabs;
class Engine;

class AtlasCompareBinding : public QObject {
  Q_OBJECT
public:
  AtlasCompareBinding(Engine& engine, AtlasComparePanel* panel, AtlasTreeTabs* tabs, QDockWidget* dock);

private:
  void feed();
  QString nameOf(AtlasId id) const;

  Engine& engine_;
  AtlasComparePanel* panel_;
  AtlasTreeTabs* tabs_;
  QDockWidget* dock_;
  std::map<QString, AtlasId> ids_; // the names the panel knows
  int loadedBefore_ = 1;           // atlases read before the last change
};

} // namespace atlascope::app
