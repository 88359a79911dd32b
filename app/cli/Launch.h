#pragma once
// Several ranks of one command (train, embed, segment): `--gpus N` (alias `--ranks N`) makes this
// process a launcher that starts N copies of its own command line on this host, one per GPU (or
// N CPU processes with --device cpu), with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free MASTER_PORT) and NCCL_NVLS_ENABLE=0 unless set.
// Rank 0 keeps the launcher's stdout (progress and result lines), the others' stdout is dropped,
// every rank's stderr is kept. SIGINT/SIGTERM to the launcher reach every rank; a rank that fails
// or dies stops the others and fails the job with a message naming it. A process started with
// RANK and WORLD_SIZE already set (torchrun, Slurm, Kubernetes, or this launcher) is a rank
// itself and joins the job through c10d (inference/Distributed).
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace atlascope::inference {
class Distributed;
}

namespace atlascope::cli {

// main(): the command line to start again, then the rank's environment (before anything touches
// CUDA): NCCL_NVLS_ENABLE=0 unless set. A rank's GPU is the LOCAL_RANK-th (inference::cudaIndex).
void rememberCommandLine(int argc, char** argv);
void prepareRankEnvironment();

// --gpus/--ranks N on a command.
void addRankOption(CLI::App* cmd, int& ranks);

// Whether this process is a rank of a job of several (RANK and WORLD_SIZE > 1 set).
bool isRank();

// The launcher: starts `ranks` processes of this command line and waits for them; the exit status
// for this process (0, 130 when cancelled, 1 when a rank failed).
int launchRanks(int ranks, const std::string& device);

// A rank joins its job (device "cuda", "cpu" or "auto"); null when this process is not a rank of several.
// CPU ranks, and GPU ranks with `shareCores`, divide the host's cores for LibTorch's threads.
std::unique_ptr<inference::Distributed> joinJob(const std::string& device, bool shareCores = true);

} // namespace atlascope::cli
