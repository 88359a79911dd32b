#pragma once
// Figures that move: a turntable (the camera once around the brain) or a section sweep (the slab
// through the brain along an axis), exported as numbered PNG frames of the 3D view
// (frame_0000.png ...), and as an MP4 beside them when ffmpeg is on the PATH. The camera and the
// section are restored afterwards. Runs on the GUI thread (each frame is a render).
#include "viewer/SectionPlane.h"

#include <QSize>
#include <QString>
#include <QStringList>

namespace atlascope::app {

class SceneController;

struct AnimationResult {
  QStringList frames; // written PNGs, in order
  QString video;      // the MP4, empty when no encoder was found or it failed
  QString error;      // empty when every frame was written
};

// Frames of `size` pixels (every view of the layout), rendered offscreen.
AnimationResult exportTurntable(SceneController& scene, QSize size, const QString& dir, int frames);
AnimationResult exportSectionSweep(SceneController& scene, QSize size, const QString& dir, viewer::SectionAxis axis,
                                   int frames);

} // namespace atlascope::app
