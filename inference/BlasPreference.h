#pragma once
// ATen's matrix products on a GPU through cuBLASLt instead of cuBLAS while a guard lives: the
// embedding run's default (issue 18, call s40-1 on one H200: 200,620 cells/s with
// TORCH_BLAS_PREFER_CUBLASLT=1 against 193,915-196,902 for cuBLAS; docs/performance/embedding.md).
// Training keeps cuBLAS (0.93x a step with cuBLASLt preferred: docs/performance/training.md), so the
// preference is scoped to the run, not set for the process.
//
// ATen's setting is process-wide: concurrent guards count, the first one in sets it and the last
// one out restores what was there before, so that two embedding runs in one process (the GUI's
// jobs) cannot leave it changed. A training run in the same process while an embedding run holds a
// guard runs its ATen products by cuBLASLt too (the same arithmetic, another kernel choice).
// With a LibTorch before 2.4 (no such setting) or one without cuBLASLt, a guard does nothing.

namespace atlascope::inference {

class PreferCublasLt {
public:
  explicit PreferCublasLt(bool on);
  ~PreferCublasLt();
  PreferCublasLt(const PreferCublasLt&) = delete;
  PreferCublasLt& operator=(const PreferCublasLt&) = delete;
  // Whether ATen's products run by cuBLASLt now (a guard took effect, or the process asked so).
  static bool active();

private:
  bool held_ = false;
};

} // namespace atlascope::inference
