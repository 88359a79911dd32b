#include "core/Hdf5File.h"

#include "core/Error.h"
#include "core/MemoryBudget.h"

#include <algorithm>
#include <filesystem>
#include <hdf5.h>

namespace atlascope {

namespace {
struct Silence {
  Silence() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};

// Closes an HDF5 handle when it goes out of scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

herr_t collectName(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
} // namespace

Hdf5File::Hdf5File(const std::string& path) : path_(path) {
  static Silence silence;
  if (!std::filesystem::exists(path)) throw FileError(path, "cannot open file (it does not exist)");
  if (H5Fis_hdf5(path.c_str()) <= 0) throw FileError(path, "not an HDF5 file (or a truncated one)");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw FileError(path, "cannot open as HDF5 (truncated or damaged file?)");
  id_ = f;
}

std::unique_ptr<Hdf5File> Hdf5File::adopt(long fileId, const std::string& name) {
  static Silence silence;
  std::unique_ptr<Hdf5File> f(new Hdf5File());
  f->path_ = name;
  f->id_ = fileId;
  return f;
}

std::uint64_t Hdf5File::canHold() const {
  hsize_t size = 0;
  if (H5Fget_filesize(static_cast<hid_t>(id_), &size) < 0) return 0;
  return saturatingMultiply(size, kMaxDeflateRatio) + 4096;
}

void Hdf5File::checkRead(const std::string& dataset, std::uint64_t elements, std::uint64_t elementBytes) const {
  checkAllocation(path_, "dataset " + quote(dataset), saturatingMultiply(elements, elementBytes), canHold());
}

char Hdf5File::kind(const std::string& path) const {
  if (!plainlyExists(path)) {
    Member m;
    return compoundMember(path, &m) ? 'm' : 0;
  }
  H5O_info_t info;
  if (H5Oget_info_by_name(static_cast<hid_t>(id_), path.c_str(), &info, H5P_DEFAULT) < 0) return 0;
  return info.type == H5O_TYPE_GROUP ? 'g' : info.type == H5O_TYPE_DATASET ? 'd' : 0;
}

char Hdf5File::typeClass(const std::string& dataset) const {
  auto classOf = [](hid_t type) {
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
    case H5T_ENUM:
    case H5T_BITFIELD: return 'i';
    case H5T_FLOAT: return 'f';
    case H5T_STRING: return 's';
    case H5T_COMPOUND: return 'c';
    case H5T_ARRAY: return 'a';
    default: return '?';
    }
  };
  if (Member m; !plainlyExists(dataset) && compoundMember(dataset, &m)) {
    Handle d{H5Dopen2(static_cast<hid_t>(id_), m.dataset.c_str(), H5P_DEFAULT), H5Dclose};
    Handle type{H5Dget_type(d.id), H5Tclose};
    Handle member{H5Tget_member_type(type.id, static_cast<unsigned>(H5Tget_member_index(type.id, m.name.c_str()))),
                  H5Tclose};
    return member.id < 0 ? '?' : classOf(member.id);
  }
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset " + quote(dataset));
  Handle type{H5Dget_type(d.id), H5Tclose};
  return type.id < 0 ? '?' : classOf(type.id);
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(static_cast<hid_t>(id_));
}

bool Hdf5File::exists(const std::string& object) const {
  // Each path component is checked (H5Lexists fails on a missing intermediate group).
  Member m;
  return plainlyExists(object) || compoundMember(object, &m);
}

bool Hdf5File::plainlyExists(const std::string& path) const {
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t next = path.find('/', pos + 1);
    if (next == std::string::npos) next = path.size();
    const std::string partial = path.substr(0, next);
    if (partial != "/" && !partial.empty() && H5Lexists(static_cast<hid_t>(id_), partial.c_str(), H5P_DEFAULT) <= 0)
      return false;
    pos = next;
  }
  return true;
}

std::string dataframeIndexName(const Hdf5File& f, const std::string& dataframe) {
  if (f.hasAttribute(dataframe, "_index")) return f.readStringAttribute(dataframe, "_index");
  if (f.isCompoundMember(dataframe + "/index")) return "index";
  return "_index";
}

