#pragma once
#include <QObject>

#include <functional>

class QAction;
class QWidget;

namespace atlascope::app {

// File > Save screenshot: the 3D view as PNG at 1x, 2x or 4x the screen's pixels.
class ScreenshotReaction : public QObject {
  Q_OBJECT
public:
  ScreenshotReaction(QAction* action, QWidget* dialogParent, std::function<void(const QString&, int)> save);
};

} // namespace atlascope::app
