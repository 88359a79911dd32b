#include "app/gui/SessionRecovery.h"

#include "app/workspace/Workspace.h"
#include "core/Error.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QLocale>
#include <QLockFile>
#include <QMessageBox>

#include <algorithm>
#include <cstdio>

namespace atlascope::app {

std::vector<OrphanedSession> orphanedSessions(const QString& dir) {
  std::vector<OrphanedSession> found;
  const QDir d(dir);
  for (const QFileInfo& f : d.entryInfoList({"session-*.json"}, QDir::Files)) {
    // The lock of a running window is held; a dead one's names a process that is gone, and
    // QLockFile takes it over (age plays no part: windows run for days).
    QLockFile lock(d.filePath(f.completeBaseName() + ".lock"));
    lock.setStaleLockTime(0);
    if (!lock.tryLock(0)) continue;
    lock.unlock(); // the dead window's lock, no longer needed
    found.push_back({f.filePath(), f.lastModified()});
  }
  std::sort(found.begin(), found.end(),
            [](const OrphanedSession& a, const OrphanedSession& b) { return a.saved > b.saved; });
  return found;
}

std::optional<QJsonObject> recoverSession(const QString& answer, const QString& dir) {
  const std::vector<OrphanedSession> orphans = orphanedSessions(dir);
  if (orphans.empty()) return std::nullopt;
  const OrphanedSession& newest = orphans.front();
  std::optional<QJsonObject> session;
  try {
    session = readSessionFile(newest.file);
    if (session->value("format").toString() != "atlascope-session") throw Error("not an Atlascope session");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atlascope: the session left by an earlier run cannot be restored: %s\n", e.what());
    QFile::remove(newest.file);
    return std::nullopt;
  }
  bool restore = answer == QLatin1String("yes");
  if (answer == QLatin1String("ask")) {
    if (qEnvironmentVariableIsSet("ATLASCOPE_NO_DIALOGS")) return std::nullopt; // asked at a later start
    QStringList shown;
    for (const QJsonValue& v : session->value("datasets").toArray()) {
      const QJsonObject d = v.toObject();
      QString one = QFileInfo(d.value("path").toString()).fileName();
      const QString by = d.value("display").toObject().value("colour_by").toString();
      if (!by.isEmpty()) one += QObject::tr(", coloured by %1").arg(by);
      shown << one;
    }
    const QString what = shown.isEmpty() ? QObject::tr("the atlas view") : shown.join('\n');
    restore =
        QMessageBox::question(
            nullptr, QObject::tr("Atlascope"),
            QObject::tr("Atlascope did not close normally last time. Restore what was open then?\n\n%1\n(saved %2)")
                .arg(what, QLocale().toString(newest.saved, QLocale::ShortFormat)),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::Yes) == QMessageBox::Yes;
  }
  QFile::remove(newest.file);
  if (!restore) return std::nullopt;
  return session;
}

} // namespace atlascope::app
