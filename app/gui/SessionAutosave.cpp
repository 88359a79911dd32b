#include "app/gui/SessionAutosave.h"

#include "app/gui/MainWindow.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLockFile>
#include <QSaveFile>
#include <QStatusBar>

#include <atomic>

namespace atlascope::app {

QString recoveryDir() {
  const QString state = qEnvironmentVariable("ATLASCOPE_STATE_DIR");
  if (!state.isEmpty()) return QDir(state).filePath("recovery");
  const QString xdg = qEnvironmentVariable("XDG_STATE_HOME");
  if (!xdg.isEmpty()) return QDir(xdg).filePath("atlascope/recovery");
  return QDir::home().filePath(".local/state/atlascope/recovery");
}

namespace {
// What counts as a change: the session without the window size (a window manager resizing the
// window at start is not the user's work).
QByteArray comparable(QJsonObject s) {
  s.remove("window"); // the window's size, one of the window's extras at the top level
  return QJsonDocument(s).toJson(QJsonDocument::Compact);
}
} // namespace

SessionAutosave::SessionAutosave(MainWindow* window, QString dir)
    : QObject(window), window_(window), dir_(std::move(dir)) {
  // The pid names the instance for a person looking at the folder; the time and a counter keep
  // ids unique across reused pids and several windows in one process.
  static std::atomic<int> counter{0};
  id_ = QStringLiteral("session-%1-%2-%3")
            .arg(QCoreApplication::applicationPid())
            .arg(QDateTime::currentMSecsSinceEpoch())
            .arg(counter++);
  writer_.setMaxThreadCount(1);
  writer_.setExpiryTimeout(-1);
  poll_.setInterval(kPollMs);
  connect(&poll_, &QTimer::timeout, this, &SessionAutosave::poll);
  poll_.start();
}

SessionAutosave::~SessionAutosave() {
  poll_.stop();
  waitForWrites();
  if (!lock_) return; // nothing was ever written
  QFile::remove(path());
  lock_->unlock(); // removes the lock file
}

QString SessionAutosave::path() const { return QDir(dir_).filePath(id_ + ".json"); }

void SessionAutosave::waitForWrites() { writer_.waitForDone(); }

void SessionAutosave::poll() {
  // Before the atlas (and the command line's patch, applied with it), the session holds nothing
  // of the user's.
  if (!window_->atlas()) return;
  const QJsonObject session = window_->captureSession();
  const QByteArray now = comparable(session);
  if (!haveBaseline_) {
    baseline_ = now;
    haveBaseline_ = true;
  }
  if (now != lastSeen_) {
    lastSeen_ = now;
    changed_.start();
  }
  if (now == written_) {
    dirty_.invalidate();
    return;
  }
  // The state the window came up in, without a dataset, is what any start shows: nothing to offer.
  if (written_.isEmpty() && now == baseline_ && session.value("datasets").toArray().isEmpty()) return;
  if (!dirty_.isValid()) dirty_.start();
  if (changed_.elapsed() < kQuietMs && dirty_.elapsed() < kMaxDelayMs) return;
  written_ = now;
  dirty_.invalidate();
  write(QJsonDocument(session).toJson(QJsonDocument::Indented));
}

void SessionAutosave::write(const QByteArray& json) {
  if (!lock_) {
    // The lock before the first file: a file without a held lock would look like a dead
    // instance's to another one starting now.
    QDir().mkpath(dir_);
    lock_ = std::make_unique<QLockFile>(QDir(dir_).filePath(id_ + ".lock"));
    lock_->setStaleLockTime(0); // held for the window's life, however long
    if (!lock_->tryLock(0)) {
      lock_.reset();
      written_.clear();
      if (!reportedError_)
        window_->statusBar()->showMessage(tr("Autosave is off: cannot create a lock in %1").arg(dir_), 15000);
      reportedError_ = true;
      return;
    }
  }
  const QString file = path();
  writer_.start([this, file, json] {
    QSaveFile f(file); // temporary file, fsync, rename: a crash mid-write leaves the previous one
    QString error;
    if (!f.open(QIODevice::WriteOnly) || f.write(json) != json.size() || !f.commit()) error = f.errorString();
    if (error.isEmpty()) return;
    // Back on the GUI thread (this lives until the writes are done: the destructor waits).
    QMetaObject::invokeMethod(
        this,
        [this, file, error] {
          written_.clear(); // try again at the next poll
          if (reportedError_) return;
          reportedError_ = true;
          window_->statusBar()->showMessage(tr("Autosave: cannot write %1: %2").arg(file, error), 15000);
        },
        Qt::QueuedConnection);
  });
}

} // namespace atlascope::app
