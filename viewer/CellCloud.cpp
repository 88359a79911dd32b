#include "viewer/CellCloud.h"

#include "core/Error.h"
#include "core/Palette.h"

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkFloatArray.h>
#include <vtkIntArray.h>
#include <vtkLookupTable.h>
#include <vtkPointData.h>
#include <vtkPointPicker.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>
#include <vtkSOADataArrayTemplate.h>
#include <vtkScalarBarActor.h>
#include <vtkTextProperty.h>
#include <vtkTypeInt32Array.h>
#include <vtkTypeInt64Array.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace atlascope::viewer {

std::vector<std::array<std::uint8_t, 3>> CellCloud::palette(std::size_t n) { return categoricalPalette(n); }

CellCloud::CellCloud(std::shared_ptr<const CellTable> cells, double sectionSpacingUm)
    : CellCloud(*cells, cells, sectionSpacingUm) {}

CellCloud::CellCloud(const CellTable& cells, double sectionSpacingUm) : CellCloud(cells, nullptr, sectionSpacingUm) {}

CellCloud::CellCloud(const CellTable& cells, std::shared_ptr<const CellTable> held, double sectionSpacingUm)
    : n_(cells.size()), ccf_(cells.hasCcf()),
      spacing_(sectionSpacingUm > 0 ? sectionSpacingUm : kDefaultSectionSpacingUm), visible_(cells.size()) {
  auto pts = vtkSmartPointer<vtkPoints>::New();
  if (ccf_ && held) {
    // The table's three coordinate arrays as the points' components, in place.
    auto soa = vtkSmartPointer<vtkSOADataArrayTemplate<float>>::New();
    soa->SetNumberOfComponents(3);
    float* axes[] = {const_cast<float*>(cells.ccfAp.data()), const_cast<float*>(cells.ccfDv.data()),
                     const_cast<float*>(cells.ccfMl.data())};
    for (int c = 0; c < 3; ++c) soa->SetArray(c, axes[c], static_cast<vtkIdType>(n_), true, true);
    pts->SetData(soa);
    held_ = std::move(held);
  } else {
    pts->SetDataTypeToFloat();
    pts->SetNumberOfPoints(n_);
    for (std::int64_t i = 0; i < n_; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (ccf_)
        pts->SetPoint(i, cells.ccfAp[k], cells.ccfDv[k], cells.ccfMl[k]);
      else
        pts->SetPoint(i, static_cast<double>(cells.section[k]) * spacing_, cells.y[k], cells.x[k]);
    }
  }
  points_ = vtkSmartPointer<vtkPolyData>::New();
  points_->SetPoints(pts);
  rebuildVerts();
  auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
  mapper->SetInputData(points_);
  mapper->SetColorModeToMapScalars();
  mapper->SetScalarModeToUsePointData();
  actor_ = vtkSmartPointer<vtkActor>::New();
  actor_->SetMapper(mapper);
  actor_->GetProperty()->SetPointSize(3.0);
  actor_->GetProperty()->SetLighting(false);
  actor_->GetProperty()->SetRenderPointsAsSpheres(false);
  bar_ = vtkSmartPointer<vtkScalarBarActor>::New();
  bar_->SetNumberOfLabels(3);
  bar_->SetWidth(0.06);
  bar_->SetHeight(0.35);
  bar_->SetPosition(0.92, 0.08);
  bar_->GetTitleTextProperty()->SetColor(0.1, 0.1, 0.1);
  bar_->GetLabelTextProperty()->SetColor(0.1, 0.1, 0.1);
  bar_->GetTitleTextProperty()->ShadowOff();
  bar_->GetLabelTextProperty()->ShadowOff();
  bar_->VisibilityOff();
  std::vector<std::int32_t> none(static_cast<std::size_t>(n_), -1);
  colourByCategory(none, {}, {});
}

CellCloud::CellCloud(CellCloud&&) noexcept = default;
CellCloud::~CellCloud() = default;

