#pragma once
// Progress reporting and cancellation for long jobs, in plain C++ so that core and inference stay
// free of Qt; the app turns these into signals, the CLI into progress lines.
#include "core/Error.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace atlascope {

class CancellationToken {
public:
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool isCancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // Called at safe points by long jobs.
  void throwIfCancelled() const {
    if (isCancelled()) throw Cancelled();
  }

private:
  std::atomic<bool> cancelled_{false};
};

struct Progress {
  // stage: what is being done ("reading annotation"); done/total in the stage's own units.
  std::function<void(const std::string& stage, std::int64_t done, std::int64_t total)> report;
  const CancellationToken* cancel = nullptr;

  void operator()(const std::string& stage, std::int64_t done, std::int64_t total) const {
    if (report) report(stage, done, total);
    if (cancel) cancel->throwIfCancelled();
  }
};

} // namespace atlascope
