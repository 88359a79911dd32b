// gzip/zlib inflation: of unknown size (NIfTI .nii.gz, concatenated members) and of a size a
// header states (NRRD), taken from the input's first 3 bytes.
#include "core/Gzip.h"
#include "tests/fuzz/FuzzSupport.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ATLASCOPE_FUZZ_BODY(const auto all = atlascope::inflateAll(data, size, "input.gz"); (void)all.size());
  if (size >= 3) {
    const std::size_t expected = static_cast<std::size_t>(data[0]) | static_cast<std::size_t>(data[1]) << 8 |
                                 static_cast<std::size_t>(data[2]) << 16;
    ATLASCOPE_FUZZ_BODY(const auto exact = atlascope::inflateExactly(data + 3, size - 3, expected, "input.gz");
                        (void)exact.size());
  }
  return 0;
}
