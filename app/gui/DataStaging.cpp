#include "app/gui/DataStaging.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTimer>

#include <cstdio>

namespace atlascope::app {

namespace {

QString quoted(const QString& s) { return "'" + QString(s).replace("'", "'\\''") + "'"; }

// One line per path on the host: "SIZE MTIME", "folder" or "missing".
QString probeScript(const QStringList& paths) {
  QStringList q;
  for (const QString& p : paths) q << quoted(p);
  return "for f in " + q.join(' ') +
         "; do if [ -f \"$f\" ]; then stat -c '%s %Y' \"$f\"; elif [ -d \"$f\" ]; then echo folder; "
         "else echo missing; fi; done";
}

} // namespace

DataStaging::DataStaging(WorkerHost host, QObject* parent) : QObject(parent), host_(std::move(host)) {
  connect(&process_, &QProcess::finished, this, &DataStaging::onFinished);
  connect(&process_, &QProcess::readyReadStandardOutput, this, &DataStaging::onOutput);
  connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e != QProcess::FailedToStart) return;
    step_ = Step::Idle;
    emit failed(tr("could not start %1: %2").arg(process_.program(), process_.errorString()));
  });
}

QString DataStaging::remoteFolder() const {
  const QString first = files_.inputs.isEmpty() ? files_.outputs.value(0) : files_.inputs.first();
  const QByteArray key = QFileInfo(first).absoluteFilePath().toUtf8();
  const QString folder = host_.jobFolder.isEmpty() ? QStringLiteral("atlascope-jobs") : host_.jobFolder;
  return folder + "/" + QString::fromLatin1(QCryptographicHash::hash(key, QCryptographicHash::Sha1).toHex().left(12));
}

void DataStaging::run(Step step, const QString& program, const QStringList& arguments) {
  step_ = step;
  output_.clear();
  process_.start(program, arguments);
}

void DataStaging::prepare(const JobFiles& files) {
  files_ = files;
  remote_.clear();
  cancelled_ = false;
  toSend_.clear();
  folders_.clear();
  for (const QString& f : files_.inputs) {
    if (QFileInfo(f).isFile()) toSend_ << f;
    if (QFileInfo(f).isDir()) folders_ << f;
  }
  // Are the inputs on the host under the same paths (a shared filesystem)?
  QStringList absolute;
  for (const QString& f : toSend_ + folders_) absolute << QFileInfo(f).absoluteFilePath();
  if (host_.alwaysCopy && !folders_.isEmpty()) {
    QTimer::singleShot(0, this, &DataStaging::failIfFolders); // as every other outcome: from the event loop
    return;
  }
  if (host_.alwaysCopy || absolute.isEmpty()) {
    makeRemoteFolder();
    return;
  }
  emit progress(tr("checking the files on %1").arg(host_.host), 0, 0);
  run(Step::Probe, "ssh", host_.sshArguments() << host_.host << probeScript(absolute));
}

void DataStaging::makeRemoteFolder() {
  run(Step::Mkdir, "ssh", host_.sshArguments() << host_.host << "mkdir -p " + quoted(remoteFolder()));
}

void DataStaging::failIfFolders() {
  // A dataset of several files (a folder) is not copied: the job would need every file and the
  // cache of the combined table; one .h5ad travels, and `convert` makes one.
  step_ = Step::Idle;
  emit failed(tr("%1 does not see %2 (a dataset of several files) under the same path: put it on a filesystem the "
                 "host shares, or make it one file first (atlascope-cli convert FOLDER --out DATA.h5ad)")
                  .arg(host_.host, folders_.join(", ")));
}

void DataStaging::bringBack() {
  toFetch_.clear();
  if (remote_.isEmpty()) {
    emit ready();
    return;
  }
  cancelled_ = false;
  // Which outputs the job wrote there (a model's ".best" copy, for one, only when validated).
  QStringList remote;
  for (const QString& f : files_.outputs) remote << remote_.value(f);
  run(Step::FetchOutput, "ssh", host_.sshArguments() << host_.host << probeScript(remote));
  current_.clear();
}

void DataStaging::cancel() {
  cancelled_ = true;
  if (process_.state() != QProcess::NotRunning) process_.kill();
}

QStringList DataStaging::copyCommand(const QString& from, const QString& to, QString& program) const {
  // rsync when this machine has it: progress, partial files resumed, unchanged files skipped.
  if (!QStandardPaths::findExecutable("rsync").isEmpty()) {
    program = "rsync";
    QStringList ssh{"ssh"};
    for (const QString& a : host_.sshArguments()) ssh << quoted(a);
    return {"-a", "--partial", "--info=progress2", "-e", ssh.join(' '), from, to};
  }
  program = "scp";
  return QStringList{"-p"} << host_.sshArguments() << from << to;
}

void DataStaging::sendNext() {
  if (cancelled_) return;
  if (toSend_.isEmpty()) {
    emit logLine(tr("the job runs on copies in %1:%2").arg(host_.host, remoteFolder()));
    step_ = Step::Idle;
    emit ready();
    return;
  }
  current_ = toSend_.takeFirst();
  currentSize_ = QFileInfo(current_).size();
  QString program;
  const QStringList args = copyCommand(current_, host_.host + ":" + remote_.value(current_), program);
  emit logLine(program + " " + args.join(' '));
  emit progress(tr("copying %1 to %2").arg(QFileInfo(current_).fileName(), host_.host), bytesDone_, bytesTotal_);
  run(Step::SendInput, program, args);
}

