#pragma once
// Cell types for data that has none, in the window (issue 15). When the current dataset has no
// cell-type column, a bar in the Data dock offers to type its cells from expression
// (`atlascope-cli celltypes` as a worker process) or to go from the untyped data to regions:
// type cells, train a model (the Train model dock's settings: compact, 1 epoch by default), then
// discover regions with it (the Discover regions dock's settings). Each step is a job in the
// window's queue, submitted when the one before it has succeeded, so its command is built from the
// previous output (the typed copy, then the trained model). Analysis > Type cells / Untyped to
// regions do the same for any dataset.
//
// The offer is a bar, not a dialog: nothing waits for a person, so headless runs and tests see it
// and go on. The typed copy (DATA stem + .typed.h5ad beside it, or in the app's data folder when
// that folder is read-only) opens in the workspace as an undoable Open, coloured by its types, and
// takes the untyped dataset's place (which is hidden, not closed); the regions open as the region
// step's results always do. Progress and Cancel in the bar; a failed or cancelled step shows the
// worker's message and leaves the open data and the files as they were.
#include "app/workspace/Workspace.h"

#include <QJsonObject>
#include <QObject>
#include <QString>

#include <set>

class QAction;
class QLabel;
class QMainWindow;
class QProgressBar;
class QPushButton;
class QWidget;

namespace atlascope::app {

class Engine;
class JobQueue;
class PipelinePanel;
class TrainingPanel;
class WorkerJob;

class UntypedPipeline : public QObject {
  Q_OBJECT
public:
  // Adds the Analysis menu to `window` and the bar to its Data dock ("dataDock").
  UntypedPipeline(Engine& engine, JobQueue& queue, TrainingPanel& training, PipelinePanel& regions,
                  QMainWindow& window);

  // Where the typed copy of `dataset` goes: its stem + .typed.h5ad beside it (a folder's name for
  // a folder), or in the app's data folder when that folder cannot be written.
  static QString typedPathFor(const QString& dataset);

  enum class Step { Idle, Typing, Training, Regions };
  Step step() const { return step_; }
  bool isBusy() const { return step_ != Step::Idle; }
  QString lastError() const { return lastError_; } // the last failed step's message ("cancelled" when cancelled)
  QString typedPath() const { return typed_; }     // the last typing's output

public slots:
  void typeCells();     // the current dataset: types from expression, the typed copy opens
  void typeToRegions(); // ... then train on it and discover regions with the model
  void cancel();        // the step running or waiting; the later steps are not started

signals:
  void stepChanged(Step step);

private:
  void start(bool chain);
  void startTyping();
  void onTyped(const QJsonObject& result);
  void stopped(const QString& message); // a step failed or was cancelled: the chain ends here
  void checkSteps();                    // a queue change: did the train or region step end without a result?
  void setStep(Step step);
  void refresh(); // the bar and the actions, for the current dataset and the step
  bool offered(const DatasetDocument* d) const;
  void raiseDock(const char* name);

  Engine& engine_;
  JobQueue& queue_;
  TrainingPanel& training_;
  PipelinePanel& regions_;
  QMainWindow& window_;
  WorkerJob* job_;
  Step step_ = Step::Idle;
  bool chain_ = false, cancelled_ = false;
  QString source_, typed_, column_, lastError_, message_;
  ColumnOptions columns_;
  DatasetId sourceId_ = -1, typedId_ = -1;
  std::set<QString> dismissed_; // datasets whose offer was closed
  QWidget* bar_;
  QLabel* text_;
  QProgressBar* progress_;
  QPushButton* typeButton_;
  QPushButton* chainButton_;
  QPushButton* cancelButton_;
  QPushButton* closeButton_;
  QAction* typeAction_;
  QAction* chainAction_;
};

} // namespace atlascope::app
