#include "app/gui/MainWindow.h"

#include "app/gui/AnimationExport.h"
#include "app/gui/PipelinePanel.h"
#include "app/gui/Session.h"
#include "app/gui/TrainingPanel.h"

#include "app/gui/CameraReactions.h"
#include "app/gui/CellPanel.h"
#include "app/gui/ColumnMappingDialog.h"
#include "app/gui/DatasetGuard.h"
#include "app/gui/RegionTreePanel.h"
#include "app/gui/ScreenshotReaction.h"
#include "app/gui/SessionAutosave.h"
#include "app/scene/SurfaceLoader.h"
#include "app/gui/ViewHistory.h"
#include "app/gui/VtkView.h"

#include <QAction>
#include <QComboBox>
#include <QLineEdit>
#include <QSignalBlocker>
#include <QSplitter>
#include <QSlider>
#include <vtkMapper.h>
#include <QCheckBox>
#include <QApplication>
#include <QCryptographicHash>
#include <QDockWidget>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QProgressBar>
#include <QStatusBar>
#include <QTimer>
#include <QToolBar>
#include <QUndoStack>
#include <QToolButton>
#include <QtConcurrent/QtConcurrent>

#include "app/gui/JobQueue.h"
#include "app/gui/PdfExport.h"
#include "app/gui/RegionMatchPanel.h"
#include "app/gui/SectionView.h"
#include "core/Agreement.h"
#include "core/FileSystem.h"
#include "core/GeneStore.h"
#include "viewer/CellCloud.h"
#include "viewer/RegionLayer.h"
#include "viewer/SectionPlane.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QJsonArray>
#include <QJsonObject>
#include <QFileDialog>
#include <QMimeData>

#include <vtkActor.h>
#include <vtkCamera.h>
#include <vtkImageData.h>
#include <vtkRenderer.h>
#include <vtkScalarBarActor.h>
#include <vtkRenderWindow.h>
#include <vtkWindowToImageFilter.h>

