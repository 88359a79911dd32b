#include "app/cli/Launch.h"

#include "core/Error.h"
#include "inference/Device.h"
#include "inference/Distributed.h"

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace atlascope::cli {

namespace {
std::vector<std::string> gArgs;
volatile std::sig_atomic_t gLauncherSignal = 0;
extern "C" void onLauncherSignal(int sig) { gLauncherSignal = sig; }

// A port free on the loopback now (the rendezvous binds it a moment later).
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("--gpus: no socket for the rendezvous port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("--gpus: could not find a free port for the rendezvous");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    const char* name = strsignal(s);
    return "was killed by signal " + std::to_string(s) + (name ? std::string(" (") + name + ")" : std::string());
  }
  return "ended (status " + std::to_string(status) + ")";
}
} // namespace

void rememberCommandLine(int argc, char** argv) { gArgs.assign(argv, argv + argc); }

void prepareRankEnvironment() {
  // NVLink multicast (NVLS) off unless the user chose: on shared hosts it can take GPUs out of
  // service. Every process of a job passes here, the launcher's ranks and torchrun's alike.
  ::setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  // Each rank's GPU is LOCAL_RANK's (inference::cudaIndex), with every GPU left visible: NCCL
  // needs to see its peers to use NVLink P2P (with CUDA_VISIBLE_DEVICES narrowed to one GPU per
  // process NCCL was not seen on P2P, and a 2-GPU epoch ran at 1.16x one GPU; 1.24x with P2P, the
  // same CPU threads).
}

void addRankOption(CLI::App* cmd, int& ranks) {
  cmd->add_option("--gpus,--ranks", ranks,
                  "Run as N processes on this host (one per GPU; with --device cpu, N CPU processes over Gloo): "
                  "data-parallel over c10d. Processes started by torchrun-style variables (RANK, WORLD_SIZE, "
                  "MASTER_ADDR, MASTER_PORT, LOCAL_RANK) join their job without it")
      ->check(CLI::Range(1, 1024));
}

bool isRank() {
  const char* rank = std::getenv("RANK");
  const char* world = std::getenv("WORLD_SIZE");
  return rank && world && std::atoi(world) > 1;
}

int launchRanks(int ranks, const std::string& device) {
  if (gArgs.empty()) throw Error("--gpus: the command line was not recorded");
  // cudaGetDeviceCount: no context is made here, the GPUs are the ranks'.
  const std::string dev = inference::resolveDevice(device);
  const int gpus = inference::describeDevices().cudaDeviceCount;
  if (dev == "cuda" && ranks > gpus)
    throw Error("--gpus " + std::to_string(ranks) + ": this host has " + std::to_string(gpus) + " GPU" +
                (gpus == 1 ? "" : "s") + " (--device cpu runs CPU ranks)");
  const char* userPort = std::getenv("MASTER_PORT");
  const int port = userPort && *userPort ? std::atoi(userPort) : freePort();
  std::vector<char*> argv;
  for (auto& a : gArgs) argv.push_back(a.data());
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = onLauncherSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const pid_t launcher = ::getpid();
  std::vector<pid_t> pids(static_cast<std::size_t>(ranks), -1);
  std::vector<bool> alive(static_cast<std::size_t>(ranks), false);
  std::fflush(nullptr);
  for (int r = 0; r < ranks; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (int q = 0; q < r; ++q) ::kill(pids[static_cast<std::size_t>(q)], SIGKILL);
      throw Error("--gpus: could not start rank " + std::to_string(r));
    }
    if (pid == 0) {
      // The rank dies with the launcher (a killed GUI job leaves no rank behind).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != launcher) ::_exit(1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("NCCL_NVLS_ENABLE", "0", 0);
      ::setenv("ATLASCOPE_RANK_DEVICE", dev.c_str(), 1);
      if (r > 0) {
        const int devnull = ::open("/dev/null", O_WRONLY);
        if (devnull >= 0) ::dup2(devnull, 1);
      }
      ::execv("/proc/self/exe", argv.data());
      std::perror("atlascope-cli: starting a rank");
      ::_exit(127);
    }
    pids[static_cast<std::size_t>(r)] = pid;
    alive[static_cast<std::size_t>(r)] = true;
  }

  using Clock = std::chrono::steady_clock;
  int running = ranks, failed = -1, rank0Status = 0;
  bool forwarded = false;
  Clock::time_point killAt = Clock::time_point::max();
  auto signalAll = [&](int sig) {
    for (int r = 0; r < ranks; ++r)
      if (alive[static_cast<std::size_t>(r)]) ::kill(pids[static_cast<std::size_t>(r)], sig);
  };
  while (running > 0) {
    if (gLauncherSignal && !forwarded) {
      forwarded = true;
      signalAll(SIGTERM); // each rank stops at its next safe point (the ranks agree on it)
    }
    if (Clock::now() >= killAt) {
      signalAll(SIGKILL);
      killAt = Clock::time_point::max();
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int r = 0;
    while (r < ranks && pids[static_cast<std::size_t>(r)] != pid) ++r;
    if (r == ranks) continue;
    alive[static_cast<std::size_t>(r)] = false;
    --running;
    if (r == 0) rank0Status = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    const bool cancelledExit = forwarded && WIFEXITED(status) && WEXITSTATUS(status) == 130;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && !cancelledExit && !forwarded && failed < 0) {
      failed = r;
      std::fprintf(stderr, "atlascope-cli: error: rank %d of %d (pid %d) %s; stopping the other ranks\n", r, ranks,
                   static_cast<int>(pid), describeStatus(status).c_str());
      std::fflush(stderr);
      signalAll(SIGTERM);
      // A rank blocked in a collective with the dead one does not see SIGTERM until c10d's
      // timeout: after a grace period it is killed.
      killAt = Clock::now() + std::chrono::seconds(10);
    }
  }
  if (failed >= 0) return 1;
  if (forwarded) return rank0Status == 0 ? 130 : rank0Status;
  return rank0Status;
}

std::unique_ptr<inference::Distributed> joinJob(const std::string& device, bool shareCores) {
  const inference::RankEnv env = inference::RankEnv::fromEnvironment();
  if (!env.present || env.worldSize <= 1) return nullptr;
  std::string dev = device;
  if (dev == "auto") dev = inference::resolveDevice("auto");
  if (dev == "cuda" && inference::resolveDevice("auto") != "cuda") {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw Error("rank " + std::to_string(env.rank) + ": no GPU for LOCAL_RANK " + std::to_string(env.localRank) +
                " (CUDA_VISIBLE_DEVICES=" + (visible ? visible : "") + "): fewer GPUs than ranks on this host?");
  }
  // The host's cores shared by its ranks (LOCAL_WORLD_SIZE): two embedding GPU ranks with all
  // cores each contended on the host (4M cells on 2 GPUs: 1.15x one GPU; 1.62x shared).
  if (shareCores || dev != "cuda") inference::configureCpuThreads();
  if (dev == "cuda") inference::useRankGpu();
  return std::make_unique<inference::Distributed>(env, dev == "cuda");
}

} // namespace atlascope::cli
