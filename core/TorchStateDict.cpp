#include "core/TorchStateDict.h"

#include "core/Endian.h"
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/MemoryBudget.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <unordered_map>
#include <variant>
#include <zlib.h>

namespace atlascope {

std::size_t dtypeSize(TensorDType t) {
  switch (t) {
  case TensorDType::Float64:
  case TensorDType::Int64: return 8;
  case TensorDType::Float32:
  case TensorDType::Int32: return 4;
  case TensorDType::Float16:
  case TensorDType::BFloat16:
  case TensorDType::Int16: return 2;
  case TensorDType::Int8:
  case TensorDType::UInt8:
  case TensorDType::Bool: return 1;
  }
  return 1;
}

const char* dtypeName(TensorDType t) {
  switch (t) {
  case TensorDType::Float32: return "float32";
  case TensorDType::Float64: return "float64";
  case TensorDType::Float16: return "float16";
  case TensorDType::BFloat16: return "bfloat16";
  case TensorDType::Int64: return "int64";
  case TensorDType::Int32: return "int32";
  case TensorDType::Int16: return "int16";
  case TensorDType::Int8: return "int8";
  case TensorDType::UInt8: return "uint8";
  case TensorDType::Bool: return "bool";
  }
  return "?";
}

namespace {

// ---- zip (the subset torch.save writes: stored or deflated entries, no encryption) ----

struct ZipEntry {
  std::size_t dataOffset = 0, compressedSize = 0, size = 0;
  int method = 0;
  std::uint32_t crc = 0; // from the central directory, checked against the member's bytes
};

std::uint32_t le32(const std::uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint64_t le64(const std::uint8_t* p) { return le32(p) | (static_cast<std::uint64_t>(le32(p + 4)) << 32); }

std::map<std::string, ZipEntry> readZipDirectory(const std::vector<std::uint8_t>& f, const std::string& path) {
  if (f.size() < 22) throw FileError(path, "not a torch.save archive (too short for a zip file)");
  // End of central directory: the last PK\5\6 within 64 KiB of the end.
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = f.size() > 65557 ? f.size() - 65557 : 0;
  for (std::size_t i = f.size() - 22 + 1; i-- > lowest;)
    if (le32(&f[i]) == 0x06054b50u) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) {
    if (f.size() >= 2 && f[0] == 0x80)
      throw FileError(path, "a legacy (non-zip) torch.save file: re-save it with torch >= 1.6");
    throw FileError(path, "not a torch.save archive (no zip directory; truncated?)");
  }
  std::uint64_t count = le16(&f[eocd + 10]);
  std::uint64_t cdOffset = le32(&f[eocd + 16]);
  if (cdOffset == 0xFFFFFFFFu || count == 0xFFFFu) { // ZIP64: the locator sits just before
    if (eocd < 20 || le32(&f[eocd - 20]) != 0x07064b50u) throw FileError(path, "damaged ZIP64 directory");
    const std::uint64_t z64 = le64(&f[eocd - 20 + 8]);
    if (z64 > f.size() || f.size() - z64 < 56 || le32(&f[z64]) != 0x06064b50u)
      throw FileError(path, "damaged ZIP64 directory");
    count = le64(&f[z64 + 32]);
    cdOffset = le64(&f[z64 + 48]);
  }
  std::map<std::string, ZipEntry> entries;
  if (cdOffset > f.size()) throw FileError(path, "damaged zip directory (it starts past the end of the file)");
  std::size_t p = static_cast<std::size_t>(cdOffset);
  for (std::uint64_t n = 0; n < count; ++n) {
    if (p > f.size() || f.size() - p < 46 || le32(&f[p]) != 0x02014b50u) throw FileError(path, "damaged zip directory");
    ZipEntry e;
    e.method = le16(&f[p + 10]);
    std::uint64_t csize = le32(&f[p + 20]), usize = le32(&f[p + 24]), local = le32(&f[p + 42]);
    const std::size_t nameLen = le16(&f[p + 28]), extraLen = le16(&f[p + 30]), commentLen = le16(&f[p + 32]);
    if (p + 46 + nameLen + extraLen > f.size()) throw FileError(path, "damaged zip directory");
    const std::string name(reinterpret_cast<const char*>(&f[p + 46]), nameLen);
    // ZIP64 extra field: the 64-bit values, in order, for those set to 0xFFFFFFFF.
    for (std::size_t x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const std::uint16_t id = le16(&f[x]), len = le16(&f[x + 2]);
      if (id == 0x0001) {
        std::size_t q = x + 4;
        if (usize == 0xFFFFFFFFu && q + 8 <= x + 4 + len) {
          usize = le64(&f[q]);
          q += 8;
        }
        if (csize == 0xFFFFFFFFu && q + 8 <= x + 4 + len) {
          csize = le64(&f[q]);
          q += 8;
        }
        if (local == 0xFFFFFFFFu && q + 8 <= x + 4 + len) {
          local = le64(&f[q]);
        }
      }
      x += 4 + len;
    }
    const std::string member = "zip member " + quote(name);
    if (local > f.size() || f.size() - local < 30 || le32(&f[local]) != 0x04034b50u)
      throw FileError(path, "damaged " + member + " (no local header)");
    // The local header must agree with the central directory: the name (a reader that trusted a
    // lying name length would read shifted bytes), the method and, unless a data descriptor
    // follows the data (flag bit 3), the CRC and the sizes.
    const std::size_t localNameLen = le16(&f[local + 26]), localExtraLen = le16(&f[local + 28]);
    const std::uint16_t flags = le16(&f[local + 6]);
    if (localNameLen != nameLen || local + 30 + nameLen > f.size() ||
        std::memcmp(&f[local + 30], name.data(), nameLen) != 0)
      throw FileError(path, "damaged " + member + ": its local header names another member than the directory");
    if (le16(&f[local + 8]) != e.method)
      throw FileError(path, "damaged " + member + ": local header and directory disagree on the compression method");
    e.crc = le32(&f[p + 16]);
    if (!(flags & 0x08)) {
      const std::uint32_t lcrc = le32(&f[local + 14]), lcsize = le32(&f[local + 18]), lusize = le32(&f[local + 22]);
      if (lcrc != e.crc || (lcsize != 0xFFFFFFFFu && lcsize != csize) || (lusize != 0xFFFFFFFFu && lusize != usize))
        throw FileError(path, "damaged " + member + ": local header and directory disagree on its CRC or sizes");
    }
    e.dataOffset = local + 30 + localNameLen + localExtraLen;
    e.compressedSize = csize;
    e.size = usize;
    if (e.dataOffset > f.size() || e.compressedSize > f.size() - e.dataOffset)
      throw FileError(path, member + " runs past the end of the file (truncated?)");
    if (e.method != 0 && e.method != 8)
      throw FileError(path, member + " uses compression method " + std::to_string(e.method));
    if (e.method == 0 && e.size != e.compressedSize)
      throw FileError(path, "damaged " + member + ": stored, but its sizes differ");
    entries[name] = e;
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

std::vector<std::uint8_t> entryBytes(const std::vector<std::uint8_t>& f, const ZipEntry& e, const std::string& path,
                                     const std::string& name) {
  const std::uint8_t* data = f.data() + e.dataOffset;
  const std::string member = "zip member " + quote(name);
  // Every member's CRC-32 is verified: flipped bytes in a stored tensor would otherwise load as
  // wrong weights without a word (parity then fails far from the cause).
  auto verified = [&](std::vector<std::uint8_t> bytes) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (std::size_t at = 0; at < bytes.size();) { // crc32 takes uInt lengths
      const std::size_t n = std::min<std::size_t>(bytes.size() - at, 1u << 30);
      crc = crc32(crc, bytes.data() + at, static_cast<uInt>(n));
      at += n;
    }
    if (static_cast<std::uint32_t>(crc) != e.crc)
      throw FileError(path, "damaged " + member + ": its CRC-32 does not match (the bytes were changed or corrupted)");
    return bytes;
  };
  if (e.method == 0) return verified(std::vector<std::uint8_t>(data, data + e.compressedSize));
  checkAllocation(path, member + "'s size", e.size, saturatingMultiply(e.compressedSize, kMaxDeflateRatio) + 1024);
  if (e.compressedSize > std::numeric_limits<uInt>::max() || e.size > std::numeric_limits<uInt>::max())
    throw FileError(path, member + " is deflated and larger than 4 GB (not supported)");
  std::vector<std::uint8_t> out(e.size);
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) throw FileError(path, "cannot initialise zlib");
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(e.compressedSize);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&zs, Z_FINISH);
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || zs.total_out != e.size)
    throw FileError(path, "damaged " + member + ": corrupt compressed data");
  return verified(std::move(out));
}

