#pragma once
// ATLASCOPE_TRACE=1 prints each stage of a long job to stderr, with a timestamp: how a crash on a
// remote machine is located when no debugger is there.
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace atlascope {
inline void trace(const char* what) {
  static const bool on = std::getenv("ATLASCOPE_TRACE") != nullptr;
  if (!on) return;
  static const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "[trace %8.3f s] %s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), what);
  std::fflush(stderr);
}
} // namespace atlascope
