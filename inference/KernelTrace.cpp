#include "inference/KernelTrace.h"

#if __has_include(<torch/csrc/autograd/profiler_kineto.h>) && __has_include(<cuda_runtime_api.h>)
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#define ATLASCOPE_WITH_KINETO 1
#endif
#endif

namespace atlascope::inference {

#ifdef ATLASCOPE_WITH_KINETO
namespace {
namespace impl = torch::profiler::impl;
const impl::ProfilerConfig& config() {
  static const impl::ProfilerConfig c(impl::ProfilerState::KINETO);
  return c;
}
const std::set<impl::ActivityType>& activities() {
  static const std::set<impl::ActivityType> a{impl::ActivityType::CPU, impl::ActivityType::CUDA};
  return a;
}
} // namespace

void KernelTrace::start() {
  torch::autograd::profiler::prepareProfiler(config(), activities());
  torch::autograd::profiler::enableProfiler(config(), activities());
  running_ = true;
}

void KernelTrace::stop(const std::string& path) {
  if (!running_) return;
  running_ = false;
  torch::autograd::profiler::disableProfiler()->save(path);
}

KernelTrace::~KernelTrace() {
  if (!running_) return;
  try {
    torch::autograd::profiler::disableProfiler();
  } catch (...) { // nothing to report from a destructor; the trace is dropped either way
  }
}
#else
void KernelTrace::start() {}
void KernelTrace::stop(const std::string&) {}
KernelTrace::~KernelTrace() = default;
#endif

} // namespace atlascope::inference
