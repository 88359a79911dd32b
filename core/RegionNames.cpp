#include "core/RegionNames.h"

#include "core/Agreement.h"
#include "core/AnnDataResults.h"
#include "core/ComparisonReport.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"

#include <cmath>

namespace atlascope {

std::string regionNameWithCcf(const std::string& region, const std::string& structure, double share) {
  return region + " \u00b7 " + structure + " " + std::to_string(static_cast<int>(std::lround(share * 100))) + "%";
}

std::vector<std::string> ccfRegionNames(const std::vector<std::int32_t>& ccf, const std::vector<std::int32_t>& regions,
                                        const std::vector<std::string>& categories, const StructureTree& tree) {
  std::vector<std::string> names = categories;
  const Contingency table = contingency(ccf, regions);
  const auto best = bestMatches(table, 1);
  for (std::size_t p = 0; p < best.size(); ++p) {
    const std::int32_t region = table.predictedLabels[p];
    if (best[p].empty() || region < 0 || static_cast<std::size_t>(region) >= names.size()) continue;
    const RegionMatch& m = best[p].front();
    const std::int32_t structure = table.referenceLabels[static_cast<std::size_t>(m.reference)];
    if (structure < 0 || static_cast<std::size_t>(structure) >= tree.size()) continue;
    names[static_cast<std::size_t>(region)] =
        regionNameWithCcf(categories[static_cast<std::size_t>(region)], tree[structure].acronym, m.fraction);
  }
  return names;
}

std::string regionNamesKey(const std::string& column) { return "region_names/" + column; }

std::vector<std::string> readRegionNames(const std::string& h5ad, const std::string& column) {
  Hdf5File f(h5ad);
  const std::string path = "/uns/" + regionNamesKey(column);
  if (!f.exists("/uns/region_names") || !f.exists(path)) return {};
  return f.readStrings(path);
}

void writeRegionNames(const std::string& h5ad, const std::string& column, const std::vector<std::string>& names) {
  if (column.empty() || column.find('/') != std::string::npos)
    throw Error("region names: '" + column + "' is not an obs column name");
  {
    Hdf5File f(h5ad);
    if (!f.exists("/obs/" + column)) throw FileError(h5ad, "has no obs column '" + column + "' to name the regions of");
    const std::string categories = "/obs/" + column + "/categories";
    if (f.exists(categories)) {
      const auto n = f.shape(categories)[0];
      if (n != static_cast<std::int64_t>(names.size()))
        throw FileError(h5ad, "obs column '" + column + "' has " + std::to_string(n) + " regions, not " +
                                  std::to_string(names.size()) + " names");
    }
  }
  Hdf5Writer w(h5ad, Hdf5Writer::CopyOf{h5ad, true});
  writeUnsStrings(w, {regionNamesKey(column), names});
  w.commit();
}

} // namespace atlascope