namespace atlascope::app {

// From this many cells on, colouring by a gene goes through the cached gene-major store.
constexpr std::size_t kGeneStoreCells = 1000000;

MainWindow::MainWindow(MainWindowOptions options, QWidget* parent) : QMainWindow(parent), options_(std::move(options)) {
  setWindowTitle(tr("Atlascope"));
  resize(1280, 800);

  // Two views in a splitter: the second shows the cells beside the CCF in side-by-side mode,
  // through the same camera object (a camera link, as ParaView's).
  view_ = new VtkView(this);
  view2_ = new VtkView(this);
  view2_->setObjectName("cellsView");
  auto* split = new QSplitter(this);
  split->addWidget(view_);
  split->addWidget(view2_);
  view2_->hide();
  setCentralWidget(split);
  // Either view redraws the other after it draws (the camera they share may have moved).
  for (auto [from, to] : {std::pair<VtkView*, VtkView*>{view_, view2_}, {view2_, view_}})
    connect(from, &VtkView::rendered, this, [this, to = to] {
      if (!sideBySide_ || syncing_) return;
      syncing_ = true;
      to->render();
      syncing_ = false;
    });

  panel_ = new RegionTreePanel(this);
  auto* dock = new QDockWidget(tr("Regions (Allen CCF)"), this);
  dock->setObjectName("regionDock");
  dock->setWidget(panel_);
  dock->setMinimumWidth(340);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  cellPanel_ = new CellPanel(this);
  auto* cellDock = new QDockWidget(tr("Cells"), this);
  cellDock->setObjectName("cellDock");
  cellDock->setWidget(cellPanel_);
  addDockWidget(Qt::RightDockWidgetArea, cellDock);
  cellDock->hide(); // shown when a dataset opens: no empty panel beside the atlas
  pipelinePanel_ = new PipelinePanel(this);
  auto* pipelineDock = new QDockWidget(tr("Discover regions"), this);
  pipelineDock->setObjectName("pipelineDock");
  pipelineDock->setWidget(pipelinePanel_);
  addDockWidget(Qt::RightDockWidgetArea, pipelineDock);
  tabifyDockWidget(cellDock, pipelineDock);
  pipelineDock->hide();
  trainingPanel_ = new TrainingPanel(this);
  auto* trainingDock = new QDockWidget(tr("Train model"), this);
  trainingDock->setObjectName("trainingDock");
  trainingDock->setWidget(trainingPanel_);
  addDockWidget(Qt::RightDockWidgetArea, trainingDock);
  tabifyDockWidget(pipelineDock, trainingDock);
  trainingDock->hide();
  // The discovered regions next to the CCF tree (shown when a region result opens).
  matchPanel_ = new RegionMatchPanel(this);
  auto* matchDock = new QDockWidget(tr("Discovered regions"), this);
  matchDock->setObjectName("regionMatchDock");
  matchDock->setWidget(matchPanel_);
  addDockWidget(Qt::LeftDockWidgetArea, matchDock);
  splitDockWidget(dock, matchDock, Qt::Vertical);
  matchDock->hide();
  connect(matchPanel_, &RegionMatchPanel::resolutionChosen, this, [this](const QString& column) {
    QSignalBlocker block(cellPanel_->colourBy());
    cellPanel_->colourBy()->setCurrentText(column);
    colourCellsByCategory("obs:" + column);
  });
  connect(matchPanel_, &RegionMatchPanel::regionSelected, this, &MainWindow::highlightRegion);
  connect(matchPanel_, &RegionMatchPanel::regionInResolutionChosen, this, [this](const QString& column, int code) {
    if (colouring_ == column) {
      matchPanel_->selectRegion(code);
      return;
    }
    pendingRegion_ = code; // selected once that resolution's matches are in
    QSignalBlocker block(cellPanel_->colourBy());
    cellPanel_->colourBy()->setCurrentText(column);
    colourCellsByCategory("obs:" + column);
  });
  connect(matchPanel_, &RegionMatchPanel::matchesReady, this, [this] {
    if (pendingRegion_ < 0) return;
    matchPanel_->selectRegion(pendingRegion_);
    pendingRegion_ = -1;
  });
  // The 2D section view (View menu, or shown with Ctrl+2): follows the section toolbar.
  sectionView_ = new SectionView(this);
  auto* sectionDock = new QDockWidget(tr("Section (2D)"), this);
  sectionDock->setObjectName("sectionDock");
  sectionDock->setWidget(sectionView_);
  addDockWidget(Qt::BottomDockWidgetArea, sectionDock);
  sectionDock->hide();
  // One job at a time: a second one waits for the first (train, then discover regions).
  auto* jobs = new JobQueue(this);
  pipelinePanel_->setQueue(jobs);
  trainingPanel_->setQueue(jobs);
  // A trained model is the one the region step uses next.
  connect(trainingPanel_, &TrainingPanel::modelReady, this, [this](const QString& model) {
    pipelinePanel_->modelEdit()->setText(model);
    statusBar()->showMessage(tr("Model trained: %1 (used by Discover regions)").arg(model), 15000);
  });
  // A finished region job: open its dataset copy, coloured by the coarsest resolution.
  connect(pipelinePanel_, &PipelinePanel::regionsReady, this, [this](const QString& result, const QJsonObject& summary) {
    const QJsonArray res = summary.value("resolutions").toArray();
    if (!res.isEmpty()) options_.colourBy = QString("regions_k%1").arg(res.first().toObject().value("k").toInt());
    openDataset(result);
  });
  setAcceptDrops(true);

  selectionLabel_ = new QLabel(this);
  selectionLabel_->setObjectName("selectionStatus");
  selectionLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  busy_ = new QProgressBar(this);
  busy_->setMaximumWidth(220);
  busy_->setRange(0, 0);
  busy_->setFormat(tr("loading"));
  statusBar()->addWidget(selectionLabel_, 1);
  statusBar()->addPermanentWidget(busy_);
  cancelLoad_ = new QToolButton(this);
  cancelLoad_->setObjectName("cancelDatasetLoading");
  cancelLoad_->setText(tr("Cancel"));
  cancelLoad_->setToolTip(tr("Stop opening this dataset (the open one stays)"));
  cancelLoad_->hide();
  connect(cancelLoad_, &QToolButton::clicked, this, &MainWindow::cancelDatasetLoading);
  statusBar()->addPermanentWidget(cancelLoad_);

  buildMenus();
  new SessionAutosave(this); // the open state kept on disk against a crash (issue 14)

  connect(panel_, &RegionTreePanel::visibilityChanged, this, [this](int i, bool visible) {
    setStructureVisible(i, visible);
    if (!atlas_) return;
    auto apply = [this, i](bool v) {
      setStructureVisible(i, v);
      panel_->setChecked(i, v);
    };
    history_->push(new ViewChange(tr("%1 %2").arg(visible ? tr("Show") : tr("Hide"), QString::fromStdString(atlas_->structures()[i].acronym)),
                                  [apply, visible] { apply(!visible); }, [apply, visible] { apply(visible); }));
  });
  connect(panel_, &RegionTreePanel::selectionChanged, this, &MainWindow::onSelection);
  connect(panel_, &RegionTreePanel::opacityChanged, this, [this](int i, double o) {
    if (!scene_) return;
    const double before = scene_->display(i).opacity;
    scene_->setOpacity(i, o);
    renderViews();
    recordDisplayChange(i, tr("Opacity of %1"), before, o);
  });
  connect(panel_, &RegionTreePanel::colourChanged, this, [this](int i, QColor c) {
    if (!scene_) return;
    const viewer::RegionDisplay before = scene_->display(i);
    scene_->setColour(i, {c.redF(), c.greenF(), c.blueF()});
    panel_->setDisplayControls(scene_->display(i).opacity, c);
    renderViews();
    recordDisplayChange(i, tr("Colour of %1"), before, scene_->display(i));
  });
  connect(panel_, &RegionTreePanel::colourReset, this, [this](int i) {
    if (!scene_) return;
    const viewer::RegionDisplay before = scene_->display(i);
    scene_->setColour(i, scene_->defaultDisplay(i).colour);
    onSelection(i);
    renderViews();
    recordDisplayChange(i, tr("Atlas colour of %1"), before, scene_->display(i));
  });
  connect(view_, &VtkView::clicked, this, &MainWindow::onClicked);
  for (VtkView* v : {view_, view2_})
    connect(v, &VtkView::interacting, this, [this](bool on) {
      if (cloud_) cloud_->setInteracting(on);
      if (!on) QTimer::singleShot(0, this, [this] { renderViews(); }); // every cell again
    });
  connect(view2_, &VtkView::clicked, this, [this](int x, int y) {
    if (!cloud_ || !sideBySide_) return;
    if (const auto cell = cloud_->pick(cellsRenderer_, x, y)) showCellDetails(*cell);
    else pickRegionSurface(x, y);
  });
  connect(cellPanel_, &CellPanel::colourByCategory, this, &MainWindow::colourCellsByCategory);
  connect(cellPanel_, &CellPanel::colourByGene, this, &MainWindow::colourCellsByGene);
  connect(cellPanel_, &CellPanel::categoriesShown, this, &MainWindow::showCategories);
  connect(cellPanel_, &CellPanel::pointSizeChanged, this, [this](double px) {
    if (!cloud_) return;
    cloud_->setPointSize(px);
    renderViews();
  });

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
  matchPanel_->waitForMatching(); // it reads atlas_
  if (regionCancel_) regionCancel_->cancel();
  regionBuild_.waitForFinished(); // it reads atlas_
  delete loader_; // waits for running builds, which use cache_ and atlas_
  loader_ = nullptr;
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open dataset…"));
  open->setObjectName("openDataset");
  open->setShortcut(QKeySequence::Open);
  connect(open, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open cells"), {},
                                                      tr("Cell data (*.h5ad *.csv *.tsv *.txt);;All files (*)"));
    if (path.isEmpty()) return;
    // A table: which column is what (pre-filled with what is recognised by name).
    if (isTablePath(path.toStdString())) {
      ColumnMappingDialog dialog(path, this);
      if (dialog.exec() != QDialog::Accepted) return;
      openDataset(path, dialog.columns());
      return;
    }
    openDataset(path);
  });
  QAction* openFolder = file->addAction(tr("Open &ABC atlas folder…"));
  openFolder->setObjectName("openAbcFolder");
  connect(openFolder, &QAction::triggered, this, [this] {
    // The ABC download as it is: metadata CSVs + CCF coordinates + expression .h5ad, joined.
    const QString dir = QFileDialog::getExistingDirectory(this, tr("ABC atlas folder (cell metadata, CCF coordinates, expression)"));
    if (!dir.isEmpty()) openDataset(dir);
  });
  QAction* shot = file->addAction(tr("Save &screenshot…"));
  shot->setShortcut(QKeySequence(tr("Ctrl+Shift+S")));
  new ScreenshotReaction(shot, this, [this](const QString& path, int scale) { saveViewImage(path, scale); });
  // Animations: frames of the 3D view into a folder (and an MP4 with ffmpeg).
  QAction* spin = file->addAction(tr("Export &turntable frames…"));
  spin->setObjectName("exportTurntable");
  connect(spin, &QAction::triggered, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Folder for the turntable frames (36 frames, 10 degrees apart)"));
    if (dir.isEmpty()) return;
    const AnimationResult r = exportTurntable(*this, dir, 36);
    statusBar()->showMessage(r.error.isEmpty() ? tr("%1 frames in %2%3").arg(r.frames.size()).arg(dir, r.video.isEmpty() ? QString() : " + " + r.video)
                                               : tr("Turntable: %1").arg(r.error), 10000);
  });
  QAction* sweep = file->addAction(tr("Export section s&weep frames…"));
  sweep->setObjectName("exportSweep");
  connect(sweep, &QAction::triggered, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Folder for the section sweep frames (60 frames along the section axis)"));
    if (dir.isEmpty()) return;
    const viewer::SectionAxis axis = section_ && section_->axis() != viewer::SectionAxis::None ? section_->axis() : viewer::SectionAxis::Coronal;
    const AnimationResult r = exportSectionSweep(*this, dir, axis, 60);
    statusBar()->showMessage(r.error.isEmpty() ? tr("%1 frames in %2%3").arg(r.frames.size()).arg(dir, r.video.isEmpty() ? QString() : " + " + r.video)
                                               : tr("Section sweep: %1").arg(r.error), 10000);
  });
  file->addSeparator();
  QAction* figure = file->addAction(tr("Export &figure (views, section, legend)…"));
  figure->setObjectName("exportFigure");
  connect(figure, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export figure"), "figure.svg", tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return;
    const QSize size = path.endsWith(".png", Qt::CaseInsensitive) ? QSize(3600, 2100) : QSize(1800, 1050);
    if (!writeFigure(path, size)) QMessageBox::warning(this, tr("Export figure"), tr("Could not write %1").arg(path));
  });
  QAction* sectionFigure = file->addAction(tr("Export 2D section (SVG, PDF or PNG)…"));
  sectionFigure->setObjectName("exportSection");
  connect(sectionFigure, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export 2D section"), "section.svg", tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return;
    const QSize size(1600, 1200);
    const bool ok = path.endsWith(".svg", Qt::CaseInsensitive)   ? sectionView_->writeSvg(path, size)
                    : path.endsWith(".pdf", Qt::CaseInsensitive) ? sectionView_->writePdf(path, size)
                                                                  : sectionView_->writePng(path, size * 2);
    if (!ok) QMessageBox::warning(this, tr("Export 2D section"), tr("Could not write %1").arg(path));
  });
  QAction* saveSession = file->addAction(tr("Save sess&ion…"));
  saveSession->setObjectName("saveSession");
  connect(saveSession, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save session"), {}, tr("Atlascope sessions (*.atlascope.json *.json)"));
    if (path.isEmpty()) return;
    try {
      captureSession().save(path);
      statusBar()->showMessage(tr("Session saved to %1").arg(path), 8000);
    } catch (const std::exception& e) {
      QMessageBox::warning(this, tr("Save session"), QString::fromUtf8(e.what()));
    }
  });
  QAction* openSession = file->addAction(tr("Open sessio&n…"));
  openSession->setObjectName("openSession");
  connect(openSession, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open session"), {}, tr("Atlascope sessions (*.atlascope.json *.json)"));
    if (path.isEmpty()) return;
    try {
      applySession(Session::load(path));
    } catch (const std::exception& e) {
      QMessageBox::warning(this, tr("Open session"), QString::fromUtf8(e.what()));
    }
  });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  QAction* undo = history_->createUndoAction(this, tr("&Undo"));
  undo->setObjectName("undo");
  undo->setShortcut(QKeySequence::Undo);
  QAction* redo = history_->createRedoAction(this, tr("&Redo"));
  redo->setObjectName("redo");
  redo->setShortcut(QKeySequence::Redo);
  edit->addAction(undo);
  edit->addAction(redo);
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
    // The camera before the reaction moves it (this connection runs first), then the step.
    connect(a, &QAction::triggered, this, [this] { cameraBefore_ = currentCamera(); });
    new CameraPresetReaction(a, p.preset, scene, render);
    connect(a, &QAction::triggered, this, [this, a] { recordCameraChange(a->text(), cameraBefore_); });
    bar->addAction(a);
  }
  viewMenu->addSeparator();
  QAction* reset = viewMenu->addAction(tr("&Reset camera"));
  reset->setObjectName("camera_reset");
  reset->setShortcut(QKeySequence(tr("Ctrl+0")));
  connect(reset, &QAction::triggered, this, [this] { cameraBefore_ = currentCamera(); });
  new ResetCameraReaction(reset, scene, render);
  connect(reset, &QAction::triggered, this, [this] { recordCameraChange(tr("Reset camera"), cameraBefore_); });
  // Camera bookmarks: Ctrl+B keeps the current view; Ctrl+Alt+N goes back to bookmark N.
  QAction* bookmark = viewMenu->addAction(tr("&Bookmark camera"));
  bookmark->setObjectName("camera_bookmark");
  bookmark->setShortcut(QKeySequence(tr("Ctrl+B")));
  connect(bookmark, &QAction::triggered, this, [this] { addCameraBookmark(currentCamera()); });
  bookmarksMenu_ = viewMenu->addMenu(tr("Camera boo&kmarks"));
  bookmarksMenu_->setObjectName("cameraBookmarks");
  bookmarksMenu_->setEnabled(false);
  bar->addAction(reset);

  viewMenu->addSeparator();
  QAction* side = viewMenu->addAction(tr("&Side by side (CCF | cells)"));
  side->setObjectName("view_side_by_side");
  side->setCheckable(true);
  side->setShortcut(QKeySequence(tr("Ctrl+D")));
  side->setToolTip(tr("The CCF and the cells in two views that share one camera; off: the cells overlaid on the CCF"));
  connect(side, &QAction::toggled, this, &MainWindow::setSideBySide);
  bar->addAction(side);
  QAction* surfaces = viewMenu->addAction(tr("Region &surfaces"));
  surfaces->setObjectName("view_region_surfaces");
  surfaces->setCheckable(true);
  surfaces->setShortcut(QKeySequence(tr("Ctrl+G")));
  surfaces->setToolTip(tr("The discovered regions the cells are coloured by (regions_k…) as translucent surfaces, "
                          "voxelised at 50 um on the CCF grid"));
  connect(surfaces, &QAction::toggled, this, &MainWindow::setRegionSurfacesShown);
  viewMenu->addSeparator();
  for (QDockWidget* d : findChildren<QDockWidget*>()) viewMenu->addAction(d->toggleViewAction());
  if (QAction* section2d = findChild<QDockWidget*>("sectionDock")->toggleViewAction()) section2d->setShortcut(QKeySequence(tr("Ctrl+2")));

  // Sections: an axis and a slider through the atlas (25 um steps), a 200 um slab.
  QToolBar* sections = addToolBar(tr("Section"));
  sections->setObjectName("sectionToolbar");
  sectionAxis_ = new QComboBox(sections);
  sectionAxis_->setObjectName("sectionAxis");
  sectionAxis_->addItems({tr("No section"), tr("Coronal"), tr("Sagittal"), tr("Horizontal")});
  sectionSlider_ = new QSlider(Qt::Horizontal, sections);
  sectionSlider_->setObjectName("sectionSlider");
  sectionSlider_->setMinimumWidth(220);
  sectionSlider_->setEnabled(false);
  sectionLabel_ = new QLabel(sections);
  sections->addWidget(sectionAxis_);
  sections->addWidget(sectionSlider_);
  sections->addWidget(sectionLabel_);
  auto apply = [this] {
    const viewer::SectionAxis axes[] = {viewer::SectionAxis::None, viewer::SectionAxis::Coronal, viewer::SectionAxis::Sagittal,
                                        viewer::SectionAxis::Horizontal};
    setSection(axes[std::clamp(sectionAxis_->currentIndex(), 0, 3)], sectionSlider_->value() * 25.0);
  };
  connect(sectionAxis_, &QComboBox::currentIndexChanged, this, apply);
  connect(sectionSlider_, &QSlider::valueChanged, this, apply);

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
  matchPanel_->setAtlas(atlas_.get());
  sectionView_->setAtlas(atlas_.get());
  viewer::SurfaceOptions surfaceOptions;
  surfaceOptions.downsampleAboveVoxels = 4'000'000; // whole brain, cortex: 50 um blocks (RegionSurface.h)
  cache_ = std::make_unique<viewer::SurfaceCache>(
      *atlas_, cacheDir(), surfaceOptions);
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
  cellsRenderer_ = vtkSmartPointer<vtkRenderer>::New();
  double bg[3];
  scene_->renderer()->GetBackground(bg);
  cellsRenderer_->SetBackground(bg);
  cellsRenderer_->SetActiveCamera(scene_->renderer()->GetActiveCamera());
  view2_->addRenderer(cellsRenderer_);
  section_ = std::make_unique<viewer::SectionPlane>();
  scene_->setSection(section_.get());
  if (options_.sideBySide) setSideBySide(true);
  if (options_.regionSurfaces) setRegionSurfacesShown(true);
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
  if (!options_.dataset.isEmpty()) openDataset(options_.dataset, pendingColumns_);
  if (pendingSession_) {
    const Session session = *pendingSession_;
    pendingSession_.reset();
    applySession(session);
  }
  updateBusy();
}

