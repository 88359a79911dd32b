#pragma once
// Crash recovery at start: the sessions that windows autosaved (SessionAutosave.h) before their
// process ended without a clean exit (a crash, a kill, the machine going down). A session whose
// window still runs (its lock held) is never offered, so a second instance leaves the first alone.

#include <QDateTime>
#include <QJsonObject>
#include <QString>

#include <optional>
#include <vector>

namespace atlascope::app {

struct OrphanedSession {
  QString file;
  QDateTime saved;
};

// The sessions of dead instances in `dir`, newest first.
std::vector<OrphanedSession> orphanedSessions(const QString& dir);

// The newest orphaned session, by `answer`: "yes" restores it, "no" discards it, "ask" asks with a
// dialog (with ATLASCOPE_NO_DIALOGS set, nothing is asked and the file stays for a later start).
// Answered either way, the file goes: the restored window autosaves its own within seconds, and a
// session whose restore crashes is not offered for ever. Older orphans wait for later starts.
// The session is the workspace JSON (readSessionFile). A file that cannot be read is reported on stderr and discarded.
std::optional<QJsonObject> recoverSession(const QString& answer, const QString& dir);

} // namespace atlascope::app
