#pragma once
// The region-discovery panel: model (or the composition baseline), resolutions, smoothing,
// device; "Discover regions" runs `atlascope-cli segment` as a worker process (WorkerJob) with a
// progress bar, ETA, log and cancel. One job at a time; the window stays responsive. The result
// (a copy of the dataset with regions_k<k> columns) is announced for the main window to open.
#include <QJsonObject>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QChart;
class QChartView;

namespace atlascope::app {

class JobQueue;
class WorkerJob;

class PipelinePanel : public QWidget {
  Q_OBJECT
public:
  explicit PipelinePanel(QWidget* parent = nullptr);

  void setDataset(const QString& path); // the dataset the jobs run on (empty: none)
  QString dataset() const { return dataset_; }
  // Where the results of `dataset` go: DATASET minus .h5ad plus .regions.h5ad, beside it.
  static QString resultPathFor(const QString& dataset);
  // The form as data (model, k, device, smooth), as sessions keep it; applySettings() takes the
  // keys it finds and leaves the others.
  QJsonObject settings() const;
  void applySettings(const QJsonObject& settings);
  void setModel(const QString& path); // the weights the next run uses (empty: composition baseline)
  void setResolutions(const QString& ks);
  // The last result's scores, one row per k (sortable): AMI, ARI, NMI and V-measure against each
  // reference the job scored (the CCF level, ground truths), and the spatial coherence.
  // The scores table as CSV (atomic); false when it cannot be written.
  bool writeScoresCsv(const QString& path) const;
  // The chart as vector PDF (lines and text stay sharp at any size).
  bool writeScoresChartPdf(const QString& path) const;
  bool isRunning() const;
  bool isQueued() const; // waiting in the window's job queue
  // The window's queue: one job at a time (none: start at once).
  void setQueue(JobQueue* queue) { queue_ = queue; }
  WorkerJob* job() const { return job_; }
  QString lastError() const { return lastError_; }

  // Preferences changed: the GPUs row follows the worker.
  void refreshJobLocation();

public slots:
  void run();
  void cancel();

signals:
  void regionsReady(const QString& resultPath, const QJsonObject& summary);
  void runningChanged(bool running);

private:
  QString dataset_, lastError_;
  QLineEdit* model_;
  QLineEdit* ks_;
  QCheckBox* smooth_;
  QComboBox* device_;
  class GpuCountField* gpus_;
  QPushButton* run_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  QPlainTextEdit* log_;
  QTableWidget* scores_;
  QChart* chart_;
  QChartView* chartView_;
  WorkerJob* job_;
  JobQueue* queue_ = nullptr;
  void startJob();
  void showScores(const QJsonObject& summary); // the table, and a line per k in the log
};

} // namespace atlascope::app