Session MainWindow::captureSession() const {
  Session s;
  s.dataset = datasetPath_;
  s.colourBy = colouring_;
  s.sideBySide = sideBySide_;
  s.regionSurfaces = regionSurfacesOn_;
  s.sectionView = findChild<QDockWidget*>("sectionDock")->isVisible();
  s.selectedRegion = matchPanel_->selectedRegion();
  s.bookmarks = bookmarks_;
  s.width = width();
  s.height = height();
  if (scene_) {
    const StructureTree& tree = atlas_->structures();
    for (int i = 0; i < static_cast<int>(tree.size()); ++i) {
      const viewer::RegionDisplay d = scene_->display(i), def = scene_->defaultDisplay(i);
      const bool shown = panel_->isChecked(i);
      if (!shown && d.opacity == def.opacity && d.colour == def.colour) continue;
      SessionStructure st;
      st.acronym = QString::fromStdString(tree[i].acronym);
      st.visible = shown;
      st.opacity = d.opacity;
      if (d.colour != def.colour) st.colour = d.colour;
      s.structures.push_back(st);
    }
    s.camera = currentCamera();
  }
  if (section_) {
    s.sectionAxis = viewer::sectionAxisName(section_->axis());
    s.sectionPosition = section_->position();
    s.sectionThickness = section_->thickness();
  }
  s.model = pipelinePanel_->modelEdit()->text();
  s.resolutions = pipelinePanel_->resolutionsEdit()->text();
  s.device = pipelinePanel_->deviceBox()->currentText();
  s.smooth = pipelinePanel_->smoothBox()->isChecked();
  return s;
}

