#pragma once
// Shared by the libFuzzer targets: a private scratch folder for readers that take a path, and the
// rule every target applies: an input may be refused only with an atlascope::Error (any other
// exception, a crash, a leak, undefined behaviour or an allocation over the budget is a finding).
#include "core/Error.h"
#include "core/MemoryBudget.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace atlascope::fuzz {

// The memory any one input may make a reader allocate: far below libFuzzer's -rss_limit_mb
// (2 GB), so that a header's claim is refused by checkAllocation, not by the fuzzer.
constexpr std::uint64_t kMemoryBudget = 256ull << 20;

inline const std::string& scratch() {
  // Never destroyed: the exit handler that removes the folder runs after static destructors
  // would have (a static std::string here was used after free at exit).
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    auto* tmpl = new std::string(std::string(base && *base ? base : "/tmp") + "/atlascope-fuzz-XXXXXX");
    if (!mkdtemp(tmpl->data())) std::abort();
    std::atexit([] { std::filesystem::remove_all(scratch()); }); // a normal end leaves nothing
    return tmpl;
  }();
  return *dir;
}

inline std::string writeInput(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush()) std::abort();
  return path;
}

inline void setUp() { setMemoryLimit(kMemoryBudget); }

} // namespace atlascope::fuzz

// Runs `body`; an atlascope::Error is a clean refusal. Its message must be one line of bounded
// length (issue 14: one line, at most ~100 characters of quoted content).
#define ATLASCOPE_FUZZ_BODY(body)                                                                                      \
  try {                                                                                                                \
    body;                                                                                                              \
  } catch (const atlascope::Error& e) {                                                                                \
    const std::string what = e.what();                                                                                 \
    if (what.find('\n') != std::string::npos || what.size() > 2000) {                                                  \
      std::fprintf(stderr, "message not one short line (%zu chars): %.300s\n", what.size(), what.c_str());             \
      std::abort();                                                                                                    \
    }                                                                                                                  \
  }
