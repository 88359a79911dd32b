#include "inference/Device.h"

#include "core/Error.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <thread>
// Allocator statistics exist only in LibTorch builds with CUDA.
#if defined(__has_include)
#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#define ATLASCOPE_WITH_CUDA_STATS 1
#endif
#endif

namespace atlascope::inference {

DeviceInfo describeDevices() {
  DeviceInfo info;
  info.torchVersion = TORCH_VERSION;
  info.cudaAvailable = torch::cuda::is_available();
  info.cudaDeviceCount = info.cudaAvailable ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.cpuThreads = at::get_num_threads();
  return info;
}

int configureCpuThreads(int threads) {
  if (threads <= 0) {
    threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // CPU ranks of one job on this host share its cores (inference/Distributed, --ranks N).
    if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); local && std::atoi(local) > 1)
      threads = std::max(1, threads / std::atoi(local));
  }
  at::set_num_threads(threads);
  return at::get_num_threads();
}

std::string resolveDevice(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  const bool cuda = torch::cuda::is_available();
  if (requested == "cuda") {
    if (!cuda) throw Error("--device cuda: no CUDA device is available to this LibTorch build");
    return "cuda";
  }
  if (requested == "auto" || requested.empty()) return cuda ? "cuda" : "cpu";
  throw Error("unknown device '" + requested + "' (use cpu, cuda or auto)");
}

int cudaIndex() {
  static const int index = [] {
    const char* world = std::getenv("WORLD_SIZE");
    const char* local = std::getenv("LOCAL_RANK");
    if (!world || !local || std::atoi(world) <= 1 || !torch::cuda::is_available()) return 0;
    const int count = static_cast<int>(torch::cuda::device_count()), want = std::atoi(local);
    if (count <= 1) return 0; // a scheduler gave this rank its one GPU
    if (want >= count)
      throw Error("LOCAL_RANK " + std::to_string(want) + " has no GPU: " + std::to_string(count) + " are visible");
    return want;
  }();
  return index;
}

void useRankGpu() {
  const int index = cudaIndex();
#ifdef ATLASCOPE_WITH_CUDA_STATS
  if (torch::cuda::is_available()) c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
#else
  (void)index;
#endif
}

double peakGpuMemoryGiB() {
#ifdef ATLASCOPE_WITH_CUDA_STATS
  if (torch::cuda::is_available()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(cudaIndex()));
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  return 0;
}

void resetPeakGpuMemory() {
#ifdef ATLASCOPE_WITH_CUDA_STATS
  if (torch::cuda::is_available()) {
    // The allocator refuses requests about a device it has not initialised yet.
    (void)torch::empty({1}, torch::TensorOptions().device(torch::kCUDA, cudaIndex()));
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(cudaIndex()));
  }
#endif
}

} // namespace atlascope::inference
