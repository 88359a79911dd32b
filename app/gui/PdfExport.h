#pragma once
// Vector figures of Qt-drawn panels (the scores chart, the legend): the widget painted onto a PDF
// page of its own size, so lines and text stay vectors. Written atomically (temp file + rename).
#include <QString>

class QWidget;

namespace atlascope::app {

bool writeWidgetPdf(QWidget* widget, const QString& path);

} // namespace atlascope::app
