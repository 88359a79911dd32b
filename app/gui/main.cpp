// atlascope: the desktop viewer. The command line is a patch of the workspace (CommandLine.h);
// --export, --turntable and --sweep alone render offscreen from the model without a window, the
// other headless runs (--screenshot, --figure, --bench-render) take their picture of the window.
#include "app/gui/AnimationExport.h"
#include "app/gui/CommandLine.h"
#include "app/gui/FigureExport.h"
#include "app/gui/MainWindow.h"
#include "app/gui/RegionsAcrossPanel.h"
#include "app/gui/SectionView.h"
#include "app/gui/SessionAutosave.h"
#include "app/gui/SessionRecovery.h"
#include "app/gui/StallBench.h"
#include "app/gui/StallDetector.h"
#include "app/gui/StartupBench.h"
#include "app/gui/VtkView.h"
#include "viewer/CellCloud.h"

#include <QApplication>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QTimer>

#include <vtkCamera.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

using namespace atlascope;
using namespace atlascope::app;

namespace {

// Runs `ready` once, when the engine has settled after `settled()` became true (the atlas loaded
// and the patch applied): nothing left to read or build. An atlas that fails ends the program.
void whenIdle(Engine& engine, std::function<bool()> settled, std::function<void()> ready) {
  auto done = std::make_shared<bool>(false);
  auto check = [&engine, settled, ready, done] {
    if (*done) return;
    if (!engine.atlasError().isEmpty()) {
      *done = true;
      std::fprintf(stderr, "atlascope: %s\n", qPrintable(engine.atlasError()));
      QApplication::exit(1);
      return;
    }
    if (!settled() || !engine.isIdle()) return;
    *done = true;
    ready();
  };
  QObject::connect(&engine, &Engine::idle, &engine, check);
  QObject::connect(&engine, &Engine::atlasFailed, &engine, check);
  QTimer::singleShot(0, &engine, check);
}

int report(bool ok, const QString& what) {
  std::fprintf(ok ? stdout : stderr, ok ? "wrote %s\n" : "atlascope: cannot write %s\n", qPrintable(what));
  return ok ? 0 : 1;
}

// The exports that need no window: offscreen renders of the model at the asked size.
int runWindowless(const CommandLine& c) {
  Engine engine(c.engine);
  const QSize size = (c.size.isValid() ? c.size : QSize(1600, 1000)) * c.scale;
  auto patched = std::make_shared<bool>(false);
  if (c.patch.session.isEmpty()) addDatasets(engine, c.patch);
  QObject::connect(&engine, &Engine::atlasLoaded, &engine, [&engine, &c, patched] {
    try {
      if (!c.patch.session.isEmpty()) {
        const QStringList unknown = engine.workspace().restore(c.patch.session, engine.structureNames());
        if (!unknown.isEmpty())
          std::fprintf(stderr, "atlascope: not in this atlas: %s\n", qPrintable(unknown.join(", ")));
      }
      applyPatch(engine, c.patch);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atlascope: %s\n", e.what());
      QApplication::exit(2);
    }
    *patched = true;
  });
  int status = 0;
  whenIdle(
      engine, [patched] { return *patched; },
      [&] {
        auto offscreen = engine.offscreenScene();
        SceneController& scene = *offscreen;
        if (!c.exportPath.isEmpty()) {
          try {
            scene.writeImage(c.exportPath, size);
            status |= report(true, c.exportPath);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "atlascope: %s\n", e.what());
            status = 1;
          }
        }
        if (c.turntable > 0 || c.sweep != viewer::SectionAxis::None) {
          const AnimationResult r = c.turntable > 0
                                        ? exportTurntable(scene, size, c.framesDir, c.turntable)
                                        : exportSectionSweep(scene, size, c.framesDir, c.sweep, c.sweepFrames);
          if (!r.error.isEmpty())
            std::fprintf(stderr, "atlascope: %s\n", qPrintable(r.error));
          else
            std::printf("wrote %d frames to %s%s\n", static_cast<int>(r.frames.size()), qPrintable(c.framesDir),
                        r.video.isEmpty() ? "" : qPrintable(" and " + r.video));
          status |= r.error.isEmpty() ? 0 : 1;
        }
        QApplication::exit(status);
      });
  return QApplication::exec();
}

