#pragma once
// Nothing lost in the window: the open state (MainWindow::captureSession(), the workspace JSON)
// is written in the background a few seconds after it changes, and within kMaxDelayMs while it
// keeps changing (a long camera drag), to a per-user recovery folder. A clean exit (the window destroyed) removes the
// file; a crash or a kill leaves it, and the next start offers it back (SessionRecovery.h).
//
// One file per window, <id>.json, beside a lock <id>.lock that the window holds while it lives:
// a held lock is a running instance (its file is not offered), a stale one (its process gone) a
// dead one. So two windows, in one process or two, never write or take each other's file.
//
// Cheap by design: a poll captures the session (small JSON, microseconds) and compares it with
// the last one written; the write (QSaveFile, fsync, rename) runs on a thread of its own, so a
// slow disk never stalls the GUI thread, and the global pool's readers never delay it.
#include <QByteArray>
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QThreadPool>
#include <QTimer>

#include <memory>

class QLockFile;

namespace atlascope::app {

class MainWindow;

// The recovery folder: $ATLASCOPE_STATE_DIR/recovery, else $XDG_STATE_HOME/atlascope/recovery,
// else ~/.local/state/atlascope/recovery (state, not cache: cleaning caches must not lose it).
QString recoveryDir();

class SessionAutosave : public QObject {
  Q_OBJECT
public:
  static constexpr int kPollMs = 1000;      // how often the session is compared
  static constexpr int kQuietMs = 2000;     // written once unchanged this long...
  static constexpr int kMaxDelayMs = 30000; // ...or this long after the first unsaved change

  explicit SessionAutosave(MainWindow* window, QString dir = recoveryDir());
  ~SessionAutosave() override; // a clean exit: the file and the lock go

  QString path() const; // this window's recovery file (written or not yet)
  // The writes so far are on disk (tests; the destructor).
  void waitForWrites();

private:
  void poll();
  void write(const QByteArray& json);

  MainWindow* window_;
  QString dir_, id_;
  QTimer poll_;
  QThreadPool writer_; // one thread: writes land in order
  std::unique_ptr<QLockFile> lock_;
  bool haveBaseline_ = false;
  QByteArray baseline_; // the state when the atlas came up: not worth a file by itself
  QByteArray lastSeen_; // the previous poll's state
  QByteArray written_;  // what the file holds
  QElapsedTimer changed_, dirty_;
  bool reportedError_ = false;
};

} // namespace atlascope::app
