#pragma once
// Region surfaces cached on disk so that a second launch shows them at once. Key: the annotation's
// content fingerprint, the structure id and the surface options; files are VTP, written atomically.
// A structure the atlas ships a mesh for (BrainGlobe) is drawn with that mesh instead (read, not
// cached: reading it is as fast as reading the cache).
#include "core/FileSystem.h"
#include "viewer/RegionSurface.h"

#include <mutex>
#include <string>
#include <unordered_map>

namespace atlascope::viewer {

class SurfaceCache {
public:
  SurfaceCache(const Atlas& atlas, std::string cacheDir = defaultCacheDir(), SurfaceOptions options = {});

  // The cached surface, else builds it (and stores it). Thread-safe; concurrent calls for
  // different structures build in parallel.
  vtkSmartPointer<vtkPolyData> surface(int structureIndex, const Progress& progress = {});
  bool isOnDisk(int structureIndex) const;
  std::string pathFor(int structureIndex) const;

private:
  const Atlas& atlas_;
  std::string dir_;
  SurfaceOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<int, vtkSmartPointer<vtkPolyData>> memory_;
};

} // namespace atlascope::viewer
