#include "core/TiffStack.h"

#include "core/Error.h"
#include "core/MemoryBudget.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <tiffio.h>
#include <vector>

namespace atlascope {
namespace {

// libtiff's messages for one open file, kept for the FileError instead of going to stderr.
struct TiffMessages {
  std::string last;
};

int onTiffError(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  auto* m = static_cast<TiffMessages*>(user);
  m->last = (module && *module ? std::string(module) + ": " : std::string()) + buf;
  return 1; // handled: nothing printed
}

int onTiffWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};

class TiffFile {
public:
  TiffFile(const std::string& path, const char* mode) : path_(path) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    // libtiff's own allocations (strip arrays, tag values) stay within what this process may use.
    TIFFOpenOptionsSetMaxSingleMemAlloc(
        opts, static_cast<tmsize_t>(std::min<std::uint64_t>(memoryAvailable(), static_cast<std::uint64_t>(INT64_MAX))));
    TIFFOpenOptionsSetErrorHandlerExtR(opts, onTiffError, &messages_);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, onTiffWarning, &messages_);
    tif_.reset(TIFFOpenExt(path.c_str(), mode, opts));
    TIFFOpenOptionsFree(opts);
    if (!tif_) {
      std::error_code ec;
      if (std::string(mode).find('r') != std::string::npos && !std::filesystem::exists(path, ec))
        throw FileError(path, "file not found");
      fail("not a readable TIFF file");
    }
  }
  TIFF* get() const { return tif_.get(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw FileError(path_, what + (messages_.last.empty() ? "" : " (libtiff: " + messages_.last + ")"));
  }
  void clearMessage() { messages_.last.clear(); }

private:
  std::string path_;
  TiffMessages messages_;
  std::unique_ptr<TIFF, TiffCloser> tif_;
};

std::string compressionName(std::uint16_t c) {
  switch (c) {
  case COMPRESSION_NONE: return "none";
  case COMPRESSION_LZW: return "lzw";
  case COMPRESSION_PACKBITS: return "packbits";
  case COMPRESSION_ADOBE_DEFLATE:
  case COMPRESSION_DEFLATE: return "deflate";
  case COMPRESSION_ZSTD: return "zstd";
  case COMPRESSION_LZMA: return "lzma";
  default: return std::to_string(c);
  }
}

struct PageInfo {
  std::uint32_t width = 0, height = 0;
  ScalarType type = ScalarType::UInt8;
  std::uint16_t compression = COMPRESSION_NONE;
};

PageInfo readPageInfo(TiffFile& f, const std::string& path, std::int64_t page) {
  TIFF* t = f.get();
  PageInfo p;
  std::uint16_t bits = 0, samples = 1, format = SAMPLEFORMAT_UINT;
  const std::string where = "page " + std::to_string(page);
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &p.width) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &p.height))
    f.fail(where + " has no image size");
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &p.compression);
  if (samples != 1)
    throw FileError(path, where + " has " + std::to_string(samples) +
                              " samples per pixel; an atlas stack has one (a label or an intensity)");
  if (TIFFIsTiled(t)) throw FileError(path, where + " is tiled; atlas stacks are stored in strips");
  if (p.width == 0 || p.height == 0) throw FileError(path, where + " is empty (0 pixels)");
  const bool isFloat = format == SAMPLEFORMAT_IEEEFP, isSigned = format == SAMPLEFORMAT_INT;
  if (format != SAMPLEFORMAT_UINT && !isFloat && !isSigned)
    throw FileError(path, where + ": sample format " + std::to_string(format) + " is not an integer or float");
  switch (bits) {
  case 8: p.type = isSigned ? ScalarType::Int8 : ScalarType::UInt8; break;
  case 16: p.type = isSigned ? ScalarType::Int16 : ScalarType::UInt16; break;
  case 32: p.type = isFloat ? ScalarType::Float32 : isSigned ? ScalarType::Int32 : ScalarType::UInt32; break;
  case 64: p.type = isFloat ? ScalarType::Float64 : isSigned ? ScalarType::Int64 : ScalarType::UInt64; break;
  default: throw FileError(path, where + " has " + std::to_string(bits) + " bits per sample (8, 16, 32 or 64 read)");
  }
  if (isFloat && bits < 32) throw FileError(path, where + ": " + std::to_string(bits) + "-bit floats are not read");
  return p;
}

