#include "app/gui/UntypedPipeline.h"

#include "app/gui/JobQueue.h"
#include "app/gui/PipelinePanel.h"
#include "app/gui/TrainingPanel.h"
#include "app/gui/WorkerJob.h"
#include "app/scene/Engine.h"

#include <QAction>
#include <QBoxLayout>
#include <QDir>
#include <QDockWidget>
#include <QFileInfo>
#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QProgressBar>
#include <QPushButton>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTimer>
#include <QVBoxLayout>

namespace atlascope::app {

namespace {
// The column options a dataset was opened with, as the CLI's flags.
QStringList columnFlags(const ColumnOptions& c) {
  QStringList a;
  forEachColumnOption(c, [&a](const char* name, const std::string& v) {
    if (columnOptionSet(name, v)) a << QStringLiteral("--%1").arg(name) << QString::fromStdString(v);
  });
  return a;
}
} // namespace

UntypedPipeline::UntypedPipeline(Engine& engine, JobQueue& queue, TrainingPanel& training, PipelinePanel& regions,
                                 QMainWindow& window)
    : QObject(&window), engine_(engine), queue_(queue), training_(training), regions_(regions), window_(window),
      job_(new WorkerJob(this)) {
  // The bar: under the Data dock's list, shown while it has something to offer or report.
  auto* frame = new QFrame;
  frame->setObjectName("typingBar");
  frame->setFrameShape(QFrame::StyledPanel);
  bar_ = frame;
  text_ = new QLabel(bar_);
  text_->setObjectName("typingBarText");
  text_->setWordWrap(true);
  text_->setMinimumHeight(3 * text_->fontMetrics().lineSpacing()); // the dock may be short: room for 3 lines
  progress_ = new QProgressBar(bar_);
  progress_->setObjectName("typingProgress");
  progress_->setRange(0, 1000);
  typeButton_ = new QPushButton(tr("Type cells"), bar_);
  typeButton_->setObjectName("typeCellsButton");
  typeButton_->setToolTip(tr("Cell types from expression (normalise, PCA, kNN graph, Leiden) into a typed copy"));
  chainButton_ = new QPushButton(tr("Type, train, discover regions"), bar_);
  chainButton_->setObjectName("typeToRegionsButton");
  chainButton_->setToolTip(tr("Type the cells, train a model on them (Train model dock) and discover regions with it "
                              "(Discover regions dock): three jobs, one after the other"));
  cancelButton_ = new QPushButton(tr("Cancel"), bar_);
  cancelButton_->setObjectName("typingCancel");
  closeButton_ = new QPushButton(tr("Dismiss"), bar_);
  closeButton_->setObjectName("typingDismiss");
  auto* buttons = new QHBoxLayout;
  buttons->setContentsMargins(0, 0, 0, 0);
  for (QPushButton* b : {typeButton_, chainButton_, cancelButton_, closeButton_}) buttons->addWidget(b);
  buttons->addStretch(1);
  auto* layout = new QVBoxLayout(bar_);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->addWidget(text_);
  layout->addWidget(progress_);
  layout->addLayout(buttons);
  if (auto* dock = window.findChild<QDockWidget*>("dataDock"); dock && dock->widget())
    if (auto* box = qobject_cast<QBoxLayout*>(dock->widget()->layout())) box->addWidget(bar_);
  if (!bar_->parent()) bar_->setParent(&window); // no Data dock: kept, never shown
  bar_->hide();

  QMenu* menu = window.menuBar()->addMenu(tr("&Analysis"));
  typeAction_ = menu->addAction(tr("&Type cells"));
  typeAction_->setObjectName("typeCells");
  typeAction_->setToolTip(typeButton_->toolTip());
  chainAction_ = menu->addAction(tr("&Untyped to regions (type, train, discover)"));
  chainAction_->setObjectName("typeToRegions");
  chainAction_->setToolTip(chainButton_->toolTip());

  connect(typeAction_, &QAction::triggered, this, &UntypedPipeline::typeCells);
  connect(chainAction_, &QAction::triggered, this, &UntypedPipeline::typeToRegions);
  connect(typeButton_, &QPushButton::clicked, this, &UntypedPipeline::typeCells);
  connect(chainButton_, &QPushButton::clicked, this, &UntypedPipeline::typeToRegions);
  connect(cancelButton_, &QPushButton::clicked, this, &UntypedPipeline::cancel);
  connect(closeButton_, &QPushButton::clicked, this, [this] {
    if (const DatasetDocument* d = engine_.workspace().dataset(engine_.workspace().currentDataset()))
      dismissed_.insert(d->path);
    message_.clear();
    refresh();
  });

  connect(job_, &WorkerJob::progress, this, [this](const QString& stage, qint64 done, qint64 total, double eta) {
    progress_->setRange(0, 1000);
    progress_->setValue(total > 0 ? static_cast<int>(1000 * done / total) : 0);
    QString text = chain_ ? tr("Step 1 of 3, typing cells: %1").arg(stage) : tr("Typing cells: %1").arg(stage);
    if (eta >= 0) text += tr(", about %1 s left").arg(static_cast<int>(eta + 0.5));
    text_->setText(text);
    text_->setToolTip(text);
  });
  connect(job_, &WorkerJob::finished, this, &UntypedPipeline::onTyped);
  connect(job_, &WorkerJob::failed, this, [this](const QString& message) {
    stopped(message);
    queue_.ended(this);
  });
  // The next steps: the trained model goes to the region step (the window has handed it to the
  // Discover regions dock by now), the regions open through the window.
  connect(&training_, &TrainingPanel::modelReady, this, [this](const QString& model) {
    if (step_ != Step::Training) return;
    setStep(Step::Regions);
    regions_.setDataset(typed_);
    regions_.run();
    raiseDock("pipelineDock");
    message_ = tr("Step 3 of 3: discovering regions with %1 (Discover regions dock)").arg(QFileInfo(model).fileName());
    refresh();
  });
  connect(&regions_, &PipelinePanel::regionsReady, this, [this](const QString& result) {
    if (step_ != Step::Regions) return;
    setStep(Step::Idle);
    message_ = tr("Done: regions in %1").arg(QFileInfo(result).fileName());
    refresh();
  });
  connect(&queue_, &JobQueue::changed, this, [this] {
    // After the step's own handlers (its result signal comes after it leaves the queue).
    QTimer::singleShot(0, this, &UntypedPipeline::checkSteps);
  });

  Workspace& ws = engine_.workspace();
  connect(&ws, &Workspace::currentDatasetChanged, this, &UntypedPipeline::refresh);
  connect(&ws, &Workspace::datasetLoaded, this, [this, &ws](DatasetId id) {
    if (id == typedId_) { // the typed copy takes the untyped dataset's place
      typedId_ = -1;
      ws.setCurrentDataset(id);
      if (ws.dataset(sourceId_) && ws.dataset(sourceId_)->display.visible) ws.setDatasetVisible(sourceId_, false);
    }
    const DatasetDocument* d = ws.dataset(id);
    if (d && offered(d) && id == ws.currentDataset())
      window_.statusBar()->showMessage(
          tr("%1 has no cell types: Type cells (Data dock, Analysis menu) finds them from expression").arg(d->name),
          15000);
    refresh();
  });
  connect(&ws, &Workspace::datasetRemoved, this, [this](DatasetId id) {
    if (id == typedId_) typedId_ = -1;
    refresh();
  });
  refresh();
}

QString UntypedPipeline::typedPathFor(const QString& dataset) {
  const QFileInfo f(QDir::cleanPath(dataset));
  QDir dir = f.dir();
  if (!QFileInfo(dir.path()).isWritable()) {
    dir = QDir(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation));
    dir.mkpath(".");
  }
  return dir.filePath(f.completeBaseName() + ".typed.h5ad");
}

