#include "app/gui/StallDetector.h"

#include <QCoreApplication>
#include <QEvent>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMetaEnum>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace atlascope::app {

StallDetector::StallDetector(QObject* parent) : QObject(parent) {
  clock_.start();
  lastTickNs_ = clock_.nsecsElapsed();
  setPhase(phase_);
  timer_.setTimerType(Qt::PreciseTimer);
  timer_.setInterval(kTickMs);
  connect(&timer_, &QTimer::timeout, this, &StallDetector::tick);
  timer_.start();
  QCoreApplication::instance()->installEventFilter(this);
}

StallDetector::~StallDetector() {
  if (QCoreApplication::instance()) QCoreApplication::instance()->removeEventFilter(this);
}

void StallDetector::setPhase(const QString& phase) {
  phase_ = phase;
  if (phases_.find(phase) == phases_.end()) {
    phases_[phase];
    order_.push_back(phase);
  }
}

bool StallDetector::eventFilter(QObject* watched, QEvent* event) {
  Delivery& d = recent_[next_++ % recent_.size()];
  d.ns = clock_.nsecsElapsed();
  d.className = watched->metaObject()->className();
  d.objectName = watched->objectName();
  d.type = static_cast<int>(event->type());
  return false;
}

QString StallDetector::describeStall(qint64 fromNs, qint64 toNs) const {
  // The delivery that held the loop longest in (fromNs, toNs): from its start to the next one's.
  const std::size_t n = std::min(next_, recent_.size());
  std::vector<const Delivery*> inOrder;
  for (std::size_t k = n; k > 0; --k) inOrder.push_back(&recent_[(next_ - k) % recent_.size()]);
  const Delivery* worst = nullptr;
  qint64 worstSpan = -1;
  for (std::size_t i = 0; i < inOrder.size(); ++i) {
    const qint64 end = i + 1 < inOrder.size() ? inOrder[i + 1]->ns : toNs;
    if (end < fromNs || inOrder[i]->ns > toNs) continue;
    const qint64 span = end - std::max(inOrder[i]->ns, fromNs);
    if (span > worstSpan) {
      worstSpan = span;
      worst = inOrder[i];
    }
  }
  if (!worst) return {};
  const char* type = QMetaEnum::fromType<QEvent::Type>().valueToKey(worst->type);
  QString what = QString::fromLatin1(worst->className);
  if (!worst->objectName.isEmpty()) what += " \"" + worst->objectName + "\"";
  return what + " " + (type ? QString::fromLatin1(type) : QString::number(worst->type));
}

void StallDetector::tick() {
  const qint64 now = clock_.nsecsElapsed();
  const double latency = std::max(0.0, static_cast<double>(now - lastTickNs_) / 1e6 - kTickMs);
  const qint64 from = lastTickNs_;
  lastTickNs_ = now;
  Phase& p = phases_[phase_];
  p.latencies.push_back(static_cast<float>(latency));
  if (latency > kReportMs) {
    ++p.stats.over;
    p.stats.stalledMs += latency;
  }
  if (latency > p.stats.longestMs) {
    p.stats.longestMs = latency;
    p.stats.longestAtS = static_cast<double>(from) / 1e9;
    if (latency > kReportMs) p.stats.longestDuring = describeStall(from, now);
  }
  if (reportLive_ && latency > kReportMs)
    std::fprintf(stderr, "atlascope: the GUI thread stalled %.0f ms (%s; %s)\n", latency, qPrintable(phase_),
                 qPrintable(describeStall(from, now)));
}

StallDetector::Stats StallDetector::summarise(const Phase& p) {
  Stats s = p.stats;
  s.ticks = static_cast<std::int64_t>(p.latencies.size());
  if (!p.latencies.empty()) {
    std::vector<float> l = p.latencies;
    const auto k = static_cast<std::ptrdiff_t>(static_cast<double>(l.size() - 1) * 0.99);
    std::nth_element(l.begin(), l.begin() + k, l.end());
    s.p99Ms = l[static_cast<std::size_t>(k)];
  }
  return s;
}

StallDetector::Stats StallDetector::phase(const QString& name) const {
  const auto it = phases_.find(name);
  return it == phases_.end() ? Stats{} : summarise(it->second);
}

StallDetector::Stats StallDetector::total() const {
  Phase all;
  for (const auto& [name, p] : phases_) {
    all.latencies.insert(all.latencies.end(), p.latencies.begin(), p.latencies.end());
    all.stats.over += p.stats.over;
    all.stats.stalledMs += p.stats.stalledMs;
    if (p.stats.longestMs > all.stats.longestMs) {
      all.stats.longestMs = p.stats.longestMs;
      all.stats.longestAtS = p.stats.longestAtS;
      all.stats.longestDuring = name + ": " + p.stats.longestDuring;
    }
  }
  return summarise(all);
}

QByteArray StallDetector::json() const {
  auto round = [](double v) { return std::round(v * 10) / 10; };
  auto object = [&](const Stats& s) {
    QJsonObject o{{"ticks", static_cast<double>(s.ticks)}, {"longest_ms", round(s.longestMs)}, {"p99_ms", round(s.p99Ms)},
                  {"over_100ms", s.over}, {"stalled_ms", round(s.stalledMs)}, {"longest_at_s", round(s.longestAtS)}};
    if (!s.longestDuring.isEmpty()) o["longest_during"] = s.longestDuring;
    return o;
  };
  QJsonObject o = object(total());
  o["figure"] = "stalls";
  o["tick_ms"] = kTickMs;
  o["seconds"] = round(static_cast<double>(clock_.nsecsElapsed()) / 1e9);
  QJsonObject phases;
  for (const QString& name : order_) phases[name] = object(phase(name));
  o["phases"] = phases;
  return QJsonDocument(o).toJson(QJsonDocument::Compact);
}

} // namespace atlascope::app
