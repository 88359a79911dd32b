#include "app/gui/PdfExport.h"

#include "core/AtomicFile.h"

#include <QFileInfo>
#include <QImage>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgGenerator>
#include <QWidget>

#include <cstdio>

namespace atlascope::app {

namespace {
// `write` fills a temporary file beside `path`; it then replaces `path` in one rename.
bool writeThroughTemporary(const QString& path, const std::function<bool(const QString&)>& write) {
  const std::string target = path.toStdString(), tmp = temporaryPathFor(target);
  if (!write(QString::fromStdString(tmp))) {
    std::remove(tmp.c_str());
    return false;
  }
  try {
    moveIntoPlace(tmp, target);
  } catch (const std::exception&) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

// A PDF page of `size` pixels at 96 dpi, without margins.
void preparePdf(QPdfWriter& pdf, QSize size) {
  pdf.setResolution(96);
  pdf.setPageSize(QPageSize(QSizeF(size.width() * 72.0 / 96.0, size.height() * 72.0 / 96.0), QPageSize::Point));
  pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
}
} // namespace

bool writeWidgetPdf(QWidget* widget, const QString& path) {
  if (!widget || widget->width() <= 0 || widget->height() <= 0) return false;
  return writeThroughTemporary(path, [widget](const QString& tmp) {
    QPdfWriter pdf(tmp);
    preparePdf(pdf, widget->size()); // one widget pixel = one point at 96 dpi: the page is the widget's size
    QPainter painter;
    if (!painter.begin(&pdf)) return false;
    widget->render(&painter, QPoint(), QRegion(), QWidget::DrawChildren);
    return painter.end();
  });
}

bool writePainted(const QString& path, QSize size, const std::function<void(QPainter&)>& draw, const QString& title,
                  bool transparent) {
  if (size.width() <= 0 || size.height() <= 0) return false;
  const QString suffix = QFileInfo(path).suffix().toLower();
  return writeThroughTemporary(path, [&](const QString& tmp) {
    QPainter p;
    if (suffix == "svg") {
      QSvgGenerator svg;
      svg.setFileName(tmp);
      svg.setSize(size);
      svg.setViewBox(QRect(QPoint(0, 0), size));
      svg.setTitle(title);
      if (!p.begin(&svg)) return false;
      draw(p);
      return p.end();
    }
    if (suffix == "pdf") {
      QPdfWriter pdf(tmp);
      preparePdf(pdf, size);
      if (!p.begin(&pdf)) return false;
      draw(p);
      return p.end();
    }
    QImage image(size, QImage::Format_ARGB32);
    image.fill(transparent ? Qt::transparent : Qt::white);
    if (!p.begin(&image)) return false;
    draw(p);
    p.end();
    return image.save(tmp, "PNG");
  });
}

} // namespace atlascope::app
