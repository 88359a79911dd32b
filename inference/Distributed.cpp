#include "inference/Distributed.h"

#include "core/Error.h"
#include "inference/Device.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <torch/version.h>
// Gloo: Debian's LibTorch has it, its headers come with libgloo-dev (CMake defines
// ATLASCOPE_WITH_GLOO when it finds them). NCCL: LibTorch builds with CUDA, nccl.h found.
#ifdef ATLASCOPE_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(ATLASCOPE_WITH_NCCL) && defined(__has_include)
#if __has_include(<cuda_runtime_api.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define ATLASCOPE_NCCL_ENABLED 1
#endif
#endif

#include <cstdlib>
#include <cstring>

namespace atlascope::inference {

namespace {
// LibTorch 2 splits the process group into a front and backends (ProcessGroupNCCL/Gloo derive
// from Backend); in 1.13 they are process groups themselves. The collectives are the same calls.
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif
using WorkHandle = c10::intrusive_ptr<c10d::Work>;

int envInt(const char* name, int fallback, bool& present) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000)
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not a valid number");
  present = true;
  return static_cast<int>(x);
}

std::string firstLine(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}
} // namespace

RankEnv RankEnv::fromEnvironment() {
  RankEnv e;
  bool hasRank = false, hasWorld = false, unused = false;
  e.rank = envInt("RANK", 0, hasRank);
  e.worldSize = envInt("WORLD_SIZE", 1, hasWorld);
  e.localRank = envInt("LOCAL_RANK", e.rank, unused);
  e.masterPort = envInt("MASTER_PORT", 29500, unused);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.masterAddr = a;
  e.present = hasRank && hasWorld;
  if (e.present && (e.worldSize < 1 || e.rank >= e.worldSize))
    throw Error("RANK=" + std::to_string(e.rank) + " is not below WORLD_SIZE=" + std::to_string(e.worldSize));
  return e;
}

struct Distributed::Work {
  WorkHandle work;
};

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  std::string backend;
  torch::Device device = torch::kCPU;

  [[noreturn]] void fail(const char* what, const std::exception& e, int rank, int size,
                         std::chrono::milliseconds timeout) const {
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": the job's " + what + " (" +
                backend + ") failed: another rank stopped or cannot be reached (waited at most " +
                std::to_string(timeout.count() / 1000) + " s): " + firstLine(e.what()));
  }
};

bool Distributed::hasGloo() {
#ifdef ATLASCOPE_WITH_GLOO
  return true;
#else
  return false;
#endif
}

bool Distributed::hasNccl() {
#ifdef ATLASCOPE_NCCL_ENABLED
  return true;
#else
  return false;
#endif
}

std::chrono::milliseconds Distributed::defaultTimeout() {
  if (const char* v = std::getenv("ATLASCOPE_DIST_TIMEOUT"); v && *v) {
    const double s = std::atof(v);
    if (s > 0) return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
  }
  return std::chrono::minutes(30);
}

Distributed::Distributed(const RankEnv& env, bool cuda, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()), rank_(env.rank), size_(env.worldSize), timeout_(timeout) {
  Impl& m = *impl_;
  m.backend = cuda ? "nccl" : "gloo";
  if (cuda && !hasNccl())
    throw Error(
        "--gpus: this LibTorch build has no NCCL (a CUDA build with nccl.h is needed); --device cpu runs CPU ranks");
  if (!cuda && !hasGloo())
    throw Error("several CPU ranks need Gloo, which this build lacks (install libgloo-dev and rebuild)");
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.masterPort);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.worldSize);
    so.waitWorkers = true;
    so.timeout = timeout;
    m.store = c10::make_intrusive<c10d::TCPStore>(env.masterAddr, so);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.worldSize) + ": no rendezvous at " +
                env.masterAddr + ":" + std::to_string(env.masterPort) + " within " +
                std::to_string(timeout.count() / 1000) + " s: " + firstLine(e.what()));
  }
  try {
    if (cuda) {
#ifdef ATLASCOPE_NCCL_ENABLED
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      m.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(m.store, env.rank, env.worldSize, opts);
      m.device = torch::Device(torch::kCUDA, cudaIndex());
#endif
    } else {
#ifdef ATLASCOPE_WITH_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const bool loopback = env.masterAddr == "127.0.0.1" || env.masterAddr == "localhost";
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (loopback)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      m.group = c10::make_intrusive<c10d::ProcessGroupGloo>(m.store, env.rank, env.worldSize, opts);
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    m.fail("set-up", e, rank_, size_, timeout_);
  }
}

Distributed::~Distributed() = default;

std::string Distributed::backend() const { return impl_->backend; }

void Distributed::allReduceSum(torch::Tensor& t) { allReduce(t, false); }

void Distributed::allReduceMax(torch::Tensor& t) { allReduce(t, true); }

void Distributed::allReduceSumPolling(torch::Tensor& t) { allReduce(t, false, true); }

void Distributed::allReduce(torch::Tensor& t, bool max, bool polling) {
  std::vector<torch::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
  o.timeout = timeout_;
  try {
    // NCCL's wait with a timeout makes the host poll for the end every 10 ms (c10d's
    // kSynchronizeBusyWaitMillis); without one it only orders the current stream, and the
    // watchdog (the group's timeout) still catches a rank that stopped.
    const bool nccl = impl_->backend == "nccl";
    if (nccl && !polling)
      impl_->group->allreduce(v, o)->wait();
    else
      impl_->group->allreduce(v, o)->wait(timeout_);
  } catch (const std::exception& e) {
    impl_->fail("all-reduce", e, rank_, size_, timeout_);
  }
}

Distributed::Pending Distributed::allReduceSumAsync(torch::Tensor& t) {
  std::vector<torch::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  o.timeout = timeout_;
  auto w = std::make_shared<Work>();
  try {
    w->work = impl_->group->allreduce(v, o);
  } catch (const std::exception& e) {
    impl_->fail("all-reduce", e, rank_, size_, timeout_);
  }
  return w;
}

void Distributed::wait(const Pending& work) {
  if (!work || !work->work) return;
  try {
    if (impl_->backend == "nccl")
      work->work->wait(); // the current stream waits; capturable
    else
      work->work->wait(timeout_);
  } catch (const std::exception& e) {
    impl_->fail("all-reduce", e, rank_, size_, timeout_);
  }
}

void Distributed::broadcast(torch::Tensor& t, int root) {
  std::vector<torch::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = timeout_;
  try {
    impl_->group->broadcast(v, o)->wait(timeout_);
  } catch (const std::exception& e) {
    impl_->fail("broadcast", e, rank_, size_, timeout_);
  }
}

void Distributed::barrier() {
  // One all-reduce of a scalar on the group's device (NCCL's own barrier guesses the device).
  torch::Tensor one = torch::ones({1}, torch::TensorOptions().dtype(torch::kFloat32).device(impl_->device));
  allReduceSum(one);
  (void)one.item<float>(); // NCCL's wait() only orders streams: this waits for the value
}

} // namespace atlascope::inference
