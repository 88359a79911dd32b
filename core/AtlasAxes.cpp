#include "core/AtlasAxes.h"

#include "core/Error.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

namespace atlascope {

bool AxisMapping::isIdentity() const {
  return fileAxis == std::array<int, 3>{0, 1, 2} && !reversed[0] && !reversed[1] && !reversed[2];
}

AxisMapping axisMappingFromOrientation(const std::string& orientation, const std::string& source) {
  // Per canonical axis ("asr"): its start letter and the opposite one.
  static const char start[3] = {'a', 's', 'r'};
  static const char end[3] = {'p', 'i', 'l'};
  const auto bad = [&](const std::string& why) {
    return FileError(source, "orientation " + quote(orientation, 20) + " " + why +
                                 " (expected three letters, one of each pair a/p, s/i, r/l, e.g. \"asr\")");
  };
  if (orientation.size() != 3) throw bad("is not three letters");
  AxisMapping m;
  std::array<bool, 3> seen{false, false, false};
  for (int f = 0; f < 3; ++f) {
    const char c =
        static_cast<char>(std::tolower(static_cast<unsigned char>(orientation[static_cast<std::size_t>(f)])));
    int canonical = -1;
    bool reversed = false;
    for (int k = 0; k < 3; ++k) {
      if (c == start[k]) canonical = k;
      if (c == end[k]) canonical = k, reversed = true;
    }
    if (canonical < 0) throw bad("has the letter " + quote(std::string(1, c), 4));
    if (seen[static_cast<std::size_t>(canonical)]) throw bad("names one anatomical axis twice");
    seen[static_cast<std::size_t>(canonical)] = true;
    m.fileAxis[static_cast<std::size_t>(canonical)] = f;
    m.reversed[static_cast<std::size_t>(canonical)] = reversed;
  }
  return m;
}

char orientationLetterFromOme(const std::string& value) {
  std::string v;
  for (char c : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto dash = v.find("-to-");
  if (dash == std::string::npos) return 0;
  const std::string from = v.substr(0, dash);
  if (from == "anterior" || from == "rostral") return 'a';
  if (from == "posterior" || from == "caudal") return 'p';
  if (from == "superior" || from == "dorsal") return 's';
  if (from == "inferior" || from == "ventral") return 'i';
  if (from == "right") return 'r';
  if (from == "left") return 'l';
  return 0;
}

std::array<double, 3> fileUmToAtlascopeUm(const AxisMapping& m, const std::array<std::int64_t, 3>& fileShape,
                                          const std::array<double, 3>& fileSpacingUm,
                                          const std::array<double, 3>& fileUm) {
  std::array<double, 3> out{};
  for (std::size_t a = 0; a < 3; ++a) {
    const auto f = static_cast<std::size_t>(m.fileAxis[a]);
    double index = fileUm[f] / fileSpacingUm[f];
    if (m.reversed[a]) index = static_cast<double>(fileShape[f] - 1) - index;
    out[a] = (index + 0.5) * fileSpacingUm[f];
  }
  return out;
}

VoxelScatter::VoxelScatter(const std::array<std::int64_t, 3>& fileShape, const AxisMapping& mapping)
    : fileShape_(fileShape) {
  shape_ = toAtlascopeAxes(mapping, fileShape);
  const std::array<std::int64_t, 3> stride{1, shape_[0], shape_[0] * shape_[1]};
  for (std::size_t a = 0; a < 3; ++a) {
    const auto f = static_cast<std::size_t>(mapping.fileAxis[a]);
    auto& t = table_[f];
    t.resize(static_cast<std::size_t>(fileShape[f]));
    for (std::int64_t i = 0; i < fileShape[f]; ++i)
      t[static_cast<std::size_t>(i)] = (mapping.reversed[a] ? fileShape[f] - 1 - i : i) * stride[a];
  }
}

void VoxelScatter::checkBlock(const StackBlock& b, const std::string& source) const {
  for (std::size_t a = 0; a < 3; ++a)
    if (b.origin[a] < 0 || b.extent[a] < 0 || b.origin[a] + b.extent[a] > fileShape_[a])
      throw FileError(source, "a block of voxels lies outside the stack's shape on axis " + std::to_string(a));
}

namespace {
template <class T> T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
} // namespace

std::uint64_t labelAt(const StackBlock& b, std::int64_t offset, const std::string& source) {
  const std::uint8_t* p = b.data + static_cast<std::size_t>(offset) * scalarSize(b.type);
  long double v = 0;
  switch (b.type) {
  case ScalarType::UInt8: return *p;
  case ScalarType::UInt16: return load<std::uint16_t>(p);
  case ScalarType::UInt32: return load<std::uint32_t>(p);
  case ScalarType::UInt64: return load<std::uint64_t>(p);
  case ScalarType::Int8: v = load<std::int8_t>(p); break;
  case ScalarType::Int16: v = load<std::int16_t>(p); break;
  case ScalarType::Int32: v = load<std::int32_t>(p); break;
  case ScalarType::Int64: v = static_cast<long double>(load<std::int64_t>(p)); break;
  case ScalarType::Float32: v = load<float>(p); break;
  case ScalarType::Float64: v = load<double>(p); break;
  }
  if (!(v >= 0) || v != std::floor(v) || v > 18446744073709551615.0L)
    throw FileError(source, "label " + std::to_string(static_cast<double>(v)) + " is not a valid structure id");
  return static_cast<std::uint64_t>(v);
}

} // namespace atlascope
