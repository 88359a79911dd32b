#include "inference/StateDict.h"

#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/TorchStateDict.h"

namespace atlascope::inference {

namespace {
torch::ScalarType scalarOf(TensorDType t) {
  switch (t) {
  case TensorDType::Float32: return torch::kFloat32;
  case TensorDType::Float64: return torch::kFloat64;
  case TensorDType::Float16: return torch::kFloat16;
  case TensorDType::BFloat16: return torch::kBFloat16;
  case TensorDType::Int64: return torch::kInt64;
  case TensorDType::Int32: return torch::kInt32;
  case TensorDType::Int16: return torch::kInt16;
  case TensorDType::Int8: return torch::kInt8;
  case TensorDType::UInt8: return torch::kUInt8;
  case TensorDType::Bool: return torch::kBool;
  }
  return torch::kFloat32;
}
} // namespace

StateDict loadPth(const std::string& path) {
  StateDict out;
  for (auto& r : readTorchStateDict(path)) {
    auto t = torch::empty(r.shape, torch::TensorOptions().dtype(scalarOf(r.dtype)));
    if (!r.bytes.empty()) std::memcpy(t.data_ptr(), r.bytes.data(), r.bytes.size());
    out[r.name] = t;
  }
  return out;
}

StateDict loadHdf5Group(const std::string& path, const std::string& group) {
  Hdf5File f(path);
  if (!f.exists(group)) throw FileError(path, "no group '" + group + "'");
  StateDict out;
  for (const std::string& name : f.children(group)) {
    const NdArray<float> a = f.readFloat(group + "/" + name);
    auto t = torch::empty(a.shape, torch::kFloat32);
    if (!a.data.empty()) std::memcpy(t.data_ptr(), a.data.data(), a.data.size() * sizeof(float));
    out[name] = t;
  }
  return out;
}

} // namespace atlascope::inference
