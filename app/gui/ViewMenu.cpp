#include "app/gui/ViewMenu.h"

#include "app/gui/CameraReactions.h"
#include "app/scene/Engine.h"

#include <QAction>
#include <QActionGroup>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QSignalBlocker>
#include <QToolBar>

namespace atlascope::app {

ViewMenu::ViewMenu(Engine& engine, QMainWindow* window, std::function<int()> activeView)
    : QObject(window), engine_(engine), active_(std::move(activeView)) {
  Workspace& ws = engine_.workspace();
  menu_ = window->menuBar()->addMenu(tr("&View"));
  bar_ = window->addToolBar(tr("Camera"));
  bar_->setObjectName("cameraToolbar");
  auto scene = [this] { return engine_.scene(); };
  const struct {
    viewer::CameraPreset preset;
    const char* label;
    const char* key;
  } presets[] = {{viewer::CameraPreset::Anterior, QT_TR_NOOP("Anterior"), "1"},
                 {viewer::CameraPreset::Posterior, QT_TR_NOOP("Posterior"), "2"},
                 {viewer::CameraPreset::Dorsal, QT_TR_NOOP("Dorsal"), "3"},
                 {viewer::CameraPreset::Ventral, QT_TR_NOOP("Ventral"), "4"},
                 {viewer::CameraPreset::Left, QT_TR_NOOP("Left"), "5"},
                 {viewer::CameraPreset::Right, QT_TR_NOOP("Right"), "6"}};
  for (const auto& p : presets) {
    QAction* a = menu_->addAction(tr(p.label));
    a->setObjectName(QStringLiteral("camera_%1").arg(viewer::presetName(p.preset)));
    a->setShortcut(QKeySequence(QStringLiteral("Ctrl+%1").arg(p.key)));
    new CameraPresetReaction(a, p.preset, scene, active_);
    bar_->addAction(a);
  }
  menu_->addSeparator();
  QAction* reset = menu_->addAction(tr("&Reset camera"));
  reset->setObjectName("camera_reset");
  reset->setShortcut(QKeySequence(tr("Ctrl+0")));
  new ResetCameraReaction(reset, scene, active_);
  bar_->addAction(reset);
  // Camera bookmarks: Ctrl+B keeps the active view's camera; Ctrl+Alt+N goes back to bookmark N.
  QAction* bookmark = menu_->addAction(tr("&Bookmark camera"));
  bookmark->setObjectName("camera_bookmark");
  bookmark->setShortcut(QKeySequence(tr("Ctrl+B")));
  connect(bookmark, &QAction::triggered, this, [this, &ws] {
    const int view = active_();
    if (view >= 0 && view < ws.viewCount()) ws.addBookmark(ws.camera(ws.view(view).cameraGroup));
  });
  bookmarks_ = menu_->addMenu(tr("Camera boo&kmarks"));
  bookmarks_->setObjectName("cameraBookmarks");
  bookmarks_->setEnabled(false);

  menu_->addSeparator();
  layouts_ = menu_->addMenu(tr("&Layout"));
  layouts_->setObjectName("layoutMenu");
  auto* group = new QActionGroup(this);
  for (auto [rows, cols] : {std::pair{1, 1}, {1, 2}, {1, 3}, {2, 2}, {2, 3}, {3, 3}}) {
    QAction* a = layouts_->addAction(tr("%1 x %2").arg(rows).arg(cols));
    a->setObjectName(QStringLiteral("layout_%1x%2").arg(rows).arg(cols));
    a->setCheckable(true);
    a->setData(QPoint(cols, rows));
    group->addAction(a);
    connect(a, &QAction::triggered, this, [&ws, rows = rows, cols = cols] { ws.setLayout(rows, cols); });
  }
  QAction* side = menu_->addAction(tr("&Side by side (CCF | cells)"));
  side->setObjectName("view_side_by_side");
  side->setCheckable(true);
  side->setShortcut(QKeySequence(tr("Ctrl+D")));
  side->setToolTip(tr("The CCF and the cells in two views that share one camera; off: the cells overlaid on the CCF"));
  connect(side, &QAction::triggered, this, [&ws](bool on) { ws.setSideBySide(on); });
  bar_->addAction(side);
  views_ = menu_->addMenu(tr("&Views"));
  views_->setObjectName("viewsMenu");
  QAction* surfaces = menu_->addAction(tr("Region &surfaces"));
  surfaces->setObjectName("view_region_surfaces");
  surfaces->setCheckable(true);
  surfaces->setShortcut(QKeySequence(tr("Ctrl+G")));
  surfaces->setToolTip(
      tr("The discovered regions the current dataset is coloured by (regions_k…) as translucent surfaces, "
         "voxelised on the CCF grid"));
  connect(surfaces, &QAction::triggered, this, [&ws](bool on) { ws.setRegionSurfaces(ws.currentDataset(), on); });
  menu_->addSeparator();

  connect(&ws, &Workspace::layoutChanged, this, &ViewMenu::rebuildViews);
  for (auto signal : {&Workspace::datasetLoaded, &Workspace::datasetRemoved, &Workspace::datasetChanged,
                      &Workspace::currentDatasetChanged})
    connect(&ws, signal, this, &ViewMenu::rebuildViews);
  for (auto signal : {&Workspace::atlasLoaded, &Workspace::atlasRemoved})
    connect(&ws, signal, this, &ViewMenu::rebuildViews);
  connect(&ws, &Workspace::bookmarksChanged, this, &ViewMenu::rebuildBookmarks);
  rebuildViews();
}

QMenu* ViewMenu::viewMenu(int view) const {
  return views_->findChild<QMenu*>(QStringLiteral("viewMenu_%1").arg(view + 1));
}

void ViewMenu::rebuildViews() {
  Workspace& ws = engine_.workspace();
  views_->clear();
  for (QMenu* old : views_->findChildren<QMenu*>(QString(), Qt::FindDirectChildrenOnly)) old->deleteLater();
  for (int v = 0; v < ws.viewCount(); ++v) {
    QMenu* m = views_->addMenu(tr("View %1").arg(v + 1));
    m->setObjectName(QStringLiteral("viewMenu_%1").arg(v + 1));
    auto layer = [&](const QString& key, const QString& text) {
      QAction* a = m->addAction(text);
      a->setCheckable(true);
      a->setChecked(ws.view(v).layers.contains(key));
      a->setObjectName(QStringLiteral("view%1_%2").arg(v + 1).arg(QString(key).replace(':', '_')));
      connect(a, &QAction::triggered, this, [&ws, v, key](bool on) { ws.setLayerShown(v, key, on); });
    };
    for (AtlasId id : ws.atlasIds())
      if (const AtlasDocument* a = ws.atlas(id); id == kMainAtlas || a->loaded)
        layer(atlasLayer(id), a->name.isEmpty() ? tr("Allen CCF") : a->name);
    for (DatasetId id : ws.loadedDatasetIds()) {
      const QString name = ws.dataset(id)->name;
      layer(cellsLayer(id), tr("%1: cells").arg(name));
      layer(surfacesLayer(id), tr("%1: region surfaces").arg(name));
    }
    m->addSeparator();
    QAction* link = m->addAction(tr("Linked camera"));
    link->setObjectName(QStringLiteral("view%1_linked").arg(v + 1));
    link->setCheckable(true);
    link->setChecked(ws.viewLinked(v));
    link->setEnabled(v > 0); // the first view is the one the others link to
    connect(link, &QAction::triggered, this, [&ws, v](bool on) { ws.setViewLinked(v, on); });
  }
  syncChecks();
}

void ViewMenu::syncChecks() {
  const Workspace& ws = engine_.workspace();
  for (QAction* a : layouts_->actions()) {
    const QPoint cr = a->data().toPoint();
    const QSignalBlocker block(a);
    a->setChecked(cr.x() == ws.columns() && cr.y() == ws.rows());
  }
  for (const char* name : {"view_side_by_side", "view_region_surfaces"})
    if (auto* a = menu_->findChild<QAction*>(name); a) {
      const QSignalBlocker block(a);
      const DatasetDocument* d = ws.dataset(ws.currentDataset());
      a->setChecked(QByteArray(name) == "view_side_by_side" ? ws.sideBySide() : d && d->display.regionSurfaces);
    }
}

void ViewMenu::rebuildBookmarks() {
  Workspace& ws = engine_.workspace();
  bookmarks_->clear();
  const auto& marks = ws.bookmarks();
  for (std::size_t i = 0; i < marks.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    QAction* go = bookmarks_->addAction(tr("Bookmark %1").arg(n));
    go->setObjectName(QStringLiteral("camera_bookmark_%1").arg(n));
    if (n <= 9) go->setShortcut(QKeySequence(QStringLiteral("Ctrl+Alt+%1").arg(n)));
    connect(go, &QAction::triggered, this, [this, &ws, i, n] {
      const int view = active_();
      if (view < 0 || view >= ws.viewCount() || i >= ws.bookmarks().size()) return;
      ws.setCamera(ws.view(view).cameraGroup, ws.bookmarks()[i], tr("Go to bookmark %1").arg(n));
    });
  }
  bookmarks_->setEnabled(!marks.empty());
}

} // namespace atlascope::app
