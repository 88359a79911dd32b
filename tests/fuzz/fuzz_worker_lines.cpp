// The worker's stdout as the window reads it (WorkerProtocol: line splitting, the pid line, JSON
// progress and result objects), fed in two pieces as a pipe delivers it.
#include "app/gui/WorkerProtocol.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace atlascope::app;
  if (size == 0) return 0;
  const std::size_t cut = data[0] % size;
  QByteArray buffer;
  for (const auto& [from, to] : {std::pair<std::size_t, std::size_t>{1, cut}, {cut, size}}) {
    if (to <= from) continue;
    buffer.append(reinterpret_cast<const char*>(data + from), static_cast<int>(to - from));
    for (const QByteArray& line : takeWorkerLines(buffer)) {
      const WorkerLine l = parseWorkerLine(line);
      if (l.hasCounts && (l.done < 0 || l.total < 0)) std::abort(); // counts are clamped, never negative
    }
    if (buffer.size() > kMaxWorkerLine) std::abort(); // the buffer stays bounded
  }
  return 0;
}
