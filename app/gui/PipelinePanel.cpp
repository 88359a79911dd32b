#include "app/gui/PipelinePanel.h"

#include "app/gui/GpuCountField.h"
#include "app/gui/JobQueue.h"
#include "app/gui/PdfExport.h"
#include "app/gui/WorkerJob.h"
#include "core/AtomicFile.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QValueAxis>

namespace atlascope::app {

PipelinePanel::PipelinePanel(QWidget* parent) : QWidget(parent), job_(new WorkerJob(this)) {
  auto* layout = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  auto* modelRow = new QHBoxLayout;
  model_ = new QLineEdit;
  model_->setObjectName(QStringLiteral("modelEdit"));
  model_->setPlaceholderText(tr("none: neighbourhood composition baseline"));
  model_->setToolTip(
      tr("A trained CellTransformer (.h5 checkpoint or reference .pth); empty runs the model-free baseline"));
  auto* browse = new QPushButton(tr("…"));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Model"), {}, tr("Models (*.h5 *.pth *.pt)"));
    if (!f.isEmpty()) model_->setText(f);
  });
  modelRow->addWidget(model_);
  modelRow->addWidget(browse);
  form->addRow(tr("Model"), modelRow);
  ks_ = new QLineEdit("25,100");
  ks_->setObjectName(QStringLiteral("resolutionsEdit"));
  ks_->setToolTip(tr("Resolutions: numbers of regions, comma separated (the paper: 25, 354, 670, 1300)"));
  form->addRow(tr("Regions (k)"), ks_);
  smooth_ = new QCheckBox(tr("Smooth features over neighbouring cells"));
  smooth_->setObjectName(QStringLiteral("smoothBox"));
  form->addRow(QString(), smooth_);
  device_ = new QComboBox;
  device_->setObjectName(QStringLiteral("deviceBox"));
  device_->addItems({"auto", "cpu", "cuda"});
  device_->setToolTip(tr("auto: the worker's GPU when it has one, its CPU otherwise"));
  form->addRow(tr("Device"), device_);
  gpus_ = new GpuCountField(form);
  layout->addLayout(form);
  auto* buttons = new QHBoxLayout;
  run_ = new QPushButton(tr("Discover regions"));
  run_->setObjectName(QStringLiteral("runButton"));
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setObjectName(QStringLiteral("cancelButton"));
  cancel_->setEnabled(false);
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  layout->addLayout(buttons);
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("progressBar"));
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  layout->addWidget(progress_);
  status_ = new QLabel(tr("Open a dataset to discover its regions."));
  status_->setWordWrap(true);
  layout->addWidget(status_);
  scores_ = new QTableWidget(0, 0);
  scores_->setObjectName("scoresTable");
  scores_->setSortingEnabled(true);
  scores_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  scores_->setMinimumHeight(120);
  layout->addWidget(scores_, 1);
  // Scores against k: one line per score (AMI against each reference, hidden splits, coherence).
  chart_ = new QChart;
  chart_->setTitle(tr("Scores against k"));
  chart_->legend()->setAlignment(Qt::AlignBottom);
  chartView_ = new QChartView(chart_, this);
  chartView_->setObjectName("scoresChart");
  chartView_->setRenderHint(QPainter::Antialiasing);
  chartView_->setMinimumHeight(200);
  layout->addWidget(chartView_, 1);
  auto* exportScores = new QPushButton(tr("Export scores (CSV)…"), this);
  exportScores->setObjectName("exportScores");
  connect(exportScores, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export scores"), {}, tr("CSV (*.csv)"));
    if (!path.isEmpty() && !writeScoresCsv(path)) status_->setText(tr("Cannot write %1").arg(path));
  });
  layout->addWidget(exportScores);
  auto* exportChart = new QPushButton(tr("Export chart (PDF)…"), this);
  exportChart->setObjectName("exportScoresChart");
  connect(exportChart, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export the scores chart"), {}, tr("PDF (*.pdf)"));
    if (!path.isEmpty() && !writeScoresChartPdf(path)) status_->setText(tr("Cannot write %1").arg(path));
  });
  layout->addWidget(exportChart);
  log_ = new QPlainTextEdit;
  log_->setObjectName(QStringLiteral("log"));
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  layout->addWidget(log_, 1);
  run_->setEnabled(false);

  connect(run_, &QPushButton::clicked, this, &PipelinePanel::run);
  connect(cancel_, &QPushButton::clicked, this, &PipelinePanel::cancel);
  connect(job_, &WorkerJob::logLine, log_, &QPlainTextEdit::appendPlainText);
  connect(job_, &WorkerJob::progress, this, [this](const QString& stage, qint64 done, qint64 total, double eta) {
    progress_->setValue(total > 0 ? static_cast<int>(1000 * done / total) : 0);
    QString text = stage;
    if (total > 1) text += QString(" %1/%2").arg(done).arg(total);
    if (eta >= 0) text += tr(", about %1 s left").arg(static_cast<int>(eta + 0.5));
    status_->setText(text);
  });
  auto finish = [this] {
    run_->setEnabled(!dataset_.isEmpty());
    cancel_->setEnabled(false);
    emit runningChanged(false);
    if (queue_) queue_->ended(this); // the next job starts after this handler
  };
  connect(job_, &WorkerJob::finished, this, [this, finish](const QJsonObject& result) {
    finish();
    lastError_.clear();
    progress_->setValue(1000);
    status_->setText(tr("Done in %1 s (%2).")
                         .arg(result.value("seconds").toDouble(), 0, 'f', 1)
                         .arg(result.value("features").toString()));
    showScores(result);
    emit regionsReady(resultPathFor(dataset_), result);
  });
  connect(job_, &WorkerJob::failed, this, [this, finish](const QString& message) {
    finish();
    lastError_ = message;
    progress_->setValue(0);
    status_->setText(message == tr("cancelled") ? tr("Cancelled; the previous result (if any) is kept.")
                                                : tr("Failed: %1").arg(message));
    log_->appendPlainText(message);
  });
}

