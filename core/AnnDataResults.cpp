#include "core/AnnDataResults.h"

#include "core/AtomicFile.h"
#include "core/Error.h"
#include "core/Hdf5File.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace atlascope {

namespace {
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

void copyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw FileError(from, "cannot open file");
  std::ofstream out(to, std::ios::binary);
  if (!out) throw FileError(to, "cannot create the copy (is the folder writable?)");
  out << in.rdbuf();
  if (!out) throw FileError(to, "cannot write the copy (disk full?)");
}

hid_t utf8() {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void setString(hid_t obj, const char* name, const std::string& value) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  Handle type{utf8(), H5Tclose};
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle a{H5Acreate2(obj, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  const char* p = value.c_str();
  H5Awrite(a.id, type.id, &p);
}

void writeStrings(hid_t parent, const std::string& name, const std::vector<std::string>& values) {
  Handle type{utf8(), H5Tclose};
  const hsize_t n = values.size();
  Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Handle ds{H5Dcreate2(parent, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n) H5Dwrite(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
  setString(ds.id, "encoding-type", "string-array");
  setString(ds.id, "encoding-version", "0.2.0");
}

void removeIfExists(hid_t parent, const std::string& name) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(parent, name.c_str(), H5P_DEFAULT);
}

std::vector<std::string> readStringArrayAttribute(hid_t obj, const char* name) {
  std::vector<std::string> out;
  if (H5Aexists(obj, name) <= 0) return out;
  Handle a{H5Aopen(obj, name, H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING) return out; // an empty float array when no columns
  Handle space{H5Aget_space(a.id), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  if (H5Tis_variable_str(type.id) > 0) {
    std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
    Handle mem{utf8(), H5Tclose};
    H5Aread(a.id, mem.id, ptrs.data());
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, ptrs.data());
  }
  return out;
}

void setStringArrayAttribute(hid_t obj, const char* name, const std::vector<std::string>& values) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  Handle type{utf8(), H5Tclose};
  const hsize_t n = values.size();
  Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Handle a{H5Acreate2(obj, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n) H5Awrite(a.id, type.id, ptrs.data());
}

std::string hex(const std::array<std::uint8_t, 3>& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}
} // namespace

void writeResultsToCopy(const std::string& source, const std::string& target, const std::vector<CategoricalColumn>& obs,
                        const std::vector<ObsmArray>& obsm) {
  if (source == target) throw FileError(target, "results go into a copy: the target must differ from the source");
  std::int64_t rows = 0;
  {
    Hdf5File f(source);
    if (!f.exists("/obs")) throw FileError(source, "not an AnnData file (no /obs)");
    const std::string index = f.hasAttribute("/obs", "_index") ? f.readStringAttribute("/obs", "_index") : "_index";
    if (!f.exists("/obs/" + index)) throw FileError(source, "obs has no index dataset '" + index + "'");
    rows = f.shape("/obs/" + index)[0];
  }
  for (const auto& c : obs)
    if (static_cast<std::int64_t>(c.codes.size()) != rows)
      throw Error("column '" + c.name + "' has " + std::to_string(c.codes.size()) + " values for " + std::to_string(rows) + " cells");
  for (const auto& m : obsm)
    if (m.columns <= 0 || static_cast<std::int64_t>(m.values.size()) != rows * m.columns)
      throw Error("obsm '" + m.key + "' does not have " + std::to_string(rows) + " rows");

  const std::string temp = temporaryPathFor(target);
  copyFile(source, temp);
  bool ok = false;
  {
    Handle file{H5Fopen(temp.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose};
    if (file.id < 0) {
      std::remove(temp.c_str());
      throw FileError(source, "cannot open the copy for writing");
    }
    Handle obsGroup{H5Gopen2(file.id, "/obs", H5P_DEFAULT), H5Gclose};
    std::vector<std::string> order = readStringArrayAttribute(obsGroup.id, "column-order");
    if (H5Lexists(file.id, "/uns", H5P_DEFAULT) <= 0) {
      Handle g{H5Gcreate2(file.id, "/uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
      setString(g.id, "encoding-type", "dict");
      setString(g.id, "encoding-version", "0.1.0");
    }
    Handle uns{H5Gopen2(file.id, "/uns", H5P_DEFAULT), H5Gclose};
    for (const auto& c : obs) {
      removeIfExists(obsGroup.id, c.name);
      Handle g{H5Gcreate2(obsGroup.id, c.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
      setString(g.id, "encoding-type", "categorical");
      setString(g.id, "encoding-version", "0.2.0");
      {
        Handle type{H5Tenum_create(H5T_NATIVE_INT8), H5Tclose};
        std::int8_t f = 0, t = 1;
        H5Tenum_insert(type.id, "FALSE", &f);
        H5Tenum_insert(type.id, "TRUE", &t);
        Handle space{H5Screate(H5S_SCALAR), H5Sclose};
        Handle a{H5Acreate2(g.id, "ordered", type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
        H5Awrite(a.id, type.id, &f);
      }
      writeStrings(g.id, "categories", c.categories);
      const hsize_t n = c.codes.size();
      Handle space{H5Screate_simple(1, &n, nullptr), H5Sclose};
      // anndata stores codes in the smallest signed type that holds them.
      const bool small = c.categories.size() < 127;
      Handle ds{H5Dcreate2(g.id, "codes", small ? H5T_STD_I8LE : H5T_STD_I32LE, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
      if (small) {
        std::vector<std::int8_t> c8(c.codes.begin(), c.codes.end());
        H5Dwrite(ds.id, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, c8.data());
      } else {
        H5Dwrite(ds.id, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.codes.data());
      }
      setString(ds.id, "encoding-type", "array");
      setString(ds.id, "encoding-version", "0.2.0");
      if (std::find(order.begin(), order.end(), c.name) == order.end()) order.push_back(c.name);
      if (!c.colours.empty()) {
        std::vector<std::string> hexes;
        for (const auto& col : c.colours) hexes.push_back(hex(col));
        removeIfExists(uns.id, c.name + "_colors");
        writeStrings(uns.id, c.name + "_colors", hexes);
      }
    }
    setStringArrayAttribute(obsGroup.id, "column-order", order);
    if (!obsm.empty()) {
      if (H5Lexists(file.id, "/obsm", H5P_DEFAULT) <= 0) {
        Handle g{H5Gcreate2(file.id, "/obsm", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
        setString(g.id, "encoding-type", "dict");
        setString(g.id, "encoding-version", "0.1.0");
      }
      Handle g{H5Gopen2(file.id, "/obsm", H5P_DEFAULT), H5Gclose};
      for (const auto& m : obsm) {
        removeIfExists(g.id, m.key);
        const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(m.columns)};
        Handle space{H5Screate_simple(2, dims, nullptr), H5Sclose};
        Handle ds{H5Dcreate2(g.id, m.key.c_str(), H5T_IEEE_F32LE, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
        H5Dwrite(ds.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.values.data());
        setString(ds.id, "encoding-type", "array");
        setString(ds.id, "encoding-version", "0.2.0");
      }
    }
    ok = H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0;
  }
  if (!ok) {
    std::remove(temp.c_str());
    throw FileError(target, "cannot write the results (disk full?)");
  }
  moveIntoPlace(temp, target);
}

void writeLabelsCsv(const std::string& path, const std::vector<std::string>& ids, const std::vector<CategoricalColumn>& columns) {
  std::ostringstream out;
  auto quoted = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  out << "cell";
  for (const auto& c : columns) out << "," << quoted(c.name);
  out << "\n";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out << quoted(ids[i]);
    for (const auto& c : columns) {
      const std::int32_t code = c.codes[i];
      out << "," << (code >= 0 ? quoted(c.categories[static_cast<std::size_t>(code)]) : std::string());
    }
    out << "\n";
  }
  const std::string s = out.str();
  writeFileAtomically(path, s.data(), s.size());
}

} // namespace atlascope
