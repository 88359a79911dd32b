#include "app/gui/WorkerProtocol.h"

#include <QJsonDocument>
#include <QJsonValue>

#include <cmath>

namespace atlascope::app {

namespace {
// A count from JSON: a number (possibly a double such as 1e300 or NaN) or a numeric string.
// Converting an out-of-range double to an integer is undefined, so it is clamped first.
qint64 count(const QJsonValue& v) {
  double d = 0;
  if (v.isDouble())
    d = v.toDouble();
  else if (v.isString())
    d = v.toString().toDouble();
  if (!std::isfinite(d) || d <= 0) return 0;
  if (d >= 9.2e18) return static_cast<qint64>(9.2e18);
  return static_cast<qint64>(d);
}
} // namespace

WorkerLine parseWorkerLine(const QByteArray& raw) {
  WorkerLine out;
  const QByteArray line = raw.trimmed();
  if (line.isEmpty()) return out;
  if (line.startsWith(kWorkerPidLine)) {
    out.kind = WorkerLine::Kind::Pid;
    out.text = QString::fromUtf8(line.mid(static_cast<int>(sizeof kWorkerPidLine) - 1)).trimmed();
    return out;
  }
  const QJsonDocument doc = QJsonDocument::fromJson(line);
  if (!doc.isObject()) {
    out.kind = WorkerLine::Kind::Log;
    out.text = QString::fromUtf8(line);
    return out;
  }
  out.object = doc.object();
  if (out.object.contains("result")) {
    out.kind = WorkerLine::Kind::Result;
    return out;
  }
  out.kind = WorkerLine::Kind::Progress;
  out.stage = out.object.value("stage").toString();
  if (out.object.contains("done")) {
    out.hasCounts = true;
    out.done = count(out.object.value("done"));
    out.total = count(out.object.value("total"));
  }
  return out;
}

QList<QByteArray> takeWorkerLines(QByteArray& buffer) {
  QList<QByteArray> lines;
  qsizetype start = 0, newline;
  while ((newline = buffer.indexOf('\n', start)) >= 0) {
    lines.append(buffer.mid(start, newline - start));
    start = newline + 1;
  }
  buffer.remove(0, start);
  if (buffer.size() > kMaxWorkerLine) {
    lines.append(buffer.left(kMaxWorkerLine));
    buffer.clear();
  }
  return lines;
}

} // namespace atlascope::app