void MainWindow::applySession(const Session& s) {
  if (!scene_) {
    pendingSession_ = std::make_unique<Session>(s);
    return;
  }
  if (s.width > 0 && s.height > 0) resize(s.width, s.height);
  const StructureTree& tree = atlas_->structures();
  for (int i = 0; i < static_cast<int>(tree.size()); ++i) {
    if (panel_->isChecked(i)) setStructureVisible(i, false);
    scene_->setDisplay(i, [&] { auto d = scene_->defaultDisplay(i); d.visible = false; return d; }());
  }
  QStringList unknown;
  for (const SessionStructure& st : s.structures) {
    const auto i = tree.find(st.acronym.toStdString());
    if (!i) {
      unknown << st.acronym;
      continue;
    }
    viewer::RegionDisplay d = scene_->defaultDisplay(*i);
    d.visible = st.visible;
    d.opacity = st.opacity;
    if (st.colour) d.colour = *st.colour;
    scene_->setDisplay(*i, d);
    if (st.visible) setStructureVisible(*i, true);
  }
  if (!unknown.isEmpty()) statusBar()->showMessage(tr("Not in this atlas: %1").arg(unknown.join(", ")), 15000);
  if (s.camera) applyCamera(*s.camera);
  setSideBySide(s.sideBySide);
  if (s.regionSurfaces != regionSurfacesOn_) setRegionSurfacesShown(s.regionSurfaces);
  findChild<QDockWidget*>("sectionDock")->setVisible(s.sectionView);
  // The highlighted region once its resolution's matches are in: the colouring below is always
  // read again, and the matching follows it.
  pendingRegion_ = s.colourBy.startsWith("regions_k") ? s.selectedRegion : -1;
  bookmarks_.clear();
  bookmarksMenu_->clear();
  for (const auto& b : s.bookmarks) addCameraBookmark(b);
  setSection(viewer::sectionAxisFromName(s.sectionAxis.toStdString()), s.sectionPosition, s.sectionThickness);
  pipelinePanel_->modelEdit()->setText(s.model);
  pipelinePanel_->resolutionsEdit()->setText(s.resolutions);
  pipelinePanel_->deviceBox()->setCurrentText(s.device);
  pipelinePanel_->smoothBox()->setChecked(s.smooth);
  options_.colourBy = s.colourBy;
  if (!s.dataset.isEmpty() && s.dataset != datasetPath_) openDataset(s.dataset);
  else if (cloud_ && !s.colourBy.isEmpty()) {
    if (s.colourBy.startsWith("gene:")) colourCellsByGene(s.colourBy.mid(5));
    else if (s.colourBy == "type" || s.colourBy == "section") colourCellsByCategory(s.colourBy);
    else colourCellsByCategory("obs:" + s.colourBy);
  }
  renderViews();
}

void MainWindow::openDataset(const QString& path, const ColumnOptions& columns) {
  if (!scene_) { // the atlas first: the cells are placed in its space
    options_.dataset = path;
    pendingColumns_ = columns;
    return;
  }
  struct Loaded {
    std::shared_ptr<CellTable> cells;
    std::vector<std::string> obsColumns;
    QString error;
    std::shared_ptr<viewer::CellCloud> cloud; // laid out in the background too (issue 14: no stall)
  };
  ++datasetJobs_;
  const int generation = ++loadGeneration_;
  cancelLoad_->show();
  updateBusy();
  statusBar()->showMessage(tr("Reading %1…").arg(path));
  auto* watcher = new QFutureWatcher<Loaded>(this);
  connect(watcher, &QFutureWatcher<Loaded>::finished, this, [this, watcher, path, columns, generation] {
    watcher->deleteLater();
    --datasetJobs_;
    if (generation != loadGeneration_) { // cancelled, or another dataset was asked for since
      updateBusy();
      return;
    }
    cancelLoad_->hide();
    const Loaded loaded = watcher->result();
    if (!loaded.cells) {
      datasetError_ = loaded.error;
      statusBar()->showMessage(tr("Could not open %1: %2").arg(path, loaded.error), 15000);
      if (!qEnvironmentVariableIsSet("ATLASCOPE_NO_DIALOGS"))
        QMessageBox::warning(this, tr("Open dataset"), tr("Could not open the dataset:\n%1").arg(loaded.error));
      updateBusy();
      return;
    }
    if (cloud_) {
      cellRenderer()->RemoveActor(cloud_->actor());
      cellRenderer()->RemoveActor2D(cloud_->colourBar());
    }
    datasetError_.clear();
    statusBar()->clearMessage();
    // The previous dataset's region surfaces go with it.
    if (regionCancel_) regionCancel_->cancel();
    regionLayer_.reset();
    regionSurfaces_.clear();
    regionColumn_.clear();
    regionSurfacesColumn_.clear();
    regionCodes_.clear();
    datasetPath_ = path;
    datasetColumns_ = columns;
    cells_ = std::make_unique<CellTable>(std::move(*loaded.cells));
    cloud_ = std::make_unique<viewer::CellCloud>(std::move(*loaded.cloud));
    cloud_->setPointSize(3);
    if (section_) section_->attach(cloud_->actor()->GetMapper());
    cellRenderer()->AddActor(cloud_->actor());
    cellRenderer()->AddActor2D(cloud_->colourBar());
    cellPanel_->setDataset(cells_.get(), loaded.obsColumns);
    findChild<QDockWidget*>("cellDock")->show();
    sectionView_->setCells(cells_.get());
    matchPanel_->clear();
    regionColumns_.clear();
    for (const auto& c : loaded.obsColumns)
      if (QString::fromStdString(c).startsWith("regions_k")) regionColumns_ << QString::fromStdString(c);
    std::sort(regionColumns_.begin(), regionColumns_.end(), [](const QString& a, const QString& b) { return a.mid(9).toInt() < b.mid(9).toInt(); });
    findChild<QDockWidget*>("regionMatchDock")->setVisible(!regionColumns_.isEmpty());
    matchPanel_->setHierarchy({});
    if (regionColumns_.size() > 0) buildRegionHierarchy();
    // A region result is a copy of the dataset: further runs still start from the original.
    if (!path.endsWith(".regions.h5ad", Qt::CaseInsensitive)) {
      pipelinePanel_->setDataset(path);
      trainingPanel_->setDataset(path);
    }
    findChild<QDockWidget*>("pipelineDock")->show();
    findChild<QDockWidget*>("trainingDock")->show();
    const QString by = options_.colourBy;
    {
      // Show the chosen colouring in the panel without re-triggering it.
      QSignalBlocker block(cellPanel_->colourBy());
      QComboBox* combo = cellPanel_->colourBy();
      if (by.startsWith("gene:")) { combo->setCurrentIndex(2); cellPanel_->geneBox()->setText(by.mid(5)); }
      else if (by == "section") combo->setCurrentIndex(1);
      else if (!by.isEmpty() && by != "type" && combo->findText(by) >= 0) combo->setCurrentIndex(combo->findText(by));
    }
    if (by.startsWith("gene:")) colourCellsByGene(by.mid(5));
    else if (by == "type" || by == "section") colourCellsByCategory(by);
    else if (!by.isEmpty()) colourCellsByCategory("obs:" + by);
    else colourCellsByCategory(cells_->types.names.empty() ? "section" : "type");
    if (cells_->skippedCells > 0)
      statusBar()->showMessage(tr("%1 cells skipped (%2)").arg(cells_->skippedCells).arg(QString::fromStdString(cells_->skippedReason)), 15000);
    setWindowTitle(tr("Atlascope — %1").arg(QFileInfo(path).fileName()));
    updateBusy();
  });
  const std::string p = path.toStdString();
  watcher->setFuture(QtConcurrent::run([p, columns]() -> Loaded {
    try {
      auto cells = std::make_shared<CellTable>(readCellTable(p, columns));
      checkOpenable(*cells, p, columns); // refused before the open dataset is touched (issue 14)
      // Columns to colour by besides type and section (e.g. regions_k25 written by segment).
      std::vector<std::string> columns;
      for (const auto& c : listObsColumns(p))
        if (c != "brain_section_label" && c != "section" && c != "subclass") columns.push_back(c);
      auto cloud = std::make_shared<viewer::CellCloud>(*cells);
      return {cells, columns, {}, cloud};
    } catch (const std::exception& e) {
      return {nullptr, {}, QString::fromStdString(e.what()), nullptr};
    }
  }));
}

