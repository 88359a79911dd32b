#pragma once
#include <string>
#include <vector>

namespace atlascope {
// Folder listing and removal with POSIX calls. Why not std::filesystem::remove_all: in a process
// that loads the pip LibTorch (the CUDA worker), libtorch exports its own std::filesystem symbols
// (built against another libstdc++), and remove_all then jumps into incompatible code and crashes
// (seen on the GPU machine). Plain calls like exists/rename were unaffected.
std::vector<std::string> listFolder(const std::string& dir); // names, no "." / ".."
void removeFolder(const std::string& dir);                   // the folder and the files in it
// What a cached copy was made from: the absolute path, size and modification time (ns) of a file
// or folder, so that any change to it gives another identity. A FileError when it cannot be read.
std::string fileIdentity(const std::string& path);
// Where caches go: $ATLASCOPE_CACHE_DIR, $XDG_CACHE_HOME/atlascope or ~/.cache/atlascope.
std::string defaultCacheDir();
} // namespace atlascope
