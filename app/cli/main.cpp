// atlascope-cli: the headless face of Atlascope (no Qt, no display). Every command prints a
// one-line error and exits non-zero on bad input; `--help` works on every command.
#include "app/cli/Commands.h"
#include "app/cli/Launch.h"
#include "core/Error.h"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#if defined(__GLIBC__)
#include <execinfo.h>
#include <unistd.h>
#endif

namespace {
// A worker that crashes says where (to stderr, which the GUI shows in its job log).
extern "C" void onCrash(int sig) {
#if defined(__GLIBC__)
  const char msg[] = "atlascope-cli: crashed; stack:\n";
  (void)!write(2, msg, sizeof msg - 1);
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, 2);
#endif
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
} // namespace

int main(int argc, char** argv) {
  // Before anything touches CUDA: a rank's GPU, NVLink multicast off (Launch.h).
  atlascope::cli::rememberCommandLine(argc, argv);
  atlascope::cli::prepareRankEnvironment();
  std::signal(SIGSEGV, onCrash);
  std::signal(SIGABRT, onCrash);
  CLI::App app{"Atlascope command line: the Allen CCF, cell data and CellTransformer, headless."};
  app.require_subcommand(1);
  // One line on stderr for every parse error, like every other error of the CLI.
  app.failure_message([](const CLI::App* top, const CLI::Error& e) {
    // Name the word CLI11 could not place ("atlas frobnicate": a required subcommand is missing
    // because "frobnicate" is not one).
    const CLI::App* deepest = top;
    for (bool descended = true; descended;) {
      descended = false;
      for (const CLI::App* sub : deepest->get_subcommands()) {
        deepest = sub;
        descended = true;
        break;
      }
    }
    std::string msg = std::string("atlascope-cli: error: ") + e.what();
    const auto rest = deepest->remaining();
    if (!rest.empty()) msg += ": unknown command or argument '" + rest.front() + "'";
    return msg + " (see --help)\n";
  });
  app.set_version_flag("--version", std::string(ATLASCOPE_VERSION));
  atlascope::cli::addAtlasCommands(app);
  atlascope::cli::addDataCommands(app);
  atlascope::cli::addModelCommands(app);
  atlascope::cli::addCompareCommand(app);
  atlascope::cli::addCellBench(app);
  atlascope::cli::addSegmentCommand(app);
  atlascope::cli::addTrainCommand(app);
  atlascope::cli::addCellTypesCommand(app);
#ifdef ATLASCOPE_HAS_VTK
  atlascope::cli::addRegionMeshCommand(app);
#endif
  atlascope::cli::addDeviceCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const atlascope::Error& e) {
    std::cerr << "atlascope-cli: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "atlascope-cli: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    // Library errors (LibTorch's) may carry a backtrace after the first line: keep one line.
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    std::cerr << "atlascope-cli: error: " << msg << "\n";
    return 1;
  }
  return atlascope::cli::exitCode();
}
