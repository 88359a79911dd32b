#include "core/Hdf5Writer.h"

#include "core/AtomicFile.h"
#include "core/Error.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <hdf5.h>

namespace atlascope {

namespace {
hid_t nativeOf(H5Type t) {
  switch (t) {
  case H5Type::Float32: return H5T_NATIVE_FLOAT;
  case H5Type::Float64: return H5T_NATIVE_DOUBLE;
  case H5Type::Int8: return H5T_NATIVE_INT8;
  case H5Type::Int16: return H5T_NATIVE_INT16;
  case H5Type::Int32: return H5T_NATIVE_INT32;
  case H5Type::Int64: return H5T_NATIVE_INT64;
  case H5Type::UInt8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

hid_t utf8VarString() {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}
} // namespace

Hdf5Writer::Hdf5Writer(const std::string& path) : path_(path) { open(true); }

Hdf5Writer::Hdf5Writer(const std::string& path, const CopyOf& copy) : path_(path) {
  if (copy.source == path && !copy.replaceSource)
    throw FileError(path, "edits go into a copy: the target must differ from the source");
  tmp_ = temporaryPathFor(path);
  {
    std::ifstream in(copy.source, std::ios::binary);
    if (!in) throw FileError(copy.source, "cannot open file");
    std::ofstream out(tmp_, std::ios::binary);
    if (!out) throw FileError(path, "cannot create the copy (is the folder writable?)");
    out << in.rdbuf();
    if (!out) {
      std::remove(tmp_.c_str());
      throw FileError(path, "cannot write the copy (disk full?)");
    }
  }
  open(false);
}

void Hdf5Writer::open(bool create) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (create) tmp_ = temporaryPathFor(path_);
  const hid_t f = create ? H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                         : H5Fopen(tmp_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) {
    if (!create) std::remove(tmp_.c_str());
    throw FileError(path_,
                    create ? "cannot create the file (is the folder writable?)" : "cannot open the copy for writing");
  }
  id_ = f;
}

bool Hdf5Writer::exists(const std::string& path) const {
  return H5Lexists(static_cast<hid_t>(id_), path.c_str(), H5P_DEFAULT) > 0;
}

void Hdf5Writer::remove(const std::string& path) {
  if (exists(path)) H5Ldelete(static_cast<hid_t>(id_), path.c_str(), H5P_DEFAULT);
}

void Hdf5Writer::move(const std::string& from, const std::string& to) {
  if (H5Lmove(static_cast<hid_t>(id_), from.c_str(), static_cast<hid_t>(id_), to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
    throw FileError(path_, "cannot move " + from + " to " + to);
}

Hdf5Writer::~Hdf5Writer() {
  if (id_ >= 0) {
    H5Fclose(static_cast<hid_t>(id_));
    std::remove(tmp_.c_str());
  }
}

void Hdf5Writer::commit() {
  if (id_ < 0) return;
  const herr_t rc = H5Fclose(static_cast<hid_t>(id_));
  id_ = -1;
  if (rc < 0) {
    std::remove(tmp_.c_str());
    throw FileError(path_, "cannot finish writing (disk full?)");
  }
  moveIntoPlace(tmp_, path_);
}

void Hdf5Writer::createGroup(const std::string& path) {
  Handle g{H5Gcreate2(static_cast<hid_t>(id_), path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
  if (g.id < 0) throw FileError(path_, "cannot create group '" + path + "'");
}

void Hdf5Writer::writeArray(const std::string& path, H5Type type, const std::vector<std::int64_t>& shape,
                            const void* data, std::int64_t chunkRows, int gzip) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  Handle plist{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  if (chunkRows > 0 && !dims.empty() && dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(dims[0], static_cast<hsize_t>(chunkRows));
    H5Pset_chunk(plist.id, static_cast<int>(chunk.size()), chunk.data());
    if (gzip > 0) {
      H5Pset_shuffle(plist.id);
      H5Pset_deflate(plist.id, static_cast<unsigned>(gzip));
    }
  }
  Handle ds{
      H5Dcreate2(static_cast<hid_t>(id_), path.c_str(), nativeOf(type), space.id, H5P_DEFAULT, plist.id, H5P_DEFAULT),
      H5Dclose};
  if (ds.id < 0) throw FileError(path_, "cannot create dataset '" + path + "'");
  if (H5Dwrite(ds.id, nativeOf(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw FileError(path_, "cannot write dataset '" + path + "' (disk full?)");
}

void Hdf5Writer::writeStrings(const std::string& path, const std::vector<std::string>& values) {
  const hsize_t n = values.size();
  Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Handle type{utf8VarString(), H5Tclose};
  Handle ds{H5Dcreate2(static_cast<hid_t>(id_), path.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose};
  if (ds.id < 0) throw FileError(path_, "cannot create dataset '" + path + "'");
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& s : values) ptrs.push_back(s.c_str());
  if (n > 0 && H5Dwrite(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    throw FileError(path_, "cannot write dataset '" + path + "'");
}

void Hdf5Writer::createExtendible(const std::string& path, H5Type type, std::int64_t columns, std::int64_t chunkRows,
                                  int gzip) {
  const int rank = columns > 0 ? 2 : 1;
  hsize_t dims[2] = {0, static_cast<hsize_t>(columns)};
  hsize_t maxDims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(columns)};
  hsize_t chunk[2] = {static_cast<hsize_t>(std::max<std::int64_t>(1, chunkRows)), static_cast<hsize_t>(columns)};
  Handle space{H5Screate_simple(rank, dims, maxDims), H5Sclose};
  Handle plist{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_chunk(plist.id, rank, chunk);
  if (gzip > 0) {
    H5Pset_shuffle(plist.id);
    H5Pset_deflate(plist.id, static_cast<unsigned>(gzip));
  }
  Handle ds{
      H5Dcreate2(static_cast<hid_t>(id_), path.c_str(), nativeOf(type), space.id, H5P_DEFAULT, plist.id, H5P_DEFAULT),
      H5Dclose};
  if (ds.id < 0) throw FileError(path_, "cannot create dataset '" + path + "'");
}

void Hdf5Writer::append(const std::string& path, const void* data, std::int64_t rows) {
  if (rows <= 0) return;
  Handle ds{H5Dopen2(static_cast<hid_t>(id_), path.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FileError(path_, "no dataset '" + path + "'");
  Handle fileType{H5Dget_type(ds.id), H5Tclose};
  Handle memType{H5Tget_native_type(fileType.id, H5T_DIR_ASCEND), H5Tclose};
  Handle space{H5Dget_space(ds.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  hsize_t newDims[2] = {dims[0] + static_cast<hsize_t>(rows), dims[1]};
  if (H5Dset_extent(ds.id, newDims) < 0) throw FileError(path_, "cannot extend dataset '" + path + "'");
  Handle fspace{H5Dget_space(ds.id), H5Sclose};
  hsize_t start[2] = {dims[0], 0};
  hsize_t count[2] = {static_cast<hsize_t>(rows), dims[1]};
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start, nullptr, count, nullptr);
  Handle mspace{H5Screate_simple(rank, count, nullptr), H5Sclose};
  if (H5Dwrite(ds.id, memType.id, mspace.id, fspace.id, H5P_DEFAULT, data) < 0)
    throw FileError(path_, "cannot write to dataset '" + path + "' (disk full?)");
}

void Hdf5Writer::createChunked2D(const std::string& path, H5Type type, std::int64_t rows, std::int64_t columns,
                                 std::int64_t chunkRows, std::int64_t chunkColumns) {
  hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(columns)};
  hsize_t chunk[2] = {
      static_cast<hsize_t>(std::clamp<std::int64_t>(chunkRows, 1, std::max<std::int64_t>(1, rows))),
      static_cast<hsize_t>(std::clamp<std::int64_t>(chunkColumns, 1, std::max<std::int64_t>(1, columns)))};
  Handle space{H5Screate_simple(2, dims, nullptr), H5Sclose};
  Handle plist{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_chunk(plist.id, 2, chunk);
  Handle ds{
      H5Dcreate2(static_cast<hid_t>(id_), path.c_str(), nativeOf(type), space.id, H5P_DEFAULT, plist.id, H5P_DEFAULT),
      H5Dclose};
  if (ds.id < 0) throw FileError(path_, "cannot create dataset '" + path + "'");
}

void Hdf5Writer::writeBlock(const std::string& path, std::int64_t row, std::int64_t column, std::int64_t rows,
                            std::int64_t columns, const void* data) {
  if (rows <= 0 || columns <= 0) return;
  Handle ds{H5Dopen2(static_cast<hid_t>(id_), path.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FileError(path_, "no dataset '" + path + "'");
  Handle fileType{H5Dget_type(ds.id), H5Tclose};
  Handle memType{H5Tget_native_type(fileType.id, H5T_DIR_ASCEND), H5Tclose};
  Handle fspace{H5Dget_space(ds.id), H5Sclose};
  hsize_t start[2] = {static_cast<hsize_t>(row), static_cast<hsize_t>(column)};
  hsize_t count[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(columns)};
  if (H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Sselect_valid(fspace.id) <= 0)
    throw FileError(path_, "block outside dataset '" + path + "'");
  Handle mspace{H5Screate_simple(2, count, nullptr), H5Sclose};
  if (H5Dwrite(ds.id, memType.id, mspace.id, fspace.id, H5P_DEFAULT, data) < 0)
    throw FileError(path_, "cannot write to dataset '" + path + "' (disk full?)");
}

void Hdf5Writer::setStringAttribute(const std::string& object, const std::string& name, const std::string& value) {
  Handle type{utf8VarString(), H5Tclose};
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  if (H5Aexists_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT);
  Handle a{H5Acreate_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), type.id, space.id, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose};
  if (a.id < 0) throw FileError(path_, "cannot set attribute '" + name + "' on '" + object + "'");
  const char* p = value.c_str();
  H5Awrite(a.id, type.id, &p);
}

void Hdf5Writer::setStringArrayAttribute(const std::string& object, const std::string& name,
                                         const std::vector<std::string>& values) {
  if (H5Aexists_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5P_DEFAULT);
  Handle type{utf8VarString(), H5Tclose};
  const hsize_t n = values.size();
  Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Handle a{H5Acreate_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), type.id, space.id, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose};
  if (a.id < 0) throw FileError(path_, "cannot set attribute '" + name + "' on '" + object + "'");
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  if (n > 0) H5Awrite(a.id, type.id, ptrs.data());
}

void Hdf5Writer::setInt64ArrayAttribute(const std::string& object, const std::string& name,
                                        const std::vector<std::int64_t>& values) {
  const hsize_t n = values.size();
  Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Handle a{H5Acreate_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), H5T_STD_I64LE, space.id,
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose};
  if (a.id < 0) throw FileError(path_, "cannot set attribute '" + name + "' on '" + object + "'");
  H5Awrite(a.id, H5T_NATIVE_INT64, values.data());
}

void Hdf5Writer::setBoolAttribute(const std::string& object, const std::string& name, bool value) {
  // numpy/h5py booleans: an enum over int8 (FALSE = 0, TRUE = 1), as anndata writes `ordered`.
  Handle type{H5Tenum_create(H5T_NATIVE_INT8), H5Tclose};
  std::int8_t f = 0, t = 1;
  H5Tenum_insert(type.id, "FALSE", &f);
  H5Tenum_insert(type.id, "TRUE", &t);
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle a{H5Acreate_by_name(static_cast<hid_t>(id_), object.c_str(), name.c_str(), type.id, space.id, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose};
  if (a.id < 0) throw FileError(path_, "cannot set attribute '" + name + "' on '" + object + "'");
  const std::int8_t v = value ? 1 : 0;
  H5Awrite(a.id, type.id, &v);
}

} // namespace atlascope