bool UntypedPipeline::offered(const DatasetDocument* d) const {
  return d && d->cells && d->cells->types.names.empty() && !dismissed_.count(d->path);
}

void UntypedPipeline::typeCells() { start(false); }
void UntypedPipeline::typeToRegions() { start(true); }

void UntypedPipeline::start(bool chain) {
  Workspace& ws = engine_.workspace();
  const DatasetDocument* d = ws.dataset(ws.currentDataset());
  // Jobs already running or waiting end before this one starts (one at a time, in order).
  if (!d || !d->cells || isBusy()) return;
  chain_ = chain;
  cancelled_ = false;
  source_ = d->path;
  sourceId_ = d->id;
  columns_ = d->columns;
  typed_ = typedPathFor(source_);
  lastError_.clear();
  setStep(Step::Typing);
  message_ = tr("Queued: starts when %1 ends.");
  if (queue_.submit(this, tr("Type cells"), [this] { startTyping(); })) return;
  message_ = message_.arg(queue_.runningLabel());
  refresh();
}

void UntypedPipeline::startTyping() {
  QStringList args{"celltypes", source_, "--out", typed_};
  args << columnFlags(columns_);
  message_ = chain_ ? tr("Step 1 of 3: typing cells…") : tr("Typing cells…");
  refresh();
  job_->start(args, JobFiles{{source_}, {typed_}}); // on a host without these files: copied there and back
}