// --bench-render: frame time with every cell drawn, then with the level of detail.
bool benchRender(MainWindow& window, int frames) {
  viewer::CellCloud* cloud = window.cellCloud();
  if (!cloud) {
    std::fprintf(stderr, "atlascope: --bench-render needs --open DATA\n");
    return false;
  }
  vtkCamera* camera = window.scene()->renderer(0)->GetActiveCamera();
  auto run = [&](bool interacting, std::int64_t& drawn) {
    window.scene()->setInteracting(interacting);
    window.renderNow(); // the first frame after a switch uploads the vertex list
    drawn = cloud->drawnCount();
    QElapsedTimer t;
    t.start();
    for (int i = 0; i < frames; ++i) {
      camera->Azimuth(360.0 / frames);
      window.renderNow();
    }
    return static_cast<double>(t.nsecsElapsed()) / 1e6 / frames;
  };
  std::int64_t drawnFull = 0, drawnLod = 0;
  const double full = run(false, drawnFull), lod = run(true, drawnLod);
  window.scene()->setInteracting(false);
  std::printf("{\"figure\":\"render\",\"cells\":%lld,\"frames\":%d,\"full_ms\":%.2f,\"interacting_ms\":%.2f,\"drawn_"
              "full\":%lld,"
              "\"drawn_interacting\":%lld,\"speedup\":%.2f}\n",
              static_cast<long long>(cloud->size()), frames, full, lod, static_cast<long long>(drawnFull),
              static_cast<long long>(drawnLod), full / lod);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  // The VTK bridge needs an X11 window (TOOLCHAIN.md); on Wayland sessions use XWayland.
  if (!qEnvironmentVariableIsSet("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "xcb");
  // Software OpenGL (Mesa's llvmpipe, read only by that driver): its binning threads keep every
  // point's setup of a frame in flight, 0.6 GB for 4M cells (heaptrack), and on a few cores they
  // do not make the frame faster (4M cells on 2 cores: 2.66 s a frame without them, 2.91 s with;
  // peak 0.94 GB against 1.52 GB). So below 5 hardware threads it rasterises in the drawing thread,
  // unless the user chose otherwise. A GPU driver ignores the variable.
  if (!qEnvironmentVariableIsSet("LP_NUM_THREADS") && std::thread::hardware_concurrency() <= 4)
    qputenv("LP_NUM_THREADS", "0");
  // Qt on X11 takes "-session ID" / "--session ID" for itself (X session management) and removes
  // it from the arguments, so --session FILE is taken out before QApplication sees it.
  QString sessionFile;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int drop = 0;
    if ((a == "--session" || a == "-session") && i + 1 < argc) {
      sessionFile = QString::fromLocal8Bit(argv[i + 1]);
      drop = 2;
    } else if (a.rfind("--session=", 0) == 0) {
      sessionFile = QString::fromLocal8Bit(argv[i] + 10);
      drop = 1;
    }
    if (drop == 0) continue;
    for (int j = i; j + drop < argc; ++j) argv[j] = argv[j + drop];
    argc -= drop;
    argv[argc] = nullptr;
    --i;
  }
  QApplication app(argc, argv);
  QApplication::setApplicationName("Atlascope");
  QApplication::setApplicationVersion(ATLASCOPE_VERSION);
  CommandLine c = parseCommandLine(app, sessionFile);
  if (c.oneShot()) qputenv("ATLASCOPE_NO_DIALOGS", "1");
  if (c.windowless()) return runWindowless(c);

  // GUI-thread stalls (StallDetector.h): always in debug builds, and with --bench-stalls; from
  // here on, so that the atlas and the dataset loading count too.
  std::unique_ptr<StallDetector> stalls;
#ifndef NDEBUG
  stalls = std::make_unique<StallDetector>();
#endif
  if (c.benchStalls && !stalls) stalls = std::make_unique<StallDetector>();
  if (stalls) {
    stalls->setReportLive(true); // each stall over 100 ms on stderr as it happens
    stalls->setPhase(c.patch.datasets.isEmpty() ? "start" : "open");
  }
  // Crash recovery (SessionRecovery.h): a session autosaved by a run that did not exit cleanly,
  // unless this run was told what to show (--session, or --open without --restore-session). It
  // becomes the start's session: applied when the atlas is in, the other flags on top.
  if (c.patch.session.isEmpty() && (c.patch.datasets.isEmpty() || c.restoreSessionGiven))
    if (std::optional<QJsonObject> recovered = recoverSession(c.restoreSession, recoveryDir()))
      c.patch.session = *recovered;

  MainWindow window(c.engine, c.patch);
  Engine& engine = window.engine();
  if (stalls) stalls->watchRenderWindow(window.renderWindow()); // frames apart from work (every view renders into it)
  if (c.size.isValid()) window.resize(c.size);
  auto* startup = c.benchStartup ? new StartupBench(window) : nullptr;
  window.show();

  // What runs once the window has settled (headless pictures, benchmarks), in this order; the
  // program then quits, with 1 when one of them failed.
  std::vector<std::function<bool()>> actions;
  if (!c.screenshot.isEmpty())
    actions.push_back([&window, &c] { return report(window.windowImage().save(c.screenshot), c.screenshot) == 0; });
  if (!c.figure.isEmpty())
    actions.push_back([&window, &c] { return report(window.writeFigure(c.figure, c.figureSize), c.figure) == 0; });
  if (c.benchRender > 0) actions.push_back([&window, &c] { return benchRender(window, c.benchRender); });
  if (!c.saveSession.isEmpty())
    actions.push_back([&window, &c] {
      try {
        writeSessionFile(c.saveSession, window.captureSession());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "atlascope: %s\n", e.what());
        return false;
      }
      return report(true, c.saveSession) == 0;
    });
  if (startup) actions.push_back([startup] { return startup->finish(); });
  if (c.benchStalls)
    actions.push_back([&window, &stalls] {
      const bool ok = runStallBench(window, *stalls);
      std::printf("%s\n", stalls->json().constData());
      std::fflush(stdout);
      return ok;
    });
  if (c.patch.section) // the 2D view shows the section asked for
    QObject::connect(&engine, &Engine::atlasLoaded, &window,
                     [&window] { window.findChild<QDockWidget*>("sectionDock")->show(); });
  auto runActions = [&window, actions] {
    if (actions.empty()) return;
    QTimer::singleShot(100, &window, [actions] { // one event loop turn for the last frame
      bool ok = true;
      for (const auto& action : actions) ok = action() && ok;
      QApplication::exit(ok ? 0 : 1);
    });
  };
  if (c.patch.matchRegions) {
    // The regions matched once both datasets are read and coloured; the pictures after that.
    whenIdle(
        engine, [&window] { return window.isIdle(); },
        [&window, &engine, runActions] {
          auto* across = window.findChild<RegionsAcrossPanel*>();
          const auto ids = engine.workspace().loadedDatasetIds();
          if (!across || ids.size() < 2) {
            std::fprintf(stderr,
                         "atlascope: --match-regions needs two datasets coloured by their regions (regions_k...)\n");
            runActions();
            return;
          }
          QObject::connect(across, &RegionsAcrossPanel::matched, &window, [&engine, runActions] {
            whenIdle(
                engine, [] { return true; }, runActions);
          });
          across->match(ids[0], ids[1]);
        });
  } else if (!actions.empty()) {
    whenIdle(
        engine, [&window] { return window.isIdle(); }, runActions);
  }
  const int status = app.exec();
  if (stalls && !c.benchStalls) std::fprintf(stderr, "%s\n", stalls->json().constData()); // (debug builds)
  return status;
}
