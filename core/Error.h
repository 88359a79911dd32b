#pragma once
// Errors that reach the user. Every message says which file and what is wrong with it, so the CLI
// can print it as one line and the GUI can show it in a dialog without adding context.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace atlascope {

// Content of a file quoted in a message: one line (control characters shown as '?') and at most
// `limit` characters, with the full length said when cut. Why: a message is one line the CLI
// prints and the GUI shows in a dialog; echoing a 1 MB CSV field or a multi-line header back to
// the user hides the problem instead of naming it.
inline std::string quote(const std::string& text, std::size_t limit = 100) {
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  out += '\'';
  if (text.size() > limit) out += " (" + std::to_string(text.size()) + " characters, cut)";
  return out;
}

// The same, for a message as a whole: one line, at most `limit` characters (a safety net for
// texts built from third-party libraries' messages, which may quote whole inputs).
inline std::string oneLine(const std::string& text, std::size_t limit = 400) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && out.size() < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  if (text.size() > limit) out += "... (cut)";
  return out;
}

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A problem with the contents of an input file (or the file missing).
class FileError : public Error {
public:
  FileError(const std::string& path, const std::string& problem)
      : Error(oneLine(path, 300) + ": " + oneLine(problem)), path_(path), problem_(oneLine(problem)) {}
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
