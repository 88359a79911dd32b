// The real window under Xvfb: search "CA1" in the region tree, show it, compare a screenshot of
// the 3D view with a stored baseline (with a tolerance), click the region in 3D and see it
// selected, change its opacity; a broken atlas file gives a message, not a crash.
#include "app/gui/AnimationExport.h"
#include "app/gui/AtlasComparePanel.h"
#include "app/gui/CellPanel.h"
#include "app/gui/ColumnMappingDialog.h"
#include "app/gui/FigureExport.h"
#include "app/gui/JobLocation.h"
#include "app/gui/MainWindow.h"
#include "app/gui/OpenAtlasDialog.h"
#include "app/gui/PdfExport.h"
#include "app/gui/PipelinePanel.h"
#include "app/gui/PreferencesDialog.h"
#include "app/gui/RegionMatchPanel.h"
#include "app/gui/RegionTreePanel.h"
#include "app/gui/RegionsAcrossPanel.h"
#include "app/gui/SectionView.h"
#include "app/gui/TrainingPanel.h"
#include "app/gui/VtkView.h"
#include "app/gui/WorkerJob.h"
#include "app/scene/SceneController.h"
#include "app/workspace/Workspace.h"
#include "core/AtlasCatalog.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/RegionCorrespondence.h"
#include "core/SyntheticBrain.h"
#include "tests/BrainGlobeFixtures.h"
#include "tests/TestPaths.h"
#include "tests/app/Widgets.h"
#include "viewer/CellCloud.h"
#include "viewer/SectionPlane.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QRadioButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QToolButton>
#include <QTreeView>
#include <QTreeWidget>
#include <QUndoStack>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QHorizontalBarSeries>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>

#include <vtkCamera.h>
#include <vtkImageData.h>
#include <vtkMapper.h>
#include <vtkPlaneCollection.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>
#include <vtkScalarBarActor.h>
#include <vtkWindowToImageFilter.h>

#include <filesystem>
#include <functional>

using namespace atlascope;
using namespace atlascope::app;
using namespace atlascope::app::test;

namespace {
// Shorthands over the window's workspace.
DatasetId current(MainWindow& w) { return w.workspace().currentDataset(); }
QString colouring(MainWindow& w) {
  const DatasetDocument* d = w.workspace().dataset(current(w));
  return d ? d->display.colourBy : QString();
}
// The display of the current dataset as a saved session has it.
QJsonObject savedDisplay(const QJsonObject& session) {
  for (const QJsonValue& v : session.value("datasets").toArray())
    if (v.toObject().value("id").toInt() == session.value("current_dataset").toInt())
      return v.toObject().value("display").toObject();
  return {};
}

bool isCa1Green(const QColor& c) { return c.green() > c.red() + 40 && c.green() > c.blue() + 60; }

// Share of pixels that differ by more than `threshold` in any channel.
double differingShare(const QImage& a, const QImage& b, int threshold) {
  long long differ = 0;
  for (int y = 0; y < a.height(); ++y)
    for (int x = 0; x < a.width(); ++x) {
      const QColor p = a.pixelColor(x, y), q = b.pixelColor(x, y);
      if (std::abs(p.red() - q.red()) > threshold || std::abs(p.green() - q.green()) > threshold ||
          std::abs(p.blue() - q.blue()) > threshold)
        ++differ;
    }
  return static_cast<double>(differ) / (static_cast<double>(a.width()) * a.height());
}
} // namespace

namespace {
// Pixels (every other row and column) of what `window` shows that differ from `renderer`'s
// background: "something is drawn here".
int drawnPixels(vtkRenderWindow* window, vtkRenderer* renderer) {
  auto grab = vtkSmartPointer<vtkWindowToImageFilter>::New();
  grab->SetInput(window);
  grab->ReadFrontBufferOff();
  grab->Update();
  vtkImageData* img = grab->GetOutput();
  double bg[3];
  renderer->GetBackground(bg);
  int dims[3], count = 0;
  img->GetDimensions(dims);
  for (int y = 0; y < dims[1]; y += 2)
    for (int x = 0; x < dims[0]; x += 2) {
      const auto* px = static_cast<unsigned char*>(img->GetScalarPointer(x, y, 0));
      if (std::abs(px[0] - bg[0] * 255) + std::abs(px[1] - bg[1] * 255) + std::abs(px[2] - bg[2] * 255) > 30) ++count;
    }
  return count;
}
} // namespace

class TestMainWindow : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

  // A small synthetic brain for the window tests.
  static void generateBrain(const QString& path, std::int64_t cells, int genes, int types, double density = 0) {
    SyntheticBrainOptions g;
    g.maxCells = cells;
    g.genes = genes;
    g.cellTypes = types;
    if (density > 0) g.cellsPerMm2 = density;
    generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, path.toStdString());
  }

  // Shows `w` and waits until its dataset's cells are in the view (callers return on failure).
  static void showUntilCellsShown(MainWindow& w, int width = 1280, int height = 800) {
    w.resize(width, height);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr, 120000);
  }

  // A second run cancelled as soon as it reports progress, then one killed midway (as by the
  // out-of-memory killer): each a clear message, the first result as it was, the window running,
  // and (workersLeft, when given) no worker process left.
  void cancelThenKill(MainWindow& w, PipelinePanel* p, const QString& result, const QDateTime& written,
                      const std::function<int()>& workersLeft) {
    child<QLineEdit>(p, "resolutionsEdit")->setText("6, 15, 30, 60, 120, 240");
    QSignalSpy started(p->job(), &WorkerJob::progress);
    p->run();
    QTRY_VERIFY_WITH_TIMEOUT(started.count() > 0, 60000);
    p->cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning(), 60000);
    QCOMPARE(p->lastError(), QString("cancelled"));
    if (workersLeft) QTRY_COMPARE_WITH_TIMEOUT(workersLeft(), 0, 20000);
    QCOMPARE(QFileInfo(result).lastModified(), written);
    QVERIFY(child<QPushButton>(p, "runButton")->isEnabled());
    QSignalSpy again(p->job(), &WorkerJob::progress);
    p->run();
    // The worker's own progress (on a host, its files are checked first: no worker yet to kill).
    auto workerProgress = [&again] {
      for (const auto& args : again)
        if (!args.at(0).toString().startsWith("checking") && !args.at(0).toString().startsWith("copying")) return true;
      return false;
    };
    QTRY_VERIFY_WITH_TIMEOUT(workerProgress(), 60000);
    p->job()->kill();
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning(), 60000);
    QVERIFY2(p->lastError().contains("stopped unexpectedly"), qPrintable(p->lastError()));
    if (workersLeft) QTRY_COMPARE_WITH_TIMEOUT(workersLeft(), 0, 20000);
    QCOMPARE(QFileInfo(result).lastModified(), written);
    QVERIFY(w.isVisible());
  }

