#include "app/workspace/TaskRunner.h"

namespace atlascope::app {

quint64 TaskRunner::begin(const QString& channel, std::shared_ptr<CancellationToken> token) {
  Slot& slot = channels_[channel];
  if (slot.token) slot.token->cancel(); // superseded
  slot.wanted = slot.inFlight = nextStamp_++;
  slot.token = std::move(token);
  ++busy_;
  emit busyChanged(busy_);
  // Finished futures are forgotten so the list stays short.
  futures_.erase(
      std::remove_if(futures_.begin(), futures_.end(), [](const QFuture<void>& f) { return f.isFinished(); }),
      futures_.end());
  return slot.inFlight;
}

bool TaskRunner::finish(const QString& channel, quint64 stamp) {
  --busy_;
  const auto it = channels_.find(channel);
  const bool current = it != channels_.end() && it->second.wanted == stamp;
  if (it != channels_.end() && it->second.inFlight == stamp) {
    it->second.inFlight = 0;
    it->second.token.reset();
  }
  emit busyChanged(busy_);
  return current;
}

void TaskRunner::invalidate(const QString& channel) {
  const auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  if (it->second.token) it->second.token->cancel();
  it->second.wanted = nextStamp_++; // whatever is in flight is stale now
}

void TaskRunner::invalidatePrefix(const QString& prefix) {
  for (auto& [channel, slot] : channels_) {
    if (!channel.startsWith(prefix)) continue;
    if (slot.token) slot.token->cancel();
    slot.wanted = nextStamp_++;
  }
}

bool TaskRunner::isRunning(const QString& channel) const {
  const auto it = channels_.find(channel);
  return it != channels_.end() && it->second.inFlight != 0;
}

void TaskRunner::waitForAll() {
  for (auto& [channel, slot] : channels_)
    if (slot.token) slot.token->cancel();
  for (QFuture<void>& f : futures_) f.waitForFinished();
  futures_.clear();
}

} // namespace atlascope::app
