#pragma once
// --bench-stalls: the load a user puts on the window, scripted, with the stall detector watching:
// the dataset of --open opening (before this runs), its cells coloured by a gene (through the
// gene-major store for 1M cells or more, built the first time), then a region job (Discover
// regions, the composition baseline at `resolutions`) whose result opens coloured by region.
// Each step is a phase of the detector; the run waits in the event loop, as a user would.
#include <QString>

namespace atlascope::app {

class MainWindow;
class StallDetector;

// False (with the reason on stderr) when a step failed or did not end within its time.
bool runStallBench(MainWindow& window, StallDetector& stalls, const QString& resolutions = "25");

} // namespace atlascope::app
