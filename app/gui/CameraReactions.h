#pragma once
// Camera commands as reactions (ParaView's pattern): each owns its QAction's behaviour.
#include "viewer/AtlasScene.h"

#include <QObject>

#include <functional>

class QAction;

namespace atlascope::app {

class CameraPresetReaction : public QObject {
  Q_OBJECT
public:
  // `apply` moves the camera; `render` redraws the view(s).
  CameraPresetReaction(QAction* action, viewer::CameraPreset preset, std::function<viewer::AtlasScene*()> scene,
                       std::function<void()> render);
};

class ResetCameraReaction : public QObject {
  Q_OBJECT
public:
  ResetCameraReaction(QAction* action, std::function<viewer::AtlasScene*()> scene, std::function<void()> render);
};

} // namespace atlascope::app
