#include "app/gui/CameraReactions.h"

#include <QAction>

namespace atlascope::app {

CameraPresetReaction::CameraPresetReaction(QAction* action, viewer::CameraPreset preset,
                                           std::function<viewer::AtlasScene*()> scene, std::function<void()> render)
    : QObject(action) {
  connect(action, &QAction::triggered, this, [preset, scene, render] {
    if (auto* s = scene()) {
      s->applyCameraPreset(preset);
      render();
    }
  });
}

ResetCameraReaction::ResetCameraReaction(QAction* action, std::function<viewer::AtlasScene*()> scene,
                                         std::function<void()> render)
    : QObject(action) {
  connect(action, &QAction::triggered, this, [scene, render] {
    if (auto* s = scene()) {
      s->applyCameraPreset(viewer::CameraPreset::ThreeQuarter);
      render();
    }
  });
}

} // namespace atlascope::app
