#pragma once
// Allocations sized by a file's header, bounded before they are made. A header is a claim by
// whoever wrote the file: "sizes 100000 100000 100000", "X is 480 x 2^40", "this zip member
// inflates to 4 GB". Each such size is checked against what the file can hold (its size, or its
// size times the largest ratio the compression can reach) and against the memory this machine
// has available, and a refusal names the file, the field and the size. Why not catch bad_alloc:
// on Linux a large allocation usually succeeds (overcommit) and the process dies later, in the
// OOM killer, taking the window and the user's work with it; a loop sized by a header (one name
// per claimed gene) hangs instead of failing.
#include <cstdint>
#include <string>

namespace atlascope {

// deflate's largest possible expansion (zlib's technical note: about 1032:1); a gzip or zip
// member, or an HDF5 deflate chunk, cannot inflate to more than this times its compressed size.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// The bytes a reader may allocate for one object: MemAvailable (/proc/meminfo), less a margin,
// or the limit set below when smaller.
std::uint64_t memoryAvailable();
// A lower cap for tests and fuzzers (0: none): libFuzzer treats a 2 GB malloc as a crash even
// when the machine has the memory, and a test wants a small, fixed budget.
void setMemoryLimit(std::uint64_t bytes);

// Throws a FileError "<field> needs <bytes> (...) but ..." unless `bytes` fits both `fileCanHold`
// (pass UINT64_MAX when the file does not bound it) and the memory available.
void checkAllocation(const std::string& path, const std::string& field, std::uint64_t bytes, std::uint64_t fileCanHold);

// a * b, or UINT64_MAX when it overflows (sizes from headers multiply to more than 2^64).
std::uint64_t saturatingMultiply(std::uint64_t a, std::uint64_t b);

// "1.5 GB", "512 bytes": sizes in messages.
std::string describeBytes(std::uint64_t bytes);

} // namespace atlascope