bool Hdf5File::isCompound(const std::string& dataset) const {
  if (dataset.empty() || H5Lexists(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT) <= 0) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(static_cast<hid_t>(id_), dataset.c_str(), &info, H5P_DEFAULT) < 0 ||
      info.type != H5O_TYPE_DATASET)
    return false;
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  Handle type{H5Dget_type(d.id), H5Tclose};
  return d.id >= 0 && H5Tget_class(type.id) == H5T_COMPOUND;
}

bool Hdf5File::compoundMember(const std::string& path, Member* out) const {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return false;
  const std::string parent = path.substr(0, slash), name = path.substr(slash + 1);
  if (!plainlyExists(parent)) return false; // no members of members
  if (!isCompound(parent)) return false;
  Handle d{H5Dopen2(static_cast<hid_t>(id_), parent.c_str(), H5P_DEFAULT), H5Dclose};
  Handle type{H5Dget_type(d.id), H5Tclose};
  if (H5Tget_member_index(type.id, name.c_str()) < 0) return false;
  *out = {parent, name};
  return true;
}

template <class T> NdArray<T> Hdf5File::readMember(const Member& m, long memType) const {
  Handle d{H5Dopen2(static_cast<hid_t>(id_), m.dataset.c_str(), H5P_DEFAULT), H5Dclose};
  Handle type{H5Dget_type(d.id), H5Tclose};
  Handle member{H5Tget_member_type(type.id, static_cast<unsigned>(H5Tget_member_index(type.id, m.name.c_str()))),
                H5Tclose};
  NdArray<T> out;
  out.shape = shape(m.dataset);
  if (out.shape.size() > 1) throw FileError(path_, "compound dataset " + quote(m.dataset) + " is not 1D");
  // A numeric member, or a fixed-size array of numbers (legacy obsm: one member per embedding).
  std::int64_t width = 1;
  hid_t elementType = H5Tcopy(static_cast<hid_t>(memType));
  H5T_class_t cls = H5Tget_class(member.id);
  if (cls == H5T_ARRAY) {
    Handle base{H5Tget_super(member.id), H5Tclose};
    cls = H5Tget_class(base.id);
    const int rank = H5Tget_array_ndims(member.id);
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    H5Tget_array_dims2(member.id, dims.data());
    for (hsize_t d : dims)
      width = static_cast<std::int64_t>(
          std::min<std::uint64_t>(saturatingMultiply(static_cast<std::uint64_t>(width), d), 1ull << 40));
    H5Tclose(elementType);
    elementType = H5Tarray_create2(static_cast<hid_t>(memType), static_cast<unsigned>(rank), dims.data());
    out.shape.push_back(width);
  }
  Handle element{elementType, H5Tclose};
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw FileError(path_, "column '" + m.name + "' of '" + m.dataset + "' is not numeric");
  checkRead(m.dataset + "/" + m.name,
            saturatingMultiply(static_cast<std::uint64_t>(out.shape.empty() ? 1 : out.shape[0]),
                               static_cast<std::uint64_t>(width)),
            sizeof(T));
  Handle mem{H5Tcreate(H5T_COMPOUND, sizeof(T) * static_cast<std::size_t>(width)), H5Tclose};
  H5Tinsert(mem.id, m.name.c_str(), 0, element.id);
  out.data.resize(static_cast<std::size_t>(out.size()));
  if (!out.data.empty() && H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data()) < 0)
    throw FileError(path_, "cannot read column '" + m.name + "' of '" + m.dataset + "' (truncated or damaged file?)");
  return out;
}

