#include "core/SyntheticBrain.h"

#include "core/Error.h"
#include "core/Hdf5Writer.h"
#include "core/Neighborhood.h"
#include "core/Palette.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace atlascope {

namespace {

// splitmix64 / xoshiro256**: fast, seedable per (seed, section) so sections are independent.
struct Rng {
  std::uint64_t s[4];
  explicit Rng(std::uint64_t seed) {
    for (auto& x : s) {
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      x = z ^ (z >> 31);
    }
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() { // Box-Muller
    const double u = std::max(uniform(), 1e-300), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  // Marsaglia-Tsang, shape k >= 1 (the NB dispersion below is 2), scale 1.
  double gamma(double k) {
    const double d = k - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
    }
  }
  std::int64_t poisson(double lambda) {
    if (lambda < 30) { // inversion
      double p = std::exp(-lambda), sum = p, u = uniform();
      std::int64_t k = 0;
      while (u > sum && k < 1000) {
        ++k;
        p *= lambda / static_cast<double>(k);
        sum += p;
      }
      return k;
    }
    return std::max<std::int64_t>(0, static_cast<std::int64_t>(std::lround(lambda + std::sqrt(lambda) * normal())));
  }
};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 32);
}

constexpr int kGlia = 6;
const char* kGliaNames[kGlia] = {"Astro", "Oligo", "OPC", "Microglia", "Endo", "VLMC"};

struct Composition {
  std::vector<int> types;
  std::vector<double> cdf;
};

// The mix of a CCF region (or one part of a split region): glia everywhere (35%), three types
// from the parent's pool (so siblings look alike) and three of its own.
Composition makeComposition(std::uint64_t seed, std::uint64_t key, std::uint64_t parentKey, int cellTypes) {
  Composition c;
  std::vector<double> w;
  const double glia[kGlia] = {0.12, 0.10, 0.04, 0.04, 0.04, 0.01};
  for (int g = 0; g < kGlia; ++g) {
    c.types.push_back(g);
    w.push_back(glia[g]);
  }
  const int neurons = std::max(1, cellTypes - kGlia);
  for (int k = 0; k < 6; ++k) {
    Rng r(mix(seed, mix(k < 3 ? parentKey : key, static_cast<std::uint64_t>(k))));
    c.types.push_back(kGlia + static_cast<int>(r.next() % static_cast<std::uint64_t>(neurons)));
    w.push_back(0.65 / 6.0 * (0.3 + 1.4 * r.uniform()));
  }
  double total = 0;
  for (double x : w) total += x;
  double acc = 0;
  for (double x : w) {
    acc += x / total;
    c.cdf.push_back(acc);
  }
  return c;
}

// A region's expression programme: per gene, the factor its neurons' mean is multiplied by.
// Real neurons of one type differ from region to region (the ABC atlas's clusters are largely
// regional, and gradients run through cortex, striatum and thalamus); without that, composition
// would be the only regional signal and a model reading expression could not find more than a
// cell-type census does. Half of a region's programme is its parent's (siblings are alike);
// about one gene in ten is changed at each level, by a log-normal factor (sd 0.5 in log).
std::vector<float> makeExpressionProgramme(std::uint64_t seed, std::uint64_t key, std::uint64_t parentKey, int genes) {
  std::vector<float> f(static_cast<std::size_t>(genes), 1.0f);
  for (const auto& [k, weight] : {std::make_pair(parentKey, 0.7), std::make_pair(key, 0.7)}) {
    Rng r(mix(seed, mix(k, 0xE4B5)));
    for (int g = 0; g < genes; ++g)
      if (r.uniform() < 0.1) f[static_cast<std::size_t>(g)] *= static_cast<float>(std::exp(weight * r.normal()));
  }
  return f;
}

