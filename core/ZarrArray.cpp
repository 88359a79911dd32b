#include "core/ZarrArray.h"

#include "core/Endian.h"
#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Gzip.h"
#include "core/JsonNumber.h"
#include "core/MemoryBudget.h"

#include <algorithm>
#include <array>
#include <blosc.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <zstd.h>

namespace atlascope {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The largest expansion a compressed chunk is allowed: zstd and blosc reach a few thousand to one
// on constant data; anything claiming more than this per byte stored is refused before allocating.
constexpr std::uint64_t kMaxChunkRatio = 1u << 16;
// Dimensions and chunk elements that no atlas approaches; past them a header is not believed.
constexpr int kMaxDimensions = 8;

std::string joinShape(const std::vector<std::int64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
  return s;
}

json parseJsonFile(const std::string& path) {
  const auto bytes = readFileBytes(path);
  try {
    return json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw FileError(path, std::string("invalid JSON: ") + e.what());
  }
}

std::vector<std::int64_t> readShape(const json& v, const std::string& path, const char* field) {
  if (!v.is_array() || v.empty() || v.size() > kMaxDimensions)
    throw FileError(path, std::string("'") + field + "' must be a list of 1 to 8 sizes");
  std::vector<std::int64_t> out;
  for (const auto& x : v) {
    if (!x.is_number_integer() || x.get<std::int64_t>() < 0 || x.get<std::int64_t>() > (1ll << 40))
      throw FileError(path, std::string("'") + field + "' holds " + quote(x.dump(), 30) + ", not a size");
    out.push_back(x.get<std::int64_t>());
  }
  return out;
}

std::optional<ScalarType> typeFromV3(const std::string& s) {
  static const std::pair<const char*, ScalarType> names[] = {
      {"int8", ScalarType::Int8},      {"uint8", ScalarType::UInt8},   {"int16", ScalarType::Int16},
      {"uint16", ScalarType::UInt16},  {"int32", ScalarType::Int32},   {"uint32", ScalarType::UInt32},
      {"int64", ScalarType::Int64},    {"uint64", ScalarType::UInt64}, {"float32", ScalarType::Float32},
      {"float64", ScalarType::Float64}};
  for (const auto& [n, t] : names)
    if (s == n) return t;
  return std::nullopt;
}

// [lowest, past the highest] of an integer type, as doubles (exact: powers of two).
std::pair<double, double> integerRange(ScalarType t) {
  const double bits = 8.0 * static_cast<double>(scalarSize(t));
  const bool isSigned =
      t == ScalarType::Int8 || t == ScalarType::Int16 || t == ScalarType::Int32 || t == ScalarType::Int64;
  return isSigned ? std::pair{-std::ldexp(1.0, static_cast<int>(bits) - 1), std::ldexp(1.0, static_cast<int>(bits) - 1)}
                  : std::pair{0.0, std::ldexp(1.0, static_cast<int>(bits))};
}

double fillFromJson(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "NaN") return std::nan("");
    if (s == "Infinity") return INFINITY;
    if (s == "-Infinity") return -INFINITY;
  }
  return 0; // null (v2: none) and anything else: 0
}

