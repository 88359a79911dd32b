#include "core/StructureTree.h"

#include "core/Error.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace atlascope {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string label(const StructureRecord& r) {
  return std::to_string(r.id) + (r.acronym.empty() ? "" : " (" + r.acronym + ")");
}

} // namespace

StructureTree StructureTree::fromRecords(std::vector<StructureRecord> records, const std::string& source) {
  if (records.empty()) throw FileError(source, "the ontology holds no structures");
  StructureTree tree;
  tree.nodes_.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (!tree.byId_.emplace(r.id, static_cast<int>(i)).second)
      throw FileError(source, "duplicate structure id " + std::to_string(r.id));
    Structure s;
    s.id = r.id;
    s.acronym = r.acronym;
    s.name = r.name;
    s.rgb = r.rgb;
    s.graphOrder = r.graphOrder;
    tree.nodes_.push_back(std::move(s));
  }
  std::vector<int> roots;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (!r.parentId) {
      roots.push_back(static_cast<int>(i));
      continue;
    }
    const auto it = tree.byId_.find(*r.parentId);
    if (it == tree.byId_.end())
      throw FileError(source, "structure " + label(r) + " names parent " + std::to_string(*r.parentId) +
                                  ", which is not in the ontology");
    if (it->second == static_cast<int>(i))
      throw FileError(source, "the ontology has a cycle: structure " + label(r) + " is its own parent");
    tree.nodes_[i].parent = it->second;
  }
  // Cycles: walk up from every node; a walk longer than the node count never reaches a root.
  for (std::size_t i = 0; i < records.size(); ++i) {
    int n = static_cast<int>(i);
    std::size_t steps = 0;
    while (tree.nodes_[static_cast<std::size_t>(n)].parent >= 0) {
      n = tree.nodes_[static_cast<std::size_t>(n)].parent;
      if (++steps > records.size())
        throw FileError(source, "the ontology has a cycle through structure " + label(records[i]));
    }
  }
  if (roots.size() != 1) {
    std::string names;
    for (std::size_t k = 0; k < roots.size() && k < 5; ++k)
      names += (k ? ", " : "") + label(records[static_cast<std::size_t>(roots[k])]);
    throw FileError(source, std::to_string(roots.size()) + " structures have no parent" +
                                (names.empty() ? "" : " (" + names + ")") + ": an ontology has exactly one root");
  }
  tree.root_ = roots[0];
  for (std::size_t i = 0; i < tree.nodes_.size(); ++i)
    if (tree.nodes_[i].parent >= 0)
      tree.nodes_[static_cast<std::size_t>(tree.nodes_[i].parent)].children.push_back(static_cast<int>(i));
  for (auto& s : tree.nodes_)
    std::stable_sort(s.children.begin(), s.children.end(), [&](int a, int b) {
      return tree.nodes_[static_cast<std::size_t>(a)].graphOrder < tree.nodes_[static_cast<std::size_t>(b)].graphOrder;
    });
  // Depths by a preorder walk from the root (no recursion: the tree can be deep in other atlases).
  std::vector<int> stack{tree.root_};
  while (!stack.empty()) {
    const int n = stack.back();
    stack.pop_back();
    for (int c : tree.nodes_[static_cast<std::size_t>(n)].children) {
      tree.nodes_[static_cast<std::size_t>(c)].depth = tree.nodes_[static_cast<std::size_t>(n)].depth + 1;
      stack.push_back(c);
    }
  }
  return tree;
}

std::optional<int> StructureTree::indexOf(StructureId id) const {
  const auto it = byId_.find(id);
  if (it == byId_.end()) return std::nullopt;
  return it->second;
}

std::optional<int> StructureTree::indexOfAcronym(const std::string& acronym) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].acronym == acronym) return static_cast<int>(i);
  const std::string want = lower(acronym);
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (lower(nodes_[i].acronym) == want) return static_cast<int>(i);
  return std::nullopt;
}

std::optional<int> StructureTree::find(const std::string& text) const {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    try {
      if (auto i = indexOf(static_cast<StructureId>(std::stoull(text)))) return i;
    } catch (const std::out_of_range&) {}
  }
  if (auto i = indexOfAcronym(text)) return i;
  const std::string want = lower(text);
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (lower(nodes_[i].name) == want) return static_cast<int>(i);
  return std::nullopt;
}

std::vector<int> StructureTree::pathFromRoot(int index) const {
  std::vector<int> path;
  for (int n = index; n >= 0; n = nodes_[static_cast<std::size_t>(n)].parent) path.push_back(n);
  std::reverse(path.begin(), path.end());
  return path;
}

std::string StructureTree::pathString(int index) const {
  std::string out;
  for (int n : pathFromRoot(index)) out += (out.empty() ? "" : " / ") + nodes_[static_cast<std::size_t>(n)].acronym;
  return out;
}

std::vector<int> StructureTree::descendants(int index) const {
  std::vector<int> out;
  std::vector<int> stack{index};
  while (!stack.empty()) {
    const int n = stack.back();
    stack.pop_back();
    out.push_back(n);
    const auto& ch = nodes_[static_cast<std::size_t>(n)].children;
    for (auto it = ch.rbegin(); it != ch.rend(); ++it) stack.push_back(*it);
  }
  return out;
}

bool StructureTree::isAncestorOrSelf(int ancestor, int index) const {
  for (int n = index; n >= 0; n = nodes_[static_cast<std::size_t>(n)].parent)
    if (n == ancestor) return true;
  return false;
}

std::vector<int> StructureTree::search(const std::string& text) const {
  const std::string want = lower(text);
  std::vector<std::pair<int, int>> hits; // (rank, index)
  if (want.empty()) return {};
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const std::string a = lower(nodes_[i].acronym), n = lower(nodes_[i].name);
    int rank = -1;
    if (a == want)
      rank = 0;
    else if (a.rfind(want, 0) == 0)
      rank = 1;
    else if (a.find(want) != std::string::npos || n.find(want) != std::string::npos)
      rank = 2;
    if (rank >= 0) hits.emplace_back(rank, static_cast<int>(i));
  }
  std::stable_sort(hits.begin(), hits.end(), [&](const auto& x, const auto& y) {
    if (x.first != y.first) return x.first < y.first;
    return nodes_[static_cast<std::size_t>(x.second)].graphOrder <
           nodes_[static_cast<std::size_t>(y.second)].graphOrder;
  });
  std::vector<int> out;
  for (const auto& h : hits) out.push_back(h.second);
  return out;
}

} // namespace atlascope
