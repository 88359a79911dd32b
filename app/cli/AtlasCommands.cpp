#include "app/cli/Commands.h"
#include "core/Atlas.h"
#include "core/Error.h"

#ifdef ATLASCOPE_HAS_VTK
#include "viewer/AtlasScene.h"
#include "viewer/MeshIO.h"
#include "viewer/RegionSurface.h"
#include "viewer/SurfaceCache.h"

#include <vtkPolyData.h>
#endif

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace atlascope::cli {

namespace {
int gExitCode = 0;

struct AtlasOptions {
  std::string annotation, ontology, parcellationTable;

  AtlasPaths paths() const {
    AtlasPaths p = bundledAtlasPaths();
    if (!annotation.empty()) p.annotation = annotation;
    if (!ontology.empty()) p.ontology = ontology;
    p.parcellationTable = parcellationTable;
    return p;
  }
};

void addAtlasOptions(CLI::App* cmd, AtlasOptions& o) {
  cmd->add_option("--annotation", o.annotation,
                  "Label volume (.nrrd, .nhdr, .nii, .nii.gz); default: the bundled CCF 25 um")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ontology", o.ontology,
                  "Structure ontology (AllenSDK JSON, CSV or Allen API JSON); default: bundled")
      ->check(CLI::ExistingFile);
  cmd->add_option("--parcellation-table", o.parcellationTable,
                  "ABC parcellation.csv, when the volume holds parcellation indices")
      ->check(CLI::ExistingFile);
}

std::string hexColour(const Structure& s) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02X%02X%02X", s.rgb[0], s.rgb[1], s.rgb[2]);
  return buf;
}

nlohmann::json structureJson(const StructureTree& t, int i) {
  const Structure& s = t[i];
  return {{"id", s.id},       {"acronym", s.acronym},   {"name", s.name}, {"colour", hexColour(s)},
          {"depth", s.depth}, {"path", t.pathString(i)}};
}

int resolveStructure(const StructureTree& tree, const std::string& text) {
  const auto i = tree.find(text);
  if (!i)
    throw Error("no structure with id, acronym or name '" + text + "' (try: atlascope-cli atlas find " + text + ")");
  return *i;
}
} // namespace

int exitCode() { return gExitCode; }
void setExitCode(int code) { gExitCode = code; }

