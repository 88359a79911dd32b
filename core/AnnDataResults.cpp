#include "core/AnnDataResults.h"

#include "core/AtomicFile.h"
#include "core/Csv.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/Palette.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace atlascope {

namespace {
void ensureDict(Hdf5Writer& w, const std::string& group) {
  if (w.exists(group)) return;
  w.createGroup(group);
  setAnnDataEncoding(w, group, "dict", "0.1.0");
}
} // namespace

void setAnnDataEncoding(Hdf5Writer& w, const std::string& path, const char* type, const char* version) {
  w.setStringAttribute(path, "encoding-type", type);
  w.setStringAttribute(path, "encoding-version", version);
}

void writeAnnDataCategorical(Hdf5Writer& w, const std::string& group, const std::vector<std::int32_t>& codes,
                             const std::vector<std::string>& categories,
                             const std::vector<std::array<std::uint8_t, 3>>& colours) {
  const auto rows = static_cast<std::int64_t>(codes.size());
  w.createGroup(group);
  setAnnDataEncoding(w, group, "categorical");
  w.setBoolAttribute(group, "ordered", false);
  w.writeStrings(group + "/categories", categories);
  setAnnDataEncoding(w, group + "/categories", "string-array");
  if (categories.size() < 127) {
    const std::vector<std::int8_t> c8(codes.begin(), codes.end());
    w.writeArray(group + "/codes", H5Type::Int8, {rows}, c8.data());
  } else {
    w.writeArray(group + "/codes", H5Type::Int32, {rows}, codes.data());
  }
  setAnnDataEncoding(w, group + "/codes", "array");
  if (colours.empty()) return;
  std::vector<std::string> hexes;
  for (const auto& c : colours) hexes.push_back(hexColour(c));
  const std::string key = "/uns/" + group.substr(group.rfind('/') + 1) + "_colors";
  w.remove(key);
  w.writeStrings(key, hexes);
  setAnnDataEncoding(w, key, "string-array");
}

void writeUnsStrings(Hdf5Writer& w, const UnsStringArray& array) {
  std::string path = "/uns";
  ensureDict(w, path);
  std::size_t from = 0;
  for (std::size_t slash = array.key.find('/'); slash != std::string::npos; slash = array.key.find('/', from)) {
    path += "/" + array.key.substr(from, slash - from);
    ensureDict(w, path);
    from = slash + 1;
  }
  path += "/" + array.key.substr(from);
  w.remove(path);
  w.writeStrings(path, array.values);
  setAnnDataEncoding(w, path, "string-array");
}

ObsLayout readObsLayoutForResults(const std::string& source) {
  Hdf5File f(source);
  if (!f.exists("/obs")) throw FileError(source, "not an AnnData file (no /obs)");
  const std::string index = dataframeIndexName(f, "/obs");
  if (f.isCompoundMember("/obs/" + index))
    throw FileError(source, "is an anndata < 0.7 file (obs is one compound table); results are written into current "
                            "AnnData files only: convert it first (atlascope-cli convert " +
                                source + " --out NEW.h5ad)");
  if (!f.exists("/obs/" + index)) throw FileError(source, "obs has no index dataset '" + index + "'");
  return {f.shape("/obs/" + index)[0], f.readStringArrayAttribute("/obs", "column-order")};
}

void writeResultsToCopy(const std::string& source, const std::string& target, const std::vector<CategoricalColumn>& obs,
                        const std::vector<ObsmArray>& obsm, const std::vector<UnsIntArray>& uns,
                        const std::vector<UnsStringArray>& unsStrings) {
  if (source == target) throw FileError(target, "results go into a copy: the target must differ from the source");
  const ObsLayout layout = readObsLayoutForResults(source);
  const std::int64_t rows = layout.rows;
  std::vector<std::string> order = layout.columnOrder;
  for (const auto& c : obs)
    if (static_cast<std::int64_t>(c.codes.size()) != rows)
      throw Error("column '" + c.name + "' has " + std::to_string(c.codes.size()) + " values for " +
                  std::to_string(rows) + " cells");
  for (const auto& m : obsm)
    if (m.columns <= 0 || static_cast<std::int64_t>(m.values.size()) != rows * m.columns)
      throw Error("obsm '" + m.key + "' does not have " + std::to_string(rows) + " rows");

  Hdf5Writer w(target, Hdf5Writer::CopyOf{source});
  if (!obs.empty() || !uns.empty() || !unsStrings.empty()) ensureDict(w, "/uns");
  for (const auto& u : unsStrings) writeUnsStrings(w, u);
  for (const auto& u : uns) {
    w.remove("/uns/" + u.key);
    w.writeArray("/uns/" + u.key, H5Type::Int32, {static_cast<std::int64_t>(u.values.size())}, u.values.data());
    setAnnDataEncoding(w, "/uns/" + u.key, "array");
  }
  for (const auto& c : obs) {
    const std::string g = "/obs/" + c.name;
    w.remove(g);
    writeAnnDataCategorical(w, g, c.codes, c.categories, c.colours);
    if (std::find(order.begin(), order.end(), c.name) == order.end()) order.push_back(c.name);
  }
  if (!obs.empty()) w.setStringArrayAttribute("/obs", "column-order", order);
  if (!obsm.empty()) ensureDict(w, "/obsm");
  for (const auto& m : obsm) {
    const std::string p = "/obsm/" + m.key;
    w.remove(p);
    w.writeArray(p, H5Type::Float32, {rows, m.columns}, m.values.data());
    setAnnDataEncoding(w, p, "array");
  }
  w.commit();
}

void writeLabelsCsv(const std::string& path, const std::vector<std::string>& ids,
                    const std::vector<CategoricalColumn>& columns) {
  std::ostringstream out;
  out << "cell";
  for (const auto& c : columns) out << "," << csvField(c.name);
  out << "\n";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out << csvField(ids[i]);
    for (const auto& c : columns) {
      const std::int32_t code = c.codes[i];
      out << "," << (code >= 0 ? csvField(c.categories[static_cast<std::size_t>(code)]) : std::string());
    }
    out << "\n";
  }
  const std::string s = out.str();
  writeFileAtomically(path, s.data(), s.size());
}

} // namespace atlascope
