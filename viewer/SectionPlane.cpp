#include "viewer/SectionPlane.h"

#include <vtkMapper.h>
#include <vtkPlane.h>
#include <vtkPlaneCollection.h>

namespace atlascope::viewer {

const char* sectionAxisName(SectionAxis a) {
  switch (a) {
  case SectionAxis::Coronal: return "coronal";
  case SectionAxis::Sagittal: return "sagittal";
  case SectionAxis::Horizontal: return "horizontal";
  case SectionAxis::None: break;
  }
  return "none";
}

SectionAxis sectionAxisFromName(const std::string& n) {
  if (n == "coronal") return SectionAxis::Coronal;
  if (n == "sagittal") return SectionAxis::Sagittal;
  if (n == "horizontal") return SectionAxis::Horizontal;
  return SectionAxis::None;
}

int sectionAxisIndex(SectionAxis a) {
  switch (a) {
  case SectionAxis::Coronal: return 0;
  case SectionAxis::Horizontal: return 1;
  case SectionAxis::Sagittal: return 2;
  case SectionAxis::None: break;
  }
  return -1;
}

SectionPlane::SectionPlane() : planes_(vtkSmartPointer<vtkPlaneCollection>::New()) {}
SectionPlane::~SectionPlane() = default;

vtkPlaneCollection* SectionPlane::planes() const { return planes_; }

void SectionPlane::attach(vtkMapper* mapper) {
  if (mapper) mapper->SetClippingPlanes(planes_);
}

void SectionPlane::set(SectionAxis axis, double position, double thickness) {
  axis_ = axis;
  position_ = position;
  thickness_ = thickness > 0 ? thickness : thickness_;
  planes_->RemoveAllItems();
  const int i = sectionAxisIndex(axis);
  if (i < 0) {
    planes_->Modified();
    return;
  }
  // VTK keeps the side a clipping plane's normal points to: the slab between the two.
  for (const int side : {-1, 1}) {
    auto p = vtkSmartPointer<vtkPlane>::New();
    double origin[3] = {0, 0, 0}, normal[3] = {0, 0, 0};
    origin[i] = position + side * thickness_ / 2;
    normal[i] = -side;
    p->SetOrigin(origin);
    p->SetNormal(normal);
    planes_->AddItem(p);
  }
  planes_->Modified();
}

} // namespace atlascope::viewer
