#pragma once
// The Allen structure ontology as one tree, whatever file it came from.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace atlascope {

using StructureId = std::uint32_t;

struct Structure {
  StructureId id = 0;
  std::string acronym;
  std::string name;
  std::array<std::uint8_t, 3> rgb{255, 255, 255};
  int graphOrder = 0;
  int parent = -1;           // index into the tree; -1 for the root
  std::vector<int> children; // indices, in graph order
  int depth = 0;             // root = 0
};

// One structure as a file states it, before the tree is checked and linked.
struct StructureRecord {
  StructureId id = 0;
  std::optional<StructureId> parentId;
  std::string acronym;
  std::string name;
  std::array<std::uint8_t, 3> rgb{255, 255, 255};
  int graphOrder = 0;
};

class StructureTree {
public:
  StructureTree() = default;
  // Checks the records (unique ids, every parent present, one root, no cycle) and links them.
  // `source` names the file in error messages.
  static StructureTree fromRecords(std::vector<StructureRecord> records, const std::string& source);

  std::size_t size() const { return nodes_.size(); }
  const Structure& operator[](int index) const { return nodes_[static_cast<std::size_t>(index)]; }
  int root() const { return root_; }

  std::optional<int> indexOf(StructureId id) const;
  // Exact acronym first, then case-insensitive (acronyms like "MOs" are typed as "mos").
  std::optional<int> indexOfAcronym(const std::string& acronym) const;
  // An id ("672"), an acronym ("CP") or an exact name ("Caudoputamen").
  std::optional<int> find(const std::string& idAcronymOrName) const;

  // Indices from the root down to `index` (both included).
  std::vector<int> pathFromRoot(int index) const;
  std::string pathString(int index) const; // "root / grey / CH / ... / CA1"
  // `index` and every structure below it, preorder.
  std::vector<int> descendants(int index) const;
  bool isAncestorOrSelf(int ancestor, int index) const;
  // Structures whose acronym or name contains `text` (case-insensitive); exact acronym matches
  // first, then acronym prefixes, then the rest, each in graph order.
  std::vector<int> search(const std::string& text) const;

private:
  std::vector<Structure> nodes_;
  std::unordered_map<StructureId, int> byId_;
  int root_ = -1;
};

// Reads any of the three ontology formats Allen distributes, detected from the contents:
// AllenSDK flat JSON (structure_id_path lists, rgb_triplet), the CSV with parent_structure_id
// (and/or structure_id_path "/997/8/"), or the Allen API's nested JSON (children lists, either a
// bare array or the API's {"msg": [...]} envelope). BrainGlobe's structures.json is the flat form.
StructureTree readOntology(const std::string& path);

} // namespace atlascope
