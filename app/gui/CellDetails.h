#pragma once
// What a picked cell is, as the Cells dock and the status line show it: its dataset and row, type,
// section, CCF structure, and its value in the current colouring (a gene's value, or its region's
// name). Rich text; empty when the cell is not there.
#include "app/workspace/Workspace.h"

#include <QString>

namespace atlascope::app {

class Engine;

QString cellDetails(Engine& engine, DatasetId id, std::int64_t cell);

} // namespace atlascope::app
