#pragma once
// The worker's stdout protocol (WorkerJob.h): one JSON object per line, parsed here with Qt Core
// only, apart from the process handling, so that a fuzz target can feed it arbitrary bytes (a
// worker on another machine, an ssh banner or a broken pipe can print anything).
#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QString>

namespace atlascope::app {

// The line the remote shell prints before it becomes the worker (WorkerJob.cpp).
constexpr char kWorkerPidLine[] = "atlascope-worker-pid ";
// A line longer than this is not a progress object: it is cut and shown as log text, so that a
// worker printing without newlines cannot grow the window's buffer without bound.
constexpr int kMaxWorkerLine = 1 << 20;

struct WorkerLine {
  enum class Kind { Empty, Pid, Log, Result, Progress };
  Kind kind = Kind::Empty;
  QString text;       // Pid: the process id; Log: the line
  QJsonObject object; // Result and Progress: the object
  // Progress with a "done" field: the stage and the counts (clamped to qint64, never negative).
  bool hasCounts = false;
  QString stage;
  qint64 done = 0, total = 0;
};

WorkerLine parseWorkerLine(const QByteArray& line);

// Removes the complete lines from the front of `buffer` and returns them (without '\n'); a
// partial line stays, unless it is longer than kMaxWorkerLine (then it is returned, cut).
QList<QByteArray> takeWorkerLines(QByteArray& buffer);

} // namespace atlascope::app