std::uint32_t crc32c(const std::uint8_t* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool parseIndex(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

} // namespace

ZarrArray ZarrArray::open(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw FileError(folder, "Zarr array folder not found");
  const std::string v3 = (fs::path(folder) / "zarr.json").string();
  const std::string v2 = (fs::path(folder) / ".zarray").string();
  if (fs::exists(v3, ec)) {
    const auto bytes = readFileBytes(v3);
    return fromMetadata(std::string(bytes.begin(), bytes.end()), 3, folder);
  }
  if (fs::exists(v2, ec)) {
    const auto bytes = readFileBytes(v2);
    return fromMetadata(std::string(bytes.begin(), bytes.end()), 2, folder);
  }
  throw FileError(folder, "not a Zarr array: no zarr.json (Zarr v3) or .zarray (Zarr v2) in it");
}

ZarrArray ZarrArray::fromMetadata(const std::string& text, int zarrFormat, const std::string& folder) {
  ZarrArray a;
  a.folder_ = folder;
  a.format_ = zarrFormat;
  a.metaPath_ = (fs::path(folder) / (zarrFormat == 3 ? "zarr.json" : ".zarray")).string();
  json meta;
  try {
    meta = json::parse(text);
  } catch (const json::exception& e) {
    throw FileError(a.metaPath_, std::string("invalid JSON: ") + e.what());
  }
  if (!meta.is_object()) throw FileError(a.metaPath_, "the metadata is not a JSON object");
  try {
    if (zarrFormat == 3)
      a.parseV3(meta);
    else
      a.parseV2(meta);
  } catch (const json::exception& e) {
    throw FileError(a.metaPath_, std::string("unexpected metadata content: ") + e.what());
  }
  if (a.chunks_.size() != a.shape_.size())
    throw FileError(a.metaPath_, "the chunk shape has " + std::to_string(a.chunks_.size()) + " axes, the array " +
                                     std::to_string(a.shape_.size()));
  std::uint64_t chunkElements = 1;
  for (auto c : a.chunks_) {
    if (c <= 0) throw FileError(a.metaPath_, "a chunk size of " + std::to_string(c));
    chunkElements = saturatingMultiply(chunkElements, static_cast<std::uint64_t>(c));
  }
  if (saturatingMultiply(chunkElements, scalarSize(a.type_)) > (1ull << 34))
    throw FileError(a.metaPath_, "chunks of " + joinShape(a.chunks_) + " are beyond any atlas (over 16 GB each)");
  for (const Codecs* c : {&a.codecs_, &a.inner_}) {
    if (c->transpose.empty()) continue;
    std::vector<int> seen(a.shape_.size(), 0);
    if (c->transpose.size() != a.shape_.size())
      throw FileError(a.metaPath_, "the transpose order has the wrong length");
    for (int o : c->transpose) {
      if (o < 0 || o >= static_cast<int>(a.shape_.size()) || seen[static_cast<std::size_t>(o)]++)
        throw FileError(a.metaPath_, "the transpose order is not a permutation of the axes");
    }
  }
  if (a.sharded_) {
    if (a.innerChunks_.size() != a.shape_.size())
      throw FileError(a.metaPath_, "the shards' inner chunks have the wrong number of axes");
    std::uint64_t inner = 1;
    for (std::size_t i = 0; i < a.shape_.size(); ++i) {
      if (a.innerChunks_[i] <= 0 || a.chunks_[i] % a.innerChunks_[i] != 0)
        throw FileError(a.metaPath_, "inner chunks of " + joinShape(a.innerChunks_) + " do not divide shards of " +
                                         joinShape(a.chunks_));
      inner = saturatingMultiply(inner, static_cast<std::uint64_t>(a.chunks_[i] / a.innerChunks_[i]));
    }
    if (inner > (1u << 24)) throw FileError(a.metaPath_, "more than 16 M inner chunks per shard");
  }
  // The fill value must be one the type holds: an integer array's NaN or 1e300 would reach an
  // integer cast (undefined), a float32 array's 1e300 a float one.
  const double f = a.fillValue_;
  const bool isInt = isInteger(a.type_);
  bool fits = true;
  if (isInt) {
    const auto [lo, hi] = integerRange(a.type_); // hi exclusive: 2^63 and 2^64 are exact doubles
    fits = std::isfinite(f) && f == std::floor(f) && f >= lo && f < hi;
  } else if (a.type_ == ScalarType::Float32) {
    fits = !std::isfinite(f) || std::abs(f) <= static_cast<double>(std::numeric_limits<float>::max());
  }
  if (!fits) {
    std::ostringstream text;
    text << "fill_value " << f << " is not a " << scalarName(a.type_) << " value";
    throw FileError(a.metaPath_, text.str());
  }
  if (std::isfinite(f) && f >= 0 && f == std::floor(f) && f < 18446744073709551616.0)
    a.fillLabel_ = static_cast<std::uint64_t>(f); // labels are unsigned: a negative fill labels nothing (0)
  return a;
}

std::vector<std::uint8_t> ZarrArray::fillBytes() const {
  std::vector<std::uint8_t> one(scalarSize(type_), 0);
  if (type_ == ScalarType::Float32) {
    const auto v = static_cast<float>(fillValue_);
    std::memcpy(one.data(), &v, 4);
  } else if (type_ == ScalarType::Float64) {
    std::memcpy(one.data(), &fillValue_, 8);
  } else if (fillValue_ < 0) {
    const auto v = static_cast<std::int64_t>(fillValue_); // two's complement: the low bytes are the value
    std::memcpy(one.data(), &v, one.size());
  } else {
    const auto v = static_cast<std::uint64_t>(fillValue_);
    std::memcpy(one.data(), &v, one.size());
  }
  return one;
}

void ZarrArray::parseV3(const json& meta) {
  if (jsonInteger(meta.value("zarr_format", json()), 0, 99) != 3) throw FileError(metaPath_, "zarr_format is not 3");
  if (meta.value("node_type", std::string()) != "array")
    throw FileError(metaPath_, "not an array (node_type " + quote(meta.value("node_type", std::string()), 20) + ")");
  shape_ = readShape(meta.at("shape"), metaPath_, "shape");
  if (meta.contains("storage_transformers") && meta["storage_transformers"].is_array() &&
      !meta["storage_transformers"].empty())
    throw FileError(metaPath_, "storage transformers are not read");
  const std::string dt = meta.at("data_type").is_string() ? meta.at("data_type").get<std::string>() : "";
  const auto t = typeFromV3(dt);
  if (!t) throw FileError(metaPath_, "data type " + quote(meta.at("data_type").dump(), 30) + " is not read");
  type_ = *t;
  const json& grid = meta.at("chunk_grid");
  if (grid.value("name", std::string()) != "regular") throw FileError(metaPath_, "only regular chunk grids are read");
  chunks_ = readShape(grid.at("configuration").at("chunk_shape"), metaPath_, "chunk_shape");
  const json& key = meta.at("chunk_key_encoding");
  const std::string keyName = key.value("name", std::string());
  std::string sep = keyName == "v2" ? "." : "/";
  if (key.contains("configuration") && key["configuration"].contains("separator"))
    sep = key["configuration"]["separator"].get<std::string>();
  if (sep != "/" && sep != ".") throw FileError(metaPath_, "chunk key separator " + quote(sep, 10) + " is not read");
  if (keyName == "default")
    keyPrefix_ = "c";
  else if (keyName != "v2")
    throw FileError(metaPath_, "chunk key encoding " + quote(keyName, 30) + " is not read");
  separator_ = sep[0];
  fillValue_ = fillFromJson(meta.at("fill_value"));
  codecs_ = parseCodecs(meta.at("codecs"), true);
}

ZarrArray::Codecs ZarrArray::parseCodecs(const json& list, bool outer) {
  if (!list.is_array()) throw FileError(metaPath_, "'codecs' is not a list");
  Codecs out;
  bool sawBytes = false;
  for (const json& c : list) {
    const std::string name = c.is_string() ? c.get<std::string>() : c.at("name").get<std::string>();
    const json conf = c.is_object() && c.contains("configuration") ? c["configuration"] : json::object();
    if (name == "transpose") {
      if (sawBytes) throw FileError(metaPath_, "transpose after the bytes codec");
      out.transpose.clear();
      if (conf.at("order").is_string()) {
        // Early drafts: "C" or "F".
        for (std::size_t i = 0; i < shape_.size(); ++i)
          out.transpose.push_back(conf["order"] == "F" ? static_cast<int>(shape_.size() - 1 - i) : static_cast<int>(i));
      } else {
        for (const auto& o : conf.at("order")) {
          const auto axis = jsonInteger(o, 0, static_cast<long long>(shape_.size()) - 1);
          if (!axis) throw FileError(metaPath_, "transpose order entry " + quote(o.dump(), 20) + " is not an axis");
          out.transpose.push_back(static_cast<int>(*axis));
        }
      }
    } else if (name == "bytes" || name == "endian") {
      if (sawBytes) throw FileError(metaPath_, "two array-to-bytes codecs");
      sawBytes = true;
      out.bigEndian = conf.value("endian", std::string("little")) == "big";
    } else if (name == "blosc" || name == "zstd" || name == "gzip" || name == "crc32c") {
      if (!sawBytes) throw FileError(metaPath_, "codec " + name + " comes before the bytes codec");
      out.compress.push_back(name);
    } else if (name == "sharding_indexed") {
      if (!outer) throw FileError(metaPath_, "nested sharding is not read");
      if (sawBytes || !out.transpose.empty()) throw FileError(metaPath_, "sharding_indexed must be the only codec");
      sawBytes = true;
      sharded_ = true;
      innerChunks_ = readShape(conf.at("chunk_shape"), metaPath_, "sharding chunk_shape");
      inner_ = parseCodecs(conf.at("codecs"), false);
      index_ = parseCodecs(conf.value("index_codecs", json::array({{{"name", "bytes"}}, {{"name", "crc32c"}}})), false);
      if (!index_.transpose.empty() ||
          std::any_of(index_.compress.begin(), index_.compress.end(), [](const auto& n) { return n != "crc32c"; }))
        throw FileError(metaPath_, "a compressed or transposed shard index is not read");
      const std::string where = conf.value("index_location", std::string("end"));
      if (where != "end" && where != "start") throw FileError(metaPath_, "index_location " + quote(where, 20));
      indexAtStart_ = where == "start";
    } else {
      throw FileError(metaPath_, "codec " + quote(name, 40) +
                                     " is not read (transpose, bytes, blosc, zstd, gzip, crc32c, sharding_indexed "
                                     "are)");
    }
  }
  if (!sawBytes) throw FileError(metaPath_, "no bytes codec: the chunks' byte layout is not stated");
  return out;
}

void ZarrArray::parseV2(const json& meta) {
  if (jsonInteger(meta.value("zarr_format", json()), 0, 99) != 2) throw FileError(metaPath_, "zarr_format is not 2");
  shape_ = readShape(meta.at("shape"), metaPath_, "shape");
  chunks_ = readShape(meta.at("chunks"), metaPath_, "chunks");
  const std::string dt = meta.at("dtype").is_string() ? meta.at("dtype").get<std::string>() : "";
  // "<u4", ">i2", "|u1", "<f8".
  if (dt.size() < 3) throw FileError(metaPath_, "dtype " + quote(meta.at("dtype").dump(), 30) + " is not read");
  codecs_.bigEndian = dt[0] == '>';
  const std::string kind = dt.substr(1, 1), size = dt.substr(2);
  const std::string v3 = kind == "u" ? "uint" : kind == "i" ? "int" : kind == "f" ? "float" : "?";
  std::string bits;
  if (size == "1") bits = "8";
  if (size == "2") bits = "16";
  if (size == "4") bits = "32";
  if (size == "8") bits = "64";
  const auto t = typeFromV3(v3 + bits);
  if (!t || (dt[0] != '<' && dt[0] != '>' && dt[0] != '|'))
    throw FileError(metaPath_, "dtype " + quote(dt, 30) + " is not read");
  type_ = *t;
  fillValue_ = meta.contains("fill_value") ? fillFromJson(meta["fill_value"]) : 0;
  const std::string order = meta.value("order", std::string("C"));
  if (order == "F")
    for (std::size_t i = 0; i < shape_.size(); ++i)
      codecs_.transpose.push_back(static_cast<int>(shape_.size() - 1 - i));
  else if (order != "C")
    throw FileError(metaPath_, "order " + quote(order, 10) + " is neither C nor F");
  if (meta.contains("filters") && !meta["filters"].is_null() && !meta["filters"].empty())
    throw FileError(metaPath_, "Zarr v2 filters are not read");
  const std::string sep = meta.value("dimension_separator", std::string("."));
  if (sep != "/" && sep != ".") throw FileError(metaPath_, "dimension separator " + quote(sep, 10) + " is not read");
  separator_ = sep[0];
  if (meta.contains("compressor") && !meta["compressor"].is_null()) {
    const std::string id = meta["compressor"].at("id").get<std::string>();
    if (id == "blosc" || id == "zstd" || id == "gzip")
      codecs_.compress.push_back(id);
    else if (id == "zlib")
      codecs_.compress.push_back("gzip"); // inflateExactly reads zlib and gzip streams alike
    else
      throw FileError(metaPath_, "compressor " + quote(id, 30) + " is not read (blosc, zstd, zlib, gzip are)");
  }
}

std::string ZarrArray::describe() const {
  std::string s = "zarr v" + std::to_string(format_) + ", " + scalarName(type_) + ", shape " + joinShape(shape_) +
                  ", chunks " + joinShape(chunks_);
  for (const auto& c : codecs_.compress) s += ", " + c;
  if (sharded_) {
    s += ", shards of " + joinShape(innerChunks_);
    for (const auto& c : inner_.compress) s += ", " + c;
  }
  return s;
}

std::vector<std::uint8_t> ZarrArray::decodeChunk(const std::uint8_t* data, std::size_t size,
                                                 const std::string& chunkPath) const {
  if (sharded_) return decodeShard(data, size, chunkPath);
  return decodeWith(codecs_, chunks_, scalarSize(type_), data, size, chunkPath);
}

std::vector<std::uint8_t> ZarrArray::decodeShard(const std::uint8_t* data, std::size_t size,
                                                 const std::string& path) const {
  const std::size_t n = chunks_.size(), item = scalarSize(type_);
  std::vector<std::int64_t> grid(n);
  std::uint64_t count = 1, elements = 1;
  for (std::size_t i = 0; i < n; ++i) {
    grid[i] = chunks_[i] / innerChunks_[i];
    count *= static_cast<std::uint64_t>(grid[i]);
    elements = saturatingMultiply(elements, static_cast<std::uint64_t>(chunks_[i]));
  }
  const std::size_t indexBytes =
      static_cast<std::size_t>(count) * 16 +
      4 * static_cast<std::size_t>(std::count(index_.compress.begin(), index_.compress.end(), "crc32c"));
  if (size < indexBytes)
    throw FileError(path, "a shard of " + std::to_string(size) + " bytes cannot hold its index of " +
                              std::to_string(indexBytes) + " (truncated)");
  const std::uint8_t* indexData = indexAtStart_ ? data : data + size - indexBytes;
  const auto index = decodeWith(index_, {static_cast<std::int64_t>(count), 2}, 8, indexData, indexBytes, path);
  // The shard starts filled: inner chunks that are not stored hold the fill value.
  checkAllocation(path, "a shard of " + joinShape(chunks_) + " " + scalarName(type_),
                  saturatingMultiply(elements, item), UINT64_MAX);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(elements) * item, 0);
  if (fillValue_ != 0) {
    const std::vector<std::uint8_t> one = fillBytes();
    for (std::size_t i = 0; i < out.size(); i += item) std::memcpy(out.data() + i, one.data(), item);
  }
  std::vector<std::int64_t> ci(n, 0), stride(n);
  std::int64_t s = 1;
  for (std::size_t i = n; i-- > 0;) {
    stride[i] = s;
    s *= chunks_[i];
  }
  for (std::uint64_t c = 0; c < count; ++c) {
    std::uint64_t offset, nbytes;
    std::memcpy(&offset, index.data() + c * 16, 8);
    std::memcpy(&nbytes, index.data() + c * 16 + 8, 8);
    if (!(offset == UINT64_MAX && nbytes == UINT64_MAX)) {
      if (offset > size || nbytes > size - offset)
        throw FileError(path, "inner chunk " + std::to_string(c) + " lies past the shard's end (truncated or damaged)");
      const auto values = decodeWith(inner_, innerChunks_, item, data + offset, static_cast<std::size_t>(nbytes),
                                     path + " (inner chunk " + std::to_string(c) + ")");
      // Copy rows of the inner chunk (its last axis contiguous) into the shard.
      const std::int64_t row = innerChunks_[n - 1];
      std::vector<std::int64_t> e(n, 0);
      for (std::size_t at = 0; at < values.size(); at += static_cast<std::size_t>(row) * item) {
        std::int64_t dst = 0;
        for (std::size_t i = 0; i < n; ++i) dst += (ci[i] * innerChunks_[i] + e[i]) * stride[i];
        std::memcpy(out.data() + static_cast<std::size_t>(dst) * item, values.data() + at,
                    static_cast<std::size_t>(row) * item);
        for (std::size_t i = n - 1; i-- > 0;) {
          if (++e[i] < innerChunks_[i]) break;
          e[i] = 0;
        }
      }
    }
    for (std::size_t i = n; i-- > 0;) {
      if (++ci[i] < grid[i]) break;
      ci[i] = 0;
    }
  }
  return out;
}

