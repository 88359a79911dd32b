#include "core/Gzip.h"

#include "core/Error.h"
#include "core/MemoryBudget.h"

#include <fstream>
#include <limits>
#include <zlib.h>

namespace atlascope {
namespace {

// zlib takes uInt sizes; feed large buffers in slices.
constexpr std::size_t kSlice = std::numeric_limits<uInt>::max() / 2;

struct Inflater {
  z_stream zs{};
  explicit Inflater(const std::string& path) {
    // 15 + 32: accept both gzip and zlib headers (Teem writes gzip; some tools write zlib).
    if (inflateInit2(&zs, 15 + 32) != Z_OK) throw FileError(path, "cannot initialise zlib");
  }
  ~Inflater() { inflateEnd(&zs); }
};

// Every inflate() result but progress (Z_OK) and "no progress possible yet" (Z_BUF_ERROR) ends
// the stream with an error. Why all of them: a zlib header asking for a preset dictionary
// (Z_NEED_DICT) returned the same code forever, and the read loop never ended (found by fuzzing).
void checkInflate(int rc, const z_stream& zs, const std::string& path) {
  if (rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END) return;
  if (rc == Z_MEM_ERROR) throw FileError(path, "out of memory while decompressing");
  if (rc == Z_NEED_DICT) throw FileError(path, "corrupt gzip data (the stream asks for a preset dictionary)");
  throw FileError(path,
                  std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)) + ")");
}

} // namespace

bool looksGzipped(const std::uint8_t* data, std::size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

std::vector<std::uint8_t> inflateExactly(const std::uint8_t* data, std::size_t size, std::size_t expected,
                                         const std::string& path) {
  // The header's size is checked before it is allocated: deflate cannot expand more than
  // kMaxDeflateRatio:1 (a 1 kB file claiming 1 GiB is a bomb or a lie).
  checkAllocation(path, "the decompressed data", expected, saturatingMultiply(size, kMaxDeflateRatio) + 1024);
  std::vector<std::uint8_t> out(expected);
  Inflater inf(path);
  std::size_t inPos = 0, outPos = 0;
  int rc = Z_OK;
  while (true) {
    if (inf.zs.avail_in == 0 && inPos < size) {
      const std::size_t n = std::min(kSlice, size - inPos);
      inf.zs.next_in = const_cast<Bytef*>(data + inPos);
      inf.zs.avail_in = static_cast<uInt>(n);
      inPos += n;
    }
    const std::size_t room = std::min(kSlice, expected - outPos);
    std::uint8_t probe = 0;
    // Once `out` is full, inflate into a one-byte probe to detect data beyond the expected size.
    inf.zs.next_out = room ? out.data() + outPos : &probe;
    inf.zs.avail_out = room ? static_cast<uInt>(room) : 1u;
    rc = inflate(&inf.zs, Z_NO_FLUSH);
    const std::size_t produced = (room ? room : 1u) - inf.zs.avail_out;
    if (!room && produced > 0)
      throw FileError(path, "compressed data holds more than the " + std::to_string(expected) +
                                " bytes the header describes");
    outPos += produced;
    if (rc == Z_STREAM_END) break;
    checkInflate(rc, inf.zs, path);
    if (rc == Z_BUF_ERROR && inf.zs.avail_in == 0 && inPos >= size) break; // input exhausted
  }
  if (rc != Z_STREAM_END)
    throw FileError(path, "truncated gzip data: the stream ends after " + std::to_string(outPos) + " of " +
                              std::to_string(expected) + " bytes");
  if (outPos != expected)
    throw FileError(path, "data length disagrees with the header: " + std::to_string(outPos) + " bytes decompressed, " +
                              std::to_string(expected) + " expected");
  return out;
}

std::vector<std::uint8_t> inflateAll(const std::uint8_t* data, std::size_t size, const std::string& path) {
  std::vector<std::uint8_t> out;
  // No header states the size: the output is bounded as it grows, by deflate's largest ratio and
  // by the memory available (checked once per MiB step).
  const std::uint64_t fileCanHold = saturatingMultiply(size, kMaxDeflateRatio) + 1024;
  std::size_t inPos = 0;
  while (inPos < size) { // one iteration per gzip member
    Inflater inf(path);
    int rc = Z_OK;
    std::size_t memberStart = inPos;
    while (true) {
      if (inf.zs.avail_in == 0 && inPos < size) {
        const std::size_t n = std::min(kSlice, size - inPos);
        inf.zs.next_in = const_cast<Bytef*>(data + inPos);
        inf.zs.avail_in = static_cast<uInt>(n);
        inPos += n;
      }
      const std::size_t old = out.size();
      checkAllocation(path, "the decompressed data", old + (1u << 20), fileCanHold + (1u << 20));
      out.resize(old + (1u << 20));
      inf.zs.next_out = out.data() + old;
      inf.zs.avail_out = 1u << 20;
      rc = inflate(&inf.zs, Z_NO_FLUSH);
      out.resize(old + ((1u << 20) - inf.zs.avail_out));
      if (rc == Z_STREAM_END) break;
      checkInflate(rc, inf.zs, path);
      if (rc == Z_BUF_ERROR && inf.zs.avail_in == 0 && inPos >= size)
        throw FileError(path, "truncated gzip data after " + std::to_string(out.size()) + " bytes");
    }
    // Unconsumed input belongs to the next member (or is trailing garbage, which gzip ignores).
    inPos -= inf.zs.avail_in;
    if (inPos == memberStart) break;
    if (!looksGzipped(data + inPos, size - inPos)) break;
  }
  return out;
}

std::vector<std::uint8_t> readFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw FileError(path, "cannot open file");
  const auto end = in.tellg();
  if (end < 0) throw FileError(path, "cannot read file size");
  checkAllocation(path, "the file", static_cast<std::uint64_t>(end), static_cast<std::uint64_t>(end));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(end));
  in.seekg(0);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), end)) throw FileError(path, "cannot read file");
  return bytes;
}

} // namespace atlascope
