#include "app/gui/PdfExport.h"

#include "core/AtomicFile.h"

#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QWidget>

#include <cstdio>

namespace atlascope::app {

bool writeWidgetPdf(QWidget* widget, const QString& path) {
  if (!widget || widget->width() <= 0 || widget->height() <= 0) return false;
  const std::string target = path.toStdString(), tmp = temporaryPathFor(target);
  {
    QPdfWriter pdf(QString::fromStdString(tmp));
    pdf.setResolution(96); // one widget pixel = one point at 96 dpi: the page is the widget's size
    pdf.setPageSize(QPageSize(QSizeF(widget->width() * 72.0 / 96.0, widget->height() * 72.0 / 96.0), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter painter;
    if (!painter.begin(&pdf)) {
      std::remove(tmp.c_str());
      return false;
    }
    widget->render(&painter, QPoint(), QRegion(), QWidget::DrawChildren);
    painter.end();
  }
  try {
    moveIntoPlace(tmp, target);
  } catch (const std::exception&) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

} // namespace atlascope::app
