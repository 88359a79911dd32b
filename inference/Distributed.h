#pragma once
// Several processes as one job, on LibTorch's c10d: a TCPStore rendezvous (rank 0 serves it at
// MASTER_ADDR:MASTER_PORT), then a process group: NCCL between GPUs (LibTorch builds with CUDA
// and nccl.h), Gloo between CPU processes (builds with Gloo's headers: Debian's libgloo-dev).
// The rank comes from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), which `atlascope-cli ... --gpus N` sets for the N processes it starts, and which a
// cluster's scheduler sets for a job across hosts.
//
// Every collective waits at most timeout(): a rank that died or hangs fails the others with an
// Error that says so, instead of a hang (Gloo sees a closed connection at once; NCCL waits for the
// timeout).
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>

namespace atlascope::inference {

struct RankEnv {
  int rank = 0, worldSize = 1, localRank = 0;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  bool present = false; // RANK and WORLD_SIZE were set
  // From the environment; throws Error on malformed values.
  static RankEnv fromEnvironment();
};

class Distributed {
public:
  // Joins the job (blocks until every rank has joined, at most `timeout`). `cuda`: NCCL over
  // this process's current GPU; otherwise Gloo over the CPU.
  Distributed(const RankEnv& env, bool cuda, std::chrono::milliseconds timeout = defaultTimeout());
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::string backend() const;
  std::chrono::milliseconds timeout() const { return timeout_; }

  // In place, on every rank (tensors on the group's device: CUDA for NCCL, CPU for Gloo). NCCL:
  // the current stream is ordered after the all-reduce and the host does not wait (a later read
  // of a result waits for it; a rank that stops is caught by c10d's watchdog after timeout());
  // Gloo: returns once done.
  void allReduceSum(torch::Tensor& t);
  void allReduceMax(torch::Tensor& t);
  void broadcast(torch::Tensor& t, int root);
  void barrier();

  // An all-reduce started and not yet waited for (allReduceSumAsync).
  struct Work;
  using Pending = std::shared_ptr<Work>;
  // Starts a sum all-reduce of `t` in place and returns at once. NCCL: on c10d's stream, after
  // the work queued so far on the current stream; inside a CUDA graph capture it is captured (and
  // runs at each replay). Gloo: on its threads. `t` must not be touched until wait().
  Pending allReduceSumAsync(torch::Tensor& t);
  // NCCL: the current stream waits for the all-reduce (the host does not); Gloo: blocks until it
  // is done (at most timeout()).
  void wait(const Pending& work);
  // The code before bucketed all-reduces, for comparisons (TrainOptions::allReduce
  // "after-polling"): NCCL waits with the timeout, so that c10d's host polls for the end every
  // 10 ms (which held a 2-GPU training step at ~23 ms where its device work took ~16).
  void allReduceSumPolling(torch::Tensor& t);

  // ATLASCOPE_DIST_TIMEOUT (seconds) or 30 minutes (c10d's default: a rank may still be reading
  // its data while another waits at the first collective).
  static std::chrono::milliseconds defaultTimeout();
  // Whether this build has the backend.
  static bool hasGloo();
  static bool hasNccl();

private:
  void allReduce(torch::Tensor& t, bool max, bool polling = false); // sum, or max
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
};

} // namespace atlascope::inference