// ---- the pickle subset ----

struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Global {
  std::string module, name;
};
struct Storage {
  TensorDType dtype;
  std::string key;
  std::int64_t numel;
};
struct TensorRef {
  std::shared_ptr<Storage> storage;
  std::int64_t offset;
  std::vector<std::int64_t> size, stride;
};
struct Mark {};
struct None {};
using Tuple = std::vector<ValuePtr>;
using Dict = std::vector<std::pair<ValuePtr, ValuePtr>>;

struct Value {
  std::variant<None, bool, std::int64_t, std::string, Tuple, Dict, Global, std::shared_ptr<Storage>, TensorRef, Mark> v;
};

template <class T> ValuePtr make(T x) {
  auto p = std::make_shared<Value>();
  p->v = std::move(x);
  return p;
}

// Every tuple and dict an Unpickler made, emptied when it ends. Why: the memo lets a pickle put a
// dict into itself (d[k] = d, or through a tuple), a cycle shared_ptr never frees, and a chain of
// a million nested tuples would be destroyed recursively and overflow the stack. Emptying each
// container from a flat list frees both without recursion.
class Containers {
public:
  ValuePtr add(ValuePtr v) {
    all_.push_back(v);
    return v;
  }
  ~Containers() {
    for (auto& v : all_) {
      if (auto* t = std::get_if<Tuple>(&v->v))
        Tuple().swap(*t);
      else if (auto* d = std::get_if<Dict>(&v->v))
        Dict().swap(*d);
    }
  }

private:
  std::vector<ValuePtr> all_;
};