void addAtlasCommands(CLI::App& app) {
  CLI::App* atlas = app.add_subcommand("atlas", "The Allen CCF: structures, lookups, meshes");
  atlas->require_subcommand(1);

  // --- info
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = atlas->add_subcommand("info", "Structure count, volume shape and spacing");
    addAtlasOptions(cmd, *opts);
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([opts, json] {
      const Atlas a = Atlas::load(opts->paths());
      const auto& ann = a.annotation();
      const auto ids = ann.distinctIds();
      const auto unknown = a.unknownIds();
      nlohmann::json j = {{"annotation", a.paths().annotation},
                          {"ontology", a.paths().ontology},
                          {"structures", a.structures().size()},
                          {"shape", {ann.size()[0], ann.size()[1], ann.size()[2]}},
                          {"axes", {"AP", "DV", "ML"}},
                          {"spacing_um", {ann.spacingUm()[0], ann.spacingUm()[1], ann.spacingUm()[2]}},
                          {"extent_um", {ann.extentUm()[0], ann.extentUm()[1], ann.extentUm()[2]}},
                          {"labels", ids.size()},
                          {"labels_not_in_ontology", unknown}};
      if (*json) {
        std::cout << j.dump() << "\n";
        return;
      }
      std::cout << "annotation:  " << a.paths().annotation << "\n"
                << "ontology:    " << a.paths().ontology << " (" << a.structures().size() << " structures)\n"
                << "shape:       " << ann.size()[0] << " x " << ann.size()[1] << " x " << ann.size()[2]
                << " (AP x DV x ML)\n"
                << "spacing:     " << ann.spacingUm()[0] << " x " << ann.spacingUm()[1] << " x " << ann.spacingUm()[2]
                << " um\n"
                << "extent:      " << ann.extentUm()[0] << " x " << ann.extentUm()[1] << " x " << ann.extentUm()[2]
                << " um\n"
                << "labels:      " << ids.size() << " distinct structure ids (+ 0 = outside)\n";
      if (!unknown.empty()) std::cout << "warning:     " << unknown.size() << " labels are not in the ontology\n";
    });
  }

  // --- lookup
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto um = std::make_shared<std::vector<double>>();
    auto voxel = std::make_shared<std::vector<long long>>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = atlas->add_subcommand("lookup", "The structure at a point (exit 2 outside the brain)");
    addAtlasOptions(cmd, *opts);
    auto* umOpt = cmd->add_option("--um", *um, "CCF point in micrometres: AP DV ML")->expected(3);
    auto* voxOpt = cmd->add_option("--voxel", *voxel, "Voxel index: AP DV ML")->expected(3);
    umOpt->excludes(voxOpt);
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([opts, um, voxel, json] {
      if (um->empty() && voxel->empty()) throw Error("atlas lookup: give --um AP DV ML or --voxel AP DV ML");
      const Atlas a = Atlas::load(opts->paths());
      const auto& ann = a.annotation();
      std::optional<VoxelIndex> v;
      std::string where;
      if (!um->empty()) {
        v = ann.voxelAt((*um)[0], (*um)[1], (*um)[2]);
        where = "point (" + std::to_string((*um)[0]) + ", " + std::to_string((*um)[1]) + ", " +
                std::to_string((*um)[2]) + ") um";
      } else {
        const VoxelIndex vi{(*voxel)[0], (*voxel)[1], (*voxel)[2]};
        if (ann.contains(vi)) v = vi;
        where = "voxel (" + std::to_string(vi.ap) + ", " + std::to_string(vi.dv) + ", " + std::to_string(vi.ml) + ")";
      }
      if (!v) {
        const auto e = ann.extentUm();
        throw Error(where + " is outside the volume (0..." + std::to_string(static_cast<int>(e[0])) + ", 0..." +
                    std::to_string(static_cast<int>(e[1])) + ", 0..." + std::to_string(static_cast<int>(e[2])) +
                    " um)");
      }
      const StructureId id = ann.idAt(*v);
      const auto idx = a.structureAt(*v);
      nlohmann::json j = {{"voxel", {v->ap, v->dv, v->ml}}, {"id", id}};
      if (idx) j.update(structureJson(a.structures(), *idx));
      if (*json) {
        std::cout << j.dump() << "\n";
      } else if (id == 0) {
        std::cout << "0\toutside the brain\n";
      } else if (!idx) {
        std::cout << id << "\t(label not in the ontology)\n";
      } else {
        const Structure& s = a.structures()[*idx];
        std::cout << s.id << "\t" << s.acronym << "\t" << s.name << "\t" << a.structures().pathString(*idx) << "\n";
      }
      if (id == 0 || !idx) setExitCode(2);
    });
  }

  // --- find
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto text = std::make_shared<std::string>();
    auto limit = std::make_shared<int>(50);
    CLI::App* cmd = atlas->add_subcommand("find", "Structures whose acronym or name contains TEXT");
    addAtlasOptions(cmd, *opts);
    cmd->add_option("text", *text, "Text to match (case-insensitive)")->required();
    cmd->add_option("--limit", *limit, "At most this many results (0: all)");
    cmd->callback([opts, text, limit] {
      // Only the ontology is needed: do not decode the volume.
      const StructureTree tree = readOntology(opts->paths().ontology);
      const auto hits = tree.search(*text);
      if (hits.empty()) {
        std::cerr << "atlascope-cli: no structure matches '" << *text << "'\n";
        setExitCode(2);
        return;
      }
      int shown = 0;
      for (int i : hits) {
        if (*limit > 0 && shown++ >= *limit) break;
        std::cout << tree[i].id << "\t" << tree[i].acronym << "\t" << tree[i].name << "\n";
      }
    });
  }

