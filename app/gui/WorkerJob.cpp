#include "app/gui/WorkerJob.h"

#include "app/gui/DataStaging.h"
#include "app/gui/JobLocation.h"
#include "app/gui/WorkerProtocol.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QStandardPaths>

namespace atlascope::app {

WorkerHost WorkerHost::current() { return JobLocation::current().workerHost(); }

QString WorkerHost::workerProgram() const {
  if (!program.isEmpty()) return program;
  if (!host.isEmpty()) return QStringLiteral("atlascope-cli"); // on the host's PATH
  const QString beside = QDir(QCoreApplication::applicationDirPath()).filePath("atlascope-cli");
  return QFileInfo::exists(beside) ? beside : QStringLiteral("atlascope-cli");
}

QStringList WorkerHost::sshArguments() const {
  QStringList a{"-o", "BatchMode=yes"};
  if (!sshConfig.isEmpty()) a << "-F" << sshConfig;
  return a;
}

namespace {
constexpr const char* kPidLine = kWorkerPidLine;
}

WorkerJob::WorkerJob(QObject* parent) : WorkerJob(WorkerHost::current(), parent) { fixedHost_ = false; }

WorkerJob::WorkerJob(WorkerHost host, QObject* parent) : QObject(parent), host_(std::move(host)), fixedHost_(true) {
  connect(&process_, &QProcess::readyReadStandardOutput, this, &WorkerJob::onOutput);
  connect(&process_, &QProcess::readyReadStandardError, this, [this] {
    for (const QByteArray& line : process_.readAllStandardError().split('\n')) {
      if (line.trimmed().isEmpty()) continue;
      lastError_ = QString::fromUtf8(line.trimmed());
      emit logLine(lastError_);
    }
  });
  connect(&process_, &QProcess::finished, this, &WorkerJob::onFinished);
  connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e == QProcess::FailedToStart)
      emit failed(tr("could not start the worker (%1): %2").arg(commandLine_, process_.errorString()));
  });
}

WorkerJob::~WorkerJob() {
  if (process_.state() != QProcess::NotRunning) {
    process_.kill();
    process_.waitForFinished(3000);
  }
}

void WorkerJob::start(const QStringList& arguments, const JobFiles& files) {
  if (isRunning()) return;
  if (!fixedHost_) host_ = WorkerHost::current();
  cancelled_ = false;
  staged_ = false;
  delete staging_;
  staging_ = nullptr;
  if (host_.host.isEmpty() || (files.inputs.isEmpty() && files.outputs.isEmpty())) {
    launch(arguments);
    return;
  }
  // On a host: the files first (in place when it sees them, else copies), then the job on them.
  staging_ = new DataStaging(host_, this);
  connect(staging_, &DataStaging::logLine, this, &WorkerJob::logLine);
  connect(staging_, &DataStaging::progress, this,
          [this](const QString& stage, qint64 done, qint64 total) { emit progress(stage, done, total, -1); });
  connect(staging_, &DataStaging::failed, this, [this](const QString& message) {
    staging_->deleteLater();
    staging_ = nullptr;
    emit failed(message);
  });
  connect(staging_, &DataStaging::ready, this, [this, arguments] {
    if (process_.state() != QProcess::NotRunning || staged_) { // the outputs are back
      staging_->deleteLater();
      staging_ = nullptr;
      QJsonObject local = result_;
      for (auto i = local.begin(); i != local.end(); ++i)
        if (i.value().isString())
          for (auto r = remote_.cbegin(); r != remote_.cend(); ++r)
            if (i.value().toString() == r.value()) i.value() = r.key();
      emit finished(local);
      return;
    }
    remote_ = staging_->remotePaths();
    staged_ = !remote_.isEmpty();
    QStringList args = arguments;
    for (QString& a : args) a = remote_.value(a, a);
    if (!staged_) {
      staging_->deleteLater();
      staging_ = nullptr;
    }
    launch(args);
  });
  staging_->prepare(files);
}

