#pragma once
// One structural check of an AnnData file, run by every reader before it uses the file (info,
// convert, embed, segment, train and the window read through CellTableReader, which calls it).
// What it checks: every obs/obsm/var/varm/layers/obsp length equal to X's shape (or the obs/var
// index's length); categorical codes within their categories (-1 = missing); CSR/CSC indptr
// starting at 0, never decreasing and ending at nnz; indices within the other axis; each
// element's dtype as its encoding declares (integer codes and indices, numeric arrays, strings
// for string arrays); sizes the file can hold. A failure is a FileError naming the file, the HDF5
// path and the first bad index ("/obs/subclass/codes[17] = 12, but there are 12 categories").
//
// Why up front: the readers index arrays with the file's codes and indices; a code past the
// categories crashed `convert`, and `info` said nothing was wrong. Checked once, the readers can
// trust the structure (they still bound-check what they index).
#include <string>

namespace atlascope {

class Hdf5File;

// Throws on the first problem. Sparse indices are all read when there are at most
// kFullIndexScan nonzeros; above that, rows are checked as they are read (ExpressionSource),
// so that opening 10M cells stays a matter of seconds.
void validateAnnData(const Hdf5File& f);

// The same for a file on disk, remembered per file identity (path, size, modification time)
// so that a command reading a file several times validates it once.
void validateAnnDataFile(const Hdf5File& f);

constexpr long long kFullIndexScan = 1ll << 24;

} // namespace atlascope
