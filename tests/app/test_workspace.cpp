// The workspace model without widgets: two datasets open at once, every kind of change made,
// undone and redone, sessions (version 2 round trip, version 1 files), and the stale-colouring
// race (a slow column read finishing after its dataset was replaced) made harmless.
#include "app/workspace/DatasetData.h"
#include "app/workspace/TaskRunner.h"
#include "app/workspace/Workspace.h"
#include "core/Atlas.h"
#include "core/SyntheticBrain.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUndoStack>

#include <functional>

using namespace atlascope;
using namespace atlascope::app;

namespace {
// Structures named by index, as the atlas's tree would ("S12").
Workspace::StructureNames names() {
  return {[](atlascope::app::AtlasId, int i) { return QStringLiteral("S%1").arg(i); },
          [](atlascope::app::AtlasId, const QString& a) -> std::optional<int> {
            bool ok = false;
            const int i = a.mid(1).toInt(&ok);
            return a.startsWith('S') && ok ? std::optional<int>(i) : std::nullopt;
          }};
}
QByteArray state(const Workspace& ws) { return QJsonDocument(ws.toJson(names())).toJson(QJsonDocument::Compact); }
} // namespace

class TestWorkspace : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString animalA_, animalB_;

  QString generate(const QString& name, std::int64_t cells, std::uint64_t seed) {
    const QString path = dir_.filePath(name);
    SyntheticBrainOptions g;
    g.maxCells = cells;
    g.sections = 3;
    g.genes = 20;
    g.cellTypes = 12;
    g.hiddenSubregions = 1;
    g.seed = seed;
    generateSyntheticBrain(atlas_, g, path.toStdString());
    return path;
  }
  Atlas atlas_ = Atlas::load(bundledAtlasPaths());

  // Opens both animals and waits for their cells.
  void openBoth(Workspace& ws) {
    const DatasetId a = ws.addDataset(animalA_), b = ws.addDataset(animalB_);
    QTRY_VERIFY_WITH_TIMEOUT(ws.dataset(a)->cells && ws.dataset(b)->cells, 20000);
  }