void UntypedPipeline::onTyped(const QJsonObject& r) {
  Workspace& ws = engine_.workspace();
  typed_ = r.value("out").toString(typed_);
  column_ = r.value("column").toString("celltype_leiden");
  // Each type's marker genes are in the Cells dock's legend (tooltips) once the copy is open.
  message_ = tr("%1 cell types in %2 s. ").arg(r.value("types").toInt()).arg(r.value("seconds").toDouble(), 0, 'f', 1);
  typedId_ = ws.addDataset(typed_, {}, {}, column_);
  if (chain_) {
    // Queued behind this job, which ends below: it starts next, on the typed copy.
    setStep(Step::Training);
    training_.setDataset(typed_);
    training_.start();
    raiseDock("trainingDock");
    message_ += tr("Step 2 of 3: training a model (Train model dock).");
  } else {
    setStep(Step::Idle);
    message_ += tr("Opening %1.").arg(QFileInfo(typed_).fileName());
  }
  window_.statusBar()->showMessage(message_, 15000);
  refresh();
  queue_.ended(this);
}

void UntypedPipeline::stopped(const QString& message) {
  const bool cancelled = cancelled_ || message == tr("cancelled");
  lastError_ = cancelled ? tr("cancelled") : message;
  const Step was = step_;
  setStep(Step::Idle);
  const QString what = was == Step::Typing     ? tr("Typing cells")
                       : was == Step::Training ? tr("Training")
                                               : tr("Discovering regions");
  message_ = cancelled ? tr("%1 cancelled; the data are as they were.").arg(what)
                       : tr("%1 failed: %2 (the data are as they were)").arg(what, message);
  window_.statusBar()->showMessage(message_, 15000);
  refresh();
}

void UntypedPipeline::checkSteps() {
  if (step_ == Step::Training && !training_.isRunning() && !training_.isQueued())
    stopped(training_.lastError().isEmpty() ? tr("the training ended without a model") : training_.lastError());
  else if (step_ == Step::Regions && !regions_.isRunning() && !regions_.isQueued())
    stopped(regions_.lastError().isEmpty() ? tr("the region step ended without regions") : regions_.lastError());
}

void UntypedPipeline::cancel() {
  switch (step_) {
  case Step::Idle: return;
  case Step::Typing:
    cancelled_ = true;
    if (queue_.remove(this)) {
      stopped(tr("cancelled"));
      message_ = tr("Taken out of the queue; nothing was written.");
      refresh();
    } else {
      job_->cancel(); // the worker stops; failed() ends the step
    }
    return;
  case Step::Training:
    cancelled_ = true;
    training_.cancel();
    return;
  case Step::Regions:
    cancelled_ = true;
    regions_.cancel();
    return;
  }
}

void UntypedPipeline::setStep(Step step) {
  if (step == step_) return;
  step_ = step;
  // Typing reports its progress here; the later steps in their own docks (a busy bar here).
  progress_->setRange(0, step == Step::Training || step == Step::Regions ? 0 : 1000);
  progress_->setValue(0);
  emit stepChanged(step);
}

void UntypedPipeline::raiseDock(const char* name) {
  if (auto* dock = window_.findChild<QDockWidget*>(name)) {
    dock->show();
    dock->raise();
  }
}

void UntypedPipeline::refresh() {
  const Workspace& ws = engine_.workspace();
  const DatasetDocument* d = ws.dataset(ws.currentDataset());
  const bool busy = isBusy();
  const bool canStart = !busy && d && d->cells && !d->path.endsWith(".regions.h5ad", Qt::CaseInsensitive);
  typeAction_->setEnabled(canStart);
  chainAction_->setEnabled(canStart);
  const bool offer = !busy && offered(d);
  QString text = message_;
  if (offer && text.isEmpty())
    text = tr("No cell types in %1: find them from expression (Leiden), or go on to regions.").arg(d->name);
  bar_->setVisible(busy || offer || !message_.isEmpty());
  if (step_ != Step::Typing || !job_->isRunning()) { // the worker's progress otherwise
    text_->setText(text);
    text_->setToolTip(text);
  }
  typeButton_->setVisible(canStart && offer);
  chainButton_->setVisible(canStart && offer);
  cancelButton_->setVisible(busy);
  closeButton_->setVisible(!busy);
  progress_->setVisible(busy);
}

} // namespace atlascope::app
