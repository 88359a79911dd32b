#include "core/AtomicFile.h"

#include "core/Error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <unistd.h>

namespace atlascope {

std::string temporaryPathFor(const std::string& target) {
  const auto slash = target.find_last_of('/');
  const std::string dir = slash == std::string::npos ? std::string() : target.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  const auto dot = name.find_last_of('.');
  const std::string ext = dot == std::string::npos || dot == 0 ? std::string() : name.substr(dot);
  std::random_device rd;
  return dir + "." + name + ".tmp" + std::to_string(rd() % 1000000) + ext;
}

void moveIntoPlace(const std::string& temp, const std::string& target) {
  if (std::rename(temp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    throw FileError(target, "cannot move the finished file into place: " + why);
  }
}

void writeFileAtomically(const std::string& target, const void* data, std::size_t bytes) {
  const std::string temp = temporaryPathFor(target);
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (!f) throw FileError(target, "cannot write (is the folder writable?)");
  const bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(temp.c_str());
    throw FileError(target, "cannot write (disk full?)");
  }
  moveIntoPlace(temp, target);
}

bool linkIntoPlace(const std::string& source, const std::string& target) {
  const std::string temp = temporaryPathFor(target);
  if (::link(source.c_str(), temp.c_str()) != 0) return false;
  moveIntoPlace(temp, target);
  return true;
}

} // namespace atlascope
