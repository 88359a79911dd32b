// BrainGlobe v1 stacks: multi-page TIFF (classic and BigTIFF) read through libtiff, every page's
// tags checked for one stack, strips read as the file states them, buffers bounded by the file.
#include "core/TiffStack.h"
#include "tests/fuzz/FuzzSupport.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = atlascope::fuzz::writeInput("input.tiff", data, size);
  ATLASCOPE_FUZZ_BODY(const atlascope::Volume v = atlascope::readTiffVolume(path); (void)v.bytes.size());
  return 0;
}
