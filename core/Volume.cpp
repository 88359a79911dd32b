#include "core/Volume.h"

namespace atlascope {

std::size_t scalarSize(ScalarType t) {
  switch (t) {
  case ScalarType::Int8:
  case ScalarType::UInt8: return 1;
  case ScalarType::Int16:
  case ScalarType::UInt16: return 2;
  case ScalarType::Int32:
  case ScalarType::UInt32:
  case ScalarType::Float32: return 4;
  case ScalarType::Int64:
  case ScalarType::UInt64:
  case ScalarType::Float64: return 8;
  }
  return 1;
}

const char* scalarName(ScalarType t) {
  switch (t) {
  case ScalarType::Int8: return "int8";
  case ScalarType::UInt8: return "uint8";
  case ScalarType::Int16: return "int16";
  case ScalarType::UInt16: return "uint16";
  case ScalarType::Int32: return "int32";
  case ScalarType::UInt32: return "uint32";
  case ScalarType::Int64: return "int64";
  case ScalarType::UInt64: return "uint64";
  case ScalarType::Float32: return "float32";
  case ScalarType::Float64: return "float64";
  }
  return "?";
}

bool isInteger(ScalarType t) { return t != ScalarType::Float32 && t != ScalarType::Float64; }

double Volume::value(std::int64_t n) const {
  switch (type) {
  case ScalarType::Int8: return data<std::int8_t>()[n];
  case ScalarType::UInt8: return data<std::uint8_t>()[n];
  case ScalarType::Int16: return data<std::int16_t>()[n];
  case ScalarType::UInt16: return data<std::uint16_t>()[n];
  case ScalarType::Int32: return data<std::int32_t>()[n];
  case ScalarType::UInt32: return data<std::uint32_t>()[n];
  case ScalarType::Int64: return static_cast<double>(data<std::int64_t>()[n]);
  case ScalarType::UInt64: return static_cast<double>(data<std::uint64_t>()[n]);
  case ScalarType::Float32: return data<float>()[n];
  case ScalarType::Float64: return data<double>()[n];
  }
  return 0.0;
}

} // namespace atlascope
