#pragma once
// A job's files on a worker host that does not see this machine's files. Before the job: are the
// inputs there under the same paths (a shared filesystem: same size and modification time)? If so
// the job runs on them in place; if not (or when the preferences say always copy) they are copied
// into one folder per dataset under the host's job folder (rsync when this machine has it, with
// progress and only what changed; scp otherwise), the job runs on the copies, and after it its
// outputs come back (each to a temporary name beside its place, then renamed over it: a failed
// copy never leaves half a file where the result belongs).
//
// Decision: one folder per dataset (named after a hash of its local path) so that a training run
// and the region step after it share one copy, and a second run sends nothing unchanged. The
// copies stay on the host (a dataset is large; the next job needs it); the folder is printed in
// the job log so a user can remove it.
#include "app/gui/WorkerJob.h"

#include <QMap>
#include <QObject>
#include <QProcess>
#include <QString>
#include <QStringList>

namespace atlascope::app {

class DataStaging : public QObject {
  Q_OBJECT
public:
  DataStaging(WorkerHost host, QObject* parent = nullptr);

  // Checks and copies `files.inputs`; ready() hands over local path -> path on the host for every
  // input and output (empty when everything is used in place).
  void prepare(const JobFiles& files);
  // Copies the outputs that exist on the host back over their local paths.
  void bringBack();
  void cancel();
  bool isBusy() const { return process_.state() != QProcess::NotRunning; }
  const QMap<QString, QString>& remotePaths() const { return remote_; }

signals:
  void progress(const QString& stage, qint64 done, qint64 total);
  void logLine(const QString& line);
  void ready();
  void failed(const QString& message);

private:
  enum class Step { Idle, Probe, Mkdir, SendInput, FetchOutput };
  void run(Step step, const QString& program, const QStringList& arguments);
  void onFinished(int code, QProcess::ExitStatus status);
  void onOutput();
  void sendNext();
  void failIfFolders();
  void makeRemoteFolder(); // then the copies (Step::Mkdir)
  void fetchNext();
  QString remoteFolder() const;
  QStringList copyCommand(const QString& from, const QString& to, QString& program) const;

  WorkerHost host_;
  JobFiles files_;
  QMap<QString, QString> remote_;
  QStringList toSend_, toFetch_, folders_;
  QString current_, partial_;
  qint64 bytesTotal_ = 0, bytesDone_ = 0, currentSize_ = 0;
  Step step_ = Step::Idle;
  bool cancelled_ = false;
  QProcess process_;
  QByteArray output_;
};

} // namespace atlascope::app
