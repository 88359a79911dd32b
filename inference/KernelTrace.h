#pragma once
// The device's kernels over a stretch of a run, as a Chrome trace (LibTorch's Kineto profiler):
// where a GPU step's time goes kernel by kernel, for `bench train --trace`. Only in LibTorch
// builds with CUDA and Kineto; start()/stop() do nothing otherwise.
#include <string>

namespace atlascope::inference {

class KernelTrace {
public:
  KernelTrace() = default;
  KernelTrace(const KernelTrace&) = delete;
  KernelTrace& operator=(const KernelTrace&) = delete;
  // A trace still running (a run that failed inside its window) is stopped and dropped, so that
  // the profiler does not go on recording the rest of the process.
  ~KernelTrace();
  void start();
  // Stops and writes the trace (JSON) to `path`.
  void stop(const std::string& path);
  bool running() const { return running_; }

private:
  bool running_ = false;
};

} // namespace atlascope::inference
