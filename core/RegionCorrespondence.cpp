#include "core/RegionCorrespondence.h"

#include "core/Assignment.h"
#include "core/Error.h"
#include "core/Palette.h"
#include "core/RegionVolume.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace atlascope {

namespace {
// Regions of `side` (0: A, 1: B) with two or more parts of the other side lying mostly inside.
std::vector<RegionSplit> splitsOf(const std::vector<RegionOverlap>& overlaps, int side, std::size_t regions,
                                  const std::vector<std::int32_t>& labels, const std::vector<std::int64_t>& sizes,
                                  double threshold) {
  std::vector<std::vector<RegionOverlap>> parts(regions);
  for (const RegionOverlap& o : overlaps) {
    const double partInside = side == 0 ? o.shareOfB : o.shareOfA;
    const std::int32_t region = side == 0 ? o.a : o.b;
    if (partInside >= threshold)
      parts[static_cast<std::size_t>(std::lower_bound(labels.begin(), labels.end(), region) - labels.begin())]
          .push_back(o);
  }
  std::vector<RegionSplit> out;
  for (std::size_t r = 0; r < regions; ++r) {
    if (parts[r].size() < 2) continue;
    std::int64_t voxels = 0;
    for (const RegionOverlap& o : parts[r]) voxels += o.voxels;
    const double covered = static_cast<double>(voxels) / static_cast<double>(sizes[r]);
    if (covered < threshold) continue;
    RegionSplit s;
    s.region = labels[r];
    s.parts = std::move(parts[r]);
    std::stable_sort(s.parts.begin(), s.parts.end(),
                     [](const RegionOverlap& x, const RegionOverlap& y) { return x.voxels > y.voxels; });
    s.covered = covered;
    out.push_back(std::move(s));
  }
  return out;
}

// Voxels beyond the first and last section of a dataset unlabelled (the fill's extrapolation).
void keepSectionSpan(RegionVolume& v, const std::vector<float>& ap, const std::vector<std::int32_t>& labels) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t c = 0; c < ap.size(); ++c)
    if (labels[c] >= 0 && std::isfinite(ap[c])) {
      lo = std::min<double>(lo, ap[c]);
      hi = std::max<double>(hi, ap[c]);
    }
  if (!(lo <= hi)) return;
  const auto first = static_cast<std::int64_t>(std::floor(lo / v.voxelUm)),
             last = static_cast<std::int64_t>(std::floor(hi / v.voxelUm));
  for (std::int64_t k = 0; k < v.size[2]; ++k)
    for (std::int64_t j = 0; j < v.size[1]; ++j)
      for (std::int64_t i = 0; i < v.size[0]; ++i)
        if (i < first || i > last) v.labels[static_cast<std::size_t>(i + v.size[0] * (j + v.size[1] * k))] = -1;
}
} // namespace

std::int32_t RegionCorrespondence::matchOfA(std::int32_t regionA) const {
  for (const RegionOverlap& o : oneToOne)
    if (o.a == regionA) return o.b;
  return -1;
}

std::int32_t RegionCorrespondence::matchOfB(std::int32_t regionB) const {
  for (const RegionOverlap& o : oneToOne)
    if (o.b == regionB) return o.a;
  return -1;
}

RegionCorrespondence correspondLabels(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b,
                                      const CorrespondenceOptions& options) {
  if (a.size() != b.size()) throw Error("comparing regions: the two labelings cover different numbers of voxels");
  if (!(options.splitThreshold > 0 && options.splitThreshold <= 1))
    throw Error("comparing regions: the split threshold must be in (0, 1]");
  if (!(options.minimumJaccard >= 0 && options.minimumJaccard <= 1))
    throw Error("comparing regions: the minimum Jaccard must be in [0, 1]");
  RegionCorrespondence r;
  for (std::size_t i = 0; i < a.size(); ++i) {
    r.voxelsA += a[i] >= 0;
    r.voxelsB += b[i] >= 0;
  }
  const Contingency t = contingency(a, b); // items unlabelled on either side are left out
  r.jointVoxels = t.total;
  if (t.total == 0)
    throw Error(
        "comparing regions: no voxel is labelled in both datasets (do their sections reach the same part of the CCF?)");
  r.regionsA = t.referenceLabels;
  r.regionsB = t.predictedLabels;
  r.sizesA = t.referenceSizes;
  r.sizesB = t.predictedSizes;
  r.agreement = agreement(t);
  const auto rows = static_cast<std::int32_t>(r.regionsA.size()),
             columns = static_cast<std::int32_t>(r.regionsB.size());
  std::vector<double> jaccard(static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns), 0.0);
  std::vector<std::int64_t> shared(jaccard.size(), 0);
  for (const auto& [ij, n] : t.cells) {
    const auto i = static_cast<std::size_t>(ij.first), j = static_cast<std::size_t>(ij.second);
    RegionOverlap o;
    o.a = r.regionsA[i];
    o.b = r.regionsB[j];
    o.voxels = n;
    const double sa = static_cast<double>(r.sizesA[i]), sb = static_cast<double>(r.sizesB[j]),
                 nn = static_cast<double>(n);
    o.jaccard = nn / (sa + sb - nn);
    o.shareOfA = nn / sa;
    o.shareOfB = nn / sb;
    jaccard[i * static_cast<std::size_t>(columns) + j] = o.jaccard;
    shared[i * static_cast<std::size_t>(columns) + j] = n;
    r.overlaps.push_back(o);
  }
  const std::vector<std::int32_t> assigned = maximumWeightAssignment(jaccard, rows, columns);
  std::int64_t matched = 0;
  for (std::int32_t i = 0; i < rows; ++i) {
    const std::int32_t j = assigned[static_cast<std::size_t>(i)];
    if (j < 0 ||
        shared[static_cast<std::size_t>(i) * static_cast<std::size_t>(columns) + static_cast<std::size_t>(j)] == 0)
      continue;
    const auto it = std::lower_bound(
        r.overlaps.begin(), r.overlaps.end(),
        std::make_pair(r.regionsA[static_cast<std::size_t>(i)], r.regionsB[static_cast<std::size_t>(j)]),
        [](const RegionOverlap& o, const std::pair<std::int32_t, std::int32_t>& key) {
          return std::make_pair(o.a, o.b) < key;
        });
    if (it->jaccard < options.minimumJaccard) continue;
    r.oneToOne.push_back(*it);
    matched += it->voxels;
  }
  r.matchedShare = static_cast<double>(matched) / static_cast<double>(r.jointVoxels);
  r.splits = splitsOf(r.overlaps, 0, r.regionsA.size(), r.regionsA, r.sizesA, options.splitThreshold);
  r.merges = splitsOf(r.overlaps, 1, r.regionsB.size(), r.regionsB, r.sizesB, options.splitThreshold);
  return r;
}

