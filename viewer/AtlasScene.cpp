#include "viewer/AtlasScene.h"

#include "core/AtomicFile.h"
#include "core/Error.h"
#include "viewer/SectionPlane.h"

#include <vtkActor.h>
#include <vtkCamera.h>
#include <vtkCellPicker.h>
#include <vtkPNGWriter.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>
#include <vtkWindowToImageFilter.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace atlascope::viewer {

namespace {
// CCF axes in the scene: x = AP (towards posterior), y = DV (towards ventral), z = ML (towards
// the animal's right). Dorsal is "up" on screen in every side view.
struct PresetGeometry {
  std::array<double, 3> direction; // from the focal point towards the camera
  std::array<double, 3> viewUp;
};

PresetGeometry geometry(CameraPreset p) {
  switch (p) {
  case CameraPreset::Anterior: return {{-1, 0, 0}, {0, -1, 0}};
  case CameraPreset::Posterior: return {{1, 0, 0}, {0, -1, 0}};
  case CameraPreset::Dorsal: return {{0, -1, 0}, {-1, 0, 0}};
  case CameraPreset::Ventral: return {{0, 1, 0}, {-1, 0, 0}};
  case CameraPreset::Left: return {{0, 0, -1}, {0, -1, 0}};
  case CameraPreset::Right: return {{0, 0, 1}, {0, -1, 0}};
  case CameraPreset::ThreeQuarter: return {{-0.55, -0.45, -0.70}, {0, -1, 0}};
  }
  return {{0, 0, -1}, {0, -1, 0}};
}
} // namespace

const char* presetName(CameraPreset p) {
  switch (p) {
  case CameraPreset::Anterior: return "anterior";
  case CameraPreset::Posterior: return "posterior";
  case CameraPreset::Dorsal: return "dorsal";
  case CameraPreset::Ventral: return "ventral";
  case CameraPreset::Left: return "left";
  case CameraPreset::Right: return "right";
  case CameraPreset::ThreeQuarter: return "three-quarter";
  }
  return "?";
}

std::optional<CameraPreset> presetFromName(const std::string& name) {
  for (auto p : {CameraPreset::Anterior, CameraPreset::Posterior, CameraPreset::Dorsal, CameraPreset::Ventral,
                 CameraPreset::Left, CameraPreset::Right, CameraPreset::ThreeQuarter})
    if (name == presetName(p)) return p;
  return std::nullopt;
}

void configureRenderer(vtkRenderer* r) {
  r->SetBackground(1.0, 1.0, 1.0);
  r->SetUseDepthPeeling(1);
  r->SetMaximumNumberOfPeels(8);
  r->SetOcclusionRatio(0.05);
}

void configureRenderWindow(vtkRenderWindow* w) {
  w->SetAlphaBitPlanes(1);
  w->SetMultiSamples(0); // depth peeling needs a single-sample framebuffer
}

AtlasScene::AtlasScene(const Atlas& atlas) : atlas_(atlas), renderer_(vtkSmartPointer<vtkRenderer>::New()) {
  configureRenderer(renderer_);
  applyCameraPreset(CameraPreset::ThreeQuarter);
}

AtlasScene::~AtlasScene() = default;

vtkRenderer* AtlasScene::renderer() const { return renderer_; }

RegionDisplay AtlasScene::defaultDisplay(int index) const {
  RegionDisplay d;
  const Structure& s = atlas_.structures()[index];
  if (index == atlas_.structures().root()) {
    d.colour = {0.7, 0.7, 0.7};
    d.opacity = 0.2;
  } else {
    d.colour = {s.rgb[0] / 255.0, s.rgb[1] / 255.0, s.rgb[2] / 255.0};
  }
  return d;
}

void AtlasScene::setSection(SectionPlane* section) {
  section_ = section;
  for (auto& [i, actor] : actors_) {
    if (section_)
      section_->attach(actor->GetMapper());
    else
      actor->GetMapper()->RemoveAllClippingPlanes();
  }
}