const std::map<std::string, TensorDType>& storageTypes() {
  static const std::map<std::string, TensorDType> m = {
      {"FloatStorage", TensorDType::Float32}, {"DoubleStorage", TensorDType::Float64},
      {"HalfStorage", TensorDType::Float16},  {"BFloat16Storage", TensorDType::BFloat16},
      {"LongStorage", TensorDType::Int64},    {"IntStorage", TensorDType::Int32},
      {"ShortStorage", TensorDType::Int16},   {"CharStorage", TensorDType::Int8},
      {"ByteStorage", TensorDType::UInt8},    {"BoolStorage", TensorDType::Bool}};
  return m;
}

bool allowedGlobal(const Global& g) {
  if (g.module == "collections" && g.name == "OrderedDict") return true;
  if (g.module == "torch._utils" && (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_parameter")) return true;
  if (g.module == "torch" && storageTypes().count(g.name)) return true;
  return false;
}

class Unpickler {
public:
  Unpickler(const std::vector<std::uint8_t>& data, std::string path) : d_(data), path_(std::move(path)) {}

  ValuePtr run() {
    while (true) {
      if (pos_ >= d_.size()) fail("the pickle ends without STOP (truncated?)");
      const std::size_t at = pos_;
      const std::uint8_t op = d_[pos_++];
      switch (op) {
      case 0x80: byte(); break;                                                   // PROTO
      case '(': stack_.push_back(make(Mark{})); break;                            // MARK
      case '.': return pop();                                                     // STOP
      case ')': stack_.push_back(owned(make(Tuple{}))); break;                    // EMPTY_TUPLE
      case '}': stack_.push_back(owned(make(Dict{}))); break;                     // EMPTY_DICT
      case 'N': stack_.push_back(make(None{})); break;                            // NONE
      case 0x88: stack_.push_back(make(true)); break;                             // NEWTRUE
      case 0x89: stack_.push_back(make(false)); break;                            // NEWFALSE
      case 'K': stack_.push_back(make(static_cast<std::int64_t>(byte()))); break; // BININT1
      case 'M': stack_.push_back(make(static_cast<std::int64_t>(u16()))); break;  // BININT2
      case 'J': stack_.push_back(make(static_cast<std::int64_t>(static_cast<std::int32_t>(u32())))); break; // BININT
      case 0x8a: {                                                                                          // LONG1
        const std::size_t n = byte();
        if (n > 8) fail("integer too large");
        need(n);
        std::int64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::int64_t>(d_[pos_ + i]) << (8 * i);
        if (n > 0 && n < 8 && (d_[pos_ + n - 1] & 0x80)) v -= static_cast<std::int64_t>(1) << (8 * n);
        pos_ += n;
        stack_.push_back(make(v));
        break;
      }
      case 'X': {
        const std::size_t n = u32();
        stack_.push_back(make(str(n)));
        break;
      } // BINUNICODE
      case 0x8c: {
        const std::size_t n = byte();
        stack_.push_back(make(str(n)));
        break;
      }           // SHORT_BINUNICODE
      case 'c': { // GLOBAL
        Global g{line(), line()};
        if (!allowedGlobal(g))
          fail("unsupported pickle global '" + g.module + "." + g.name +
               "': only a plain state_dict is accepted (a pickle is a program and is never executed)");
        stack_.push_back(make(g));
        break;
      }
      case 'q': memo_[byte()] = top(); break; // BINPUT
      case 'r': memo_[u32()] = top(); break;  // LONG_BINPUT
      case 'h': get(byte()); break;           // BINGET
      case 'j': get(u32()); break;            // LONG_BINGET
      case 't': {
        Tuple t = popToMark();
        stack_.push_back(owned(make(std::move(t))));
        break;
      } // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: { // TUPLE1..3
        const std::size_t n = op - 0x84u;
        if (stack_.size() < n) fail("stack underflow");
        Tuple t(stack_.end() - static_cast<long>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(owned(make(std::move(t))));
        break;
      }
      case 's': { // SETITEM
        ValuePtr v = pop(), k = pop();
        dictOf(top()).emplace_back(k, v);
        break;
      }
      case 'u': { // SETITEMS
        Tuple items = popToMark();
        if (items.size() % 2) fail("odd SETITEMS");
        Dict& d = dictOf(top());
        for (std::size_t i = 0; i < items.size(); i += 2) d.emplace_back(items[i], items[i + 1]);
        break;
      }
      case 'Q': { // BINPERSID
        const ValuePtr pid = pop();
        stack_.push_back(persistent(pid));
        break;
      }
      case 'R': { // REDUCE
        ValuePtr args = pop(), fn = pop();
        stack_.push_back(reduce(fn, args));
        break;
      }
      case 'b': { // BUILD: OrderedDict._metadata only
        pop();
        if (!std::holds_alternative<Dict>(top()->v)) fail("BUILD on something other than a dict");
        break;
      }
      default: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x at byte %zu", op, at);
        fail(buf);
      }
      }
    }
  }

private:
  [[noreturn]] void fail(const std::string& why) const { throw FileError(path_, "data.pkl: " + why); }
  ValuePtr owned(ValuePtr v) { return containers_.add(std::move(v)); }
  void need(std::size_t n) const {
    if (pos_ + n > d_.size()) fail("the pickle ends in the middle of an instruction (truncated?)");
  }
  std::uint8_t byte() {
    need(1);
    return d_[pos_++];
  }
  std::uint16_t u16() {
    need(2);
    const auto v = le16(&d_[pos_]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    need(4);
    const auto v = le32(&d_[pos_]);
    pos_ += 4;
    return v;
  }
  std::string str(std::size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(&d_[pos_]), n);
    pos_ += n;
    return s;
  }
  std::string line() {
    const auto nl = std::find(d_.begin() + static_cast<long>(pos_), d_.end(), '\n');
    if (nl == d_.end()) fail("unterminated GLOBAL");
    std::string s(d_.begin() + static_cast<long>(pos_), nl);
    pos_ = static_cast<std::size_t>(nl - d_.begin()) + 1;
    return s;
  }
  ValuePtr pop() {
    if (stack_.empty()) fail("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    if (std::holds_alternative<Mark>(v->v)) fail("unexpected MARK");
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  void get(std::uint32_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " not set");
    stack_.push_back(it->second);
  }
  Tuple popToMark() {
    Tuple items;
    while (true) {
      if (stack_.empty()) fail("MARK not found");
      ValuePtr v = stack_.back();
      stack_.pop_back();
      if (std::holds_alternative<Mark>(v->v)) break;
      items.push_back(v);
    }
    std::reverse(items.begin(), items.end());
    return items;
  }
  Dict& dictOf(const ValuePtr& v) {
    if (!std::holds_alternative<Dict>(v->v)) fail("SETITEM on something other than a dict");
    return std::get<Dict>(v->v);
  }
  std::int64_t intOf(const ValuePtr& v, const char* what) {
    if (!std::holds_alternative<std::int64_t>(v->v)) fail(std::string("expected an integer for ") + what);
    return std::get<std::int64_t>(v->v);
  }
  std::vector<std::int64_t> intTuple(const ValuePtr& v, const char* what) {
    if (!std::holds_alternative<Tuple>(v->v)) fail(std::string("expected a tuple for ") + what);
    std::vector<std::int64_t> out;
    for (const auto& x : std::get<Tuple>(v->v)) out.push_back(intOf(x, what));
    return out;
  }
  // ('storage', <storage type>, key, location, numel)
  ValuePtr persistent(const ValuePtr& pid) {
    if (!std::holds_alternative<Tuple>(pid->v)) fail("persistent id is not a tuple");
    const Tuple& t = std::get<Tuple>(pid->v);
    if (t.size() != 5 || !std::holds_alternative<std::string>(t[0]->v) || std::get<std::string>(t[0]->v) != "storage")
      fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
    if (!std::holds_alternative<Global>(t[1]->v)) fail("storage type is not a torch storage class");
    const Global& g = std::get<Global>(t[1]->v);
    const auto it = storageTypes().find(g.name);
    if (g.module != "torch" || it == storageTypes().end()) fail("unsupported storage type " + g.module + "." + g.name);
    if (!std::holds_alternative<std::string>(t[2]->v)) fail("storage key is not a string");
    auto s =
        std::make_shared<Storage>(Storage{it->second, std::get<std::string>(t[2]->v), intOf(t[4], "storage size")});
    return make(s);
  }
  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (!std::holds_alternative<Global>(fn->v)) fail("REDUCE on something other than an allowed global");
    if (!std::holds_alternative<Tuple>(args->v)) fail("REDUCE arguments are not a tuple");
    const Global& g = std::get<Global>(fn->v);
    const Tuple& a = std::get<Tuple>(args->v);
    if (g.module == "collections" && g.name == "OrderedDict") {
      if (!a.empty()) fail("OrderedDict with arguments");
      return owned(make(Dict{}));
    }
    if (g.name == "_rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || !std::holds_alternative<std::shared_ptr<Storage>>(a[0]->v))
        fail("malformed _rebuild_tensor_v2 call");
      TensorRef t{std::get<std::shared_ptr<Storage>>(a[0]->v), intOf(a[1], "storage offset"), intTuple(a[2], "size"),
                  intTuple(a[3], "stride")};
      if (t.size.size() != t.stride.size()) fail("tensor size and stride disagree");
      return make(std::move(t));
    }
    if (g.name == "_rebuild_parameter") {
      if (a.empty() || !std::holds_alternative<TensorRef>(a[0]->v)) fail("malformed _rebuild_parameter call");
      return a[0];
    }
    fail("storage classes cannot be called");
  }

  Containers containers_; // declared first: destroyed last, after the stack and the memo
  const std::vector<std::uint8_t>& d_;
  std::string path_;
  std::size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::unordered_map<std::uint32_t, ValuePtr> memo_;
};

} // namespace

