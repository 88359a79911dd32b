#pragma once
// The 3D scene of the atlas: region surfaces as actors in one renderer, their display state
// (visibility, opacity, colour), camera presets, picking and screenshots. Data (Atlas, surfaces)
// stays separate from how it is shown (this class), as in 3D Slicer's node/display split.
//
// One actor per *shown* structure (only those the user turns on are built), which keeps picking
// exact; the ~840-structure merged-mesh form belongs to the discovered parcellations (later issue).
#include "core/Atlas.h"

#include <vtkSmartPointer.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

class vtkActor;
class vtkPolyData;
class vtkRenderer;
class vtkRenderWindow;

namespace atlascope::viewer {

enum class CameraPreset { Anterior, Posterior, Dorsal, Ventral, Left, Right, ThreeQuarter };
const char* presetName(CameraPreset p);
std::optional<CameraPreset> presetFromName(const std::string& name);

struct RegionDisplay {
  bool visible = true;
  double opacity = 1.0;
  std::array<double, 3> colour{1, 1, 1}; // 0..1
};

class AtlasScene {
public:
  explicit AtlasScene(const Atlas& atlas);
  ~AtlasScene();

  vtkRenderer* renderer() const;
  const Atlas& atlas() const { return atlas_; }

  // Adds (or replaces) the surface of a structure, with its display state.
  void setSurface(int structureIndex, vtkPolyData* surface);
  bool hasSurface(int structureIndex) const;
  RegionDisplay display(int structureIndex) const;
  void setDisplay(int structureIndex, const RegionDisplay& d);
  void setVisible(int structureIndex, bool visible);
  void setOpacity(int structureIndex, double opacity);
  void setColour(int structureIndex, const std::array<double, 3>& rgb);
  // Default display of a structure: its ontology colour; the root as a translucent grey shell.
  RegionDisplay defaultDisplay(int structureIndex) const;

  // Outlines one structure (nullopt: none) so that a selection is visible in 3D.
  void setHighlighted(std::optional<int> structureIndex);
  std::optional<int> highlighted() const { return highlighted_; }

  // The visible structure under a display pixel (VTK's coordinates: origin bottom left), in the
  // scene's renderer or in another one that shows it.
  std::optional<int> pick(int x, int y) const;
  // `rootIfAlone`: the translucent whole-brain shell is picked when no other structure is shown
  // (false: never, for a view that overlays atlases and asks each in turn); `distance`, when
  // given, receives the hit's distance from the camera.
  std::optional<int> pick(int x, int y, vtkRenderer* renderer, bool rootIfAlone = true,
                          double* distance = nullptr) const;

  void applyCameraPreset(CameraPreset preset);
  void applyCameraPreset(CameraPreset preset, vtkRenderer* renderer); // that renderer's camera, framed in it
  // Fits the camera to the whole brain, keeping the direction.
  void resetCamera();
  void resetCamera(vtkRenderer* renderer);
  // The scene's actors are drawn by `renderer` too (another view of a multi-view layout; actors
  // are shared between the renderers of one window); false takes them out of it again.
  void showIn(vtkRenderer* renderer, bool shown);

  // Every structure's surface (now and later) is clipped by `section` (nullptr: none).
  void setSection(class SectionPlane* section);

private:
  void refreshActor(int structureIndex);
  class SectionPlane* section_ = nullptr;

  const Atlas& atlas_;
  vtkSmartPointer<vtkRenderer> renderer_;
  std::vector<vtkSmartPointer<vtkRenderer>> others_; // further renderers showing the actors
  std::map<int, vtkSmartPointer<vtkActor>> actors_;
  std::map<int, RegionDisplay> displays_;
  std::optional<int> highlighted_;
};

// Renders `scene` offscreen at width x height and writes a PNG (used by the CLI and tests).
void renderToPng(AtlasScene& scene, int width, int height, const std::string& path);
// Writes what `window` shows now as PNG (VTK's own buffer: QWidget::grab cannot see it).
void saveWindowPng(vtkRenderWindow* window, const std::string& path, int scale = 1);

// The look users call publication quality (STYLE.md): white background, depth peeling.
void configureRenderer(vtkRenderer* renderer);
void configureRenderWindow(vtkRenderWindow* window);

} // namespace atlascope::viewer
