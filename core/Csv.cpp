#include "core/Csv.h"

#include "core/Error.h"

#include <fstream>

namespace atlascope {

CsvReader::CsvReader(const std::string& path) : name_(path) {
  auto f = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*f) throw FileError(path, "cannot open file");
  in_ = std::move(f);
  const bool tsvName = path.size() > 4 &&
                       (path.compare(path.size() - 4, 4, ".tsv") == 0 || path.compare(path.size() - 4, 4, ".txt") == 0);
  delim_ = tsvName ? '\t' : ',';
  if (!readRecord(header_)) throw FileError(path, "empty file (no header row)");
  if (!tsvName && header_.size() == 1 && header_[0].find('\t') != std::string::npos) {
    // A tab-separated file with a .csv name: re-split the header.
    delim_ = '\t';
    std::vector<std::string> cols;
    std::string cur;
    for (char c : header_[0]) {
      if (c == '\t') {
        cols.push_back(cur);
        cur.clear();
      } else
        cur += c;
    }
    cols.push_back(cur);
    header_ = cols;
  }
  if (!header_.empty() && header_[0].size() >= 3 && header_[0].compare(0, 3, "\xEF\xBB\xBF") == 0)
    header_[0].erase(0, 3); // UTF-8 byte order mark
}

CsvReader::CsvReader(std::unique_ptr<std::istream> in, std::string name, char delimiter)
    : in_(std::move(in)), name_(std::move(name)), delim_(delimiter) {
  if (!readRecord(header_)) throw FileError(name_, "empty file (no header row)");
}

std::optional<std::size_t> CsvReader::column(const std::string& name) const {
  for (std::size_t i = 0; i < header_.size(); ++i)
    if (header_[i] == name) return i;
  return std::nullopt;
}

std::size_t CsvReader::requireColumn(const std::string& name) const {
  if (auto c = column(name)) return *c;
  throw FileError(name_, "missing required column " + quote(name));
}

bool CsvReader::readRecord(std::vector<std::string>& fields) {
  fields.clear();
  std::istream& in = *in_;
  int c = in.get();
  if (c == EOF) return false;
  ++line_;
  std::string cur;
  bool quoted = false, any = false;
  while (true) {
    if (quoted) {
      if (c == EOF) throw FileError(name_, "line " + std::to_string(line_) + ": unterminated quoted field");
      if (c == '"') {
        if (in.peek() == '"') {
          cur += '"';
          in.get();
        } else
          quoted = false;
      } else {
        if (c == '\n') ++line_;
        cur += static_cast<char>(c);
      }
    } else {
      if (c == EOF || c == '\n') {
        if (!cur.empty() && cur.back() == '\r') cur.pop_back();
        fields.push_back(std::move(cur));
        return true;
      }
      if (c == delim_) {
        fields.push_back(std::move(cur));
        cur.clear();
      } else if (c == '"' && cur.empty())
        quoted = true;
      else
        cur += static_cast<char>(c);
    }
    any = true;
    c = in.get();
  }
  (void)any;
}

bool CsvReader::next(std::vector<std::string>& fields) {
  while (readRecord(fields)) {
    if (fields.size() == 1 && fields[0].empty()) continue; // blank line
    if (fields.size() != header_.size())
      throw FileError(name_, "line " + std::to_string(line_) + " has " + std::to_string(fields.size()) +
                                 " fields, the header has " + std::to_string(header_.size()));
    return true;
  }
  return false;
}

std::string csvField(const std::string& value, char delimiter) {
  if (value.find_first_of(std::string("\"\r\n") + delimiter) == std::string::npos) return value;
  std::string q = "\"";
  for (char c : value) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

} // namespace atlascope
