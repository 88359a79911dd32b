#pragma once
// Multi-page TIFF stacks (BrainGlobe v1 atlases: annotation.tiff, reference.tiff,
// hemispheres.tiff), through libtiff. One page per index of the stack's axis 0, each page axis-1
// rows by axis-2 columns, one sample per pixel; classic TIFF and BigTIFF, either byte order, strips
// read as the file states them (offsets, byte counts, rows per strip), any compression libtiff
// decodes. libtiff's own messages are captured into the FileError (never printed), and every
// buffer is sized after checking what the file can hold.
#include "core/AtlasAxes.h"
#include "core/Progress.h"
#include "core/Volume.h"

#include <array>
#include <cstdint>
#include <string>

namespace atlascope {

struct TiffStackInfo {
  std::array<std::int64_t, 3> shape{0, 0, 0}; // pages, rows, columns (the stack's axes 0, 1, 2)
  ScalarType type = ScalarType::UInt8;
  bool bigTiff = false;
  std::string compression; // "none", "lzw", "deflate", ... or the tag's number
  std::string description; // the first page's ImageDescription (tifffile: {"shape": [...]})
};

// Reads every page's tags (no pixel data): all pages must agree in size and type.
TiffStackInfo inspectTiffStack(const std::string& path);
// The most voxels the file can hold: its size over the sample size when uncompressed, times the
// largest expansion of a codec when compressed. Buffers sized by a stack's claimed shape are
// checked against it before they are made.
std::uint64_t tiffVoxelsBound(const std::string& path, const TiffStackInfo& info);

// Hands each page to `sink` as a block (origin {page, 0, 0}, extent {1, rows, columns}), in page
// order. Progress: ("reading <file name>", page, pages).
TiffStackInfo readTiffStack(const std::string& path, const StackBlockSink& sink, const Progress& progress = {});

// The whole stack as one Volume (size {columns, rows, pages}: columns fastest, as stored).
Volume readTiffVolume(const std::string& path);

// Writes a stack (tests and tools): `data` in C order (axis 2 fastest), uncompressed, little
// endian, `rowsPerStrip` rows per strip (0: one strip per page), BigTIFF when asked.
void writeTiffStack(const std::string& path, const std::array<std::int64_t, 3>& shape, ScalarType type,
                    const void* data, bool bigTiff = false, std::uint32_t rowsPerStrip = 0,
                    const std::string& description = {});

} // namespace atlascope
