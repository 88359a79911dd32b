#pragma once
#include "core/CellTable.h"

#include <CLI/CLI.hpp>

namespace atlascope::cli {
// The column options every command that reads cells takes (one declaration, as F3D's options).
void addColumnOptions(CLI::App* cmd, ColumnOptions& columns);
} // namespace atlascope::cli
