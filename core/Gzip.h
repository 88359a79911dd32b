#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {

// Inflates a gzip (or zlib) stream of `size` bytes into exactly `expected` bytes. A stream that ends
// early, is corrupt, or holds more than `expected` bytes is an error naming `path`.
std::vector<std::uint8_t> inflateExactly(const std::uint8_t* data, std::size_t size, std::size_t expected,
                                         const std::string& path);

// Inflates a whole gzip stream (concatenated members allowed) of unknown decompressed size.
std::vector<std::uint8_t> inflateAll(const std::uint8_t* data, std::size_t size, const std::string& path);

bool looksGzipped(const std::uint8_t* data, std::size_t size);

std::vector<std::uint8_t> readFileBytes(const std::string& path);

} // namespace atlascope
