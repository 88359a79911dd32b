#include "app/gui/JobLocation.h"

#include <QSettings>

namespace atlascope::app {

QString jobKindName(JobLocation::Kind kind) {
  switch (kind) {
  case JobLocation::Kind::ThisCuda: return QStringLiteral("cuda");
  case JobLocation::Kind::Ssh: return QStringLiteral("ssh");
  case JobLocation::Kind::ThisCpu: break;
  }
  return QStringLiteral("cpu");
}

JobLocation JobLocation::load(const QSettings& s) {
  JobLocation l;
  const QString kind = s.value("jobs/kind").toString();
  l.kind = kind == "cuda" ? Kind::ThisCuda : kind == "ssh" ? Kind::Ssh : Kind::ThisCpu;
  l.cudaProgram = s.value("jobs/cuda_program").toString();
  l.host = s.value("jobs/host").toString();
  l.remoteProgram = s.value("jobs/remote_program").toString();
  l.sshConfig = s.value("jobs/ssh_config").toString();
  l.jobFolder = s.value("jobs/job_folder", l.jobFolder).toString();
  l.alwaysCopy = s.value("jobs/always_copy", false).toBool();
  l.gpus = s.value("jobs/gpus", 0).toInt();
  return l;
}

void JobLocation::save(QSettings& s) const {
  s.setValue("jobs/kind", jobKindName(kind));
  s.setValue("jobs/cuda_program", cudaProgram);
  s.setValue("jobs/host", host);
  s.setValue("jobs/remote_program", remoteProgram);
  s.setValue("jobs/ssh_config", sshConfig);
  s.setValue("jobs/job_folder", jobFolder);
  s.setValue("jobs/always_copy", alwaysCopy);
  s.setValue("jobs/gpus", gpus);
}

QStringList JobLocation::environmentOverrides() {
  QStringList set;
  for (const char* v : {"ATLASCOPE_WORKER_HOST", "ATLASCOPE_WORKER", "ATLASCOPE_SSH_CONFIG"})
    if (qEnvironmentVariableIsSet(v)) set << QString::fromLatin1(v);
  return set;
}

JobLocation JobLocation::current() {
  JobLocation l = load(QSettings());
  if (qEnvironmentVariableIsSet("ATLASCOPE_WORKER_HOST")) {
    l.host = qEnvironmentVariable("ATLASCOPE_WORKER_HOST");
    l.kind = l.host.isEmpty() ? Kind::ThisCpu : Kind::Ssh;
  }
  if (qEnvironmentVariableIsSet("ATLASCOPE_WORKER")) {
    const QString program = qEnvironmentVariable("ATLASCOPE_WORKER");
    if (l.kind == Kind::Ssh)
      l.remoteProgram = program;
    else {
      l.kind = Kind::ThisCuda; // "a worker program on this machine": the CUDA build's slot
      l.cudaProgram = program;
    }
  }
  if (qEnvironmentVariableIsSet("ATLASCOPE_SSH_CONFIG")) l.sshConfig = qEnvironmentVariable("ATLASCOPE_SSH_CONFIG");
  return l;
}

WorkerHost JobLocation::workerHost() const {
  WorkerHost h;
  switch (kind) {
  case Kind::ThisCpu: break; // the atlascope-cli beside this executable
  case Kind::ThisCuda: h.program = cudaProgram; break;
  case Kind::Ssh:
    h.host = host;
    h.program = remoteProgram;
    h.sshConfig = sshConfig;
    h.jobFolder = jobFolder;
    h.alwaysCopy = alwaysCopy;
    break;
  }
  return h;
}

QStringList JobLocation::testCommand() const {
  const WorkerHost h = workerHost();
  if (h.host.isEmpty()) return {h.workerProgram(), "device", "--json"};
  return QStringList{"ssh"} << h.sshArguments() << h.host << h.workerProgram() + " device --json";
}

} // namespace atlascope::app
