// Writes the TIFF and Zarr fuzz targets' seeds into OUT/fuzz_tiff and OUT/fuzz_zarr with core's
// own writers: small stacks (classic and BigTIFF, several strips, 8/16/32-bit), Zarr arrays under
// each codec (zstd, blosc, none; v3 and v2) in the target's input form, and OME group metadata.
#include "core/Error.h"
#include "core/TiffStack.h"
#include "core/ZarrArray.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;
using namespace atlascope;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}
} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_atlas_seeds FOLDER\n");
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path tmp = out / "tmp-atlas-seeds";
  fs::create_directories(tmp);
  std::vector<std::uint32_t> v32(3 * 6 * 5);
  for (std::size_t i = 0; i < v32.size(); ++i) v32[i] = static_cast<std::uint32_t>(i % 7 == 0 ? 0 : 100 + i);
  std::vector<std::uint16_t> v16(v32.begin(), v32.end());
  std::vector<std::uint8_t> v8(v32.size());
  for (std::size_t i = 0; i < v8.size(); ++i) v8[i] = static_cast<std::uint8_t>(i % 3);
  int n = 0;
  for (bool big : {false, true})
    for (std::uint32_t rows : {0u, 2u}) {
      const std::string name = std::string(big ? "big" : "classic") + "-rows" + std::to_string(rows);
      writeTiffStack((tmp / "a.tiff").string(), {3, 6, 5}, ScalarType::UInt32, v32.data(), big, rows,
                     "{\"shape\": [3, 6, 5]}");
      put(out / "fuzz_tiff" / (name + "-u32.tiff"), slurp(tmp / "a.tiff"));
      writeTiffStack((tmp / "a.tiff").string(), {3, 6, 5}, ScalarType::UInt16, v16.data(), big, rows);
      put(out / "fuzz_tiff" / (name + "-u16.tiff"), slurp(tmp / "a.tiff"));
      writeTiffStack((tmp / "a.tiff").string(), {3, 6, 5}, ScalarType::UInt8, v8.data(), big, rows);
      put(out / "fuzz_tiff" / (name + "-u8.tiff"), slurp(tmp / "a.tiff"));
      n += 3;
    }
  for (int format : {3, 2})
    for (const char* codec : {"zstd", "blosc", "none"}) {
      ZarrWriteOptions o;
      o.zarrFormat = format;
      o.compressor = codec;
      o.omitFillChunks = false;
      const fs::path a = tmp / ("z" + std::to_string(format) + codec);
      writeZarrArray(a.string(), {3, 6, 5}, {3, 6, 5}, ScalarType::UInt32, v32.data(), o);
      const std::string meta = slurp(a / (format == 3 ? "zarr.json" : ".zarray"));
      const std::string chunk = slurp(a / (format == 3 ? "c/0/0/0" : "0/0/0"));
      put(out / "fuzz_zarr" / ("v" + std::to_string(format) + "-" + codec),
          std::string(1, static_cast<char>(format == 3 ? 0 : 1)) + meta + std::string(1, '\0') + chunk);
      ++n;
    }
  {
    // A sharded array (shards of 3x6x5 holding inner chunks of 1x3x5).
    ZarrWriteOptions o;
    o.compressor = "zstd";
    o.omitFillChunks = false;
    o.shardInner = {1, 3, 5};
    const fs::path a = tmp / "sharded";
    writeZarrArray(a.string(), {3, 6, 5}, {3, 6, 5}, ScalarType::UInt32, v32.data(), o);
    put(out / "fuzz_zarr" / "v3-sharded-zstd",
        std::string(1, '\0') + slurp(a / "zarr.json") + std::string(1, '\0') + slurp(a / "c/0/0/0"));
    ++n;
  }
  writeOmeZarrGroup((tmp / "g").string(), 3, {{"0", {0.025, 0.025, 0.025}}, {"1", {0.05, 0.05, 0.05}}}, {"z", "y", "x"},
                    {"anterior-to-posterior", "superior-to-inferior", "right-to-left"});
  put(out / "fuzz_zarr" / "ome-group-v3", std::string(1, '\2') + slurp(tmp / "g" / "zarr.json"));
  fs::remove_all(tmp);
  std::printf("%d TIFF and Zarr seeds\n", n + 1);
  return 0;
}
