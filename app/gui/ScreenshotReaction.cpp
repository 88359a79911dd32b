#include "app/gui/ScreenshotReaction.h"

#include <QAction>
#include <QFileDialog>
#include <QInputDialog>
#include <QMessageBox>

namespace atlascope::app {

ScreenshotReaction::ScreenshotReaction(QAction* action, QWidget* parent, std::function<void(const QString&, int)> save)
    : QObject(action) {
  connect(action, &QAction::triggered, this, [parent, save] {
    const QString path =
        QFileDialog::getSaveFileName(parent, tr("Save screenshot"), "atlascope.png", tr("PNG image (*.png)"));
    if (path.isEmpty()) return;
    bool ok = false;
    const QString scale = QInputDialog::getItem(parent, tr("Screenshot size"), tr("Scale of the screen size:"),
                                                {"1x", "2x", "4x"}, 1, false, &ok);
    if (!ok) return;
    try {
      save(path, scale.left(1).toInt());
    } catch (const std::exception& e) {
      QMessageBox::critical(parent, tr("Save screenshot"), QString::fromStdString(e.what()));
    }
  });
}

} // namespace atlascope::app
