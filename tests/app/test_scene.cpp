// The workspace drawn without a window (Engine + SceneController, offscreen): a 2x2 layout of the
// CCF and two animals exported at exactly the requested pixels, each view showing its own layers;
// linked views share a camera, an unlinked one keeps its own; picking finds the cells of the view
// under the pointer.
#include "app/scene/Engine.h"
#include "app/scene/SceneController.h"
#include "core/SyntheticBrain.h"
#include "viewer/CellCloud.h"

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUndoStack>

#include <vtkCamera.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>

using namespace atlascope;
using namespace atlascope::app;

namespace {
// Pixels of a region that are neither white (background) nor the grey gap.
int inked(const QImage& img, const QRect& r) {
  int n = 0;
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x) {
      const QColor c = img.pixelColor(x, y);
      if (c.red() < 235 || c.green() < 235 || c.blue() < 235) ++n;
    }
  return n;
}
// Pixels of a region close to an RGB colour.
int near(const QImage& img, const QRect& r, QColor want) {
  int n = 0;
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x) {
      const QColor c = img.pixelColor(x, y);
      if (std::abs(c.red() - want.red()) < 12 && std::abs(c.green() - want.green()) < 12 &&
          std::abs(c.blue() - want.blue()) < 12)
        ++n;
    }
  return n;
}
} // namespace

class TestScene : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString a_, b_;

private slots:
  void initTestCase() {
    const Atlas atlas = Atlas::load(bundledAtlasPaths());
    for (auto [name, seed] : {std::pair<const char*, int>{"a.h5ad", 1}, {"b.h5ad", 2}}) {
      SyntheticBrainOptions g;
      g.maxCells = 20000;
      g.sections = 4;
      g.genes = 20;
      g.cellTypes = 10;
      g.seed = static_cast<std::uint64_t>(seed);
      generateSyntheticBrain(atlas, g, dir_.filePath(name).toStdString());
    }
    a_ = dir_.filePath("a.h5ad");
    b_ = dir_.filePath("b.h5ad");
  }

  void twoByTwoExportedAtTheRequestedSize() {
    Engine engine;
    auto window = vtkSmartPointer<vtkRenderWindow>::New();
    window->SetOffScreenRendering(1);
    window->SetSize(300, 200);
    engine.setRenderWindow(window);
    Workspace& ws = engine.workspace();
    const DatasetId a = ws.addDataset(a_), b = ws.addDataset(b_);
    QTRY_VERIFY_WITH_TIMEOUT(engine.atlas() && ws.dataset(a)->cells && ws.dataset(b)->cells, 30000);
    engine.showStructures({"CB"}, "show");
    ws.setLayout(2, 2);
    // CCF alone | animal A || animal B | everything.
    ws.setViewLayers(0, {atlasLayer()});
    ws.setViewLayers(1, {cellsLayer(a)});
    ws.setViewLayers(2, {cellsLayer(b)});
    ws.setViewLayers(3, {atlasLayer(), cellsLayer(a), cellsLayer(b)});
    // One solid colour per animal, to tell them apart in the picture.
    ws.setColourBy(a, "section");
    ws.setColourBy(b, "section");
    QTRY_VERIFY_WITH_TIMEOUT(engine.isIdle(), 60000);
    SceneController* scene = engine.scene();
    QVERIFY(scene);
    QCOMPARE(scene->viewCount(), 4);

    const QSize size(900, 560);
    const QImage img = scene->renderImage(size);
    QCOMPARE(img.size(), size);
    if (qEnvironmentVariableIsSet("ATLASCOPE_TEST_IMAGES"))
      img.save(qEnvironmentVariable("ATLASCOPE_TEST_IMAGES") + "/scene-2x2.png");
    const int w = size.width() / 2, h = size.height() / 2;
    const QRect tl(10, 10, w - 20, h - 20), tr(w + 10, 10, w - 20, h - 20), bl(10, h + 10, w - 20, h - 20),
        br(w + 10, h + 10, w - 20, h - 20);
    for (const QRect& q : {tl, tr, bl, br}) QVERIFY2(inked(img, q) > 500, "every view draws something");
    // The CCF's grey shell is in the top-left view only among the first three; cells are not.
    const auto sectionColour = [&](DatasetId id) {
      const auto c = engine.data().colouring(id)->colours.at(0);
      return QColor(c[0], c[1], c[2]);
    };
    QVERIFY(near(img, tr, sectionColour(a)) > 20);
    QCOMPARE(near(img, tl, sectionColour(a)), 0);
    // The gap between views is drawn, so a figure's panels stay apart.
    QVERIFY(img.pixelColor(w, h / 2).red() < 235);

    // --scale on top: twice the pixels, the same composition.
    const QImage twice = scene->renderImage(size * 2);
    QCOMPARE(twice.size(), size * 2);
    // The window it draws into keeps its own size.
    QCOMPARE(window->GetSize()[0], 300);

    // Linked views share one camera; an unlinked view keeps its own.
    QCOMPARE(scene->renderer(0)->GetActiveCamera(), scene->renderer(3)->GetActiveCamera());
    ws.setViewLinked(3, false);
    QVERIFY(scene->renderer(0)->GetActiveCamera() != scene->renderer(3)->GetActiveCamera());
    scene->applyCameraPreset(0, viewer::CameraPreset::Dorsal, "Dorsal");
    double p0[3], p3[3];
    scene->renderer(0)->GetActiveCamera()->GetPosition(p0);
    scene->renderer(3)->GetActiveCamera()->GetPosition(p3);
    QVERIFY(std::abs(p0[1] - p3[1]) > 1000); // view 4 did not follow
    ws.undoStack()->undo();                  // the preset
    ws.undoStack()->undo();                  // the unlinking
    QCOMPARE(scene->renderer(0)->GetActiveCamera(), scene->renderer(3)->GetActiveCamera());

    // Cells in a view's renderer are picked there: the centre of view 2 shows animal A.
    scene->render();
    bool found = false;
    for (int dy = -40; dy <= 40 && !found; dy += 4)
      for (int dx = -40; dx <= 40 && !found; dx += 4) {
        const auto hit = scene->pick(300 * 3 / 4 + dx / 4, 200 * 3 / 4 + dy / 4);
        if (hit.cell >= 0) {
          QCOMPARE(hit.view, 1);
          QCOMPARE(hit.dataset, a);
          found = true;
        }
      }
    QVERIFY(found);
  }
};

QTEST_MAIN(TestScene)
#include "test_scene.moc"
