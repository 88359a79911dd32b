#pragma once
// Every atlas Atlascope can open, by name or by path: the bundled Allen CCF ("ccf"), BrainGlobe
// atlases in the user's BrainGlobe folder (both layouts: v1 folders of brainglobe-atlasapi up to
// 2.x, and the v3 layout of 3.x), or an atlas folder / manifest anywhere on disk.
//
//   Atlas a = openAtlas("allen_mouse_25um");            // a cached BrainGlobe atlas, by name
//   Atlas b = openAtlas("/data/allen_mouse_10um_v1.2");  // a v1 folder
//   Atlas c = openAtlas(".../atlases/x_25um/1_0/manifest.json"); // a v3 manifest
//   for (const CachedAtlas& e : listCachedAtlases()) ... // File > Open atlas
//
// Every failure is an atlascope::Error (a FileError naming the file where one is at fault).
#include "core/Atlas.h"

#include <string>
#include <vector>

namespace atlascope {

struct AtlasOpenOptions {
  bool labels = true;       // read the annotation (false: the structure tree only, e.g. to search it)
  bool reference = false;   // also read the reference template (uint16; 2 bytes per voxel)
  bool hemispheres = false; // also read an asymmetric atlas' hemispheres stack (1 byte per voxel)
  bool meshes = true;       // list the atlas' mesh files (cheap: a folder listing)
  Progress progress;
};

// The name of the bundled CCF (also what an empty name opens).
constexpr const char* kBundledAtlasName = "ccf";

Atlas openAtlas(const std::string& nameOrPath, const AtlasOpenOptions& options = {});

// BrainGlobe's base folder, as brainglobe-atlasapi finds it: `brainglobe_dir` in
// $BRAINGLOBE_CONFIG_DIR/bg_config.conf (default ~/.config/brainglobe/bg_config.conf), else
// ~/.brainglobe. v3 atlases lie below its brainglobe-atlasapi/ folder.
struct BrainGlobeFolder {
  std::string path;
  std::string foundBy; // "bg_config.conf (<path>)" or "default"
};
BrainGlobeFolder brainGlobeFolder();

struct CachedAtlas {
  std::string name;    // what openAtlas takes: "allen_mouse_25um" (v1 and v3 alike)
  std::string version; // "1.2"
  std::string format;  // "brainglobe-v1" or "brainglobe-v3"
  std::string path;    // the v1 folder or the v3 manifest.json
  std::string problem; // non-empty when its metadata cannot be read (listed, not opened)
};
// The atlases in the BrainGlobe folder, sorted by name then version (an unreadable one listed
// with its problem rather than failing the listing). Reads only the small metadata files.
std::vector<CachedAtlas> listCachedAtlases();
// The same for a given BrainGlobe base folder (tests).
std::vector<CachedAtlas> listCachedAtlases(const std::string& brainGlobeDir);

// The readers (AtlasCatalog.cpp dispatches to them).
Atlas openBrainGlobeV1(const std::string& folder, const AtlasOpenOptions& options = {});
Atlas openBrainGlobeV3(const std::string& manifestPath, const AtlasOpenOptions& options = {});
// v3 terminology.csv (identifier, parent_identifier, annotation_value, name, abbreviation,
// color_hex_triplet, root_identifier_path).
StructureTree readTerminologyCsv(const std::string& path);
// True when this build reads BrainGlobe atlases (libtiff, c-blosc and zstd were found).
bool brainGlobeSupported();

} // namespace atlascope