void CellCloud::setSectionSpacing(double um) {
  if (ccf_ || !(um > 0) || um == spacing_) return;
  vtkPoints* pts = points_->GetPoints();
  for (std::int64_t i = 0; i < n_; ++i) {
    double p[3];
    pts->GetPoint(i, p);
    p[0] = std::round(p[0] / spacing_) * um; // the section index times the new spacing
    pts->SetPoint(i, p);
  }
  pts->Modified();
  spacing_ = um;
}

vtkActor* CellCloud::actor() const { return actor_; }
vtkScalarBarActor* CellCloud::colourBar() const { return bar_; }

void CellCloud::colourByCategory(const std::vector<std::int32_t>& codes, const std::vector<std::string>& names,
                                 const std::vector<std::array<std::uint8_t, 3>>& colours) {
  auto arr = vtkSmartPointer<vtkIntArray>::New();
  arr->SetName("category");
  arr->SetNumberOfTuples(n_);
  const auto k = static_cast<int>(names.size());
  for (std::int64_t i = 0; i < n_; ++i) {
    const std::int32_t c = codes[static_cast<std::size_t>(i)];
    arr->SetValue(i, c < 0 || c >= k ? k : c); // missing -> the extra grey entry
  }
  const auto pal = colours.size() == names.size() ? colours : palette(names.size());
  auto lut = vtkSmartPointer<vtkLookupTable>::New();
  lut->SetNumberOfTableValues(k + 1);
  lut->SetRange(0, k);
  for (int c = 0; c < k; ++c)
    lut->SetTableValue(c, pal[static_cast<std::size_t>(c)][0] / 255.0, pal[static_cast<std::size_t>(c)][1] / 255.0,
                       pal[static_cast<std::size_t>(c)][2] / 255.0, 1.0);
  lut->SetTableValue(k, 0.6, 0.6, 0.6, 1.0);
  lut->Build();
  points_->GetPointData()->SetScalars(arr);
  auto* mapper = vtkPolyDataMapper::SafeDownCast(actor_->GetMapper());
  mapper->SetLookupTable(lut);
  mapper->SetScalarRange(0, k);
  mapper->ScalarVisibilityOn();
  bar_->VisibilityOff();
  points_->Modified();
}

void CellCloud::colourByValues(const std::vector<float>& values, const std::string& title,
                               std::optional<std::pair<float, float>> range) {
  auto arr = vtkSmartPointer<vtkFloatArray>::New();
  arr->SetName(title.c_str());
  arr->SetNumberOfTuples(n_);
  float lo = 0, hi = 0;
  bool first = true;
  for (std::int64_t i = 0; i < n_; ++i) {
    const float v = values[static_cast<std::size_t>(i)];
    arr->SetValue(i, v);
    if (std::isfinite(v)) {
      lo = first ? v : std::min(lo, v);
      hi = first ? v : std::max(hi, v);
      first = false;
    }
  }
  if (range) {
    lo = range->first;
    hi = range->second;
  }
  if (!(hi > lo)) hi = lo + 1;
  // A perceptual sequential map (light yellow -> dark purple, viridis-like in reverse).
  auto lut = vtkSmartPointer<vtkLookupTable>::New();
  lut->SetNumberOfTableValues(256);
  const double stops[5][3] = {
      {0.99, 0.91, 0.14}, {0.37, 0.79, 0.38}, {0.13, 0.57, 0.55}, {0.23, 0.32, 0.55}, {0.27, 0.00, 0.33}};
  for (int t = 0; t < 256; ++t) {
    const double u = t / 255.0 * 4.0;
    const int a = std::min(3, static_cast<int>(u));
    const double f = u - a;
    lut->SetTableValue(t, stops[a][0] * (1 - f) + stops[a + 1][0] * f, stops[a][1] * (1 - f) + stops[a + 1][1] * f,
                       stops[a][2] * (1 - f) + stops[a + 1][2] * f, 1.0);
  }
  lut->SetRange(lo, hi);
  lut->SetNanColor(0.8, 0.8, 0.8, 1.0);
  lut->Build();
  points_->GetPointData()->SetScalars(arr);
  auto* mapper = vtkPolyDataMapper::SafeDownCast(actor_->GetMapper());
  mapper->SetLookupTable(lut);
  mapper->SetScalarRange(lo, hi);
  mapper->ScalarVisibilityOn();
  bar_->SetLookupTable(lut);
  bar_->SetTitle(title.c_str());
  bar_->VisibilityOn();
  points_->Modified();
}

