#include "core/FileSystem.h"

#include "core/Error.h"

#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace atlascope {

std::vector<std::string> listFolder(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

void removeFolder(const std::string& dir) {
  for (const auto& n : listFolder(dir)) std::remove((dir + "/" + n).c_str());
  ::rmdir(dir.c_str());
}

std::string fileIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw FileError(path, "cannot read it");
  return std::filesystem::absolute(path).lexically_normal().string() + "|" + std::to_string(st.st_size) + "|" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

std::string defaultCacheDir() {
  namespace fs = std::filesystem;
  if (const char* d = std::getenv("ATLASCOPE_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "atlascope").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "atlascope").string();
  return (fs::temp_directory_path() / "atlascope-cache").string();
}

} // namespace atlascope
