#include "core/CcfLabels.h"

#include "core/Error.h"

namespace atlascope {

std::vector<std::int32_t> ccfLabels(const Atlas& atlas, const CellTable& cells, const CcfLevel& level) {
  if (!cells.hasCcf()) throw Error("the dataset has no CCF coordinates (obsm['ccf'] or --ccf)");
  const StructureTree& tree = atlas.structures();
  // Per tree index, the label at the chosen level.
  std::vector<std::int32_t> roll(tree.size(), -1);
  if (level.spec == "leaf") {
    for (std::size_t i = 0; i < tree.size(); ++i) roll[i] = static_cast<std::int32_t>(i);
  } else if (level.spec.rfind("depth:", 0) == 0) {
    int depth = 0;
    try { depth = std::stoi(level.spec.substr(6)); } catch (const std::exception&) { throw Error("bad level '" + level.spec + "'"); }
    for (std::size_t i = 0; i < tree.size(); ++i) {
      const auto path = tree.pathFromRoot(static_cast<int>(i));
      roll[i] = path[static_cast<std::size_t>(std::min<int>(depth, static_cast<int>(path.size()) - 1))];
    }
  } else if (level.spec == "major") {
    for (const char* acr : {"Isocortex", "OLF", "HPF", "CTXsp", "STR", "PAL", "TH", "HY", "MB", "P", "MY", "CB", "fiber tracts", "VS"})
      if (const auto d = tree.indexOfAcronym(acr))
        for (int i : tree.descendants(*d)) roll[static_cast<std::size_t>(i)] = *d;
  } else {
    throw Error("unknown CCF level '" + level.spec + "' (leaf, depth:N or major)");
  }
  std::vector<std::int32_t> out(static_cast<std::size_t>(cells.size()), -1);
  for (std::int64_t c = 0; c < cells.size(); ++c) {
    const auto k = static_cast<std::size_t>(c);
    const auto s = atlas.structureAtUm(cells.ccfAp[k], cells.ccfDv[k], cells.ccfMl[k]);
    if (s) out[k] = roll[static_cast<std::size_t>(*s)];
  }
  return out;
}

} // namespace atlascope
