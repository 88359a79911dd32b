#pragma once
// RFC 4180 CSV/TSV: quoted fields with "" escapes and line breaks inside quotes (the ABC atlas's
// gene names contain commas), CRLF or LF, a header row naming the columns.
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace atlascope {

// One field as a CSV/TSV writer puts it: quoted (with "" escapes) when it holds the delimiter, a
// quote or a line break.
std::string csvField(const std::string& value, char delimiter = ',');

class CsvReader {
public:
  // Opens `path` and reads its header row; the delimiter is ',' unless the name ends in .tsv/.txt
  // or the header contains tabs and no commas.
  explicit CsvReader(const std::string& path);
  CsvReader(std::unique_ptr<std::istream> in, std::string name, char delimiter = ',');

  const std::vector<std::string>& header() const { return header_; }
  std::optional<std::size_t> column(const std::string& name) const;
  // The column's index, or a FileError naming the file and the missing column.
  std::size_t requireColumn(const std::string& name) const;

  // Reads the next row into `fields`; false at the end. A row whose field count differs from
  // the header's is an error naming its line.
  bool next(std::vector<std::string>& fields);
  std::size_t line() const { return line_; }
  const std::string& name() const { return name_; }

private:
  bool readRecord(std::vector<std::string>& fields);

  std::unique_ptr<std::istream> in_;
  std::string name_;
  char delim_ = ',';
  std::vector<std::string> header_;
  std::size_t line_ = 0;
};

} // namespace atlascope