std::vector<std::string> Hdf5File::readMemberStrings(const Member& m) const {
  Handle d{H5Dopen2(static_cast<hid_t>(id_), m.dataset.c_str(), H5P_DEFAULT), H5Dclose};
  Handle type{H5Dget_type(d.id), H5Tclose};
  Handle member{H5Tget_member_type(type.id, static_cast<unsigned>(H5Tget_member_index(type.id, m.name.c_str()))),
                H5Tclose};
  if (H5Tget_class(member.id) != H5T_STRING)
    throw FileError(path_, "column '" + m.name + "' of '" + m.dataset + "' does not hold strings");
  const auto dims = shape(m.dataset);
  if (dims.size() > 1) throw FileError(path_, "compound dataset " + quote(m.dataset) + " is not 1D");
  const std::size_t n = dims.empty() ? 1 : static_cast<std::size_t>(dims[0]);
  checkRead(m.dataset + "/" + m.name, n,
            sizeof(std::string) + std::max<std::size_t>(sizeof(char*), H5Tget_size(member.id)));
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (H5Tis_variable_str(member.id) > 0) {
    Handle str{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(str.id, H5T_VARIABLE);
    H5Tset_cset(str.id, H5Tget_cset(member.id));
    Handle mem{H5Tcreate(H5T_COMPOUND, sizeof(char*)), H5Tclose};
    H5Tinsert(mem.id, m.name.c_str(), 0, str.id);
    std::vector<char*> ptrs(n, nullptr);
    if (H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      throw FileError(path_, "cannot read column '" + m.name + "' of '" + m.dataset + "' (truncated or damaged file?)");
    for (std::size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    Handle space{H5Dget_space(d.id), H5Sclose};
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, ptrs.data());
    return out;
  }
  const std::size_t w = H5Tget_size(member.id);
  Handle mem{H5Tcreate(H5T_COMPOUND, w), H5Tclose};
  H5Tinsert(mem.id, m.name.c_str(), 0, member.id);
  std::vector<char> buf(n * w);
  if (H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    throw FileError(path_, "cannot read column '" + m.name + "' of '" + m.dataset + "' (truncated or damaged file?)");
  for (std::size_t i = 0; i < n; ++i) {
    std::string v(buf.data() + i * w, w);
    v.erase(std::find(v.begin(), v.end(), '\0'), v.end());
    out[i] = v;
  }
  return out;
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
  if (isCompound(group)) {
    Handle d{H5Dopen2(static_cast<hid_t>(id_), group.c_str(), H5P_DEFAULT), H5Dclose};
    Handle type{H5Dget_type(d.id), H5Tclose};
    std::vector<std::string> names;
    for (int i = 0; i < H5Tget_nmembers(type.id); ++i) {
      char* name = H5Tget_member_name(type.id, static_cast<unsigned>(i));
      names.emplace_back(name);
      H5free_memory(name);
    }
    return names;
  }
  Handle g{H5Gopen2(static_cast<hid_t>(id_), group.c_str(), H5P_DEFAULT), H5Gclose};
  if (g.id < 0) throw FileError(path_, "no group '" + group + "'");
  std::vector<std::string> names;
  H5Literate(g.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, collectName, &names);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::int64_t> Hdf5File::shape(const std::string& dataset) const {
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset '" + dataset + "'");
  Handle s{H5Dget_space(d.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(s.id);
  if (rank < 0) throw FileError(path_, "cannot read the shape of '" + dataset + "'");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(s.id, dims.data(), nullptr);
  return std::vector<std::int64_t>(dims.begin(), dims.end());
}

template <class T> NdArray<T> Hdf5File::read(const std::string& dataset, long memType) const {
  if (Member m; !plainlyExists(dataset) && compoundMember(dataset, &m)) return readMember<T>(m, memType);
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset '" + dataset + "'");
  Handle type{H5Dget_type(d.id), H5Tclose};
  const H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_ENUM)
    throw FileError(path_, "dataset '" + dataset + "' is not numeric");
  NdArray<T> out;
  out.shape = shape(dataset);
  std::uint64_t elements = 1;
  for (const auto s : out.shape) elements = saturatingMultiply(elements, static_cast<std::uint64_t>(s));
  checkRead(dataset, elements, sizeof(T));
  out.data.resize(static_cast<std::size_t>(out.size()));
  if (!out.data.empty() &&
      H5Dread(d.id, static_cast<hid_t>(memType), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data()) < 0)
    throw FileError(path_, "cannot read dataset '" + dataset + "' (truncated or damaged file?)");
  return out;
}

NdArray<float> Hdf5File::readFloat(const std::string& ds) const { return read<float>(ds, H5T_NATIVE_FLOAT); }
NdArray<double> Hdf5File::readDouble(const std::string& ds) const { return read<double>(ds, H5T_NATIVE_DOUBLE); }
NdArray<std::int64_t> Hdf5File::readInt64(const std::string& ds) const {
  return read<std::int64_t>(ds, H5T_NATIVE_INT64);
}

NdArray<float> Hdf5File::readFloatRows(const std::string& dataset, std::int64_t begin, std::int64_t count) const {
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset '" + dataset + "'");
  NdArray<float> out;
  out.shape = shape(dataset);
  if (out.shape.size() != 2) throw FileError(path_, "dataset '" + dataset + "' is not 2D");
  if (begin < 0 || count < 0 || begin > out.shape[0] || count > out.shape[0] - begin)
    throw FileError(path_, "rows out of range in '" + dataset + "'");
  out.shape[0] = count;
  checkRead(dataset, saturatingMultiply(static_cast<std::uint64_t>(count), static_cast<std::uint64_t>(out.shape[1])),
            sizeof(float));
  out.data.resize(static_cast<std::size_t>(count * out.shape[1]));
  if (count == 0) return out;
  Handle fspace{H5Dget_space(d.id), H5Sclose};
  hsize_t start[2] = {static_cast<hsize_t>(begin), 0},
          cnt[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(out.shape[1])};
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start, nullptr, cnt, nullptr);
  Handle mspace{H5Screate_simple(2, cnt, nullptr), H5Sclose};
  if (H5Dread(d.id, H5T_NATIVE_FLOAT, mspace.id, fspace.id, H5P_DEFAULT, out.data.data()) < 0)
    throw FileError(path_, "cannot read rows of '" + dataset + "' (truncated or damaged file?)");
  return out;
}

template <class T>
std::vector<T> Hdf5File::readRange(const std::string& dataset, std::int64_t begin, std::int64_t count,
                                   long memType) const {
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset '" + dataset + "'");
  const auto dims = shape(dataset);
  if (dims.size() != 1) throw FileError(path_, "dataset '" + dataset + "' is not 1D");
  if (begin < 0 || count < 0 || begin > dims[0] || count > dims[0] - begin)
    throw FileError(path_, "range out of bounds in '" + dataset + "'");
  checkRead(dataset, static_cast<std::uint64_t>(count), sizeof(T));
  std::vector<T> out(static_cast<std::size_t>(count));
  if (count == 0) return out;
  Handle fspace{H5Dget_space(d.id), H5Sclose};
  const hsize_t start = static_cast<hsize_t>(begin), cnt = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, &start, nullptr, &cnt, nullptr);
  Handle mspace{H5Screate_simple(1, &cnt, nullptr), H5Sclose};
  if (H5Dread(d.id, static_cast<hid_t>(memType), mspace.id, fspace.id, H5P_DEFAULT, out.data()) < 0)
    throw FileError(path_, "cannot read '" + dataset + "' (truncated or damaged file?)");
  return out;
}

std::vector<float> Hdf5File::readFloatRange(const std::string& ds, std::int64_t b, std::int64_t c) const {
  return readRange<float>(ds, b, c, H5T_NATIVE_FLOAT);
}
std::vector<std::int64_t> Hdf5File::readInt64Range(const std::string& ds, std::int64_t b, std::int64_t c) const {
  return readRange<std::int64_t>(ds, b, c, H5T_NATIVE_INT64);
}

std::vector<std::string> Hdf5File::readStrings(const std::string& dataset) const {
  if (Member m; !plainlyExists(dataset) && compoundMember(dataset, &m)) return readMemberStrings(m);
  Handle d{H5Dopen2(static_cast<hid_t>(id_), dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw FileError(path_, "no dataset '" + dataset + "'");
  Handle type{H5Dget_type(d.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING) throw FileError(path_, "dataset '" + dataset + "' does not hold strings");
  const auto dims = shape(dataset);
  if (dims.size() > 1) throw FileError(path_, "string dataset " + quote(dataset) + " is not 1D");
  const std::size_t n = dims.empty() ? 1 : static_cast<std::size_t>(dims[0]);
  checkRead(dataset, n, sizeof(std::string) + std::max<std::size_t>(sizeof(char*), H5Tget_size(type.id)));
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (H5Tis_variable_str(type.id) > 0) {
    Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    std::vector<char*> ptrs(n, nullptr);
    if (H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      throw FileError(path_, "cannot read '" + dataset + "' (truncated or damaged file?)");
    for (std::size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    Handle space{H5Dget_space(d.id), H5Sclose};
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, ptrs.data());
    return out;
  }
  const std::size_t w = H5Tget_size(type.id);
  std::vector<char> buf(n * w);
  if (H5Dread(d.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    throw FileError(path_, "cannot read '" + dataset + "' (truncated or damaged file?)");
  for (std::size_t i = 0; i < n; ++i) {
    std::string s(buf.data() + i * w, w);
    s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
    out[i] = s;
  }
  return out;
}

bool Hdf5File::hasAttribute(const std::string& object, const std::string& name) const {
  return exists(object) && H5Aexists_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::int64_t> Hdf5File::readInt64ArrayAttribute(const std::string& object, const std::string& name) const {
  if (!hasAttribute(object, name)) throw FileError(path_, "'" + object + "' has no attribute '" + name + "'");
  Handle a{H5Aopen_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  Handle space{H5Aget_space(a.id), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  checkRead(object + "@" + name, static_cast<std::uint64_t>(std::max<hssize_t>(0, n)), sizeof(std::int64_t));
  std::vector<std::int64_t> out(static_cast<std::size_t>(std::max<hssize_t>(0, n)));
  if (n > 0 && H5Aread(a.id, H5T_NATIVE_INT64, out.data()) < 0)
    throw FileError(path_, "cannot read attribute '" + name + "' of '" + object + "'");
  return out;
}

std::vector<std::string> Hdf5File::readStringArrayAttribute(const std::string& object, const std::string& name) const {
  std::vector<std::string> out;
  if (!hasAttribute(object, name)) return out;
  Handle a{H5Aopen_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING || H5Tis_variable_str(type.id) <= 0) return out;
  Handle space{H5Aget_space(a.id), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  checkRead(object + "@" + name, static_cast<std::uint64_t>(std::max<hssize_t>(0, n)),
            sizeof(std::string) + sizeof(char*));
  std::vector<char*> ptrs(static_cast<std::size_t>(std::max<hssize_t>(0, n)), nullptr);
  Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, H5T_VARIABLE);
  H5Tset_cset(mem.id, H5Tget_cset(type.id));
  if (n > 0 && H5Aread(a.id, mem.id, ptrs.data()) < 0)
    throw FileError(path_, "cannot read attribute '" + name + "' of '" + object + "'");
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n > 0) H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, ptrs.data());
  return out;
}

std::string Hdf5File::readStringAttribute(const std::string& object, const std::string& name) const {
  if (H5Aexists_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT) <= 0)
    throw FileError(path_, "'" + object + "' has no attribute '" + name + "'");
  Handle a{H5Aopen_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING)
    throw FileError(path_, "attribute '" + name + "' of '" + object + "' is not a string");
  // One string: H5Aread writes every element, and an array attribute here would overrun `value`.
  Handle space{H5Aget_space(a.id), H5Sclose};
  if (H5Sget_simple_extent_npoints(space.id) != 1)
    throw FileError(path_, "attribute '" + name + "' of '" + object + "' is not a single string");
  if (H5Tis_variable_str(type.id) > 0) {
    Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    char* value = nullptr;
    if (H5Aread(a.id, mem.id, &value) < 0) throw FileError(path_, "cannot read attribute '" + name + "'");
    std::string s = value ? value : "";
    H5free_memory(value);
    return s;
  }
  const std::size_t n = H5Tget_size(type.id);
  std::string s(n, '\0');
  if (H5Aread(a.id, type.id, s.data()) < 0) throw FileError(path_, "cannot read attribute '" + name + "'");
  s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
  return s;
}

} // namespace atlascope
