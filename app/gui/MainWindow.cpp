#include "app/gui/MainWindow.h"

#include "app/gui/CameraReactions.h"
#include "app/gui/RegionTreePanel.h"
#include "app/gui/ScreenshotReaction.h"
#include "app/gui/SurfaceLoader.h"
#include "app/gui/VtkView.h"

#include <QAction>
#include <QApplication>
#include <QDockWidget>
#include <QFutureWatcher>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QProgressBar>
#include <QStatusBar>
#include <QToolBar>
#include <QtConcurrent/QtConcurrent>

#include <vtkImageData.h>
#include <vtkRenderWindow.h>
#include <vtkWindowToImageFilter.h>

namespace atlascope::app {

MainWindow::MainWindow(MainWindowOptions options, QWidget* parent) : QMainWindow(parent), options_(std::move(options)) {
  setWindowTitle(tr("Atlascope"));
  resize(1280, 800);

  view_ = new VtkView(this);
  setCentralWidget(view_);

  panel_ = new RegionTreePanel(this);
  auto* dock = new QDockWidget(tr("Regions (Allen CCF)"), this);
  dock->setObjectName("regionDock");
  dock->setWidget(panel_);
  dock->setMinimumWidth(340);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  selectionLabel_ = new QLabel(this);
  selectionLabel_->setObjectName("selectionStatus");
  selectionLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  busy_ = new QProgressBar(this);
  busy_->setMaximumWidth(220);
  busy_->setRange(0, 0);
  busy_->setFormat(tr("loading"));
  statusBar()->addWidget(selectionLabel_, 1);
  statusBar()->addPermanentWidget(busy_);

  buildMenus();

  connect(panel_, &RegionTreePanel::visibilityChanged, this, &MainWindow::setStructureVisible);
  connect(panel_, &RegionTreePanel::selectionChanged, this, &MainWindow::onSelection);
  connect(panel_, &RegionTreePanel::opacityChanged, this, [this](int i, double o) {
    if (!scene_) return;
    scene_->setOpacity(i, o);
    renderViews();
  });
  connect(panel_, &RegionTreePanel::colourChanged, this, [this](int i, QColor c) {
    if (!scene_) return;
    scene_->setColour(i, {c.redF(), c.greenF(), c.blueF()});
    panel_->setDisplayControls(scene_->display(i).opacity, c);
    renderViews();
  });
  connect(panel_, &RegionTreePanel::colourReset, this, [this](int i) {
    if (!scene_) return;
    scene_->setColour(i, scene_->defaultDisplay(i).colour);
    onSelection(i);
    renderViews();
  });
  connect(view_, &VtkView::clicked, this, &MainWindow::onClicked);

  // Reading and decoding the 25 um CCF takes ~1.5 s: off the GUI thread.
  selectionLabel_->setText(tr("Loading the Allen CCF…"));
  struct Loaded {
    std::shared_ptr<Atlas> atlas;
    QString error;
  };
  auto* watcher = new QFutureWatcher<Loaded>(this);
  connect(watcher, &QFutureWatcher<Loaded>::finished, this, [this, watcher] {
    watcher->deleteLater();
    const Loaded loaded = watcher->result();
    if (!loaded.atlas) {
      loading_ = false;
      loadError_ = loaded.error;
      selectionLabel_->setText(tr("Could not load the atlas: %1").arg(loadError_));
      updateBusy();
      if (!qEnvironmentVariableIsSet("ATLASCOPE_NO_DIALOGS"))
        QMessageBox::critical(this, tr("Atlascope"), tr("Could not load the atlas:\n%1").arg(loadError_));
      emit idle();
      return;
    }
    atlas_ = std::make_unique<Atlas>(std::move(*loaded.atlas));
    onAtlasLoaded();
  });
  const AtlasPaths paths = options_.atlas;
  // Errors are caught in the worker: QtConcurrent would wrap them and lose the message.
  watcher->setFuture(QtConcurrent::run([paths]() -> Loaded {
    try {
      return {std::make_shared<Atlas>(Atlas::load(paths)), {}};
    } catch (const std::exception& e) {
      return {nullptr, QString::fromStdString(e.what())};
    }
  }));
}

MainWindow::~MainWindow() {
  delete loader_; // waits for running builds, which use cache_ and atlas_
  loader_ = nullptr;
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* shot = file->addAction(tr("Save &screenshot…"));
  shot->setShortcut(QKeySequence(tr("Ctrl+Shift+S")));
  new ScreenshotReaction(shot, this, [this](const QString& path, int scale) { saveViewImage(path, scale); });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);

