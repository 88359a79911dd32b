#include "app/gui/CameraReactions.h"

#include "app/scene/SceneController.h"

#include <QAction>

namespace atlascope::app {

CameraPresetReaction::CameraPresetReaction(QAction* action, viewer::CameraPreset preset,
                                           std::function<SceneController*()> scene, std::function<int()> view)
    : QObject(action) {
  connect(action, &QAction::triggered, this, [action, preset, scene, view] {
    if (auto* s = scene()) s->applyCameraPreset(view(), preset, action->text().remove('&'));
  });
}

ResetCameraReaction::ResetCameraReaction(QAction* action, std::function<SceneController*()> scene,
                                         std::function<int()> view)
    : QObject(action) {
  connect(action, &QAction::triggered, this, [action, scene, view] {
    if (auto* s = scene()) s->applyCameraPreset(view(), viewer::CameraPreset::ThreeQuarter, action->text().remove('&'));
  });
}

} // namespace atlascope::app
