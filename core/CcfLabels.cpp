#include "core/CcfLabels.h"

#include "core/Error.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace atlascope {

std::vector<std::int32_t> ccfLevelLabels(const StructureTree& tree, const CcfLevel& level) {
  std::vector<std::int32_t> roll(tree.size(), -1);
  if (level.spec == "leaf") {
    for (std::size_t i = 0; i < tree.size(); ++i) roll[i] = static_cast<std::int32_t>(i);
  } else if (level.spec.rfind("depth:", 0) == 0) {
    int depth = 0;
    try {
      depth = std::stoi(level.spec.substr(6));
    } catch (const std::exception&) {
      throw Error("bad level '" + level.spec + "'");
    }
    for (std::size_t i = 0; i < tree.size(); ++i) {
      const auto path = tree.pathFromRoot(static_cast<int>(i));
      roll[i] = path[static_cast<std::size_t>(std::min<int>(depth, static_cast<int>(path.size()) - 1))];
    }
  } else if (level.spec == "major") {
    for (const char* acr :
         {"Isocortex", "OLF", "HPF", "CTXsp", "STR", "PAL", "TH", "HY", "MB", "P", "MY", "CB", "fiber tracts", "VS"})
      if (const auto d = tree.indexOfAcronym(acr))
        for (int i : tree.descendants(*d)) roll[static_cast<std::size_t>(i)] = *d;
  } else {
    throw Error("unknown CCF level '" + level.spec + "' (leaf, depth:N or major)");
  }
  return roll;
}

void requireCcfSpace(const Atlas& atlas) {
  static constexpr double kCcfExtentUm[3] = {13200, 8000, 11400};
  const auto e = atlas.annotation().extentUm();
  const auto s = atlas.annotation().spacingUm();
  for (std::size_t i = 0; i < 3; ++i)
    if (std::abs(e[i] - kCcfExtentUm[i]) > s[i])
      throw Error("atlas " + atlas.name() + " does not cover the CCF's space (its extent " + std::to_string(e[0]) +
                  " x " + std::to_string(e[1]) + " x " + std::to_string(e[2]) +
                  " um, the CCF's 13200 x 8000 x 11400 um): cells' CCF coordinates do not land on it");
}

std::vector<std::int32_t> ccfLabels(const Atlas& atlas, const CellTable& cells, const CcfLevel& level) {
  if (!cells.hasCcf()) throw Error("the dataset has no CCF coordinates (obsm['ccf'] or --ccf)");
  const std::vector<std::int32_t> roll = ccfLevelLabels(atlas.structures(), level);
  std::vector<std::int32_t> out(static_cast<std::size_t>(cells.size()), -1);
  for (std::int64_t c = 0; c < cells.size(); ++c) {
    const auto k = static_cast<std::size_t>(c);
    const auto s = atlas.structureAtUm(cells.ccfAp[k], cells.ccfDv[k], cells.ccfMl[k]);
    if (s) out[k] = roll[static_cast<std::size_t>(*s)];
  }
  return out;
}

} // namespace atlascope

namespace atlascope {

std::vector<std::int32_t> ccfVoxelLabels(const Atlas& atlas, int factor, const CcfLevel& level) {
  if (factor < 1) throw Error("CCF voxels: the voxel factor must be at least 1");
  const std::vector<std::int32_t> roll = ccfLevelLabels(atlas.structures(), level);
  const AnnotationVolume& ann = atlas.annotation();
  const auto full = ann.size();
  std::array<std::int64_t, 3> size{};
  for (std::size_t a = 0; a < 3; ++a) size[a] = (full[a] + factor - 1) / factor;
  std::vector<std::int32_t> out(static_cast<std::size_t>(size[0] * size[1] * size[2]), -1);
  std::size_t at = 0;
  for (std::int64_t k = 0; k < size[2]; ++k)
    for (std::int64_t j = 0; j < size[1]; ++j)
      for (std::int64_t i = 0; i < size[0]; ++i, ++at) {
        // The centre voxel, as RegionVolume's brain mask takes it.
        const VoxelIndex centre{std::min(full[0] - 1, i * factor + factor / 2),
                                std::min(full[1] - 1, j * factor + factor / 2),
                                std::min(full[2] - 1, k * factor + factor / 2)};
        if (const auto s = atlas.structureAt(centre)) out[at] = roll[static_cast<std::size_t>(*s)];
      }
  return out;
}

} // namespace atlascope