QJsonObject PipelinePanel::settings() const {
  return {{"model", model_->text()},
          {"k", ks_->text()},
          {"device", device_->currentText()},
          {"smooth", smooth_->isChecked()}};
}

void PipelinePanel::applySettings(const QJsonObject& s) {
  if (s.contains("model")) model_->setText(s.value("model").toString());
  if (s.contains("k")) ks_->setText(s.value("k").toString());
  if (s.contains("device")) device_->setCurrentText(s.value("device").toString());
  if (s.contains("smooth")) smooth_->setChecked(s.value("smooth").toBool());
}

void PipelinePanel::setModel(const QString& path) { model_->setText(path); }
void PipelinePanel::setResolutions(const QString& ks) { ks_->setText(ks); }

QString PipelinePanel::resultPathFor(const QString& dataset) {
  const QFileInfo f(dataset);
  return f.dir().filePath(f.completeBaseName() + ".regions.h5ad");
}

void PipelinePanel::setDataset(const QString& path) {
  dataset_ = path;
  const bool h5ad = path.endsWith(".h5ad", Qt::CaseInsensitive) && !path.endsWith(".regions.h5ad", Qt::CaseInsensitive);
  run_->setEnabled(h5ad && !isRunning());
  status_->setText(path.isEmpty() ? tr("Open a dataset to discover its regions.")
                   : h5ad         ? tr("Ready: %1").arg(QFileInfo(path).fileName())
                          : tr("Region discovery writes into a copy of an .h5ad dataset; convert this one first."));
}

bool PipelinePanel::isRunning() const { return job_->isRunning(); }

void PipelinePanel::run() {
  if (dataset_.isEmpty() || job_->isRunning() || isQueued()) return;
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  if (queue_) {
    if (!queue_->submit(this, tr("Discover regions"), [this] { startJob(); }))
      status_->setText(tr("Queued: starts when %1 ends (Cancel takes it out).").arg(queue_->runningLabel()));
    return;
  }
  startJob();
}

void PipelinePanel::refreshJobLocation() { gpus_->refresh(); }

bool PipelinePanel::isQueued() const { return queue_ && queue_->isWaiting(this); }

void PipelinePanel::startJob() {
  QStringList args{"segment",  dataset_,
                   "--out",    resultPathFor(dataset_),
                   "--k",      ks_->text().simplified().remove(' '),
                   "--device", device_->currentText()};
  if (!model_->text().isEmpty()) args << "--weights" << model_->text();
  if (smooth_->isChecked()) args << "--smooth";
  args << gpus_->arguments(device_->currentText());
  JobFiles files{{dataset_}, {resultPathFor(dataset_)}};
  if (!model_->text().isEmpty()) files.inputs << model_->text();
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setValue(0);
  status_->setText(tr("Starting…"));
  emit runningChanged(true);
  job_->start(args, files);
}

void PipelinePanel::cancel() {
  if (queue_ && queue_->remove(this)) {
    run_->setEnabled(!dataset_.isEmpty());
    cancel_->setEnabled(false);
    status_->setText(tr("Taken out of the queue."));
    return;
  }
  job_->cancel();
}