std::vector<std::uint8_t> ZarrArray::decodeWith(const Codecs& codecs, const std::vector<std::int64_t>& shape,
                                                std::size_t item, const std::uint8_t* data, std::size_t size,
                                                const std::string& chunkPath) const {
  std::uint64_t elements = 1;
  for (auto c : shape) elements = saturatingMultiply(elements, static_cast<std::uint64_t>(c));
  const std::uint64_t expected = saturatingMultiply(elements, item);
  std::uint64_t canHold = size;
  for (const auto& c : codecs.compress)
    if (c != "crc32c") canHold = saturatingMultiply(canHold, c == "gzip" ? kMaxDeflateRatio : kMaxChunkRatio);
  checkAllocation(chunkPath, "a chunk of " + joinShape(shape) + " (" + std::to_string(item) + "-byte values)", expected,
                  canHold);

  std::vector<std::uint8_t> buf(data, data + size);
  for (auto it = codecs.compress.rbegin(); it != codecs.compress.rend(); ++it) {
    const std::string& c = *it;
    const bool last = std::next(it) == codecs.compress.rend();
    if (c == "crc32c") {
      if (buf.size() < 4) throw FileError(chunkPath, "shorter than its crc32c checksum");
      std::uint32_t stored;
      std::memcpy(&stored, buf.data() + buf.size() - 4, 4);
      if (!hostIsLittleEndian()) swapBytes(reinterpret_cast<std::uint8_t*>(&stored), 4, 4);
      buf.resize(buf.size() - 4);
      if (crc32c(buf.data(), buf.size()) != stored) throw FileError(chunkPath, "crc32c checksum mismatch (damaged)");
    } else if (c == "gzip") {
      // An inner codec's output size is not known; only the last (outermost decoded) one is exact.
      buf = last ? inflateExactly(buf.data(), buf.size(), static_cast<std::size_t>(expected), chunkPath)
                 : inflateAll(buf.data(), buf.size(), chunkPath);
    } else if (c == "zstd") {
      std::vector<std::uint8_t> out(static_cast<std::size_t>(expected));
      const std::size_t r = ZSTD_decompress(out.data(), out.size(), buf.data(), buf.size());
      if (ZSTD_isError(r))
        throw FileError(chunkPath, std::string("zstd: ") + ZSTD_getErrorName(r) + " (a truncated or damaged chunk)");
      if (last && r != expected)
        throw FileError(chunkPath, "zstd data decodes to " + std::to_string(r) + " bytes, the chunk holds " +
                                       std::to_string(expected));
      out.resize(r);
      buf.swap(out);
    } else if (c == "blosc") {
      std::size_t nbytes = 0;
      if (buf.size() < 16 || blosc_cbuffer_validate(buf.data(), buf.size(), &nbytes) < 0)
        throw FileError(chunkPath, "not a valid blosc buffer (a truncated or damaged chunk)");
      if (nbytes != expected && last)
        throw FileError(chunkPath, "blosc data decodes to " + std::to_string(nbytes) + " bytes, the chunk holds " +
                                       std::to_string(expected));
      if (nbytes > expected) throw FileError(chunkPath, "blosc data larger than the chunk");
      std::vector<std::uint8_t> out(nbytes);
      const int r = blosc_decompress_ctx(buf.data(), out.data(), out.size(), 1);
      if (r < 0 || static_cast<std::size_t>(r) != nbytes)
        throw FileError(chunkPath, "blosc cannot decode it (a truncated or damaged chunk)");
      buf.swap(out);
    }
  }
  if (buf.size() != expected)
    throw FileError(chunkPath, "holds " + std::to_string(buf.size()) + " bytes, a chunk of " + joinShape(shape) + " " +
                                   std::to_string(expected));
  if (codecs.bigEndian == hostIsLittleEndian()) swapBytes(buf.data(), buf.size(), item);
  const std::vector<int>& transpose = codecs.transpose;
  if (transpose.empty()) return buf;
  bool identity = true;
  for (std::size_t i = 0; i < transpose.size(); ++i) identity = identity && transpose[i] == static_cast<int>(i);
  if (identity) return buf;
  // Encoded axis i is array axis transpose[i]: walk the encoded (C order) buffer and place each
  // element at its array position.
  const std::size_t n = shape.size();
  std::vector<std::int64_t> encShape(n), arrStride(n);
  for (std::size_t i = 0; i < n; ++i) encShape[i] = shape[static_cast<std::size_t>(transpose[i])];
  std::int64_t s = 1;
  for (std::size_t i = n; i-- > 0;) {
    arrStride[i] = s;
    s *= shape[i];
  }
  std::vector<std::uint8_t> out(buf.size());
  std::vector<std::int64_t> idx(n, 0);
  for (std::uint64_t e = 0; e < elements; ++e) {
    std::int64_t at = 0;
    for (std::size_t i = 0; i < n; ++i) at += idx[i] * arrStride[static_cast<std::size_t>(transpose[i])];
    std::memcpy(out.data() + static_cast<std::size_t>(at) * item, buf.data() + e * item, item);
    for (std::size_t i = n; i-- > 0;) {
      if (++idx[i] < encShape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

std::vector<std::pair<std::vector<std::int64_t>, std::string>> ZarrArray::presentChunks() const {
  const std::size_t n = shape_.size();
  std::vector<std::int64_t> grid(n);
  for (std::size_t i = 0; i < n; ++i) grid[i] = (shape_[i] + chunks_[i] - 1) / chunks_[i];
  std::vector<std::pair<std::vector<std::int64_t>, std::string>> out;
  const auto outside = [&](const std::string& path) {
    return FileError(path, "a chunk outside the array's chunk grid (" + joinShape(grid) + " chunks)");
  };
  std::error_code ec;
  if (separator_ == '/') {
    // Nested folders: [c/]i/j/k.
    const fs::path base = keyPrefix_.empty() ? fs::path(folder_) : fs::path(folder_) / keyPrefix_;
    if (!fs::is_directory(base, ec)) return out;
    std::vector<std::pair<std::vector<std::int64_t>, fs::path>> level{{{}, base}};
    for (std::size_t d = 0; d < n; ++d) {
      std::vector<std::pair<std::vector<std::int64_t>, fs::path>> next;
      for (const auto& [prefix, dir] : level)
        for (const std::string& name : listFolder(dir.string())) {
          std::int64_t i = 0;
          if (!parseIndex(name, i)) continue;
          const fs::path p = dir / name;
          if (i >= grid[d]) throw outside(p.string());
          const bool leaf = d + 1 == n;
          if (leaf == fs::is_directory(p, ec)) continue;
          auto idx = prefix;
          idx.push_back(i);
          next.emplace_back(std::move(idx), p);
        }
      level.swap(next);
    }
    for (auto& [idx, p] : level) out.emplace_back(std::move(idx), p.string());
  } else {
    const std::string start = keyPrefix_.empty() ? "" : keyPrefix_ + ".";
    for (const std::string& name : listFolder(folder_)) {
      if (name.compare(0, start.size(), start) != 0) continue;
      std::vector<std::int64_t> idx;
      std::stringstream parts(name.substr(start.size()));
      std::string part;
      bool ok = true;
      while (ok && std::getline(parts, part, '.')) {
        std::int64_t i = 0;
        ok = parseIndex(part, i);
        idx.push_back(i);
      }
      if (!ok || idx.size() != n) continue;
      const std::string p = (fs::path(folder_) / name).string();
      for (std::size_t d = 0; d < n; ++d)
        if (idx[d] >= grid[d]) throw outside(p);
      out.emplace_back(std::move(idx), p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

ZarrArray::ReadStats ZarrArray::read3d(const StackBlockSink& sink, const Progress& progress) const {
  if (shape_.size() != 3)
    throw FileError(folder_, "a " + std::to_string(shape_.size()) + "-D array where a 3-D stack was expected");
  ReadStats stats;
  stats.chunksTotal = 1;
  for (std::size_t i = 0; i < 3; ++i)
    stats.chunksTotal = static_cast<std::int64_t>(
        saturatingMultiply(static_cast<std::uint64_t>(stats.chunksTotal),
                           static_cast<std::uint64_t>((shape_[i] + chunks_[i] - 1) / chunks_[i])));
  const auto chunks = presentChunks();
  stats.chunksPresent = static_cast<std::int64_t>(chunks.size());
  if (chunks.empty() && stats.chunksTotal > 0)
    throw FileError(folder_, "none of its " + std::to_string(stats.chunksTotal) +
                                 " chunks is on disk (BrainGlobe downloads them on first use: open the atlas once "
                                 "with brainglobe-atlasapi, or copy the folder whole)");
  const std::string name = fs::path(folder_).filename().string();
  const std::size_t item = scalarSize(type_);
  std::vector<std::uint8_t> clipped;
  std::int64_t done = 0;
  for (const auto& [idx, path] : chunks) {
    progress("reading " + name, done++, stats.chunksPresent);
    const auto bytes = readFileBytes(path);
    const auto values = decodeChunk(bytes.data(), bytes.size(), path);
    StackBlock b;
    b.type = type_;
    bool clip = false;
    for (std::size_t i = 0; i < 3; ++i) {
      b.origin[i] = idx[i] * chunks_[i];
      b.extent[i] = std::min(chunks_[i], shape_[i] - b.origin[i]);
      clip = clip || b.extent[i] != chunks_[i];
    }
    if (clip) {
      clipped.resize(static_cast<std::size_t>(b.extent[0] * b.extent[1] * b.extent[2]) * item);
      std::size_t at = 0;
      for (std::int64_t x = 0; x < b.extent[0]; ++x)
        for (std::int64_t y = 0; y < b.extent[1]; ++y, at += static_cast<std::size_t>(b.extent[2]) * item)
          std::memcpy(clipped.data() + at,
                      values.data() + static_cast<std::size_t>((x * chunks_[1] + y) * chunks_[2]) * item,
                      static_cast<std::size_t>(b.extent[2]) * item);
      b.data = clipped.data();
    } else {
      b.data = values.data();
    }
    sink(b);
  }
  progress("reading " + name, stats.chunksPresent, stats.chunksPresent);
  return stats;
}

OmeMultiscales readOmeMultiscales(const std::string& groupFolder) {
  std::error_code ec;
  const std::string v3 = (fs::path(groupFolder) / "zarr.json").string();
  const std::string v2 = (fs::path(groupFolder) / ".zattrs").string();
  std::string path;
  json ms;
  if (!fs::is_directory(groupFolder, ec)) throw FileError(groupFolder, "OME-Zarr folder not found");
  if (fs::exists(v3, ec)) {
    path = v3;
    const json meta = parseJsonFile(v3);
    const json* attrs = meta.is_object() && meta.contains("attributes") ? &meta["attributes"] : nullptr;
    if (attrs && attrs->is_object() && attrs->contains("ome") && (*attrs)["ome"].is_object())
      ms = (*attrs)["ome"].value("multiscales", json());
    else if (attrs && attrs->is_object())
      ms = attrs->value("multiscales", json());
  } else if (fs::exists(v2, ec)) {
    path = v2;
    const json attrs = parseJsonFile(v2);
    if (attrs.is_object()) ms = attrs.value("multiscales", json());
  } else {
    throw FileError(groupFolder, "not an OME-Zarr group: no zarr.json or .zattrs in it");
  }
  if (!ms.is_array() || ms.empty() || !ms[0].is_object())
    throw FileError(path, "no OME-NGFF 'multiscales' in the group's attributes");
  OmeMultiscales out;
  try {
    const json& m = ms[0];
    std::vector<double> unitToUm;
    std::string orientation;
    for (const json& ax : m.value("axes", json::array())) {
      const std::string name = ax.is_string() ? ax.get<std::string>() : ax.value("name", std::string());
      out.axisNames.push_back(name);
      double f = 1;
      const std::string unit = ax.is_object() ? ax.value("unit", std::string()) : std::string();
      if (unit == "millimeter") f = 1000;
      if (unit == "nanometer") f = 0.001;
      if (unit == "meter") f = 1e6;
      unitToUm.push_back(f);
      if (ax.is_object() && ax.contains("orientation") && ax["orientation"].is_object()) {
        const char c = orientationLetterFromOme(ax["orientation"].value("value", std::string()));
        if (c) orientation += c;
      }
    }
    if (orientation.size() == 3) out.orientation = orientation;
    // A transformation of the whole multiscale multiplies every level's.
    std::vector<double> global;
    for (const json& t : m.value("coordinateTransformations", json::array()))
      if (t.value("type", std::string()) == "scale") global = t.at("scale").get<std::vector<double>>();
    for (const json& d : m.at("datasets")) {
      OmeMultiscales::Level level;
      level.path = d.at("path").get<std::string>();
      if (level.path.find("..") != std::string::npos || (!level.path.empty() && level.path[0] == '/'))
        throw FileError(path, "dataset path " + quote(level.path, 60) + " leaves the group");
      for (const json& t : d.value("coordinateTransformations", json::array()))
        if (t.value("type", std::string()) == "scale") level.scaleUm = t.at("scale").get<std::vector<double>>();
      for (std::size_t i = 0; i < level.scaleUm.size(); ++i) {
        if (i < global.size()) level.scaleUm[i] *= global[i];
        if (i < unitToUm.size()) level.scaleUm[i] *= unitToUm[i];
      }
      out.levels.push_back(std::move(level));
    }
  } catch (const json::exception& e) {
    throw FileError(path, std::string("unexpected OME-NGFF multiscales content: ") + e.what());
  }
  if (out.levels.empty()) throw FileError(path, "the multiscales list no dataset");
  return out;
}

} // namespace atlascope

namespace atlascope {

namespace {

void writeText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw FileError(path.string(), "cannot write");
}
} // namespace

void writeZarrArray(const std::string& folder, const std::vector<std::int64_t>& shape,
                    const std::vector<std::int64_t>& chunks, ScalarType type, const void* data,
                    const ZarrWriteOptions& o) {
  const std::size_t n = shape.size(), item = scalarSize(type);
  json meta;
  if (o.zarrFormat == 3) {
    json codecs = json::array();
    codecs.push_back({{"name", "bytes"}, {"configuration", {{"endian", o.littleEndian ? "little" : "big"}}}});
    if (o.compressor == "zstd")
      codecs.push_back({{"name", "zstd"}, {"configuration", {{"level", 3}, {"checksum", false}}}});
    if (o.compressor == "blosc")
      codecs.push_back(
          {{"name", "blosc"},
           {"configuration",
            {{"cname", "zstd"}, {"clevel", 5}, {"shuffle", "shuffle"}, {"typesize", item}, {"blocksize", 0}}}});
    if (!o.shardInner.empty()) {
      const json inner = codecs;
      const json index =
          json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}, {{"name", "crc32c"}}});
      codecs = json::array(
          {{{"name", "sharding_indexed"},
            {"configuration",
             {{"chunk_shape", o.shardInner}, {"codecs", inner}, {"index_codecs", index}, {"index_location", "end"}}}}});
    }
    meta = {
        {"zarr_format", 3},
        {"node_type", "array"},
        {"shape", shape},
        {"data_type", scalarName(type)},
        {"chunk_grid", {{"name", "regular"}, {"configuration", {{"chunk_shape", chunks}}}}},
        {"chunk_key_encoding", {{"name", "default"}, {"configuration", {{"separator", std::string(1, o.separator)}}}}},
        {"fill_value", 0},
        {"codecs", codecs},
        {"attributes", json::object()}};
    writeText(fs::path(folder) / "zarr.json", meta.dump(2));
  } else {
    std::string dt = std::string(item == 1        ? "|"
                                 : o.littleEndian ? "<"
                                                  : ">") +
                     (isInteger(type) ? (std::string(scalarName(type))[0] == 'u' ? "u" : "i") : "f") +
                     std::to_string(item);
    json compressor = nullptr;
    if (o.compressor == "zstd") compressor = {{"id", "zstd"}, {"level", 3}};
    if (o.compressor == "blosc")
      compressor = {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 0}};
    meta = {{"zarr_format", 2},   {"shape", shape},           {"chunks", chunks},
            {"dtype", dt},        {"fill_value", 0},          {"order", "C"},
            {"filters", nullptr}, {"compressor", compressor}, {"dimension_separator", std::string(1, o.separator)}};
    writeText(fs::path(folder) / ".zarray", meta.dump(2));
  }
  std::vector<std::int64_t> grid(n), stride(n);
  std::int64_t total = 1;
  for (std::size_t i = 0; i < n; ++i) {
    grid[i] = (shape[i] + chunks[i] - 1) / chunks[i];
    total *= grid[i];
  }
  std::int64_t s = 1;
  for (std::size_t i = n; i-- > 0;) {
    stride[i] = s;
    s *= shape[i];
  }
  std::int64_t chunkElements = 1;
  for (auto c : chunks) chunkElements *= c;
  const auto* src = static_cast<const std::uint8_t*>(data);
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(chunkElements) * item);
  const auto encode = [&](std::vector<std::uint8_t> raw) {
    if (!o.littleEndian) swapBytes(raw.data(), raw.size(), item);
    std::vector<std::uint8_t> enc;
    if (o.compressor == "zstd") {
      enc.resize(ZSTD_compressBound(raw.size()));
      const std::size_t r = ZSTD_compress(enc.data(), enc.size(), raw.data(), raw.size(), 3);
      if (ZSTD_isError(r)) throw Error("zstd compression failed");
      enc.resize(r);
    } else if (o.compressor == "blosc") {
      enc.resize(raw.size() + BLOSC_MAX_OVERHEAD);
      const int r =
          blosc_compress_ctx(5, BLOSC_SHUFFLE, item, raw.size(), raw.data(), enc.data(), enc.size(), "zstd", 0, 1);
      if (r <= 0) throw Error("blosc compression failed");
      enc.resize(static_cast<std::size_t>(r));
    } else {
      enc = std::move(raw);
    }
    return enc;
  };
  std::vector<std::int64_t> ci(n, 0), e(n, 0);
  for (std::int64_t c = 0; c < total; ++c) {
    // Gather the chunk (edge chunks padded with 0, the fill value).
    std::fill(buf.begin(), buf.end(), 0);
    bool allFill = true;
    std::fill(e.begin(), e.end(), 0);
    for (std::int64_t k = 0; k < chunkElements; ++k) {
      std::int64_t at = 0;
      bool inside = true;
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t g = ci[i] * chunks[i] + e[i];
        inside = inside && g < shape[i];
        at += g * stride[i];
      }
      if (inside) {
        std::memcpy(buf.data() + static_cast<std::size_t>(k) * item, src + static_cast<std::size_t>(at) * item, item);
        for (std::size_t b = 0; b < item; ++b) allFill = allFill && src[static_cast<std::size_t>(at) * item + b] == 0;
      }
      for (std::size_t i = n; i-- > 0;) {
        if (++e[i] < chunks[i]) break;
        e[i] = 0;
      }
    }
    if (!(allFill && o.omitFillChunks)) {
      std::vector<std::uint8_t> enc;
      if (o.shardInner.empty()) {
        enc = encode(buf);
      } else {
        // Inner chunks in C order over the shard, then the index (offset, size per inner chunk;
        // all ones when not stored) and its crc32c.
        std::vector<std::int64_t> grid2(n), at2(n, 0);
        std::int64_t innerCount = 1, innerElements = 1;
        for (std::size_t i = 0; i < n; ++i) {
          grid2[i] = chunks[i] / o.shardInner[i];
          innerCount *= grid2[i];
          innerElements *= o.shardInner[i];
        }
        std::vector<std::uint64_t> index;
        std::vector<std::uint8_t> inner(static_cast<std::size_t>(innerElements) * item);
        for (std::int64_t c2 = 0; c2 < innerCount; ++c2) {
          std::vector<std::int64_t> e2(n, 0);
          bool zero = true;
          for (std::int64_t k = 0; k < innerElements; ++k) {
            std::int64_t src2 = 0, sstride = 1;
            for (std::size_t i = n; i-- > 0;) {
              src2 += (at2[i] * o.shardInner[i] + e2[i]) * sstride;
              sstride *= chunks[i];
            }
            std::memcpy(inner.data() + static_cast<std::size_t>(k) * item,
                        buf.data() + static_cast<std::size_t>(src2) * item, item);
            for (std::size_t b2 = 0; b2 < item; ++b2)
              zero = zero && inner[static_cast<std::size_t>(k) * item + b2] == 0;
            for (std::size_t i = n; i-- > 0;) {
              if (++e2[i] < o.shardInner[i]) break;
              e2[i] = 0;
            }
          }
          if (zero && o.omitFillChunks) {
            index.insert(index.end(), {UINT64_MAX, UINT64_MAX});
          } else {
            const auto part = encode(inner);
            index.insert(index.end(),
                         {static_cast<std::uint64_t>(enc.size()), static_cast<std::uint64_t>(part.size())});
            enc.insert(enc.end(), part.begin(), part.end());
          }
          for (std::size_t i = n; i-- > 0;) {
            if (++at2[i] < grid2[i]) break;
            at2[i] = 0;
          }
        }
        const auto* ib = reinterpret_cast<const std::uint8_t*>(index.data());
        const std::vector<std::uint8_t> indexBytes(ib, ib + index.size() * 8);
        const std::uint32_t crc = crc32c(indexBytes.data(), indexBytes.size());
        enc.insert(enc.end(), indexBytes.begin(), indexBytes.end());
        const auto* cb = reinterpret_cast<const std::uint8_t*>(&crc);
        enc.insert(enc.end(), cb, cb + 4);
      }
      std::string key = o.zarrFormat == 3 ? "c" : "";
      for (std::size_t i = 0; i < n; ++i)
        key += (key.empty() ? "" : std::string(1, o.separator)) + std::to_string(ci[i]);
      const fs::path p = fs::path(folder) / key;
      fs::create_directories(p.parent_path());
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(enc.data()), static_cast<std::streamsize>(enc.size()));
      if (!out.flush()) throw FileError(p.string(), "cannot write");
    }
    for (std::size_t i = n; i-- > 0;) {
      if (++ci[i] < grid[i]) break;
      ci[i] = 0;
    }
  }
}

