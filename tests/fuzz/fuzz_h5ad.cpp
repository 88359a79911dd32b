// AnnData from HDF5 in-memory file images (H5LTopen_file_image): validateAnnData, then what every
// reader does with a file that passed it: the cell table, the expression rows, the obs labels.
#include "core/AnnDataValidation.h"
#include "core/CellTable.h"
#include "core/Hdf5File.h"
#include "tests/fuzz/FuzzSupport.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); // HDF5 prints its error stack otherwise
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  // HDF5 takes a non-const image; with flags 0 it copies it and owns the copy.
  std::vector<std::uint8_t> image(data, data + size);
  const hid_t id = H5LTopen_file_image(image.data(), image.size(), 0);
  if (id < 0) return 0;
  auto file = atlascope::Hdf5File::adopt(static_cast<long>(id), "memory:input.h5ad");
  ATLASCOPE_FUZZ_BODY({
    atlascope::validateAnnData(*file);
    const atlascope::CellTable t = atlascope::readCellTable(*file);
    atlascope::ExpressionSource x(std::move(file));
    // Read every kept cell's row when the matrix is small (bounded work per input).
    if (x.cells() > 0 && x.genes() > 0 && x.cells() * x.genes() <= (1 << 20)) {
      std::vector<float> rows(static_cast<std::size_t>(x.cells() * x.genes()));
      x.readRows(0, x.cells(), rows.data());
    }
    (void)t.size();
  });
  return 0;
}
