#pragma once
// The command line of `atlascope`, declared in one place (F3D's options): the flags are parsed
// into a patch of the workspace, applied once the atlas is loaded, over a session when one is
// given. The window and the headless exports apply the same patch to the same model.
#include "app/scene/Engine.h"
#include "viewer/SectionPlane.h"

#include <QSize>
#include <QStringList>

#include <optional>

class QCoreApplication;

namespace atlascope::app {

struct StartupPatch {
  QStringList datasets;            // --open (repeatable)
  QStringList atlases;             // --add-atlas (repeatable): atlases opened beside the window's
  QString colourBy;                // --colour-by, for every dataset opened
  double sectionSpacing = 0;       // --section-spacing (um) for sections without CCF coordinates; 0: the file's
  std::optional<QStringList> show; // --show; default: the major divisions, unless a session says
  std::optional<viewer::CameraPreset> view;
  bool sideBySide = false;
  std::optional<std::pair<int, int>> layout; // --layout RxC
  bool regionSurfaces = false;
  bool matchRegions = false; // the first two datasets' regions matched (Regions across datasets)
  std::optional<SectionState> section;
  QJsonObject session; // --session, read
};

struct CommandLine {
  EngineOptions engine;
  StartupPatch patch;
  QSize size; // --size (window, or the headless picture)
  QString screenshot, exportPath, figure, framesDir;
  int scale = 1, turntable = 0, sweepFrames = 60, benchRender = 0;
  viewer::SectionAxis sweep = viewer::SectionAxis::None;
  QSize figureSize;
  // Issue 14: crash recovery (SessionRecovery.h), a session dump, the stall benchmark.
  QString restoreSession = "ask"; // --restore-session yes|no|ask
  bool restoreSessionGiven = false;
  QString saveSession;       // --save-session FILE: once everything is shown, then quit
  bool benchStalls = false;  // --bench-stalls
  bool benchStartup = false; // --bench-startup (StartupBench.h)
  // A run that quits by itself once the window has settled (no dialog may wait for a person).
  bool oneShot() const {
    return headless() || benchRender > 0 || !saveSession.isEmpty() || benchStalls || benchStartup;
  }
  bool headless() const {
    return !screenshot.isEmpty() || !exportPath.isEmpty() || !figure.isEmpty() || turntable > 0 ||
           sweep != viewer::SectionAxis::None;
  }
  // Only what needs no window (--export, --turntable, --sweep): rendered offscreen from the model.
  bool windowless() const {
    return headless() && screenshot.isEmpty() && figure.isEmpty() && benchRender == 0 && !patch.matchRegions;
  }
};

// Parses the arguments (`--session` taken out beforehand: Qt on X11 takes it for itself). Exits
// with a message on a bad value (status 2).
CommandLine parseCommandLine(const QCoreApplication& app, const QString& sessionFile);

// The default look: the whole brain as a shell with a few major divisions that hide none of
// each other (striatum, thalamus, hypothalamus, cerebellum).
QStringList defaultStructures();

// Adds the patch's datasets that the workspace does not hold yet (reading starts at once, in
// parallel with the atlas).
void addDatasets(Engine& engine, const StartupPatch& patch);
// Applies the patch once the atlas is loaded (the session, if any, restored before it by the
// caller). The undo history starts after it.
void applyPatch(Engine& engine, const StartupPatch& patch);

} // namespace atlascope::app
