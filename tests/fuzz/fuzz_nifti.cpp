// NIfTI-1: .nii (n+1), .nii.gz (any gzip input is inflated first), and the .hdr/.img pair (ni1).
#include "core/VolumeIO.h"
#include "tests/fuzz/FuzzSupport.h"

#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  std::vector<std::uint8_t> img(512, 3);
  atlascope::fuzz::writeInput("pair.img", img.data(), img.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte picks the name: a single file or the header of a pair (its .img is fixed).
  const bool pair = size > 0 && (data[0] & 1);
  const std::string path = atlascope::fuzz::writeInput(pair ? "pair.hdr" : "input.nii", data, size);
  ATLASCOPE_FUZZ_BODY(const atlascope::Volume v = atlascope::readNifti(path); (void)v.bytes.size());
  return 0;
}
