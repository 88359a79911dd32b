#include "app/gui/AtlasTreeTabs.h"

#include "app/gui/RegionTreePanel.h"
#include "app/scene/Engine.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QPushButton>
#include <QSignalBlocker>
#include <QVBoxLayout>

namespace atlascope::app {

AtlasTreeTabs::AtlasTreeTabs(Engine& engine, QWidget* parent) : QTabWidget(parent), engine_(engine) {
  setObjectName("atlasTabs");
  setDocumentMode(true);
  setTabBarAutoHide(true); // one atlas: no tab bar, the dock is its tree
  Workspace& ws = engine.workspace();
  addAtlasTab(kMainAtlas);
  connect(&ws, &Workspace::atlasLoaded, this, [this](AtlasId id) {
    if (!pages_.count(id))
      addAtlasTab(id);
    else
      updateTemplateBox(id);
  });
  connect(&ws, &Workspace::atlasRemoved, this, &AtlasTreeTabs::removeAtlasTab);
  connect(&ws, &Workspace::atlasChanged, this, &AtlasTreeTabs::updateTemplateBox);
}

void AtlasTreeTabs::addAtlasTab(AtlasId id) {
  Workspace& ws = engine_.workspace();
  auto* page = new QWidget(this);
  auto* layout = new QVBoxLayout(page);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* tree = new RegionTreePanel(page);
  tree->setObjectName(QStringLiteral("atlasTree%1").arg(id));
  tree->attach(engine_, id);
  layout->addWidget(tree, 1);
  auto* row = new QHBoxLayout;
  // The atlas's display flags, each a check box that sets it in the model (updateTemplateBox
  // follows the model back).
  auto addFlag = [&](const char* name, const QString& text, const QString& tip, void (Workspace::*set)(AtlasId, bool)) {
    auto* box = new QCheckBox(text, page);
    box->setObjectName(QStringLiteral("%1%2").arg(QLatin1String(name)).arg(id));
    box->setToolTip(tip);
    connect(box, &QCheckBox::toggled, this, [&ws, id, set](bool on) { (ws.*set)(id, on); });
    row->addWidget(box);
  };
  addFlag("templateCheck", tr("Template"),
          tr("The atlas's reference template: a translucent slice on the section plane (the middle coronal plane "
             "without a section) and the background of the 2D section view"),
          &Workspace::setTemplateShown);
  addFlag("boundariesCheck", tr("2D boundaries"),
          tr("The atlas's structure boundaries on the 2D section view's plane, over the cells (each atlas in its own "
             "colour)"),
          &Workspace::setBoundariesShown);
  row->addStretch(1);
  if (id != kMainAtlas) {
    auto* close = new QPushButton(tr("Close atlas"), page);
    close->setObjectName(QStringLiteral("closeAtlas%1").arg(id));
    connect(close, &QPushButton::clicked, this, [&ws, id] { ws.closeAtlas(id); });
    row->addWidget(close);
  }
  layout->addLayout(row);
  connect(tree, &RegionTreePanel::selectionChanged, this, [this, id](int i) { emit selectionChanged(id, i); });
  pages_[id] = page;
  trees_[id] = tree;
  // In id order (the window's first), whatever order undo and redo bring them back in.
  int at = 0;
  for (const auto& [other, p] : pages_)
    if (other < id) ++at;
  const AtlasDocument* doc = ws.atlas(id);
  insertTab(at, page, doc && !doc->name.isEmpty() ? doc->name : tr("Allen CCF"));
  if (id != kMainAtlas) setCurrentWidget(page);
  updateTemplateBox(id);
  if (id == kMainAtlas) // its name arrives when it is read
    connect(&ws, &Workspace::atlasLoaded, this, [this](AtlasId which) {
      if (which != kMainAtlas) return;
      if (const AtlasDocument* d = engine_.workspace().atlas(kMainAtlas))
        setTabText(indexOf(pages_[kMainAtlas]), d->name);
      updateTemplateBox(kMainAtlas);
    });
}

void AtlasTreeTabs::removeAtlasTab(AtlasId id) {
  const auto it = pages_.find(id);
  if (it == pages_.end() || id == kMainAtlas) return;
  removeTab(indexOf(it->second));
  it->second->deleteLater();
  pages_.erase(it);
  trees_.erase(id);
}

void AtlasTreeTabs::updateTemplateBox(AtlasId id) {
  const auto it = pages_.find(id);
  const AtlasDocument* doc = engine_.workspace().atlas(id);
  if (it == pages_.end() || !doc) return;
  if (!doc->name.isEmpty()) setTabText(indexOf(it->second), doc->name); // renamed when a namesake was read
  auto follow = [&](const char* name, bool checked) {
    auto* box = it->second->findChild<QCheckBox*>(QStringLiteral("%1%2").arg(QLatin1String(name)).arg(id));
    const QSignalBlocker quiet(box);
    box->setChecked(checked);
    return box;
  };
  follow("boundariesCheck", doc->boundariesShown);
  auto* box = follow("templateCheck", doc->templateShown);
  const Atlas* atlas = engine_.atlas(id);
  const bool available = atlas && atlas->hasReference();
  box->setEnabled(available);
  if (atlas && !available)
    box->setToolTip(tr("This atlas has no reference template (or it was not read: atlases "
                       "finer than 20 um open without it)"));
}

void AtlasTreeTabs::select(AtlasId atlas, int structure) {
  const auto it = trees_.find(atlas);
  if (it == trees_.end()) return;
  setCurrentWidget(pages_.at(atlas));
  it->second->select(structure);
}

AtlasId AtlasTreeTabs::currentAtlas() const {
  for (const auto& [id, page] : pages_)
    if (page == currentWidget()) return id;
  return kMainAtlas;
}

std::optional<int> AtlasTreeTabs::selected(AtlasId atlas) const {
  const auto it = trees_.find(atlas);
  return it == trees_.end() ? std::nullopt : it->second->selected();
}

} // namespace atlascope::app
