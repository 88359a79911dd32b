#include "app/gui/AtlasTreeTabs.h"

#include "app/gui/RegionTreePanel.h"
#include "app/scene/Engine.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QPushButton>
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
  auto* templateBox = new QCheckBox(tr("Template"), page);
  templateBox->setObjectName(QStringLiteral("templateCheck%1").arg(id));
  templateBox->setToolTip(tr("The atlas's reference template: a translucent slice on the section plane (the middle "
                             "coronal plane without a section) and the background of the 2D section view"));
  connect(templateBox, &QCheckBox::toggled, this, [&ws, id](bool on) { ws.setTemplateShown(id, on); });
  row->addWidget(templateBox);
  auto* boundariesBox = new QCheckBox(tr("2D boundaries"), page);
  boundariesBox->setObjectName(QStringLiteral("boundariesCheck%1").arg(id));
  boundariesBox->setToolTip(tr("The atlas's structure boundaries on the 2D section view's plane, over the cells "
                               "(each atlas in its own colour)"));
  connect(boundariesBox, &QCheckBox::toggled, this, [&ws, id](bool on) { ws.setBoundariesShown(id, on); });
  row->addWidget(boundariesBox);
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
  auto* boundaries = it->second->findChild<QCheckBox*>(QStringLiteral("boundariesCheck%1").arg(id));
  boundaries->blockSignals(true);
  boundaries->setChecked(doc->boundariesShown);
  boundaries->blockSignals(false);
  auto* box = it->second->findChild<QCheckBox*>(QStringLiteral("templateCheck%1").arg(id));
  const Atlas* atlas = engine_.atlas(id);
  const bool available = atlas && atlas->hasReference();
  box->blockSignals(true);
  box->setChecked(doc->templateShown);
  box->blockSignals(false);
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
