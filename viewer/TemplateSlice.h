#pragma once
// An atlas' reference template as a translucent grey slice in the 3D scene, on the section plane
// (or the middle coronal plane when no section is set), so that structures and cells can be read
// against the anatomy they were drawn on. Only the plane shown is copied to VTK (a 25 um mouse
// template is 150 MB; a slice 0.3 MB).
#include "core/TemplatePlane.h"

#include <vtkSmartPointer.h>

class vtkImageActor;
class vtkImageData;

namespace atlascope::viewer {

class TemplateSlice {
public:
  // `reference` must outlive the slice (the atlas holds it).
  TemplateSlice(const Volume& reference, const std::array<double, 3>& spacingUm);
  ~TemplateSlice();
  vtkImageActor* actor() const { return actor_; }
  // normal: 0 AP (coronal), 1 DV (horizontal), 2 ML (sagittal); outside the volume: hidden.
  void setPlane(int normal, double positionUm);
  void setOpacity(double opacity);
  bool placed() const { return placed_; }

private:
  const Volume& reference_;
  std::array<double, 3> spacing_;
  GreyWindow window_;
  vtkSmartPointer<vtkImageData> image_;
  vtkSmartPointer<vtkImageActor> actor_;
  int normal_ = -1;
  double position_ = 0;
  bool placed_ = false;
};

} // namespace atlascope::viewer