void MainWindow::colourCellsByCategory(const QString& what) {
  if (!cloud_) return;
  colouring_ = what.startsWith("obs:") ? what.mid(4) : what;
  colourGene_.clear();
  if (what.startsWith("obs:")) {
    // Any obs column, read in the background; the file's own colours when it has them.
    const std::string column = what.mid(4).toStdString(), path = datasetPath_.toStdString();
    const std::vector<std::int64_t> rows = cells_->fileRow;
    struct Column {
      std::vector<std::int32_t> codes;
      std::vector<std::string> names;
      std::vector<std::array<std::uint8_t, 3>> colours;
      QString error;
    };
    ++datasetJobs_;
    updateBusy();
    auto* watcher = new QFutureWatcher<Column>(this);
    connect(watcher, &QFutureWatcher<Column>::finished, this, [this, watcher] {
      watcher->deleteLater();
      --datasetJobs_;
      Column c = watcher->result();
      if (!c.error.isEmpty() || !cloud_) {
        statusBar()->showMessage(tr("Cannot colour by this column: %1").arg(c.error), 8000);
      } else {
        if (c.colours.size() != c.names.size()) c.colours = viewer::CellCloud::palette(c.names.size());
        showCategorical(c.codes, c.names, c.colours);
        if (colouring_.startsWith("regions_k")) {
          regionColumn_ = colouring_;
          regionCodes_ = c.codes;
          regionCount_ = static_cast<int>(c.names.size());
          regionColours_ = c.colours;
          if (regionSurfacesOn_) buildRegionSurfaces();
        }
        renderViews();
      }
      updateBusy();
    });
    watcher->setFuture(QtConcurrent::run([path, column, rows]() -> Column {
      Column c;
      try {
        const ObsLabels l = readObsLabels(path, column);
        for (std::int64_t r : rows) c.codes.push_back(l.codes[static_cast<std::size_t>(r)]);
        c.names = l.names;
        c.colours = readObsColours(path, column);
      } catch (const std::exception& e) {
        c.error = QString::fromStdString(e.what());
      }
      return c;
    }));
    return;
  }
  if (what == "section") {
    showCategorical(cells_->section, cells_->sectionNames, viewer::CellCloud::palette(cells_->sectionNames.size()));
  } else {
    const auto& t = cells_->types;
    showCategorical(cells_->cellType, t.names, t.colours.size() == t.names.size() ? t.colours : viewer::CellCloud::palette(t.names.size()));
  }
  renderViews();
}

void MainWindow::showCategorical(std::vector<std::int32_t> codes, const std::vector<std::string>& names,
                                 const std::vector<std::array<std::uint8_t, 3>>& colours) {
  cloud_->colourByCategory(codes, names, colours);
  cellPanel_->setLegend(names, colours);
  legendNames_ = names;
  legendColours_ = colours;
  categoryCodes_ = std::move(codes);
  cloud_->setVisibleCells({}); // a new colouring shows every cell again
  sectionView_->setColours(categoryCodes_, colours);
  sectionView_->setShownCells({});
  if (colouring_.startsWith("regions_k")) {
    matchPanel_->setResolutions(regionColumns_, colouring_);
    matchPanel_->setRegions(cells_.get(), colouring_, categoryCodes_, names, colours);
    findChild<QDockWidget*>("regionMatchDock")->show();
  } else {
    matchPanel_->clear();
  }
}

void MainWindow::buildRegionHierarchy() {
  using Level = RegionMatchPanel::Level;
  const std::string path = datasetPath_.toStdString();
  const std::vector<std::int64_t> rows = cells_->fileRow;
  const QStringList columns = regionColumns_;
  const int generation = loadGeneration_;
  ++datasetJobs_;
  updateBusy();
  auto* watcher = new QFutureWatcher<std::vector<Level>>(this);
  connect(watcher, &QFutureWatcher<std::vector<Level>>::finished, this, [this, watcher, generation] {
    watcher->deleteLater();
    --datasetJobs_;
    if (generation == loadGeneration_) matchPanel_->setHierarchy(watcher->result());
    updateBusy();
  });
  watcher->setFuture(QtConcurrent::run([path, rows, columns]() -> std::vector<Level> {
    std::vector<Level> levels;
    std::vector<std::int32_t> previous;
    try {
      for (const QString& column : columns) {
        const ObsLabels l = readObsLabels(path, column.toStdString());
        Level level;
        level.column = column;
        level.names = l.names;
        level.colours = readObsColours(path, column.toStdString());
        if (level.colours.size() != level.names.size()) level.colours = viewer::CellCloud::palette(level.names.size());
        std::vector<std::int32_t> codes;
        codes.reserve(rows.size());
        for (std::int64_t r : rows) codes.push_back(l.codes[static_cast<std::size_t>(r)]);
        level.sizes.assign(l.names.size(), 0);
        for (std::int32_t c : codes)
          if (c >= 0 && static_cast<std::size_t>(c) < level.sizes.size()) ++level.sizes[static_cast<std::size_t>(c)];
        // The links `segment` writes: each region under the coarser region holding most of its cells.
        level.parent = levels.empty() ? std::vector<std::int32_t>(l.names.size(), -1)
                                      : linkResolutions(previous, codes, static_cast<int>(l.names.size()));
        previous = std::move(codes);
        levels.push_back(std::move(level));
      }
    } catch (const std::exception&) {
      return {}; // the tree is a convenience: the list and the colouring still work
    }
    return levels;
  }));
}

