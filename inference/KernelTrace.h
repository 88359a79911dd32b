#pragma once
// The device's kernels over a stretch of a run, as a Chrome trace (LibTorch's Kineto profiler):
// where a GPU step's time goes kernel by kernel, for `bench train --trace`. Only in LibTorch
// builds with CUDA and Kineto; start()/stop() do nothing otherwise.
#include <string>

namespace atlascope::inference {

class KernelTrace {
public:
  void start();
  // Stops and writes the trace (JSON) to `path`.
  void stop(const std::string& path);

private:
  bool running_ = false;
};

} // namespace atlascope::inference
