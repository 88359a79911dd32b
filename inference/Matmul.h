#pragma once
// Training's bf16 products by cuBLASLt with a chosen algorithm (Matmul.cpp), beside ATen's addmm
// and mm, which take the heuristic's first offer. Plain pointers and a cudaStream_t as void*, as
// FusedKernels.h: no LibTorch header here (TrainMatmul.h wraps them for tensors).
#include <cstdint>
#include <vector>

namespace atlascope::inference::cuda {

// The three products of a linear layer y = x W^T + b, all row-major bf16 with float32 accumulation:
// - Forward:    out [rows, n] = a [rows, k] (x) times b [n, k] (W) transposed, plus bias [n] if given;
// - InputGrad:  out [rows, k] = a [rows, n] (dy) times b [n, k] (W), added to out with `accumulate`;
// - WeightGrad: out [n, k] = a [rows, n] (dy) transposed times b [rows, k] (x).
enum class MatmulOp : int { Forward = 0, InputGrad = 1, WeightGrad = 2 };

struct MatmulCall {
  MatmulOp op = MatmulOp::Forward;
  std::int64_t rows = 0;
  int n = 0, k = 0;
  const std::uint16_t* a = nullptr;
  const std::uint16_t* b = nullptr;
  const std::uint16_t* bias = nullptr; // Forward only; null: none
  std::uint16_t* out = nullptr;
  bool accumulate = false; // InputGrad only
};

// Built with cuBLASLt's header and the library found in the process.
bool matmulAvailable();
// The workspace the products may use (bytes; 16-byte aligned; the caller keeps it for as long as a
// captured graph replays the call).
std::int64_t matmulWorkspace();
// How many algorithms cuBLASLt's heuristic offers for the call's shape (at most 16; 0: none, or
// the call is not one this file takes: n or k not multiples of 8, pointers not 16-byte aligned).
int matmulAlgorithmCount(const MatmulCall& call, std::int64_t workspaceBytes);
// The product by the heuristic's `algorithm`-th offer (0: its first; the heuristic is told the
// pointers are 16-byte aligned, so its offers are not always those of ATen's calls). False (nothing launched): see
// matmulAlgorithmCount, or cuBLASLt refused the call.
bool matmulBf16(const MatmulCall& call, int algorithm, void* workspace, std::int64_t workspaceBytes, void* stream);
// The product by the fastest of the algorithms cuBLASLt offers without a workspace (so no memset
// before its kernel, and nothing to keep for a graph's replays), `accumulate` off. Chosen per op, n,
// k and bias or not (and device): the first call of such a shape outside a graph capture times each
// offer on the call's own operands (4 calls each; its output is overwritten, then written by the
// choice); a later call of other rows takes the same algorithm (training's rows move by a few
// thousand between batches), and a shape first seen inside a capture with nothing timed before it
// takes the heuristic's first offer (not recorded). A shape whose offers all failed declines from
// then on. Every offer measured gave ATen's bits (bench matmul's
// bare_offers_max_difference: no split over K). Measured (bench matmul, H100, 105,472 rows, in
// graphs): the input gradients dy W at 0.238 ms against ATen's 0.294 (n 2048, k 384), 0.134
// against 0.158 (n 1152); the forwards and weight gradients gained nothing. False (nothing
// launched): see matmulAlgorithmCount, or `accumulate` set.
bool matmulTunedBf16(const MatmulCall& call, void* stream);
// Shapes whose choice was timed, and those that took a timed neighbour's (for parity and bench train).
struct MatmulTunedCounts {
  std::int64_t timed = 0, borrowed = 0;
};
MatmulTunedCounts matmulTunedCounts();

// Each offer timed on the call's own operands (its output overwritten; with `accumulate` added to
// many times), in the heuristic's order: `iterations` calls captured in one CUDA graph and replayed
// (as a training step runs them, with whatever memsets cuBLASLt adds before a kernel), milliseconds
// a call (negative where it failed) and the memset nodes a call added. `stream`: not the legacy
// default stream (a capture's); synchronised.
struct MatmulOfferTime {
  float ms = -1.f;
  int memsets = 0;
};
std::vector<MatmulOfferTime> matmulTimeAlgorithms(const MatmulCall& call, int iterations, void* workspace,
                                                  std::int64_t workspaceBytes, void* stream);

} // namespace atlascope::inference::cuda
