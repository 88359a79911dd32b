#include "app/scene/SurfaceLoader.h"

#include <QMetaObject>
#include <QPointer>

namespace atlascope::app {

SurfaceLoader::SurfaceLoader(viewer::SurfaceCache& cache, QObject* parent)
    : QObject(parent), cache_(cache), cancel_(std::make_shared<CancellationToken>()) {
  qRegisterMetaType<vtkSmartPointer<vtkPolyData>>();
  pool_.setMaxThreadCount(std::max(1, QThread::idealThreadCount()));
}

SurfaceLoader::~SurfaceLoader() {
  cancelAll();
  pool_.waitForDone();
}

void SurfaceLoader::request(int index) {
  // One built before comes from the cache's memory at once: asked again when a scene lost it (an
  // atlas closed and opened again by undo).
  if (pending_.contains(index)) return;
  pending_.insert(index);
  emit pendingChanged(pending_.size());
  QPointer<SurfaceLoader> self(this);
  auto token = cancel_;
  pool_.start([this, self, index, token] {
    vtkSmartPointer<vtkPolyData> mesh;
    QString error;
    try {
      Progress progress;
      progress.cancel = token.get();
      mesh = cache_.surface(index, progress);
    } catch (const Cancelled&) {
      error = QStringLiteral("cancelled");
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        self,
        [self, index, mesh, error] {
          if (!self) return;
          self->pending_.remove(index);
          if (error.isEmpty()) {
            emit self->surfaceReady(index, mesh);
          } else {
            emit self->failed(index, error);
          }
          emit self->pendingChanged(self->pending_.size());
        },
        Qt::QueuedConnection);
  });
}

void SurfaceLoader::cancelAll() {
  pool_.clear();
  cancel_->cancel();
  cancel_ = std::make_shared<CancellationToken>();
  // Builds removed from the queue never report: forget them now (running ones report "cancelled").
  pending_.clear();
  emit pendingChanged(0);
}

} // namespace atlascope::app
