#include "core/GeneStore.h"

#include "core/Error.h"
#include "core/FileSystem.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

namespace atlascope {

namespace fs = std::filesystem;

namespace {
constexpr std::int64_t kChunkCells = 65536;
} // namespace

std::string GeneStore::pathFor(const std::string& data, const std::string& cacheDir) {
  const std::string abs = fs::absolute(data).lexically_normal().string();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(abs));
  return (fs::path(cacheDir) / "genes" / (fs::path(data).filename().string() + "-" + hex + ".h5")).string();
}

GeneStore GeneStore::openOrBuild(const std::string& data, const ColumnOptions& columns, const std::string& cacheDir,
                                 const Progress& progress) {
  GeneStore s;
  s.path_ = pathFor(data, cacheDir);
  const std::string key = fileIdentity(data);
  if (fs::exists(s.path_)) {
    try {
      Hdf5File f(s.path_);
      if (f.readStringAttribute("/", "source") == key) {
        const auto shape = f.readInt64ArrayAttribute("/", "shape");
        if (shape.size() == 2) {
          s.genes_ = shape[0];
          s.cells_ = shape[1];
          return s;
        }
      }
    } catch (const std::exception&) {
      // A damaged or foreign file: made again below.
    }
  }
  const ExpressionSource source(data, columns);
  s.cells_ = source.cells();
  s.genes_ = source.genes();
  if (s.genes_ == 0) throw FileError(data, "has no genes to store");
  fs::create_directories(fs::path(s.path_).parent_path());
  Hdf5Writer out(s.path_);
  out.createChunked2D("/X_by_gene", H5Type::Float32, s.genes_, s.cells_, 1, kChunkCells);
  // Rows in slabs of whole chunks, so each slab fills `genes` chunks completely.
  std::vector<float> rows, transposed;
  for (std::int64_t r = 0; r < s.cells_; r += kChunkCells) {
    const std::int64_t n = std::min(kChunkCells, s.cells_ - r);
    rows.resize(static_cast<std::size_t>(n * s.genes_));
    transposed.resize(rows.size());
    source.readRows(r, n, rows.data());
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t g = 0; g < s.genes_; ++g)
        transposed[static_cast<std::size_t>(g * n + i)] = rows[static_cast<std::size_t>(i * s.genes_ + g)];
    out.writeBlock("/X_by_gene", 0, r, s.genes_, n, transposed.data());
    progress("gene store", r + n, s.cells_);
  }
  out.setStringAttribute("/", "source", key);
  out.setInt64ArrayAttribute("/", "shape", {s.genes_, s.cells_});
  out.commit();
  s.built_ = true;
  return s;
}

std::vector<float> GeneStore::readGene(std::int64_t gene) const {
  if (gene < 0 || gene >= genes_) throw Error("gene index out of range");
  Hdf5File f(path_);
  return f.readFloatRows("/X_by_gene", gene, 1).data;
}

} // namespace atlascope