void PipelinePanel::showScores(const QJsonObject& summary) {
  const QJsonArray res = summary.value("resolutions").toArray();
  QStringList headers{"k"};
  QStringList refs;
  for (const QJsonValue& r : res)
    for (const QString& ref : r.toObject().value("scores").toObject().keys())
      if (!refs.contains(ref)) refs << ref;
  for (const QString& ref : refs)
    for (const char* m : {"AMI", "ARI", "NMI", "V"}) headers << QString("%1 %2").arg(m, ref);
  const bool hidden = !res.isEmpty() && res.first().toObject().contains("hidden_subregions");
  if (hidden) headers << "AMI hidden splits";
  headers << "coherence";
  scores_->setSortingEnabled(false);
  scores_->clear();
  scores_->setColumnCount(headers.size());
  scores_->setHorizontalHeaderLabels(headers);
  scores_->setRowCount(res.size());
  auto number = [](double v) {
    auto* item = new QTableWidgetItem;
    item->setData(Qt::DisplayRole, QString::number(v, 'f', 3).toDouble()); // numeric sort
    return item;
  };
  for (int row = 0; row < res.size(); ++row) {
    const QJsonObject o = res[row].toObject();
    int col = 0;
    auto* k = new QTableWidgetItem;
    k->setData(Qt::DisplayRole, o.value("k").toInt());
    scores_->setItem(row, col++, k);
    const QJsonObject sc = o.value("scores").toObject();
    for (const QString& ref : refs) {
      const QJsonObject s = sc.value(ref).toObject();
      for (const char* key : {"ami", "ari", "nmi", "v_measure"})
        scores_->setItem(row, col++, number(s.value(key).toDouble()));
    }
    if (hidden)
      scores_->setItem(row, col++, number(o.value("hidden_subregions").toObject().value("mean_ami").toDouble()));
    scores_->setItem(row, col++, number(o.value("spatial_coherence").toDouble()));
  }
  scores_->setSortingEnabled(true);
  scores_->resizeColumnsToContents();
  // The chart: each AMI column, the hidden splits and coherence, against k (log axis: the
  // paper's k run from 25 to 1,300).
  chart_->removeAllSeries();
  for (QAbstractAxis* a : chart_->axes()) {
    chart_->removeAxis(a);
    delete a;
  }
  auto* axisK = new QLogValueAxis;
  axisK->setTitleText("k");
  axisK->setLabelFormat("%d");
  axisK->setBase(10);
  auto* axisScore = new QValueAxis;
  axisScore->setRange(0, 1);
  axisScore->setTitleText(tr("score"));
  chart_->addAxis(axisK, Qt::AlignBottom);
  chart_->addAxis(axisScore, Qt::AlignLeft);
  for (int c = 1; c < headers.size(); ++c) {
    const QString h = headers[c];
    if (!h.startsWith("AMI") && h != "coherence") continue;
    auto* line = new QLineSeries;
    line->setName(h);
    line->setPointsVisible(true);
    std::vector<std::pair<int, double>> points;
    for (int row = 0; row < scores_->rowCount(); ++row)
      if (scores_->item(row, 0) && scores_->item(row, c))
        points.emplace_back(scores_->item(row, 0)->data(Qt::DisplayRole).toInt(),
                            scores_->item(row, c)->data(Qt::DisplayRole).toDouble());
    std::sort(points.begin(), points.end());
    for (const auto& [k, v] : points) line->append(k, v);
    chart_->addSeries(line);
    line->attachAxis(axisK);
    line->attachAxis(axisScore);
  }
  for (const QJsonValue& r : res) {
    const QJsonObject o = r.toObject();
    QString line = tr("k = %1: spatial coherence %2")
                       .arg(o.value("k").toInt())
                       .arg(o.value("spatial_coherence").toDouble(), 0, 'f', 3);
    const QJsonObject sc = o.value("scores").toObject();
    for (auto it = sc.begin(); it != sc.end(); ++it)
      line += tr(", AMI vs %1 %2").arg(it.key()).arg(it.value().toObject().value("ami").toDouble(), 0, 'f', 3);
    log_->appendPlainText(line);
  }
}

bool PipelinePanel::writeScoresCsv(const QString& path) const {
  QString text;
  QStringList row;
  for (int c = 0; c < scores_->columnCount(); ++c) row << scores_->horizontalHeaderItem(c)->text();
  text += row.join(',') + '\n';
  for (int r = 0; r < scores_->rowCount(); ++r) {
    row.clear();
    for (int c = 0; c < scores_->columnCount(); ++c)
      row << (scores_->item(r, c) ? scores_->item(r, c)->data(Qt::DisplayRole).toString() : QString());
    text += row.join(',') + '\n';
  }
  const QByteArray bytes = text.toUtf8();
  try {
    writeFileAtomically(path.toStdString(), bytes.constData(), static_cast<std::size_t>(bytes.size()));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

bool PipelinePanel::writeScoresChartPdf(const QString& path) const { return writeWidgetPdf(chartView_, path); }

} // namespace atlascope::app
