#pragma once
// A 3D image as read from disk: one scalar per voxel, first axis fastest. Holds any of the scalar
// types Allen and the ABC atlas ship (uint8/16/32 labels and templates, float32 densities).
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace atlascope {

enum class ScalarType { Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float32, Float64 };

std::size_t scalarSize(ScalarType t);
const char* scalarName(ScalarType t);
bool isInteger(ScalarType t);

struct Volume {
  std::array<std::int64_t, 3> size{0, 0, 0};
  // Voxel size along each axis, in the file's own unit (micrometres for the CCF).
  std::array<double, 3> spacing{1.0, 1.0, 1.0};
  // Position of voxel (0,0,0) as the file states it; informational (see AnnotationVolume).
  std::array<double, 3> origin{0.0, 0.0, 0.0};
  // Unit of spacing/origin when the file states it ("um", "mm"); empty when it does not.
  std::string unit;
  ScalarType type = ScalarType::UInt8;
  std::vector<std::uint8_t> bytes; // host byte order

  std::int64_t voxelCount() const { return size[0] * size[1] * size[2]; }
  std::int64_t linearIndex(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return i + size[0] * (j + size[1] * k);
  }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
  // The value of one voxel converted to double (labels up to 2^53 are exact).
  double value(std::int64_t linear) const;
};

} // namespace atlascope
