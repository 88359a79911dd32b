// regions mesh: the surfaces of discovered regions (a `segment` result at one k), voxelised on the
// atlas grid and meshed like the CCF's structures, one file per region plus an index CSV (region,
// colour, cells, voxels, file). VTK builds only.
#include "app/cli/ColumnOptions.h"
#include "app/cli/Commands.h"
#include "core/Atlas.h"
#include "core/AtomicFile.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/Palette.h"
#include "core/RegionVolume.h"
#include "inference/RegionPipeline.h"
#include "viewer/MeshIO.h"
#include "viewer/RegionSurface.h"

#include <vtkPolyData.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace atlascope::cli {

void addRegionMeshCommand(CLI::App& app) {
  auto data = std::make_shared<std::string>(), dir = std::make_shared<std::string>(),
       format = std::make_shared<std::string>("obj");
  auto k = std::make_shared<int>(0);
  auto factor = std::make_shared<int>(2);
  auto columns = std::make_shared<ColumnOptions>();
  auto sopts = std::make_shared<viewer::SurfaceOptions>();
  CLI::App* regions = app.add_subcommand("regions", "Discovered regions of a segment result");
  regions->require_subcommand(1);
  CLI::App* cmd = regions->add_subcommand(
      "mesh", "Surfaces of the regions at one k: voxelised on the CCF grid, filled in the brain, meshed");
  cmd->add_option("data", *data, "A segment result (.h5ad with regions_k<k>)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--k", *k, "The resolution (default: the coarsest stored)");
  cmd->add_option("--out-dir,-o", *dir, "Folder for the meshes and regions.csv")->required();
  cmd->add_option("--format", *format, "obj, ply, stl or vtp")->check(CLI::IsMember({"obj", "ply", "stl", "vtp"}));
  cmd->add_option("--voxel-factor", *factor, "Voxel edge in CCF voxels (2: 50 um on the 25 um CCF)")
      ->check(CLI::Range(1, 8));
  addColumnOptions(cmd, *columns);
  cmd->callback([=] {
    const auto stored = inference::readDiscoveredRegions(*data);
    if (stored.empty()) throw FileError(*data, "holds no discovered regions (obs regions_k<k>; run segment first)");
    const inference::DiscoveredResolution* res = &stored.front();
    if (*k > 0) {
      res = nullptr;
      for (const auto& r : stored)
        if (r.k == *k) res = &r;
      if (!res) throw FileError(*data, "has no regions at k = " + std::to_string(*k));
    }
    const CellTable cells = readCellTable(*data, *columns);
    if (!cells.hasCcf()) throw FileError(*data, "has no CCF coordinates: regions cannot be placed in the atlas");
    std::vector<std::int32_t> labels(static_cast<std::size_t>(cells.size()));
    for (std::int64_t i = 0; i < cells.size(); ++i)
      labels[static_cast<std::size_t>(i)] =
          res->labels[static_cast<std::size_t>(cells.fileRow[static_cast<std::size_t>(i)])];
    const Atlas atlas = Atlas::load(bundledAtlasPaths());
    const RegionVolume volume =
        voxeliseRegions(atlas.annotation(), cells.ccfAp, cells.ccfDv, cells.ccfMl, labels, *factor);
    std::map<std::int32_t, std::int64_t> cellCount, voxelCount;
    for (auto l : labels)
      if (l >= 0) ++cellCount[l];
    for (auto l : volume.labels)
      if (l >= 0) ++voxelCount[l];
    const std::string column = "regions_k" + std::to_string(res->k);
    const auto colours = readObsColours(*data, column);
    std::filesystem::create_directories(*dir);
    std::ostringstream index;
    index << "region,colour,cells,voxels,volume_mm3,triangles,file\n";
    int written = 0;
    const auto meshes = viewer::meshRegionVolume(volume, res->k, *sopts);
    for (const auto& [label, voxels] : voxelCount) {
      vtkPolyData* mesh = label < res->k ? meshes[static_cast<std::size_t>(label)].Get() : nullptr;
      if (!mesh) continue;
      char name[64];
      std::snprintf(name, sizeof name, "%s_%04d.%s", column.c_str(), label, format->c_str());
      viewer::writeMesh(mesh, (std::filesystem::path(*dir) / name).string());
      const std::string hex =
          static_cast<std::size_t>(label) < colours.size() ? hexColour(colours[static_cast<std::size_t>(label)]) : "";
      index << label << "," << hex << "," << cellCount[label] << "," << voxels << ","
            << static_cast<double>(voxels) * volume.voxelUm * volume.voxelUm * volume.voxelUm / 1e9 << ","
            << mesh->GetNumberOfPolys() << "," << name << "\n";
      ++written;
    }
    const std::string csv = index.str();
    writeFileAtomically((std::filesystem::path(*dir) / "regions.csv").string(), csv.data(), csv.size());
    std::cout
        << nlohmann::json{{"k", res->k}, {"regions", written}, {"voxel_um", volume.voxelUm}, {"out_dir", *dir}}.dump()
        << std::endl;
  });
}

} // namespace atlascope::cli
