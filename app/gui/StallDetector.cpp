#include "app/gui/StallDetector.h"

#include <QCoreApplication>
#include <QEvent>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMetaEnum>

#include <vtkCallbackCommand.h>
#include <vtkCommand.h>
#include <vtkRenderWindow.h>

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

void StallDetector::watchRenderWindow(vtkRenderWindow* window) {
  auto cb = vtkSmartPointer<vtkCallbackCommand>::New();
  cb->SetCallback(&StallDetector::onRender);
  cb->SetClientData(this);
  window->AddObserver(vtkCommand::StartEvent, cb);
  window->AddObserver(vtkCommand::EndEvent, cb);
}

void StallDetector::onRender(vtkObject*, unsigned long event, void* self, void*) {
  auto* d = static_cast<StallDetector*>(self);
  const qint64 now = d->clock_.nsecsElapsed();
  if (event == vtkCommand::StartEvent) {
    d->renderStartNs_ = now;
    return;
  }
  const qint64 frame = now - d->renderStartNs_;
  d->renderNs_ += frame;
  Phase& p = d->phases_[d->phase_];
  ++p.stats.frames;
  p.stats.frameMs = std::max(p.stats.frameMs, static_cast<double>(frame) / 1e6);
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
  const double work = std::max(0.0, latency - static_cast<double>(renderNs_) / 1e6);
  renderNs_ = 0;
  p.work.push_back(static_cast<float>(work));
  if (work > kReportMs) ++p.stats.overWork;
  if (work > p.stats.longestWorkMs) {
    p.stats.longestWorkMs = work;
    if (work > kReportMs) p.stats.longestWorkDuring = describeStall(from, now);
  }
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

namespace {
double p99(std::vector<float> l) {
  if (l.empty()) return 0;
  const auto k = static_cast<std::ptrdiff_t>(static_cast<double>(l.size() - 1) * 0.99);
  std::nth_element(l.begin(), l.begin() + k, l.end());
  return l[static_cast<std::size_t>(k)];
}
} // namespace

StallDetector::Stats StallDetector::summarise(const Phase& p) {
  Stats s = p.stats;
  s.ticks = static_cast<std::int64_t>(p.latencies.size());
  s.p99Ms = p99(p.latencies);
  s.p99WorkMs = p99(p.work);
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
    all.work.insert(all.work.end(), p.work.begin(), p.work.end());
    all.stats.over += p.stats.over;
    all.stats.overWork += p.stats.overWork;
    all.stats.frames += p.stats.frames;
    all.stats.frameMs = std::max(all.stats.frameMs, p.stats.frameMs);
    if (p.stats.longestWorkMs > all.stats.longestWorkMs) {
      all.stats.longestWorkMs = p.stats.longestWorkMs;
      all.stats.longestWorkDuring =
          p.stats.longestWorkDuring.isEmpty() ? QString() : name + ": " + p.stats.longestWorkDuring;
    }
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
    QJsonObject o{{"ticks", static_cast<double>(s.ticks)},
                  {"longest_ms", round(s.longestMs)},
                  {"p99_ms", round(s.p99Ms)},
                  {"over_100ms", s.over},
                  {"stalled_ms", round(s.stalledMs)},
                  {"longest_at_s", round(s.longestAtS)}};
    if (!s.longestDuring.isEmpty()) o["longest_during"] = s.longestDuring;
    o["work_longest_ms"] = round(s.longestWorkMs);
    o["work_p99_ms"] = round(s.p99WorkMs);
    o["work_over_100ms"] = s.overWork;
    if (!s.longestWorkDuring.isEmpty()) o["work_longest_during"] = s.longestWorkDuring;
    o["frames"] = s.frames;
    o["frame_longest_ms"] = round(s.frameMs);
    return o;
  };
  QJsonObject o = object(total());
  for (auto it = extra_.begin(); it != extra_.end(); ++it) o[it.key()] = it.value();
  o["figure"] = "stalls";
  o["tick_ms"] = kTickMs;
  o["seconds"] = round(static_cast<double>(clock_.nsecsElapsed()) / 1e9);
  QJsonObject phases;
  for (const QString& name : order_)
    if (const Stats p = phase(name); p.ticks > 0) phases[name] = object(p);
  o["phases"] = phases;
  return QJsonDocument(o).toJson(QJsonDocument::Compact);
}

} // namespace atlascope::app
