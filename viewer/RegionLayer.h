#pragma once
// Discovered regions drawn as surfaces: one actor per region in a renderer, coloured like the
// regions' cells, with one opacity for the layer (translucent by default, so the cells and the
// CCF stay visible through it) and one region outlined when selected. The surfaces themselves
// come from buildRegionSurfaceSet (data apart from display).
#include "core/Atlas.h"
#include "core/Progress.h"

#include <vtkSmartPointer.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

class vtkActor;
class vtkPolyData;
class vtkRenderer;

namespace atlascope::viewer {

class SectionPlane;

// Every region's surface (index = label; null when the label has no voxels), from the cells' CCF
// positions and labels: voxelised at 100 um (a display's resolution; `regions mesh` exports at
// 50 um), filled through the brain, meshed like the CCF's on every core.
// Cached on disk under cacheDir/regions/<key>/ (VTP per region, written atomically; `key` names
// the dataset and labelling, e.g. a hash of path, modification time and column). Cancellable.
std::vector<vtkSmartPointer<vtkPolyData>>
buildRegionSurfaceSet(const Atlas& atlas, const std::vector<float>& ap, const std::vector<float>& dv,
                      const std::vector<float>& ml, const std::vector<std::int32_t>& labels, int regions,
                      const std::string& cacheDir, const std::string& key, const Progress& progress = {});

class RegionLayer {
public:
  explicit RegionLayer(vtkRenderer* renderer);
  ~RegionLayer();
  RegionLayer(const RegionLayer&) = delete;
  RegionLayer& operator=(const RegionLayer&) = delete;

  // Replaces the layer's surfaces; colours per label (0..255).
  void setSurfaces(const std::vector<vtkSmartPointer<vtkPolyData>>& surfaces,
                   const std::vector<std::array<std::uint8_t, 3>>& colours);
  void clear();
  int count() const; // regions with a surface
  void setVisible(bool visible);
  bool visible() const { return visible_; }
  void setOpacity(double opacity);
  double opacity() const { return opacity_; }
  void setHighlighted(std::optional<int> label); // edges of one region drawn
  void setSection(SectionPlane* section);        // clipped like the CCF (nullptr: none)
  // The region whose surface is under display point (x, y) (VTK pixels), if the layer is shown.
  std::optional<int> pick(int x, int y) const;

private:
  void refresh();
  vtkRenderer* renderer_;
  std::vector<vtkSmartPointer<vtkActor>> actors_; // by label (null: none)
  SectionPlane* section_ = nullptr;
  bool visible_ = true;
  double opacity_ = 0.35;
  std::optional<int> highlighted_;
};

} // namespace atlascope::viewer
