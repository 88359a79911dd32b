#pragma once
// The training panel: train CellTransformer on the open dataset in the background (an
// `atlascope-cli train` worker process), with a progress bar and ETA, a live curve of the training
// loss and the validation NLL against the per-gene-mean baseline (Qt Charts), cancel and resume.
// A finished (or cancelled) run's checkpoint is announced so that the region step uses it.
#include <QJsonObject>
#include <QList>
#include <QPointF>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QChart;
class QLineSeries;
class QScatterSeries;
class QValueAxis;

namespace atlascope::app {

class JobQueue;
class WorkerJob;

class TrainingPanel : public QWidget {
  Q_OBJECT
public:
  explicit TrainingPanel(QWidget* parent = nullptr);

  void setDataset(const QString& path);
  static QString modelPathFor(const QString& dataset); // DATASET stem + .model.h5, beside it
  // The curves drawn: training loss per step, validation loss per epoch (x: step).
  QList<QPointF> lossCurve() const;
  QList<QPointF> validationCurve() const;
  WorkerJob* job() const { return job_; }
  bool isRunning() const;
  bool isQueued() const; // waiting in the window's job queue
  void setQueue(JobQueue* queue) { queue_ = queue; }
  QString lastError() const { return lastError_; }

  // Preferences changed: the GPUs row follows the worker.
  void refreshJobLocation();

public slots:
  void start();
  void cancel();

signals:
  void modelReady(const QString& path);

private:
  void onMessage(const QJsonObject& o);

  QString dataset_, lastError_;
  QComboBox* size_;
  QSpinBox* epochs_;
  QComboBox* device_;
  class GpuCountField* gpus_;
  QCheckBox* resume_;
  QPushButton* start_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  QChart* chart_;
  QLineSeries* loss_;
  QScatterSeries* validation_;
  QLineSeries* baseline_;
  QValueAxis* xAxis_;
  QValueAxis* yAxis_;
  double yMax_ = 0, yMin_ = 1e30;
  WorkerJob* job_;
  JobQueue* queue_ = nullptr;
  void startJob();
};

} // namespace atlascope::app
