#pragma once
// A training step's device work (weight casts, forward, loss, backward) captured once per batch
// shape as a CUDA graph and replayed afterwards. An eager step issues ~1,000 LibTorch operations
// and backward nodes, ~40 ms of host time on the H200 machine, which held the GPU idle a large part
// of each step; a replay is one launch. Batches are rounded to a few shapes (PackShape), each seen
// shape gets its graph, and all graphs share one memory pool (they never run at the same time).
//
// Everything runs on one side stream (a capture cannot use the default stream), made current by
// scope(); the trainer synchronises it before eager work on other streams (validation,
// checkpoints) so that none races a replay, and reads a step's loss through later() so that the
// next step's launch need not wait for it. Only in LibTorch builds with CUDA: available()
// says whether this build has it; without it the trainer runs eagerly (as on the CPU).
#include "inference/CellTransformer.h"

#include <functional>
#include <memory>

namespace atlascope::inference {

class StepGraphs {
public:
  // Whether graphs can be used on `device` in this build.
  static bool available(torch::Device device);
  // stagedCopies: each replayed batch copied to the device on a stream of its own, beside the
  // replay before it, then into the graph's inputs by a device-to-device copy; off: copied on the
  // graphs' stream after the replay before it (the path before, for comparisons).
  explicit StepGraphs(torch::Device device, bool stagedCopies = true);
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Makes the training stream current until the returned object is destroyed.
  std::shared_ptr<void> scope();
  // Runs `body` on `batch` (host tensors, pinned): the first time for a shape, the batch is copied
  // into that shape's static input tensors, `body` is captured on them and the graph replayed;
  // later, the copy (staged, see the constructor) and a replay. Returns `body`'s output (a device tensor the graph
  // writes to: read it before the next run). Throws what the capture threw (the caller then runs eagerly).
  torch::Tensor run(const Batch& batch, const std::function<torch::Tensor(const Batch&)>& body);
  // Waits for the training stream (and the staged copies').
  void synchronize();
  // The value of a one-element device tensor as the work queued on the training stream so far
  // leaves it: copied to pinned host memory behind that work; the returned function waits for the
  // copy alone (not for work queued after it) and reads it.
  std::function<double()> later(const torch::Tensor& scalar);
  int graphs() const; // shapes captured so far

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace atlascope::inference
