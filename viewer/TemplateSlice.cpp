#include "viewer/TemplateSlice.h"

#include <vtkImageActor.h>
#include <vtkImageData.h>
#include <vtkImageMapper3D.h>
#include <vtkImageProperty.h>
#include <vtkPointData.h>
#include <vtkUnsignedCharArray.h>

#include <cstring>

namespace atlascope::viewer {

TemplateSlice::TemplateSlice(const Volume& reference, const std::array<double, 3>& spacingUm)
    : reference_(reference), spacing_(spacingUm), window_(templateWindow(reference)),
      image_(vtkSmartPointer<vtkImageData>::New()), actor_(vtkSmartPointer<vtkImageActor>::New()) {
  actor_->SetInputData(image_);
  actor_->GetProperty()->SetColorWindow(255);
  actor_->GetProperty()->SetColorLevel(127.5);
  actor_->GetProperty()->SetInterpolationTypeToLinear();
  actor_->SetOpacity(0.6);
  actor_->SetPickable(0); // picking goes through to the structures and cells
  actor_->SetVisibility(0);
}

TemplateSlice::~TemplateSlice() = default;

void TemplateSlice::setOpacity(double opacity) { actor_->SetOpacity(opacity); }

void TemplateSlice::setPlane(int normal, double positionUm) {
  if (normal == normal_ && positionUm == position_ && placed_) return;
  normal_ = normal;
  position_ = positionUm;
  const TemplatePlane plane = templatePlane(reference_, spacing_, normal, positionUm, window_);
  placed_ = !plane.empty();
  actor_->SetVisibility(placed_ ? 1 : 0);
  if (!placed_) return;
  // A one-voxel-thick image in world micrometres: extent 0 along the normal.
  int dims[3] = {1, 1, 1};
  dims[plane.axes.u] = plane.width;
  dims[plane.axes.v] = plane.height;
  double origin[3] = {0.5 * spacing_[0], 0.5 * spacing_[1], 0.5 * spacing_[2]};
  origin[normal] = plane.positionUm;
  image_->SetDimensions(dims);
  image_->SetSpacing(spacing_.data());
  image_->SetOrigin(origin);
  auto scalars = vtkSmartPointer<vtkUnsignedCharArray>::New();
  scalars->SetNumberOfTuples(static_cast<vtkIdType>(plane.grey.size()));
  // VTK's point order is x (AP) fastest; the plane's is u fastest.
  for (int y = 0; y < plane.height; ++y)
    for (int x = 0; x < plane.width; ++x) {
      int idx[3] = {0, 0, 0};
      idx[plane.axes.u] = x;
      idx[plane.axes.v] = y;
      const vtkIdType id =
          idx[0] + static_cast<vtkIdType>(dims[0]) * (idx[1] + static_cast<vtkIdType>(dims[1]) * idx[2]);
      scalars->SetValue(id, plane.grey[static_cast<std::size_t>(y) * static_cast<std::size_t>(plane.width) +
                                       static_cast<std::size_t>(x)]);
    }
  image_->GetPointData()->SetScalars(scalars);
  image_->Modified();
  actor_->SetDisplayExtent(0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1);
}

} // namespace atlascope::viewer