void MainWindow::highlightRegion(int code) {
  if (!cloud_ || !colouring_.startsWith("regions_k")) return;
  std::vector<std::uint8_t> mask;
  if (code >= 0) {
    mask.resize(categoryCodes_.size());
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = categoryCodes_[i] == code;
  }
  cloud_->setVisibleCells(mask);
  sectionView_->setShownCells(std::move(mask));
  if (regionLayer_) regionLayer_->setHighlighted(code >= 0 ? std::optional<int>(code) : std::nullopt);
  if (code >= 0 && static_cast<std::size_t>(code) < legendNames_.size())
    statusBar()->showMessage(tr("%1: %2 cells").arg(QString::fromStdString(legendNames_[static_cast<std::size_t>(code)])).arg(cloud_->visibleCount()), 8000);
  renderViews();
}

void MainWindow::colourCellsByGene(const QString& gene) {
  if (!cloud_) return;
  colouring_ = "gene:" + gene;
  const auto it = std::find(cells_->genes.begin(), cells_->genes.end(), gene.toStdString());
  if (it == cells_->genes.end()) {
    statusBar()->showMessage(tr("No gene '%1' in this dataset").arg(gene), 8000);
    return;
  }
  const std::int64_t g = it - cells_->genes.begin();
  ++datasetJobs_;
  updateBusy();
  auto* watcher = new QFutureWatcher<std::vector<float>>(this);
  connect(watcher, &QFutureWatcher<std::vector<float>>::finished, this, [this, watcher, gene] {
    watcher->deleteLater();
    --datasetJobs_;
    std::vector<float> values = watcher->result();
    if (!cloud_ || values.size() != static_cast<std::size_t>(cells_->size())) {
      statusBar()->showMessage(tr("Could not read gene %1").arg(gene), 8000);
    } else {
      geneValues_ = std::move(values);
      colourGene_ = gene;
      cloud_->colourByValues(geneValues_, gene.toStdString());
      categoryCodes_.clear();
      cloud_->setVisibleCells({});
      cellPanel_->setLegend({}, {});
      legendNames_.clear();
      legendColours_.clear();
      sectionView_->setColours({}, {});
      sectionView_->setShownCells({});
      renderViews();
    }
    updateBusy();
  });
  const std::string path = datasetPath_.toStdString();
  const std::vector<std::int64_t> rows = cells_->fileRow;
  const ColumnOptions columns = datasetColumns_;
  const std::string cache = cacheDir();
  watcher->setFuture(QtConcurrent::run([path, g, rows, columns, cache]() -> std::vector<float> {
    try {
      // Large datasets through the gene-major store (made once, cached): seconds per gene instead
      // of a pass over the whole matrix each time; small ones directly.
      const std::vector<float> all =
          rows.size() >= kGeneStoreCells ? GeneStore::openOrBuild(path, columns, cache).readGene(g) : ExpressionSource(path, columns).readGene(g);
      std::vector<float> out;
      out.reserve(rows.size());
      for (std::int64_t r : rows) out.push_back(all[static_cast<std::size_t>(r)]);
      return out;
    } catch (const std::exception&) {
      return {};
    }
  }));
}

