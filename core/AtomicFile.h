#pragma once
// Atomic outputs: write to a temporary file beside the target, then rename it over the target
// (one file system, so the rename is atomic). A crash leaves the old file or none, never half a
// file. Plain C calls: safe in processes that load the pip LibTorch (see FileSystem.h).
#include <string>

namespace atlascope {

// A temporary name in the target's folder, keeping the extension (some writers look at it).
std::string temporaryPathFor(const std::string& target);
// Renames `temp` over `target`; on failure removes `temp` and throws a FileError naming `target`.
void moveIntoPlace(const std::string& temp, const std::string& target);
// Writes `bytes` to `target` atomically.
void writeFileAtomically(const std::string& target, const void* data, std::size_t bytes);
// Makes `target` a second name of the finished file `source` (a hard link beside `target`, renamed
// over it): the same bytes without writing them again. Atomic outputs never rewrite a file in
// place, so a later output to `source` leaves `target` as it was. False where the file system
// has no hard links (or `source` is missing): nothing changed, the caller writes `target` itself.
bool linkIntoPlace(const std::string& source, const std::string& target);

} // namespace atlascope
