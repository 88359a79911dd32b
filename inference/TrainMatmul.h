#pragma once
// Training's bf16 products on a GPU by a cuBLASLt algorithm of our choice (Matmul.h) beside ATen's
// (the heuristic's first offer), and the bench that compares them.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace atlascope::inference {

// dy [rows, n] times w [n, k] (a linear layer's input gradient, [rows, k]): on a GPU in bf16 with
// rows x n x k >= 4e9 (the encoder's products), by the cuBLASLt algorithm tuned for the shape
// (cuda::matmulTunedBf16: timed once per n and k, no workspace, ATen's bits); ATen's mm elsewhere,
// where it declines, or with setTunedInputGradients(false).
torch::Tensor inputGradient(const torch::Tensor& dy, const torch::Tensor& w);
// Built with the fused kernels and cuBLASLt's header, and cuBLASLt found in the process.
bool matmulProductsBuilt();
// Process-wide (`--aten-input-grads` turns it off, for comparisons), read at each call: a captured
// graph keeps the path it was captured with.
void setTunedInputGradients(bool on);
bool tunedInputGradients();
// Calls that ran the tuned product, and the shapes it timed and borrowed (parity, bench train).
struct TunedInputGradientCounts {
  std::int64_t calls = 0, timedShapes = 0, borrowed = 0;
};
TunedInputGradientCounts tunedInputGradientCounts();
// The tuned product against ATen's mm on random bf16 operands of rows x n times n x k on `device`:
// the largest |difference| over ATen's largest |value| (0: the same bits), -1 where it did not run
// (no GPU, not built, declined).
double checkTunedInputGradient(torch::Device device, std::int64_t rows, int n, int k);

// One product of a training step at the released size, timed by ATen's call and by each algorithm
// cuBLASLt's heuristic offers for it.
struct MatmulBenchShape {
  std::string name;       // e.g. "ff2 forward"
  int op = 0;             // cuda::MatmulOp
  int n = 0, k = 0;       // Matmul.h's n and k
  int callsPerStep = 0;   // how many a training step of the released size makes
  double atenEagerMs = 0; // ATen's addmm / mm, called one after another
  double atenMs = 0;      // the same calls captured in a CUDA graph and replayed, as a step runs them
  // cuBLASLt's offers in the heuristic's order, each in a graph as ATen's (ms negative: refused),
  // with the memset nodes each call adds; then those it offers with no workspace.
  std::vector<float> offerMs, bareOfferMs;
  std::vector<int> offerMemsets, bareOfferMemsets;
  std::vector<double> bareOfferMaxDiff; // each bare offer's largest |difference| from ATen's (0: the same bits)
  double maxRelFromAten = 0;            // the fastest offer's largest |difference| over ATen's largest |value|
};

// Every encoder product of a step on `rows` tokens (E 384, feed-forward 2048), `iterations` calls
// each (graphs of `iterations` calls, replayed 3 times). Empty where the products are not built (no CUDA, no cuBLASLt).
std::vector<MatmulBenchShape> benchTrainMatmul(torch::Device device, std::int64_t rows, int iterations);

} // namespace atlascope::inference
