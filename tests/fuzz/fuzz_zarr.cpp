// BrainGlobe v3 stacks: a Zarr array's metadata (v3 zarr.json or v2 .zarray) and one chunk, or an
// OME-Zarr group's multiscales. The input: byte 0 picks the mode (0: v3 array, 1: v2 array, 2:
// OME group), then the metadata text up to the first NUL byte, then the chunk's stored bytes
// (written under every key encoding of chunk (0, 0, 0) and (1, 0, 0)).
#include "core/ZarrArray.h"
#include "tests/fuzz/FuzzSupport.h"

#include <filesystem>

namespace {
std::string folder() { return atlascope::fuzz::scratch() + "/array"; }

void put(const std::string& rel, const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path p = std::filesystem::path(folder()) / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  const auto* text = data + 1;
  std::size_t textSize = 0;
  while (1 + textSize < size && text[textSize] != 0) ++textSize;
  const std::uint8_t* chunk = text + textSize + (1 + textSize < size ? 1 : 0);
  const std::size_t chunkSize = static_cast<std::size_t>(data + size - chunk);
  std::filesystem::remove_all(folder());
  const char* meta = mode == 0 ? "zarr.json" : mode == 1 ? ".zarray" : "zarr.json";
  put(meta, text, textSize);
  for (const char* key : {"c/0/0/0", "c.0.0.0", "0.0.0", "0/0/0", "c/1/0/0", "1.0.0"}) put(key, chunk, chunkSize);
  ATLASCOPE_FUZZ_BODY({
    if (mode == 2) {
      const atlascope::OmeMultiscales ms = atlascope::readOmeMultiscales(folder());
      (void)ms.levels.size();
    } else {
      const atlascope::ZarrArray a = atlascope::ZarrArray::open(folder());
      std::uint64_t sum = 0;
      if (a.shape().size() == 3)
        a.read3d([&](const atlascope::StackBlock& b) { sum += b.data[0]; });
      else
        (void)a.decodeChunk(chunk, chunkSize, folder() + "/chunk").size();
      (void)sum;
    }
  });
  return 0;
}
