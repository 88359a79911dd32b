#include "app/gui/StallBench.h"

#include "app/gui/MainWindow.h"
#include "app/gui/PipelinePanel.h"
#include "app/gui/StallDetector.h"
#include "app/gui/VtkView.h"

#include <QElapsedTimer>
#include <QEventLoop>
#include <QLineEdit>
#include <QTimer>

#include <cstdio>
#include <functional>

namespace atlascope::app {

namespace {
// Turns the event loop until `done` (checked every 100 ms) or `timeoutS` seconds.
bool waitFor(const std::function<bool()>& done, int timeoutS) {
  QEventLoop loop;
  QTimer poll;
  QElapsedTimer clock;
  clock.start();
  bool ok = false;
  QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
    ok = done();
    if (ok || clock.elapsed() > timeoutS * 1000LL) loop.quit();
  });
  poll.start(100);
  loop.exec();
  return ok;
}

// How the current dataset (the one last opened, a region result once it is read) is coloured.
QString colouring(MainWindow& window) {
  const DatasetDocument* d = window.workspace().dataset(window.workspace().currentDataset());
  return d ? d->display.colourBy : QString();
}
} // namespace

bool runStallBench(MainWindow& window, StallDetector& stalls, const QString& resolutions) {
  if (!window.cells()) {
    std::fprintf(stderr, "atlascope: --bench-stalls needs --open DATA (%s)\n", qPrintable(window.datasetError()));
    return false;
  }
  if (window.cells()->genes.empty()) {
    std::fprintf(stderr, "atlascope: --bench-stalls needs a dataset with genes\n");
    return false;
  }
  const QString gene = colouring(window).startsWith("gene:") ? colouring(window).mid(5)
                                                             : QString::fromStdString(window.cells()->genes.front());
  stalls.setPhase("gene");
  window.workspace().setColourBy(window.workspace().currentDataset(), "gene:" + gene);
  if (!waitFor([&] { return window.isIdle(); }, 1800)) {
    std::fprintf(stderr, "atlascope: --bench-stalls: colouring by %s did not end\n", qPrintable(gene));
    return false;
  }

  stalls.setPhase("region job");
  auto* regions = window.findChild<PipelinePanel*>();
  bool ready = false;
  const auto connection = QObject::connect(regions, &PipelinePanel::regionsReady, &window, [&] {
    ready = true;
    stalls.setPhase("region result"); // the result dataset opening and its colouring
  });
  regions->setModel({}); // the composition baseline: no model needed
  regions->setResolutions(resolutions);
  regions->run();
  const bool ok = waitFor(
      [&] {
        if (!ready) return !regions->isRunning() && !regions->lastError().isEmpty(); // failed: stop waiting
        return window.isIdle() && colouring(window).startsWith("regions_k");
      },
      3600);
  QObject::disconnect(connection);
  if (!ok || !ready) {
    std::fprintf(stderr, "atlascope: --bench-stalls: the region job failed or did not end: %s\n",
                 qPrintable(regions->lastError()));
    return false;
  }
  stalls.setPhase("end");
  // What one frame of these cells costs on this machine: a stall no background work removes (a
  // software renderer draws every point on the CPU; a GPU draws them in milliseconds).
  QElapsedTimer frame;
  frame.start();
  for (int i = 0; i < 3; ++i) window.renderNow(); // (renderViews() only queues one)
  stalls.addFigure("frame_ms", static_cast<double>(frame.nsecsElapsed()) / 3e6);
  stalls.addFigure("cells", static_cast<double>(window.cells()->size()));
  return true;
}

} // namespace atlascope::app
