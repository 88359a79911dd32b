#include "app/gui/FigureExport.h"

#include "app/gui/PdfExport.h"
#include "app/gui/SectionView.h"
#include "app/scene/Engine.h"

#include <QFileInfo>
#include <QPainter>

namespace atlascope::app {

bool writeFigure(const QString& path, QSize size, Engine& engine, const SectionView& section) {
  if (size.width() < 200 || size.height() < 150 || !engine.scene()) return false;
  Workspace& ws = engine.workspace();
  const DatasetDocument* d = ws.dataset(ws.currentDataset());
  const CellColouring* c = d && d->cells ? engine.data().colouring(d->id) : nullptr;
  std::vector<std::string> names;
  std::vector<std::array<std::uint8_t, 3>> colours;
  if (c && c->categorical && c->cells == d->cells.get()) {
    names = displayNames(*d, *c);
    colours = displayColours(*d, *c);
  }
  const bool withSection = d && d->cells && ws.section().axis != "none";
  const bool right = withSection || !names.empty();
  const double unit = std::max(1.0, size.width() / 1200.0), pad = 10 * unit, titleH = 28 * unit;
  const QRectF left(pad, titleH, (right ? 0.6 : 1.0) * size.width() - 2 * pad, size.height() - titleH - pad);
  // The views as the window lays them out, rendered at the panel's pixels (twice for PNG sharpness
  // is the caller's choice of size).
  QImage views;
  try {
    views = engine.renderImage(left.size().toSize());
  } catch (const std::exception&) {
    return false;
  }
  auto draw = [&](QPainter& p) {
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setRenderHint(QPainter::SmoothPixmapTransform, true);
    p.fillRect(QRect(QPoint(0, 0), size), Qt::white);
    QFont font = p.font();
    font.setPixelSize(static_cast<int>(16 * unit));
    p.setFont(font);
    p.setPen(QColor(20, 20, 20));
    QStringList shown;
    for (DatasetId id : ws.loadedDatasetIds())
      if (ws.dataset(id)->display.visible) shown << ws.dataset(id)->name;
    const QString title = shown.isEmpty()
                              ? QObject::tr("Allen CCF")
                              : QObject::tr("%1 — %2").arg(shown.join(", "), d ? d->display.colourBy : QString());
    p.drawText(QRectF(pad, 0, size.width() - 2 * pad, titleH), Qt::AlignLeft | Qt::AlignVCenter, title);
    p.drawImage(left, views);
    if (!right) return;
    const double x0 = left.right() + 2 * pad, w = size.width() - x0 - pad;
    double y = titleH;
    if (withSection) {
      const double h = (names.empty() ? 1.0 : 0.62) * (size.height() - titleH - pad);
      section.render(p, QRectF(x0, y, w, h));
      y += h + pad;
    }
    // Legend: swatches and names, in columns, as many as fit.
    font.setPixelSize(static_cast<int>(11 * unit));
    p.setFont(font);
    const double row = 15 * unit, colW = std::max(140 * unit, w / 3);
    const int perCol = std::max(1, static_cast<int>((size.height() - pad - y) / row));
    const int cols = std::max(1, static_cast<int>(w / colW));
    const std::size_t fits = static_cast<std::size_t>(perCol * cols);
    for (std::size_t k = 0; k < names.size() && k < fits; ++k) {
      const double cx = x0 + static_cast<double>(k / static_cast<std::size_t>(perCol)) * colW;
      const double cy = y + static_cast<double>(k % static_cast<std::size_t>(perCol)) * row;
      const auto& col = k < colours.size() ? colours[k] : std::array<std::uint8_t, 3>{150, 150, 150};
      p.fillRect(QRectF(cx, cy + 2 * unit, 10 * unit, 10 * unit), QColor(col[0], col[1], col[2]));
      p.drawText(QRectF(cx + 14 * unit, cy, colW - 16 * unit, row), Qt::AlignLeft | Qt::AlignVCenter,
                 (k + 1 == fits && names.size() > fits) ? QObject::tr("… %1 more").arg(names.size() - fits + 1)
                                                        : QString::fromStdString(names[k]));
    }
  };
  return writePainted(path, size, draw, QObject::tr("Atlascope figure"));
}

} // namespace atlascope::app
