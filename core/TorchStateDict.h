#pragma once
// Reads a PyTorch `state_dict` saved by torch.save (a zip archive holding a pickle and raw
// storages) without Python and without executing the pickle: a strict interpreter that knows
// only the opcodes and globals a state_dict uses and refuses everything else (a pickle is a
// program). Kept in core, free of torch, so that the sanitizer builds test it.
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

enum class TensorDType { Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool };
std::size_t dtypeSize(TensorDType t);
const char* dtypeName(TensorDType t);

struct RawTensor {
  std::string name;
  TensorDType dtype = TensorDType::Float32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes; // contiguous, row-major, little-endian
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

// The tensors in file order. Errors name the file and the problem ("unsupported pickle global
// 'os.system'", "storage 'data/7' is missing from the archive", ...).
std::vector<RawTensor> readTorchStateDict(const std::string& path);

} // namespace atlascope
