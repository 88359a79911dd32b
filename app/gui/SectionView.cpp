#include "app/gui/SectionView.h"

#include "app/gui/PdfExport.h"

#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>

#include <cmath>
#include <limits>

namespace atlascope::app {

namespace {
float along(const CellTable& c, std::int64_t i, int axis) {
  const auto k = static_cast<std::size_t>(i);
  return axis == 0 ? c.ccfAp[k] : axis == 1 ? c.ccfDv[k] : c.ccfMl[k];
}
} // namespace

SectionView::SectionView(QWidget* parent) : QWidget(parent) {
  setObjectName("sectionView");
  setMinimumSize(240, 180);
  setAttribute(Qt::WA_OpaquePaintEvent);
}

void SectionView::setAtlas(const Atlas* atlas) {
  atlas_ = atlas;
  update2d();
}

void SectionView::setBoundaryAtlases(std::vector<Boundaries> atlases) {
  boundaryAtlases_ = std::move(atlases);
  update2d();
}

std::size_t SectionView::boundarySegments() const {
  std::size_t n = 0;
  for (const auto& b : boundaries_) n += b.size();
  return n;
}

std::vector<std::pair<QString, std::size_t>> SectionView::boundarySets() const {
  std::vector<std::pair<QString, std::size_t>> out;
  for (std::size_t i = 0; i < boundaryAtlases_.size() && i < boundaries_.size(); ++i)
    out.emplace_back(boundaryAtlases_[i].name, boundaries_[i].size());
  return out;
}

void SectionView::setCells(const CellTable* cells) {
  cells_ = cells;
  codes_.clear();
  shown_.clear();
  sectionAp_.clear();
  if (cells_ && cells_->hasCcf() && !cells_->sectionNames.empty()) {
    std::vector<double> sum(cells_->sectionNames.size(), 0.0);
    std::vector<std::int64_t> count(sum.size(), 0);
    for (std::int64_t i = 0; i < cells_->size(); ++i) {
      const auto s = cells_->section[static_cast<std::size_t>(i)];
      if (s < 0) continue;
      sum[static_cast<std::size_t>(s)] += cells_->ccfAp[static_cast<std::size_t>(i)];
      ++count[static_cast<std::size_t>(s)];
    }
    sectionAp_.resize(sum.size(), std::numeric_limits<double>::quiet_NaN());
    for (std::size_t s = 0; s < sum.size(); ++s)
      if (count[s] > 0) sectionAp_[s] = sum[s] / static_cast<double>(count[s]);
  }
  update2d();
}

void SectionView::setColours(std::vector<std::int32_t> codes, std::vector<std::array<std::uint8_t, 3>> colours) {
  codes_ = std::move(codes);
  colours_ = std::move(colours);
  update();
}

void SectionView::setShownCells(std::vector<std::uint8_t> shown) {
  shown_ = std::move(shown);
  update2d();
}

void SectionView::setTemplate(const Atlas* atlas) {
  if (atlas && !atlas->hasReference()) atlas = nullptr;
  if (atlas != template_ && atlas) templateWindow_ = templateWindow(atlas->reference());
  template_ = atlas;
  update2d();
}

void SectionView::setPlane(int normal, double positionUm, double thicknessUm) {
  normal_ = normal;
  position_ = positionUm;
  thickness_ = thicknessUm;
  update2d();
}

void SectionView::update2d() {
  drawn_.clear();
  section_ = -1;
  planeUm_ = position_;
  if (cells_ && cells_->hasCcf()) {
    // A coronal plane shows the measured section nearest to it, whole: its cells are where the
    // section was cut, not on a plane, and boundaries are drawn at the section's mean AP.
    if (normal_ == 0 && !sectionAp_.empty()) {
      double best = std::numeric_limits<double>::infinity();
      for (std::size_t s = 0; s < sectionAp_.size(); ++s)
        if (std::isfinite(sectionAp_[s]) && std::abs(sectionAp_[s] - position_) < best) {
          best = std::abs(sectionAp_[s] - position_);
          section_ = static_cast<int>(s);
        }
    }
    if (section_ >= 0) planeUm_ = sectionAp_[static_cast<std::size_t>(section_)];
    for (std::int64_t i = 0; i < cells_->size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (!shown_.empty() && (k >= shown_.size() || !shown_[k])) continue;
      if (section_ >= 0 ? cells_->section[k] != section_
                        : std::abs(along(*cells_, i, normal_) - position_) > thickness_ / 2)
        continue;
      drawn_.push_back(i);
    }
  }
  boundaries_.clear();
  for (const Boundaries& b : boundaryAtlases_)
    boundaries_.push_back(b.atlas ? annotationBoundaries(b.atlas->annotation(), normal_, planeUm_)
                                  : std::vector<PlaneSegment>{});
  templatePlane_ = template_ ? templatePlane(template_->reference(), template_->annotation().spacingUm(), normal_,
                                             planeUm_, templateWindow_)
                             : TemplatePlane{};
  templateImage_ = QImage();
  if (!templatePlane_.empty()) {
    templateImage_ = QImage(templatePlane_.width, templatePlane_.height, QImage::Format_ARGB32);
    for (int y = 0; y < templatePlane_.height; ++y) {
      auto* row = reinterpret_cast<QRgb*>(templateImage_.scanLine(y));
      for (int x = 0; x < templatePlane_.width; ++x) {
        const int g = templatePlane_.grey[static_cast<std::size_t>(y) * static_cast<std::size_t>(templatePlane_.width) +
                                          static_cast<std::size_t>(x)];
        row[x] = g == 0 ? qRgba(0, 0, 0, 0) : qRgba(g, g, g, 255);
      }
    }
  }
  update();
}

QString SectionView::title() const {
  static const char* names[] = {"AP", "DV", "ML"};
  QString t =
      section_ >= 0 && cells_
          ? tr("Section %1").arg(QString::fromStdString(cells_->sectionNames[static_cast<std::size_t>(section_)]))
          : tr("Slab %1 um").arg(thickness_, 0, 'f', 0);
  return t + QStringLiteral(" — %1 %2 mm — %3 cells")
                 .arg(names[normal_])
                 .arg(planeUm_ / 1000.0, 0, 'f', 2)
                 .arg(drawn_.size());
}

void SectionView::render(QPainter& painter, const QRectF& target) const {
  painter.save();
  painter.setClipRect(target, Qt::IntersectClip); // another atlas's boundaries may reach past this one's extent
  painter.setRenderHint(QPainter::Antialiasing, true);
  const PlaneAxes ax = planeAxes(normal_);
  double extU = 11400, extV = 8000;
  if (atlas_) {
    const auto e = atlas_->annotation().extentUm();
    extU = e[static_cast<std::size_t>(ax.u)];
    extV = e[static_cast<std::size_t>(ax.v)];
  }
  // Text and marks grow with the figure, by its smaller side: a wide, short dock keeps them small.
  const double unit = std::max(1.0, std::min(target.width() / 800.0, target.height() / 500.0));
  const double top = 22 * unit, margin = 8 * unit;
  const double scale = std::min((target.width() - 2 * margin) / extU, (target.height() - top - 2 * margin) / extV);
  const double ox = target.left() + (target.width() - extU * scale) / 2, oy = target.top() + top + margin;
  auto toScreen = [&](double u, double v) { return QPointF(ox + u * scale, oy + v * scale); };

  // The template under everything, its voxels scaled to the plane (smooth when magnified).
  if (!templateImage_.isNull()) {
    painter.save();
    painter.setRenderHint(QPainter::SmoothPixmapTransform, true);
    painter.drawImage(QRectF(toScreen(0, 0), toScreen(templatePlane_.width * templatePlane_.spacingUm[0],
                                                      templatePlane_.height * templatePlane_.spacingUm[1])),
                      templateImage_);
    painter.restore();
  }

  // Cells, grouped by colour (one brush change per category).
  const double r = std::max(0.6 * unit, 10.0 * scale); // ~10 um, at least a visible dot
  painter.setPen(Qt::NoPen);
  const bool byCategory = cells_ && codes_.size() == static_cast<std::size_t>(cells_->size());
  std::vector<std::vector<std::int64_t>> groups(byCategory ? colours_.size() + 1 : 1);
  for (std::int64_t i : drawn_) {
    const std::int32_t c = byCategory ? codes_[static_cast<std::size_t>(i)] : -1;
    groups[c >= 0 && static_cast<std::size_t>(c) < colours_.size() ? static_cast<std::size_t>(c) : groups.size() - 1]
        .push_back(i);
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const bool known = g < colours_.size() && byCategory;
    painter.setBrush(known ? QColor(colours_[g][0], colours_[g][1], colours_[g][2]) : QColor(150, 150, 150));
    for (std::int64_t i : groups[g])
      painter.drawEllipse(toScreen(along(*cells_, i, ax.u), along(*cells_, i, ax.v)), r, r);
  }

  // Each atlas's boundaries over the cells, in its colour; a legend names them when they are
  // not the window's atlas alone.
  painter.setBrush(Qt::NoBrush);
  for (std::size_t i = 0; i < boundaries_.size() && i < boundaryAtlases_.size(); ++i) {
    QPainterPath path;
    for (const PlaneSegment& s : boundaries_[i]) {
      path.moveTo(toScreen(s.u0, s.v0));
      path.lineTo(toScreen(s.u1, s.v1));
    }
    painter.setPen(QPen(boundaryAtlases_[i].colour, (i == 0 ? 0.7 : 1.0) * unit));
    painter.drawPath(path);
  }

  // Title, scale bar (1 mm) and orientation.
  QFont font = painter.font();
  font.setPixelSize(static_cast<int>(12 * unit));
  painter.setFont(font);
  painter.setPen(QColor(20, 20, 20));
  painter.drawText(QRectF(target.left() + margin, target.top() + 2 * unit, target.width() - 2 * margin, top),
                   Qt::AlignLeft | Qt::AlignVCenter, title());
  if (boundaryAtlases_.size() > 1 || (boundaryAtlases_.size() == 1 && boundaryAtlases_[0].atlas != atlas_)) {
    const QFontMetricsF fm(font);
    double y = target.top() + top + margin;
    for (const Boundaries& b : boundaryAtlases_) {
      const double w = fm.horizontalAdvance(b.name);
      const double x = target.right() - margin - w;
      painter.setPen(QPen(b.colour, 2.5 * unit));
      painter.drawLine(QPointF(x - 22 * unit, y + 8 * unit), QPointF(x - 6 * unit, y + 8 * unit));
      painter.setPen(QColor(20, 20, 20));
      painter.drawText(QRectF(x, y, w + 1, 16 * unit), Qt::AlignLeft | Qt::AlignVCenter, b.name);
      y += 16 * unit;
    }
  }
  const QPointF bar(target.left() + margin + 4 * unit, target.bottom() - margin - 4 * unit);
  painter.setPen(QPen(QColor(20, 20, 20), 2.5 * unit));
  painter.drawLine(bar, bar + QPointF(1000 * scale, 0));
  painter.drawText(QRectF(bar.x(), bar.y() - 18 * unit, 1000 * scale + 40 * unit, 16 * unit),
                   Qt::AlignLeft | Qt::AlignBottom, tr("1 mm"));
  static const char *across[] = {"L", "L", "A"}, *acrossEnd[] = {"L", "L", "P"}, *down[] = {"D", "A", "D"},
                    *downEnd[] = {"V", "P", "V"};
  const QRectF plane(toScreen(0, 0), toScreen(extU, extV));
  const double w = 14 * unit;
  painter.drawText(QRectF(plane.left() - w, plane.center().y() - w / 2, w, w), Qt::AlignCenter, across[normal_]);
  painter.drawText(QRectF(plane.right(), plane.center().y() - w / 2, w, w), Qt::AlignCenter, acrossEnd[normal_]);
  painter.drawText(QRectF(plane.center().x() - w / 2, plane.top() - w, w, w), Qt::AlignCenter, down[normal_]);
  painter.drawText(QRectF(plane.center().x() - w / 2, plane.bottom(), w, w), Qt::AlignCenter, downEnd[normal_]);
  painter.restore();
}

void SectionView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), Qt::white);
  render(p, rect());
}

bool SectionView::writePng(const QString& path, QSize size, bool transparent) const {
  return writePainted(
      path, size, [&](QPainter& p) { render(p, QRectF(QPointF(0, 0), QSizeF(size))); }, title(), transparent);
}

bool SectionView::writeSvg(const QString& path, QSize size) const {
  return writePainted(
      path, size,
      [&](QPainter& p) {
        p.fillRect(QRect(QPoint(0, 0), size), Qt::white);
        render(p, QRectF(QPointF(0, 0), QSizeF(size)));
      },
      title());
}

bool SectionView::writePdf(const QString& path, QSize size) const {
  return writePainted(
      path, size, [&](QPainter& p) { render(p, QRectF(QPointF(0, 0), QSizeF(size))); }, title());
}

} // namespace atlascope::app