#ifdef ATLASCOPE_HAS_VTK
  // --- mesh
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto structure = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto sopts = std::make_shared<viewer::SurfaceOptions>();
    CLI::App* cmd = atlas->add_subcommand("mesh", "Export a structure's surface (OBJ, PLY, STL or VTP)");
    addAtlasOptions(cmd, *opts);
    cmd->add_option("structure", *structure, "Acronym, id or name (e.g. CP, 672, Isocortex)")->required();
    cmd->add_option("--out,-o", *out, "Output file; the format follows the extension")->required();
    cmd->add_option("--smoothing-iterations", sopts->smoothingIterations, "Windowed-sinc iterations")
        ->check(CLI::Range(0, 500));
    cmd->add_option("--pass-band", sopts->passBand, "Windowed-sinc pass band (smaller = smoother)")
        ->check(CLI::Range(0.0001, 2.0));
    cmd->add_option("--downsample", sopts->downsample, "Mesh blocks of N^3 voxels (1 = native grid)")
        ->check(CLI::Range(1, 8));
    cmd->add_option("--decimate", sopts->decimation, "Fraction of triangles to remove")->check(CLI::Range(0.0, 0.99));
    cmd->callback([opts, structure, out, sopts] {
      const Atlas a = Atlas::load(opts->paths());
      const int idx = resolveStructure(a.structures(), *structure);
      auto mesh = viewer::buildRegionSurface(a, idx, *sopts);
      if (mesh->GetNumberOfPoints() == 0)
        throw Error("structure " + a.structures()[idx].acronym + " has no voxels in this annotation");
      viewer::writeMesh(mesh, *out);
      const double voxelVolume = static_cast<double>(viewer::structureVoxelCount(a, idx)) *
                                 a.annotation().spacingUm()[0] * a.annotation().spacingUm()[1] *
                                 a.annotation().spacingUm()[2];
      const double vol = viewer::enclosedVolume(mesh);
      std::cout << std::fixed << std::setprecision(4) << "wrote " << *out << ": " << mesh->GetNumberOfPoints()
                << " points, " << mesh->GetNumberOfPolys() << " triangles, volume " << vol / 1e9
                << " mm^3 (voxels: " << voxelVolume / 1e9 << " mm^3)\n";
    });
  }

  // --- render
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto structures = std::make_shared<std::vector<std::string>>();
    auto out = std::make_shared<std::string>();
    auto view = std::make_shared<std::string>("three-quarter");
    auto size = std::make_shared<std::vector<int>>(std::vector<int>{1600, 1200});
    CLI::App* cmd = atlas->add_subcommand("render", "Render structures (with the brain shell) to a PNG, offscreen");
    addAtlasOptions(cmd, *opts);
    cmd->add_option("structures", *structures, "Acronyms or ids to show");
    cmd->add_option("--out,-o", *out, "PNG file")->required();
    cmd->add_option("--view", *view, "anterior, posterior, dorsal, ventral, left, right or three-quarter");
    cmd->add_option("--size", *size, "Width and height in pixels")->expected(2);
    cmd->callback([opts, structures, out, view, size] {
      const auto preset = viewer::presetFromName(*view);
      if (!preset) throw Error("unknown view '" + *view + "'");
      const Atlas a = Atlas::load(opts->paths());
      viewer::SurfaceCache cache(a);
      viewer::AtlasScene scene(a);
      scene.setSurface(a.structures().root(), cache.surface(a.structures().root()));
      for (const auto& s : *structures) {
        const int idx = resolveStructure(a.structures(), s);
        scene.setSurface(idx, cache.surface(idx));
      }
      scene.applyCameraPreset(*preset);
      viewer::renderToPng(scene, (*size)[0], (*size)[1], *out);
      std::cout << "wrote " << *out << "\n";
    });
  }
#endif
}

} // namespace atlascope::cli
