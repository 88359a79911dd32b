#include "core/FileSystem.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>

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

} // namespace atlascope