void AtlasScene::setSurface(int index, vtkPolyData* surface) {
  auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
  mapper->SetInputData(surface);
  mapper->ScalarVisibilityOff();
  auto& actor = actors_[index];
  if (actor) {
    renderer_->RemoveActor(actor);
    for (auto& r : others_) r->RemoveActor(actor);
  }
  actor = vtkSmartPointer<vtkActor>::New();
  actor->SetMapper(mapper);
  if (section_) section_->attach(mapper);
  actor->GetProperty()->SetInterpolationToGouraud();
  actor->GetProperty()->SetAmbient(0.25);
  actor->GetProperty()->SetDiffuse(0.75);
  actor->GetProperty()->SetSpecular(0.0);
  renderer_->AddActor(actor);
  for (auto& r : others_) r->AddActor(actor);
  if (!displays_.count(index)) displays_[index] = defaultDisplay(index);
  refreshActor(index);
}

bool AtlasScene::hasSurface(int index) const { return actors_.count(index) > 0; }

RegionDisplay AtlasScene::display(int index) const {
  const auto it = displays_.find(index);
  return it == displays_.end() ? defaultDisplay(index) : it->second;
}

void AtlasScene::setDisplay(int index, const RegionDisplay& d) {
  displays_[index] = d;
  refreshActor(index);
}

void AtlasScene::setVisible(int index, bool visible) {
  auto d = display(index);
  d.visible = visible;
  setDisplay(index, d);
}

void AtlasScene::setOpacity(int index, double opacity) {
  auto d = display(index);
  d.opacity = std::clamp(opacity, 0.0, 1.0);
  setDisplay(index, d);
}

void AtlasScene::setColour(int index, const std::array<double, 3>& rgb) {
  auto d = display(index);
  d.colour = rgb;
  setDisplay(index, d);
}

void AtlasScene::setHighlighted(std::optional<int> index) {
  const auto old = highlighted_;
  highlighted_ = index;
  if (old) refreshActor(*old);
  if (index) refreshActor(*index);
}

void AtlasScene::refreshActor(int index) {
  const auto it = actors_.find(index);
  if (it == actors_.end()) return;
  const RegionDisplay d = display(index);
  vtkActor* a = it->second;
  a->SetVisibility(d.visible ? 1 : 0);
  a->GetProperty()->SetColor(d.colour[0], d.colour[1], d.colour[2]);
  a->GetProperty()->SetOpacity(d.opacity);
  const bool hl = highlighted_ && *highlighted_ == index;
  // A highlighted region gets its edges drawn in black; cheap and visible through the shell.
  a->GetProperty()->SetEdgeVisibility(hl ? 1 : 0);
  a->GetProperty()->SetEdgeColor(0.1, 0.1, 0.1);
  a->GetProperty()->SetLineWidth(hl ? 1.0f : 1.0f);
  a->SetPickable(d.visible ? 1 : 0);
}

std::optional<int> AtlasScene::pick(int x, int y) const { return pick(x, y, renderer_); }

void AtlasScene::showIn(vtkRenderer* renderer, bool shown) {
  const auto it =
      std::find_if(others_.begin(), others_.end(), [renderer](const auto& r) { return r.GetPointer() == renderer; });
  if (shown == (it != others_.end()) || renderer == renderer_) return;
  for (auto& [i, actor] : actors_) {
    if (shown)
      renderer->AddActor(actor);
    else
      renderer->RemoveActor(actor);
  }
  if (shown)
    others_.emplace_back(renderer);
  else
    others_.erase(it);
}