// How another animal's body differs from the CCF's: per axis, three plane waves of random
// direction, wavelength (4-8 mm) and phase, each a third of the amplitude, so the displacement
// is smooth at the scale of regions, never more than the amplitude, and the same for a seed.
class Displacement {
public:
  Displacement(std::uint64_t seed, double amplitudeUm) : amplitude_(amplitudeUm) {
    Rng r(mix(seed, 0xDEF0));
    for (auto& axis : waves_)
      for (Wave& w : axis) {
        double k[3], norm = 0;
        do {
          norm = 0;
          for (double& c : k) {
            c = r.normal();
            norm += c * c;
          }
        } while (norm < 1e-12);
        const double wavenumber = 6.283185307179586 / (4000.0 + 4000.0 * r.uniform());
        for (int a = 0; a < 3; ++a) w.k[a] = k[a] / std::sqrt(norm) * wavenumber;
        w.phase = 6.283185307179586 * r.uniform();
      }
  }
  bool active() const { return amplitude_ > 0; }
  // Moves (ap, dv, ml) um by the displacement at that point.
  void apply(double& ap, double& dv, double& ml) const {
    const double p[3] = {ap, dv, ml};
    double d[3] = {0, 0, 0};
    for (int a = 0; a < 3; ++a)
      for (const Wave& w : waves_[static_cast<std::size_t>(a)])
        d[a] += amplitude_ / 3.0 * std::sin(w.k[0] * p[0] + w.k[1] * p[1] + w.k[2] * p[2] + w.phase);
    ap += d[0];
    dv += d[1];
    ml += d[2];
  }

private:
  struct Wave {
    double k[3];
    double phase;
  };
  double amplitude_;
  std::array<std::array<Wave, 3>, 3> waves_{};
};

} // namespace

