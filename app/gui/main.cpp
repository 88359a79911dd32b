// atlascope: the desktop viewer.
#include "app/gui/AnimationExport.h"
#include "app/gui/MainWindow.h"
#include "app/gui/Session.h"
#include "app/gui/SessionRecovery.h"
#include "app/gui/StallBench.h"
#include "app/gui/StallDetector.h"
#include "app/gui/SessionAutosave.h"
#include "app/gui/VtkView.h"
#include "viewer/CellCloud.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDockWidget>
#include <QElapsedTimer>

#include <vtkCamera.h>
#include <vtkRenderer.h>
#include <QTimer>

#include <functional>
#include <optional>
#include <vector>

#include <cstdio>
#include <memory>

namespace {
// Runs `ready` once the window has settled: the atlas loaded and, when a dataset was asked for,
// its cells read or refused, and nothing left to build. An atlas that fails to load ends the
// program with its message instead (exit 1).
void whenReady(atlascope::app::MainWindow& window, bool wantCells, std::function<void()> ready) {
  auto started = std::make_shared<bool>(false);
  QObject::connect(&window, &atlascope::app::MainWindow::idle, &window, [&window, started, wantCells, ready] {
    if (*started) return;
    *started = true;
    auto* poll = new QTimer(&window);
    poll->setInterval(200);
    QObject::connect(poll, &QTimer::timeout, &window, [&window, poll, wantCells, ready] {
      const bool failed = !window.loadError().isEmpty();
      if (!failed && (!window.isIdle() || (wantCells && !window.cells() && window.datasetError().isEmpty()))) return;
      poll->stop();
      if (failed) {
        std::fprintf(stderr, "atlascope: %s\n", qPrintable(window.loadError()));
        QApplication::exit(1);
        return;
      }
      ready();
    });
    poll->start();
  });
}
} // namespace

