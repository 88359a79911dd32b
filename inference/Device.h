#pragma once
// Which compute devices LibTorch sees here, and the CPU thread setup every torch user needs
// (Debian's LibTorch starts with one thread; TOOLCHAIN.md).
#include <string>
#include <vector>

namespace atlascope::inference {

struct DeviceInfo {
  std::string torchVersion;
  bool cudaAvailable = false;
  int cudaDeviceCount = 0;
  int cpuThreads = 0;
};

DeviceInfo describeDevices();

// Sets LibTorch's intra-op threads; 0 = every hardware thread. Returns the count in force.
int configureCpuThreads(int threads = 0);

// Resolves "auto" / "cuda" / "cpu" against what is present; an explicit "cuda" without a GPU
// is an error that says so.
std::string resolveDevice(const std::string& requested);

// This process's GPU: LOCAL_RANK's for a rank of several on a host with several visible GPUs
// (every GPU stays visible to every rank, so that NCCL reaches its peers over NVLink), else 0.
int cudaIndex();
// A rank makes its GPU the current device (streams, events, synchronisation follow it) before
// anything touches CUDA; throws Error when LOCAL_RANK has no GPU.
void useRankGpu();

// Peak GPU memory held by LibTorch's caching allocator since the last reset, in GiB; 0 without
// CUDA (the Debian CPU LibTorch has no allocator statistics).
double peakGpuMemoryGiB();
void resetPeakGpuMemory();

} // namespace atlascope::inference
