#include "core/AnnotationVolume.h"

#include "core/Error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace atlascope {
namespace {

template <class T>
void encode(const Volume& vol, std::vector<AnnotationVolume::Code>& codes, std::vector<StructureId>& ids,
            const std::string& source) {
  const T* src = vol.data<T>();
  const std::size_t n = static_cast<std::size_t>(vol.voxelCount());
  codes.resize(n);
  std::unordered_map<StructureId, AnnotationVolume::Code> codeOf{{0u, 0}};
  // Labels come in long runs: remember the last one to skip most hash lookups.
  T last = 0;
  AnnotationVolume::Code lastCode = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T v = src[i];
    if (v != last || i == 0) {
      if (v < 0 || static_cast<std::uint64_t>(v) > 0xFFFFFFFFull)
        throw FileError(source, "label " + std::to_string(static_cast<long long>(v)) + " at voxel " +
                                    std::to_string(i) + " is not a valid structure id");
      const auto id = static_cast<StructureId>(v);
      auto it = codeOf.find(id);
      if (it == codeOf.end()) {
        if (ids.size() > 0xFFFF) throw FileError(source, "more than 65535 distinct labels");
        it = codeOf.emplace(id, static_cast<AnnotationVolume::Code>(ids.size())).first;
        ids.push_back(id);
      }
      last = v;
      lastCode = it->second;
    }
    codes[i] = lastCode;
  }
}

} // namespace

AnnotationVolume AnnotationVolume::fromVolume(const Volume& vol, const std::string& source) {
  if (!isInteger(vol.type))
    throw FileError(source,
                    std::string("an annotation must hold integer labels, this volume holds ") + scalarName(vol.type));
  AnnotationVolume a;
  a.size_ = vol.size;
  const bool mm = vol.unit == "mm" || (vol.unit.empty() && vol.spacing[0] < 1.0);
  for (int i = 0; i < 3; ++i)
    a.spacing_[static_cast<std::size_t>(i)] = vol.spacing[static_cast<std::size_t>(i)] * (mm ? 1000.0 : 1.0);
  switch (vol.type) {
  case ScalarType::Int8: encode<std::int8_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::UInt8: encode<std::uint8_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::Int16: encode<std::int16_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::UInt16: encode<std::uint16_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::Int32: encode<std::int32_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::UInt32: encode<std::uint32_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::Int64: encode<std::int64_t>(vol, a.codes_, a.ids_, source); break;
  case ScalarType::UInt64: encode<std::uint64_t>(vol, a.codes_, a.ids_, source); break;
  default: break;
  }
  return a;
}

AnnotationVolume AnnotationVolume::fromCodes(const std::array<std::int64_t, 3>& size,
                                             const std::array<double, 3>& spacingUm, std::vector<Code> codes,
                                             std::vector<StructureId> ids) {
  AnnotationVolume a;
  a.size_ = size;
  a.spacing_ = spacingUm;
  a.codes_ = std::move(codes);
  a.ids_ = std::move(ids);
  if (a.ids_.empty() || a.ids_[0] != 0) throw Error("annotation codes: code 0 must be id 0");
  if (static_cast<std::int64_t>(a.codes_.size()) != a.voxelCount()) throw Error("annotation codes: wrong count");
  return a;
}

std::optional<VoxelIndex> AnnotationVolume::voxelAt(double ap, double dv, double ml) const {
  if (!std::isfinite(ap) || !std::isfinite(dv) || !std::isfinite(ml)) return std::nullopt;
  const VoxelIndex v{static_cast<std::int64_t>(std::floor(ap / spacing_[0])),
                     static_cast<std::int64_t>(std::floor(dv / spacing_[1])),
                     static_cast<std::int64_t>(std::floor(ml / spacing_[2]))};
  if (!contains(v)) return std::nullopt;
  return v;
}

std::array<double, 3> AnnotationVolume::centreUm(const VoxelIndex& v) const {
  return {(static_cast<double>(v.ap) + 0.5) * spacing_[0], (static_cast<double>(v.dv) + 0.5) * spacing_[1],
          (static_cast<double>(v.ml) + 0.5) * spacing_[2]};
}

std::array<double, 3> AnnotationVolume::extentUm() const {
  return {static_cast<double>(size_[0]) * spacing_[0], static_cast<double>(size_[1]) * spacing_[1],
          static_cast<double>(size_[2]) * spacing_[2]};
}

std::vector<StructureId> AnnotationVolume::distinctIds() const {
  std::vector<StructureId> out;
  const auto hist = codeHistogram();
  for (std::size_t c = 1; c < ids_.size(); ++c)
    if (hist[c] > 0 && ids_[c] != 0) out.push_back(ids_[c]);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::int64_t> AnnotationVolume::codeHistogram() const {
  std::vector<std::int64_t> hist(ids_.size(), 0);
  for (Code c : codes_) ++hist[c];
  return hist;
}

std::uint64_t AnnotationVolume::fingerprint() const {
  // FNV-1a over 64-bit words with a final avalanche: fast enough for 77M voxels (~50 ms) and
  // any change of a label moves the hash.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t w) {
    h ^= w;
    h *= 1099511628211ull;
  };
  for (auto s : size_) mix(static_cast<std::uint64_t>(s));
  for (double s : spacing_) {
    std::uint64_t w;
    std::memcpy(&w, &s, sizeof w);
    mix(w);
  }
  for (StructureId id : ids_) mix(id);
  const std::size_t words = codes_.size() / 4;
  const auto* p = reinterpret_cast<const std::uint8_t*>(codes_.data());
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w;
    std::memcpy(&w, p + 8 * i, sizeof w);
    mix(w);
  }
  for (std::size_t i = words * 4; i < codes_.size(); ++i) mix(codes_[i]);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void AnnotationVolume::remap(const std::unordered_map<StructureId, StructureId>& map, const std::string& source) {
  for (std::size_t c = 1; c < ids_.size(); ++c) {
    const auto it = map.find(ids_[c]);
    if (it == map.end())
      throw FileError(source, "label " + std::to_string(ids_[c]) + " of the volume is not in the table");
    ids_[c] = it->second;
  }
}

std::vector<std::uint8_t> codeMaskFor(const AnnotationVolume& annotation, const StructureTree& tree,
                                      int structureIndex) {
  const auto& ids = annotation.codeIds();
  std::vector<std::uint8_t> mask(ids.size(), 0);
  for (std::size_t c = 1; c < ids.size(); ++c) {
    const auto idx = tree.indexOf(ids[c]);
    mask[c] = (idx && tree.isAncestorOrSelf(structureIndex, *idx)) ? 1 : 0;
  }
  return mask;
}

} // namespace atlascope