void DataStaging::fetchNext() {
  if (cancelled_) return;
  if (!partial_.isEmpty()) { // the last one arrived: into its place in one step
    const QString target = current_;
    if (std::rename(QFile::encodeName(partial_).constData(), QFile::encodeName(target).constData()) != 0) {
      QFile::remove(partial_);
      step_ = Step::Idle;
      emit failed(tr("could not put the result in place: %1").arg(target));
      return;
    }
    partial_.clear();
  }
  if (toFetch_.isEmpty()) {
    step_ = Step::Idle;
    emit ready();
    return;
  }
  current_ = toFetch_.takeFirst();
  const QFileInfo local(current_);
  partial_ = local.dir().filePath("." + local.fileName() + ".partial");
  QString program;
  const QStringList args = copyCommand(host_.host + ":" + remote_.value(current_), partial_, program);
  emit logLine(program + " " + args.join(' '));
  emit progress(tr("copying %1 back").arg(local.fileName()), 0, 0);
  run(Step::FetchOutput, program, args);
}

void DataStaging::onOutput() {
  if (step_ != Step::SendInput) return;
  output_ += process_.readAllStandardOutput();
  // rsync --info=progress2 redraws one line with \r: "  1,234,567  45%  12.3MB/s  0:00:03".
  static const QRegularExpression re(R"(([\d,]+)\s+(\d+)%)");
  const int cut = std::max(output_.lastIndexOf('\r'), output_.lastIndexOf('\n'));
  if (cut < 0) return;
  const QString text = QString::fromUtf8(output_.left(cut));
  output_.remove(0, cut + 1);
  QRegularExpressionMatchIterator it = re.globalMatch(text);
  qint64 bytes = -1;
  while (it.hasNext()) bytes = it.next().captured(1).remove(',').toLongLong();
  if (bytes >= 0)
    emit progress(tr("copying %1 to %2").arg(QFileInfo(current_).fileName(), host_.host),
                  bytesDone_ + std::min(bytes, currentSize_), bytesTotal_);
}

void DataStaging::onFinished(int code, QProcess::ExitStatus status) {
  const Step step = step_;
  if (cancelled_) {
    if (!partial_.isEmpty()) QFile::remove(partial_);
    partial_.clear();
    step_ = Step::Idle;
    emit failed(tr("cancelled"));
    return;
  }
  const QString errors = QString::fromUtf8(process_.readAllStandardError() + output_).trimmed();
  if (status != QProcess::NormalExit || code != 0) {
    if (!partial_.isEmpty()) QFile::remove(partial_);
    partial_.clear();
    step_ = Step::Idle;
    const QString what = step == Step::SendInput     ? tr("copying %1 to %2").arg(current_, host_.host)
                         : step == Step::FetchOutput ? tr("copying %1 back from %2").arg(current_, host_.host)
                                                     : tr("checking the files on %1").arg(host_.host);
    emit failed(tr("%1 failed (exit %2)%3").arg(what).arg(code).arg(errors.isEmpty() ? "" : ": " + errors.right(400)));
    return;
  }
  const QString out = QString::fromUtf8(process_.readAllStandardOutput());
  switch (step) {
  case Step::Probe: {
    const QStringList lines = out.split('\n', Qt::SkipEmptyParts);
    bool inPlace = lines.size() == toSend_.size() + folders_.size();
    for (int i = 0; inPlace && i < toSend_.size(); ++i) {
      const QFileInfo f(toSend_[i]);
      inPlace = lines[i].trimmed() == QString("%1 %2").arg(f.size()).arg(f.lastModified().toSecsSinceEpoch());
    }
    for (int i = 0; inPlace && i < folders_.size(); ++i) inPlace = lines[toSend_.size() + i].trimmed() == "folder";
    if (!inPlace && !folders_.isEmpty()) {
      failIfFolders();
      return;
    }
    if (inPlace) { // a shared filesystem: nothing to copy, nothing to bring back
      toSend_.clear();
      step_ = Step::Idle;
      emit ready();
      return;
    }
    makeRemoteFolder();
    return;
  }
  case Step::Mkdir: {
    const QString folder = remoteFolder();
    QStringList used;
    auto place = [&](const QString& local) {
      if (remote_.contains(local)) return;
      QString name = QFileInfo(local).fileName();
      for (int i = 2; used.contains(name); ++i) name = QString("%1-%2").arg(i).arg(QFileInfo(local).fileName());
      used << name;
      remote_[local] = folder + "/" + name;
    };
    for (const QString& f : files_.inputs) place(f);
    for (const QString& f : files_.outputs) place(f);
    bytesTotal_ = bytesDone_ = 0;
    for (const QString& f : toSend_) bytesTotal_ += QFileInfo(f).size();
    sendNext();
    return;
  }
  case Step::SendInput:
    bytesDone_ += currentSize_;
    sendNext();
    return;
  case Step::FetchOutput:
    if (current_.isEmpty()) { // the probe of the outputs: fetch those that exist
      const QStringList lines = out.split('\n', Qt::SkipEmptyParts);
      for (int i = 0; i < files_.outputs.size() && i < lines.size(); ++i)
        if (lines[i].trimmed() != QLatin1String("missing")) toFetch_ << files_.outputs[i];
      partial_.clear();
    }
    fetchNext();
    return;
  case Step::Idle: return;
  }
}

} // namespace atlascope::app
