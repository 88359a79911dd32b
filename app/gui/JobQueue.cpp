#include "app/gui/JobQueue.h"

#include <QTimer>

#include <algorithm>

namespace atlascope::app {

bool JobQueue::submit(QObject* owner, const QString& label, std::function<void()> start) {
  if (running_) {
    line_.push_back({owner, label, std::move(start)});
    emit changed();
    return false;
  }
  running_ = owner;
  runningLabel_ = label;
  emit changed();
  start();
  return true;
}

void JobQueue::ended(QObject* owner) {
  if (running_ != owner) return;
  running_ = nullptr;
  runningLabel_.clear();
  emit changed();
  QTimer::singleShot(0, this, &JobQueue::startNext);
}

void JobQueue::startNext() {
  if (running_ || line_.empty()) return;
  Entry e = std::move(line_.front());
  line_.pop_front();
  running_ = e.owner;
  runningLabel_ = e.label;
  emit changed();
  e.start();
}

bool JobQueue::remove(QObject* owner) {
  const auto it = std::find_if(line_.begin(), line_.end(), [owner](const Entry& e) { return e.owner == owner; });
  if (it == line_.end()) return false;
  line_.erase(it);
  emit changed();
  return true;
}

bool JobQueue::isWaiting(const QObject* owner) const {
  return std::any_of(line_.begin(), line_.end(), [owner](const Entry& e) { return e.owner == owner; });
}

} // namespace atlascope::app
