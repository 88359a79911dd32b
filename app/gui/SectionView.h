#pragma once
// The 2D section view: the cells of the measured section nearest to the section plane (coronal
// planes; for sagittal and horizontal planes, the cells within the slab) in their current colours,
// with the structure boundaries of each shown atlas on that plane drawn over them (the window's
// atlas dark grey, others in their colours, named in a legend), on an atlas's reference
// template when one is shown (grey, under everything), a 1 mm scale bar and the orientation. One painter routine draws
// the widget and the exports, so PNG (any size), SVG and PDF show the same figure; SVG and PDF keep cells and
// boundaries as vector shapes.
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/SectionBoundaries.h"
#include "core/TemplatePlane.h"

#include <QColor>
#include <QImage>
#include <QWidget>

#include <array>
#include <vector>

namespace atlascope::app {

class SectionView : public QWidget {
  Q_OBJECT
public:
  explicit SectionView(QWidget* parent = nullptr);

  // The atlas that frames the plane (its extent; the window's atlas).
  void setAtlas(const Atlas* atlas);
  // Whose boundaries are drawn, in this order (later ones on top); atlases kept by the caller.
  struct Boundaries {
    const Atlas* atlas = nullptr;
    QString name;
    QColor colour;
  };
  void setBoundaryAtlases(std::vector<Boundaries> atlases);
  // The atlas whose reference template is drawn under the cells (null: none; kept by the caller).
  void setTemplate(const Atlas* atlas);
  bool templateDrawn() const { return !templatePlane_.empty(); }
  void setCells(const CellTable* cells); // nullptr: none (kept by the caller while shown)
  // Per-cell category codes and the categories' colours; empty codes: every cell grey.
  void setColours(std::vector<std::int32_t> codes, std::vector<std::array<std::uint8_t, 3>> colours);
  // Only these cells are drawn (the legend filters, a selected region); empty: all.
  void setShownCells(std::vector<std::uint8_t> shown);
  // normal: 0 coronal, 1 horizontal, 2 sagittal (PlaneAxes); the slab's thickness for the latter.
  void setPlane(int normal, double positionUm, double thicknessUm = 200);

  int drawnCells() const { return static_cast<int>(drawn_.size()); }
  std::size_t boundarySegments() const; // of every atlas drawn
  // Per atlas drawn, in setBoundaryAtlases' order: its name and segments on the plane.
  std::vector<std::pair<QString, std::size_t>> boundarySets() const;
  // The measured section shown (coronal planes), or -1.
  int shownSection() const { return section_; }
  QString title() const;

  // Draws the figure into `target` (widget, image, SVG or PDF painter).
  void render(QPainter& painter, const QRectF& target) const;
  // Atomic exports at `size` pixels (SVG/PDF: the same size in points at 96 dpi); false on failure.
  bool writePng(const QString& path, QSize size, bool transparent = false) const;
  bool writeSvg(const QString& path, QSize size) const;
  bool writePdf(const QString& path, QSize size) const;

protected:
  void paintEvent(QPaintEvent*) override;

private:
  void update2d();
  const Atlas* atlas_ = nullptr;
  const CellTable* cells_ = nullptr;
  std::vector<std::int32_t> codes_;
  std::vector<std::array<std::uint8_t, 3>> colours_;
  std::vector<std::uint8_t> shown_;
  std::vector<double> sectionAp_; // mean CCF AP of each measured section's cells
  int normal_ = 0, section_ = -1;
  double position_ = 0, thickness_ = 200, planeUm_ = 0;
  std::vector<std::int64_t> drawn_; // the cells drawn
  std::vector<Boundaries> boundaryAtlases_;
  std::vector<std::vector<PlaneSegment>> boundaries_; // per boundaryAtlases_ entry
  const Atlas* template_ = nullptr;
  GreyWindow templateWindow_;
  TemplatePlane templatePlane_;
  QImage templateImage_; // templatePlane_ as an image (grey, transparent outside the brain)
};

} // namespace atlascope::app