std::uint64_t fileSize(const std::string& path) {
  std::error_code ec;
  const auto s = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(s);
}

// What one page can decode to at most, from the file's size: uncompressed pages cannot hold more
// than the file; a compressed one no more than the codec's largest expansion (LZW, the worst of
// the usual ones, stays below 4096:1).
std::uint64_t pageCanHold(const std::string& path, std::uint16_t compression) {
  const std::uint64_t size = fileSize(path);
  return compression == COMPRESSION_NONE ? size : saturatingMultiply(size, 4096);
}

TiffStackInfo inspect(TiffFile& f, const std::string& path) {
  TiffStackInfo info;
  TIFF* t = f.get();
  info.bigTiff = TIFFIsBigTIFF(t) != 0;
  const PageInfo first = readPageInfo(f, path, 0);
  info.type = first.type;
  info.compression = compressionName(first.compression);
  char* desc = nullptr;
  if (TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc) info.description = oneLine(desc, 1000);
  std::int64_t pages = 1;
  while (!TIFFLastDirectory(t)) {
    f.clearMessage();
    if (!TIFFReadDirectory(t)) f.fail("page " + std::to_string(pages) + " cannot be read");
    const PageInfo p = readPageInfo(f, path, pages);
    if (p.width != first.width || p.height != first.height || p.type != first.type)
      throw FileError(path, "page " + std::to_string(pages) + " is " + std::to_string(p.height) + " x " +
                                std::to_string(p.width) + " " + scalarName(p.type) + ", page 0 " +
                                std::to_string(first.height) + " x " + std::to_string(first.width) + " " +
                                scalarName(first.type) + ": not one stack");
    ++pages;
  }
  info.shape = {pages, first.height, first.width};
  return info;
}

void readPages(TiffFile& f, const std::string& path, const TiffStackInfo& info, const StackBlockSink& sink,
               const Progress& progress) {
  TIFF* t = f.get();
  const std::size_t item = scalarSize(info.type);
  const auto rows = static_cast<std::uint64_t>(info.shape[1]), cols = static_cast<std::uint64_t>(info.shape[2]);
  const std::uint64_t rowBytes = saturatingMultiply(cols, item);
  const std::uint64_t pageBytes = saturatingMultiply(rowBytes, rows);
  std::vector<std::uint8_t> page;
  const std::string name = std::filesystem::path(path).filename().string();
  if (!TIFFSetDirectory(t, 0)) f.fail("cannot return to the first page");
  for (std::int64_t p = 0; p < info.shape[0]; ++p) {
    progress("reading " + name, p, info.shape[0]);
    if (p > 0 && !TIFFReadDirectory(t)) f.fail("page " + std::to_string(p) + " cannot be read");
    std::uint16_t compression = COMPRESSION_NONE;
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
    if (page.empty()) {
      checkAllocation(
          path, "a page (" + std::to_string(rows) + " x " + std::to_string(cols) + " " + scalarName(info.type) + ")",
          pageBytes, pageCanHold(path, compression));
      page.resize(static_cast<std::size_t>(pageBytes));
    }
    std::uint32_t rowsPerStrip = 0;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rowsPerStrip);
    if (rowsPerStrip == 0 || rowsPerStrip > rows) rowsPerStrip = static_cast<std::uint32_t>(rows);
    const std::uint32_t strips = TIFFNumberOfStrips(t);
    const std::uint64_t needed = (rows + rowsPerStrip - 1) / rowsPerStrip;
    if (strips < needed)
      throw FileError(path, "page " + std::to_string(p) + " has " + std::to_string(strips) + " strips, its " +
                                std::to_string(rows) + " rows need " + std::to_string(needed));
    for (std::uint32_t s = 0; s < needed; ++s) {
      const std::uint64_t first = static_cast<std::uint64_t>(s) * rowsPerStrip;
      const std::uint64_t n = std::min<std::uint64_t>(rowsPerStrip, rows - first);
      const auto want = static_cast<tmsize_t>(n * rowBytes);
      f.clearMessage();
      const tmsize_t got = TIFFReadEncodedStrip(t, s, page.data() + first * rowBytes, want);
      if (got != want)
        f.fail("page " + std::to_string(p) + ", strip " + std::to_string(s) + ": " +
               (got < 0 ? std::string("cannot be read")
                        : "holds " + std::to_string(got) + " of its " + std::to_string(want) + " bytes") +
               " (a truncated or damaged file)");
    }
    StackBlock b;
    b.origin = {p, 0, 0};
    b.extent = {1, info.shape[1], info.shape[2]};
    b.type = info.type;
    b.data = page.data();
    sink(b);
  }
  progress("reading " + name, info.shape[0], info.shape[0]);
}

} // namespace

