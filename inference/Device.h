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

// Peak GPU memory held by LibTorch's caching allocator since the last reset, in GiB; 0 without
// CUDA (the Debian CPU LibTorch has no allocator statistics).
double peakGpuMemoryGiB();
void resetPeakGpuMemory();

} // namespace atlascope::inference
