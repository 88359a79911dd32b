#pragma once
// Errors that reach the user. Every message says which file and what is wrong with it, so the CLI
// can print it as one line and the GUI can show it in a dialog without adding context.
#include <stdexcept>
#include <string>

namespace atlascope {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A problem with the contents of an input file (or the file missing).
class FileError : public Error {
public:
  FileError(const std::string& path, const std::string& problem)
      : Error(path + ": " + problem), path_(path), problem_(problem) {}
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

private:
  std::string path_;
  std::string problem_;
};

// Thrown by long jobs when their CancellationToken fires; not an error the user needs to see.
class Cancelled : public Error {
public:
  Cancelled() : Error("cancelled") {}
};

} // namespace atlascope
