#pragma once
// A realistic stand-in for a whole-brain MERFISH dataset, made from the real CCF: coronal
// sections through the annotation, cells at realistic densities inside the brain, cell types
// whose mix depends on the CCF region (siblings share part of their mix; glia are everywhere),
// neurons whose expression shifts with the region (a programme over ~20% of the genes, half of it
// the parent region's; hidden sub-regions have their own), negative-binomial counts with per-cell depth stored as
// log2(count + 1) like the ABC atlas, and optional hidden sub-regions (CCF regions split in two parts of different
// composition, recorded as ground truth). Deterministic for a seed; written section by section (streaming) as AnnData.
// Another animal: another seed, sections cut elsewhere (sectionOffsetUm) and a body that is not
// the CCF's shape (deformationUm): its cells are measured in their own sections and registered
// into the same CCF.
#include "core/Atlas.h"
#include "core/Progress.h"

#include <cstdint>
#include <string>

namespace atlascope {

struct SyntheticBrainOptions {
  double sectionSpacingUm = 200.0;
  double sectionThicknessUm = 10.0;
  // Added to every section's AP position (the first plane sits at spacing / 2 + offset); planes
  // outside the annotation are dropped.
  double sectionOffsetUm = 0.0;
  // > 0: a smooth displacement (wavelengths of 4-8 mm, at most this many um along each axis,
  // deterministic for the seed) from each cell's place in its section to its place in the CCF:
  // obsm['spatial'] keeps the measured in-section position, obsm['ccf'] the displaced one, and
  // the cell's region is the CCF's at the displaced point. 0: the sections are CCF planes.
  double deformationUm = 0.0;
  double cellsPerMm2 = 1250.0; // the ABC atlas: ~4M cells over 59 sections
  // > 0: exactly this many cells: sections from the middle of the brain outwards, the last one
  // cut to a band of its cells.
  std::int64_t maxCells = 0;
  int sections = 0; // > 0: this many sections from the middle outwards
  int genes = 500;
  int cellTypes = 150;
  int hiddenSubregions = 0;
  std::uint64_t seed = 1;
  // > 0: another animal of the same brain: which cells are drawn where (and the deformation) come
  // from this seed, while `seed` keeps fixing the biology (each region's cell-type mix, the types'
  // expression, the regional programmes). 0: `seed` fixes both, as before; another `seed` alone
  // makes a brain whose regions differ in composition from this one's (another species, so to say).
  std::uint64_t animalSeed = 0;
  int threads = 0; // 0: all cores
  int gzip = 0;    // X compression level (0: none, fastest)
};

struct SyntheticBrainSummary {
  std::int64_t cells = 0;
  int sections = 0;
  double meanNeighbors = 0;               // in the CellTransformer window, measured on a sample
  std::vector<std::string> hiddenRegions; // acronyms of the split CCF regions
  double seconds = 0;
};

// Writes an .h5ad: obs (cell_label index, brain_section_label, subclass, ccf_structure_id,
// hidden_subregion), obsm spatial (in-section x = ML, y = DV, um) and ccf (AP, DV, ML um),
// var (gene names), X dense float32 log2(count + 1), uns subclass_colors. Atomic.
SyntheticBrainSummary generateSyntheticBrain(const Atlas& atlas, const SyntheticBrainOptions& options,
                                             const std::string& outPath, const Progress& progress = {});

} // namespace atlascope
