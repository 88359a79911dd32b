#include "app/gui/AnimationExport.h"

#include "app/scene/SceneController.h"
#include "viewer/SectionPlane.h"

#include <QDir>
#include <QProcess>
#include <QStandardPaths>

#include <vtkCamera.h>
#include <vtkRenderer.h>

namespace atlascope::app {

namespace {
QString framePath(const QString& dir, int i) {
  return QDir(dir).filePath(QString("frame_%1.png").arg(i, 4, 10, QChar('0')));
}

// frame_%04d.png -> animation.mp4 at 24 fps, when ffmpeg is there (H.264, yuv420p for players).
QString encodeVideo(const QString& dir) {
  const QString ffmpeg = QStandardPaths::findExecutable("ffmpeg");
  if (ffmpeg.isEmpty()) return {};
  const QString out = QDir(dir).filePath("animation.mp4");
  QProcess p;
  p.start(ffmpeg, {"-y", "-loglevel", "error", "-framerate", "24", "-i", QDir(dir).filePath("frame_%04d.png"),
                   "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", out});
  return p.waitForFinished(600000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0 ? out : QString();
}

template <class Step>
AnimationResult writeFrames(SceneController& scene, QSize size, const QString& dir, int frames, Step step) {
  AnimationResult r;
  if (frames < 1) {
    r.error = QObject::tr("at least one frame");
    return r;
  }
  if (!QDir().mkpath(dir)) {
    r.error = QObject::tr("cannot create %1").arg(dir);
    return r;
  }
  for (int i = 0; i < frames; ++i) {
    step(i);
    const QString path = framePath(dir, i);
    try {
      scene.writeImage(path, size);
    } catch (const std::exception& e) {
      r.error = QString::fromStdString(e.what());
      return r;
    }
    r.frames << path;
  }
  r.video = encodeVideo(dir);
  return r;
}
} // namespace

AnimationResult exportTurntable(SceneController& scene, QSize size, const QString& dir, int frames) {
  // The first view's camera (and so its linked views') turns; the model's camera is left as it is
  // and the scene's camera put back afterwards, so an animation is no edit of the workspace.
  vtkCamera* camera = scene.renderer(0)->GetActiveCamera();
  double position[3], focal[3], up[3];
  camera->GetPosition(position);
  camera->GetFocalPoint(focal);
  camera->GetViewUp(up);
  // About the view-up axis through the focal point, a full turn over the frames.
  AnimationResult r = writeFrames(scene, size, dir, frames, [&](int i) {
    if (i > 0) camera->Azimuth(360.0 / frames);
  });
  camera->SetPosition(position);
  camera->SetFocalPoint(focal);
  camera->SetViewUp(up);
  scene.render();
  return r;
}

AnimationResult exportSectionSweep(SceneController& scene, QSize size, const QString& dir, viewer::SectionAxis axis,
                                   int frames) {
  if (axis == viewer::SectionAxis::None) return {{}, {}, QObject::tr("a section sweep needs an axis")};
  // The scene's section plane moves; the workspace's section is put back afterwards.
  viewer::SectionPlane* plane = scene.section();
  const viewer::SectionAxis oldAxis = plane->axis();
  const double oldPosition = plane->position(), thickness = plane->thickness() > 0 ? plane->thickness() : 200;
  // Slab centres from one side of the CCF to the other (13.2 x 8.0 x 11.4 mm).
  const double extent[3] = {13200, 8000, 11400};
  const double length = extent[viewer::sectionAxisIndex(axis)];
  AnimationResult r =
      writeFrames(scene, size, dir, frames, [&](int i) { plane->set(axis, length * (i + 0.5) / frames, thickness); });
  plane->set(oldAxis, oldPosition, thickness);
  scene.render();
  return r;
}

} // namespace atlascope::app