void MainWindow::showCellDetails(std::int64_t cell) {
  const auto k = static_cast<std::size_t>(cell);
  QString html = tr("<b>cell</b> row %1").arg(cells_->fileRow[k]);
  if (cells_->cellType[k] >= 0) html += tr("<br><b>type</b> %1").arg(QString::fromStdString(cells_->types.names[static_cast<std::size_t>(cells_->cellType[k])]));
  html += tr("<br><b>section</b> %1").arg(QString::fromStdString(cells_->sectionNames[static_cast<std::size_t>(cells_->section[k])]));
  if (cells_->hasCcf() && atlas_) {
    const auto s = atlas_->structureAtUm(cells_->ccfAp[k], cells_->ccfDv[k], cells_->ccfMl[k]);
    html += tr("<br><b>CCF</b> %1").arg(s ? QString::fromStdString(atlas_->structures()[*s].acronym + " (" + atlas_->structures()[*s].name + ")")
                                          : tr("outside the brain"));
  }
  if (!colourGene_.isEmpty() && k < geneValues_.size()) html += tr("<br><b>%1</b> %2").arg(colourGene_).arg(geneValues_[k]);
  cellPanel_->setCellInfo(html);
  QString plain = html;
  plain.replace("<br>", " — ").remove("<b>").remove("</b>");
  selectionLabel_->setText(plain);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (!urls.isEmpty() && urls.first().isLocalFile()) openDataset(urls.first().toLocalFile());
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
  matchPanel_->showSplitsOf(index);
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

vtkRenderer* MainWindow::cellRenderer() const { return sideBySide_ ? cellsRenderer_.Get() : scene_->renderer(); }

void MainWindow::setSection(viewer::SectionAxis axis, double position, double thickness) {
  if (!section_ || !atlas_) return;
  const int i = viewer::sectionAxisIndex(axis);
  {
    // Keep the controls in step when called from code (sessions, tests).
    QSignalBlocker a(sectionAxis_), b(sectionSlider_);
    sectionAxis_->setCurrentIndex(axis == viewer::SectionAxis::Coronal ? 1 : axis == viewer::SectionAxis::Sagittal ? 2
                                  : axis == viewer::SectionAxis::Horizontal ? 3 : 0);
    sectionSlider_->setEnabled(i >= 0);
    if (i >= 0) {
      const double extent = atlas_->annotation().size()[static_cast<std::size_t>(i)] * atlas_->annotation().spacingUm()[static_cast<std::size_t>(i)];
      sectionSlider_->setRange(0, static_cast<int>(extent / 25.0));
      sectionSlider_->setValue(static_cast<int>(std::lround(position / 25.0)));
    }
  }
  section_->set(axis, position, thickness);
  sectionView_->setPlane(i < 0 ? 0 : i, position, thickness);
  sectionLabel_->setText(i < 0 ? QString() : tr("%1 %2 um").arg(QString(viewer::sectionAxisName(axis)), QString::number(position, 'f', 0)));
  renderViews();
}

void MainWindow::setSideBySide(bool on) {
  if (!scene_ || on == sideBySide_) return;
  if (cloud_) {
    cellRenderer()->RemoveActor(cloud_->actor());
    cellRenderer()->RemoveActor2D(cloud_->colourBar());
  }
  sideBySide_ = on;
  if (cloud_) {
    cellRenderer()->AddActor(cloud_->actor());
    cellRenderer()->AddActor2D(cloud_->colourBar());
  }
  placeRegionLayer();
  view2_->setVisible(on);
  if (on) {
    auto* split = static_cast<QSplitter*>(centralWidget());
    const int half = std::max(2, split->width() / 2);
    split->setSizes({half, half});
  }
  if (auto* a = findChild<QAction*>("view_side_by_side")) {
    QSignalBlocker block(a);
    a->setChecked(on);
  }
  renderViews();
}

void MainWindow::onClicked(int x, int y) {
  if (!scene_) return;
  if (cloud_ && cloud_->actor()->GetVisibility() && !sideBySide_) {
    if (const auto cell = cloud_->pick(scene_->renderer(), x, y)) {
      showCellDetails(*cell);
      return;
    }
  }
  if (pickRegionSurface(x, y)) return;
  if (const auto hit = scene_->pick(x, y)) panel_->select(*hit);
}

bool MainWindow::pickRegionSurface(int x, int y) {
  if (!regionLayer_) return false;
  const auto label = regionLayer_->pick(x, y);
  if (!label) return false;
  // The same selection as the dock's list: the region's cells alone, its outline, its matches.
  matchPanel_->selectRegion(*label);
  findChild<QDockWidget*>("regionMatchDock")->show();
  return true;
}

void MainWindow::applyCameraPreset(viewer::CameraPreset preset) {
  if (!scene_) return;
  scene_->applyCameraPreset(preset);
  renderViews();
}

void MainWindow::renderViews() {
  view_->render();
  if (sideBySide_) view2_->render();
}

bool MainWindow::isIdle() const { return !loading_ && datasetJobs_ == 0 && (!loader_ || loader_->pending() == 0); }

QString MainWindow::statusText() const { return selectionLabel_->text(); }

void MainWindow::updateBusy() {
  const int pending = loader_ ? loader_->pending() : 0;
  busy_->setVisible(loading_ || pending > 0 || datasetJobs_ > 0);
  busy_->setFormat(loading_ ? tr("loading atlas") : datasetJobs_ > 0 ? tr("reading cells") : tr("building %1 surface(s)").arg(pending));
  busy_->setTextVisible(true);
  if (isIdle()) emit idle();
}

void MainWindow::saveViewImage(const QString& path, int scale) {
  renderViews();
  viewer::saveWindowPng(view_->renderWindow(), path.toStdString(), scale);
}

QImage MainWindow::viewImage(VtkView* v) {
  auto grabber = vtkSmartPointer<vtkWindowToImageFilter>::New();
  grabber->SetInput(v->renderWindow());
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
  return vtk;
}

QImage MainWindow::windowImage() {
  renderViews();
  QImage img = grab().toImage().convertToFormat(QImage::Format_RGB32);
  QPainter painter(&img);
  for (VtkView* v : {view_, view2_}) {
    if (!v->isVisible() || !v->isReady()) continue;
    const QRect target(v->mapTo(this, QPoint(0, 0)) * img.devicePixelRatio(), v->size() * img.devicePixelRatio());
    painter.drawImage(target, viewImage(v));
  }
  return img;
}

bool MainWindow::writeFigure(const QString& path, QSize size) {
  if (size.width() < 200 || size.height() < 150) return false;
  renderViews();
  std::vector<QImage> views;
  for (VtkView* v : {view_, view2_})
    if (v->isVisible() && v->isReady()) views.push_back(viewImage(v));
  const bool withSection = cells_ && section_ && section_->axis() != viewer::SectionAxis::None;
  auto draw = [&](QPainter& p) {
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setRenderHint(QPainter::SmoothPixmapTransform, true);
    p.fillRect(QRect(QPoint(0, 0), size), Qt::white);
    const double unit = std::max(1.0, size.width() / 1200.0), pad = 10 * unit, titleH = 28 * unit;
    QFont font = p.font();
    font.setPixelSize(static_cast<int>(16 * unit));
    p.setFont(font);
    p.setPen(QColor(20, 20, 20));
    const QString title = datasetPath_.isEmpty() ? tr("Allen CCF") : tr("%1 — %2").arg(QFileInfo(datasetPath_).fileName(), colouring_);
    p.drawText(QRectF(pad, 0, size.width() - 2 * pad, titleH), Qt::AlignLeft | Qt::AlignVCenter, title);
    // Panels: the 3D view(s) on the left (60%), the section and the legend on the right.
    const bool right = withSection || !legendNames_.empty();
    const QRectF left(pad, titleH, (right ? 0.6 : 1.0) * size.width() - 2 * pad, size.height() - titleH - pad);
    for (std::size_t i = 0; i < views.size(); ++i) {
      const QRectF cell(left.left() + left.width() * static_cast<double>(i) / static_cast<double>(views.size()), left.top(),
                        left.width() / static_cast<double>(views.size()), left.height());
      QSizeF fit = QSizeF(views[i].size()).scaled(cell.size(), Qt::KeepAspectRatio);
      p.drawImage(QRectF(cell.center() - QPointF(fit.width() / 2, fit.height() / 2), fit), views[i]);
    }
    if (!right) return;
    const double x0 = left.right() + 2 * pad, w = size.width() - x0 - pad;
    double y = titleH;
    if (withSection) {
      const double h = (legendNames_.empty() ? 1.0 : 0.62) * (size.height() - titleH - pad);
      sectionView_->render(p, QRectF(x0, y, w, h));
      y += h + pad;
    }
    // Legend: swatches and names, in columns, as many as fit.
    font.setPixelSize(static_cast<int>(11 * unit));
    p.setFont(font);
    const double row = 15 * unit, colW = std::max(140 * unit, w / 3);
    const int perCol = std::max(1, static_cast<int>((size.height() - pad - y) / row));
    const int cols = std::max(1, static_cast<int>(w / colW));
    const std::size_t fits = static_cast<std::size_t>(perCol * cols);
    for (std::size_t k = 0; k < legendNames_.size() && k < fits; ++k) {
      const double cx = x0 + static_cast<double>(k / static_cast<std::size_t>(perCol)) * colW;
      const double cy = y + static_cast<double>(k % static_cast<std::size_t>(perCol)) * row;
      const auto& c = k < legendColours_.size() ? legendColours_[k] : std::array<std::uint8_t, 3>{150, 150, 150};
      p.fillRect(QRectF(cx, cy + 2 * unit, 10 * unit, 10 * unit), QColor(c[0], c[1], c[2]));
      p.drawText(QRectF(cx + 14 * unit, cy, colW - 16 * unit, row), Qt::AlignLeft | Qt::AlignVCenter,
                 (k + 1 == fits && legendNames_.size() > fits) ? tr("… %1 more").arg(legendNames_.size() - fits + 1)
                                                               : QString::fromStdString(legendNames_[k]));
    }
  };
  return writePainted(path, size, draw, tr("Atlascope figure"));
}

void MainWindow::setRegionSurfacesShown(bool on) {
  regionSurfacesOn_ = on;
  if (auto* a = findChild<QAction*>("view_region_surfaces"); a && a->isChecked() != on) {
    QSignalBlocker block(a);
    a->setChecked(on);
  }
  if (!on) {
    if (regionLayer_) regionLayer_->setVisible(false);
    renderViews();
    return;
  }
  if (!cells_ || !cells_->hasCcf()) {
    statusBar()->showMessage(tr("Region surfaces need cells with CCF coordinates"), 8000);
    return;
  }
  if (regionColumn_.isEmpty() || !colouring_.startsWith("regions_k")) {
    statusBar()->showMessage(tr("Colour the cells by discovered regions (regions_k…) to see their surfaces"), 8000);
    return;
  }
  if (regionSurfacesColumn_ == regionColumn_ && regionLayer_) {
    regionLayer_->setVisible(true);
    renderViews();
    return;
  }
  buildRegionSurfaces();
}

int MainWindow::regionSurfaceCount() const { return regionLayer_ && regionLayer_->visible() ? regionLayer_->count() : 0; }

void MainWindow::placeRegionLayer() {
  regionLayer_.reset();
  if (regionSurfaces_.empty() || !scene_) return;
  regionLayer_ = std::make_unique<viewer::RegionLayer>(cellRenderer());
  regionLayer_->setSection(section_.get());
  regionLayer_->setSurfaces(regionSurfaces_, regionColours_);
  regionLayer_->setVisible(regionSurfacesOn_);
}

void MainWindow::buildRegionSurfaces() {
  if (!atlas_ || !cells_ || !cells_->hasCcf() || regionColumn_.isEmpty()) return;
  if (regionCancel_) regionCancel_->cancel();
  regionBuild_.waitForFinished();
  auto cancel = std::make_shared<CancellationToken>();
  regionCancel_ = cancel;
  // The cache key: the dataset file (path, size, modification time) and the column.
  std::string identity;
  try {
    identity = fileIdentity(datasetPath_.toStdString());
  } catch (const std::exception& e) {
    statusBar()->showMessage(tr("Region surfaces: %1").arg(QString::fromStdString(e.what())), 8000);
    return;
  }
  const QByteArray id = QByteArray::fromStdString(identity) + "|" + regionColumn_.toUtf8();
  const std::string key = QCryptographicHash::hash(id, QCryptographicHash::Sha1).toHex().left(16).toStdString();
  const std::string cacheDir = this->cacheDir();
  const Atlas* atlas = atlas_.get();
  const std::vector<float> ap = cells_->ccfAp, dv = cells_->ccfDv, ml = cells_->ccfMl;
  const std::vector<std::int32_t> codes = regionCodes_;
  const int regions = regionCount_;
  const QString column = regionColumn_;
  ++datasetJobs_;
  updateBusy();
  statusBar()->showMessage(tr("Building the surfaces of %1…").arg(column));
  auto* watcher = new QFutureWatcher<void>(this);
  auto result = std::make_shared<std::vector<vtkSmartPointer<vtkPolyData>>>();
  auto error = std::make_shared<QString>();
  connect(watcher, &QFutureWatcher<void>::finished, this, [this, watcher, result, error, column, cancel] {
    watcher->deleteLater();
    --datasetJobs_;
    updateBusy();
    if (cancel->isCancelled()) return; // superseded
    if (!error->isEmpty()) {
      statusBar()->showMessage(tr("Region surfaces: %1").arg(*error), 8000);
      return;
    }
    regionSurfaces_ = std::move(*result);
    regionSurfacesColumn_ = column;
    placeRegionLayer();
    statusBar()->showMessage(tr("%1: %2 region surfaces").arg(column).arg(regionLayer_ ? regionLayer_->count() : 0), 8000);
    renderViews();
  });
  regionBuild_ = QtConcurrent::run([atlas, ap, dv, ml, codes, regions, cacheDir, key, cancel, result, error] {
    try {
      Progress p;
      p.cancel = cancel.get();
      *result = viewer::buildRegionSurfaceSet(*atlas, ap, dv, ml, codes, regions, cacheDir, key, p);
    } catch (const Cancelled&) {
    } catch (const std::exception& e) {
      *error = QString::fromStdString(e.what());
    }
  });
  watcher->setFuture(regionBuild_);
}

void MainWindow::showCategories(const std::vector<bool>& shown) {
  if (!cloud_ || categoryCodes_.size() != static_cast<std::size_t>(cloud_->size())) return;
  std::vector<std::uint8_t> mask(categoryCodes_.size());
  for (std::size_t i = 0; i < mask.size(); ++i) {
    const std::int32_t c = categoryCodes_[i];
    mask[i] = c < 0 || static_cast<std::size_t>(c) >= shown.size() || shown[static_cast<std::size_t>(c)];
  }
  sectionView_->setShownCells(mask);
  cloud_->setVisibleCells(std::move(mask));
  statusBar()->showMessage(tr("%1 of %2 cells shown").arg(cloud_->visibleCount()).arg(cloud_->size()), 5000);
  renderViews();
}

void MainWindow::cancelDatasetLoading() {
  ++loadGeneration_; // the read finishes in the background and is dropped; the open dataset stays
  cancelLoad_->hide();
  statusBar()->showMessage(tr("Opening cancelled"), 5000);
  updateBusy();
}

void MainWindow::recordDisplayChange(int index, const QString& what, double opacityBefore, double opacityAfter) {
  auto apply = [this, index](double o) {
    if (!scene_) return;
    scene_->setOpacity(index, o);
    if (panel_) onSelection(index);
    renderViews();
  };
  history_->push(new ViewChange(what.arg(QString::fromStdString(atlas_->structures()[index].acronym)), [apply, opacityBefore] { apply(opacityBefore); },
                                [apply, opacityAfter] { apply(opacityAfter); }, ViewChange::Opacity, index));
}

void MainWindow::recordDisplayChange(int index, const QString& what, const viewer::RegionDisplay& before, const viewer::RegionDisplay& after) {
  auto apply = [this, index](const viewer::RegionDisplay& d) {
    if (!scene_) return;
    scene_->setDisplay(index, d);
    onSelection(index);
    renderViews();
  };
  history_->push(new ViewChange(what.arg(QString::fromStdString(atlas_->structures()[index].acronym)), [apply, before] { apply(before); },
                                [apply, after] { apply(after); }));
}

void MainWindow::recordCameraChange(const QString& what, const SessionCamera& before) {
  const SessionCamera after = currentCamera();
  auto apply = [this](const SessionCamera& c) {
    applyCamera(c);
    renderViews();
  };
  history_->push(new ViewChange(what, [apply, before] { apply(before); }, [apply, after] { apply(after); }));
}

void MainWindow::applyCamera(const SessionCamera& c) {
  if (!scene_) return;
  vtkCamera* cam = scene_->renderer()->GetActiveCamera();
  cam->SetPosition(c.position.data());
  cam->SetFocalPoint(c.focalPoint.data());
  cam->SetViewUp(c.viewUp.data());
  cam->SetViewAngle(c.viewAngle);
  scene_->renderer()->ResetCameraClippingRange();
}

SessionCamera MainWindow::currentCamera() const {
  SessionCamera c;
  if (!scene_) return c;
  vtkCamera* cam = scene_->renderer()->GetActiveCamera();
  cam->GetPosition(c.position.data());
  cam->GetFocalPoint(c.focalPoint.data());
  cam->GetViewUp(c.viewUp.data());
  c.viewAngle = cam->GetViewAngle();
  return c;
}

void MainWindow::addCameraBookmark(const SessionCamera& camera) {
  bookmarks_.push_back(camera);
  const int n = static_cast<int>(bookmarks_.size());
  QAction* go = bookmarksMenu_->addAction(tr("Bookmark %1").arg(n));
  go->setObjectName(QString("camera_bookmark_%1").arg(n));
  if (n <= 9) go->setShortcut(QKeySequence(QString("Ctrl+Alt+%1").arg(n)));
  connect(go, &QAction::triggered, this, [this, n] { goToCameraBookmark(n - 1); });
  bookmarksMenu_->setEnabled(true);
  statusBar()->showMessage(tr("Camera bookmark %1 kept").arg(n), 5000);
}

void MainWindow::goToCameraBookmark(int index) {
  if (!scene_ || index < 0 || index >= static_cast<int>(bookmarks_.size())) return;
  const SessionCamera before = currentCamera();
  applyCamera(bookmarks_[static_cast<std::size_t>(index)]);
  renderViews();
  recordCameraChange(tr("Go to bookmark %1").arg(index + 1), before);
}

std::string MainWindow::cacheDir() const { return options_.cacheDir.isEmpty() ? defaultCacheDir() : options_.cacheDir.toStdString(); }

} // namespace atlascope::app
