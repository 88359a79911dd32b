#pragma once
// Agreement between two labelings of the same cells (e.g. discovered regions vs CCF structures),
// with the definitions of scikit-learn (adjusted_rand_score, adjusted_mutual_info_score,
// normalized_mutual_info_score, homogeneity/completeness/v_measure with the arithmetic mean),
// natural logarithms. Cells with a negative label on either side are left out.
#include <cstdint>
#include <map>
#include <vector>

namespace atlascope {

// The overlap (contingency) table, sparse: (reference label, predicted label) -> cells.
struct Contingency {
  std::vector<std::int32_t> referenceLabels, predictedLabels;          // the distinct labels, ascending
  std::vector<std::int64_t> referenceSizes, predictedSizes;            // cells per label (same order)
  std::map<std::pair<std::int32_t, std::int32_t>, std::int64_t> cells; // (row, column) indices -> cells
  std::int64_t total = 0;
};

Contingency contingency(const std::vector<std::int32_t>& reference, const std::vector<std::int32_t>& predicted);

struct AgreementScores {
  std::int64_t cells = 0;
  std::int64_t referenceLabels = 0, predictedLabels = 0;
  double mutualInformation = 0;
  double adjustedRand = 0, adjustedMutualInformation = 0, normalizedMutualInformation = 0;
  double homogeneity = 0, completeness = 0, vMeasure = 0;
};

AgreementScores agreement(const Contingency& table);
AgreementScores agreement(const std::vector<std::int32_t>& reference, const std::vector<std::int32_t>& predicted);

// E[MI] under the hypergeometric model of random labelings with these label sizes (Vinh et al.),
// summing each pair's terms outwards from their mode until they vanish.
double expectedMutualInformation(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                                 std::int64_t n);

// Links two labelings of the same cells, e.g. the regions at two resolutions: parent[j] of fine
// label j (0 .. fineK - 1) = the coarse label holding most of its cells (the smallest on a tie;
// -1 when it has none). `segment` writes these links; the window's tree of regions uses them.
std::vector<std::int32_t> linkResolutions(const std::vector<std::int32_t>& coarse,
                                          const std::vector<std::int32_t>& fine, int fineK);

} // namespace atlascope
