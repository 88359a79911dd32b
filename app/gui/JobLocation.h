#pragma once
// Where the window's long jobs (training, region discovery) run: Preferences > Jobs, kept with
// QSettings under "jobs/". This machine's CPU (the atlascope-cli beside the window, Debian's CPU
// LibTorch), a CUDA build of atlascope-cli on this machine, or a host reached through ssh with
// the worker's path there. The environment variables of scripted and CI runs keep overriding
// (ATLASCOPE_WORKER_HOST, ATLASCOPE_WORKER, ATLASCOPE_SSH_CONFIG), and the dialog says so.
#include "app/gui/WorkerJob.h"

#include <QString>
#include <QStringList>

class QSettings;

namespace atlascope::app {

struct JobLocation {
  enum class Kind { ThisCpu, ThisCuda, Ssh };
  Kind kind = Kind::ThisCpu;
  QString cudaProgram;                                  // ThisCuda: a CUDA build of atlascope-cli
  QString host;                                         // Ssh: [user@]host as ssh takes it
  QString remoteProgram;                                // Ssh: atlascope-cli's path there (empty: on the host's PATH)
  QString sshConfig;                                    // Ssh: an ssh client configuration file (empty: ssh's own)
  QString jobFolder = QStringLiteral("atlascope-jobs"); // Ssh: where datasets are copied
  bool alwaysCopy = false;                              // Ssh: copy even when the host sees the same path
  int gpus = 0; // what the last Test saw there: the job panels offer "GPUs" when > 1

  static JobLocation load(const QSettings& settings);
  void save(QSettings& settings) const;
  // The saved preferences with the environment on top: what the next job uses.
  static JobLocation current();
  static QStringList environmentOverrides(); // the variables set now
  WorkerHost workerHost() const;
  // The command that asks the worker what it runs on (`atlascope-cli device --json`), as a
  // program and its arguments (ssh first for a host).
  QStringList testCommand() const;
};

QString jobKindName(JobLocation::Kind kind); // "cpu", "cuda", "ssh": the settings' words

} // namespace atlascope::app
