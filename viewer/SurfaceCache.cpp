#include "viewer/SurfaceCache.h"

#include "core/FileSystem.h"
#include "viewer/MeshIO.h"

#include <vtkPolyData.h>
#include <vtkPolyDataNormals.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace atlascope::viewer {

namespace fs = std::filesystem;

SurfaceCache::SurfaceCache(const Atlas& atlas, std::string cacheDir, SurfaceOptions options)
    : atlas_(atlas), options_(options) {
  char key[40];
  std::snprintf(key, sizeof key, "%016llx-%016llx", static_cast<unsigned long long>(atlas.annotation().fingerprint()),
                static_cast<unsigned long long>(options_.hash()));
  dir_ = (fs::path(cacheDir) / "surfaces" / key).string();
}

std::string SurfaceCache::pathFor(int structureIndex) const {
  return (fs::path(dir_) / (std::to_string(atlas_.structures()[structureIndex].id) + ".vtp")).string();
}

bool SurfaceCache::isOnDisk(int structureIndex) const {
  std::error_code ec;
  return fs::exists(pathFor(structureIndex), ec);
}

vtkSmartPointer<vtkPolyData> SurfaceCache::surface(int structureIndex, const Progress& progress) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = memory_.find(structureIndex); it != memory_.end()) return it->second;
  }
  // The atlas' own mesh when it ships one (BrainGlobe atlases: the meshes its authors curated,
  // smoother than ours); a mesh file that cannot be read is an error naming it, not a silent
  // rebuild, so that a damaged atlas is noticed.
  if (atlas_.meshSource(structureIndex)) {
    auto normals = vtkSmartPointer<vtkPolyDataNormals>::New();
    normals->SetInputData(toPolyData(atlas_.readMesh(structureIndex)));
    normals->SplittingOff();
    normals->ConsistencyOn();
    normals->AutoOrientNormalsOn();
    normals->Update();
    vtkSmartPointer<vtkPolyData> own = normals->GetOutput();
    std::lock_guard<std::mutex> lock(mutex_);
    memory_[structureIndex] = own;
    return own;
  }
  const std::string path = pathFor(structureIndex);
  vtkSmartPointer<vtkPolyData> mesh = readVtp(path);
  if (!mesh) {
    mesh = buildRegionSurface(atlas_, structureIndex, options_, progress);
    if (mesh->GetNumberOfPoints() > 0) {
      std::error_code ec;
      fs::create_directories(dir_, ec);
      try {
        writeMesh(mesh, path);
      } catch (const std::exception&) {
        // A read-only cache folder costs the next launch a rebuild, nothing more.
      }
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  memory_[structureIndex] = mesh;
  return mesh;
}

} // namespace atlascope::viewer
