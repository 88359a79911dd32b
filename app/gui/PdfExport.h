#pragma once
// Figures drawn with QPainter, written atomically (temp file + rename): Qt-drawn panels (the
// scores chart, the legend) as PDF pages of their own size, and any painter routine (the 2D
// section, the figure layout) as PNG, SVG or PDF by the file's extension, where SVG and PDF keep
// lines, shapes and text as vectors.
#include <QSize>
#include <QString>

#include <functional>

class QPainter;
class QWidget;

namespace atlascope::app {

bool writeWidgetPdf(QWidget* widget, const QString& path);

// Paints `draw` onto a `size`-pixel canvas (SVG/PDF: the same size in points at 96 dpi) and writes
// it to `path` as .svg, .pdf or PNG (anything else); `title` goes into the SVG. False on failure.
bool writePainted(const QString& path, QSize size, const std::function<void(QPainter&)>& draw,
                  const QString& title = {}, bool transparent = false);

} // namespace atlascope::app