void CellCloud::setPointSize(double px) { actor_->GetProperty()->SetPointSize(static_cast<float>(px)); }
double CellCloud::pointSize() const { return actor_->GetProperty()->GetPointSize(); }

std::array<double, 3> CellCloud::position(std::int64_t cell) const {
  double p[3];
  points_->GetPoint(cell, p);
  return {p[0], p[1], p[2]};
}

void CellCloud::setVisibleCells(std::vector<std::uint8_t> mask) {
  if (!mask.empty() && static_cast<std::int64_t>(mask.size()) != n_)
    throw Error("cell visibility: one flag per cell is needed");
  if (std::all_of(mask.begin(), mask.end(), [](std::uint8_t v) { return v != 0; })) mask.clear();
  if (mask.empty() && mask_.empty()) return; // every cell drawn already (each colouring asks): no pass over the cells
  mask_ = std::move(mask);
  visible_ =
      mask_.empty()
          ? n_
          : static_cast<std::int64_t>(std::count_if(mask_.begin(), mask_.end(), [](std::uint8_t v) { return v != 0; }));
  rebuildVerts();
}

void CellCloud::setInteracting(bool on) {
  if (on == interacting_) return;
  interacting_ = on;
  if (visibleCount() > lodBudget_) rebuildVerts(); // small clouds are drawn whole anyway
}

void CellCloud::rebuildVerts() {
  const std::int64_t visible = visible_;
  const std::int64_t stride =
      interacting_ && visible > lodBudget_ ? (visible + lodBudget_ - 1) / std::max<std::int64_t>(1, lodBudget_) : 1;
  // One poly-vertex cell for all drawn points (one draw call), its ids written straight into the
  // cell array's own storage, 32-bit below 2^31 points (16 MB for 4M cells, not 32 plus a copy).
  const std::int64_t count = (visible + stride - 1) / stride;
  auto fill = [&](auto offsets, auto connectivity) {
    connectivity->SetNumberOfValues(static_cast<vtkIdType>(count));
    std::int64_t seen = 0, at = 0;
    for (std::int64_t i = 0; i < n_ && at < count; ++i)
      if (mask_.empty() || mask_[static_cast<std::size_t>(i)])
        if (seen++ % stride == 0) connectivity->SetValue(static_cast<vtkIdType>(at++), i);
    offsets->SetNumberOfValues(2);
    offsets->SetValue(0, 0);
    offsets->SetValue(1, count);
    auto verts = vtkSmartPointer<vtkCellArray>::New();
    verts->SetData(offsets, connectivity);
    points_->SetVerts(verts);
  };
  if (n_ < std::numeric_limits<std::int32_t>::max())
    fill(vtkSmartPointer<vtkTypeInt32Array>::New(), vtkSmartPointer<vtkTypeInt32Array>::New());
  else
    fill(vtkSmartPointer<vtkTypeInt64Array>::New(), vtkSmartPointer<vtkTypeInt64Array>::New());
  points_->Modified();
}

std::int64_t CellCloud::drawnCount() const {
  return points_->GetVerts() ? static_cast<std::int64_t>(points_->GetVerts()->GetNumberOfConnectivityIds()) : 0;
}

std::optional<std::int64_t> CellCloud::pick(vtkRenderer* renderer, int x, int y) const {
  auto picker = vtkSmartPointer<vtkPointPicker>::New();
  picker->UseCellsOn(); // only the points the vertex list draws (hidden cells are not picked)
  picker->SetTolerance(0.005);
  picker->PickFromListOn();
  picker->AddPickList(actor_);
  if (!picker->Pick(x, y, 0, renderer) || picker->GetPointId() < 0) return std::nullopt;
  return picker->GetPointId();
}

} // namespace atlascope::viewer
