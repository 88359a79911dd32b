#pragma once
// A small reader of Zarr arrays on a local disk (what BrainGlobe atlases 3.x store their
// annotation, template and hemispheres in, as OME-Zarr), on c-blosc, zstd and zlib.
//
// Read: Zarr v3 (zarr.json: regular chunk grid, "default" or "v2" chunk key encoding, codecs
// transpose, bytes, blosc, zstd, gzip, crc32c, and sharding_indexed over them) and Zarr v2
// (.zarray: compressor blosc, zstd, zlib, gzip or none; C or F order; no filters); integer and
// float data types. Not read: variable-length types, filters, storage transformers, nested
// sharding; each refused with a message saying so.
//
// A chunk absent from the disk holds the fill value (the Zarr specification: writers omit chunks
// that hold nothing else, and zarr-python does so by default). An array none of whose chunks are
// present is an error: BrainGlobe downloads chunks lazily, and such an array was never fetched.
// A chunk that is present but truncated or damaged is an error naming its file.
#include "core/AtlasAxes.h"
#include "core/Progress.h"
#include "core/Volume.h"

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace atlascope {

class ZarrArray {
public:
  // Reads `folder`/zarr.json (v3) or `folder`/.zarray (v2).
  static ZarrArray open(const std::string& folder);
  // From the metadata text alone (the fuzz target; `folder` names it in errors and holds chunks).
  static ZarrArray fromMetadata(const std::string& metadataText, int zarrFormat, const std::string& folder);

  const std::string& folder() const { return folder_; }
  int zarrFormat() const { return format_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  const std::vector<std::int64_t>& chunkShape() const { return chunks_; }
  ScalarType type() const { return type_; }
  // The fill value as a label (integers; 0 for a float array whose fill is not a whole number).
  std::uint64_t fillLabel() const { return fillLabel_; }
  double fillValue() const { return fillValue_; }
  // The fill value as one element of the array's type, host (little-endian) byte order. The
  // metadata's fill value is checked against the type when read (an integer array's fill is a
  // whole number it holds), so this encodes without undefined casts.
  std::vector<std::uint8_t> fillBytes() const;
  std::string describe() const; // "zarr v3, uint32, chunks 128x128x128, zstd"

  // One chunk's stored bytes -> the chunk's values, C order over the chunk shape, host byte order.
  // `chunkPath` names the chunk in errors.
  std::vector<std::uint8_t> decodeChunk(const std::uint8_t* data, std::size_t size, const std::string& chunkPath) const;

  struct ReadStats {
    std::int64_t chunksPresent = 0, chunksTotal = 0;
  };
  // A 3D array: every chunk present on disk, clipped to the array's shape, handed to `sink` in
  // the array's own axes. Voxels of absent chunks are not visited: the caller starts from the fill
  // value. Progress: ("reading <folder name>", chunks done, chunks present).
  ReadStats read3d(const StackBlockSink& sink, const Progress& progress = {}) const;
  // The chunk files present, with their grid indices (sorted).
  std::vector<std::pair<std::vector<std::int64_t>, std::string>> presentChunks() const;

  // A codec chain: array -> array (transpose), array -> bytes (endianness), bytes -> bytes.
  struct Codecs {
    std::vector<int> transpose; // encoded axis i = array axis transpose[i] (empty: none)
    bool bigEndian = false;
    std::vector<std::string> compress; // bytes->bytes codecs, in encoding order
  };

private:
  void parseV3(const nlohmann::json& meta);
  void parseV2(const nlohmann::json& meta);
  Codecs parseCodecs(const nlohmann::json& list, bool outer);
  std::vector<std::uint8_t> decodeWith(const Codecs& codecs, const std::vector<std::int64_t>& shape, std::size_t item,
                                       const std::uint8_t* data, std::size_t size, const std::string& path) const;
  std::vector<std::uint8_t> decodeShard(const std::uint8_t* data, std::size_t size, const std::string& path) const;

  std::string folder_, metaPath_;
  int format_ = 3;
  std::vector<std::int64_t> shape_, chunks_;
  ScalarType type_ = ScalarType::UInt8;
  Codecs codecs_;
  // sharding_indexed: the chunk grid's chunks are shards of inner chunks, each encoded with
  // inner_, and an index (offset, size per inner chunk) encoded with index_ at the shard's end
  // (or start).
  bool sharded_ = false;
  std::vector<std::int64_t> innerChunks_;
  Codecs inner_, index_;
  bool indexAtStart_ = false;
  std::string keyPrefix_; // "c" (v3 default encoding) or ""
  char separator_ = '/';
  std::uint64_t fillLabel_ = 0;
  double fillValue_ = 0;
};

// The OME-NGFF multiscales of an OME-Zarr group (0.4 in .zattrs, 0.5 in zarr.json's
// attributes.ome): each level's path and its spatial scale in micrometres, and the axes'
// anatomical orientation when the file states it (BrainGlobe does).
struct OmeMultiscales {
  struct Level {
    std::string path;
    std::vector<double> scaleUm; // per axis (spatial axes only are used)
  };
  std::vector<Level> levels;
  std::vector<std::string> axisNames;
  std::string orientation; // "asr" from the axes' anatomical orientation; empty when not stated
};
OmeMultiscales readOmeMultiscales(const std::string& groupFolder);

// Writers (tests and tools): an array of `data` (C order, host byte order) in `folder`.
struct ZarrWriteOptions {
  int zarrFormat = 3;
  std::string compressor = "zstd"; // zstd, blosc or none
  char separator = '/';
  bool omitFillChunks = true; // as zarr-python: chunks holding only the fill value are not written
  bool littleEndian = true;
  std::vector<std::int64_t> shardInner; // v3: write `chunks` as shards of inner chunks of this shape
};
void writeZarrArray(const std::string& folder, const std::vector<std::int64_t>& shape,
                    const std::vector<std::int64_t>& chunks, ScalarType type, const void* data,
                    const ZarrWriteOptions& options = {});
// An OME-Zarr group (0.5 in zarr.json for Zarr v3, 0.4 in .zattrs for v2) over levels whose
// arrays are written separately: per level its path and scale (in `unit`), and the axes with
// their anatomical orientation ("anterior-to-posterior", ...; empty: not stated).
void writeOmeZarrGroup(const std::string& groupFolder, int zarrFormat, const std::vector<OmeMultiscales::Level>& levels,
                       const std::vector<std::string>& axisNames, const std::vector<std::string>& orientations,
                       const std::string& unit = "millimeter");

} // namespace atlascope
