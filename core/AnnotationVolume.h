#pragma once
// A label volume in CCF orientation: axis 0 anterior->posterior, 1 dorsal->ventral, 2 left->right
// (Allen's convention; ML grows towards the animal's right). Voxel (0,0,0)'s corner is the CCF
// origin; voxel centres lie at (index + 0.5) * spacing micrometres.
//
// Labels are stored as 16-bit codes into a table of structure ids: the CCF uses ~670 distinct ids
// (some above 2^31), so codes halve the memory of the 25 um volume (154 MB instead of 308 MB) and
// make "is this voxel in region R or below it" a lookup in a ~700-entry table.
#include "core/StructureTree.h"
#include "core/Volume.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace atlascope {

struct VoxelIndex {
  std::int64_t ap = 0, dv = 0, ml = 0;
  bool operator==(const VoxelIndex& o) const { return ap == o.ap && dv == o.dv && ml == o.ml; }
};

class AnnotationVolume {
public:
  using Code = std::uint16_t;

  AnnotationVolume() = default;
  // From an integer volume of structure ids. Spacing is taken in micrometres: a volume whose unit
  // is mm (NIfTI xyzt_units, NRRD space units), or that states no unit and a spacing below 1
  // (no CCF volume has sub-micrometre voxels), is converted from mm.
  static AnnotationVolume fromVolume(const Volume& volume, const std::string& source);
  // From codes already made (the BrainGlobe readers encode while they read): `codes` in this
  // class' layout (axis 0 fastest), `ids` code -> structure id with ids[0] == 0.
  static AnnotationVolume fromCodes(const std::array<std::int64_t, 3>& size, const std::array<double, 3>& spacingUm,
                                    std::vector<Code> codes, std::vector<StructureId> ids);

  const std::array<std::int64_t, 3>& size() const { return size_; }
  const std::array<double, 3>& spacingUm() const { return spacing_; }
  std::int64_t voxelCount() const { return size_[0] * size_[1] * size_[2]; }
  std::int64_t linearIndex(const VoxelIndex& v) const { return v.ap + size_[0] * (v.dv + size_[1] * v.ml); }

  const std::vector<Code>& codes() const { return codes_; }
  // Code -> structure id; code 0 is always id 0 (outside the brain).
  const std::vector<StructureId>& codeIds() const { return ids_; }
  StructureId idAt(const VoxelIndex& v) const { return ids_[codes_[static_cast<std::size_t>(linearIndex(v))]]; }
  bool contains(const VoxelIndex& v) const {
    return v.ap >= 0 && v.dv >= 0 && v.ml >= 0 && v.ap < size_[0] && v.dv < size_[1] && v.ml < size_[2];
  }

  // CCF micrometres (AP, DV, ML) -> the voxel holding that point; nullopt outside the volume.
  std::optional<VoxelIndex> voxelAt(double apUm, double dvUm, double mlUm) const;
  // The centre of a voxel in CCF micrometres.
  std::array<double, 3> centreUm(const VoxelIndex& v) const;
  // The volume's extent in micrometres.
  std::array<double, 3> extentUm() const;

  // Non-zero structure ids present, ascending.
  std::vector<StructureId> distinctIds() const;
  // Voxel count per code.
  std::vector<std::int64_t> codeHistogram() const;

  // A 64-bit hash of the labels, ids, size and spacing: the key of derived data cached on disk
  // (region surfaces), independent of where the file lives.
  std::uint64_t fingerprint() const;

  // Replaces every label through `map` (e.g. ABC parcellation index -> structure id); a label
  // missing from the map is an error naming it.
  void remap(const std::unordered_map<StructureId, StructureId>& map, const std::string& source);

private:
  std::array<std::int64_t, 3> size_{0, 0, 0};
  std::array<double, 3> spacing_{25, 25, 25};
  std::vector<Code> codes_;
  std::vector<StructureId> ids_{0};
};

// Per code: true when the code's structure is `structureIndex` or lies below it in `tree`.
// Ids absent from the tree match nothing (and are reported by Atlas::unknownIds()).
std::vector<std::uint8_t> codeMaskFor(const AnnotationVolume& annotation, const StructureTree& tree,
                                      int structureIndex);

} // namespace atlascope
