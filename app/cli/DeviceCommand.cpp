#include "app/cli/Commands.h"
#include "inference/Device.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace atlascope::cli {

void addDeviceCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("device", "What LibTorch sees here: version, CUDA devices, CPU threads");
  static bool json = false;
  cmd->add_flag("--json", json,
                "One JSON object (host, torch, cuda, gpus, cpu_threads): what the window's Preferences > Test reads");
  cmd->callback([] {
    inference::configureCpuThreads();
    const auto info = inference::describeDevices();
    if (json) {
      char host[256] = {};
      if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
      nlohmann::json o{{"host", host},
                       {"torch", info.torchVersion},
                       {"cuda", info.cudaAvailable},
                       {"gpus", info.cudaDeviceCount},
                       {"cpu_threads", info.cpuThreads}};
      std::cout << o.dump() << "\n";
      return;
    }
    std::cout << "torch:       " << info.torchVersion << "\n"
              << "cuda:        " << (info.cudaAvailable ? "yes" : "no") << " (" << info.cudaDeviceCount << " devices)\n"
              << "cpu threads: " << info.cpuThreads << "\n";
  });
}

} // namespace atlascope::cli