SyntheticBrainSummary generateSyntheticBrain(const Atlas& atlas, const SyntheticBrainOptions& opt,
                                             const std::string& outPath, const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  if (opt.genes < 1 || opt.cellTypes < kGlia + 1) throw Error("generate: need at least 1 gene and 7 cell types");
  if (!(opt.cellsPerMm2 > 0) || !(opt.sectionSpacingUm > 0))
    throw Error("generate: density and spacing must be positive");
  if (!std::isfinite(opt.sectionOffsetUm)) throw Error("generate: the section offset must be a number of um");
  if (!(opt.deformationUm >= 0) || opt.deformationUm > 2000)
    throw Error("generate: the deformation must be between 0 and 2000 um");
  const std::uint64_t animal = opt.animalSeed != 0 ? opt.animalSeed : opt.seed; // the sampling, not the biology
  const Displacement displacement(animal, opt.deformationUm);
  const AnnotationVolume& ann = atlas.annotation();
  const StructureTree& tree = atlas.structures();
  const auto sz = ann.size();
  const double vx = ann.spacingUm()[0];
  const double voxelArea = ann.spacingUm()[1] * ann.spacingUm()[2] * 1e-6; // mm^2

  // Candidate section planes and the brain area each cuts.
  struct Plane {
    double ap;
    std::int64_t slice;
    std::int64_t voxels;
  };
  std::vector<Plane> planes;
  for (double ap = opt.sectionSpacingUm / 2 + opt.sectionOffsetUm; ap < ann.extentUm()[0]; ap += opt.sectionSpacingUm) {
    if (ap < 0) continue;
    const auto slice = static_cast<std::int64_t>(ap / vx);
    std::int64_t voxels = 0;
    for (std::int64_t ml = 0; ml < sz[2]; ++ml)
      for (std::int64_t dv = 0; dv < sz[1]; ++dv) voxels += ann.idAt({slice, dv, ml}) != 0;
    if (voxels > 0) planes.push_back({ap, slice, voxels});
  }
  if (planes.empty()) throw Error("generate: the annotation has no brain voxels");
  // Subsets: from the middle of the brain outwards.
  if (opt.sections > 0 || opt.maxCells > 0) {
    std::vector<std::size_t> byCentre(planes.size());
    for (std::size_t i = 0; i < planes.size(); ++i) byCentre[i] = i;
    const double mid = (static_cast<double>(planes.size()) - 1) / 2;
    std::stable_sort(byCentre.begin(), byCentre.end(),
                     [&](std::size_t a, std::size_t b) { return std::abs(a - mid) < std::abs(b - mid); });
    std::vector<Plane> chosen;
    double expected = 0;
    for (std::size_t i : byCentre) {
      if (opt.sections > 0 && static_cast<int>(chosen.size()) >= opt.sections) break;
      if (opt.maxCells > 0 && expected >= static_cast<double>(opt.maxCells)) break;
      chosen.push_back(planes[i]);
      expected += static_cast<double>(planes[i].voxels) * voxelArea * opt.cellsPerMm2;
    }
    std::sort(chosen.begin(), chosen.end(), [](const Plane& a, const Plane& b) { return a.ap < b.ap; });
    planes = chosen;
  }

  // Hidden sub-regions: the largest grey-matter leaves, split at their median DV.
  const auto hist = ann.codeHistogram();
  std::unordered_map<StructureId, std::int64_t> voxelsOf;
  for (std::size_t c = 1; c < ann.codeIds().size(); ++c) voxelsOf[ann.codeIds()[c]] += hist[c];
  std::unordered_map<StructureId, double> splitDv; // region -> DV (voxels) of the split
  SyntheticBrainSummary summary;
  if (opt.hiddenSubregions > 0) {
    const auto grey = tree.indexOfAcronym("grey");
    std::vector<std::pair<std::int64_t, StructureId>> leaves;
    for (const auto& [id, n] : voxelsOf) {
      const auto idx = tree.indexOf(id);
      if (idx && tree[*idx].children.empty() && (!grey || tree.isAncestorOrSelf(*grey, *idx)))
        leaves.emplace_back(n, id);
    }
    std::sort(leaves.rbegin(), leaves.rend());
    for (int k = 0; k < opt.hiddenSubregions && k < static_cast<int>(leaves.size()); ++k) {
      const StructureId id = leaves[static_cast<std::size_t>(k)].second;
      std::vector<std::int64_t> dvs;
      for (std::int64_t ml = 0; ml < sz[2]; ml += 2)
        for (std::int64_t dv = 0; dv < sz[1]; ++dv)
          for (std::int64_t a = 0; a < sz[0]; a += 4)
            if (ann.idAt({a, dv, ml}) == id) dvs.push_back(dv);
      std::nth_element(dvs.begin(), dvs.begin() + static_cast<long>(dvs.size() / 2), dvs.end());
      splitDv[id] = static_cast<double>(dvs[dvs.size() / 2]) + 0.5;
      summary.hiddenRegions.push_back(tree[*tree.indexOf(id)].acronym);
    }
  }

  // Type names, colours and expression profiles.
  std::vector<std::string> typeNames, colours;
  for (int t = 0; t < opt.cellTypes; ++t) {
    char name[64];
    if (t < kGlia)
      std::snprintf(name, sizeof name, "%03d %s NN", t + 1, kGliaNames[t]);
    else
      std::snprintf(name, sizeof name, "%03d Neuron-%03d Glut", t + 1, t + 1);
    typeNames.push_back(name);
    const double h = std::fmod(t * 137.50776405, 360.0) / 60.0, s = 0.65, v = t % 2 ? 0.85 : 0.7;
    const auto [r, g, b] = hsvToRgb(h, s, v);
    char hex[8];
    std::snprintf(hex, sizeof hex, "#%02X%02X%02X", static_cast<int>(r * 255), static_cast<int>(g * 255),
                  static_cast<int>(b * 255));
    colours.push_back(hex);
  }
  std::vector<float> profile(static_cast<std::size_t>(opt.cellTypes) * static_cast<std::size_t>(opt.genes));
  {
    Rng base(mix(opt.seed, 0xBA5E));
    std::vector<double> baseline(static_cast<std::size_t>(opt.genes));
    for (auto& b : baseline) b = std::exp(0.3 + 1.0 * base.normal());
    for (int t = 0; t < opt.cellTypes; ++t) {
      Rng r(mix(opt.seed, 0x7000 + static_cast<std::uint64_t>(t)));
      for (int g = 0; g < opt.genes; ++g) {
        const bool marker = r.uniform() < 0.08;
        const double f = marker ? std::exp(1.5 + 0.8 * r.normal()) : std::exp(0.35 * r.normal());
        profile[static_cast<std::size_t>(t) * static_cast<std::size_t>(opt.genes) + static_cast<std::size_t>(g)] =
            static_cast<float>(baseline[static_cast<std::size_t>(g)] * f * 0.25);
      }
    }
  }

  Hdf5Writer out(outPath);
  const int G = opt.genes;
  out.setStringAttribute("/", "encoding-type", "anndata");
  out.setStringAttribute("/", "encoding-version", "0.1.0");
  for (const char* g : {"/obs", "/obsm", "/var", "/uns", "/layers", "/obsp", "/varm", "/varp"}) {
    out.createGroup(g);
    out.setStringAttribute(g, "encoding-type",
                           std::string(g) == "/obs" || std::string(g) == "/var" ? "dataframe" : "dict");
    out.setStringAttribute(g, "encoding-version",
                           std::string(g) == "/obs" || std::string(g) == "/var" ? "0.2.0" : "0.1.0");
  }
  const std::int64_t chunk = std::max<std::int64_t>(64, (1 << 20) / (4 * G)); // ~1 MiB chunks of X rows
  out.createExtendible("/X", H5Type::Float32, G, chunk, opt.gzip);
  out.createExtendible("/obsm/spatial", H5Type::Float32, 2, 65536);
  out.createExtendible("/obsm/ccf", H5Type::Float32, 3, 65536);
  out.createGroup("/obs/brain_section_label");
  out.createExtendible("/obs/brain_section_label/codes", H5Type::Int16, 0, 65536);
  out.createGroup("/obs/subclass");
  out.createExtendible("/obs/subclass/codes", H5Type::Int16, 0, 65536);
  out.createExtendible("/obs/ccf_structure_id", H5Type::Int64, 0, 65536);
  out.createExtendible("/obs/hidden_subregion", H5Type::Int32, 0, 65536);

  // Sections are generated in parallel and written in order.
  struct SectionData {
    std::vector<float> x, spatial, ccf;
    std::vector<std::int16_t> type;
    std::vector<std::int64_t> region;
    std::vector<std::int32_t> hidden;
    bool ready = false;
  };
  std::vector<SectionData> sections(planes.size());
  std::mutex compMutex;
  std::map<std::pair<StructureId, int>, Composition> compositions;
  auto compositionOf = [&](StructureId id, int part) -> const Composition& {
    std::lock_guard<std::mutex> lock(compMutex);
    auto it = compositions.find({id, part});
    if (it != compositions.end()) return it->second;
    const auto idx = tree.indexOf(id);
    const StructureId parent = (idx && tree[*idx].parent >= 0) ? tree[tree[*idx].parent].id : id;
    const std::uint64_t key = mix(id, static_cast<std::uint64_t>(part));
    return compositions.emplace(std::make_pair(id, part), makeComposition(opt.seed, key, parent, opt.cellTypes))
        .first->second;
  };
  std::map<std::pair<StructureId, int>, std::vector<float>> programmes;
  auto programmeOf = [&](StructureId id, int part) -> const std::vector<float>& {
    std::lock_guard<std::mutex> lock(compMutex);
    auto it = programmes.find({id, part});
    if (it != programmes.end()) return it->second;
    const auto idx = tree.indexOf(id);
    const StructureId parent = (idx && tree[*idx].parent >= 0) ? tree[tree[*idx].parent].id : id;
    return programmes
        .emplace(std::make_pair(id, part),
                 makeExpressionProgramme(opt.seed, mix(id, static_cast<std::uint64_t>(part)), parent, G))
        .first->second;
  };
  auto makeSection = [&](std::size_t s) {
    SectionData& d = sections[s];
    const Plane& p = planes[s];
    Rng r(mix(animal, 0x5EC7 + s));
    const double lambda = opt.cellsPerMm2 * voxelArea;
    for (std::int64_t ml = 0; ml < sz[2]; ++ml)
      for (std::int64_t dv = 0; dv < sz[1]; ++dv) {
        const StructureId planeId = ann.idAt({p.slice, dv, ml});
        // Displaced, a cell outside the plane's brain may land inside the CCF's (and the reverse).
        if (planeId == 0 && !displacement.active()) continue;
        const std::int64_t k = r.poisson(lambda);
        for (std::int64_t c = 0; c < k; ++c) {
          const double sectionDvUm = (static_cast<double>(dv) + r.uniform()) * ann.spacingUm()[1];
          const double sectionMlUm = (static_cast<double>(ml) + r.uniform()) * ann.spacingUm()[2];
          // Around the centre of the voxel slice the labels come from (the plane itself may sit
          // on a voxel boundary), so every cell lies in the region it was drawn for.
          double apUm = (static_cast<double>(p.slice) + 0.5) * vx +
                        (r.uniform() - 0.5) * std::min(opt.sectionThicknessUm, vx * 0.98);
          double dvUm = sectionDvUm, mlUm = sectionMlUm;
          StructureId id = planeId;
          if (displacement.active()) {
            displacement.apply(apUm, dvUm, mlUm);
            const auto at = ann.voxelAt(apUm, dvUm, mlUm);
            id = at ? ann.idAt(*at) : 0;
            if (id == 0) continue;
          }
          int part = 0;
          if (const auto it = splitDv.find(id); it != splitDv.end())
            part = dvUm / ann.spacingUm()[1] < it->second ? 1 : 2;
          const Composition& comp = compositionOf(id, part);
          const double u = r.uniform();
          const int type = comp.types[static_cast<std::size_t>(std::lower_bound(comp.cdf.begin(), comp.cdf.end(), u) -
                                                               comp.cdf.begin())];
          const double depth = std::exp(0.3 * r.normal());
          const float* prof = &profile[static_cast<std::size_t>(type) * static_cast<std::size_t>(G)];
          const float* regional = type >= kGlia ? programmeOf(id, part).data() : nullptr; // glia: alike everywhere
          for (int g = 0; g < G; ++g) {
            // Negative binomial (dispersion 2) as a gamma-Poisson mixture.
            const double mean = prof[g] * depth * (regional ? regional[g] : 1.0f);
            const std::int64_t count = r.poisson(mean * r.gamma(2.0) / 2.0);
            d.x.push_back(static_cast<float>(std::log2(static_cast<double>(count) + 1.0)));
          }
          d.spatial.push_back(static_cast<float>(sectionMlUm));
          d.spatial.push_back(static_cast<float>(sectionDvUm));
          d.ccf.push_back(static_cast<float>(apUm));
          d.ccf.push_back(static_cast<float>(dvUm));
          d.ccf.push_back(static_cast<float>(mlUm));
          d.type.push_back(static_cast<std::int16_t>(type));
          d.region.push_back(id);
          d.hidden.push_back(part == 0 ? 0
                                       : static_cast<std::int32_t>(std::find(summary.hiddenRegions.begin(),
                                                                             summary.hiddenRegions.end(),
                                                                             tree[*tree.indexOf(id)].acronym) -
                                                                   summary.hiddenRegions.begin()) *
                                                 2 +
                                             part);
        }
      }
  };

  std::int64_t total = 0;
  std::vector<std::string> sectionNames;
  std::vector<float> sampleX, sampleY;
  std::vector<std::int64_t> sampleSection;
  const int threads =
      opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::size_t next = 0;
  while (next < planes.size()) {
    const std::size_t batchEnd = std::min(planes.size(), next + static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (std::size_t s = next + 1; s < batchEnd; ++s) pool.emplace_back(makeSection, s);
    makeSection(next);
    for (auto& t : pool) t.join();
    for (std::size_t s = next; s < batchEnd; ++s) {
      SectionData& d = sections[s];
      std::int64_t n = static_cast<std::int64_t>(d.type.size());
      // --cells: stop at exactly maxCells (the last section keeps a band of its cells).
      if (opt.maxCells > 0) n = std::max<std::int64_t>(0, std::min(n, opt.maxCells - total));
      char label[32];
      std::snprintf(label, sizeof label, "synthetic.%03zu", s + 1);
      sectionNames.push_back(label);
      std::vector<std::int16_t> code(static_cast<std::size_t>(n), static_cast<std::int16_t>(s));
      out.append("/X", d.x.data(), n);
      out.append("/obsm/spatial", d.spatial.data(), n);
      out.append("/obsm/ccf", d.ccf.data(), n);
      out.append("/obs/brain_section_label/codes", code.data(), n);
      out.append("/obs/subclass/codes", d.type.data(), n);
      out.append("/obs/ccf_structure_id", d.region.data(), n);
      out.append("/obs/hidden_subregion", d.hidden.data(), n);
      // Keep a sample (every 50th cell) to measure the neighbourhood size.
      for (std::int64_t i = 0; i < n; i += 50) {
        sampleX.push_back(d.spatial[static_cast<std::size_t>(2 * i)]);
        sampleY.push_back(d.spatial[static_cast<std::size_t>(2 * i + 1)]);
        sampleSection.push_back(static_cast<std::int64_t>(s));
      }
      total += n;
      d = SectionData{}; // release memory
    }
    next = batchEnd;
    if (opt.maxCells > 0 && total >= opt.maxCells) {
      planes.resize(std::min(planes.size(), next));
      next = planes.size();
    }
    progress("generating sections", static_cast<std::int64_t>(next), static_cast<std::int64_t>(planes.size()));
  }

  // obs index, categories, colours, var.
  std::vector<std::string> labels;
  labels.reserve(static_cast<std::size_t>(total));
  // Labels are written once, at the end: "c<row>" stays within the small-string buffer.
  for (std::int64_t i = 0; i < total; ++i) labels.push_back("c" + std::to_string(i));
  out.writeStrings("/obs/cell_label", labels);
  labels.clear();
  labels.shrink_to_fit();
  out.setStringAttribute("/obs/cell_label", "encoding-type", "string-array");
  out.setStringAttribute("/obs/cell_label", "encoding-version", "0.2.0");
  out.setStringAttribute("/obs", "_index", "cell_label");
  out.setStringArrayAttribute("/obs", "column-order",
                              {"brain_section_label", "subclass", "ccf_structure_id", "hidden_subregion"});
  for (const auto& [group, cats] :
       {std::pair<std::string, const std::vector<std::string>*>{"/obs/brain_section_label", &sectionNames},
        {"/obs/subclass", &typeNames}}) {
    out.writeStrings(group + "/categories", *cats);
    out.setStringAttribute(group + "/categories", "encoding-type", "string-array");
    out.setStringAttribute(group + "/categories", "encoding-version", "0.2.0");
    out.setStringAttribute(group + "/codes", "encoding-type", "array");
    out.setStringAttribute(group + "/codes", "encoding-version", "0.2.0");
    out.setStringAttribute(group, "encoding-type", "categorical");
    out.setStringAttribute(group, "encoding-version", "0.2.0");
    out.setBoolAttribute(group, "ordered", false);
  }
  for (const char* a : {"/obs/ccf_structure_id", "/obs/hidden_subregion", "/X", "/obsm/spatial", "/obsm/ccf"}) {
    out.setStringAttribute(a, "encoding-type", "array");
    out.setStringAttribute(a, "encoding-version", "0.2.0");
  }
  out.writeStrings("/uns/subclass_colors", colours);
  out.setStringAttribute("/uns/subclass_colors", "encoding-type", "string-array");
  out.setStringAttribute("/uns/subclass_colors", "encoding-version", "0.2.0");
  std::vector<std::string> genes;
  for (int g = 0; g < G; ++g) {
    char name[16];
    std::snprintf(name, sizeof name, "Gene%04d", g + 1);
    genes.push_back(name);
  }
  out.writeStrings("/var/gene_symbol", genes);
  out.setStringAttribute("/var/gene_symbol", "encoding-type", "string-array");
  out.setStringAttribute("/var/gene_symbol", "encoding-version", "0.2.0");
  out.setStringAttribute("/var", "_index", "gene_symbol");
  out.setStringArrayAttribute("/var", "column-order", {});
  out.commit();

  // Mean neighbourhood size in the model's window (10 um units), on the sample's density: each
  // sampled cell counts neighbours among every cell, estimated as sample neighbours x 50.
  if (!sampleX.empty()) {
    std::vector<float> ux(sampleX.size()), uy(sampleY.size());
    for (std::size_t i = 0; i < sampleX.size(); ++i) {
      ux[i] = sampleX[i] / 10.0f;
      uy[i] = sampleY[i] / 10.0f;
    }
    NeighborhoodIndex idx(ux.data(), uy.data(), sampleSection.data(), static_cast<std::int64_t>(ux.size()));
    const auto h = idx.compute(0, idx.cells());
    summary.meanNeighbors = static_cast<double>(h.indices.size()) / static_cast<double>(h.cells()) * 50.0;
  }
  summary.cells = total;
  summary.sections = static_cast<int>(planes.size());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

} // namespace atlascope