private slots:
  // Preferences of the tests' own, never the user's (QSettings reads XDG_CONFIG_HOME once).
  void initTestCase() { qputenv("XDG_CONFIG_HOME", dir_.filePath("config").toUtf8()); }

  void searchShowScreenshotAndPick() {
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 180000);
    QVERIFY2(w.loadError().isEmpty(), qPrintable(w.loadError()));
    const StructureTree& tree = w.atlas()->structures();
    const int ca1 = *tree.indexOfAcronym("CA1");
    const int root = tree.root();
    RegionTreePanel* treePanel = panel<RegionTreePanel>(w);
    QVERIFY(treePanel->isChecked(root)); // the whole-brain shell is on at start
    QVERIFY(w.scene()->atlasScene().hasSurface(root));
    QCOMPARE(w.scene()->atlasScene().display(root).opacity, 0.2);

    // Search: only CA1 matches and their ancestors remain, expanded to the hits.
    QTest::keyClicks(child<QLineEdit>(treePanel, "regionSearch"), "CA1");
    const auto rows = treePanel->visibleRows();
    QVERIFY(std::find(rows.begin(), rows.end(), ca1) != rows.end());
    for (int i : rows) {
      const QString text = QString::fromStdString(tree[i].acronym + " " + tree[i].name).toLower();
      bool ancestorOfHit = false;
      for (int j : rows)
        if (j != i && tree.isAncestorOrSelf(i, j) && QString::fromStdString(tree[j].acronym).contains("CA1"))
          ancestorOfHit = true;
      QVERIFY2(text.contains("ca1") || ancestorOfHit, qPrintable(text));
    }
    QTreeView* view = child<QTreeView>(treePanel, "regionTree");
    const QModelIndexList found = view->model()->match(view->model()->index(0, 0), Qt::DisplayRole, "CA1", 1,
                                                       Qt::MatchExactly | Qt::MatchRecursive);
    QCOMPARE(found.size(), 1);
    const QModelIndex ca1Row = found.first();
    QVERIFY(ca1Row.isValid());
    QVERIFY(view->isExpanded(ca1Row.parent()));

    // Show it as a user would: select the row, press space on its check box.
    view->setCurrentIndex(ca1Row);
    QTest::keyClick(view, Qt::Key_Space);
    QVERIFY(treePanel->isChecked(ca1));
    QTRY_VERIFY_WITH_TIMEOUT(w.scene()->atlasScene().hasSurface(ca1) && w.isIdle(), 120000);
    QVERIFY(
        w.statusText().contains("CA1 — Field CA1 — id 382 — root / grey / CH / CTX / CTXpl / HPF / HIP / CA / CA1"));

    // Hide the starting divisions, clear the selection outline, look from the left.
    for (const char* a : {"STR", "TH", "HY", "CB"}) w.workspace().setStructureVisible(*tree.indexOfAcronym(a), false);
    view->setCurrentIndex({});
    QAction* left = w.findChild<QAction*>("camera_left");
    QVERIFY(left);
    left->trigger();
    QApplication::processEvents();
    const QString shot = dir_.filePath("ca1.png");
    w.saveViewImage(shot);
    const QImage img(shot);
    QCOMPARE(img.size(), w.viewPixels());
    int green = 0;
    QPoint greenAt;
    for (int y = 0; y < img.height(); ++y)
      for (int x = 0; x < img.width(); ++x)
        if (isCa1Green(img.pixelColor(x, y))) {
          ++green;
          if (greenAt.isNull() && x > 5 && y > 5) greenAt = QPoint(x, y);
        }
    QVERIFY2(green > 2000, qPrintable(QString("only %1 CA1-coloured pixels").arg(green)));

    // Against the stored baseline (llvmpipe on Xvfb, as in CI).
    const QString baseline = QStringLiteral(ATLASCOPE_SOURCE_DIR "/tests/app/baselines/main_window_ca1_left.png");
    if (qEnvironmentVariableIsSet("ATLASCOPE_UPDATE_BASELINES")) {
      QVERIFY(img.save(baseline));
      qWarning("baseline written: %s", qPrintable(baseline));
    }
    const QImage base(baseline);
    QVERIFY2(!base.isNull(), qPrintable("missing baseline " + baseline + " (run with ATLASCOPE_UPDATE_BASELINES=1)"));
    QCOMPARE(img.size(), base.size());
    const double share =
        differingShare(img.convertToFormat(QImage::Format_RGB32), base.convertToFormat(QImage::Format_RGB32), 40);
    if (share >= 0.02) img.save(QStringLiteral(ATLASCOPE_BINARY_DIR "/main_window_ca1_left.actual.png"));
    QVERIFY2(share < 0.02, qPrintable(QString("%1% of pixels differ from the baseline").arg(share * 100)));
    // A print figure at 4x: four times the pixels, and scaled back down, the same picture as the
    // baseline (rendered again at 4x, so edges and lines differ a little more).
    const QString shot4 = dir_.filePath("ca1-4x.png");
    w.saveViewImage(shot4, 4);
    const QImage img4(shot4);
    QCOMPARE(img4.size(), base.size() * 4);
    const QImage down =
        img4.scaled(base.size(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation).convertToFormat(QImage::Format_RGB32);
    const double share4 = differingShare(down, base.convertToFormat(QImage::Format_RGB32), 40);
    QVERIFY2(share4 < 0.05, qPrintable(QString("4x: %1% of pixels differ from the baseline").arg(share4 * 100)));

    // Click the region in 3D: the tree selects it and the status line names it.
    treePanel->select(root);
    QVERIFY(!w.statusText().contains("Field CA1"));
    QTest::mouseClick(child<VtkView>(w, "view3d"), Qt::LeftButton, {},
                      greenAt / child<VtkView>(w, "view3d")->devicePixelRatioF());
    QTRY_COMPARE(treePanel->selected().value_or(-1), ca1);
    QVERIFY(w.statusText().contains("Field CA1"));
    QCOMPARE(w.scene()->atlasScene().highlighted().value_or(-1), ca1);

    // Opacity of the selected region.
    auto* slider = treePanel->findChild<QSlider*>("regionOpacity");
    QVERIFY(slider && slider->isEnabled());
    slider->setValue(50);
    QCOMPARE(w.scene()->atlasScene().display(ca1).opacity, 0.5);

    // Unchecking hides.
    w.workspace().setStructureVisible(ca1, false);
    QVERIFY(!treePanel->isChecked(ca1));
    QVERIFY(!w.scene()->atlasScene().display(ca1).visible);
  }

  void cellsOpenColourAndPick() {
    // A small synthetic dataset: cells in CCF space, coloured by type, then by a gene.
    const QString data = dir_.filePath("cells.h5ad");
    generateBrain(data, 4000, 12, 10);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data};
    MainWindow w({}, o);
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr, 120000);
    QCOMPARE(w.cells()->size(), std::int64_t(4000));
    QVERIFY(w.cellCloud()->usesCcf());
    CellPanel* cellPanel = panel<CellPanel>(w);
    QCOMPARE(child<QListWidget>(cellPanel, "cellLegend")->count(), 10); // one entry per cell type
    // Hide the shell, look from the top where the section's cells face the camera.
    w.workspace().setStructureVisible(w.atlas()->structures().root(), false);
    w.scene()->applyCameraPreset(0, viewer::CameraPreset::Anterior, "Anterior");

    // Colour by a gene as a user does: choose "Gene", type the name, press Enter.
    child<QComboBox>(cellPanel, "cellColourBy")->setCurrentIndex(2);
    QTest::keyClicks(child<QLineEdit>(cellPanel, "cellGene"), "Gene0003");
    QTest::keyClick(child<QLineEdit>(cellPanel, "cellGene"), Qt::Key_Return);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cellCloud()->colourBar()->GetVisibility(), 60000);
    QCOMPARE(QString(w.cellCloud()->colourBar()->GetTitle()), QString("Gene0003"));
    const QString shot = dir_.filePath("cells.png");
    w.saveViewImage(shot);
    const QImage img(shot);
    int coloured = 0;
    QPoint at;
    for (int y = 0; y < img.height(); ++y)
      for (int x = 0; x < img.width() * 0.85; ++x) { // left of the colour bar
        const QColor c = img.pixelColor(x, y);
        if (c.saturation() > 80 && c.lightness() < 240) {
          ++coloured;
          if (at.isNull() && x > 10 && y > 10) at = QPoint(x, y);
        }
      }
    QVERIFY2(coloured > 300, qPrintable(QString("%1 coloured cell pixels").arg(coloured)));

    // Click a cell: its details (type, section, CCF structure, the gene's value) appear.
    QTest::mouseClick(child<VtkView>(w, "view3d"), Qt::LeftButton, {},
                      at / child<VtkView>(w, "view3d")->devicePixelRatioF());
    QTRY_VERIFY(w.statusText().contains("cell, row"));
    QVERIFY(w.statusText().contains("type"));
    QVERIFY(w.statusText().contains("CCF"));
    QVERIFY(w.statusText().contains("Gene0003"));

    // Any obs column: the generator's hidden sub-regions (ground truth), as a category.
    const int hidden = child<QComboBox>(cellPanel, "cellColourBy")->findText("hidden_subregion");
    QVERIFY(hidden > 2);
    child<QComboBox>(cellPanel, "cellColourBy")->setCurrentIndex(hidden);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && child<QListWidget>(cellPanel, "cellLegend")->count() >= 1, 30000);
    QVERIFY(!w.cellCloud()->colourBar()->GetVisibility());

    // Back to types; an unknown gene and a broken file are messages, not crashes.
    child<QComboBox>(cellPanel, "cellColourBy")->setCurrentIndex(0);
    QVERIFY(!w.cellCloud()->colourBar()->GetVisibility());
    // Filter by type: unchecking a legend entry hides exactly that type's cells (not pickable
    // either); checking it again shows every cell.
    const auto& types = w.cells()->cellType;
    const auto ofType0 = std::count(types.begin(), types.end(), 0);
    QVERIFY(ofType0 > 0);
    child<QListWidget>(cellPanel, "cellLegend")->item(0)->setCheckState(Qt::Unchecked);
    QCOMPARE(w.cellCloud()->visibleCount(), std::int64_t(4000 - ofType0));
    child<QListWidget>(cellPanel, "cellLegend")->item(0)->setCheckState(Qt::Checked);
    QCOMPARE(w.cellCloud()->visibleCount(), std::int64_t(4000));
    // Sections the same way (colour by section, uncheck one).
    child<QComboBox>(cellPanel, "cellColourBy")->setCurrentIndex(1);
    QCOMPARE(child<QListWidget>(cellPanel, "cellLegend")->count(), int(w.cells()->sectionNames.size()));
    child<QListWidget>(cellPanel, "cellLegend")->item(0)->setCheckState(Qt::Unchecked);
    const auto& sections = w.cells()->section;
    QCOMPARE(w.cellCloud()->visibleCount(), std::int64_t(4000 - std::count(sections.begin(), sections.end(), 0)));
    child<QComboBox>(cellPanel, "cellColourBy")->setCurrentIndex(0); // a new colouring shows every cell again
    QCOMPARE(w.cellCloud()->visibleCount(), std::int64_t(4000));
    // Level of detail: a camera drag draws at most the budget of cells, all of them again after.
    w.cellCloud()->setLodBudget(1000);
    const QPoint centre(child<VtkView>(w, "view3d")->width() / 2, child<VtkView>(w, "view3d")->height() / 2);
    QTest::mousePress(child<VtkView>(w, "view3d"), Qt::LeftButton, {}, centre);
    QTest::mouseMove(child<VtkView>(w, "view3d"), centre + QPoint(40, 10));
    QVERIFY2(w.cellCloud()->drawnCount() <= 1000 && w.cellCloud()->drawnCount() > 500,
             qPrintable(QString::number(w.cellCloud()->drawnCount())));
    QTest::mouseRelease(child<VtkView>(w, "view3d"), Qt::LeftButton, {}, centre + QPoint(40, 10));
    QCOMPARE(w.cellCloud()->drawnCount(), std::int64_t(4000));
    w.cellCloud()->setLodBudget(1'000'000);

    // Opening another dataset, cancelled while it is read: the open one stays.
    const QString other = dir_.filePath("other.h5ad");
    generateBrain(other, 1500, 6, 8);
    w.openDataset(other);
    QVERIFY(w.findChild<QToolButton*>("cancelDatasetLoading")->isVisible());
    QTest::mouseClick(w.findChild<QToolButton*>("cancelDatasetLoading"), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 30000);
    QCOMPARE(w.cells()->size(), std::int64_t(4000));
    QVERIFY(!w.findChild<QToolButton*>("cancelDatasetLoading")->isVisible());
    w.workspace().setColourBy(current(w), "gene:NoSuchGene");
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    w.openDataset(dir_.filePath("missing.h5ad"));
    QTRY_VERIFY_WITH_TIMEOUT(!w.datasetError().isEmpty(), 30000);
    QVERIFY(w.datasetError().contains("missing.h5ad"));
    QCOMPARE(w.cells()->size(), std::int64_t(4000)); // the open dataset stays
  }

  // A CSV table through the column-mapping dialog: the real MERFISH slice (pos_x/pos_y, an index,
  // 254 gene columns, no section or type) is recognised as it is; the mapping opens it.
  void csvThroughTheColumnMapping() {
    REQUIRE_SHARED("data/merfish/zhuang_mop_slice1.csv");
    const QString csv = atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv");
    ColumnMappingDialog d(csv);
    QVERIFY(d.error().isEmpty());
    QCOMPARE(child<QComboBox>(d, "xBox")->currentText(), QString("pos_x"));
    QCOMPARE(child<QComboBox>(d, "yBox")->currentText(), QString("pos_y"));
    QCOMPARE(child<QComboBox>(d, "sectionBox")->currentText(), QString("(none)"));
    const ColumnOptions c = d.columns();
    QCOMPARE(c.x, std::string("pos_x"));
    QCOMPARE(c.section, std::string("-"));
    child<QComboBox>(d, "yBox")->setCurrentText("pos_x"); // the same column twice cannot be accepted
    bool openEnabled = true;
    for (QPushButton* b : d.findChildren<QPushButton*>())
      if (b->text() == "Open") openEnabled = b->isEnabled();
    QVERIFY(!openEnabled);
    StartupPatch o;
    o.show = QStringList{};
    MainWindow w({}, o);
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 120000);
    w.openDataset(csv, c);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr, 60000);
    QCOMPARE(w.cells()->size(), std::int64_t(2109));
    QCOMPARE(int(w.cells()->genes.size()), 254);
    QCOMPARE(int(w.cells()->sectionNames.size()), 1);
    w.workspace().setColourBy(current(w), "gene:Aqp4"); // read with the same mapping
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cellCloud()->colourBar()->GetVisibility(), 60000);
  }

  void discoverRegionsThroughTheWorker() {
    // The region step as the user runs it: the panel starts `atlascope-cli segment` as a worker
    // process; the result opens coloured by regions; a second run cancelled midway keeps the
    // first result; a worker killed midway leaves the window running with a clear message.
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    qputenv("ATLASCOPE_WORKER", ATLASCOPE_CLI);
    const QString data = dir_.filePath("regions.h5ad");
    generateBrain(data, 6000, 8, 12);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    PipelinePanel* p = panel<PipelinePanel>(w);
    QVERIFY(child<QPushButton>(p, "runButton")->isEnabled());
    child<QLineEdit>(p, "resolutionsEdit")->setText("6, 15");
    child<QComboBox>(p, "deviceBox")->setCurrentText("cpu");
    QTest::mouseClick(child<QPushButton>(p, "runButton"), Qt::LeftButton);
    QVERIFY(p->isRunning());
    const QString result = PipelinePanel::resultPathFor(data);
    // The result opens: the cells coloured by the coarsest resolution, its legend one entry per region.
    QTRY_VERIFY_WITH_TIMEOUT(
        !p->isRunning() && w.isIdle() && child<QListWidget>(panel<CellPanel>(w), "cellLegend")->count() == 6, 120000);
    QVERIFY2(p->lastError().isEmpty(), qPrintable(p->lastError()));
    QVERIFY(QFileInfo::exists(result));
    QVERIFY(child<QPlainTextEdit>(p, "log")->toPlainText().contains("AMI vs ccf_major"));
    // The scores table: a row per k, AMI against the CCF between 0 and 1.
    QTableWidget* scores = child<QTableWidget>(p, "scoresTable");
    QCOMPARE(scores->rowCount(), 2);
    QCOMPARE(scores->horizontalHeaderItem(1)->text(), QString("AMI ccf_major"));
    const double ami = scores->item(0, 1)->data(Qt::DisplayRole).toDouble();
    QVERIFY2(ami > 0 && ami <= 1, qPrintable(QString::number(ami)));
    // The same scores against k as a chart (a line per score, a point per k) and as CSV.
    const auto series = child<QChartView>(p, "scoresChart")->chart()->series();
    QVERIFY(series.size() >= 2);
    auto* amiLine = qobject_cast<QLineSeries*>(series.first());
    QVERIFY(amiLine && amiLine->name() == "AMI ccf_major" && amiLine->count() == 2);
    QCOMPARE(amiLine->at(0).x(), 6.0);
    const QString csv = dir_.filePath("scores.csv");
    QVERIFY(p->writeScoresCsv(csv));
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 3);
    QVERIFY(lines[0].startsWith("k,AMI ccf_major"));
    // Vector figures: the chart and the legend as PDF.
    for (const auto& [pdf, ok] :
         {std::pair<QString, bool>{dir_.filePath("scores.pdf"), p->writeScoresChartPdf(dir_.filePath("scores.pdf"))},
          {dir_.filePath("legend.pdf"),
           writeWidgetPdf(child<QListWidget>(panel<CellPanel>(w), "cellLegend"), dir_.filePath("legend.pdf"))}}) {
      QVERIFY2(ok, qPrintable(pdf));
      QFile out(pdf);
      QVERIFY(out.open(QIODevice::ReadOnly));
      QVERIFY(out.read(5) == "%PDF-");
      QVERIFY(out.size() > 1000);
    }
    const QDateTime written = QFileInfo(result).lastModified();

    // The discovered regions beside the CCF tree: the resolutions, the regions, and for a
    // selected region its CCF matches (table + overlap bars) with only its cells drawn; for a CCF
    // structure, the regions that split it.
    RegionMatchPanel* m = panel<RegionMatchPanel>(w);
    QVERIFY(w.findChild<QDockWidget*>("regionMatchDock")->isVisible());
    QCOMPARE(child<QComboBox>(m, "resolution")->count(), 2);
    QCOMPARE(child<QComboBox>(m, "resolution")->currentText(), QString("regions_k6"));
    QTRY_VERIFY_WITH_TIMEOUT(m->hasMatches() && child<QListWidget>(m, "discoveredRegions")->count() > 0, 60000);
    QVERIFY(child<QListWidget>(m, "discoveredRegions")->count() <= 6);
    const int code = child<QListWidget>(m, "discoveredRegions")->item(0)->data(Qt::UserRole).toInt();
    child<QListWidget>(m, "discoveredRegions")->setCurrentRow(0);
    QCOMPARE(m->selectedRegion(), code);
    QVERIFY(child<QTableWidget>(m, "ccfMatches")->rowCount() > 0);
    double shares = 0;
    for (int r = 0; r < child<QTableWidget>(m, "ccfMatches")->rowCount(); ++r) {
      const double j = child<QTableWidget>(m, "ccfMatches")->item(r, 1)->data(Qt::DisplayRole).toDouble();
      QVERIFY2(j > 0 && j <= 1, qPrintable(QString::number(j)));
      shares += child<QTableWidget>(m, "ccfMatches")->item(r, 2)->data(Qt::DisplayRole).toDouble();
    }
    QVERIFY2(shares > 0.3 && shares <= 1.001,
             qPrintable(QString::number(shares))); // the top matches hold most of the region
    QCOMPARE(child<QChartView>(m, "overlapChart")->chart()->series().size(), 1);
    auto* bars = qobject_cast<QHorizontalBarSeries*>(child<QChartView>(m, "overlapChart")->chart()->series().first());
    QVERIFY(bars && bars->barSets().first()->count() == child<QTableWidget>(m, "ccfMatches")->rowCount());
    std::int64_t inRegion = 0;
    {
      const ObsLabels labels = readObsLabels(result.toStdString(), "regions_k6");
      for (std::int32_t c : labels.codes) inRegion += c == code;
    }
    QCOMPARE(static_cast<std::int64_t>(w.cellCloud()->visibleCount()), inRegion);
    // The best match's CCF structure, selected in the atlas tree: the split list names the region.
    int topRow = 0;
    for (int r = 0; r < child<QTableWidget>(m, "ccfMatches")->rowCount(); ++r)
      if (child<QTableWidget>(m, "ccfMatches")->item(r, 1)->data(Qt::DisplayRole).toDouble() >
          child<QTableWidget>(m, "ccfMatches")->item(topRow, 1)->data(Qt::DisplayRole).toDouble())
        topRow = r;
    panel<RegionTreePanel>(w)->select(
        child<QTableWidget>(m, "ccfMatches")->item(topRow, 0)->data(Qt::UserRole).toInt());
    QVERIFY2(child<QLabel>(m, "ccfSplits")->text().contains("is split into"),
             qPrintable(child<QLabel>(m, "ccfSplits")->text()));
    const QString regionName = child<QListWidget>(m, "discoveredRegions")->item(0)->text().section(" — ", 0, 0);
    QVERIFY2(child<QLabel>(m, "ccfSplits")->text().contains(regionName),
             qPrintable(child<QLabel>(m, "ccfSplits")->text() + " / " + regionName));
    // Sessions keep the highlighted region and the 2D view (older files: none, hidden).
    w.findChild<QDockWidget*>("sectionDock")->show();
    const QJsonObject saved = w.captureSession();
    QCOMPARE(savedDisplay(saved).value("highlighted_region").toInt(), code);
    QVERIFY(saved.value("section_view").toBool());
    m->selectRegion(-1);
    QCOMPARE(static_cast<std::int64_t>(w.cellCloud()->visibleCount()),
             static_cast<std::int64_t>(w.cellCloud()->size()));
    w.applySession(saved); // every dataset read again, the highlighted region with it
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cellCloud() && m->hasMatches() && m->selectedRegion() == code, 60000);
    QCOMPARE(static_cast<std::int64_t>(w.cellCloud()->visibleCount()), inRegion);
    w.findChild<QDockWidget*>("sectionDock")->hide();
    m->selectRegion(-1);
    // The same regions against a second atlas of the CCF's space (the CCF coarsened to depth 3):
    // its structures in the table; closed, the matches are the window's atlas's again.
    if (brainGlobeSupported()) {
      const Atlas ccf = Atlas::load(bundledAtlasPaths());
      fixtures::WriteOptions coarse;
      coarse.name = "ccf_depth3";
      const std::string v1 = fixtures::writeV1(dir_.filePath("bg3").toStdString(),
                                               fixtures::coarsened(fixtures::downsample(ccf, 4), ccf.structures(), 3),
                                               ccf.structures(), coarse);
      const AtlasId k = w.workspace().addAtlas(QString::fromStdString(v1));
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.workspace().atlas(k)->loaded, 60000);
      auto* against = child<QComboBox>(m, "matchAtlas");
      QVERIFY(!against->isHidden());
      QCOMPARE(against->count(), 2);
      against->setCurrentIndex(1);
      emit against->activated(1);
      QTRY_VERIFY_WITH_TIMEOUT(m->hasMatches() && w.isIdle(), 60000);
      child<QListWidget>(m, "discoveredRegions")->setCurrentRow(0);
      auto* table = child<QTableWidget>(m, "ccfMatches");
      QVERIFY(table->rowCount() > 0);
      QCOMPARE(table->horizontalHeaderItem(0)->text(), QString("ccf_depth3_100um structure"));
      for (int r = 0; r < table->rowCount(); ++r)
        QVERIFY(w.engine().atlas(k)->structures()[table->item(r, 0)->data(Qt::UserRole).toInt()].depth <= 3);
      m->selectRegion(-1);
      w.workspace().closeAtlas(k);
      QTRY_VERIFY_WITH_TIMEOUT(m->hasMatches() && w.isIdle() && against->isHidden(), 60000);
      QCOMPARE(table->horizontalHeaderItem(0)->text(), QString("Allen CCF structure"));
      QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    }
    // Another resolution from the dock recolours the cells.
    child<QComboBox>(m, "resolution")->setCurrentIndex(1);
    emit child<QComboBox>(m, "resolution")->activated(1);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && colouring(w) == "regions_k15" && m->hasMatches() &&
                                 child<QListWidget>(m, "discoveredRegions")->count() > 6,
                             60000);
    // The tree across resolutions: k6's regions on top, k15's under the k6 region holding most
    // of their cells; clicking a k15 region from k6 shows it at k15, selected.
    QTreeWidget* h = child<QTreeWidget>(m, "regionHierarchy");
    QTRY_VERIFY_WITH_TIMEOUT(h->topLevelItemCount() > 0, 60000);
    int nodes = 0;
    QTreeWidgetItem* finer = nullptr;
    for (int i = 0; i < h->topLevelItemCount(); ++i) {
      nodes += 1 + h->topLevelItem(i)->childCount();
      if (!finer && h->topLevelItem(i)->childCount() > 0) finer = h->topLevelItem(i)->child(0);
    }
    QVERIFY(h->topLevelItemCount() <= 6 && nodes > h->topLevelItemCount() && finer);
    QCOMPARE(finer->data(0, Qt::UserRole).toString(), QString("regions_k15"));
    w.workspace().setColourBy(current(w), "regions_k6");
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && colouring(w) == "regions_k6" && m->hasMatches(), 60000);
    emit h->itemClicked(finer, 0);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && colouring(w) == "regions_k15" &&
                                 m->selectedRegion() == finer->data(0, Qt::UserRole + 1).toInt(),
                             60000);
    m->selectRegion(-1);
    w.workspace().setColourBy(current(w), "regions_k6");
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && colouring(w) == "regions_k6", 60000);

    // The regions as surfaces (View > Region surfaces): built in the background, one per region
    // that reaches the voxel grid, drawn with the cells; they follow the colouring to another k.
    QAction* surfaces = w.findChild<QAction*>("view_region_surfaces");
    QVERIFY(surfaces);
    surfaces->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(w.scene()->regionSurfaceCount(current(w)) > 0 && w.isIdle(), 120000);
    QVERIFY(w.scene()->regionSurfaceCount(current(w)) <= 6);
    const int coarse = w.scene()->regionSurfaceCount(current(w));
    // Picking a region surface (cells hidden, so that clicks reach the surfaces) selects that
    // region everywhere: the dock's list, its matches, its cells alone.
    {
      w.cellCloud()->actor()->SetVisibility(0);
      vtkRenderer* ren = w.scene()->renderer(0);
      const CellTable* cells = w.cells();
      int picked = -1;
      for (std::int64_t i = 0; i < cells->size() && picked < 0; i += std::max<std::int64_t>(1, cells->size() / 60)) {
        const auto k = static_cast<std::size_t>(i);
        ren->SetWorldPoint(cells->ccfAp[k], cells->ccfDv[k], cells->ccfMl[k], 1.0);
        ren->WorldToDisplay();
        double d[3];
        ren->GetDisplayPoint(d);
        emit child<VtkView>(w, "view3d")->clicked(static_cast<int>(d[0]), static_cast<int>(d[1]));
        picked = m->selectedRegion();
      }
      QVERIFY2(picked >= 0, "no click reached a region surface");
      QVERIFY(child<QTableWidget>(m, "ccfMatches")->rowCount() > 0);
      const ObsLabels labels = readObsLabels(result.toStdString(), "regions_k6");
      std::int64_t n = 0;
      for (std::int32_t c : labels.codes) n += c == picked;
      QCOMPARE(static_cast<std::int64_t>(w.cellCloud()->visibleCount()), n);
      m->selectRegion(-1);
      w.cellCloud()->actor()->SetVisibility(1);
    }
    w.workspace().setColourBy(current(w), "regions_k15");
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.scene()->regionSurfaceCount(current(w)) > coarse, 120000);
    surfaces->trigger();
    QCOMPARE(w.scene()->regionSurfaceCount(current(w)), 0);

    cancelThenKill(w, p, result, written, {});
  }

  // The same job on a worker host through ssh (scripts/test starts an OpenSSH server on loopback,
  // key-based): the result arrives; cancel reaches the remote worker (it stops and the first result
  // stays); a worker killed there leaves the window running with a clear message.
  void discoverRegionsThroughSsh() {
    if (qEnvironmentVariableIsSet("ATLASCOPE_TEST_SSH_ERROR"))
      QFAIL(qPrintable(qEnvironmentVariable("ATLASCOPE_TEST_SSH_ERROR")));
    const QString host = qEnvironmentVariable("ATLASCOPE_TEST_SSH_HOST");
    if (host.isEmpty()) QSKIP("no OpenSSH server on loopback (scripts/test starts one: ATLASCOPE_TEST_SSH_HOST)");
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    qputenv("ATLASCOPE_WORKER", ATLASCOPE_CLI);
    qputenv("ATLASCOPE_WORKER_HOST", host.toUtf8());
    qputenv("ATLASCOPE_SSH_CONFIG", qgetenv("ATLASCOPE_TEST_SSH_CONFIG"));
    struct Unset {
      ~Unset() {
        qunsetenv("ATLASCOPE_WORKER_HOST");
        qunsetenv("ATLASCOPE_SSH_CONFIG");
      }
    } unset;
    const QString data = dir_.filePath("remote.h5ad");
    generateBrain(data, 6000, 8, 12);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    PipelinePanel* p = panel<PipelinePanel>(w);
    child<QLineEdit>(p, "resolutionsEdit")->setText("6");
    child<QComboBox>(p, "deviceBox")->setCurrentText("cpu");
    p->run();
    // (the job starts once the host said it sees the dataset under the same path)
    QTRY_VERIFY_WITH_TIMEOUT(p->job()->commandLine().startsWith("ssh " + host), 30000);
    const QString result = PipelinePanel::resultPathFor(data);
    QTRY_VERIFY_WITH_TIMEOUT(
        !p->isRunning() && w.isIdle() && child<QListWidget>(panel<CellPanel>(w), "cellLegend")->count() == 6, 120000);
    QVERIFY2(p->lastError().isEmpty(), qPrintable(p->lastError()));
    const QDateTime written = QFileInfo(result).lastModified();

    // Cancel: SIGTERM to the remote worker by its process id; kill: SIGKILL there. Neither
    // leaves a worker running.
    auto remoteWorkers = [&] {
      QProcess pgrep;
      pgrep.start("pgrep", {"-f", "segment.*" + QRegularExpression::escape(data)});
      pgrep.waitForFinished(10000);
      return QString::fromUtf8(pgrep.readAllStandardOutput()).split('\n', Qt::SkipEmptyParts).size();
    };
    cancelThenKill(w, p, result, written, remoteWorkers);
  }

  // Edit > Preferences decides where jobs run: "Test" asks the worker there what it has; a worker
  // with several GPUs gets a "GPUs" field whose value reaches the command line; a host that does
  // not see this machine's files gets copies (and the result comes back); one that does works in
  // place. The environment variables, when set, override the preferences.
  void jobsRunWhereThePreferencesSay() {
    for (const char* v : {"ATLASCOPE_WORKER_HOST", "ATLASCOPE_WORKER", "ATLASCOPE_SSH_CONFIG"}) qunsetenv(v);
    struct Forget { // the next tests run where the environment says
      ~Forget() { QSettings().remove("jobs"); }
    } forget;
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    const QString data = dir_.filePath("prefs.h5ad");
    generateBrain(data, 6000, 8, 12);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;

    auto openPreferences = [&w] {
      w.findChild<QAction*>("preferences")->trigger();
      auto* d = w.findChild<PreferencesDialog*>("preferencesDialog");
      if (!d) qFatal("Edit > Preferences did not open the dialog");
      return d;
    };
    // A worker program on this machine (the CUDA build's slot): Test shows what it runs on.
    {
      PreferencesDialog* d = openPreferences();
      child<QRadioButton>(d, "jobs_cuda")->click();
      child<QLineEdit>(d, "jobs_cuda_program")->setText(ATLASCOPE_CLI);
      QSignalSpy tested(d, &PreferencesDialog::tested);
      QTest::mouseClick(child<QPushButton>(d, "jobs_test"), Qt::LeftButton);
      QVERIFY(tested.wait(60000));
      QVERIFY2(tested.first().first().toBool(), qPrintable(d->testResult()));
      QVERIFY2(d->testResult().contains("LibTorch") && d->testResult().contains("CPU threads"),
               qPrintable(d->testResult()));
      d->accept();
    }
    QCOMPARE(JobLocation::current().kind, JobLocation::Kind::ThisCuda);
    QCOMPARE(JobLocation::current().cudaProgram, QString(ATLASCOPE_CLI));
    // A worker with no such program: a clear failure in the dialog, nothing saved.
    {
      PreferencesDialog* d = openPreferences();
      child<QLineEdit>(d, "jobs_cuda_program")->setText(dir_.filePath("no-such-cli"));
      QSignalSpy tested(d, &PreferencesDialog::tested);
      d->test();
      QVERIFY(tested.wait(60000));
      QVERIFY(!tested.first().first().toBool());
      QVERIFY2(d->testResult().contains("no-such-cli"), qPrintable(d->testResult()));
      d->reject();
    }
    QCOMPARE(JobLocation::current().cudaProgram, QString(ATLASCOPE_CLI));

    // Several GPUs there (as a Test on a GPU server records them): the field appears and the job
    // runs as that many ranks; this machine has none, so the worker says so.
    PipelinePanel* p = panel<PipelinePanel>(w);
    QVERIFY(!child<QSpinBox>(p, "gpusBox")->isVisibleTo(p));
    {
      QSettings s;
      s.setValue("jobs/gpus", 2);
    }
    p->refreshJobLocation();
    QVERIFY(child<QSpinBox>(p, "gpusBox")->isVisibleTo(p));
    QCOMPARE(child<QSpinBox>(p, "gpusBox")->value(), 2); // every GPU unless the user chooses fewer
    child<QLineEdit>(p, "resolutionsEdit")->setText("6");
    child<QComboBox>(p, "deviceBox")->setCurrentText("cuda");
    p->run();
    QVERIFY2(p->job()->commandLine().contains("--gpus 2"), qPrintable(p->job()->commandLine()));
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning(), 60000);
    QVERIFY2(p->lastError().contains("GPU", Qt::CaseInsensitive) ||
                 p->lastError().contains("cuda", Qt::CaseInsensitive),
             qPrintable(p->lastError()));
    {
      QSettings s;
      s.setValue("jobs/gpus", 0);
    }
    p->refreshJobLocation();
    QVERIFY(!child<QSpinBox>(p, "gpusBox")->isVisibleTo(p));
    child<QComboBox>(p, "deviceBox")->setCurrentText("cpu");

    const QString host = qEnvironmentVariable("ATLASCOPE_TEST_SSH_HOST");
    if (host.isEmpty()) QSKIP("no OpenSSH server on loopback (scripts/test starts one: ATLASCOPE_TEST_SSH_HOST)");
    // A host that does not share the files (forced here: loopback sees them): the dataset is
    // copied into the job folder there, the job runs on the copy, the result comes back.
    const QString jobs = dir_.filePath("remote-jobs");
    {
      PreferencesDialog* d = openPreferences();
      child<QRadioButton>(d, "jobs_ssh")->click();
      child<QLineEdit>(d, "jobs_host")->setText(host);
      child<QLineEdit>(d, "jobs_remote_program")->setText(ATLASCOPE_CLI);
      child<QLineEdit>(d, "jobs_ssh_config")->setText(qEnvironmentVariable("ATLASCOPE_TEST_SSH_CONFIG"));
      child<QLineEdit>(d, "jobs_job_folder")->setText(jobs);
      child<QCheckBox>(d, "jobs_always_copy")->setChecked(true);
      QSignalSpy tested(d, &PreferencesDialog::tested);
      d->test();
      QVERIFY(tested.wait(60000));
      QVERIFY2(tested.first().first().toBool(), qPrintable(d->testResult()));
      d->accept();
    }
    const QString result = PipelinePanel::resultPathFor(data);
    QFile::remove(result);
    QSignalSpy progress(p->job(), &WorkerJob::progress);
    p->run();
    QTRY_VERIFY_WITH_TIMEOUT(
        !p->isRunning() && w.isIdle() && child<QListWidget>(panel<CellPanel>(w), "cellLegend")->count() == 6, 120000);
    QVERIFY2(p->lastError().isEmpty(), qPrintable(p->lastError()));
    QVERIFY2(p->job()->commandLine().contains(jobs), qPrintable(p->job()->commandLine()));
    bool copying = false;
    for (const auto& args : progress) copying |= args.at(0).toString().startsWith("copying");
    QVERIFY(copying);
    QVERIFY(QFileInfo::exists(result)); // back beside the dataset
    const QStringList copies = QDir(jobs).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(copies.size(), 1);
    QVERIFY(QFileInfo::exists(QDir(jobs).filePath(copies.first() + "/prefs.h5ad")));
    QCOMPARE(QFileInfo(QDir(jobs).filePath(copies.first() + "/prefs.h5ad")).size(), QFileInfo(data).size());

    // The same host seeing the same files: the job works on them in place.
    {
      QSettings s;
      s.setValue("jobs/always_copy", false);
    }
    const QDateTime before = QFileInfo(result).lastModified();
    QTest::qWait(1100); // a later modification time
    p->run();
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning(), 120000);
    QVERIFY2(p->lastError().isEmpty(), qPrintable(p->lastError()));
    QVERIFY2(!p->job()->commandLine().contains(jobs) && p->job()->commandLine().contains(data),
             qPrintable(p->job()->commandLine()));
    QVERIFY(QFileInfo(result).lastModified() > before);

    // A dataset of several files (a folder) is not copied: a host that would need a copy gets a
    // clear refusal before anything runs.
    const QString folder = dir_.filePath("slices");
    QVERIFY(QDir().mkpath(folder));
    QVERIFY(QFile::copy(data, folder + "/slice1.h5ad"));
    WorkerHost remote;
    remote.host = host;
    remote.program = ATLASCOPE_CLI;
    remote.sshConfig = qEnvironmentVariable("ATLASCOPE_TEST_SSH_CONFIG");
    remote.jobFolder = jobs;
    remote.alwaysCopy = true;
    WorkerJob job(remote);
    QSignalSpy failed(&job, &WorkerJob::failed);
    job.start({"celltypes", folder, "--out", dir_.filePath("slices.typed.h5ad")},
              JobFiles{{folder}, {dir_.filePath("slices.typed.h5ad")}});
    QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, 30000);
    QVERIFY2(failed.first().first().toString().contains("several files"),
             qPrintable(failed.first().first().toString()));
    QVERIFY(!QFileInfo::exists(dir_.filePath("slices.typed.h5ad")));
  }

  // File > Open atlas lists the BrainGlobe atlases of the user's BrainGlobe folder (found through
  // $BRAINGLOBE_CONFIG_DIR/bg_config.conf, as brainglobe-atlasapi does); `atlascope --atlas` opens
  // one (here a v1 folder written from the CCF at 100 um) and draws it.
  void openAtlasListsBrainGlobeAndOpensOne() {
    if (!brainGlobeSupported()) QSKIP("this build reads no BrainGlobe atlases");
    namespace fs = std::filesystem;
    const std::string bg = dir_.filePath("bg").toStdString(), config = dir_.filePath("bgconfig").toStdString();
    const Atlas ccf = Atlas::load(bundledAtlasPaths());
    const std::string v1 = fixtures::writeV1(bg, fixtures::downsample(ccf, 4), ccf.structures());
    fixtures::writeText(fs::path(config) / "bg_config.conf", "[default_dirs]\nbrainglobe_dir = " + bg + "\n");
    qputenv("BRAINGLOBE_CONFIG_DIR", QByteArray::fromStdString(config));
    struct Unset {
      ~Unset() { qunsetenv("BRAINGLOBE_CONFIG_DIR"); }
    } unset;
    {
      OpenAtlasDialog d;
      d.show();
      QVERIFY(QTest::qWaitForWindowExposed(&d));
      QCOMPARE(d.listed(), 1);
      auto* list = child<QListWidget>(d, "cachedAtlases");
      QVERIFY2(list->item(0)->text().startsWith("allen_mouse_100um"), qPrintable(list->item(0)->text()));
      list->setCurrentRow(0);
      QTest::mouseClick(d.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Open), Qt::LeftButton);
      QCOMPARE(d.chosen(), QString::fromStdString(v1));
    }
    const QString shot = dir_.filePath("brainglobe.png");
    QProcess p;
    p.start(ATLASCOPE_GUI_BIN, {"--atlas", "allen_mouse_100um", "--show", "CB", "--size", "800x600", "--screenshot",
                                shot, "--cache-dir", dir_.filePath("bgcache")});
    QVERIFY(p.waitForFinished(180000));
    QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0,
             qPrintable(QString("exit %1: %2").arg(p.exitCode()).arg(QString::fromUtf8(p.readAllStandardError()))));
    const QImage img(shot);
    QVERIFY(!img.isNull());
    // The brain's shell and the cerebellum drawn: colours that are not the background's.
    const QColor background = img.pixelColor(2, img.height() / 2);
    int drawn = 0;
    for (int y = 0; y < img.height(); y += 4)
      for (int x = 0; x < img.width(); x += 4) drawn += img.pixelColor(x, y) != background;
    QVERIFY2(drawn > 500, qPrintable(QString("%1 pixels drawn").arg(drawn)));
    // A wrong name: a clear error, no window left behind.
    p.start(ATLASCOPE_GUI_BIN, {"--atlas", "no_such_atlas_25um", "--screenshot", dir_.filePath("none.png")});
    QVERIFY(p.waitForFinished(120000));
    QVERIFY(p.exitCode() != 0);
    QVERIFY2(QString::fromUtf8(p.readAllStandardError()).contains("no_such_atlas_25um"), "the error names the atlas");
  }

  void twoAtlasesSideBySideInOneWorkspace() {
    // The CCF and a BrainGlobe atlas (the CCF at 100 um coarsened to depth 5, written by the
    // test) in one window: a tab and a view each, one camera, their own structures, the
    // atlas's own mesh for its root, its template on the section and in the 2D view, closed and
    // opened again by undo, and back from a session.
    if (!brainGlobeSupported()) QSKIP("this build reads no BrainGlobe atlases");
    const Atlas ccf = Atlas::load(bundledAtlasPaths());
    const auto grid = fixtures::downsample(ccf, 4);
    fixtures::WriteOptions options;
    options.name = "ccf_depth5";
    const std::string v1 = fixtures::writeV1(dir_.filePath("bg2").toStdString(),
                                             fixtures::coarsened(grid, ccf.structures(), 5), ccf.structures(), options);
    StartupPatch o;
    o.show = QStringList{"CB"};
    o.atlases = {QString::fromStdString(v1)};
    MainWindow w({}, o);
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    Workspace& ws = w.workspace();
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && ws.atlasIds().size() == 2 && ws.atlas(ws.atlasIds()[1])->loaded, 120000);
    const AtlasId k = ws.atlasIds()[1];
    QCOMPARE(ws.atlas(k)->name, QString("ccf_depth5_100um"));
    QCOMPARE(ws.columns(), 2);
    QCOMPARE(ws.view(1).layers, QStringList{atlasLayer(k)});
    QVERIFY(ws.viewLinked(1));
    auto* tabs = child<QTabWidget>(w, "atlasTabs");
    QCOMPARE(tabs->count(), 2);
    QCOMPARE(tabs->tabText(1), QString("ccf_depth5_100um"));
    // The window's atlas shows CB; the new one the same structure in its own tree, and its shell.
    const Atlas* other = w.engine().atlas(k);
    const int cb = *other->structures().find("CB");
    QVERIFY(ws.structureDisplay(k, cb).visible);
    QVERIFY(w.scene()->atlasScene(k)->hasSurface(cb));
    QVERIFY(w.scene()->atlasScene(k)->hasSurface(other->structures().root()));
    QVERIFY(child<RegionTreePanel>(w, QStringLiteral("atlasTree%1").arg(k).toLatin1().constData())->isChecked(cb));
    // Both views draw: pixels other than the background's in each half.
    w.renderNow();
    const QImage img = grabImage(w.renderWindow());
    auto drawn = [&img](int x0, int x1) {
      const QColor background = img.pixelColor(x0 + 2, 2);
      int n = 0;
      for (int y = 0; y < img.height(); y += 4)
        for (int x = x0; x < x1; x += 4) n += img.pixelColor(x, y) != background;
      return n;
    };
    QVERIFY2(drawn(0, img.width() / 2) > 300, "the CCF's view draws");
    QVERIFY2(drawn(img.width() / 2, img.width()) > 300, "the second atlas's view draws");
    // A structure chosen in the second tab is outlined in its atlas, named with it.
    child<RegionTreePanel>(w, QStringLiteral("atlasTree%1").arg(k).toLatin1().constData())->select(cb);
    QCOMPARE(w.scene()->atlasScene(k)->highlighted().value_or(-1), cb);
    QVERIFY(!w.scene()->atlasScene().highlighted());
    QVERIFY2(w.statusText().contains("ccf_depth5_100um: CB"), qPrintable(w.statusText()));
    // Its template: on the section plane in 3D and under the 2D view; the CCF ships none.
    QVERIFY(!child<QCheckBox>(w, "templateCheck0")->isEnabled());
    auto* templateBox = child<QCheckBox>(w, QStringLiteral("templateCheck%1").arg(k).toLatin1().constData());
    QVERIFY(templateBox->isEnabled());
    templateBox->click();
    QVERIFY(ws.atlas(k)->templateShown);
    QVERIFY(w.scene()->templateDrawn(k));
    ws.setSection({"coronal", 6000, 200});
    QVERIFY(w.scene()->templateDrawn(k));
    QVERIFY(panel<SectionView>(w)->templateDrawn());
    ws.undoStack()->undo(); // the section
    ws.undoStack()->undo(); // the template
    QVERIFY(!w.scene()->templateDrawn(k));
    QVERIFY(!templateBox->isChecked());
    templateBox->click(); // on the same plane again
    QVERIFY(w.scene()->templateDrawn(k));
    ws.undoStack()->undo();
    // The 2D view draws both atlases' boundaries on its plane, the second in its own colour (orange)
    // and named in a legend; its "2D boundaries" box hides them, undoably.
    auto* sv = panel<SectionView>(w);
    ws.setSection({"coronal", 6000, 200});
    const auto sets = sv->boundarySets();
    QCOMPARE(sets.size(), std::size_t(2));
    QCOMPARE(sets[0].first, QString("Allen CCF"));
    QCOMPARE(sets[1].first, QString("ccf_depth5_100um"));
    // The coarsened atlas at 100 um: boundaries, fewer than the CCF's at 25 um and depth 10.
    QVERIFY2(sets[1].second > 20 && sets[1].second < sets[0].second,
             qPrintable(QStringLiteral("%1 vs %2").arg(sets[1].second).arg(sets[0].second)));
    auto orangePixels = [sv] {
      QImage img(900, 700, QImage::Format_ARGB32);
      img.fill(Qt::white);
      QPainter p(&img);
      sv->render(p, QRectF(0, 0, 900, 700));
      p.end();
      int n = 0;
      for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x) {
          const QColor c = img.pixelColor(x, y);
          n += c.red() > 180 && c.green() > 60 && c.green() < 160 && c.blue() < 60;
        }
      return n;
    };
    QVERIFY2(orangePixels() > 200, qPrintable(QString::number(orangePixels())));
    auto* boundariesBox = child<QCheckBox>(w, QStringLiteral("boundariesCheck%1").arg(k).toLatin1().constData());
    QVERIFY(boundariesBox->isChecked());
    boundariesBox->click();
    QVERIFY(!ws.atlas(k)->boundariesShown);
    QCOMPARE(sv->boundarySets().size(), std::size_t(1));
    QCOMPARE(orangePixels(), 0);
    ws.undoStack()->undo(); // the boundaries
    QCOMPARE(sv->boundarySets().size(), std::size_t(2));
    QVERIFY(boundariesBox->isChecked());
    ws.undoStack()->undo(); // the section
    // Atlas against atlas: the comparison dock appears with the second atlas and scores the pair;
    // CA1 picked in the CCF's tree lies whole in HPF (its depth-5 ancestor) of the other atlas.
    auto* compare = panel<AtlasComparePanel>(w);
    QVERIFY(w.findChild<QDockWidget*>("atlasCompareDock")->isVisible());
    QTRY_VERIFY_WITH_TIMEOUT(compare->hasComparison(), 120000);
    QCOMPARE(compare->atlasA(), QString("Allen CCF"));
    QCOMPARE(compare->atlasB(), QString("ccf_depth5_100um"));
    child<RegionTreePanel>(w, "atlasTree0")->select(*ccf.structures().find("CA1"));
    auto* overlap = child<QTableWidget>(compare, "atlasOverlap");
    QTRY_VERIFY(overlap->rowCount() > 0);
    QCOMPARE(overlap->rowCount(), 1);
    QCOMPARE(overlap->item(0, 0)->data(Qt::UserRole).toInt(), *other->structures().find("HPF"));
    // Overlaid: the side-by-side toggle off puts both atlases in one view; the view menus list both.
    QVERIFY(ws.sideBySide());
    ws.setSideBySide(false);
    QCOMPARE(ws.viewCount(), 1);
    QVERIFY(ws.view(0).layers.contains(atlasLayer()) && ws.view(0).layers.contains(atlasLayer(k)));
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete); // the menus as they were
    auto* layerAction = w.findChild<QAction*>(QStringLiteral("view1_atlas_%1").arg(k));
    QVERIFY(layerAction && layerAction->isChecked());
    // Overlaid, a click on the CCF's CB selects it even where the other atlas shows only its
    // whole-brain shell around it: the same pixels hit CB with that shell shown or hidden.
    ws.setStructureVisible(k, cb, false);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 60000);
    w.renderNow();
    auto cbPixels = [&w, cb] {
      int n = 0;
      const int* size = w.renderWindow()->GetSize();
      for (int y = 0; y < size[1]; y += 32)
        for (int x = 0; x < size[0]; x += 32) {
          const auto hit = w.scene()->pick(x, y);
          n += hit.structure == cb && hit.atlas == kMainAtlas;
        }
      return n;
    };
    const int withShell = cbPixels();
    ws.setStructureVisible(k, other->structures().root(), false);
    w.renderNow();
    QCOMPARE(withShell, cbPixels());
    QVERIFY(withShell > 0);
    ws.undoStack()->undo();
    ws.undoStack()->undo();
    ws.undoStack()->undo();
    QCOMPARE(ws.columns(), 2);
    // A session keeps both atlases; Close atlas drops its tab and view, undo brings them back.
    const QJsonObject session = w.captureSession();
    child<QPushButton>(w, QStringLiteral("closeAtlas%1").arg(k).toLatin1().constData())->click();
    QTRY_COMPARE(tabs->count(), 1);
    QCOMPARE(ws.viewCount(), 1);
    QVERIFY(!w.scene()->hasAtlas(k));
    ws.undoStack()->undo();
    QCOMPARE(tabs->count(), 2);
    QVERIFY(w.scene()->hasAtlas(k));
    QCOMPARE(ws.columns(), 2);
    // The session opened in this very window: its atlas read again under a new id, its view kept.
    w.applySession(session);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && ws.atlasIds().size() == 2 && ws.atlas(ws.atlasIds()[1])->loaded, 120000);
    const AtlasId again = ws.atlasIds()[1];
    QVERIFY(again != k);
    QCOMPARE(ws.view(1).layers, QStringList{atlasLayer(again)});
    QCOMPARE(tabs->count(), 2);
    QVERIFY(w.scene()->atlasScene(again)->hasSurface(cb));
    MainWindow restored;
    restored.show();
    QTRY_VERIFY_WITH_TIMEOUT(restored.isIdle(), 120000);
    restored.applySession(session);
    QTRY_VERIFY_WITH_TIMEOUT(restored.isIdle() && restored.workspace().atlasIds().size() == 2 &&
                                 restored.workspace().atlas(restored.workspace().atlasIds()[1])->loaded,
                             120000);
    const AtlasId r = restored.workspace().atlasIds()[1];
    QVERIFY(restored.workspace().structureDisplay(r, cb).visible);
    QCOMPARE(restored.workspace().columns(), 2);
    QCOMPARE(restored.workspace().undoStack()->count(), 0);
    // An atlas being read is cancelled with the reads of cells (the Cancel beside the progress).
    ws.addAtlas(QString::fromStdString(v1));
    QCOMPARE(w.engine().atlasesLoading(), 1);
    w.cancelDatasetLoading();
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 60000);
    QCOMPARE(ws.atlasIds().size(), std::size_t(2));
    QCOMPARE(tabs->count(), 2);
    // A wrong atlas: a clear message, the workspace as it was.
    QSignalSpy said(&w.engine(), &Engine::message);
    ws.addAtlas(dir_.filePath("no_such_atlas_v1.2"));
    QTRY_VERIFY_WITH_TIMEOUT(ws.atlasIds().size() == 2 && w.isIdle(), 60000);
    bool named = false;
    for (const auto& args : said) named = named || args.at(0).toString().contains("no_such_atlas");
    QVERIFY2(named, "the error names the atlas");
  }

  void trainingPanelTrainsAndFeedsTheRegionStep() {
    // Training from the window: a worker process, live curves, then the model is the region
    // step's; a second run resumes from the checkpoint.
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    qputenv("ATLASCOPE_WORKER", ATLASCOPE_CLI);
    const QString data = dir_.filePath("train.h5ad");
    generateBrain(data, 1500, 8, 8, 3000);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    TrainingPanel* t = panel<TrainingPanel>(w);
    QVERIFY(child<QPushButton>(t, "startButton")->isEnabled());
    child<QSpinBox>(t, "epochsBox")->setValue(2);
    child<QComboBox>(t, "deviceBox")->setCurrentText("cpu");
    QTest::mouseClick(child<QPushButton>(t, "startButton"), Qt::LeftButton);
    QVERIFY(t->isRunning());
    QTRY_VERIFY_WITH_TIMEOUT(!t->isRunning(), 400000);
    QVERIFY2(t->lastError().isEmpty(), qPrintable(t->lastError()));
    const QString model = TrainingPanel::modelPathFor(data);
    QVERIFY(QFileInfo::exists(model));
    QCOMPARE(t->lossCurve().size(), 4);       // 1,200 training cells: steps of 1,024 and 176, two epochs
    QCOMPARE(t->validationCurve().size(), 2); // one validation per epoch
    QCOMPARE(child<QLineEdit>(panel<PipelinePanel>(w), "modelEdit")->text(), model);
    // Resume for a third epoch: the curve continues where it stopped.
    child<QSpinBox>(t, "epochsBox")->setValue(3);
    child<QCheckBox>(t, "resumeBox")->setChecked(true);
    t->start();
    QTRY_VERIFY_WITH_TIMEOUT(!t->isRunning(), 400000);
    QVERIFY2(t->lastError().isEmpty(), qPrintable(t->lastError()));
    QCOMPARE(t->validationCurve().size(), 3);
    QCOMPARE(t->lossCurve().size(), 6);
    QCOMPARE(t->lossCurve().at(5).x(), 6.0);

    // One job at a time: a region step asked for while training runs waits in line (Cancel takes
    // it out), then starts by itself with the model the training hands over.
    PipelinePanel* p = panel<PipelinePanel>(w);
    child<QLineEdit>(p, "resolutionsEdit")->setText("4");
    child<QComboBox>(p, "deviceBox")->setCurrentText("cpu");
    child<QLineEdit>(p, "modelEdit")->clear();
    child<QSpinBox>(t, "epochsBox")->setValue(4);
    child<QCheckBox>(t, "resumeBox")->setChecked(true);
    t->start();
    QVERIFY(t->isRunning());
    QTest::mouseClick(child<QPushButton>(p, "runButton"), Qt::LeftButton);
    QVERIFY(p->isQueued() && !p->isRunning());
    p->cancel();
    QVERIFY(!p->isQueued() && child<QPushButton>(p, "runButton")->isEnabled());
    QTest::mouseClick(child<QPushButton>(p, "runButton"), Qt::LeftButton);
    QVERIFY(p->isQueued());
    QTRY_VERIFY_WITH_TIMEOUT(!t->isRunning() && !p->isQueued(), 120000);
    QVERIFY2(t->lastError().isEmpty(), qPrintable(t->lastError()));
    QCOMPARE(child<QLineEdit>(p, "modelEdit")->text(), model); // handed over before the region step started
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning() && w.isIdle(), 120000);
    QVERIFY2(p->lastError().isEmpty(), qPrintable(p->lastError()));
    QVERIFY(QFileInfo::exists(PipelinePanel::resultPathFor(data)));
    QVERIFY(!child<QPlainTextEdit>(p, "log")->toPlainText().contains(
        "composition baseline")); // it segmented with the model
  }

  void sideBySideSharesTheCamera() {
    const QString data = dir_.filePath("cells.h5ad"); // from cellsOpenColourAndPick
    QVERIFY(QFileInfo::exists(data));
    StartupPatch o;
    o.show = QStringList{"CB"};
    o.datasets = {data};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    SceneController* scene = w.scene();
    QCOMPARE(scene->viewCount(), 1); // overlay: one view
    vtkRenderer* ccf = scene->renderer(0);
    QVERIFY(ccf->HasViewProp(w.cellCloud()->actor()));
    w.findChild<QAction*>("view_side_by_side")->trigger();
    QVERIFY(w.workspace().sideBySide());
    QCOMPARE(scene->viewCount(), 2);
    vtkRenderer* cells = scene->renderer(1);
    QVERIFY(scene->renderer(0) == ccf && cells != ccf);
    QVERIFY(cells->HasViewProp(w.cellCloud()->actor()) && !ccf->HasViewProp(w.cellCloud()->actor()));
    QCOMPARE(cells->GetActiveCamera(), ccf->GetActiveCamera()); // one camera: the views move together
    w.findChild<QAction*>("camera_anterior")->trigger();        // coronal sections face this camera
    child<VtkView>(w, "view3d")->render();
    // The cells view (the right half) shows cells; the CCF view none of them.
    const int drawn = drawnPixels(child<VtkView>(w, "view3d")->renderWindow(), cells);
    QVERIFY2(drawn > 200, qPrintable(QString("%1 drawn pixels").arg(drawn)));
    // Undo: back to the overlay, the cells return to the CCF view.
    w.workspace().undoStack()->undo(); // the preset
    w.workspace().undoStack()->undo(); // side by side
    QVERIFY(!w.workspace().sideBySide());
    QCOMPARE(scene->viewCount(), 1);
    QVERIFY(ccf->HasViewProp(w.cellCloud()->actor()));
  }

  // Edit > Undo / Redo for view changes: a camera preset, a dragged opacity slider (one step),
  // a structure shown.
  void undoRedoViewChanges() {
    StartupPatch o;
    o.show = QStringList{};
    MainWindow w({}, o);
    w.resize(1000, 700);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.scene(), 120000);
    QUndoStack* h = w.workspace().undoStack();
    QCOMPARE(h->count(), 0);
    double start[3], moved[3], now[3];
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(start);
    w.findChild<QAction*>("camera_dorsal")->trigger();
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(moved);
    QVERIFY(std::abs(moved[1] - start[1]) > 1);
    const int root = w.atlas()->structures().root();
    const double opacity = w.scene()->atlasScene().display(root).opacity;
    emit panel<RegionTreePanel>(w)->opacityChanged(root, 0.5);
    emit panel<RegionTreePanel>(w)->opacityChanged(root, 0.3); // the slider moving on: one step
    QCOMPARE(h->count(), 2);
    const int ca1 = *w.atlas()->structures().indexOfAcronym("CA1");
    emit panel<RegionTreePanel>(w)->visibilityChanged(ca1, true);
    QCOMPARE(h->count(), 3);
    QTRY_VERIFY_WITH_TIMEOUT(
        w.isIdle() && w.scene()->atlasScene().hasSurface(ca1) && w.scene()->atlasScene().display(ca1).visible, 60000);
    h->undo();
    QVERIFY(!w.scene()->atlasScene().display(ca1).visible);
    h->undo();
    QCOMPARE(w.scene()->atlasScene().display(root).opacity, opacity);
    h->undo();
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(now);
    for (int i = 0; i < 3; ++i) QVERIFY(std::abs(now[i] - start[i]) < 1e-6);
    h->redo();
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(now);
    for (int i = 0; i < 3; ++i) QVERIFY(std::abs(now[i] - moved[i]) < 1e-6);
    h->redo();
    QCOMPARE(w.scene()->atlasScene().display(root).opacity, 0.3);
    h->redo();
    QVERIFY(w.scene()->atlasScene().display(ca1).visible);

    // Camera bookmarks: keep the dorsal view, move away, go back (one more undoable step).
    w.findChild<QAction*>("camera_bookmark")->trigger();
    QCOMPARE(int(w.workspace().bookmarks().size()), 1);
    w.findChild<QAction*>("camera_left")->trigger();
    w.findChild<QAction*>("camera_bookmark_1")->trigger();
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(now);
    for (int i = 0; i < 3; ++i) QVERIFY(std::abs(now[i] - moved[i]) < 1e-6);
    QVERIFY(h->undoText().contains("bookmark 1"));
    QCOMPARE(w.captureSession().value("camera_bookmarks").toArray().size(), 1);
  }

  void sectionClipsBothParcellations() {
    const QString data = dir_.filePath("cells.h5ad"); // from cellsOpenColourAndPick
    StartupPatch o;
    o.show = QStringList{"CB"};
    o.datasets = {data};
    o.view = viewer::CameraPreset::Dorsal;
    MainWindow w({}, o);
    showUntilCellsShown(w, 1200, 760);
    if (QTest::currentTestFailed()) return;
    auto drawn = [&] {
      w.renderViews();
      return drawnPixels(child<VtkView>(w, "view3d")->renderWindow(), w.scene()->renderer(0));
    };
    const int whole = drawn();
    // A coronal slab through the cerebellum: the shell and CB cut to a thin band.
    w.workspace().setSection({"coronal", 11000, 200});
    auto* cloudPlanes = w.cellCloud()->actor()->GetMapper()->GetClippingPlanes();
    QVERIFY(cloudPlanes && cloudPlanes->GetNumberOfItems() == 2);
    QCOMPARE(w.findChild<QComboBox*>("sectionAxis")->currentIndex(), 1);
    QCOMPARE(w.findChild<QSlider*>("sectionSlider")->value(), 440);
    const int slab = drawn();
    QVERIFY2(slab < whole / 2, qPrintable(QString("%1 vs %2").arg(slab).arg(whole)));
    // The slider moves it; "No section" shows everything again.
    w.findChild<QSlider*>("sectionSlider")->setValue(300);
    QCOMPARE(w.scene()->section()->position(), 7500.0);
    w.findChild<QComboBox*>("sectionAxis")->setCurrentIndex(0);
    QCOMPARE(cloudPlanes->GetNumberOfItems(), 0);
    QVERIFY(std::abs(drawn() - whole) < whole / 20 + 10);

    // Animations: a turntable (frames differ, the camera comes back) and a coronal sweep (the
    // section comes back to none), as numbered PNGs of the view's size.
    double before[3];
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(before);
    const QString spin = dir_.filePath("spin");
    const AnimationResult t = exportTurntable(*w.engine().offscreenScene(), w.viewPixels(), spin, 4);
    QVERIFY2(t.error.isEmpty(), qPrintable(t.error));
    QCOMPARE(t.frames.size(), 4);
    const QImage f0(t.frames[0]), f1(t.frames[1]);
    QCOMPARE(f0.size(), w.viewPixels());
    QVERIFY(f0 != f1);
    double after[3];
    w.scene()->renderer(0)->GetActiveCamera()->GetPosition(after);
    for (int i = 0; i < 3; ++i) QVERIFY(std::abs(after[i] - before[i]) < 1e-6);

    // The 2D section view: the measured section nearest to the plane, whole, with the CCF
    // boundaries on it; exported as SVG (vector: paths and circles), PNG and PDF; and the figure
    // (views + section + legend) as one image.
    w.workspace().setSection({"coronal", 7000, 200});
    SectionView* sv = panel<SectionView>(w);
    QVERIFY(sv->shownSection() >= 0);
    QVERIFY2(sv->drawnCells() > 50, qPrintable(QString::number(sv->drawnCells())));
    QVERIFY2(sv->boundarySegments() > 100, qPrintable(QString::number(sv->boundarySegments())));
    std::int64_t inSection = 0;
    for (std::int32_t s : w.cells()->section) inSection += s == sv->shownSection();
    QCOMPARE(static_cast<std::int64_t>(sv->drawnCells()), inSection);
    const QString svgPath = dir_.filePath("section.svg");
    QVERIFY(sv->writeSvg(svgPath, QSize(1600, 1200)));
    QFile svgFile(svgPath);
    QVERIFY(svgFile.open(QIODevice::ReadOnly));
    const QByteArray svgText = svgFile.readAll();
    QVERIFY(svgText.contains("<svg") && svgText.contains("<path"));
    QVERIFY2(svgText.count("<ellipse") + svgText.count("<circle") + svgText.count("<path") >= sv->drawnCells() / 2,
             qPrintable(QString::number(svgText.size())));
    const QString pngPath = dir_.filePath("section.png");
    QVERIFY(sv->writePng(pngPath, QSize(1600, 1200)));
    QCOMPARE(QImage(pngPath).size(), QSize(1600, 1200));
    // The other planes: cells within the slab, boundaries of that plane.
    w.workspace().setSection({"sagittal", 5700, 400});
    QCOMPARE(sv->shownSection(), -1);
    QVERIFY(sv->boundarySegments() > 100);
    w.workspace().setSection({"coronal", 7000, 200});
    const QString fig = dir_.filePath("figure.png"), figSvg = dir_.filePath("figure.svg");
    QVERIFY(writeFigure(fig, QSize(2400, 1400), w.engine(), *panel<SectionView>(w)));
    const QImage figure(fig);
    if (qEnvironmentVariableIsSet("ATLASCOPE_KEEP_FIGURE")) figure.save(qEnvironmentVariable("ATLASCOPE_KEEP_FIGURE"));
    QCOMPARE(figure.size(), QSize(2400, 1400));
    // The right-hand panel holds the section: not blank.
    const QImage sectionPart = figure.copy(1460, 60, 920, 760);
    int inked = 0;
    for (int y = 0; y < sectionPart.height(); y += 2)
      for (int x = 0; x < sectionPart.width(); x += 2) inked += qGray(sectionPart.pixel(x, y)) < 200;
    QVERIFY2(inked > 2000, qPrintable(QString::number(inked))); // boundaries and cells
    QVERIFY(writeFigure(figSvg, QSize(1800, 1050), w.engine(), *panel<SectionView>(w)));
    QVERIFY(QFileInfo(figSvg).size() > 10000);
    w.workspace().setSection({"none", 0, 200});

    const AnimationResult sweep = exportSectionSweep(*w.engine().offscreenScene(), w.viewPixels(),
                                                     dir_.filePath("sweep"), viewer::SectionAxis::Coronal, 3);
    QVERIFY2(sweep.error.isEmpty(), qPrintable(sweep.error));
    QCOMPARE(sweep.frames.size(), 3);
    QVERIFY(QImage(sweep.frames[0]) != QImage(sweep.frames[2]));
    QCOMPARE(w.scene()->section()->axis(), viewer::SectionAxis::None);
  }

  void sessionSaveRestoreAndExport() {
    const QString data = dir_.filePath("cells.h5ad"); // from cellsOpenColourAndPick
    const QString sessionPath = dir_.filePath("s.atlascope.json");
    QImage before;
    {
      StartupPatch o;
      o.show = QStringList{"CA1"};
      o.datasets = {data};
      MainWindow w({}, o);
      showUntilCellsShown(w, 1200, 760);
      if (QTest::currentTestFailed()) return;
      const int ca1 = *w.atlas()->structures().find("CA1");
      w.workspace().setStructureOpacity(ca1, 0.4);
      w.workspace().setStructureColour(ca1, std::array<double, 3>{0.9, 0.2, 0.1});
      w.workspace().setColourBy(current(w), "section");
      w.findChild<QAction*>("camera_dorsal")->trigger();
      w.findChild<QAction*>("view_side_by_side")->trigger();
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 60000);
      writeSessionFile(sessionPath, w.captureSession());
      QTest::qWait(200);
      before = w.windowImage();
    }
    const QJsonObject s = readSessionFile(sessionPath);
    QCOMPARE(s.value("version").toInt(), Workspace::kSessionVersion);
    QCOMPARE(savedDisplay(s).value("colour_by").toString(), QString("section"));
    QCOMPARE(s.value("layout").toObject().value("columns").toInt(), 2);
    {
      // A new window restores it: the same structures, display, camera, colouring and layout.
      StartupPatch o;
      o.show = QStringList{};
      MainWindow w({}, o);
      w.resize(1200, 760);
      w.applySession(s);
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr && colouring(w) == "section", 120000);
      const int ca1 = *w.atlas()->structures().find("CA1");
      QTRY_VERIFY_WITH_TIMEOUT(w.scene()->atlasScene().hasSurface(ca1) && w.isIdle(), 120000);
      QVERIFY(panel<RegionTreePanel>(w)->isChecked(ca1));
      QCOMPARE(w.scene()->atlasScene().display(ca1).opacity, 0.4);
      QVERIFY(w.workspace().sideBySide());
      QCOMPARE(w.workspace().undoStack()->count(), 0); // a session starts a new history
      double pos[3];
      w.scene()->renderer(0)->GetActiveCamera()->GetPosition(pos);
      const QJsonArray saved = s.value("cameras").toObject().value("0").toObject().value("position").toArray();
      for (int i = 0; i < 3; ++i) QCOMPARE(pos[i], saved[i].toDouble());
      QTest::qWait(200);
      const QImage after = w.windowImage();
      QCOMPARE(after.size(), before.size());
      // The same picture within a tolerance (antialiasing and the status line may differ).
      int differing = 0;
      for (int y = 0; y < after.height(); y += 2)
        for (int x = 0; x < after.width(); x += 2) {
          const QRgb a = before.pixel(x, y), b = after.pixel(x, y);
          if (std::abs(qRed(a) - qRed(b)) + std::abs(qGreen(a) - qGreen(b)) + std::abs(qBlue(a) - qBlue(b)) > 60)
            ++differing;
        }
      const double share = differing / (after.width() * after.height() / 4.0);
      if (share >= 0.04) {
        before.save(QStringLiteral(ATLASCOPE_BINARY_DIR "/session.before.png"));
        after.save(QStringLiteral(ATLASCOPE_BINARY_DIR "/session.after.png"));
      }
      // (Translucent surfaces are peeled in the order their actors were added, which is the order
      // the surfaces were built: a few edge pixels differ between two starts.)
      QVERIFY2(share < 0.04, qPrintable(QString("%1% of pixels differ").arg(100 * share)));
    }
    // A session of a newer version is refused with a clear message.
    {
      StartupPatch o;
      o.show = QStringList{};
      MainWindow w({}, o);
      QTRY_VERIFY_WITH_TIMEOUT(w.atlas(), 60000);
      try {
        w.applySession(QJsonObject{{"format", "atlascope-session"}, {"version", 99}});
        QFAIL("no error for a newer session");
      } catch (const Error& e) {
        QVERIFY2(QString(e.what()).contains("newer"), e.what());
      }
    }

    // Headless export, no window: the session's two views composed at exactly 1000x700, at 2x.
    const QString png = dir_.filePath("fig.png");
    QProcess gui;
    gui.start(ATLASCOPE_GUI_BIN, {"--session", sessionPath, "--export", png, "--scale", "2", "--size", "1000x700"});
    QVERIFY(gui.waitForFinished(180000));
    QVERIFY2(gui.exitCode() == 0, gui.readAllStandardError().constData());
    const QImage fig(png);
    QCOMPARE(fig.size(), QSize(2000, 1400));
    // Figure mode headless: views, the 2D section and the legend in one SVG of the given size.
    const QString svg = dir_.filePath("headless-figure.svg");
    QProcess figure;
    figure.start(ATLASCOPE_GUI_BIN, {"--session", sessionPath, "--section", "coronal:7000", "--figure", svg,
                                     "--figure-size", "1200x700", "--size", "1000x700"});
    QVERIFY(figure.waitForFinished(180000));
    QVERIFY2(figure.exitCode() == 0, figure.readAllStandardError().constData());
    QFile svgFile(svg);
    QVERIFY(svgFile.open(QIODevice::ReadOnly));
    const QByteArray text = svgFile.readAll();
    QVERIFY(text.contains("<svg") && text.contains("viewBox=\"0 0 1200 700\"") && text.contains("<image") &&
            text.contains("Section "));
    QProcess bad;
    bad.start(ATLASCOPE_GUI_BIN, {"--section", "oblique:7", "--figure", svg});
    QVERIFY(bad.waitForFinished(60000));
    QCOMPARE(bad.exitCode(), 2);
  }

  // The comparison of issue 13: two animals and the CCF in three linked views, both segmented,
  // their regions named after the CCF (one renamed), matched across the animals with shared
  // colours; the session saved, and its headless export the same picture as the window's.
  void twoAnimalsComparedInThreeViews() {
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    const Atlas atlas = Atlas::load(bundledAtlasPaths());
    QStringList results;
    for (int animal = 0; animal < 2; ++animal) {
      SyntheticBrainOptions g;
      g.sectionSpacingUm = 800;
      g.sections = 5;
      g.cellsPerMm2 = 250;
      g.genes = 10;
      g.cellTypes = 12;
      g.seed = 1; // the same brain; the second animal: other cells, cut elsewhere, deformed
      g.animalSeed = animal == 0 ? 0 : 2;
      g.sectionOffsetUm = animal * 400.0;
      g.deformationUm = animal * 100.0;
      const QString data = dir_.filePath(QStringLiteral("animal%1.h5ad").arg(animal + 1));
      generateSyntheticBrain(atlas, g, data.toStdString());
      const QString result = dir_.filePath(QStringLiteral("animal%1.regions.h5ad").arg(animal + 1));
      QProcess segment;
      segment.start(ATLASCOPE_CLI, {"segment", data, "--k", "8", "--restarts", "1", "--smooth", "--smooth-k", "50",
                                    "--smooth-labels", "15", "--out", result});
      QVERIFY(segment.waitForFinished(300000));
      QVERIFY2(segment.exitCode() == 0, segment.readAllStandardError().constData());
      results << result;
    }
    StartupPatch o;
    o.show = QStringList{"CB"};
    o.datasets = results;
    o.colourBy = "regions_k8";
    o.layout = std::make_pair(1, 3);
    MainWindow w({}, o);
    w.resize(1500, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    Workspace& ws = w.workspace();
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && ws.loadedDatasetIds().size() == 2 && ws.viewCount() == 3, 180000);
    const DatasetId a = ws.loadedDatasetIds()[0], b = ws.loadedDatasetIds()[1];
    // The CCF alone in the first view, each animal in a view of its own, one camera for all.
    ws.setViewLayers(0, {atlasLayer()});
    QCOMPARE(ws.view(1).layers.first(), cellsLayer(a));
    QCOMPARE(ws.view(2).layers.first(), cellsLayer(b));
    SceneController* scene = w.scene();
    QCOMPARE(scene->renderer(1)->GetActiveCamera(), scene->renderer(0)->GetActiveCamera());
    QCOMPARE(scene->renderer(2)->GetActiveCamera(), scene->renderer(0)->GetActiveCamera());
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.engine().data().colouring(a) && w.engine().data().colouring(b), 60000);

    // Named after their best CCF match ("k8-3 · CP 82%"), written by segment; one renamed.
    const CellColouring* ca = w.engine().data().colouring(a);
    QCOMPARE(ca->names.size(), std::size_t(8));
    for (const auto& name : ca->names)
      QVERIFY2(QString::fromStdString(name).contains(QString::fromUtf8(" \u00b7 ")), name.c_str());
    ws.setCurrentDataset(a);
    ws.setRegionName(a, "regions_k8", 0, "my region");
    QTRY_COMPARE(child<QListWidget>(panel<CellPanel>(w), "cellLegend")->item(0)->text(), QString("my region"));

    // Matched across the animals on the CCF grid: pairs, scores, and B's matched regions in A's colours.
    auto* across = w.findChild<RegionsAcrossPanel*>();
    QVERIFY(across);
    QSignalSpy matched(across, &RegionsAcrossPanel::matched);
    across->match(a, b);
    QTRY_VERIFY_WITH_TIMEOUT(matched.count() == 1, 120000);
    const RegionCorrespondence* r = across->result();
    QVERIFY(r && !r->oneToOne.empty());
    // (On these few sparse sections the composition baseline agrees across animals at AMI ~0.14,
    // matched share ~0.33; unrelated labelings score ~0.)
    QVERIFY2(r->agreement.adjustedMutualInformation > 0.05,
             qPrintable(QString::number(r->agreement.adjustedMutualInformation)));
    QVERIFY2(r->matchedShare > 0.15, qPrintable(QString::number(r->matchedShare)));
    QVERIFY(child<QTableWidget>(across, "regionPairs")->rowCount() >= static_cast<int>(r->oneToOne.size()));
    const auto coloursA = displayColours(*ws.dataset(a), *w.engine().data().colouring(a));
    const auto coloursB = displayColours(*ws.dataset(b), *w.engine().data().colouring(b));
    for (const RegionOverlap& pair : r->oneToOne)
      QVERIFY(coloursB[static_cast<std::size_t>(pair.b)] == coloursA[static_cast<std::size_t>(pair.a)]);
    ws.undoStack()->undo(); // the shared colours are one step
    QVERIFY(ws.dataset(b)->regionColours.empty());
    ws.undoStack()->redo();

    // The session, and its headless export: the same picture as the window's, at the asked size.
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 60000);
    const QString session = dir_.filePath("comparison.atlascope.json");
    writeSessionFile(session, w.captureSession());
    const QSize size(1200, 420);
    const QImage window = w.engine().renderImage(size).convertToFormat(QImage::Format_RGB32);
    if (qEnvironmentVariableIsSet("ATLASCOPE_KEEP_FIGURE")) window.save(qEnvironmentVariable("ATLASCOPE_KEEP_FIGURE"));
    const QString png = dir_.filePath("comparison.png");
    QProcess gui;
    gui.start(ATLASCOPE_GUI_BIN, {"--session", session, "--export", png, "--size",
                                  QStringLiteral("%1x%2").arg(size.width()).arg(size.height())});
    QVERIFY(gui.waitForFinished(300000));
    QVERIFY2(gui.exitCode() == 0, gui.readAllStandardError().constData());
    const QImage headless = QImage(png).convertToFormat(QImage::Format_RGB32);
    QCOMPARE(headless.size(), size);
    const double share = differingShare(headless, window, 40);
    if (share >= 0.02) headless.save(QStringLiteral(ATLASCOPE_BINARY_DIR "/comparison.headless.png"));
    QVERIFY2(share < 0.02,
             qPrintable(QString("%1% of pixels differ between the window and the headless export").arg(share * 100)));
  }

  void brokenAtlasIsAMessage() {
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    QFile f(dir_.filePath("broken.nrrd"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(
        "NRRD0004\ntype: uint32\ndimension: 3\nsizes: 10 10 10\nendian: little\nencoding: gzip\n\n\x1f\x8b garbage");
    f.close();
    EngineOptions o;
    o.atlas.annotation = f.fileName().toStdString();
    MainWindow w(o);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(!w.loadError().isEmpty(), 60000);
    QVERIFY(w.loadError().contains("broken.nrrd"));
    QVERIFY(w.statusText().contains("Could not load the atlas"));
    QVERIFY(!(w.atlas() != nullptr));
    // The window is still usable: menus and camera actions do nothing harmful.
    w.findChild<QAction*>("camera_dorsal")->trigger();
  }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
