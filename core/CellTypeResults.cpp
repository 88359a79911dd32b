#include "core/CellTypeResults.h"

#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"

#include <algorithm>
#include <cmath>

namespace atlascope {

namespace {
// X := log1p(X), the input kept as layers/counts (CellTypeResults.h).
void logExpressionInCopy(const Hdf5File& src, Hdf5Writer& w) {
  if (!src.exists("/X")) throw FileError(src.path(), "has no expression matrix X");
  if (w.exists("/layers/counts"))
    throw FileError(src.path(), "already has layers['counts']: type its counts with --layer counts instead");
  if (!w.exists("/layers")) {
    w.createGroup("/layers");
    setAnnDataEncoding(w, "/layers", "dict", "0.1.0");
  }
  const bool sparse = src.exists("/X/data");
  if (sparse && !src.hasAttribute("/X", "encoding-type"))
    throw FileError(src.path(), "has a sparse X of an older layout: convert it first (atlascope-cli convert)");
  w.move("/X", "/layers/counts");
  if (sparse) {
    w.createGroup("/X");
    for (const char* a : {"encoding-type", "encoding-version"})
      w.setStringAttribute("/X", a, src.readStringAttribute("/X", a));
    w.setInt64ArrayAttribute("/X", "shape", src.readInt64ArrayAttribute("/X", "shape"));
    for (const char* part : {"/X/indptr", "/X/indices"}) {
      const auto v = src.readInt64(part);
      w.writeArray(part, H5Type::Int64, {static_cast<std::int64_t>(v.data.size())}, v.data.data());
    }
    auto data = src.readFloat("/X/data").data;
    for (float& v : data) v = std::log1p(v);
    w.writeArray("/X/data", H5Type::Float32, {static_cast<std::int64_t>(data.size())}, data.data());
    return;
  }
  const auto shape = src.shape("/X");
  if (shape.size() != 2) throw FileError(src.path(), "X is not a 2D matrix");
  const std::int64_t rows = shape[0], genes = std::max<std::int64_t>(1, shape[1]);
  const std::int64_t slab = std::max<std::int64_t>(1, (16ll << 20) / (4 * genes));
  w.createExtendible("/X", H5Type::Float32, shape[1], std::max<std::int64_t>(64, (1 << 20) / (4 * genes)));
  for (std::int64_t r = 0; r < rows; r += slab) {
    auto block = src.readFloatRows("/X", r, std::min(slab, rows - r));
    for (float& v : block.data) v = std::log1p(v);
    w.append("/X", block.data.data(), std::min(slab, rows - r));
  }
  setAnnDataEncoding(w, "/X", "array");
}
} // namespace

void writeCellTypesToCopy(const std::string& source, const std::string& target, const CellTypeColumn& c,
                          const ObsmArray& pcs, bool logExpression) {
  if (c.markers.size() != c.types.size())
    throw Error("cell types: " + std::to_string(c.markers.size()) + " marker lists for " +
                std::to_string(c.types.size()) + " types");
  // Not writeResultsToCopy: it has no dicts of strings for uns, and one copy takes one commit.
  const ObsLayout layout = readObsLayoutForResults(source);
  const std::int64_t rows = layout.rows;
  std::vector<std::string> order = layout.columnOrder;
  if (source == target) throw FileError(target, "results go into a copy: the target must differ from the source");
  if (static_cast<std::int64_t>(c.codes.size()) != rows)
    throw Error("column '" + c.name + "' has " + std::to_string(c.codes.size()) + " values for " +
                std::to_string(rows) + " cells");
  if (pcs.columns > 0 && static_cast<std::int64_t>(pcs.values.size()) != rows * pcs.columns)
    throw Error("obsm '" + pcs.key + "' does not have " + std::to_string(rows) + " rows");

  Hdf5Writer w(target, Hdf5Writer::CopyOf{source});
  for (const char* g : {"/uns", "/obsm"})
    if (!w.exists(g)) {
      w.createGroup(g);
      setAnnDataEncoding(w, g, "dict", "0.1.0");
    }
  const std::string col = "/obs/" + c.name;
  w.remove(col);
  writeAnnDataCategorical(w, col, c.codes, c.types, c.colours);
  if (std::find(order.begin(), order.end(), c.name) == order.end()) order.push_back(c.name);
  w.setStringArrayAttribute("/obs", "column-order", order);
  const std::string markers = "/uns/" + c.name + "_markers";
  w.remove(markers);
  w.createGroup(markers);
  setAnnDataEncoding(w, markers, "dict", "0.1.0");
  for (std::size_t t = 0; t < c.types.size(); ++t) {
    w.writeStrings(markers + "/" + c.types[t], c.markers[t]);
    setAnnDataEncoding(w, markers + "/" + c.types[t], "string-array");
  }
  if (pcs.columns > 0) {
    const std::string p = "/obsm/" + pcs.key;
    w.remove(p);
    w.writeArray(p, H5Type::Float32, {rows, pcs.columns}, pcs.values.data());
    setAnnDataEncoding(w, p, "array");
  }
  if (logExpression) logExpressionInCopy(Hdf5File(source), w);
  w.commit();
}

std::map<std::string, std::vector<std::string>> readTypeMarkers(const std::string& path, const std::string& column) {
  std::map<std::string, std::vector<std::string>> out;
  Hdf5File f(path);
  const std::string g = "/uns/" + column + "_markers";
  if (!f.exists(g)) return out;
  for (const auto& type : f.children(g)) out[type] = f.readStrings(g + "/" + type);
  return out;
}

} // namespace atlascope