  QMenu* viewMenu = menuBar()->addMenu(tr("&View"));
  QToolBar* bar = addToolBar(tr("Camera"));
  bar->setObjectName("cameraToolbar");
  auto scene = [this] { return scene_.get(); };
  auto render = [this] { renderViews(); };
  const struct { viewer::CameraPreset preset; const char* label; const char* key; } presets[] = {
      {viewer::CameraPreset::Anterior, QT_TR_NOOP("Anterior"), "1"}, {viewer::CameraPreset::Posterior, QT_TR_NOOP("Posterior"), "2"},
      {viewer::CameraPreset::Dorsal, QT_TR_NOOP("Dorsal"), "3"},     {viewer::CameraPreset::Ventral, QT_TR_NOOP("Ventral"), "4"},
      {viewer::CameraPreset::Left, QT_TR_NOOP("Left"), "5"},         {viewer::CameraPreset::Right, QT_TR_NOOP("Right"), "6"}};
  for (const auto& p : presets) {
    QAction* a = viewMenu->addAction(tr(p.label));
    a->setObjectName(QStringLiteral("camera_%1").arg(viewer::presetName(p.preset)));
    a->setShortcut(QKeySequence(QStringLiteral("Ctrl+%1").arg(p.key)));
    new CameraPresetReaction(a, p.preset, scene, render);
    bar->addAction(a);
  }
  viewMenu->addSeparator();
  QAction* reset = viewMenu->addAction(tr("&Reset camera"));
  reset->setObjectName("camera_reset");
  reset->setShortcut(QKeySequence(tr("Ctrl+0")));
  new ResetCameraReaction(reset, scene, render);
  bar->addAction(reset);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  connect(help->addAction(tr("&About Atlascope")), &QAction::triggered, this, [this] {
    QMessageBox::about(this, tr("About Atlascope"),
                       tr("<b>Atlascope</b> %1<br>A brain-atlas viewer for spatial transcriptomics.<br><br>"
                          "Allen CCF data (annotation, ontology): © 2015 Allen Institute for Brain Science. "
                          "Allen Mouse Brain Common Coordinate Framework v3, Wang et al., Cell 2020, "
                          "doi:10.1016/j.cell.2020.04.007.")
                           .arg(QApplication::applicationVersion()));
  });
}

void MainWindow::onAtlasLoaded() {
  viewer::SurfaceOptions surfaceOptions;
  surfaceOptions.downsampleAboveVoxels = 4'000'000; // whole brain, cortex: 50 um blocks (RegionSurface.h)
  cache_ = std::make_unique<viewer::SurfaceCache>(
      *atlas_, options_.cacheDir.isEmpty() ? viewer::defaultCacheDir() : options_.cacheDir.toStdString(), surfaceOptions);
  scene_ = std::make_unique<viewer::AtlasScene>(*atlas_);
  loader_ = new SurfaceLoader(*cache_);
  connect(loader_, &SurfaceLoader::surfaceReady, this, &MainWindow::onSurfaceReady);
  connect(loader_, &SurfaceLoader::failed, this, [this](int i, const QString& msg) {
    if (msg != QLatin1String("cancelled"))
      statusBar()->showMessage(tr("Could not build %1: %2").arg(QString::fromStdString((*atlas_).structures()[i].acronym), msg), 8000);
    updateBusy();
  });
  connect(loader_, &SurfaceLoader::pendingChanged, this, [this] { updateBusy(); });

  view_->addRenderer(scene_->renderer());
  view_->showOrientationMarker(scene_->renderer());
  panel_->setTree(&atlas_->structures());
  loading_ = false;
  selectionLabel_->setText(tr("Allen CCF: %1 structures, %2 x %3 x %4 voxels of %5 um")
                               .arg(atlas_->structures().size())
                               .arg(atlas_->annotation().size()[0])
                               .arg(atlas_->annotation().size()[1])
                               .arg(atlas_->annotation().size()[2])
                               .arg(atlas_->annotation().spacingUm()[0]));

  setStructureVisible(atlas_->structures().root(), true);
  for (const QString& s : options_.initialStructures)
    if (const auto i = atlas_->structures().find(s.toStdString())) setStructureVisible(*i, true);
  scene_->applyCameraPreset(options_.initialView);
  renderViews();
  updateBusy();
}

