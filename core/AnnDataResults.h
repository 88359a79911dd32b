#pragma once
// Results written back into a *copy* of the user's AnnData file (the original is never modified):
// region labels as categorical obs columns with their colours in uns["<name>_colors"],
// embeddings in obsm, so that scanpy/anndata read them unchanged. Atomic: the copy is made and
// edited under a temporary name and renamed into place when complete.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

struct CategoricalColumn {
  std::string name;
  std::vector<std::int32_t> codes; // one per obs row; -1 = missing
  std::vector<std::string> categories;
  std::vector<std::array<std::uint8_t, 3>> colours; // empty: no uns colours
};

struct ObsmArray {
  std::string key;
  std::int64_t columns = 0;
  std::vector<float> values; // obs rows x columns, row-major
};

// A 1D integer array in uns (e.g. uns["regions_k354_parent"]: each region's parent at the next
// coarser k), read by anndata as a numpy array.
struct UnsIntArray {
  std::string key;
  std::vector<std::int32_t> values;
};

// A string array in uns, e.g. uns["region_names"]["regions_k25"] (key "region_names/regions_k25":
// the groups on the way are made as anndata dicts), read by anndata as a numpy array of str.
struct UnsStringArray {
  std::string key;
  std::vector<std::string> values;
};

class Hdf5Writer;

// AnnData's element encodings, shared by the writers (result copies, convert).
void setAnnDataEncoding(Hdf5Writer& w, const std::string& path, const char* type, const char* version = "0.2.0");
// A categorical obs column at `group` (codes in the smallest signed type that holds them, as
// anndata writes them), with its colours in uns["<column>_colors"] when given (uns must exist).
void writeAnnDataCategorical(Hdf5Writer& w, const std::string& group, const std::vector<std::int32_t>& codes,
                             const std::vector<std::string>& categories,
                             const std::vector<std::array<std::uint8_t, 3>>& colours = {});

// What a results copy needs to know of its source before copying it: a current AnnData file
// (older layouts are refused with the convert command to run), its cell count and obs column
// order. Throws FileError naming the source.
struct ObsLayout {
  std::int64_t rows = 0;
  std::vector<std::string> columnOrder;
};
ObsLayout readObsLayoutForResults(const std::string& source);

// Writes (replacing) one uns string array into an open writer, making the dicts on its way.
void writeUnsStrings(Hdf5Writer& w, const UnsStringArray& array);

void writeResultsToCopy(const std::string& source, const std::string& target, const std::vector<CategoricalColumn>& obs,
                        const std::vector<ObsmArray>& obsm, const std::vector<UnsIntArray>& uns = {},
                        const std::vector<UnsStringArray>& unsStrings = {});

// Per-cell labels as CSV: `cell,<name>...` (the obs index when the file has one, else the row).
void writeLabelsCsv(const std::string& path, const std::vector<std::string>& cellIds,
                    const std::vector<CategoricalColumn>& columns);

} // namespace atlascope
