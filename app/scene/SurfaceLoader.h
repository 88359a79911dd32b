#pragma once
// Builds region surfaces off the GUI thread (through the on-disk SurfaceCache) and hands each to
// the GUI thread when ready. Queued builds can be cancelled; running ones stop at their next stage.
#include "core/Progress.h"
#include "viewer/SurfaceCache.h"

#include <QObject>
#include <QSet>
#include <QThreadPool>

#include <vtkPolyData.h>
#include <vtkSmartPointer.h>

#include <memory>

namespace atlascope::app {

class SurfaceLoader : public QObject {
  Q_OBJECT
public:
  SurfaceLoader(viewer::SurfaceCache& cache, QObject* parent = nullptr);
  ~SurfaceLoader() override;

  // Queues a build unless one is queued or running for this structure (one built before comes
  // from the cache at once).
  void request(int structureIndex);
  int pending() const { return pending_.size(); }
  // Drops queued builds and asks running ones to stop.
  void cancelAll();

signals:
  void surfaceReady(int structureIndex, vtkSmartPointer<vtkPolyData> surface);
  void failed(int structureIndex, QString message);
  void pendingChanged(int pending);

private:
  viewer::SurfaceCache& cache_;
  QThreadPool pool_;
  QSet<int> pending_;
  std::shared_ptr<CancellationToken> cancel_;
};

} // namespace atlascope::app

Q_DECLARE_METATYPE(vtkSmartPointer<vtkPolyData>)