void writeOmeZarrGroup(const std::string& groupFolder, int zarrFormat, const std::vector<OmeMultiscales::Level>& levels,
                       const std::vector<std::string>& axisNames, const std::vector<std::string>& orientations,
                       const std::string& unit) {
  json axes = json::array();
  for (std::size_t i = 0; i < axisNames.size(); ++i) {
    json a = {{"name", axisNames[i]}, {"type", "space"}, {"unit", unit}};
    if (i < orientations.size() && !orientations[i].empty())
      a["orientation"] = {{"type", "anatomical"}, {"value", orientations[i]}};
    axes.push_back(a);
  }
  json datasets = json::array();
  for (const auto& l : levels)
    datasets.push_back({{"path", l.path}, {"coordinateTransformations", {{{"type", "scale"}, {"scale", l.scaleUm}}}}});
  json ms = json::array({{{"axes", axes}, {"datasets", datasets}, {"name", "/"}}});
  if (zarrFormat == 3) {
    ms[0]["version"] = "0.5";
    const json meta = {{"zarr_format", 3},
                       {"node_type", "group"},
                       {"attributes", {{"ome", {{"version", "0.5"}, {"multiscales", ms}}}}}};
    writeText(fs::path(groupFolder) / "zarr.json", meta.dump(2));
  } else {
    ms[0]["version"] = "0.4";
    writeText(fs::path(groupFolder) / ".zattrs", json{{"multiscales", ms}}.dump(2));
    writeText(fs::path(groupFolder) / ".zgroup", json{{"zarr_format", 2}}.dump());
  }
}

} // namespace atlascope
