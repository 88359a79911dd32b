#include "viewer/RegionLayer.h"

#include "core/Error.h"
#include "core/RegionVolume.h"
#include "viewer/MeshIO.h"
#include "viewer/RegionSurface.h"
#include "viewer/SectionPlane.h"

#include <vtkActor.h>
#include <vtkCellPicker.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>

#include <filesystem>
#include <fstream>

namespace atlascope::viewer {

namespace fs = std::filesystem;

std::vector<vtkSmartPointer<vtkPolyData>>
buildRegionSurfaceSet(const Atlas& atlas, const std::vector<float>& ap, const std::vector<float>& dv,
                      const std::vector<float>& ml, const std::vector<std::int32_t>& labels, int regions,
                      const std::string& cacheDir, const std::string& key, const Progress& progress) {
  std::vector<vtkSmartPointer<vtkPolyData>> out(static_cast<std::size_t>(std::max(0, regions)));
  const fs::path dir = fs::path(cacheDir) / "regions" / key;
  const fs::path complete = dir / "complete";
  auto fileOf = [&](int label) { return (dir / ("region_" + std::to_string(label) + ".vtp")).string(); };
  if (!cacheDir.empty() && fs::exists(complete)) {
    // A complete set: regions without a file have no voxels.
    for (int l = 0; l < regions; ++l) {
      if (fs::exists(fileOf(l))) out[static_cast<std::size_t>(l)] = readVtp(fileOf(l));
      progress("region surfaces (cached)", l + 1, regions);
    }
    return out;
  }
  // 100 um voxels for the display: 6 s for the demo's 25 regions on 2 cores where 50 um takes 40
  // (`regions mesh` exports at 50 um).
  const RegionVolume volume = voxeliseRegions(atlas.annotation(), ap, dv, ml, labels, 4, progress);
  out = meshRegionVolume(volume, regions, {}, progress);
  if (!cacheDir.empty()) {
    fs::create_directories(dir);
    for (int l = 0; l < regions; ++l)
      if (out[static_cast<std::size_t>(l)]) writeMesh(out[static_cast<std::size_t>(l)], fileOf(l));
    std::ofstream(complete) << regions << "\n";
  }
  return out;
}

RegionLayer::RegionLayer(vtkRenderer* renderer) : renderer_(renderer) {}

RegionLayer::~RegionLayer() { clear(); }

void RegionLayer::clear() {
  for (auto& a : actors_)
    if (a) renderer_->RemoveActor(a);
  actors_.clear();
}

void RegionLayer::setSurfaces(const std::vector<vtkSmartPointer<vtkPolyData>>& surfaces,
                              const std::vector<std::array<std::uint8_t, 3>>& colours) {
  clear();
  actors_.resize(surfaces.size());
  for (std::size_t l = 0; l < surfaces.size(); ++l) {
    if (!surfaces[l]) continue;
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputData(surfaces[l]);
    mapper->ScalarVisibilityOff();
    if (section_) section_->attach(mapper);
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    const auto c = l < colours.size() ? colours[l] : std::array<std::uint8_t, 3>{200, 200, 200};
    actor->GetProperty()->SetColor(c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
    actor->GetProperty()->SetAmbient(0.25);
    actor->GetProperty()->SetDiffuse(0.75);
    actor->GetProperty()->SetEdgeColor(0.1, 0.1, 0.1);
    renderer_->AddActor(actor);
    actors_[l] = actor;
  }
  refresh();
}

int RegionLayer::count() const {
  int n = 0;
  for (const auto& a : actors_) n += a != nullptr;
  return n;
}

void RegionLayer::setVisible(bool visible) {
  visible_ = visible;
  refresh();
}

void RegionLayer::setOpacity(double opacity) {
  opacity_ = std::clamp(opacity, 0.0, 1.0);
  refresh();
}

void RegionLayer::setHighlighted(std::optional<int> label) {
  highlighted_ = label;
  refresh();
}

void RegionLayer::setSection(SectionPlane* section) {
  section_ = section;
  for (auto& a : actors_) {
    if (!a) continue;
    if (section_)
      section_->attach(a->GetMapper());
    else
      a->GetMapper()->RemoveAllClippingPlanes();
  }
}

void RegionLayer::refresh() {
  for (std::size_t l = 0; l < actors_.size(); ++l) {
    if (!actors_[l]) continue;
    const bool hl = highlighted_ && *highlighted_ == static_cast<int>(l);
    actors_[l]->SetVisibility(visible_ ? 1 : 0);
    // The selected region opaque and outlined, the others at the layer's opacity.
    actors_[l]->GetProperty()->SetOpacity(hl ? 1.0 : opacity_);
    actors_[l]->GetProperty()->SetEdgeVisibility(hl ? 1 : 0);
    actors_[l]->SetPickable(0);
  }
}

std::optional<int> RegionLayer::pick(int x, int y) const {
  if (!visible_) return std::nullopt;
  auto picker = vtkSmartPointer<vtkCellPicker>::New();
  picker->SetTolerance(0.0005);
  picker->PickFromListOn();
  // The surfaces are unpickable otherwise, so that cell and CCF picks go through them.
  for (const auto& a : actors_)
    if (a) {
      a->SetPickable(1);
      picker->AddPickList(a);
    }
  const bool hit = picker->Pick(x, y, 0, renderer_) != 0;
  for (const auto& a : actors_)
    if (a) a->SetPickable(0);
  if (!hit) return std::nullopt;
  for (std::size_t label = 0; label < actors_.size(); ++label)
    if (actors_[label] && actors_[label].GetPointer() == picker->GetActor()) return static_cast<int>(label);
  return std::nullopt;
}

} // namespace atlascope::viewer
