#pragma once
// How an atlas file's axes become Atlascope's, and the blocks of voxels the stack readers (TIFF,
// Zarr) hand over on the way.
//
// Atlascope's axes (AnnotationVolume): 0 anterior -> posterior, 1 dorsal -> ventral, 2 the
// medio-lateral axis with index 0 on the side Allen calls left ("ML grows towards the animal's
// right"). BrainGlobe describes an array by an orientation string: letter i is the side voxel 0
// of axis i lies on ("asr": anterior, superior, right; so axis 0 runs anterior -> posterior, 1
// superior -> inferior, 2 right -> left). Any string of one letter from each pair a/p, s/i, r/l is
// first brought to "asr" (axes permuted, reversed where the letter is p, i or l); then "asr"
// becomes Atlascope's frame index for index.
//
// The left/right caveat (FORMATS.md, BrainGlobe section). BrainGlobe packages the Allen CCF array
// unflipped and calls its third axis right -> left; Allen calls the same axis of the same array
// left -> right. Both describe one array, so one of them names the hemispheres the other way.
// Atlascope keeps BrainGlobe's axis 2 as it is (so that allen_mouse_25um lands voxel for voxel on
// the bundled CCF and on cells' CCF coordinates: a flip would move every cell to the mirror
// hemisphere) and names hemispheres as Allen does: index 0 of axis 2 is LEFT. Therefore what
// BrainGlobe calls right (hemispheres value 2, and the half below n/2 of a symmetric atlas) is
// what Atlascope calls left, and the reverse. For an atlas packaged from a source whose index 0
// truly is the animal's right, Atlascope's "left" is that animal's right: the names follow the
// CCF convention, not that animal's anatomy. test_brainglobe checks both halves of this rule.
#include "core/Volume.h"

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace atlascope {

// Per Atlascope axis a: the file axis that becomes it and whether it runs reversed.
struct AxisMapping {
  std::array<int, 3> fileAxis{0, 1, 2};
  std::array<bool, 3> reversed{false, false, false};
  bool isIdentity() const;
};

// "asr", "ASR", "lsa", ...: one letter of each pair a/p, s/i, r/l. Anything else is a FileError
// naming `source` and the string.
AxisMapping axisMappingFromOrientation(const std::string& orientation, const std::string& source);
// OME-NGFF anatomical orientation values ("anterior-to-posterior", "right-to-left", also
// dorsal/ventral and rostral/caudal) -> the orientation letter of the axis' start ('a', 'r', ...);
// 0 when the value is none of these.
char orientationLetterFromOme(const std::string& value);

// Atlascope's size, spacing or any per-axis triple from the file's.
template <class T> std::array<T, 3> toAtlascopeAxes(const AxisMapping& m, const std::array<T, 3>& fileValues) {
  return {fileValues[static_cast<std::size_t>(m.fileAxis[0])], fileValues[static_cast<std::size_t>(m.fileAxis[1])],
          fileValues[static_cast<std::size_t>(m.fileAxis[2])]};
}
// A point in the file's micrometres (voxel i's centre at i x spacing, BrainGlobe's mesh
// convention) -> Atlascope's (voxel i's centre at (i + 0.5) x spacing).
std::array<double, 3> fileUmToAtlascopeUm(const AxisMapping& m, const std::array<std::int64_t, 3>& fileShape,
                                          const std::array<double, 3>& fileSpacingUm,
                                          const std::array<double, 3>& fileUm);

// A box of voxels of a 3D stack in the file's axes, C order (the file's axis 2 fastest), host
// byte order, of the stack's scalar type. TIFF pages and Zarr chunks arrive as these.
struct StackBlock {
  std::array<std::int64_t, 3> origin{0, 0, 0};
  std::array<std::int64_t, 3> extent{0, 0, 0};
  ScalarType type = ScalarType::UInt8;
  const std::uint8_t* data = nullptr;
};
using StackBlockSink = std::function<void(const StackBlock&)>;

// Maps the file's voxel (i0, i1, i2) to its linear index in Atlascope's layout (axis 0 fastest).
class VoxelScatter {
public:
  VoxelScatter(const std::array<std::int64_t, 3>& fileShape, const AxisMapping& mapping);
  const std::array<std::int64_t, 3>& atlascopeShape() const { return shape_; }
  std::int64_t voxelCount() const { return shape_[0] * shape_[1] * shape_[2]; }
  std::int64_t index(std::int64_t i0, std::int64_t i1, std::int64_t i2) const {
    return table_[0][static_cast<std::size_t>(i0)] + table_[1][static_cast<std::size_t>(i1)] +
           table_[2][static_cast<std::size_t>(i2)];
  }
  // Calls write(atlascopeIndex, blockOffset) for every voxel of the block (which must lie inside
  // the file's shape; checked, a FileError naming `source` otherwise).
  template <class F> void forEach(const StackBlock& b, const std::string& source, F&& write) const {
    checkBlock(b, source);
    std::int64_t at = 0;
    for (std::int64_t x = 0; x < b.extent[0]; ++x)
      for (std::int64_t y = 0; y < b.extent[1]; ++y) {
        const std::int64_t base =
            table_[0][static_cast<std::size_t>(b.origin[0] + x)] + table_[1][static_cast<std::size_t>(b.origin[1] + y)];
        const std::int64_t* t2 = table_[2].data() + b.origin[2];
        for (std::int64_t z = 0; z < b.extent[2]; ++z, ++at) write(base + t2[z], at);
      }
  }

private:
  void checkBlock(const StackBlock& b, const std::string& source) const;
  std::array<std::int64_t, 3> fileShape_{};
  std::array<std::int64_t, 3> shape_{};
  std::array<std::vector<std::int64_t>, 3> table_;
};

// Reads the scalar at `offset` of a block as an unsigned label; a negative or fractional value
// (a float stack) is a FileError naming `source`.
std::uint64_t labelAt(const StackBlock& b, std::int64_t offset, const std::string& source);

} // namespace atlascope
