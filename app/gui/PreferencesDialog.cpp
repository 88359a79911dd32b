#include "app/gui/PreferencesDialog.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSettings>
#include <QVBoxLayout>

namespace atlascope::app {

PreferencesDialog::PreferencesDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Preferences"));
  setObjectName("preferencesDialog");
  auto* layout = new QVBoxLayout(this);
  auto* jobs = new QGroupBox(tr("Where training and region discovery run"));
  auto* form = new QFormLayout(jobs);
  kind_ = new QButtonGroup(this);
  const std::pair<JobLocation::Kind, QString> kinds[] = {
      {JobLocation::Kind::ThisCpu, tr("This machine's CPU")},
      {JobLocation::Kind::ThisCuda, tr("A CUDA build of atlascope-cli on this machine")},
      {JobLocation::Kind::Ssh, tr("A host through ssh")}};
  for (const auto& [kind, text] : kinds) {
    auto* b = new QRadioButton(text);
    b->setObjectName("jobs_" + jobKindName(kind));
    kind_->addButton(b, static_cast<int>(kind));
    form->addRow(b);
  }
  auto line = [&](QLineEdit*& edit, const char* name, const QString& label, const QString& tip) {
    edit = new QLineEdit;
    edit->setObjectName(name);
    edit->setToolTip(tip);
    form->addRow(label, edit);
  };
  line(cudaProgram_, "jobs_cuda_program", tr("CUDA worker"), tr("The path of a CUDA build of atlascope-cli"));
  line(host_, "jobs_host", tr("Host"), tr("[user@]host as ssh takes it (keys or an agent: no password prompts)"));
  line(remoteProgram_, "jobs_remote_program", tr("Worker there"),
       tr("atlascope-cli's path on the host (empty: on its PATH)"));
  line(sshConfig_, "jobs_ssh_config", tr("ssh configuration"),
       tr("An ssh client configuration file (empty: ssh's own)"));
  line(jobFolder_, "jobs_job_folder", tr("Copies go to"),
       tr("Where datasets are copied on the host when it does not see this machine's files (relative: to the home "
          "folder); results come back beside the dataset"));
  alwaysCopy_ = new QCheckBox(tr("Copy the data even when the host sees the same path"));
  alwaysCopy_->setObjectName("jobs_always_copy");
  form->addRow(alwaysCopy_);
  test_ = new QPushButton(tr("Test"));
  test_->setObjectName("jobs_test");
  result_ = new QLabel;
  result_->setObjectName("jobs_test_result");
  result_->setWordWrap(true);
  result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  form->addRow(test_, result_);
  overrides_ = new QLabel;
  overrides_->setObjectName("jobs_overrides");
  overrides_->setWordWrap(true);
  form->addRow(overrides_);
  layout->addWidget(jobs);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  layout->addWidget(buttons);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(kind_, &QButtonGroup::idClicked, this, &PreferencesDialog::updateEnabled);
  connect(test_, &QPushButton::clicked, this, &PreferencesDialog::test);
  connect(&probe_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
    test_->setEnabled(true);
    const QByteArray out = probe_.readAllStandardOutput();
    const QString err = QString::fromUtf8(probe_.readAllStandardError()).trimmed();
    QJsonParseError pe;
    const QJsonObject o = QJsonDocument::fromJson(out.trimmed().split('\n').last(), &pe).object();
    if (status != QProcess::NormalExit || code != 0 || pe.error != QJsonParseError::NoError || o.isEmpty()) {
      result_->setText(
          tr("Failed (exit %1): %2").arg(code).arg(err.isEmpty() ? QString::fromUtf8(out) : err.right(300)));
      emit tested(false);
      return;
    }
    gpus_ = o.value("gpus").toInt();
    result_->setText(tr("%1: LibTorch %2, %3, %4 CPU threads")
                         .arg(o.value("host").toString(), o.value("torch").toString(),
                              o.value("cuda").toBool() ? tr("%n CUDA GPU(s)", nullptr, gpus_) : tr("no CUDA GPU"))
                         .arg(o.value("cpu_threads").toInt()));
    emit tested(true);
  });
  connect(&probe_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e != QProcess::FailedToStart) return;
    test_->setEnabled(true);
    result_->setText(tr("Could not start %1: %2").arg(probe_.program(), probe_.errorString()));
    emit tested(false);
  });
  setLocation(JobLocation::load(QSettings()));
  const QStringList env = JobLocation::environmentOverrides();
  overrides_->setText(env.isEmpty()
                          ? QString()
                          : tr("Set in the environment, and in force over these settings: %1").arg(env.join(", ")));
  overrides_->setVisible(!env.isEmpty());
}

void PreferencesDialog::setLocation(const JobLocation& l) {
  kind_->button(static_cast<int>(l.kind))->setChecked(true);
  cudaProgram_->setText(l.cudaProgram);
  host_->setText(l.host);
  remoteProgram_->setText(l.remoteProgram);
  sshConfig_->setText(l.sshConfig);
  jobFolder_->setText(l.jobFolder);
  alwaysCopy_->setChecked(l.alwaysCopy);
  gpus_ = l.gpus;
  updateEnabled();
}

JobLocation PreferencesDialog::location() const {
  JobLocation l;
  l.kind = static_cast<JobLocation::Kind>(kind_->checkedId());
  l.cudaProgram = cudaProgram_->text().trimmed();
  l.host = host_->text().trimmed();
  l.remoteProgram = remoteProgram_->text().trimmed();
  l.sshConfig = sshConfig_->text().trimmed();
  l.jobFolder = jobFolder_->text().trimmed().isEmpty() ? JobLocation().jobFolder : jobFolder_->text().trimmed();
  l.alwaysCopy = alwaysCopy_->isChecked();
  l.gpus = gpus_;
  return l;
}

void PreferencesDialog::updateEnabled() {
  const auto kind = static_cast<JobLocation::Kind>(kind_->checkedId());
  cudaProgram_->setEnabled(kind == JobLocation::Kind::ThisCuda);
  for (QWidget* w :
       {static_cast<QWidget*>(host_), static_cast<QWidget*>(remoteProgram_), static_cast<QWidget*>(sshConfig_),
        static_cast<QWidget*>(jobFolder_), static_cast<QWidget*>(alwaysCopy_)})
    w->setEnabled(kind == JobLocation::Kind::Ssh);
}

void PreferencesDialog::test() {
  if (isTesting()) return;
  const JobLocation l = location();
  if (l.kind == JobLocation::Kind::Ssh && l.host.isEmpty()) {
    result_->setText(tr("Name the host first."));
    emit tested(false);
    return;
  }
  QStringList command = l.testCommand();
  const QString program = command.takeFirst();
  result_->setText(tr("Asking %1…").arg(l.kind == JobLocation::Kind::Ssh ? l.host : program));
  test_->setEnabled(false);
  probe_.start(program, command);
}

QString PreferencesDialog::testResult() const { return result_->text(); }

void PreferencesDialog::accept() {
  QSettings settings;
  location().save(settings);
  QDialog::accept();
}

} // namespace atlascope::app
