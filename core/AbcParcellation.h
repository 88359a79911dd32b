#pragma once
// The ABC atlas ships its CCF volumes (annotation_{10,25}.nii.gz) holding *parcellation indices*,
// not Allen structure ids; its parcellation.csv maps one to the other.
#include "core/StructureTree.h"

#include <string>
#include <unordered_map>

namespace atlascope {

// parcellation.csv: `parcellation_index` and either a `label` "AllenCCF-Annotation-2020-<id>"
// or a `structure_id` column. Index 0 (unassigned) maps to 0.
std::unordered_map<StructureId, StructureId> readAbcParcellationTable(const std::string& path);

} // namespace atlascope
