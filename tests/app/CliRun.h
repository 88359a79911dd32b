#pragma once
// atlascope-cli as the tests run it (ATLASCOPE_CLI, set per test target): its exit code (-1: it
// timed out and was killed, -2: it crashed), stdout and stderr; and the check every bad-input test
// makes, that the CLI failed with one line naming the problem.
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTest>

namespace atlascope::app::test {

struct CliRun {
  int code = -1;
  QString out, err;
};

inline CliRun runCli(const QStringList& args, int timeoutMs,
                     const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment()) {
  QProcess p;
  p.setProcessEnvironment(env);
  p.start(QStringLiteral(ATLASCOPE_CLI), args);
  CliRun r;
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    p.waitForFinished();
    return r;
  }
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
  r.out = QString::fromUtf8(p.readAllStandardOutput());
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}

inline void expectOneLineError(const CliRun& r, const QString& fragment) {
  QVERIFY2(r.code > 0, qPrintable(QString("exit %1, stderr: %2").arg(r.code).arg(r.err)));
  const QStringList lines = r.err.trimmed().split('\n');
  QVERIFY2(lines.size() == 1, qPrintable("expected one line, got: " + r.err));
  QVERIFY2(r.err.contains(fragment, Qt::CaseInsensitive), qPrintable("expected '" + fragment + "' in: " + r.err));
}

} // namespace atlascope::app::test
