#include "core/Endian.h"
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/MemoryBudget.h"
#include "core/VolumeIO.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

namespace atlascope {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<ScalarType> nrrdType(const std::string& raw) {
  // The type names of the NRRD 5 specification, all spellings.
  static const std::map<std::string, ScalarType> names = {{"signed char", ScalarType::Int8},
                                                          {"int8", ScalarType::Int8},
                                                          {"int8_t", ScalarType::Int8},
                                                          {"uchar", ScalarType::UInt8},
                                                          {"unsigned char", ScalarType::UInt8},
                                                          {"uint8", ScalarType::UInt8},
                                                          {"uint8_t", ScalarType::UInt8},
                                                          {"short", ScalarType::Int16},
                                                          {"short int", ScalarType::Int16},
                                                          {"signed short", ScalarType::Int16},
                                                          {"signed short int", ScalarType::Int16},
                                                          {"int16", ScalarType::Int16},
                                                          {"int16_t", ScalarType::Int16},
                                                          {"ushort", ScalarType::UInt16},
                                                          {"unsigned short", ScalarType::UInt16},
                                                          {"unsigned short int", ScalarType::UInt16},
                                                          {"uint16", ScalarType::UInt16},
                                                          {"uint16_t", ScalarType::UInt16},
                                                          {"int", ScalarType::Int32},
                                                          {"signed int", ScalarType::Int32},
                                                          {"int32", ScalarType::Int32},
                                                          {"int32_t", ScalarType::Int32},
                                                          {"uint", ScalarType::UInt32},
                                                          {"unsigned int", ScalarType::UInt32},
                                                          {"uint32", ScalarType::UInt32},
                                                          {"uint32_t", ScalarType::UInt32},
                                                          {"longlong", ScalarType::Int64},
                                                          {"long long", ScalarType::Int64},
                                                          {"long long int", ScalarType::Int64},
                                                          {"signed long long", ScalarType::Int64},
                                                          {"signed long long int", ScalarType::Int64},
                                                          {"int64", ScalarType::Int64},
                                                          {"int64_t", ScalarType::Int64},
                                                          {"ulonglong", ScalarType::UInt64},
                                                          {"unsigned long long", ScalarType::UInt64},
                                                          {"unsigned long long int", ScalarType::UInt64},
                                                          {"uint64", ScalarType::UInt64},
                                                          {"uint64_t", ScalarType::UInt64},
                                                          {"float", ScalarType::Float32},
                                                          {"double", ScalarType::Float64}};
  const auto it = names.find(lower(raw));
  if (it == names.end()) return std::nullopt;
  return it->second;
}

std::vector<double> parseNumbers(const std::string& text, const std::string& path, const std::string& field) {
  std::vector<double> out;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    if (lower(tok) == "nan") {
      out.push_back(std::nan(""));
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);
    if (end == tok.c_str() || *end != '\0')
      throw FileError(path, "field '" + field + "' holds " + quote(tok) + ", not a number");
    out.push_back(v);
  }
  return out;
}

// "(25,0,0) (0,25,0) (0,0,25)" or "none (1,0,0) ..." -> one vector per axis (empty for none).
std::vector<std::vector<double>> parseVectors(const std::string& text, const std::string& path,
                                              const std::string& field) {
  std::vector<std::vector<double>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
    if (pos >= text.size()) break;
    if (text.compare(pos, 4, "none") == 0) {
      out.emplace_back();
      pos += 4;
      continue;
    }
    if (text[pos] != '(') throw FileError(path, "field '" + field + "' is malformed: " + quote(text));
    const auto close = text.find(')', pos);
    if (close == std::string::npos) throw FileError(path, "field '" + field + "' is missing ')'");
    std::string inner = text.substr(pos + 1, close - pos - 1);
    std::replace(inner.begin(), inner.end(), ',', ' ');
    out.push_back(parseNumbers(inner, path, field));
    pos = close + 1;
  }
  return out;
}