int main(int argc, char** argv) {
  // The VTK bridge needs an X11 window (TOOLCHAIN.md); on Wayland sessions use XWayland.
  if (!qEnvironmentVariableIsSet("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "xcb");
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

  QCommandLineParser parser;
  parser.setApplicationDescription("Atlascope: the Allen CCF and spatial transcriptomics in 3D.");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption annotation("annotation", "Label volume (.nrrd, .nhdr, .nii.gz); default: bundled CCF 25 um.", "file");
  QCommandLineOption ontology("ontology", "Structure ontology (JSON or CSV); default: bundled.", "file");
  QCommandLineOption table("parcellation-table", "ABC parcellation.csv when the volume holds parcellation indices.", "file");
  QCommandLineOption cache("cache-dir", "Where region surfaces are cached.", "dir");
  QCommandLineOption show("show", "Structures to show besides the brain shell (comma-separated acronyms).", "list");
  QCommandLineOption view("view", "Camera: anterior, posterior, dorsal, ventral, left, right, three-quarter.", "name");
  QCommandLineOption shot("screenshot", "Save an image of the window once everything is shown, then quit.", "png");
  QCommandLineOption size("size", "Window size WxH.", "size");
  QCommandLineOption open("open", "Cell dataset to open (.h5ad, .csv, .tsv).", "file");
  QCommandLineOption colourBy("colour-by", "Colour cells by: type, section, gene:NAME or an obs column (e.g. regions_k25).", "what");
  QCommandLineOption side("side-by-side", "The CCF and the cells in two views with one camera (default: overlaid).");
  QCommandLineOption regionSurfaces("region-surfaces", "The discovered regions the cells are coloured by (--colour-by regions_k<k>) as surfaces.");
  QCommandLineOption session("session", "Restore a saved session (.json).", "file");
  QCommandLineOption exportView("export", "Save the 3D view as PNG (at --scale times its size) once everything is shown, then quit.", "png");
  QCommandLineOption scale("scale", "Pixel scale of --export (e.g. 4 for a print figure).", "n", "1");
  QCommandLineOption turntable("turntable", "Export N frames of the camera once around the brain into --frames-dir, then quit.", "n");
  QCommandLineOption sweep("sweep", "Export --sweep-frames frames of a section slab moving along AXIS (coronal, sagittal, horizontal).", "axis");
  QCommandLineOption sweepFrames("sweep-frames", "Frames of --sweep.", "n", "60");
  QCommandLineOption framesDir("frames-dir", "Folder for --turntable / --sweep frames (frame_0000.png ...; animation.mp4 with ffmpeg).", "dir", "frames");
  QCommandLineOption benchRender("bench-render", "Benchmark: N frames turning the camera with every cell drawn, then N while interacting "
                                 "(level of detail); one JSON line with ms per frame, then quit.", "n");
  QCommandLineOption figure("figure", "Figure mode: the 3D view(s), the 2D section (with --section) and the legend as one PNG, SVG or PDF, then quit.", "file");
  QCommandLineOption figureSize("figure-size", "Size of --figure in pixels, WxH.", "size", "2400x1400");
  QCommandLineOption sectionOpt("section", "A section through both parcellations, AXIS:UM (e.g. coronal:7000; 200 um slab), shown in the 2D view.", "axis:um");
  parser.addOptions({annotation, ontology, table, cache, show, view, shot, size, open, colourBy, side, regionSurfaces, session, exportView, scale,
                     turntable, sweep, sweepFrames, framesDir, figure, figureSize, sectionOpt, benchRender});
  // Issue 14: crash recovery, a session dump, the stall benchmark.
  QCommandLineOption restoreSession("restore-session", "After a crash or a kill: restore the autosaved session (yes), discard it (no) or ask "
                                    "(default; without dialogs it is kept for a later start).", "yes|no|ask", "ask");
  QCommandLineOption saveSessionOpt("save-session", "Save the session (what is shown) once everything is shown, then quit.", "file");
  QCommandLineOption benchStalls("bench-stalls", "Benchmark: the longest GUI-thread stalls while --open's dataset opens, is coloured by a gene "
                                 "and a region job (k = 25) runs and opens; one JSON line, then quit.");
  parser.addOptions({restoreSession, saveSessionOpt, benchStalls});
  parser.process(app);
  // GUI-thread stalls (StallDetector.h): always in debug builds, and with --bench-stalls; from
  // here on, so that the atlas and the dataset loading count too.
  std::unique_ptr<atlascope::app::StallDetector> stalls;
#ifndef NDEBUG
  stalls = std::make_unique<atlascope::app::StallDetector>();
#endif
  if (parser.isSet(benchStalls) && !stalls) stalls = std::make_unique<atlascope::app::StallDetector>();
  if (stalls) stalls->setReportLive(true); // each stall over 100 ms on stderr as it happens
  if (stalls) stalls->setPhase(parser.isSet(open) ? "open" : "start");

  atlascope::app::MainWindowOptions options;
  if (parser.isSet(annotation)) options.atlas.annotation = parser.value(annotation).toStdString();
  if (parser.isSet(ontology)) options.atlas.ontology = parser.value(ontology).toStdString();
  if (parser.isSet(table)) options.atlas.parcellationTable = parser.value(table).toStdString();
  if (parser.isSet(cache)) options.cacheDir = parser.value(cache);
  if (parser.isSet(show)) options.initialStructures = parser.value(show).split(',', Qt::SkipEmptyParts);
  if (parser.isSet(view)) {
    const auto p = atlascope::viewer::presetFromName(parser.value(view).toStdString());
    if (!p) {
      std::fprintf(stderr, "atlascope: unknown view '%s'\n", qPrintable(parser.value(view)));
      return 2;
    }
    options.initialView = *p;
  }
  if (parser.isSet(open)) options.dataset = parser.value(open);
  if (parser.isSet(colourBy)) options.colourBy = parser.value(colourBy);
  options.sideBySide = parser.isSet(side);
  options.regionSurfaces = parser.isSet(regionSurfaces);
  if (parser.isSet(shot) || parser.isSet(exportView) || parser.isSet(turntable) || parser.isSet(sweep) || parser.isSet(figure))
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
  std::optional<std::pair<atlascope::viewer::SectionAxis, double>> sectionAt;
  if (parser.isSet(sectionOpt)) {
    const QStringList parts = parser.value(sectionOpt).split(':');
    const auto axis = atlascope::viewer::sectionAxisFromName(parts.value(0).toStdString());
    bool ok = false;
    const double um = parts.value(1).toDouble(&ok);
    if (parts.size() != 2 || axis == atlascope::viewer::SectionAxis::None || !ok) {
      std::fprintf(stderr, "atlascope: --section takes AXIS:UM, e.g. coronal:7000\n");
      return 2;
    }
    sectionAt = std::make_pair(axis, um);
  }
  QSize figurePixels;
  if (parser.isSet(figure)) {
    const QStringList wh = parser.value(figureSize).split('x');
    figurePixels = QSize(wh.value(0).toInt(), wh.value(1).toInt());
    if (figurePixels.width() < 200 || figurePixels.height() < 150) {
      std::fprintf(stderr, "atlascope: --figure-size takes WxH of at least 200x150\n");
      return 2;
    }
  }
  std::optional<atlascope::app::Session> restored;
  if (sessionFile.isEmpty() && parser.isSet(session)) sessionFile = parser.value(session); // (non-X11 platforms)
  if (!sessionFile.isEmpty()) {
    try {
      restored = atlascope::app::Session::load(sessionFile);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atlascope: %s\n", e.what());
      return 2;
    }
    options.initialStructures = {}; // the session says what is shown
  }
  // Crash recovery (SessionRecovery.h): a session autosaved by a run that did not exit cleanly,
  // unless this run was told what to show (--session, or --open without --restore-session).
  if (parser.isSet(saveSessionOpt) || parser.isSet(benchStalls)) qputenv("ATLASCOPE_NO_DIALOGS", "1");
  if (const QString answer = parser.value(restoreSession); answer != "yes" && answer != "no" && answer != "ask") {
    std::fprintf(stderr, "atlascope: --restore-session takes yes, no or ask\n");
    return 2;
  }
  if (!restored && (!parser.isSet(open) || parser.isSet(restoreSession))) {
    restored = atlascope::app::recoverSession(parser.value(restoreSession), atlascope::app::recoveryDir());
    if (restored) options.initialStructures = {};
  }

  atlascope::app::MainWindow window(options);
  if (stalls)
    for (auto* v : {window.view(), window.cellsView()}) stalls->watchRenderWindow(v->renderWindow()); // frames apart from work
  if (restored) window.applySession(*restored);
  if (parser.isSet(size)) {
    const QStringList wh = parser.value(size).split('x');
    if (wh.size() == 2) window.resize(wh[0].toInt(), wh[1].toInt());
  }
  window.show();

  // What runs once the window has settled (headless exports, benchmarks), in this order; the
  // program then quits, with 1 when one of them failed.
  std::vector<std::function<bool()>> actions;
  if (parser.isSet(shot) || parser.isSet(exportView)) {
    const bool viewOnly = parser.isSet(exportView);
    const QString path = viewOnly ? parser.value(exportView) : parser.value(shot);
    const int pixelScale = std::max(1, parser.value(scale).toInt());
    actions.push_back([&window, path, viewOnly, pixelScale] {
      bool ok = true;
      if (viewOnly) {
        try {
          window.saveViewImage(path, pixelScale);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "atlascope: %s\n", e.what());
          ok = false;
        }
      } else {
        ok = window.windowImage().save(path);
      }
      std::fprintf(ok ? stdout : stderr, ok ? "wrote %s\n" : "atlascope: cannot write %s\n", qPrintable(path));
      return ok;
    });
  }
  if (parser.isSet(turntable) || parser.isSet(sweep)) {
    const atlascope::viewer::SectionAxis axis = atlascope::viewer::sectionAxisFromName(parser.value(sweep).toStdString());
    if (parser.isSet(sweep) && axis == atlascope::viewer::SectionAxis::None) {
      std::fprintf(stderr, "atlascope: unknown section axis '%s'\n", qPrintable(parser.value(sweep)));
      return 2;
    }
    const int frames = parser.isSet(turntable) ? parser.value(turntable).toInt() : parser.value(sweepFrames).toInt();
    const QString dir = parser.value(framesDir);
    const int pixelScale = std::max(1, parser.value(scale).toInt());
    const bool spin = parser.isSet(turntable);
    actions.push_back([&window, frames, dir, pixelScale, spin, axis] {
      const auto r = spin ? atlascope::app::exportTurntable(window, dir, frames, pixelScale)
                          : atlascope::app::exportSectionSweep(window, dir, axis, frames, pixelScale);
      if (!r.error.isEmpty()) std::fprintf(stderr, "atlascope: %s\n", qPrintable(r.error));
      else std::printf("wrote %d frames to %s%s\n", static_cast<int>(r.frames.size()), qPrintable(dir),
                       r.video.isEmpty() ? "" : qPrintable(" and " + r.video));
      return r.error.isEmpty();
    });
  }
  if (parser.isSet(figure)) {
    const QString path = parser.value(figure);
    actions.push_back([&window, path, figurePixels] {
      const bool ok = window.writeFigure(path, figurePixels);
      std::fprintf(ok ? stdout : stderr, ok ? "wrote %s\n" : "atlascope: cannot write %s\n", qPrintable(path));
      return ok;
    });
  }
  if (parser.isSet(benchRender)) {
    const int frames = std::max(1, parser.value(benchRender).toInt());
    actions.push_back([&window, frames] {
      auto* cloud = window.cellCloud();
      if (!cloud) {
        std::fprintf(stderr, "atlascope: --bench-render needs --open DATA\n");
        return false;
      }
      vtkCamera* camera = window.scene()->renderer()->GetActiveCamera();
      auto run = [&](bool interacting, std::int64_t& drawn) {
        cloud->setInteracting(interacting);
        window.renderViews(); // the first frame after a switch uploads the vertex list
        drawn = cloud->drawnCount();
        QElapsedTimer t;
        t.start();
        for (int i = 0; i < frames; ++i) {
          camera->Azimuth(360.0 / frames);
          window.renderViews();
        }
        return static_cast<double>(t.nsecsElapsed()) / 1e6 / frames;
      };
      std::int64_t drawnFull = 0, drawnLod = 0;
      const double full = run(false, drawnFull), lod = run(true, drawnLod);
      cloud->setInteracting(false);
      std::printf("{\"figure\":\"render\",\"cells\":%lld,\"frames\":%d,\"full_ms\":%.2f,\"interacting_ms\":%.2f,\"drawn_full\":%lld,"
                  "\"drawn_interacting\":%lld,\"speedup\":%.2f}\n",
                  static_cast<long long>(cloud->size()), frames, full, lod, static_cast<long long>(drawnFull),
                  static_cast<long long>(drawnLod), full / lod);
      return true;
    });
  }
  if (parser.isSet(saveSessionOpt)) {
    const QString path = parser.value(saveSessionOpt);
    actions.push_back([&window, path] {
      try {
        window.captureSession().save(path);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "atlascope: %s\n", e.what());
        return false;
      }
      std::printf("wrote %s\n", qPrintable(path));
      return true;
    });
  }
  if (parser.isSet(benchStalls))
    actions.push_back([&window, &stalls] {
      const bool ok = atlascope::app::runStallBench(window, *stalls);
      std::printf("%s\n", stalls->json().constData());
      std::fflush(stdout);
      return ok;
    });
  if (sectionAt || !actions.empty()) {
    // The atlas signals idle before a dataset (of --open or a session) is read: wait for its cells
    // (or its error) and for the window to be idle again. The section goes on first (over a
    // session's own), with the 2D view shown.
    const bool wantCells = !options.dataset.isEmpty() || (restored && !restored->dataset.isEmpty());
    whenReady(window, wantCells, [&window, sectionAt, actions] {
      if (sectionAt) {
        window.setSection(sectionAt->first, sectionAt->second);
        if (auto* dock = window.findChild<QDockWidget*>("sectionDock")) dock->show();
      }
      if (actions.empty()) return;
      bool ok = true;
      for (const auto& action : actions) ok = action() && ok;
      QApplication::exit(ok ? 0 : 1);
    });
  }
  const int status = app.exec();
  if (stalls && !parser.isSet(benchStalls)) std::fprintf(stderr, "%s\n", stalls->json().constData()); // (debug builds)
  return status;
}

