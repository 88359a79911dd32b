// torch.save archives: the zip reader (central directory, local headers, ZIP64, CRC-32, deflate)
// and the strict pickle interpreter behind it.
#include "core/TorchStateDict.h"
#include "tests/fuzz/FuzzSupport.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = atlascope::fuzz::writeInput("weights.pth", data, size);
  ATLASCOPE_FUZZ_BODY(const auto tensors = atlascope::readTorchStateDict(path); (void)tensors.size());
  return 0;
}
