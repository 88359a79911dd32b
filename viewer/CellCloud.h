#pragma once
// All cells of a dataset as one VTK actor (never a glyph per cell: STYLE.md). Positions are CCF
// micrometres when the data has them; otherwise cells are laid out by section (in-section x/y,
// sections stacked along AP at their index x the section spacing, 200 um unless the data or the
// user says otherwise), so any dataset can be looked at.
// Colour comes from one per-cell scalar array and a small lookup table: recolouring by another
// category or a gene swaps the array and the table, never the geometry.
#include "core/CellTable.h"

#include <vtkSmartPointer.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

class vtkActor;
class vtkPolyData;
class vtkRenderer;
class vtkScalarBarActor;

namespace atlascope::viewer {

class CellCloud {
public:
  // Copies the positions it draws (no reference to `cells` kept). Safe to build on a worker thread
  // (nothing is drawn yet) and move to the GUI thread: 4M cells take a few hundred ms to lay out.
  // `sectionSpacingUm`: between consecutive sections, for data without CCF coordinates.
  explicit CellCloud(const CellTable& cells, double sectionSpacingUm = kDefaultSectionSpacingUm);
  // Draws the CCF positions the table already holds (no copy: 48 MB less for 4M cells) and keeps
  // the table alive for as long as the cloud is.
  explicit CellCloud(std::shared_ptr<const CellTable> cells, double sectionSpacingUm = kDefaultSectionSpacingUm);
  static constexpr double kDefaultSectionSpacingUm = 200.0;
  CellCloud(CellCloud&&) noexcept;
  ~CellCloud();

  vtkActor* actor() const;
  vtkScalarBarActor* colourBar() const; // shown for continuous colourings
  bool usesCcf() const { return ccf_; }
  std::int64_t size() const { return n_; }
  // Sections laid out at another spacing (moves the points along AP; nothing with CCF coordinates).
  void setSectionSpacing(double um);
  double sectionSpacing() const { return spacing_; }

  // Categorical colouring: one code per cell (-1 = missing, drawn grey), names and colours of the
  // categories (colours empty: a generated palette).
  void colourByCategory(const std::vector<std::int32_t>& codes, const std::vector<std::string>& names,
                        const std::vector<std::array<std::uint8_t, 3>>& colours);
  // Continuous colouring (a gene): values per cell, a colour map over [lo, hi] with a colour bar.
  void colourByValues(const std::vector<float>& values, const std::string& title,
                      std::optional<std::pair<float, float>> range = {});
  void setPointSize(double pixels);
  double pointSize() const;
  // Which cells are drawn (and pickable): one flag per cell; empty = all. Rebuilds only the
  // vertex list (positions and colours stay), so filtering 4M cells by type or section is cheap.
  void setVisibleCells(std::vector<std::uint8_t> mask);
  std::int64_t visibleCount() const { return visible_; }
  // Level of detail: while the camera moves, at most lodBudget() of the visible cells are drawn
  // (every n-th, so the picture keeps its shape), all of them again when it stops. Software
  // OpenGL draws ~4M points at a few frames per second; the budget keeps drags smooth there.
  void setInteracting(bool on);
  void setLodBudget(std::int64_t cells) { lodBudget_ = cells; }
  std::int64_t lodBudget() const { return lodBudget_; }
  std::int64_t drawnCount() const; // cells in the vertex list now

  // The cell whose point is under a display pixel (origin bottom left), within a few pixels.
  std::optional<std::int64_t> pick(vtkRenderer* renderer, int x, int y) const;
  std::array<double, 3> position(std::int64_t cell) const;

  // The distinct colours of a categorical palette for n categories (up to thousands).
  static std::vector<std::array<std::uint8_t, 3>> palette(std::size_t n);

private:
  CellCloud(const CellTable& cells, std::shared_ptr<const CellTable> held, double sectionSpacingUm);
  std::int64_t n_ = 0;
  bool ccf_ = false;
  double spacing_ = kDefaultSectionSpacingUm;
  vtkSmartPointer<vtkPolyData> points_;
  vtkSmartPointer<vtkActor> actor_;
  vtkSmartPointer<vtkScalarBarActor> bar_;
  std::vector<std::uint8_t> mask_;        // empty: every cell
  std::shared_ptr<const CellTable> held_; // whose arrays the points are
  std::int64_t visible_ = 0;              // cells the mask lets through
  std::int64_t lodBudget_ = 1'000'000;
  bool interacting_ = false;
  void rebuildVerts();
};

} // namespace atlascope::viewer