std::vector<RawTensor> readTorchStateDict(const std::string& path) {
  const std::vector<std::uint8_t> file = readFileBytes(path);
  const auto entries = readZipDirectory(file, path);
  std::string prefix;
  for (const auto& [name, e] : entries) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = name.substr(0, slash + 1);
      break;
    }
  }
  if (prefix.empty()) throw FileError(path, "not a torch.save archive (no data.pkl)");
  bool bigEndian = false;
  if (const auto it = entries.find(prefix + "byteorder"); it != entries.end()) {
    const auto b = entryBytes(file, it->second, path, it->first);
    bigEndian = std::string(b.begin(), b.end()) == "big";
  }
  const auto pkl = entryBytes(file, entries.at(prefix + "data.pkl"), path, prefix + "data.pkl");
  Unpickler up(pkl, path);
  const ValuePtr root = up.run();
  if (!std::holds_alternative<Dict>(root->v))
    throw FileError(path, "the pickle is not a state_dict (expected a dict of tensors; save model.state_dict())");

  std::vector<RawTensor> out;
  std::map<std::string, std::vector<std::uint8_t>> storages;
  for (const auto& [k, v] : std::get<Dict>(root->v)) {
    if (!std::holds_alternative<std::string>(k->v)) throw FileError(path, "a state_dict key is not a string");
    const std::string& name = std::get<std::string>(k->v);
    if (!std::holds_alternative<TensorRef>(v->v))
      throw FileError(path, "state_dict entry '" + name + "' is not a tensor");
    const TensorRef& t = std::get<TensorRef>(v->v);
    auto sit = storages.find(t.storage->key);
    if (sit == storages.end()) {
      const auto e = entries.find(prefix + "data/" + t.storage->key);
      if (e == entries.end())
        throw FileError(path, "storage 'data/" + t.storage->key + "' of '" + name + "' is missing from the archive");
      auto bytes = entryBytes(file, e->second, path, e->first);
      const std::size_t w = dtypeSize(t.storage->dtype);
      if (t.storage->numel < 0) throw FileError(path, "storage 'data/" + t.storage->key + "' has a negative size");
      if (bytes.size() / w < static_cast<std::uint64_t>(t.storage->numel))
        throw FileError(path, "storage 'data/" + t.storage->key + "' is shorter than its " +
                                  std::to_string(t.storage->numel) + " elements");
      if (bigEndian != !hostIsLittleEndian()) swapBytes(bytes.data(), bytes.size(), w);
      sit = storages.emplace(t.storage->key, std::move(bytes)).first;
    }
    RawTensor r;
    r.name = name;
    r.dtype = t.storage->dtype;
    r.shape = t.size;
    const std::size_t w = dtypeSize(r.dtype);
    // The element count from the pickle's size tuple, without overflow; a tensor larger than its
    // storage is possible only through zero strides (an expanded view), so it is bounded by memory.
    std::uint64_t n64 = 1;
    for (const std::int64_t s : t.size) {
      if (s < 0) throw FileError(path, "tensor " + quote(name) + " has a negative size");
      n64 = saturatingMultiply(n64, static_cast<std::uint64_t>(s));
    }
    checkAllocation(path, "tensor " + quote(name), saturatingMultiply(n64, w),
                    std::numeric_limits<std::uint64_t>::max());
    const std::int64_t n = static_cast<std::int64_t>(n64);
    r.bytes.resize(static_cast<std::size_t>(n) * w);
    bool contiguous = true;
    std::int64_t expect = 1;
    for (std::size_t d = t.size.size(); d-- > 0;) {
      if (t.size[d] != 1 && t.stride[d] != expect) contiguous = false;
      expect *= t.size[d];
    }
    if (contiguous) {
      if (n > 0 && (t.offset < 0 || t.offset > t.storage->numel || n > t.storage->numel - t.offset))
        throw FileError(path, "tensor '" + name + "' reaches outside its storage");
      if (n > 0) std::memcpy(r.bytes.data(), &sit->second[static_cast<std::size_t>(t.offset) * w], r.bytes.size());
      out.push_back(std::move(r));
      continue;
    }
    // Gather through the strides (a view saved as is).
    std::vector<std::int64_t> idx(t.size.size(), 0);
    for (std::int64_t e = 0; e < n; ++e) {
      std::int64_t off = t.offset;
      bool overflow = false;
      for (std::size_t d = 0; d < idx.size(); ++d) {
        std::int64_t step = 0;
        overflow |= __builtin_mul_overflow(idx[d], t.stride[d], &step) || __builtin_add_overflow(off, step, &off);
      }
      if (overflow || off < 0 || off >= t.storage->numel)
        throw FileError(path, "tensor '" + name + "' reaches outside its storage");
      std::memcpy(&r.bytes[static_cast<std::size_t>(e) * w], &sit->second[static_cast<std::size_t>(off) * w], w);
      for (std::size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < t.size[d]) break;
        idx[d] = 0;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace atlascope
