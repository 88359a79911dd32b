#pragma once
// Camera commands as reactions (ParaView's pattern): each owns its QAction's behaviour. They act
// on the active view (its whole camera group) through the scene, which records the move in the
// workspace as one undoable step.
#include "viewer/AtlasScene.h"

#include <QObject>

#include <functional>

class QAction;

namespace atlascope::app {

class SceneController;

class CameraPresetReaction : public QObject {
  Q_OBJECT
public:
  // `scene`: null until the atlas is loaded; `view`: the active view.
  CameraPresetReaction(QAction* action, viewer::CameraPreset preset, std::function<SceneController*()> scene,
                       std::function<int()> view);
};

class ResetCameraReaction : public QObject {
  Q_OBJECT
public:
  ResetCameraReaction(QAction* action, std::function<SceneController*()> scene, std::function<int()> view);
};

} // namespace atlascope::app
