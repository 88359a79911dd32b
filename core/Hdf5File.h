#pragma once
// A small RAII reader over the HDF5 C API: what Atlascope needs to read its fixtures, its own
// files and (later) AnnData. Every failure is a FileError naming the file and the object; HDF5's
// own error stack printing is switched off.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atlascope {

template <class T> struct NdArray {
  std::vector<std::int64_t> shape;
  std::vector<T> data;
  std::int64_t size() const {
    std::int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

class Hdf5File {
public:
  explicit Hdf5File(const std::string& path); // read-only
  // Takes ownership of an open HDF5 file id (e.g. an in-memory image from H5LTopen_file_image,
  // which the fuzz target uses); `name` stands for the file in messages.
  static std::unique_ptr<Hdf5File> adopt(long fileId, const std::string& name);
  ~Hdf5File();
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const { return path_; }
  bool exists(const std::string& object) const;
  // Names of a group's direct children, sorted (a compound dataset's members, in their order).
  std::vector<std::string> children(const std::string& group) const;
  std::vector<std::int64_t> shape(const std::string& dataset) const;
  // What a path names: 'g' group, 'd' dataset, 'm' a compound member, 0 nothing (or a link to
  // nothing).
  char kind(const std::string& path) const;
  // A dataset's (or compound member's) element class: 'i' integer (enums too), 'f' float,
  // 's' string, 'c' compound, 'a' array, '?' other.
  char typeClass(const std::string& dataset) const;
  // The most bytes the file can hold once decompressed (its size times deflate's largest ratio):
  // the bound every read sized by a dataset's shape is checked against (MemoryBudget.h).
  std::uint64_t canHold() const;

  // Any stored numeric type, converted by HDF5.
  NdArray<float> readFloat(const std::string& dataset) const;
  NdArray<double> readDouble(const std::string& dataset) const;
  NdArray<std::int64_t> readInt64(const std::string& dataset) const;
  // Rows [begin, begin + count) of a 2D dataset, converted to float.
  NdArray<float> readFloatRows(const std::string& dataset, std::int64_t begin, std::int64_t count) const;
  // Elements [begin, begin + count) of a 1D dataset.
  std::vector<float> readFloatRange(const std::string& dataset, std::int64_t begin, std::int64_t count) const;
  std::vector<std::int64_t> readInt64Range(const std::string& dataset, std::int64_t begin, std::int64_t count) const;
  // A 1D string dataset (variable or fixed length).
  std::vector<std::string> readStrings(const std::string& dataset) const;
  bool hasAttribute(const std::string& object, const std::string& name) const;
  std::vector<std::int64_t> readInt64ArrayAttribute(const std::string& object, const std::string& name) const;
  // A string-array attribute; empty when absent or not strings (anndata writes an empty float
  // array as the column-order of a dataframe without columns).
  std::vector<std::string> readStringArrayAttribute(const std::string& object, const std::string& name) const;
  // A string attribute (variable or fixed length) of a group or dataset.
  std::string readStringAttribute(const std::string& object, const std::string& name) const;
  // Whether `path` names a member of a compound dataset (see Member below).
  bool isCompoundMember(const std::string& path) const {
    Member m;
    return !plainlyExists(path) && compoundMember(path, &m);
  }

private:
  // anndata < 0.7 stored obs/var as one compound dataset: "<dataset>/<member>" then names a
  // member, read like a 1D dataset of its own (exists, children, readDouble, readStrings...).
  struct Member {
    std::string dataset, name;
  };
  bool compoundMember(const std::string& path, Member* out) const;
  bool isCompound(const std::string& dataset) const;
  bool plainlyExists(const std::string& path) const; // a link, not a member
  template <class T> NdArray<T> readMember(const Member& m, long memType) const;
  std::vector<std::string> readMemberStrings(const Member& m) const;
  template <class T> NdArray<T> read(const std::string& dataset, long memType) const;
  template <class T>
  std::vector<T> readRange(const std::string& dataset, std::int64_t begin, std::int64_t count, long memType) const;
  void checkRead(const std::string& dataset, std::uint64_t elements, std::uint64_t elementBytes) const;
  Hdf5File() = default;
  std::string path_;
  long id_ = -1;
};

// The name of an AnnData dataframe's index column: its `_index` attribute; "index" for the
// compound dataframes of anndata < 0.7; "_index" otherwise.
std::string dataframeIndexName(const Hdf5File& f, const std::string& dataframe);

} // namespace atlascope
