#pragma once
// ATLASCOPE_TRACE=1 prints each stage of a long job to stderr, with a timestamp: how a crash on a
// remote machine is located when no debugger is there.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace atlascope {
inline bool tracing() {
  static const bool on = std::getenv("ATLASCOPE_TRACE") != nullptr;
  return on;
}
inline void trace(const char* what) {
  if (!tracing()) return;
  static const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "[trace %8.3f s] %s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), what);
  std::fflush(stderr);
}
inline void trace(const std::string& what) {
  if (tracing()) trace(what.c_str());
}
} // namespace atlascope
