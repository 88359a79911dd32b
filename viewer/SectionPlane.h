#pragma once
// A section through the 3D scene: a slab between two parallel clipping planes, coronal (across
// AP), sagittal (across ML) or horizontal (across DV), in CCF micrometres. One plane collection is
// shared by every mapper it is attached to (the CCF surfaces and the cells of either view), so a
// slider moves the section through both parcellations at once. Cut surfaces show as outlines of
// the structures; a slab as thick as the section spacing shows the cells of the nearest section.
#include <vtkSmartPointer.h>

#include <array>
#include <string>

class vtkMapper;
class vtkPlaneCollection;

namespace atlascope::viewer {

enum class SectionAxis { None, Coronal, Sagittal, Horizontal };
const char* sectionAxisName(SectionAxis a);               // "none", "coronal", ...
SectionAxis sectionAxisFromName(const std::string& name); // unknown: None
// The CCF world axis a section cuts across: 0 = AP (coronal), 1 = DV (horizontal), 2 = ML (sagittal).
int sectionAxisIndex(SectionAxis a);

class SectionPlane {
public:
  SectionPlane();
  ~SectionPlane();
  void attach(vtkMapper* mapper);
  // None removes the clipping; thicknessUm > 0.
  void set(SectionAxis axis, double positionUm, double thicknessUm);
  SectionAxis axis() const { return axis_; }
  double position() const { return position_; }
  double thickness() const { return thickness_; }
  vtkPlaneCollection* planes() const;

private:
  vtkSmartPointer<vtkPlaneCollection> planes_;
  SectionAxis axis_ = SectionAxis::None;
  double position_ = 0, thickness_ = 200;
};

} // namespace atlascope::viewer
