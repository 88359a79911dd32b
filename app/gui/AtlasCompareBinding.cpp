#include "app/gui/AtlasCompareBinding.h"

#include "app/gui/AtlasComparePanel.h"
#include "app/gui/AtlasTreeTabs.h"
#include "app/scene/Engine.h"

#include <QDockWidget>

namespace atlascope::app {

AtlasCompareBinding::AtlasCompareBinding(Engine& engine, AtlasComparePanel* panel, AtlasTreeTabs* tabs,
                                         QDockWidget* dock)
    : QObject(panel), engine_(engine), panel_(panel), tabs_(tabs), dock_(dock) {
  Workspace& ws = engine.workspace();
  for (auto signal : {&Workspace::atlasLoaded, &Workspace::atlasRemoved})
    connect(&ws, signal, this, [this] {
      // The dock appears when a second atlas arrives and goes with the last but one; a user who
      // closed it meanwhile is not overruled by an undo or redo.
      int loaded = 0;
      for (AtlasId id : engine_.workspace().atlasIds())
        loaded += engine_.atlas(id) != nullptr && engine_.workspace().atlas(id)->loaded;
      if (loaded > 1 && loadedBefore_ < 2) dock_->show();
      if (loaded < 2) dock_->hide();
      loadedBefore_ = loaded;
      feed();
    });
  connect(dock, &QDockWidget::visibilityChanged, this, [this](bool shown) {
    if (shown) feed();
  });
  connect(tabs, &AtlasTreeTabs::selectionChanged, this,
          [this](AtlasId atlas, int structure) { panel_->showStructure(nameOf(atlas), structure); });
  connect(panel, &AtlasComparePanel::structureChosen, this, [this](const QString& name, int structure) {
    if (const auto it = ids_.find(name); it != ids_.end()) tabs_->select(it->second, structure);
  });
}

QString AtlasCompareBinding::nameOf(AtlasId id) const {
  for (const auto& [name, atlas] : ids_)
    if (atlas == id) return name;
  return {};
}

void AtlasCompareBinding::feed() {
  // A hidden dock (or one behind another tab) is not fed: feeding starts a comparison.
  if (!dock_->isVisible()) return;
  const Workspace& ws = engine_.workspace();
  std::vector<AtlasEntry> entries;
  ids_.clear();
  for (AtlasId id : ws.atlasIds()) {
    auto atlas = engine_.sharedAtlas(id);
    if (!atlas || (id != kMainAtlas && !ws.atlas(id)->loaded)) continue;
    QString name = ws.atlas(id)->name;
    if (ids_.count(name)) name += QStringLiteral(" (%1)").arg(id); // the same atlas opened twice
    ids_[name] = id;
    entries.push_back({name, std::move(atlas)});
  }
  panel_->setAtlases(std::move(entries));
}

} // namespace atlascope::app
