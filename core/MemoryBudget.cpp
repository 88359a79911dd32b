#include "core/MemoryBudget.h"

#include "core/Error.h"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace atlascope {

namespace {
std::atomic<std::uint64_t> g_limit{0};
} // namespace

void setMemoryLimit(std::uint64_t bytes) { g_limit = bytes; }

std::uint64_t memoryAvailable() {
  std::uint64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:") {
      available = kb * 1024;
      break;
    }
  }
  if (available == 0) { // no /proc: the physical memory
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    available = pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
                                      : std::numeric_limits<std::uint64_t>::max();
  }
  // Leave a tenth for everything else the process (and the machine) is doing.
  available -= available / 10;
  const std::uint64_t limit = g_limit.load();
  return limit && limit < available ? limit : available;
}

std::uint64_t saturatingMultiply(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

std::string describeBytes(std::uint64_t bytes) {
  if (bytes == std::numeric_limits<std::uint64_t>::max()) return "more than 2^64 bytes";
  if (bytes < 10000) return std::to_string(bytes) + " bytes";
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b < 1e6)
    std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  else if (b < 1e9)
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else if (b < 1e12)
    std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.3g TB", b / 1e12);
  return buf;
}

void checkAllocation(const std::string& path, const std::string& field, std::uint64_t bytes,
                     std::uint64_t fileCanHold) {
  if (bytes > fileCanHold)
    throw FileError(path, field + " claims " + describeBytes(bytes) + ", more than the file can hold (at most " +
                              describeBytes(fileCanHold) + "): a damaged or forged header");
  const std::uint64_t available = memoryAvailable();
  if (bytes > available)
    throw FileError(path, field + " needs " + describeBytes(bytes) + " of memory, " + describeBytes(available) +
                              " is available");
}

} // namespace atlascope