std::optional<int> AtlasScene::pick(int x, int y, vtkRenderer* renderer, bool rootIfAlone, double* distance) const {
  auto picker = vtkSmartPointer<vtkCellPicker>::New();
  picker->SetTolerance(0.0005);
  // The translucent root shell would catch every click: pick through it unless it is alone.
  const int root = atlas_.structures().root();
  bool others = false;
  for (const auto& [idx, actor] : actors_)
    if (idx != root && actor->GetVisibility()) others = true;
  picker->PickFromListOn();
  for (const auto& [idx, actor] : actors_)
    if (actor->GetVisibility() && (idx != root || (!others && rootIfAlone))) picker->AddPickList(actor);
  if (!picker->Pick(x, y, 0, renderer)) return std::nullopt;
  vtkActor* hit = picker->GetActor();
  if (distance) {
    double at[3], eye[3];
    picker->GetPickPosition(at);
    renderer->GetActiveCamera()->GetPosition(eye);
    *distance = std::sqrt((at[0] - eye[0]) * (at[0] - eye[0]) + (at[1] - eye[1]) * (at[1] - eye[1]) +
                          (at[2] - eye[2]) * (at[2] - eye[2]));
  }
  for (const auto& [idx, actor] : actors_)
    if (actor.GetPointer() == hit) return idx;
  return std::nullopt;
}

void AtlasScene::applyCameraPreset(CameraPreset preset) { applyCameraPreset(preset, renderer_); }

void AtlasScene::applyCameraPreset(CameraPreset preset, vtkRenderer* renderer) {
  const auto g = geometry(preset);
  const auto extent = atlas_.annotation().extentUm();
  const double centre[3] = {extent[0] / 2, extent[1] / 2, extent[2] / 2};
  vtkCamera* cam = renderer->GetActiveCamera();
  cam->SetFocalPoint(centre);
  const double dist = 40000.0;
  double n =
      std::sqrt(g.direction[0] * g.direction[0] + g.direction[1] * g.direction[1] + g.direction[2] * g.direction[2]);
  cam->SetPosition(centre[0] + dist * g.direction[0] / n, centre[1] + dist * g.direction[1] / n,
                   centre[2] + dist * g.direction[2] / n);
  cam->SetViewUp(g.viewUp[0], g.viewUp[1], g.viewUp[2]);
  cam->OrthogonalizeViewUp();
  resetCamera(renderer);
}

void AtlasScene::resetCamera() { resetCamera(renderer_); }

void AtlasScene::resetCamera(vtkRenderer* renderer) {
  // Fit the whole CCF box, not just what is visible, so that presets frame the brain the same
  // whatever is shown.
  const auto e = atlas_.annotation().extentUm();
  const double bounds[6] = {0, e[0], 0, e[1], 0, e[2]};
  renderer->ResetCamera(bounds);
  renderer->GetActiveCamera()->Zoom(1.25);
  renderer->ResetCameraClippingRange();
}

void saveWindowPng(vtkRenderWindow* window, const std::string& path, int scale) {
  auto grab = vtkSmartPointer<vtkWindowToImageFilter>::New();
  grab->SetInput(window);
  grab->SetScale(scale);
  grab->SetInputBufferTypeToRGB();
  grab->ReadFrontBufferOff();
  grab->Update();
  namespace fs = std::filesystem;
  const std::string tmp = temporaryPathFor(path);
  auto writer = vtkSmartPointer<vtkPNGWriter>::New();
  writer->SetInputConnection(grab->GetOutputPort());
  writer->SetFileName(tmp.c_str());
  writer->Write();
  std::error_code ec;
  if (writer->GetErrorCode() != 0 || !fs::exists(tmp, ec)) {
    std::remove(tmp.c_str());
    throw FileError(path, "cannot write the PNG (is the folder writable?)");
  }
  moveIntoPlace(tmp, path);
}

void renderToPng(AtlasScene& scene, int width, int height, const std::string& path) {
  auto window = vtkSmartPointer<vtkRenderWindow>::New();
  window->SetOffScreenRendering(1);
  configureRenderWindow(window);
  window->SetSize(width, height);
  window->AddRenderer(scene.renderer());
  scene.renderer()->ResetCameraClippingRange();
  window->Render();
  saveWindowPng(window, path);
  window->RemoveRenderer(scene.renderer());
}

} // namespace atlascope::viewer