// Whether a value read as text fits the voxel type (NaN only in float types).
bool inRange(ScalarType t, double v) {
  auto within = [v](double lo, double hi) { return v >= lo && v <= hi; };
  switch (t) {
  case ScalarType::Int8: return within(-128, 127);
  case ScalarType::UInt8: return within(0, 255);
  case ScalarType::Int16: return within(-32768, 32767);
  case ScalarType::UInt16: return within(0, 65535);
  case ScalarType::Int32: return within(-2147483648.0, 2147483647.0);
  case ScalarType::UInt32: return within(0, 4294967295.0);
  case ScalarType::Int64: return within(-9223372036854775808.0, 9223372036854774784.0);
  case ScalarType::UInt64: return within(0, 18446744073709549568.0);
  case ScalarType::Float32: return !std::isfinite(v) || within(-3.4028234663852886e38, 3.4028234663852886e38);
  case ScalarType::Float64: return true;
  }
  return false;
}

std::string describeSizes(const std::array<std::int64_t, 3>& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
}

} // namespace

Volume readNrrd(const std::string& path) {
  const std::vector<std::uint8_t> file = readFileBytes(path);
  const std::string magic = "NRRD000";
  if (file.size() < 8 || std::string(file.begin(), file.begin() + 7) != magic)
    throw FileError(path, "not a NRRD file (no NRRD000x magic line)");

  // Header: lines up to the first empty line (or the end of a detached header).
  std::map<std::string, std::string> fields;
  std::size_t pos = 0;
  bool firstLine = true, sawBlank = false;
  while (pos < file.size()) {
    const auto nl = std::find(file.begin() + pos, file.end(), '\n');
    std::string line(file.begin() + pos, nl);
    pos = (nl == file.end()) ? file.size() : static_cast<std::size_t>(nl - file.begin()) + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (firstLine) {
      firstLine = false;
      continue;
    }
    if (line.empty()) {
      sawBlank = true;
      break;
    }
    if (line[0] == '#') continue;
    if (line.find(":=") != std::string::npos) continue; // key/value pairs: not needed here
    const auto colon = line.find(": ");
    if (colon == std::string::npos) throw FileError(path, "malformed header line: " + quote(line));
    fields[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 2));
  }
  auto field = [&](const std::string& name) -> std::optional<std::string> {
    const auto it = fields.find(name);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };

  Volume vol;
  const auto typeText = field("type");
  if (!typeText) throw FileError(path, "header has no 'type' field");
  const auto type = nrrdType(*typeText);
  if (!type) throw FileError(path, "unsupported type " + quote(*typeText));
  vol.type = *type;

  const auto dimText = field("dimension");
  if (!dimText) throw FileError(path, "header has no 'dimension' field");
  if (trim(*dimText) != "3")
    throw FileError(path, "dimension " + quote(*dimText) + " is not supported (3D volumes only)");

  const auto sizesText = field("sizes");
  if (!sizesText) throw FileError(path, "header has no 'sizes' field");
  const auto sizes = parseNumbers(*sizesText, path, "sizes");
  if (sizes.size() != 3) throw FileError(path, "'sizes' must hold 3 numbers, holds " + std::to_string(sizes.size()));
  for (int a = 0; a < 3; ++a) {
    if (!(sizes[a] >= 1) || sizes[a] != std::floor(sizes[a]) || sizes[a] > 1e6)
      throw FileError(path, "'sizes' holds an invalid size: " + quote(*sizesText));
    vol.size[a] = static_cast<std::int64_t>(sizes[a]);
  }

  if (const auto sp = field("spacings")) {
    const auto v = parseNumbers(*sp, path, "spacings");
    if (v.size() != 3) throw FileError(path, "'spacings' must hold 3 numbers");
    for (int a = 0; a < 3; ++a) vol.spacing[a] = std::isnan(v[a]) ? 1.0 : v[a];
  } else if (const auto dirs = field("space directions")) {
    const auto v = parseVectors(*dirs, path, "space directions");
    if (v.size() != 3) throw FileError(path, "'space directions' must hold 3 vectors");
    for (int a = 0; a < 3; ++a) {
      double n2 = 0;
      for (double c : v[a]) n2 += c * c;
      vol.spacing[a] = v[a].empty() ? 1.0 : std::sqrt(n2);
    }
  }
  for (int a = 0; a < 3; ++a)
    if (!(vol.spacing[a] > 0) || !std::isfinite(vol.spacing[a]))
      throw FileError(path, "voxel spacing along axis " + std::to_string(a) + " is not positive");
  if (const auto org = field("space origin")) {
    const auto v = parseVectors(*org, path, "space origin");
    if (v.size() == 1 && v[0].size() == 3)
      for (int a = 0; a < 3; ++a) vol.origin[a] = v[0][a];
  }
  if (const auto units = field("space units")) {
    const std::string u = lower(*units);
    if (u.find("mm") != std::string::npos)
      vol.unit = "mm";
    else if (u.find("micron") != std::string::npos || u.find("um") != std::string::npos)
      vol.unit = "um";
  }

  const auto encText = field("encoding");
  if (!encText) throw FileError(path, "header has no 'encoding' field");
  const std::string enc = lower(*encText);
  enum class Enc { Raw, Gzip, Text } encoding;
  if (enc == "raw")
    encoding = Enc::Raw;
  else if (enc == "gzip" || enc == "gz")
    encoding = Enc::Gzip;
  else if (enc == "ascii" || enc == "text" || enc == "txt")
    encoding = Enc::Text;
  else if (enc == "bzip2" || enc == "bz2" || enc == "hex" || enc == "zrl")
    throw FileError(path, "encoding " + quote(*encText) + " is not supported (raw, gzip and ascii are)");
  else
    throw FileError(path, "unknown encoding " + quote(*encText));

  const std::size_t width = scalarSize(vol.type);
  bool bigEndian = false;
  if (const auto e = field("endian")) {
    const std::string el = lower(*e);
    if (el == "big")
      bigEndian = true;
    else if (el != "little")
      throw FileError(path, "unknown endian " + quote(*e));
  } else if (width > 1 && encoding != Enc::Text) {
    throw FileError(path, "header has no 'endian' field, needed for " + std::string(scalarName(vol.type)));
  }

  // Where the data lives: after the header, or in a detached file.
  std::vector<std::uint8_t> detached;
  const std::uint8_t* data = file.data() + pos;
  std::size_t dataSize = file.size() - pos;
  std::string dataPath = path;
  auto dataFile = field("data file");
  if (!dataFile) dataFile = field("datafile");
  if (dataFile) {
    if (dataFile->rfind("LIST", 0) == 0 || dataFile->find('%') != std::string::npos)
      throw FileError(path, "multi-file 'data file' lists are not supported");
    std::filesystem::path p(*dataFile);
    if (p.is_relative()) p = std::filesystem::path(path).parent_path() / p;
    dataPath = p.string();
    detached = readFileBytes(dataPath);
    data = detached.data();
    dataSize = detached.size();
  } else if (!sawBlank) {
    throw FileError(path, "header does not end with an empty line and names no 'data file'");
  }

  long long lineSkip = 0, byteSkip = 0;
  if (const auto ls = field("line skip")) lineSkip = std::atoll(ls->c_str());
  if (const auto bs = field("byte skip")) byteSkip = std::atoll(bs->c_str());
  for (long long l = 0; l < lineSkip; ++l) {
    const auto nl = std::find(data, data + dataSize, '\n');
    if (nl == data + dataSize) throw FileError(dataPath, "'line skip' goes past the end of the data");
    dataSize -= static_cast<std::size_t>(nl + 1 - data);
    data = nl + 1;
  }

  const std::size_t expected = static_cast<std::size_t>(vol.voxelCount()) * width; // < 2^63: sizes <= 1e6
  // Raw and ascii data are in memory already and checked against `expected` before the volume is
  // allocated; gzip data is not, so its claim is bounded first by what the compressed bytes can
  // inflate to and by the memory available (a 1 kB file claiming 1 GiB was inflated into 3.3 GB).
  if (encoding == Enc::Gzip)
    checkAllocation(dataPath, "'sizes' (" + describeSizes(vol.size) + " of " + scalarName(vol.type) + ")", expected,
                    saturatingMultiply(dataSize, kMaxDeflateRatio) + 1024);
  const std::string need = "sizes " + describeSizes(vol.size) + " of " + scalarName(vol.type) + " need " +
                           std::to_string(expected) + " bytes";
  switch (encoding) {
  case Enc::Raw: {
    if (byteSkip == -1) { // data is the last `expected` bytes
      if (dataSize < expected)
        throw FileError(dataPath,
                        "data length disagrees with the header: " + need + ", file holds " + std::to_string(dataSize));
      data += dataSize - expected;
      dataSize = expected;
    } else if (byteSkip > 0) {
      if (static_cast<std::size_t>(byteSkip) > dataSize)
        throw FileError(dataPath, "'byte skip' goes past the end of the data");
      data += byteSkip;
      dataSize -= static_cast<std::size_t>(byteSkip);
    }
    if (dataSize != expected)
      throw FileError(dataPath, "data length disagrees with the header: " + need + ", the data holds " +
                                    std::to_string(dataSize));
    vol.bytes.assign(data, data + expected);
    break;
  }
  case Enc::Gzip: {
    if (byteSkip > 0) {
      if (static_cast<std::size_t>(byteSkip) > dataSize)
        throw FileError(dataPath, "'byte skip' goes past the end of the data");
      data += byteSkip;
      dataSize -= static_cast<std::size_t>(byteSkip);
    }
    if (!looksGzipped(data, dataSize) && !(dataSize >= 2 && data[0] == 0x78))
      throw FileError(dataPath, "encoding is gzip but the data is not gzip-compressed");
    vol.bytes = inflateExactly(data, dataSize, expected, dataPath);
    break;
  }
  case Enc::Text: {
    const std::string text(data, data + dataSize);
    const auto values = parseNumbers(text, dataPath, "data");
    if (values.size() != static_cast<std::size_t>(vol.voxelCount()))
      throw FileError(dataPath, "data length disagrees with the header: sizes " + describeSizes(vol.size) + " need " +
                                    std::to_string(vol.voxelCount()) + " values, the data holds " +
                                    std::to_string(values.size()));
    vol.bytes.resize(expected);
    for (std::size_t n = 0; n < values.size(); ++n) {
      const double v = values[n];
      std::uint8_t* dst = vol.bytes.data() + n * width;
      auto put = [&](auto x) { std::memcpy(dst, &x, sizeof x); };
      // A value outside the type's range is an error, not a wrapped label (and a float-to-int
      // cast out of range is undefined behaviour).
      if (!inRange(vol.type, v))
        throw FileError(dataPath, "value " + quote(std::to_string(v), 40) + " at voxel " + std::to_string(n) +
                                      " does not fit " + scalarName(vol.type));
      switch (vol.type) {
      case ScalarType::Int8: put(static_cast<std::int8_t>(v)); break;
      case ScalarType::UInt8: put(static_cast<std::uint8_t>(v)); break;
      case ScalarType::Int16: put(static_cast<std::int16_t>(v)); break;
      case ScalarType::UInt16: put(static_cast<std::uint16_t>(v)); break;
      case ScalarType::Int32: put(static_cast<std::int32_t>(v)); break;
      case ScalarType::UInt32: put(static_cast<std::uint32_t>(v)); break;
      case ScalarType::Int64: put(static_cast<std::int64_t>(v)); break;
      case ScalarType::UInt64: put(static_cast<std::uint64_t>(v)); break;
      case ScalarType::Float32: put(static_cast<float>(v)); break;
      case ScalarType::Float64: put(v); break;
      }
    }
    return vol; // already in host order
  }
  }
  if (bigEndian == hostIsLittleEndian()) swapBytes(vol.bytes.data(), vol.bytes.size(), width);
  return vol;
}

} // namespace atlascope