RegionCorrespondence correspondRegions(const AnnotationVolume& ccf, const CellTable& cellsA,
                                       const std::vector<std::int32_t>& labelsA, const CellTable& cellsB,
                                       const std::vector<std::int32_t>& labelsB, const CorrespondenceOptions& options,
                                       const Progress& progress) {
  RegionVolume volumes[2];
  const CellTable* cells[2] = {&cellsA, &cellsB};
  const std::vector<std::int32_t>* labels[2] = {&labelsA, &labelsB};
  for (int d = 0; d < 2; ++d) {
    const CellTable& c = *cells[d];
    const std::string name =
        c.source.empty() ? (d == 0 ? std::string("the first dataset") : std::string("the second dataset")) : c.source;
    if (!c.hasCcf())
      throw FileError(name, "has no CCF coordinates (obsm['ccf'] or --ccf): its regions cannot be placed in the CCF");
    if (labels[d]->size() != static_cast<std::size_t>(c.size()))
      throw Error("comparing regions: " + name + " has " + std::to_string(c.size()) + " cells but " +
                  std::to_string(labels[d]->size()) + " labels");
    volumes[d] = voxeliseRegions(ccf, c.ccfAp, c.ccfDv, c.ccfMl, *labels[d], options.voxelFactor);
    if (options.sectionSpanOnly) keepSectionSpan(volumes[d], c.ccfAp, *labels[d]);
    if (std::none_of(volumes[d].labels.begin(), volumes[d].labels.end(), [](std::int32_t l) { return l >= 0; }))
      throw FileError(name, "no labelled cell lies inside the CCF's brain");
    progress("voxelising regions", d + 1, 3);
  }
  RegionCorrespondence r = correspondLabels(volumes[0].labels, volumes[1].labels, options);
  r.voxelUm = volumes[0].voxelUm;
  r.gridA = std::move(volumes[0].labels);
  r.gridB = std::move(volumes[1].labels);
  for (std::size_t v = 0; v < r.gridA.size(); ++v)
    if (r.gridA[v] < 0 || r.gridB[v] < 0) r.gridA[v] = r.gridB[v] = -1;
  progress("comparing regions", 3, 3);
  return r;
}

std::vector<std::array<std::uint8_t, 3>> sharedColours(const RegionCorrespondence& r,
                                                       const std::vector<std::array<std::uint8_t, 3>>& coloursA,
                                                       const std::vector<std::array<std::uint8_t, 3>>& coloursB) {
  std::vector<std::array<std::uint8_t, 3>> out = coloursB;
  std::vector<char> matched(out.size(), 0);
  std::set<std::array<std::uint8_t, 3>> worn;
  for (const RegionOverlap& o : r.oneToOne) {
    if (o.a < 0 || o.b < 0 || static_cast<std::size_t>(o.a) >= coloursA.size() ||
        static_cast<std::size_t>(o.b) >= out.size())
      continue;
    out[static_cast<std::size_t>(o.b)] = coloursA[static_cast<std::size_t>(o.a)];
    matched[static_cast<std::size_t>(o.b)] = 1;
    worn.insert(out[static_cast<std::size_t>(o.b)]);
  }
  // Unmatched regions must not look like a matched one; A's own colours are avoided too, so that
  // an unmatched B region is never mistaken for an A region either.
  std::set<std::array<std::uint8_t, 3>> avoid(worn);
  avoid.insert(coloursA.begin(), coloursA.end());
  const auto spare = categoricalPalette(coloursA.size() + out.size() + 64);
  std::size_t next = 0;
  for (std::size_t j = 0; j < out.size(); ++j) {
    if (matched[j] || !worn.count(out[j])) continue;
    while (next < spare.size() &&
           (avoid.count(spare[next]) || std::find(out.begin(), out.end(), spare[next]) != out.end()))
      ++next;
    if (next < spare.size()) out[j] = spare[next++];
  }
  return out;
}

} // namespace atlascope
