#include "app/gui/TrainingPanel.h"

#include "app/gui/GpuCountField.h"
#include "app/gui/JobQueue.h"
#include "app/gui/WorkerJob.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>

namespace atlascope::app {

TrainingPanel::TrainingPanel(QWidget* parent) : QWidget(parent), job_(new WorkerJob(this)) {
  auto* layout = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  size_ = new QComboBox;
  size_->setObjectName(QStringLiteral("sizeBox"));
  size_->addItems({"compact", "released"});
  size_->setToolTip(tr("compact: E 128, 2+2 layers (minutes on a CPU); released: E 384, 4+4 layers (a GPU)"));
  form->addRow(tr("Model size"), size_);
  epochs_ = new QSpinBox;
  epochs_->setObjectName(QStringLiteral("epochsBox"));
  epochs_->setRange(1, 1000);
  epochs_->setValue(1);
  form->addRow(tr("Epochs"), epochs_);
  device_ = new QComboBox;
  device_->setObjectName(QStringLiteral("deviceBox"));
  device_->addItems({"auto", "cpu", "cuda"});
  form->addRow(tr("Device"), device_);
  gpus_ = new GpuCountField(form);
  resume_ = new QCheckBox(tr("Resume the last run"));
  resume_->setObjectName(QStringLiteral("resumeBox"));
  form->addRow(QString(), resume_);
  layout->addLayout(form);
  auto* buttons = new QHBoxLayout;
  start_ = new QPushButton(tr("Train"));
  start_->setObjectName(QStringLiteral("startButton"));
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setObjectName(QStringLiteral("cancelButton"));
  cancel_->setEnabled(false);
  start_->setEnabled(false);
  buttons->addWidget(start_);
  buttons->addWidget(cancel_);
  layout->addLayout(buttons);
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("progressBar"));
  progress_->setRange(0, 1000);
  layout->addWidget(progress_);
  status_ = new QLabel(tr("Open a dataset to train a model on it."));
  status_->setWordWrap(true);
  layout->addWidget(status_);

  chart_ = new QChart;
  chart_->setTitle(tr("Loss (ZINB NLL per gene)"));
  loss_ = new QLineSeries;
  loss_->setName(tr("training"));
  validation_ = new QScatterSeries;
  validation_->setName(tr("validation"));
  validation_->setMarkerSize(8);
  baseline_ = new QLineSeries;
  baseline_->setName(tr("baseline (gene means)"));
  QPen dashed(Qt::gray);
  dashed.setStyle(Qt::DashLine);
  baseline_->setPen(dashed);
  xAxis_ = new QValueAxis;
  xAxis_->setTitleText(tr("step"));
  xAxis_->setLabelFormat("%d");
  yAxis_ = new QValueAxis;
  for (QAbstractSeries* s : std::initializer_list<QAbstractSeries*>{loss_, validation_, baseline_})
    chart_->addSeries(s);
  chart_->addAxis(xAxis_, Qt::AlignBottom);
  chart_->addAxis(yAxis_, Qt::AlignLeft);
  for (QAbstractSeries* s : chart_->series()) {
    s->attachAxis(xAxis_);
    s->attachAxis(yAxis_);
  }
  auto* view = new QChartView(chart_);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(220);
  layout->addWidget(view, 1);

  connect(start_, &QPushButton::clicked, this, &TrainingPanel::start);
  connect(cancel_, &QPushButton::clicked, this, &TrainingPanel::cancel);
  connect(job_, &WorkerJob::message, this, &TrainingPanel::onMessage);
  connect(job_, &WorkerJob::progress, this, [this](const QString&, qint64 done, qint64 total, double eta) {
    if (total > 0) progress_->setValue(static_cast<int>(1000 * done / total));
    QString text = tr("step %1 of %2").arg(done).arg(total);
    if (eta >= 0) text += tr(", about %1 s left").arg(static_cast<int>(eta + 0.5));
    status_->setText(text);
  });
  auto finish = [this] {
    start_->setEnabled(!dataset_.isEmpty());
    cancel_->setEnabled(false);
    if (queue_) queue_->ended(this); // the next job starts after this handler (and modelReady)
  };
  connect(job_, &WorkerJob::finished, this, [this, finish](const QJsonObject& r) {
    finish();
    lastError_.clear();
    progress_->setValue(1000);
    status_->setText(tr("Trained: validation NLL %1 (baseline %2), r %3 (baseline %4); %5 cells/s")
                         .arg(r.value("validation_nll").toDouble(), 0, 'f', 3)
                         .arg(r.value("baseline_nll").toDouble(), 0, 'f', 3)
                         .arg(r.value("validation_pearson").toDouble(), 0, 'f', 3)
                         .arg(r.value("baseline_pearson").toDouble(), 0, 'f', 3)
                         .arg(r.value("cells_per_s").toDouble(), 0, 'f', 0));
    resume_->setChecked(false);
    emit modelReady(r.value("out").toString());
  });
  connect(job_, &WorkerJob::failed, this, [this, finish](const QString& message) {
    finish();
    lastError_ = message;
    const bool cancelled = message == tr("cancelled");
    status_->setText(cancelled ? tr("Cancelled; the checkpoint is kept: tick Resume to continue.")
                               : tr("Failed: %1").arg(message));
    if (cancelled) resume_->setChecked(true);
  });
}

