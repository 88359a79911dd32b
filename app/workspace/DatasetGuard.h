#pragma once
// (Qt-free: core only; the workspace's read worker calls it, DatasetData::read.)
// What the window relies on in a dataset, checked in the background before it replaces the open
// one: at least one cell to show; every section and type code naming one of the names (the
// legend, the colours and the cell details index the names with them: a code past them reads past
// the end); and an .h5ad's expression matrix holding the cells' rows and var's genes as columns
// (colouring by a gene reads column g for var's gene g; a shape of 2^40 genes would be read as
// such). The readers' own validation names the file's field and first bad index; this is the
// window's guard for every reader, so that a bad file is refused and the open dataset stays.
#include "core/CellTable.h"

#include <string>

namespace atlascope::app {

// Throws FileError(path, what is wrong) when the window cannot show `cells`. Cheap: a pass over
// the codes and, for an .h5ad, the matrix's shape (no data read).
void checkOpenable(const CellTable& cells, const std::string& path, const ColumnOptions& columns);

} // namespace atlascope::app