void WorkerJob::launch(QStringList arguments) {
  const QString program = host_.workerProgram();
  QStringList& args = arguments;
  args << "--progress"
       << "json";
  result_ = {};
  lastError_.clear();
  buffer_.clear();
  stage_.clear();
  if (host_.host.isEmpty()) {
    commandLine_ = program + " " + args.join(' ');
    process_.start(program, args);
  } else {
    // ssh passes one command line to the remote shell: quote each argument for it.
    QStringList remote{program};
    for (const QString& a : args) remote << "'" + QString(a).replace("'", "'\\''") + "'";
    commandLine_ = "ssh " + host_.host + " " + remote.join(' ');
    remotePid_.clear();
    process_.start("ssh", host_.sshArguments()
                              << host_.host << QString("echo %1$$; exec ").arg(kPidLine) + remote.join(' '));
  }
  emit logLine(commandLine_);
}

void WorkerJob::cancel() {
  if (staging_ && staging_->isBusy()) {
    cancelled_ = true;
    staging_->cancel(); // its failed("cancelled") ends the job
    return;
  }
  if (process_.state() == QProcess::NotRunning) return;
  cancelled_ = true;
  // SIGTERM: the worker stops at its next safe point (and then exits, closing the connection).
  if (!host_.host.isEmpty() && !remotePid_.isEmpty())
    signalRemote("TERM");
  else
    process_.terminate();
}

void WorkerJob::signalRemote(const char* signal) {
  QProcess::startDetached("ssh", host_.sshArguments() << host_.host << QString("kill -%1 %2").arg(signal, remotePid_));
}

void WorkerJob::kill() {
  if (staging_ && staging_->isBusy()) { // no worker yet (or any more): the copy stops
    cancelled_ = true;
    staging_->cancel();
    return;
  }
  if (process_.state() == QProcess::NotRunning) return;
  if (!host_.host.isEmpty() && !remotePid_.isEmpty())
    signalRemote("KILL"); // the connection then closes
  else
    process_.kill();
}

bool WorkerJob::isRunning() const {
  return process_.state() != QProcess::NotRunning || (staging_ && staging_->isBusy());
}

void WorkerJob::onOutput() {
  buffer_ += process_.readAllStandardOutput();
  // The parsing is WorkerProtocol's (fuzzed); what follows acts on each line.
  for (const QByteArray& raw : takeWorkerLines(buffer_)) {
    const WorkerLine line = parseWorkerLine(raw);
    if (line.kind == WorkerLine::Kind::Empty) continue;
    if (line.kind == WorkerLine::Kind::Pid) {
      remotePid_ = line.text;
      continue;
    }
    if (line.kind == WorkerLine::Kind::Log) {
      emit logLine(line.text);
      continue;
    }
    if (line.kind == WorkerLine::Kind::Result) {
      result_ = line.object;
      continue;
    }
    emit message(line.object);
    const QString stage = line.stage;
    if (!line.hasCounts) continue;
    const qint64 done = line.done, total = line.total;
    if (stage != stage_) {
      stage_ = stage;
      stageStart_ = std::chrono::steady_clock::now();
      emit logLine(stage);
    }
    double eta = -1;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - stageStart_).count();
    if (done > 0 && total > done && elapsed > 0.5)
      eta = elapsed * static_cast<double>(total - done) / static_cast<double>(done);
    emit progress(stage, done, total, eta);
  }
}

void WorkerJob::onFinished(int code, QProcess::ExitStatus status) {
  onOutput();
  if (status == QProcess::CrashExit && !cancelled_) {
    emit failed(tr("the worker stopped unexpectedly (crashed or was killed)%1")
                    .arg(lastError_.isEmpty() ? QString() : ": " + lastError_));
    return;
  }
  if (cancelled_ || result_.value("result").toString() == "cancelled") {
    emit failed(tr("cancelled"));
    return;
  }
  if (!host_.host.isEmpty() && (code == 255 || (code > 128 && code < 160))) {
    // ssh exits 255 when the remote worker died of a signal or the connection broke (its own
    // message, if any, is the last error line), 128 + N when a shell reported signal N.
    emit failed(tr("the worker stopped unexpectedly on %1 (killed, or the connection was lost)%2")
                    .arg(host_.host, lastError_.isEmpty() ? QString() : ": " + lastError_));
    return;
  }
  if (code != 0 || result_.isEmpty()) {
    emit failed(lastError_.isEmpty() ? tr("the worker exited with status %1").arg(code) : lastError_);
    return;
  }
  if (staged_ && staging_) { // the results come back first
    staging_->bringBack();
    return;
  }
  emit finished(result_);
}

} // namespace atlascope::app