QString TrainingPanel::modelPathFor(const QString& dataset) {
  const QFileInfo f(dataset);
  return f.dir().filePath(f.completeBaseName() + ".model.h5");
}

void TrainingPanel::setDataset(const QString& path) {
  dataset_ = path;
  start_->setEnabled(!path.isEmpty() && !isRunning());
  status_->setText(path.isEmpty() ? tr("Open a dataset to train a model on it.")
                                  : tr("Ready: %1").arg(QFileInfo(path).fileName()));
}

bool TrainingPanel::isRunning() const { return job_->isRunning(); }

QList<QPointF> TrainingPanel::lossCurve() const { return loss_->points(); }
QList<QPointF> TrainingPanel::validationCurve() const { return validation_->points(); }

void TrainingPanel::start() {
  if (dataset_.isEmpty() || job_->isRunning() || isQueued()) return;
  start_->setEnabled(false);
  cancel_->setEnabled(true);
  if (queue_) {
    if (!queue_->submit(this, tr("Train model"), [this] { startJob(); }))
      status_->setText(tr("Queued: starts when %1 ends (Cancel takes it out).").arg(queue_->runningLabel()));
    return;
  }
  startJob();
}

void TrainingPanel::refreshJobLocation() { gpus_->refresh(); }

bool TrainingPanel::isQueued() const { return queue_ && queue_->isWaiting(this); }

void TrainingPanel::startJob() {
  QStringList args{"train",       dataset_,
                   "--out",       modelPathFor(dataset_),
                   "--epochs",    QString::number(epochs_->value()),
                   "--size",      size_->currentText(),
                   "--device",    device_->currentText(),
                   "--log-every", "1"};
  args << gpus_->arguments(device_->currentText());
  // On a host without this machine's files: the dataset (and a checkpoint to resume) go there,
  // the checkpoints come back.
  const QString model = modelPathFor(dataset_),
                best = QFileInfo(model).dir().filePath(QFileInfo(model).completeBaseName() + ".best.h5");
  JobFiles files{{dataset_}, {model, best, model + ".train"}};
  if (resume_->isChecked()) {
    args << "--resume";
    files.inputs << model << model + ".train";
  } else {
    loss_->clear();
    validation_->clear();
    baseline_->clear();
    yMax_ = 0;
    yMin_ = 1e30;
  }
  start_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setValue(0);
  status_->setText(tr("Starting…"));
  job_->start(args, files);
}

void TrainingPanel::cancel() {
  if (queue_ && queue_->remove(this)) {
    start_->setEnabled(!dataset_.isEmpty());
    cancel_->setEnabled(false);
    status_->setText(tr("Taken out of the queue."));
    return;
  }
  job_->cancel();
}

void TrainingPanel::onMessage(const QJsonObject& o) {
  const QString stage = o.value("stage").toString();
  double step = 0, y = 0;
  if (stage == "training") {
    step = o.value("step").toDouble();
    y = o.value("loss").toDouble();
    loss_->append(step, y);
  } else if (stage == "validation") {
    const QJsonObject m = o.value("metrics").toObject();
    step = m.value("step").toDouble();
    y = m.value("nll").toDouble();
    validation_->append(step, y);
    const double b = m.value("baseline_nll").toDouble();
    baseline_->clear();
    baseline_->append(0, b);
    baseline_->append(std::max(1.0, step), b);
    yMax_ = std::max(yMax_, b);
    yMin_ = std::min(yMin_, b);
  } else {
    return;
  }
  // Axes follow the data; the first steps' large losses would flatten the rest, so the top is
  // capped at three times the latest value.
  yMin_ = std::min(yMin_, y);
  yMax_ = std::max(yMax_, y);
  xAxis_->setRange(0, std::max(1.0, step));
  yAxis_->setRange(std::max(0.0, yMin_ * 0.9), std::min(yMax_ * 1.05, std::max(3 * y, yMin_ * 1.5)));
}

} // namespace atlascope::app
