#include "app/gui/CommandLine.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QUndoStack>

#include <cstdio>
#include <cstdlib>

namespace atlascope::app {

namespace {
[[noreturn]] void fail(const QString& message) {
  std::fprintf(stderr, "atlascope: %s\n", qPrintable(message));
  std::exit(2);
}

QSize parseSize(const QString& text, const char* flag, QSize minimum) {
  const QStringList wh = text.split('x');
  bool okW = false, okH = false;
  const QSize s(wh.value(0).toInt(&okW), wh.value(1).toInt(&okH));
  if (wh.size() != 2 || !okW || !okH || s.width() < minimum.width() || s.height() < minimum.height())
    fail(QStringLiteral("%1 takes WxH of at least %2x%3").arg(flag).arg(minimum.width()).arg(minimum.height()));
  return s;
}
} // namespace

QStringList defaultStructures() { return {"STR", "TH", "HY", "CB"}; }

CommandLine parseCommandLine(const QCoreApplication& app, const QString& sessionFile) {
  QCommandLineParser parser;
  parser.setApplicationDescription("Atlascope: the Allen CCF and spatial transcriptomics in 3D.");
  parser.addHelpOption();
  parser.addVersionOption();
  const QCommandLineOption annotation("annotation", "Label volume (.nrrd, .nhdr, .nii.gz); default: bundled CCF 25 um.",
                                      "file");
  const QCommandLineOption ontology("ontology", "Structure ontology (JSON or CSV); default: bundled.", "file");
  const QCommandLineOption atlasOpt("atlas",
                                    "A BrainGlobe atlas instead of the bundled CCF: a name in the BrainGlobe folder "
                                    "(allen_mouse_25um), a v1 atlas folder or a v3 manifest.json.",
                                    "name|path");
  const QCommandLineOption addAtlas(
      "add-atlas",
      "An atlas to open beside the window's (a tab and a view of its own): a BrainGlobe name, a v1 atlas "
      "folder or a v3 manifest.json; repeat to open several.",
      "name|path");
  const QCommandLineOption table("parcellation-table",
                                 "ABC parcellation.csv when the volume holds parcellation indices.", "file");
  const QCommandLineOption cache("cache-dir", "Where region surfaces and gene stores are cached.", "dir");
  const QCommandLineOption show("show", "Structures to show besides the brain shell (comma-separated acronyms).",
                                "list");
  const QCommandLineOption view("view", "Camera: anterior, posterior, dorsal, ventral, left, right, three-quarter.",
                                "name");
  const QCommandLineOption shot("screenshot", "Save an image of the window once everything is shown, then quit.",
                                "png");
  const QCommandLineOption size("size", "Window size WxH (with --export alone: the picture's size).", "size");
  const QCommandLineOption open("open", "Cell dataset to open (.h5ad, .csv, .tsv); repeat to open several.", "file");
  const QCommandLineOption colourBy(
      "colour-by", "Colour cells by: type, section, gene:NAME or an obs column (e.g. regions_k25).", "what");
  const QCommandLineOption spacing(
      "section-spacing",
      "Cells without CCF coordinates are laid out by section: the distance between sections, um "
      "(default: the file's uns['section_spacing_um'], else 200).",
      "um");
  const QCommandLineOption side("side-by-side",
                                "The CCF and the cells in two views with one camera (default: overlaid).");
  const QCommandLineOption layout(
      "layout", "Views as a grid RxC (1x1 to 3x3), e.g. 1x3: the CCF, then each dataset in a view of its own.", "RxC");
  const QCommandLineOption regionSurfaces(
      "region-surfaces", "The discovered regions the cells are coloured by (--colour-by regions_k<k>) as surfaces.");
  const QCommandLineOption matchRegions(
      "match-regions", "Match the discovered regions of the first two datasets on the CCF grid "
                       "(the Regions across datasets dock; matched regions share colours), before any export.");
  const QCommandLineOption session("session", "Restore a saved session (.json); the other flags apply on top.", "file");
  const QCommandLineOption exportView(
      "export", "Save every view as laid out, as PNG of --size pixels (times --scale), rendered offscreen, then quit.",
      "png");
  const QCommandLineOption scale("scale", "Pixel scale of --export (e.g. 4 for a print figure).", "n", "1");
  const QCommandLineOption turntable(
      "turntable", "Export N frames of the camera once around the brain into --frames-dir, then quit.", "n");
  const QCommandLineOption sweep(
      "sweep", "Export --sweep-frames frames of a section slab moving along AXIS (coronal, sagittal, horizontal).",
      "axis");
  const QCommandLineOption sweepFrames("sweep-frames", "Frames of --sweep.", "n", "60");
  const QCommandLineOption framesDir(
      "frames-dir", "Folder for --turntable / --sweep frames (frame_0000.png ...; animation.mp4 with ffmpeg).", "dir",
      "frames");
  const QCommandLineOption benchRender(
      "bench-render",
      "Benchmark: N frames turning the camera with every cell drawn, then N while interacting "
      "(level of detail); one JSON line with ms per frame, then quit.",
      "n");
  const QCommandLineOption figure(
      "figure",
      "Figure mode: the views, the 2D section (with --section) and the legend as one PNG, SVG or PDF, then quit.",
      "file");
  const QCommandLineOption figureSize("figure-size", "Size of --figure in pixels, WxH.", "size", "2400x1400");
  const QCommandLineOption sectionOpt(
      "section", "A section through every view, AXIS:UM (e.g. coronal:7000; 200 um slab), shown in the 2D view.",
      "axis:um");
  const QCommandLineOption restoreSession(
      "restore-session",
      "After a crash or a kill: restore the autosaved session (yes), discard it (no) or ask "
      "(default; without dialogs it is kept for a later start).",
      "yes|no|ask", "ask");
  const QCommandLineOption saveSession("save-session",
                                       "Save the session (what is shown) once everything is shown, then quit.", "file");
  const QCommandLineOption benchStalls(
      "bench-stalls", "Benchmark: the longest GUI-thread stalls while --open's dataset opens, is coloured by a gene "
                      "and a region job (k = 25) runs and opens; one JSON line, then quit.");
  const QCommandLineOption benchStartup(
      "bench-startup", "Benchmark: seconds from the process's start to the first frame, the atlas, the surfaces, "
                       "--open's cells and everything settled; one JSON line each, then quit.");
  parser.addOptions({annotation,     ontology,       table,       cache,       show,        view,
                     shot,           size,           open,        colourBy,    side,        layout,
                     regionSurfaces, matchRegions,   session,     exportView,  scale,       turntable,
                     sweep,          sweepFrames,    framesDir,   figure,      figureSize,  sectionOpt,
                     benchRender,    restoreSession, saveSession, benchStalls, benchStartup});
  parser.addOption(spacing);
  parser.addOption(atlasOpt);
  parser.addOption(addAtlas);
  parser.process(app);

  CommandLine c;
  if (parser.isSet(annotation)) c.engine.atlas.annotation = parser.value(annotation).toStdString();
  if (parser.isSet(ontology)) c.engine.atlas.ontology = parser.value(ontology).toStdString();
  if (parser.isSet(table)) c.engine.atlas.parcellationTable = parser.value(table).toStdString();
  if (parser.isSet(cache)) c.engine.cacheDir = parser.value(cache);
  if (parser.isSet(atlasOpt)) c.engine.atlasName = parser.value(atlasOpt);
  StartupPatch& p = c.patch;
  if (parser.isSet(show)) p.show = parser.value(show).split(',', Qt::SkipEmptyParts);
  if (parser.isSet(view)) {
    p.view = viewer::presetFromName(parser.value(view).toStdString());
    if (!p.view) fail(QStringLiteral("unknown view '%1'").arg(parser.value(view)));
  }
  p.datasets = parser.values(open);
  p.atlases = parser.values(addAtlas);
  p.colourBy = parser.value(colourBy);
  if (parser.isSet(spacing)) {
    bool ok = false;
    p.sectionSpacing = parser.value(spacing).toDouble(&ok);
    if (!ok || !(p.sectionSpacing > 0) || p.sectionSpacing > 100000) fail("--section-spacing takes a distance in um");
  }
  p.sideBySide = parser.isSet(side);
  if (parser.isSet(layout)) {
    const QSize rc = parseSize(parser.value(layout), "--layout", {1, 1});
    if (rc.width() > 3 || rc.height() > 3) fail("--layout takes RxC of at most 3x3");
    p.layout = std::make_pair(rc.width(), rc.height());
  }
  p.regionSurfaces = parser.isSet(regionSurfaces);
  p.matchRegions = parser.isSet(matchRegions);
  if (parser.isSet(sectionOpt)) {
    const QStringList parts = parser.value(sectionOpt).split(':');
    const auto axis = viewer::sectionAxisFromName(parts.value(0).toStdString());
    bool ok = false;
    const double um = parts.value(1).toDouble(&ok);
    if (parts.size() != 2 || axis == viewer::SectionAxis::None || !ok)
      fail("--section takes AXIS:UM, e.g. coronal:7000");
    p.section = SectionState{parts.value(0), um, 200};
  }
  const QString sessionPath = !sessionFile.isEmpty() ? sessionFile : parser.value(session); // (non-X11 platforms)
  if (!sessionPath.isEmpty()) {
    try {
      p.session = readSessionFile(sessionPath);
    } catch (const std::exception& e) {
      fail(QString::fromUtf8(e.what()));
    }
  }
  if (parser.isSet(size)) c.size = parseSize(parser.value(size), "--size", {64, 64});
  c.screenshot = parser.value(shot);
  c.exportPath = parser.value(exportView);
  c.scale = std::max(1, parser.value(scale).toInt());
  c.turntable = parser.isSet(turntable) ? std::max(1, parser.value(turntable).toInt()) : 0;
  if (parser.isSet(sweep)) {
    c.sweep = viewer::sectionAxisFromName(parser.value(sweep).toStdString());
    if (c.sweep == viewer::SectionAxis::None)
      fail(QStringLiteral("unknown section axis '%1'").arg(parser.value(sweep)));
  }
  c.sweepFrames = std::max(1, parser.value(sweepFrames).toInt());
  c.framesDir = parser.value(framesDir);
  c.benchRender = parser.isSet(benchRender) ? std::max(1, parser.value(benchRender).toInt()) : 0;
  c.figure = parser.value(figure);
  if (!c.figure.isEmpty()) c.figureSize = parseSize(parser.value(figureSize), "--figure-size", {200, 150});
  c.restoreSession = parser.value(restoreSession);
  if (c.restoreSession != "yes" && c.restoreSession != "no" && c.restoreSession != "ask")
    fail("--restore-session takes yes, no or ask");
  c.restoreSessionGiven = parser.isSet(restoreSession);
  c.saveSession = parser.value(saveSession);
  c.benchStalls = parser.isSet(benchStalls);
  c.benchStartup = parser.isSet(benchStartup);
  return c;
}

void addDatasets(Engine& engine, const StartupPatch& patch) {
  Workspace& ws = engine.workspace();
  for (const QString& path : patch.datasets) {
    bool open = false;
    for (DatasetId id : ws.datasetIds()) open = open || ws.dataset(id)->path == path;
    if (open) continue;
    const DatasetId id = ws.addDataset(path, {}, {}, patch.colourBy);
    if (patch.sectionSpacing > 0) ws.setSectionSpacing(id, patch.sectionSpacing); // laid out so from the start
  }
}

void applyPatch(Engine& engine, const StartupPatch& p) {
  Workspace& ws = engine.workspace();
  if (p.show || p.session.isEmpty())
    engine.showStructures(p.show.value_or(defaultStructures()), QObject::tr("Show structures"));
  addDatasets(engine, p);
  for (const QString& source : p.atlases) {
    bool open = false;
    for (AtlasId id : ws.atlasIds()) open = open || ws.atlas(id)->source == source;
    if (!open) ws.addAtlas(source);
  }
  if (!p.colourBy.isEmpty())
    for (DatasetId id : ws.datasetIds()) ws.setColourBy(id, p.colourBy);
  if (p.sectionSpacing > 0)
    for (DatasetId id : ws.datasetIds()) ws.setSectionSpacing(id, p.sectionSpacing);
  if (p.section) ws.setSection(*p.section);
  if (p.view && engine.scene()) engine.scene()->applyCameraPreset(0, *p.view, QObject::tr("Camera"));
  // The layout once every dataset is read (or refused): new views of a grid take a dataset each.
  auto arrange = [&engine, p] {
    Workspace& w = engine.workspace();
    if (p.layout)
      w.setLayout(p.layout->first, p.layout->second);
    else if (p.sideBySide)
      w.setSideBySide(true);
    if (p.regionSurfaces)
      for (DatasetId id : w.datasetIds()) w.setRegionSurfaces(id, true);
    // The camera framed for the views as they are now (a grid's views are narrower), unless a
    // session gave one and no --view asks for another.
    if (engine.scene() && (p.layout || p.sideBySide || !p.atlases.isEmpty()) && (p.session.isEmpty() || p.view))
      engine.scene()->applyCameraPreset(0, p.view.value_or(viewer::CameraPreset::ThreeQuarter), QObject::tr("Camera"));
    w.undoStack()->clear(); // where the user starts, not an edit
  };
  // (and the atlases opened beside the window's: each brings a view)
  auto reading = [&ws, &engine] {
    for (DatasetId id : ws.datasetIds())
      if (!ws.dataset(id)->cells) return true;
    return engine.atlasesLoading() > 0;
  };
  if (!reading()) {
    arrange();
    return;
  }
  auto* waiter = new QObject(&engine);
  auto check = [waiter, reading, arrange] {
    if (reading()) return;
    arrange();
    waiter->deleteLater();
  };
  for (auto signal :
       {&Workspace::datasetLoaded, &Workspace::datasetRemoved, &Workspace::atlasLoaded, &Workspace::atlasRemoved})
    QObject::connect(&ws, signal, waiter, check);
}

} // namespace atlascope::app
