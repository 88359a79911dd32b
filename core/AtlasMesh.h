#pragma once
// The structure meshes BrainGlobe atlases ship: Wavefront OBJ files (v1 folders: meshes/<id>.obj)
// and Neuroglancer precomputed multi-resolution meshes, Draco-compressed (v3:
// annotations.precomputed/mesh/{info, <id>.index, <id>}). Both are returned in the files' own
// frame: micrometres along the stack's axes (voxel i's centre at i x spacing); Atlas::readMesh
// moves them into Atlascope's.
#include "core/Atlas.h"

#include <string>

namespace atlascope {

// Vertices ("v x y z") and faces ("f a b c ...", polygons split into fans; "a/t/n" and negative
// indices read). A face naming a vertex that does not exist is a FileError.
TriangleMesh readObjMesh(const std::string& path);

// The finest level of detail of segment `id` in a Neuroglancer precomputed mesh folder
// (@type neuroglancer_multilod_draco): every fragment decoded with Draco, placed by the manifest
// (grid origin, chunk shape, fragment positions, vertex quantization) and the info's transform,
// then converted from nanometres in x, y, z (the stack's axes 2, 1, 0) to micrometres along the
// stack's axes 0, 1, 2. A FileError when Draco support was not built in.
TriangleMesh readPrecomputedMesh(const std::string& meshFolder, StructureId id);

// Writes an OBJ (tests and `atlas mesh` of an atlas' own mesh).
void writeObjMesh(const std::string& path, const TriangleMesh& mesh);

// Writes segment `id` as brainglobe-atlasapi 3.x does (mesh_utils.write_mesh): one level of
// detail, one fragment, Draco with 16-bit positions quantized over the bounding cube; `mesh` in
// micrometres along the stack's axes 0, 1, 2 (stored as nanometres in x, y, z = axes 2, 1, 0).
// Also writes the folder's `info`. Tests and tools; a FileError without Draco support.
void writePrecomputedMesh(const std::string& meshFolder, StructureId id, const TriangleMesh& mesh);

} // namespace atlascope
