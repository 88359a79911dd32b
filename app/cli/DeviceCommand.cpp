#include "app/cli/Commands.h"
#include "inference/Device.h"

#include <iostream>

namespace atlascope::cli {

void addDeviceCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("device", "What LibTorch sees here: version, CUDA devices, CPU threads");
  cmd->callback([] {
    inference::configureCpuThreads();
    const auto info = inference::describeDevices();
    std::cout << "torch:       " << info.torchVersion << "\n"
              << "cuda:        " << (info.cudaAvailable ? "yes" : "no") << " (" << info.cudaDeviceCount << " devices)\n"
              << "cpu threads: " << info.cpuThreads << "\n";
  });
}

} // namespace atlascope::cli