TiffStackInfo inspectTiffStack(const std::string& path) {
  TiffFile f(path, "r");
  return inspect(f, path);
}

std::uint64_t tiffVoxelsBound(const std::string& path, const TiffStackInfo& info) {
  return pageCanHold(path, info.compression == "none" ? COMPRESSION_NONE : COMPRESSION_LZW) / scalarSize(info.type);
}

TiffStackInfo readTiffStack(const std::string& path, const StackBlockSink& sink, const Progress& progress) {
  TiffFile f(path, "r");
  const TiffStackInfo info = inspect(f, path);
  readPages(f, path, info, sink, progress);
  return info;
}

Volume readTiffVolume(const std::string& path) {
  TiffFile f(path, "r");
  const TiffStackInfo info = inspect(f, path);
  Volume v;
  v.size = {info.shape[2], info.shape[1], info.shape[0]};
  v.type = info.type;
  const std::uint64_t bytes =
      saturatingMultiply(saturatingMultiply(static_cast<std::uint64_t>(info.shape[0]),
                                            static_cast<std::uint64_t>(info.shape[1] * info.shape[2])),
                         scalarSize(info.type));
  std::uint16_t compression = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(f.get(), TIFFTAG_COMPRESSION, &compression);
  checkAllocation(path, "the stack (" + std::to_string(info.shape[0]) + " pages)", bytes,
                  pageCanHold(path, compression));
  v.bytes.resize(static_cast<std::size_t>(bytes));
  const std::size_t pageBytes = static_cast<std::size_t>(info.shape[1] * info.shape[2]) * scalarSize(info.type);
  readPages(f, path, info,
            [&](const StackBlock& b) {
              std::memcpy(v.bytes.data() + static_cast<std::size_t>(b.origin[0]) * pageBytes, b.data, pageBytes);
            },
            {});
  return v;
}

void writeTiffStack(const std::string& path, const std::array<std::int64_t, 3>& shape, ScalarType type,
                    const void* data, bool bigTiff, std::uint32_t rowsPerStrip, const std::string& description) {
  TiffFile f(path, bigTiff ? "w8" : "w");
  TIFF* t = f.get();
  const std::size_t item = scalarSize(type);
  const bool isFloat = type == ScalarType::Float32 || type == ScalarType::Float64;
  const bool isSigned =
      type == ScalarType::Int8 || type == ScalarType::Int16 || type == ScalarType::Int32 || type == ScalarType::Int64;
  const auto rows = static_cast<std::uint32_t>(shape[1]), cols = static_cast<std::uint32_t>(shape[2]);
  if (rowsPerStrip == 0 || rowsPerStrip > rows) rowsPerStrip = rows;
  const std::size_t rowBytes = cols * item;
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  for (std::int64_t p = 0; p < shape[0]; ++p) {
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, cols);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, rows);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(item * 8));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<std::uint16_t>(1));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rowsPerStrip);
    if (isFloat || isSigned) TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, isFloat ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_INT);
    if (p == 0 && !description.empty()) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    const std::uint8_t* page = bytes + static_cast<std::size_t>(p) * rows * rowBytes;
    for (std::uint32_t s = 0, row = 0; row < rows; ++s, row += rowsPerStrip) {
      const std::uint32_t n = std::min(rowsPerStrip, rows - row);
      if (TIFFWriteEncodedStrip(t, s, const_cast<std::uint8_t*>(page + row * rowBytes),
                                static_cast<tmsize_t>(n * rowBytes)) < 0)
        f.fail("cannot write page " + std::to_string(p));
    }
    if (!TIFFWriteDirectory(t)) f.fail("cannot write page " + std::to_string(p));
  }
}

} // namespace atlascope
