#pragma once
// Integers read from JSON files. nlohmann's get<int>() on a floating-point value is an unchecked
// static_cast, undefined for 1e300 (fuzz_ontology found it in graph_order), and value("key", 0)
// goes through the same cast. An integer a reader takes from a user's JSON comes through here
// (or is checked with is_number_integer() before get<std::int64_t>()).
#include "core/Error.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace atlascope {

// The value as an integer in [lo, hi], or nothing when it is not a number, not integral, or out of
// range. 3.0 is accepted (JSON writers often emit integers as floats); 3.5 is not.
inline std::optional<long long> jsonInteger(const nlohmann::json& v, long long lo, long long hi) {
  long long out = 0;
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (hi < 0 || u > static_cast<std::uint64_t>(hi)) return std::nullopt;
    out = static_cast<long long>(u);
  } else if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 bounds the cast itself; [lo, hi] is checked below on the integer.
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2e18 || d > 9.2e18) return std::nullopt;
    out = static_cast<long long>(d);
  } else {
    return std::nullopt;
  }
  if (out < lo || out > hi) return std::nullopt;
  return out;
}

// The same, or a FileError naming `source` and `what` ("graph_order of structure 8").
inline long long jsonIntegerOrThrow(const nlohmann::json& v, long long lo, long long hi, const std::string& source,
                                    const std::string& what) {
  if (const auto i = jsonInteger(v, lo, hi)) return *i;
  throw FileError(source, "invalid " + what + ": " + quote(v.dump()) + " (expected an integer from " +
                              std::to_string(lo) + " to " + std::to_string(hi) + ")");
}

} // namespace atlascope
