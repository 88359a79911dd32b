#pragma once
// A long job run as a worker process: `atlascope-cli <command> ... --progress json`, whose stdout
// carries one JSON object per line (progress: stage, done, total; the last line: the result, with
// a "result" field). Why a process and not a thread: the worker can be a CUDA build of the same
// code while the GUI links Debian's CPU LibTorch, an out-of-memory or a crash in a job never takes
// the window down, and the same worker runs on a GPU server through ssh.
//
// Cancel sends SIGTERM; the CLI stops at its next safe point, leaving resumable state and any
// earlier result intact (outputs are written atomically).
#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QProcess>
#include <QString>
#include <QStringList>

#include <chrono>

namespace atlascope::app {

// Where workers run. Empty host: this machine. "user@host": through `ssh -o BatchMode=yes`, with
// `program` the worker's path there (data paths must be valid there too).
//
// Through ssh, the remote shell first prints the worker's process id and then becomes the
// worker (exec), so cancel and kill reach the worker itself with `ssh host kill -TERM|-KILL PID`:
// a signal to the local ssh client would only close the connection (no tty, no hangup), and the
// worker would run on unseen.
struct WorkerHost {
  QString host;
  QString program;   // empty: atlascope-cli beside this executable (or on the PATH)
  QString sshConfig; // an ssh client configuration file (-F); empty: ssh's own
  // On a host: where datasets are copied when it does not see them (relative: to the home
  // folder), and whether to copy even when it does (DataStaging.h).
  QString jobFolder;
  bool alwaysCopy = false;
  // Where jobs run now: Preferences > Jobs (JobLocation.h), the environment variables on top.
  static WorkerHost current();
  QStringList sshArguments() const; // the options before the host
  // The worker to run: `program`, else atlascope-cli beside this executable (or on the PATH; on a
  // host, on its PATH).
  QString workerProgram() const;
};

// The files a job reads and writes, named as they appear in its arguments: on a host that does
// not share this machine's files they are copied there and back (DataStaging.h).
struct JobFiles {
  QStringList inputs;
  QStringList outputs; // also the files the worker derives from an --out (a model's .best.h5)
};

class WorkerJob : public QObject {
  Q_OBJECT
public:
  // Without a host: where the preferences say at each start().
  explicit WorkerJob(QObject* parent = nullptr);
  explicit WorkerJob(WorkerHost host, QObject* parent = nullptr);
  ~WorkerJob() override;

  // Arguments after the program, without --progress (added here).
  void start(const QStringList& arguments, const JobFiles& files = {});
  void cancel();
  void kill(); // SIGKILL, as an out-of-memory killer would: the GUI must survive it
  bool isRunning() const;
  QString commandLine() const { return commandLine_; }

signals:
  // stage, done, total; etaSeconds < 0 when unknown.
  void progress(const QString& stage, qint64 done, qint64 total, double etaSeconds);
  void logLine(const QString& line);
  void message(const QJsonObject& object);  // every progress object as it arrives (e.g. losses)
  void finished(const QJsonObject& result); // a result line arrived and the process exited 0
  void failed(const QString& message);      // error, crash, kill or cancel (message says which)

private:
  void onOutput();
  void onFinished(int code, QProcess::ExitStatus status);
  void launch(QStringList arguments);

  class DataStaging* staging_ = nullptr; // while files travel to or from a host
  bool staged_ = false;                  // the running job works on copies
  QMap<QString, QString> remote_;        // local path -> the copy's path on the host

  WorkerHost host_;
  bool fixedHost_ = false; // false: host_ is read from the preferences at each start
  QProcess process_;
  QString commandLine_, lastError_;
  QByteArray buffer_;
  QJsonObject result_;
  bool cancelled_ = false;
  QString stage_;
  QString remotePid_; // the worker's process id on the ssh host
  void signalRemote(const char* signal);
  std::chrono::steady_clock::time_point stageStart_;
};

} // namespace atlascope::app