void MainWindow::setStructureVisible(int index, bool visible) {
  if (!scene_) return;
  panel_->setChecked(index, visible);
  if (visible && !scene_->hasSurface(index)) {
    loader_->request(index);
    return; // shown when built (onSurfaceReady)
  }
  scene_->setVisible(index, visible);
  renderViews();
}

void MainWindow::onSurfaceReady(int index, vtkSmartPointer<vtkPolyData> mesh) {
  if (!mesh || mesh->GetNumberOfPoints() == 0) {
    statusBar()->showMessage(
        tr("%1 has no voxels in this annotation (an ontology-only structure)").arg(QString::fromStdString(atlas_->structures()[index].acronym)),
        8000);
    panel_->setChecked(index, false);
    updateBusy();
    return;
  }
  scene_->setSurface(index, mesh);
  scene_->setVisible(index, panel_->isChecked(index));
  renderViews();
  updateBusy();
}

void MainWindow::onSelection(int index) {
  if (!scene_) return;
  if (index < 0) {
    scene_->setHighlighted(std::nullopt);
    renderViews();
    return;
  }
  const Structure& s = atlas_->structures()[index];
  selectionLabel_->setText(QStringLiteral("%1 — %2 — id %3 — %4")
                               .arg(QString::fromStdString(s.acronym), QString::fromStdString(s.name))
                               .arg(s.id)
                               .arg(QString::fromStdString(atlas_->structures().pathString(index))));
  const auto d = scene_->display(index);
  panel_->setDisplayControls(d.opacity, QColor::fromRgbF(static_cast<float>(d.colour[0]), static_cast<float>(d.colour[1]),
                                                         static_cast<float>(d.colour[2])));
  scene_->setHighlighted(scene_->hasSurface(index) ? std::optional<int>(index) : std::nullopt);
  renderViews();
}

void MainWindow::onClicked(int x, int y) {
  if (!scene_) return;
  if (const auto hit = scene_->pick(x, y)) panel_->select(*hit);
}

void MainWindow::applyCameraPreset(viewer::CameraPreset preset) {
  if (!scene_) return;
  scene_->applyCameraPreset(preset);
  renderViews();
}

void MainWindow::renderViews() { view_->render(); }

bool MainWindow::isIdle() const { return !loading_ && (!loader_ || loader_->pending() == 0); }

QString MainWindow::statusText() const { return selectionLabel_->text(); }

void MainWindow::updateBusy() {
  const int pending = loader_ ? loader_->pending() : 0;
  busy_->setVisible(loading_ || pending > 0);
  busy_->setFormat(loading_ ? tr("loading atlas") : tr("building %1 surface(s)").arg(pending));
  busy_->setTextVisible(true);
  if (isIdle()) emit idle();
}

void MainWindow::saveViewImage(const QString& path, int scale) {
  renderViews();
  viewer::saveWindowPng(view_->renderWindow(), path.toStdString(), scale);
}

QImage MainWindow::windowImage() {
  renderViews();
  QImage img = grab().toImage().convertToFormat(QImage::Format_RGB32);
  auto grabber = vtkSmartPointer<vtkWindowToImageFilter>::New();
  grabber->SetInput(view_->renderWindow());
  grabber->SetInputBufferTypeToRGB();
  grabber->ReadFrontBufferOff();
  grabber->Update();
  vtkImageData* data = grabber->GetOutput();
  int dims[3];
  data->GetDimensions(dims);
  QImage vtk(dims[0], dims[1], QImage::Format_RGB888);
  const auto* src = static_cast<const unsigned char*>(data->GetScalarPointer());
  for (int y = 0; y < dims[1]; ++y) // VTK rows go bottom-up
    std::memcpy(vtk.scanLine(dims[1] - 1 - y), src + static_cast<std::size_t>(y) * dims[0] * 3, static_cast<std::size_t>(dims[0]) * 3);
  QPainter painter(&img);
  const QRect target(view_->mapTo(this, QPoint(0, 0)) * img.devicePixelRatio(), view_->size() * img.devicePixelRatio());
  painter.drawImage(target, vtk);
  return img;
}

} // namespace atlascope::app