private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    animalA_ = generate("a.h5ad", 3000, 1);
    animalB_ = generate("b.h5ad", 2000, 2);
  }

  void twoDatasetsOpenTogether() {
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    openBoth(ws);
    const auto ids = ws.loadedDatasetIds();
    QCOMPARE(ids.size(), std::size_t(2));
    QCOMPARE(ws.dataset(ids[0])->cells->size(), 3000);
    QCOMPARE(ws.dataset(ids[1])->cells->size(), 2000);
    // Both drawn in the one view, over the atlas; each coloured by its own types.
    QVERIFY(ws.view(0).layers.contains(cellsLayer(ids[0])));
    QVERIFY(ws.view(0).layers.contains(cellsLayer(ids[1])));
    QTRY_VERIFY(data.colouring(ids[0]) && data.colouring(ids[1]));
    QCOMPARE(data.colouring(ids[1])->codes.size(), std::size_t(2000));
    QCOMPARE(ws.dataset(ids[0])->display.colourBy, QString("type"));
    // Opening is one undo step each: undo closes the second, redo brings it back with its cells.
    ws.undoStack()->undo();
    QCOMPARE(ws.loadedDatasetIds().size(), std::size_t(1));
    ws.undoStack()->redo();
    QCOMPARE(ws.loadedDatasetIds().size(), std::size_t(2));
    QCOMPARE(ws.dataset(ids[1])->cells->size(), 2000);
  }

  void everyChangeIsUndoable() {
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    openBoth(ws);
    const DatasetId a = ws.loadedDatasetIds()[0], b = ws.loadedDatasetIds()[1];
    ws.setCamera(0, CameraState{}, "start"); // the first camera is where the workspace starts
    CameraState turned;
    turned.position = {100, 200, 300};
    const std::vector<std::pair<const char*, std::function<void()>>> changes = {
        {"dataset visibility", [&] { ws.setDatasetVisible(a, false); }},
        {"colouring", [&] { ws.setColourBy(b, "section"); }},
        {"gene colouring",
         [&] { ws.setColourBy(a, "gene:" + QString::fromStdString(ws.dataset(a)->cells->genes[3])); }},
        {"point size", [&] { ws.setPointSize(a, 6); }},
        {"category filter",
         [&] {
           ws.setHiddenCategories(b, {2, 0});
         }},
        {"highlighted region", [&] { ws.setHighlightedRegion(a, 4); }},
        {"region surfaces", [&] { ws.setRegionSurfaces(b, true); }},
        {"dataset name", [&] { ws.setDatasetName(b, "animal B"); }},
        {"region name", [&] { ws.setRegionName(a, "regions_k25", 3, "my CP"); }},
        {"matched colours",
         [&] {
           ws.setRegionColours(b, "regions_k25", {{1, {10, 20, 30}}});
         }},
        {"structure shown", [&] { ws.setStructureVisible(672, true); }},
        {"structure opacity", [&] { ws.setStructureOpacity(672, 0.3); }},
        {"structure colour",
         [&] {
           ws.setStructureColour(672, std::array<double, 3>{1, 0, 0});
         }},
        {"layout", [&] { ws.setLayout(2, 2); }},
        {"layers of a view", [&] { ws.setLayerShown(0, atlasLayer(), false); }},
        {"side by side", [&] { ws.setSideBySide(true); }},
        {"camera", [&] { ws.setCamera(0, turned, "Rotate"); }},
        {"bookmark", [&] { ws.addBookmark(turned); }},
        {"section",
         [&] {
           ws.setSection({"coronal", 6800, 200});
         }},
        {"close a dataset", [&] { ws.closeDataset(a); }},
    };
    for (const auto& [what, change] : changes) {
      const QByteArray before = state(ws);
      const int steps = ws.undoStack()->count();
      change();
      const QByteArray after = state(ws);
      QVERIFY2(after != before, what);
      QVERIFY2(ws.undoStack()->count() == steps + 1, what);
      ws.undoStack()->undo();
      QVERIFY2(state(ws) == before, what);
      ws.undoStack()->redo();
      QVERIFY2(state(ws) == after, what);
    }
    // Unlinking a view gives it a camera of its own, starting where it was.
    ws.setLayout(1, 3);
    QVERIFY(ws.viewLinked(2));
    ws.setViewLinked(2, false);
    QVERIFY(!ws.viewLinked(2));
    QCOMPARE(ws.camera(ws.view(2).cameraGroup), ws.camera(ws.view(0).cameraGroup));
    ws.undoStack()->undo();
    QVERIFY(ws.viewLinked(2));
  }

  void draggedSlidersAreOneStep() {
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    openBoth(ws);
    const DatasetId a = ws.loadedDatasetIds()[0];
    const int steps = ws.undoStack()->count();
    for (double o : {0.9, 0.7, 0.5}) ws.setStructureOpacity(8, o);
    for (double p : {4.0, 5.0, 6.0}) ws.setPointSize(a, p);
    // A section's axis chosen is a step; the slider dragged along it afterwards is one more.
    for (double um : {1000.0, 2000.0, 3000.0}) ws.setSection({"coronal", um, 200});
    QCOMPARE(ws.undoStack()->count(), steps + 4);
    ws.undoStack()->undo();
    QCOMPARE(ws.section().position, 1000.0);
    ws.undoStack()->undo();
    QCOMPARE(ws.section().axis, QString("none"));
    ws.undoStack()->undo();
    QCOMPARE(ws.dataset(a)->display.pointSize, 3.0);
    ws.undoStack()->undo();
    QVERIFY(!ws.structureDisplay(8).opacity);
  }

  void sessionRoundTrip() {
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    openBoth(ws);
    const DatasetId a = ws.loadedDatasetIds()[0], b = ws.loadedDatasetIds()[1];
    ws.setColourBy(b, "hidden_subregion");
    ws.setRegionName(a, "regions_k25", 3, "CP-like");
    ws.setRegionColours(b, "regions_k25", {{2, {200, 10, 10}}});
    ws.setStructureVisible(672, true);
    ws.setStructureOpacity(672, 0.4);
    ws.setLayout(1, 3);
    ws.setViewLayers(1, {cellsLayer(a)});
    ws.setViewLayers(2, {cellsLayer(b), surfacesLayer(b)});
    ws.setViewLinked(2, false);
    ws.setSection({"sagittal", 5000, 100});
    ws.addBookmark(CameraState{});
    ws.setExtras(QJsonObject{{"section_view", true}});
    const QJsonObject saved = ws.toJson(names());
    QCOMPARE(saved.value("version").toInt(), 2);

    Workspace back;
    QSignalSpy added(&back, &Workspace::datasetAdded);
    const QStringList unknown = back.restore(saved, names());
    QVERIFY(unknown.isEmpty());
    QCOMPARE(added.count(), 2); // both datasets come back as entries to read
    QCOMPARE(back.undoStack()->count(), 0);
    QCOMPARE(back.toJson(names()), saved);
    QCOMPARE(back.rows() * back.columns(), 3);
    QVERIFY(!back.viewLinked(2));
    QCOMPARE(back.dataset(a)->regionNames.at("regions_k25").at(3), QString("CP-like"));
    QCOMPARE(back.extras().value("section_view").toBool(), true);
  }

  void atlasesAreLayersOfTheWorkspace() {
    // A second atlas: an entry until read, then a view of its own beside the first (one camera),
    // its own structure displays; undo closes it, redo brings it back as it was; a session keeps it.
    Workspace ws;
    QCOMPARE(ws.atlasIds(), std::vector<AtlasId>{kMainAtlas});
    const AtlasId k = ws.addAtlas("/atlases/kim_mouse_25um_v1.2");
    QVERIFY(k > kMainAtlas);
    QCOMPARE(ws.atlas(k)->name, QString("kim_mouse_25um_v1.2"));
    QCOMPARE(ws.viewCount(), 1); // not read yet: no view
    QCOMPARE(ws.undoStack()->count(), 0);
    ws.resolvePendingStructures(
        k, [](const QString& a) { return a == "CB" ? std::optional<int>(7) : std::nullopt; },
        QJsonArray{structureDisplayJson("CB", StructureDisplay{true, {}, {}}),
                   structureDisplayJson("NOPE", StructureDisplay{true, {}, {}})});
    ws.setAtlasLoaded(k, "kim_mouse_25um");
    QCOMPARE(ws.atlas(k)->name, QString("kim_mouse_25um"));
    QCOMPARE(ws.columns(), 2);
    QCOMPARE(ws.view(1).layers, QStringList{atlasLayer(k)});
    QVERIFY(ws.viewLinked(1));
    QVERIFY(ws.structureDisplay(k, 7).visible); // the structures the window's atlas shows, where it has them
    QVERIFY(!ws.structureDisplay(7).visible);   // the window's atlas is another tree
    QCOMPARE(layerAtlas(atlasLayer(k)).value_or(-1), k);
    QVERIFY(!layerDataset(atlasLayer(k))); // "atlas:2" names no dataset
    QCOMPARE(layerAtlas(atlasLayer()).value_or(-1), kMainAtlas);
    QVERIFY(!layerAtlas(cellsLayer(2)));

    ws.setStructureOpacity(k, 7, 0.3);
    ws.setTemplateShown(k, true);
    QVERIFY(ws.atlas(k)->boundariesShown); // 2D boundaries: on unless turned off
    ws.setBoundariesShown(k, false);
    QVERIFY(!ws.atlas(k)->boundariesShown && ws.atlas(kMainAtlas)->boundariesShown);
    QCOMPARE(*ws.structureDisplay(k, 7).opacity, 0.3);
    QVERIFY(!ws.structureDisplay(kMainAtlas, 7).opacity);
    const QJsonObject saved = ws.toJson(names());
    QCOMPARE(saved.value("atlases").toArray().size(), 1);
    QCOMPARE(saved.value("atlases").toArray()[0].toObject().value("boundaries"), QJsonValue(false));
    QVERIFY(!saved.contains("boundaries")); // the window's atlas's: on, the default, not written

    QSignalSpy removed(&ws, &Workspace::atlasRemoved);
    ws.undoStack()->undo(); // boundaries
    QVERIFY(ws.atlas(k)->boundariesShown);
    ws.undoStack()->undo(); // template
    ws.undoStack()->undo(); // opacity
    ws.undoStack()->undo(); // the opening
    QCOMPARE(removed.count(), 1);
    QVERIFY(!ws.atlas(k));
    QCOMPARE(ws.viewCount(), 1);
    ws.undoStack()->redo();
    QVERIFY(ws.atlas(k) && ws.atlas(k)->loaded);
    QCOMPARE(ws.columns(), 2);
    QVERIFY(ws.structureDisplay(k, 7).visible);
    ws.undoStack()->redo();
    ws.undoStack()->redo();
    ws.undoStack()->redo();
    QCOMPARE(ws.toJson(names()), saved);

    ws.closeAtlas(k);
    QVERIFY(!ws.atlas(k));
    QCOMPARE(ws.viewCount(), 1); // its view went with it
    ws.closeAtlas(kMainAtlas);   // the window's atlas stays
    QVERIFY(ws.atlas(kMainAtlas));
    ws.undoStack()->undo();
    QVERIFY(ws.atlas(k)->templateShown && !ws.atlas(k)->boundariesShown);
    QCOMPARE(ws.toJson(names()), saved);

    // A session: the atlas comes back as an entry to read; its structures wait for its tree and
    // are written back unchanged meanwhile.
    Workspace back;
    QSignalSpy added(&back, &Workspace::atlasAdded);
    back.restore(saved, names());
    QCOMPARE(added.count(), 1);
    QCOMPARE(back.atlas(k)->source, QString("/atlases/kim_mouse_25um_v1.2"));
    QVERIFY(!back.atlas(k)->loaded);
    QVERIFY(!back.atlas(k)->boundariesShown && back.atlas(kMainAtlas)->boundariesShown);
    QCOMPARE(back.toJson(names()), saved);
    back.resolvePendingStructures(k, [](const QString& a) {
      bool ok = false;
      const int i = a.mid(1).toInt(&ok);
      return ok ? std::optional<int>(i) : std::nullopt;
    });
    back.setAtlasLoaded(k, "kim_mouse_25um");
    QCOMPARE(back.undoStack()->count(), 0); // a session's atlas is where it starts
    QCOMPARE(*back.structureDisplay(k, 7).opacity, 0.3);
    QCOMPARE(back.viewCount(), 2); // the session's views, not a new one
    QCOMPARE(back.toJson(names()), saved);
    // A session's atlas that showed nothing shows nothing again (not the window's atlas's choice).
    back.setStructureVisible(k, 7, false);
    back.setStructureOpacity(k, 7, 1.0);
    back.setStructureDisplays(k, {{7, StructureDisplay{}}}, "none");
    QVERIFY(back.structureDisplays(k).empty());
    Workspace empty;
    empty.restore(back.toJson(names()), names());
    empty.resolvePendingStructures(
        k, [](const QString&) { return std::optional<int>(3); },
        QJsonArray{structureDisplayJson("S3", StructureDisplay{true, {}, {}})});
    QVERIFY(empty.structureDisplays(k).empty());
    // The same atlas opened twice: told apart by name.
    const AtlasId twin = ws.addAtlas("/elsewhere/kim_mouse_25um_v1.2");
    ws.setAtlasLoaded(twin, "kim_mouse_25um");
    QCOMPARE(ws.atlas(twin)->name, QString("kim_mouse_25um (2)"));
    QCOMPARE(ws.atlas(k)->name, QString("kim_mouse_25um"));
    // The window's atlas keeps its name, whichever was read first.
    const AtlasId same = ws.addAtlas("/elsewhere/allen_mouse_25um_v1.2");
    ws.setAtlasLoaded(same, "allen_mouse_25um"); // read before the window's
    QCOMPARE(ws.atlas(same)->name, QString("allen_mouse_25um"));
    QSignalSpy renamed(&ws, &Workspace::atlasChanged);
    ws.setAtlasLoaded(kMainAtlas, "allen_mouse_25um");
    QCOMPARE(ws.atlas(kMainAtlas)->name, QString("allen_mouse_25um"));
    QCOMPARE(ws.atlas(same)->name, QString("allen_mouse_25um (2)"));
    QVERIFY(!renamed.isEmpty());
    // An atlas of another space (a rat atlas beside the CCF) starts without its 2D boundaries;
    // undo and redo of its opening keep that.
    const AtlasId rat = ws.addAtlas("/atlases/whs_sd_rat_39um_v1.0");
    ws.setAtlasLoaded(rat, "whs_sd_rat_39um", {}, /*sameSpace=*/false);
    QVERIFY(!ws.atlas(rat)->boundariesShown);
    ws.undoStack()->undo();
    ws.undoStack()->redo();
    QVERIFY(!ws.atlas(rat)->boundariesShown);
    // The window's atlas's boundaries off: written, and off again in a session.
    ws.setBoundariesShown(kMainAtlas, false);
    Workspace mainOff;
    mainOff.restore(ws.toJson(names()), names());
    QVERIFY(!mainOff.atlas(kMainAtlas)->boundariesShown);
  }

  void versionOneSessionsStillOpen() {
    // As the previous release wrote them: one dataset, side by side, one camera.
    const QJsonObject v1{
        {"format", "atlascope-session"},
        {"version", 1},
        {"dataset", animalA_},
        {"colour_by", "regions_k25"},
        {"side_by_side", true},
        {"region_surfaces", true},
        {"selected_region", 4},
        {"section_view", true},
        {"structures", QJsonArray{QJsonObject{{"acronym", "S672"}, {"visible", true}, {"opacity", 0.5}},
                                  QJsonObject{{"acronym", "NOPE"}, {"visible", true}}}},
        {"camera", QJsonObject{{"position", QJsonArray{1, 2, 3}},
                               {"focal_point", QJsonArray{0, 0, 0}},
                               {"view_up", QJsonArray{0, -1, 0}},
                               {"view_angle", 30}}},
        {"section", QJsonObject{{"axis", "coronal"}, {"position", 7000}, {"thickness", 200}}}};
    Workspace ws;
    const QStringList unknown = ws.restore(v1, names());
    QCOMPARE(unknown, QStringList{"NOPE"});
    QVERIFY(ws.sideBySide());
    const DatasetDocument* d = ws.dataset(ws.datasetIds().at(0));
    QCOMPARE(d->path, animalA_);
    QCOMPARE(d->display.colourBy, QString("regions_k25"));
    QVERIFY(d->display.regionSurfaces);
    QCOMPARE(d->display.highlightedRegion, 4);
    QCOMPARE(ws.view(1).layers.first(), cellsLayer(d->id));
    QCOMPARE(ws.camera(0).position, (std::array<double, 3>{1, 2, 3}));
    QCOMPARE(*ws.structureDisplay(672).opacity, 0.5);
    QCOMPARE(ws.section().position, 7000.0);
    QVERIFY(ws.extras().value("section_view").toBool());
    // A newer file is refused with a reason; a non-session too.
    QJsonObject newer = v1;
    newer["version"] = 99;
    QVERIFY_THROWS_EXCEPTION(Error, ws.restore(newer, names()));
    QVERIFY_THROWS_EXCEPTION(Error, ws.restore(QJsonObject{{"format", "other"}}, names()));
  }

  void staleColouringIsHarmless() {
    // The race of the previous window (MainWindow::colourCellsByCategory): an obs column read in
    // the background finished after another dataset had opened and was applied to it, indexing
    // past the new cells. Here the read is made slow on purpose.
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    DatasetData::setColumnReadDelayForTesting(800);
    const DatasetId a = ws.addDataset(animalA_);
    QTRY_VERIFY(data.colouring(a));
    ws.setColourBy(a, "hidden_subregion"); // slow
    QVERIFY(tasks.busy() > 0);
    ws.closeDataset(a);                          // replaced meanwhile...
    const DatasetId b = ws.addDataset(animalB_); // ...by a smaller dataset
    QTRY_VERIFY(data.colouring(b));
    QTRY_COMPARE_WITH_TIMEOUT(tasks.busy(), 0, 10000);
    QVERIFY(!data.colouring(a));
    QCOMPARE(data.colouring(b)->colourBy, QString("type"));
    QCOMPARE(data.colouring(b)->codes.size(), std::size_t(2000));
    QCOMPARE(data.colouring(b)->cells, ws.dataset(b)->cells.get());

    // A slow read overtaken by another colouring of the same dataset is dropped too.
    ws.setColourBy(b, "hidden_subregion");
    ws.setColourBy(b, "section");
    QTRY_COMPARE_WITH_TIMEOUT(tasks.busy(), 0, 10000);
    QCOMPARE(data.colouring(b)->colourBy, QString("section"));
    // Undoing back to the column reads it again, and it lands.
    ws.undoStack()->undo();
    QTRY_COMPARE_WITH_TIMEOUT(data.colouring(b)->colourBy, QString("hidden_subregion"), 10000);
    QCOMPARE(data.colouring(b)->codes.size(), std::size_t(2000));
    DatasetData::setColumnReadDelayForTesting(0);
  }

  void failedReadLeavesOpenDatasetsAlone() {
    Workspace ws;
    TaskRunner tasks;
    DatasetData data(ws, tasks);
    const DatasetId a = ws.addDataset(animalA_);
    QTRY_VERIFY(ws.dataset(a)->cells);
    QSignalSpy failed(&data, &DatasetData::readFailed);
    QFile truncated(dir_.filePath("truncated.h5ad"));
    QVERIFY(truncated.open(QIODevice::WriteOnly));
    QFile original(animalA_);
    QVERIFY(original.open(QIODevice::ReadOnly));
    truncated.write(original.read(original.size() / 3));
    truncated.close();
    ws.addDataset(truncated.fileName());
    QTRY_COMPARE(failed.count(), 1);
    QVERIFY(!failed.first().at(2).toString().isEmpty());
    QCOMPARE(ws.datasetIds(), std::vector<DatasetId>{a});
    QCOMPARE(ws.dataset(a)->cells->size(), 3000);
    QCOMPARE(ws.currentDataset(), a);
  }
};

QTEST_GUILESS_MAIN(TestWorkspace)
#include "test_workspace.moc"
