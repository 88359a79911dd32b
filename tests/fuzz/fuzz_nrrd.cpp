// NRRD: attached (.nrrd) and detached (.nhdr + a data file beside it) headers, raw/gzip/ascii.
#include "core/VolumeIO.h"
#include "tests/fuzz/FuzzSupport.h"

#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  // The detached data files the seeds name ("data file: data.raw" / "data.raw.gz").
  std::vector<std::uint8_t> raw(4 * 4 * 4 * 4, 7);
  atlascope::fuzz::writeInput("data.raw", raw.data(), raw.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = atlascope::fuzz::writeInput("input.nhdr", data, size);
  ATLASCOPE_FUZZ_BODY(const atlascope::Volume v = atlascope::readNrrd(path); (void)v.bytes.size());
  return 0;
}
