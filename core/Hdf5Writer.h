#pragma once
// Writes HDF5 files atomically: everything goes to a temporary file beside the target, which
// replaces the target only in commit(). A writer destroyed without commit() removes its temp
// file, so an interrupted write never leaves a half file under the real name.
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

enum class H5Type { Float32, Float64, Int8, Int16, Int32, Int64, UInt8 };

class Hdf5Writer {
public:
  explicit Hdf5Writer(const std::string& path);
  // Edits a copy of `source` that replaces `path` on commit() (the source is never modified,
  // unless it is `path` itself and replaceSource says so: an in-place edit that is still atomic).
  struct CopyOf {
    std::string source;
    bool replaceSource = false;
  };
  Hdf5Writer(const std::string& path, const CopyOf& copy);
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  void createGroup(const std::string& path);
  bool exists(const std::string& path) const;
  void remove(const std::string& path); // a dataset or group, if present
  // Renames a dataset or group (a link move: no data is copied); `to`'s parent group must exist.
  void move(const std::string& from, const std::string& to);
  // A fixed-shape dataset (optionally chunked + gzip level `gzip` when > 0).
  void writeArray(const std::string& path, H5Type type, const std::vector<std::int64_t>& shape, const void* data,
                  std::int64_t chunkRows = 0, int gzip = 0);
  void writeStrings(const std::string& path, const std::vector<std::string>& values);
  // An extendible 1D or 2D dataset (rows grow) to be filled by append().
  void createExtendible(const std::string& path, H5Type type, std::int64_t columns /* 0 for 1D */,
                        std::int64_t chunkRows, int gzip = 0);
  void append(const std::string& path, const void* data, std::int64_t rows);
  // A fixed-shape 2D dataset with the given chunk shape, filled block by block by writeBlock().
  void createChunked2D(const std::string& path, H5Type type, std::int64_t rows, std::int64_t columns,
                       std::int64_t chunkRows, std::int64_t chunkColumns);
  // data: rows x columns, row-major, written at (row, column) of a 2D dataset.
  void writeBlock(const std::string& path, std::int64_t row, std::int64_t column, std::int64_t rows,
                  std::int64_t columns, const void* data);
  void setStringAttribute(const std::string& object, const std::string& name, const std::string& value);
  // Attribute setters replace an attribute of the same name.
  void setStringArrayAttribute(const std::string& object, const std::string& name,
                               const std::vector<std::string>& values);
  void setInt64ArrayAttribute(const std::string& object, const std::string& name,
                              const std::vector<std::int64_t>& values);
  void setBoolAttribute(const std::string& object, const std::string& name, bool value);

  // Closes the file and moves it into place.
  void commit();
  const std::string& path() const { return path_; }
  const std::string& tempPath() const { return tmp_; }

private:
  void open(bool create);
  std::string path_, tmp_;
  long id_ = -1;
};

} // namespace atlascope
