#pragma once
// Small AnnData files written with core's Hdf5Writer, good and deliberately broken: the seeds of
// the AnnData fuzz target (tests/fuzz/make_h5ad_seeds.cpp) and the inputs of the regression tests
// for issue 14's defects (a categorical code past its categories, X claiming 480 x 2^40, ...).
#include "core/AnnDataResults.h"
#include "core/Hdf5Writer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace atlascope::test {

enum class AnnDataCase {
  Dense,              // dense X, categorical section and subclass, obsm spatial + ccf
  Csr,                // CSR X
  Csc,                // CSC X
  Legacy07,           // anndata 0.7: integer codes in obs, names under obs/__categories
  CodePastCategories, // subclass code 3 with 3 categories (convert crashed: SIGSEGV)
  HugeDenseX,         // X declared 6 x 2^40 (convert hung)
  HugeSparseX,        // CSR X whose shape attribute says 6 x 2^40
  IndptrDecreasing,   // CSR indptr 0 2 1 ...
  IndexPastColumns,   // CSR indices reach column 4 of 4
  ShortObsm,          // obsm['spatial'] with 5 rows for 6 cells
};

inline void writeAnnData(const std::string& path, AnnDataCase c) {
  const std::int64_t n = 6, g = 4;
  Hdf5Writer w(path);
  w.setStringAttribute("/", "encoding-type", "anndata");
  w.setStringAttribute("/", "encoding-version", "0.1.0");
  for (const char* grp : {"/obsm", "/uns", "/layers"}) {
    w.createGroup(grp);
    setAnnDataEncoding(w, grp, "dict", "0.1.0");
  }
  for (const char* grp : {"/obs", "/var"}) {
    w.createGroup(grp);
    setAnnDataEncoding(w, grp, "dataframe");
  }
  w.writeStrings("/obs/cell_label", {"c0", "c1", "c2", "c3", "c4", "c5"});
  w.setStringAttribute("/obs", "_index", "cell_label");
  w.writeStrings("/var/gene_symbol", {"Gad1", "Slc17a7", "Pvalb", "Sst"});
  w.setStringAttribute("/var", "_index", "gene_symbol");
  const std::vector<std::int32_t> sections{0, 0, 0, 1, 1, 1};
  std::vector<std::int32_t> types{0, 1, 2, 0, -1, 2};
  if (c == AnnDataCase::CodePastCategories) types[4] = 3;
  if (c == AnnDataCase::Legacy07) {
    const std::vector<std::int8_t> s8(sections.begin(), sections.end()), t8(types.begin(), types.end());
    w.writeArray("/obs/brain_section_label", H5Type::Int8, {n}, s8.data());
    w.writeArray("/obs/subclass", H5Type::Int8, {n}, t8.data());
    w.createGroup("/obs/__categories");
    w.writeStrings("/obs/__categories/brain_section_label", {"s1", "s2"});
    w.writeStrings("/obs/__categories/subclass", {"L2/3 IT", "Pvalb", "Sst"});
  } else {
    writeAnnDataCategorical(w, "/obs/brain_section_label", sections, {"s1", "s2"});
    writeAnnDataCategorical(w, "/obs/subclass", types, {"L2/3 IT", "Pvalb", "Sst"});
  }
  const std::int64_t spatialRows = c == AnnDataCase::ShortObsm ? n - 1 : n;
  std::vector<float> xy, ccf;
  for (std::int64_t i = 0; i < n; ++i) {
    xy.insert(xy.end(), {100.0f * static_cast<float>(i), 50.0f * static_cast<float>(i % 3)});
    ccf.insert(ccf.end(), {5000.0f + static_cast<float>(i), 3000.0f, 5700.0f - static_cast<float>(i)});
  }
  w.writeArray("/obsm/spatial", H5Type::Float32, {spatialRows, 2}, xy.data());
  w.writeArray("/obsm/ccf", H5Type::Float32, {n, 3}, ccf.data());
  // The expression: row i has gene i % 4 (value i + 1) and gene (i + 1) % 4 (value 0.5).
  std::vector<float> dense(static_cast<std::size_t>(n * g), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    dense[static_cast<std::size_t>(i * g + i % g)] = static_cast<float>(i + 1);
    dense[static_cast<std::size_t>(i * g + (i + 1) % g)] = 0.5f;
  }
  auto sparse = [&](bool csr, std::int64_t shapeColumns, bool decreasing, bool pastEnd) {
    std::vector<std::int64_t> indptr{0};
    std::vector<std::int32_t> indices;
    std::vector<float> data;
    const std::int64_t major = csr ? n : g, minor = csr ? g : n;
    for (std::int64_t a = 0; a < major; ++a) {
      for (std::int64_t b = 0; b < minor; ++b) {
        const float v = csr ? dense[static_cast<std::size_t>(a * g + b)] : dense[static_cast<std::size_t>(b * g + a)];
        if (v == 0.0f) continue;
        indices.push_back(static_cast<std::int32_t>(b));
        data.push_back(v);
      }
      indptr.push_back(static_cast<std::int64_t>(indices.size()));
    }
    if (decreasing) std::swap(indptr[1], indptr[2]);
    if (pastEnd) indices[3] = static_cast<std::int32_t>(minor);
    w.createGroup("/X");
    setAnnDataEncoding(w, "/X", csr ? "csr_matrix" : "csc_matrix", "0.1.0");
    w.setInt64ArrayAttribute("/X", "shape", {n, shapeColumns});
    w.writeArray("/X/indptr", H5Type::Int64, {static_cast<std::int64_t>(indptr.size())}, indptr.data());
    w.writeArray("/X/indices", H5Type::Int32, {static_cast<std::int64_t>(indices.size())}, indices.data());
    w.writeArray("/X/data", H5Type::Float32, {static_cast<std::int64_t>(data.size())}, data.data());
  };
  switch (c) {
  case AnnDataCase::Csr: sparse(true, g, false, false); break;
  case AnnDataCase::Csc: sparse(false, g, false, false); break;
  case AnnDataCase::HugeSparseX: sparse(true, std::int64_t{1} << 40, false, false); break;
  case AnnDataCase::IndptrDecreasing: sparse(true, g, true, false); break;
  case AnnDataCase::IndexPastColumns: sparse(true, g, false, true); break;
  case AnnDataCase::HugeDenseX:
    // Declared, never written: HDF5 stores no chunk, so the file stays a few kB.
    w.createChunked2D("/X", H5Type::Float32, n, std::int64_t{1} << 40, 1, 1024);
    break;
  default: w.writeArray("/X", H5Type::Float32, {n, g}, dense.data()); break;
  }
  w.commit();
}

} // namespace atlascope::test
