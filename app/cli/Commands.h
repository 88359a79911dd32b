#pragma once
#include <CLI/CLI.hpp>

namespace atlascope::cli {

// Each adds its subcommand(s) to `app`; the work runs in the subcommand's callback.
void addAtlasCommands(CLI::App& app);
void addDeviceCommand(CLI::App& app);
void addDataCommands(CLI::App& app);
void addModelCommands(CLI::App& app);
void addCompareCommand(CLI::App& app); // after addModelCommands (adds to `bench`)
void addCellBench(CLI::App& app);      // after addModelCommands
void addSegmentCommand(CLI::App& app);
void addTrainCommand(CLI::App& app);
void addCellTypesCommand(CLI::App& app);
void addRegionMeshCommand(CLI::App& app); // VTK builds only

// The exit status the last command asked for (e.g. 2 for "point outside the volume").
int exitCode();
void setExitCode(int code);

} // namespace atlascope::cli
