#include "app/gui/MainWindow.h"

#include "app/gui/AtlasCompareBinding.h"
#include "app/gui/AtlasComparePanel.h"
#include "app/gui/AtlasTreeTabs.h"
#include "app/gui/CellDetails.h"
#include "app/gui/CellPanel.h"
#include "app/gui/DataPanel.h"
#include "app/gui/DatasetDocks.h"
#include "app/gui/EditMenu.h"
#include "app/gui/FigureExport.h"
#include "app/gui/FileMenu.h"
#include "app/gui/JobQueue.h"
#include "app/gui/PipelinePanel.h"
#include "app/gui/RegionMatchPanel.h"
#include "app/gui/RegionsAcrossPanel.h"
#include "app/gui/SectionToolbar.h"
#include "app/gui/SectionView.h"
#include "app/gui/SessionAutosave.h"
#include "app/gui/TrainingPanel.h"
#include "app/gui/UntypedPipeline.h"
#include "app/gui/ViewMenu.h"
#include "app/gui/VtkView.h"
#include "viewer/CellCloud.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPainter>
#include <QProgressBar>
#include <QStatusBar>
#include <QTimer>
#include <QToolButton>
#include <QUndoStack>

#include <vtkRenderWindow.h>

namespace atlascope::app {

namespace {
bool dialogsAllowed() { return !qEnvironmentVariableIsSet("ATLASCOPE_NO_DIALOGS"); }
} // namespace

MainWindow::MainWindow(EngineOptions options, StartupPatch patch, QWidget* parent)
    : QMainWindow(parent), engine_(new Engine(std::move(options), this)) {
  setWindowTitle(tr("Atlascope"));
  resize(1280, 800);
  Workspace& ws = engine_->workspace();
  view_ = new VtkView(this);
  view_->setObjectName(QStringLiteral("view3d"));
  setCentralWidget(view_);
  engine_->setRenderWindow(view_->renderWindow());

  auto dock = [this](QWidget* w, const QString& title, const char* name, Qt::DockWidgetArea area) {
    auto* d = new QDockWidget(title, this);
    d->setObjectName(name);
    d->setWidget(w);
    addDockWidget(area, d);
    return d;
  };
  atlasTabs_ = new AtlasTreeTabs(*engine_, this);
  QDockWidget* treeDock = dock(atlasTabs_, tr("Atlas structures"), "regionDock", Qt::LeftDockWidgetArea);
  treeDock->setMinimumWidth(340);
  matchPanel_ = new RegionMatchPanel(this);
  QDockWidget* matchDock = dock(matchPanel_, tr("Discovered regions"), "regionMatchDock", Qt::LeftDockWidgetArea);
  splitDockWidget(treeDock, matchDock, Qt::Vertical);
  matchDock->hide(); // shown when a dataset with discovered regions is current
  dataPanel_ = new DataPanel(*engine_, this);
  QDockWidget* dataDock = dock(dataPanel_, tr("Data"), "dataDock", Qt::RightDockWidgetArea);
  cellPanel_ = new CellPanel(this);
  cellPanel_->attach(*engine_);
  QDockWidget* cellDock = dock(cellPanel_, tr("Cells"), "cellDock", Qt::RightDockWidgetArea);
  splitDockWidget(dataDock, cellDock, Qt::Vertical);
  pipelinePanel_ = new PipelinePanel(this);
  QDockWidget* pipelineDock = dock(pipelinePanel_, tr("Discover regions"), "pipelineDock", Qt::RightDockWidgetArea);
  tabifyDockWidget(cellDock, pipelineDock);
  trainingPanel_ = new TrainingPanel(this);
  QDockWidget* trainingDock = dock(trainingPanel_, tr("Train model"), "trainingDock", Qt::RightDockWidgetArea);
  tabifyDockWidget(pipelineDock, trainingDock);
  cellDock->raise();
  for (QDockWidget* d : {dataDock, cellDock, pipelineDock, trainingDock}) d->hide(); // no empty panels beside the atlas
  auto* across = new RegionsAcrossPanel(*engine_, this);
  QDockWidget* acrossDock = dock(across, tr("Regions across datasets"), "regionsAcrossDock", Qt::LeftDockWidgetArea);
  tabifyDockWidget(matchDock, acrossDock);
  acrossDock->hide();
  auto* atlasCompare = new AtlasComparePanel(this);
  QDockWidget* compareDock = dock(atlasCompare, tr("Atlas comparison"), "atlasCompareDock", Qt::LeftDockWidgetArea);
  tabifyDockWidget(acrossDock, compareDock);
  compareDock->hide(); // shown once two atlases are read
  new AtlasCompareBinding(*engine_, atlasCompare, atlasTabs_, compareDock);
  connect(across, &RegionsAcrossPanel::matched, acrossDock, [acrossDock] {
    acrossDock->show();
    acrossDock->raise();
  });
  sectionView_ = new SectionView(this);
  dock(sectionView_, tr("Section (2D)"), "sectionDock", Qt::BottomDockWidgetArea)->hide();
  docks_ = new DatasetDocks(*engine_, matchPanel_, sectionView_, this);
  connect(docks_, &DatasetDocks::regionsAvailable, matchDock, &QDockWidget::setVisible);

  // One job at a time: a second one waits for the first (train, then discover regions).
  auto* jobs = new JobQueue(this);
  pipelinePanel_->setQueue(jobs);
  trainingPanel_->setQueue(jobs);
  connect(trainingPanel_, &TrainingPanel::modelReady, this, [this](const QString& model) {
    pipelinePanel_->setModel(model);
    statusBar()->showMessage(tr("Model trained: %1 (used by Discover regions)").arg(model), 15000);
  });
  // A finished region job: its dataset copy opens beside the original, coloured by the coarsest resolution.
  // It takes the place of the dataset it was made from, which is hidden (not closed: both stay).
  connect(pipelinePanel_, &PipelinePanel::regionsReady, this,
          [this, &ws](const QString& result, const QJsonObject& summary) {
            const QJsonArray res = summary.value("resolutions").toArray();
            const DatasetId source = ws.currentDataset();
            const DatasetId id = openDataset(
                result, {},
                res.isEmpty() ? QString()
                              : QStringLiteral("regions_k%1").arg(res.first().toObject().value("k").toInt()));
            if (source >= 0) replaces_[id] = source;
          });
  // The jobs run on the current dataset (a region result is a copy: runs start from the original).
  connect(&ws, &Workspace::currentDatasetChanged, this,
          [this, &ws, dataDock, cellDock, pipelineDock, trainingDock](DatasetId id) {
            const DatasetDocument* d = ws.dataset(id);
            const QString path = d ? d->path : QString();
            if (!path.endsWith(".regions.h5ad", Qt::CaseInsensitive)) {
              pipelinePanel_->setDataset(path);
              trainingPanel_->setDataset(path);
            }
            for (QDockWidget* w : {dataDock, cellDock, pipelineDock, trainingDock})
              if (d && !w->isVisible()) w->show();
            cellDock->raise();
            setWindowTitle(d ? tr("Atlascope — %1").arg(d->name) : tr("Atlascope"));
          });
  connect(&ws, &Workspace::datasetLoaded, this, [this, &ws](DatasetId id) {
    const DatasetDocument* d = ws.dataset(id);
    // A dataset the user opened becomes the one the docks show once it is read.
    if (opening_.erase(id)) ws.setCurrentDataset(id);
    if (const auto it = replaces_.find(id); it != replaces_.end()) {
      ws.setDatasetVisible(it->second, false);
      replaces_.erase(it);
    }
    if (d->cells->skippedCells > 0)
      statusBar()->showMessage(tr("%1: %2 cells skipped (%3)")
                                   .arg(d->name)
                                   .arg(d->cells->skippedCells)
                                   .arg(QString::fromStdString(d->cells->skippedReason)),
                               15000);
  });
  connect(&engine_->data(), &DatasetData::readFailed, this,
          [this](DatasetId, const QString& path, const QString& error) {
            datasetError_ = error;
            statusBar()->showMessage(tr("Could not open %1: %2").arg(path, error), 15000);
            if (dialogsAllowed())
              QMessageBox::warning(this, tr("Open dataset"), tr("Could not open the dataset:\n%1").arg(error));
          });
  connect(&engine_->data(), &DatasetData::colouringFailed, this, [this](DatasetId, const QString& error) {
    statusBar()->showMessage(tr("Cannot colour the cells that way: %1").arg(error), 8000);
  });
  connect(engine_, &Engine::message, this, [this](const QString& text) { statusBar()->showMessage(text, 8000); });

  setAcceptDrops(true);
  selectionLabel_ = new QLabel(tr("Loading the Allen CCF…"), this);
  selectionLabel_->setObjectName("selectionStatus");
  selectionLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  busy_ = new QProgressBar(this);
  busy_->setMaximumWidth(220);
  busy_->setRange(0, 0);
  statusBar()->addWidget(selectionLabel_, 1);
  statusBar()->addPermanentWidget(busy_);
  cancelLoad_ = new QToolButton(this);
  cancelLoad_->setObjectName("cancelDatasetLoading");
  cancelLoad_->setText(tr("Cancel"));
  cancelLoad_->setToolTip(tr("Stop opening the datasets being read (the open ones stay)"));
  cancelLoad_->hide();
  connect(cancelLoad_, &QToolButton::clicked, this, &MainWindow::cancelDatasetLoading);
  statusBar()->addPermanentWidget(cancelLoad_);

  new FileMenu(*this, *engine_, *sectionView_);
  new SessionAutosave(this); // the open state kept on disk against a crash (issue 14)
  addEditMenu(*this, *ws.undoStack(), [this] {
    pipelinePanel_->refreshJobLocation();
    trainingPanel_->refreshJobLocation();
  });
  viewMenu_ = new ViewMenu(*engine_, this, [this] { return activeView_; });
  for (QDockWidget* d : findChildren<QDockWidget*>()) viewMenu_->menu()->addAction(d->toggleViewAction());
  findChild<QDockWidget*>("sectionDock")->toggleViewAction()->setShortcut(QKeySequence(tr("Ctrl+2")));
  addToolBar(new SectionToolbar(*engine_, this));
  new UntypedPipeline(*engine_, *jobs, *trainingPanel_, *pipelinePanel_, *this); // Analysis menu, typing offer
  connect(menuBar()->addMenu(tr("&Help"))->addAction(tr("&About Atlascope")), &QAction::triggered, this, [this] {
    QMessageBox::about(this, tr("About Atlascope"),
                       tr("<b>Atlascope</b> %1<br>A brain-atlas viewer for spatial transcriptomics.<br><br>"
                          "Allen CCF data (annotation, ontology): © 2015 Allen Institute for Brain Science. "
                          "Allen Mouse Brain Common Coordinate Framework v3, Wang et al., Cell 2020, "
                          "doi:10.1016/j.cell.2020.04.007.")
                           .arg(QApplication::applicationVersion()));
  });

  // The views: clicks pick, a right click opens that view's menu, a drag ends in one camera step.
  connect(view_, &VtkView::clicked, this, &MainWindow::onClicked);
  connect(view_, &VtkView::contextClicked, this, [this](int x, int y, QPoint global) {
    if (!engine_->scene()) return;
    activeView_ = std::max(0, engine_->scene()->viewAt(x, y));
    if (QMenu* m = viewMenu_->viewMenu(activeView_)) m->popup(global);
  });
  connect(view_, &VtkView::interacting, this, [this](bool on) {
    if (!engine_->scene()) return;
    engine_->scene()->setInteracting(on);
    if (!on) {
      engine_->scene()->commitCameras(tr("Move camera"));
      renderViews(); // every cell again
    }
  });
  connect(atlasTabs_, &AtlasTreeTabs::selectionChanged, this, [this](AtlasId atlas, int i) {
    if (atlas == docks_->matchedAtlas()) matchPanel_->showSplitsOf(i); // the regions that split it
    const Atlas* a = engine_->atlas(atlas);
    if (!engine_->scene() || !a) return;
    engine_->scene()->setHighlightedStructure(atlas, i >= 0 ? std::optional<int>(i) : std::nullopt);
    if (i < 0) return;
    const Structure& s = a->structures()[i];
    selectionLabel_->setText(
        QStringLiteral("%1: %2 — %3 — id %4 — %5")
            .arg(workspace().atlas(atlas)->name, QString::fromStdString(s.acronym), QString::fromStdString(s.name))
            .arg(s.id)
            .arg(QString::fromStdString(a->structures().pathString(i))));
  });
  connect(engine_, &Engine::atlasLoaded, this, [this, patch] {
    const Atlas* a = engine_->atlas();
    selectionLabel_->setText(tr("%1: %2 structures, %3 x %4 x %5 voxels of %6 um")
                                 .arg(workspace().atlas(kMainAtlas)->name)
                                 .arg(a->structures().size())
                                 .arg(a->annotation().size()[0])
                                 .arg(a->annotation().size()[1])
                                 .arg(a->annotation().size()[2])
                                 .arg(a->annotation().spacingUm()[0]));
    view_->showOrientationMarker(engine_->scene()->renderer(0));
    connect(engine_->scene(), &SceneController::changed, this, &MainWindow::renderViews);
    if (!pendingSession_.isEmpty()) applySession(std::exchange(pendingSession_, {}));
    applyPatch(*engine_, patch); // the command line over the session
    patched_ = true;
    renderViews();
  });
  if (patch.session.isEmpty())
    addDatasets(*engine_, patch); // read while the atlas loads
  else
    pendingSession_ = patch.session;
  connect(engine_, &Engine::atlasFailed, this, [this](const QString& error) {
    selectionLabel_->setText(tr("Could not load the atlas: %1").arg(error));
    if (dialogsAllowed()) QMessageBox::critical(this, tr("Atlascope"), tr("Could not load the atlas:\n%1").arg(error));
    emit idle();
  });
  connect(engine_, &Engine::busyChanged, this, &MainWindow::updateBusy);
  connect(engine_, &Engine::idle, this, [this] {
    updateBusy();
    emit idle();
  });
}

MainWindow::~MainWindow() {
  matchPanel_->waitForMatching(); // it reads the atlas
  engine_->tasks().waitForAll();
}

DatasetId MainWindow::openDataset(const QString& path, const ColumnOptions& columns, const QString& colourBy) {
  datasetError_.clear();
  const DatasetId id = workspace().addDataset(path, columns, {}, colourBy);
  opening_.insert(id);
  statusBar()->showMessage(tr("Reading %1…").arg(path));
  return id;
}

void MainWindow::cancelDatasetLoading() {
  for (DatasetId id : workspace().datasetIds())
    if (!workspace().dataset(id)->cells) engine_->data().cancelReading(id);
  for (AtlasId id : workspace().atlasIds()) // atlases being read beside the window's
    if (id != kMainAtlas && !workspace().atlas(id)->loaded) workspace().discardAtlas(id);
  statusBar()->showMessage(tr("Opening cancelled"), 5000);
  updateBusy();
}

const CellTable* MainWindow::cells() const {
  const DatasetDocument* d = engine_->workspace().dataset(engine_->workspace().currentDataset());
  return d ? d->cells.get() : nullptr;
}

viewer::CellCloud* MainWindow::cellCloud() const {
  return engine_->scene() ? engine_->scene()->cloud(engine_->workspace().currentDataset()) : nullptr;
}

QJsonObject MainWindow::captureSession() const {
  Workspace& ws = engine_->workspace();
  QJsonObject extras{{"regions", pipelinePanel_->settings()},
                     {"window", QJsonObject{{"width", width()}, {"height", height()}}},
                     {"section_view", findChild<QDockWidget*>("sectionDock")->isVisible()}};
  ws.setExtras(extras);
  return ws.toJson(engine_->structureNames());
}

void MainWindow::applySession(const QJsonObject& session) {
  if (!engine_->atlas()) { // structures are named by acronym: the atlas first
    if (session.value("format").toString() != "atlascope-session") throw Error("not an Atlascope session");
    pendingSession_ = session;
    return;
  }
  const QStringList unknown = workspace().restore(session, engine_->structureNames());
  if (!unknown.isEmpty()) statusBar()->showMessage(tr("Not in this atlas: %1").arg(unknown.join(", ")), 15000);
  const QJsonObject extras = workspace().extras();
  const QJsonObject r = extras.value("regions").toObject(), w = extras.value("window").toObject();
  QJsonObject regions{{"model", QString()}, {"smooth", false}}; // a session without them: none, off
  for (auto i = r.begin(); i != r.end(); ++i) regions[i.key()] = i.value();
  pipelinePanel_->applySettings(regions);
  if (w.value("width").toInt() > 0 && w.value("height").toInt() > 0)
    resize(w.value("width").toInt(), w.value("height").toInt());
  findChild<QDockWidget*>("sectionDock")->setVisible(extras.value("section_view").toBool(false));
  renderViews();
}

void MainWindow::renderViews() {
  // Changes come in bursts (a session, a colouring): one frame once they are in.
  if (renderQueued_) return;
  renderQueued_ = true;
  QTimer::singleShot(0, this, [this] {
    renderQueued_ = false;
    if (engine_->scene() && view_->isReady()) view_->render();
  });
}

void MainWindow::saveViewImage(const QString& path, int scale) {
  engine_->writeImage(path, view_->size() * view_->devicePixelRatioF() * std::max(1, scale));
}

QImage MainWindow::windowImage() {
  QImage img = grab().toImage().convertToFormat(QImage::Format_RGB32);
  if (!engine_->scene() || !view_->isVisible() || !view_->isReady()) return img;
  // What VTK drew into the native window, which QWidget::grab cannot see (TOOLCHAIN.md).
  view_->render();
  const QImage vtk = grabImage(view_->renderWindow());
  QPainter painter(&img);
  painter.drawImage(
      QRect(view_->mapTo(this, QPoint(0, 0)) * img.devicePixelRatio(), view_->size() * img.devicePixelRatio()), vtk);
  return img;
}

QString MainWindow::statusText() const { return selectionLabel_->text(); }

vtkRenderWindow* MainWindow::renderWindow() const { return view_->renderWindow(); }
QSize MainWindow::viewPixels() const { return view_->size() * view_->devicePixelRatioF(); }
void MainWindow::renderNow() { view_->render(); }
bool MainWindow::writeFigure(const QString& path, QSize size) {
  return atlascope::app::writeFigure(path, size, *engine_, *sectionView_);
}

void MainWindow::updateBusy() {
  bool reading = false;
  for (DatasetId id : workspace().datasetIds()) reading = reading || !workspace().dataset(id)->cells;
  const bool busy = !engine_->isIdle();
  busy_->setVisible(busy);
  busy_->setFormat(engine_->atlasLoading()          ? tr("loading atlas")
                   : engine_->atlasesLoading() > 0  ? tr("reading %n atlas(es)", nullptr, engine_->atlasesLoading())
                   : reading                        ? tr("reading cells")
                   : engine_->pendingSurfaces() > 0 ? tr("building %1 surface(s)").arg(engine_->pendingSurfaces())
                                                    : tr("working"));
  busy_->setTextVisible(true);
  cancelLoad_->setVisible(reading || engine_->atlasesLoading() > 0);
}

void MainWindow::onClicked(int x, int y) {
  SceneController* scene = engine_->scene();
  if (!scene) return;
  const SceneController::Hit hit = scene->pick(x, y);
  if (hit.view >= 0) activeView_ = hit.view;
  if (hit.cell >= 0) {
    workspace().setCurrentDataset(hit.dataset);
    showCellDetails(hit.dataset, hit.cell);
  } else if (hit.region >= 0) {
    // The same selection as the dock's list: the region's cells alone, its outline, its matches.
    workspace().setCurrentDataset(hit.dataset);
    workspace().setHighlightedRegion(hit.dataset, hit.region);
  } else if (hit.structure >= 0) {
    atlasTabs_->select(hit.atlas, hit.structure);
  }
}

void MainWindow::showCellDetails(DatasetId id, std::int64_t cell) {
  const QString html = cellDetails(*engine_, id, cell);
  if (html.isEmpty()) return;
  cellPanel_->setCellInfo(html);
  QString plain = html;
  plain.replace("<br>", " — ").remove("<b>").remove("</b>");
  selectionLabel_->setText(plain);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  for (const QUrl& url : e->mimeData()->urls())
    if (url.isLocalFile()) openDataset(url.toLocalFile());
}

} // namespace atlascope::app
