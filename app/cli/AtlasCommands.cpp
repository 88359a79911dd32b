#include "app/cli/Commands.h"
#include "core/Atlas.h"
#include "core/AtlasCatalog.h"
#include "core/AtlasComparison.h"
#include "core/AtlasMesh.h"
#include "core/CorrespondenceReport.h"
#include "core/Error.h"

#ifdef ATLASCOPE_HAS_VTK
#include "viewer/AtlasScene.h"
#include "viewer/MeshIO.h"
#include "viewer/RegionSurface.h"
#include "viewer/SurfaceCache.h"

#include <vtkPolyData.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace atlascope::cli {

namespace {
int gExitCode = 0;

struct AtlasOptions {
  std::string atlas, annotation, ontology, parcellationTable;

  AtlasPaths paths() const {
    AtlasPaths p = bundledAtlasPaths();
    if (!annotation.empty()) p.annotation = annotation;
    if (!ontology.empty()) p.ontology = ontology;
    p.parcellationTable = parcellationTable;
    return p;
  }
  bool custom() const { return !annotation.empty() || !ontology.empty() || !parcellationTable.empty(); }
  // --atlas NAME_OR_PATH, else the bundled CCF (or the files --annotation/--ontology name).
  Atlas load(AtlasOpenOptions o = {}) const {
    if (!atlas.empty()) {
      if (custom()) throw Error("--atlas and --annotation/--ontology/--parcellation-table do not go together");
      return openAtlas(atlas, o);
    }
    return Atlas::load(paths(), o.progress);
  }
};

void addAtlasOptions(CLI::App* cmd, AtlasOptions& o) {
  cmd->add_option("--atlas", o.atlas,
                  "Atlas: ccf (the bundled CCF, default), a BrainGlobe atlas name (see `atlas list`), or the path of a "
                  "BrainGlobe atlas folder or manifest.json");
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
  CLI::App* atlas = app.add_subcommand(
      "atlas", "Atlases (the bundled Allen CCF, BrainGlobe atlases): structures, lookups, meshes, atlas vs atlas");
  atlas->require_subcommand(1);

  // --- info
  {
    auto opts = std::make_shared<AtlasOptions>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = atlas->add_subcommand("info", "Structure count, volume shape and spacing");
    addAtlasOptions(cmd, *opts);
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([opts, json] {
      const auto t0 = std::chrono::steady_clock::now();
      const Atlas a = opts->load();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto& ann = a.annotation();
      const auto& d = a.description();
      const auto ids = ann.distinctIds();
      const auto unknown = a.unknownIds();
      nlohmann::json j = {{"name", d.name},
                          {"format", d.format},
                          {"location", d.location},
                          {"annotation", a.paths().annotation},
                          {"ontology", a.paths().ontology},
                          {"structures", a.structures().size()},
                          {"shape", {ann.size()[0], ann.size()[1], ann.size()[2]}},
                          {"axes", {"AP", "DV", "ML"}},
                          {"spacing_um", {ann.spacingUm()[0], ann.spacingUm()[1], ann.spacingUm()[2]}},
                          {"extent_um", {ann.extentUm()[0], ann.extentUm()[1], ann.extentUm()[2]}},
                          {"labels", ids.size()},
                          {"labels_not_in_ontology", unknown},
                          {"orientation", d.orientation},
                          {"symmetric", d.symmetric},
                          {"version", d.version},
                          {"species", d.species},
                          {"meshes", a.meshCount()},
                          {"warnings", d.warnings},
                          {"open_seconds", seconds}};
      if (d.annotationChunksTotal > 0)
        j["annotation_chunks"] = {{"present", d.annotationChunksPresent}, {"total", d.annotationChunksTotal}};
      if (*json) {
        std::cout << j.dump() << "\n";
        return;
      }
      std::cout << "atlas:       " << d.name << " (" << d.format << (d.version.empty() ? "" : ", version " + d.version)
                << (d.species.empty() ? "" : ", " + d.species) << ")\n"
                << "annotation:  " << a.paths().annotation << "\n"
                << "ontology:    " << a.paths().ontology << " (" << a.structures().size() << " structures)\n"
                << "shape:       " << ann.size()[0] << " x " << ann.size()[1] << " x " << ann.size()[2]
                << " (AP x DV x ML)\n"
                << "spacing:     " << ann.spacingUm()[0] << " x " << ann.spacingUm()[1] << " x " << ann.spacingUm()[2]
                << " um\n"
                << "extent:      " << ann.extentUm()[0] << " x " << ann.extentUm()[1] << " x " << ann.extentUm()[2]
                << " um\n"
                << "labels:      " << ids.size() << " distinct structure ids (+ 0 = outside)\n";
      if (!d.orientation.empty())
        std::cout << "orientation: " << d.orientation << " as stored (Atlascope: AP, DV, ML; ML index 0 = left)\n";
      if (d.format != "nrrd") std::cout << "meshes:      " << a.meshCount() << " structures with their own mesh\n";
      if (d.annotationChunksTotal > 0 && d.annotationChunksPresent < d.annotationChunksTotal)
        std::cout << "chunks:      " << d.annotationChunksPresent << " of " << d.annotationChunksTotal
                  << " annotation chunks on disk (the others hold the fill value)\n";
      if (!unknown.empty())
        std::cout << "warning:     " << unknown.size()
                  << " labels are not in the ontology (shown as outside the atlas): " <<
            [&] {
              std::string list;
              for (std::size_t i = 0; i < unknown.size() && i < 10; ++i)
                list += (i ? ", " : "") + std::to_string(unknown[i]);
              return list + (unknown.size() > 10 ? ", ..." : "");
            }() << "\n";
      for (const auto& w : d.warnings) std::cout << "warning:     " << w << "\n";
    });
  }

  // --- list
  {
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = atlas->add_subcommand("list", "The atlases Atlascope can open by name (BrainGlobe's folder)");
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([json] {
      const BrainGlobeFolder folder = brainGlobeFolder();
      const auto cached = listCachedAtlases(folder.path);
      if (*json) {
        nlohmann::json list = nlohmann::json::array();
        list.push_back({{"name", kBundledAtlasName}, {"format", "nrrd"}, {"path", bundledAtlasPaths().annotation}});
        for (const auto& e : cached)
          list.push_back({{"name", e.name},
                          {"version", e.version},
                          {"format", e.format},
                          {"path", e.path},
                          {"problem", e.problem}});
        std::cout << nlohmann::json{{"brainglobe_dir", folder.path},
                                    {"found_by", folder.foundBy},
                                    {"brainglobe_supported", brainGlobeSupported()},
                                    {"atlases", list}}
                         .dump()
                  << "\n";
        return;
      }
      std::cout << "BrainGlobe folder: " << folder.path << " (" << folder.foundBy << ")\n";
      std::cout << kBundledAtlasName << "\tbundled\tnrrd\t" << bundledAtlasPaths().annotation << "\n";
      for (const auto& e : cached)
        std::cout << e.name << "\t" << (e.version.empty() ? "-" : e.version) << "\t" << e.format << "\t" << e.path
                  << (e.problem.empty() ? "" : "\t(unreadable: " + e.problem + ")") << "\n";
      if (!brainGlobeSupported())
        std::cout << "note: this build reads no BrainGlobe atlases (built without libtiff, c-blosc and zstd)\n";
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
      const Atlas a = opts->load();
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
      nlohmann::json j = {{"voxel", {v->ap, v->dv, v->ml}},
                          {"id", id},
                          {"atlas", a.name()},
                          {"hemisphere", hemisphereName(a.hemisphereAt(*v))}};
      if (idx) j.update(structureJson(a.structures(), *idx));
      if (id != 0 && !idx) j["outside_atlas"] = "label not in the structure tree";
      if (*json) {
        std::cout << j.dump() << "\n";
      } else if (id == 0) {
        std::cout << "0\toutside the brain\n";
      } else if (!idx) {
        std::cout << id << "\t(label not in the ontology: outside the atlas)\n";
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
      AtlasOpenOptions structuresOnly;
      structuresOnly.labels = false;
      const StructureTree tree = opts->atlas.empty() || opts->atlas == kBundledAtlasName
                                     ? readOntology(opts->paths().ontology)
                                     : opts->load(structuresOnly).structures();
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

  // --- compare
  {
    auto a = std::make_shared<std::string>(), b = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>("atlas-comparison");
    auto o = std::make_shared<AtlasComparisonOptions>();
    auto noDepths = std::make_shared<bool>(false);
    CLI::App* cmd = atlas->add_subcommand(
        "compare", "One atlas against another of the same space, voxel by voxel: scores (AMI, ARI, V-measure; by "
                   "depth of A's tree), best matches, splits and merges");
    cmd->add_option("a", *a, "Reference atlas: ccf, a BrainGlobe name or path")->required();
    cmd->add_option("b", *b, "Atlas scored against it")->required();
    cmd->add_option("--out-dir", *out,
                    "Folder for summary.json, overlap.csv, best_matches.csv, splits.csv, matches.csv");
    cmd->add_option("--level-a", o->levelA.spec, "A's labels: leaf, depth:N or major");
    cmd->add_option("--level-b", o->levelB.spec, "B's labels: leaf, depth:N or major");
    cmd->add_flag("--no-depths", *noDepths, "Skip the scores of A cut at each depth of its tree");
    cmd->add_option("--split-threshold", o->correspondence.splitThreshold,
                    "A structure is split when two or more of the other's lie at least this share inside it")
        ->check(CLI::Range(0.01, 1.0));
    cmd->add_option("--min-jaccard", o->correspondence.minimumJaccard,
                    "One-to-one pairs below this Jaccard are left unmatched")
        ->check(CLI::Range(0.0, 1.0));
    cmd->callback([=] {
      const auto t0 = std::chrono::steady_clock::now();
      AtlasOptions optsA, optsB;
      optsA.atlas = *a;
      optsB.atlas = *b;
      const Atlas atlasA = optsA.load(), atlasB = optsB.load();
      const auto t1 = std::chrono::steady_clock::now();
      AtlasComparisonOptions options = *o;
      options.byDepth = !*noDepths;
      const AtlasComparison c = compareAtlases(atlasA, atlasB, options);
      nlohmann::json summary = writeAtlasComparisonReport(c, atlasA, atlasB, options, *out);
      const auto t2 = std::chrono::steady_clock::now();
      // The line printed: what the summary says at the top, without the per-depth list.
      nlohmann::json line = {{"a", atlasA.name()},
                             {"b", atlasB.name()},
                             {"voxels_compared", summary["voxels_compared"]},
                             {"grid", summary["grid"]},
                             {"scores", agreementJson(c.scores)},
                             {"one_to_one", c.correspondence.oneToOne.size()},
                             {"splits", c.correspondence.splits.size()},
                             {"merges", c.correspondence.merges.size()},
                             {"matched_share", c.correspondence.matchedShare},
                             {"open_seconds", std::chrono::duration<double>(t1 - t0).count()},
                             {"compare_seconds", std::chrono::duration<double>(t2 - t1).count()},
                             {"out_dir", *out}};
      if (!c.byDepth.empty()) {
        const auto best = std::max_element(c.byDepth.begin(), c.byDepth.end(), [](const auto& x, const auto& y) {
          return x.scores.adjustedMutualInformation < y.scores.adjustedMutualInformation;
        });
        line["best_depth_of_a"] = {{"depth", best->depth}, {"ami", best->scores.adjustedMutualInformation}};
      }
      std::cout << line.dump() << "\n";
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
    auto source = std::make_shared<std::string>("labels");
    cmd->add_option("--source", *source,
                    "labels (a surface of the label volume, any atlas) or atlas (the atlas' own mesh, BrainGlobe)")
        ->check(CLI::IsMember({"labels", "atlas"}));
    cmd->callback([opts, structure, out, sopts, source] {
      AtlasOpenOptions o;
      o.labels = *source == "labels";
      const Atlas a = opts->load(o);
      const int idx = resolveStructure(a.structures(), *structure);
      if (*source == "atlas") {
        if (!a.meshSource(idx))
          throw Error("atlas " + a.name() + " ships no mesh of " + a.structures()[idx].acronym +
                      " (--source labels builds one from the label volume)");
        const TriangleMesh m = a.readMesh(idx);
        const auto poly = viewer::toPolyData(m);
        viewer::writeMesh(poly, *out);
        std::cout << "wrote " << *out << ": " << m.vertexCount() << " points, " << m.triangleCount()
                  << " triangles (the atlas' own mesh of " << a.structures()[idx].acronym << ", "
                  << a.meshSource(idx)->path << ")\n";
        return;
      }
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
      const Atlas a = opts->load();
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
