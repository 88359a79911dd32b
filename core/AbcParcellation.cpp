#include "core/AbcParcellation.h"

#include "core/Csv.h"
#include "core/Error.h"

namespace atlascope {

std::unordered_map<StructureId, StructureId> readAbcParcellationTable(const std::string& path) {
  CsvReader csv(path);
  const std::size_t indexCol = csv.requireColumn("parcellation_index");
  const auto idCol = csv.column("structure_id");
  const auto labelCol = csv.column("label");
  if (!idCol && !labelCol) throw FileError(path, "missing required column 'label' (or 'structure_id')");
  std::unordered_map<StructureId, StructureId> map{{0u, 0u}};
  std::vector<std::string> f;
  auto number = [&](const std::string& text, const char* what) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(text, &used);
      if (used != text.size() || v < 0) throw std::invalid_argument(text);
      return static_cast<StructureId>(v);
    } catch (const std::exception&) {
      throw FileError(path, "line " + std::to_string(csv.line()) + ": invalid " + what + " '" + text + "'");
    }
  };
  while (csv.next(f)) {
    const StructureId index = number(f[indexCol], "parcellation_index");
    StructureId id = 0;
    if (idCol) {
      id = number(f[*idCol], "structure_id");
    } else {
      const std::string& label = f[*labelCol];
      const auto dash = label.rfind('-');
      if (dash == std::string::npos) {
        if (label == "unassigned" || label.empty()) continue;
        throw FileError(path, "line " + std::to_string(csv.line()) + ": label '" + label + "' names no structure id");
      }
      id = number(label.substr(dash + 1), "structure id in label");
    }
    if (!map.emplace(index, id).second && map[index] != id)
      throw FileError(path, "parcellation_index " + std::to_string(index) + " is listed twice");
  }
  return map;
}

} // namespace atlascope
