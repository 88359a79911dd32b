// Untyped data in the window (issue 15): a dataset without a cell-type column opens with the offer
// to type its cells; "type, train, discover regions" runs the three steps through real
// `atlascope-cli` workers on the CPU and ends with the regions coloured; the legend's tooltips
// name each type's marker genes; a chain cancelled while waiting or while typing leaves the open
// data and the files as they were. Also: cells without CCF coordinates are laid out at the
// section spacing the model holds (undoable, kept in sessions, `--section-spacing`).
#include "app/gui/JobQueue.h"
#include "app/gui/MainWindow.h"
#include "app/gui/UntypedPipeline.h"
#include "app/workspace/DatasetData.h"
#include "app/workspace/Workspace.h"
#include "core/CellTable.h"
#include "core/SyntheticBrain.h"
#include "viewer/CellCloud.h"

#include <QAction>
#include <QComboBox>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QFrame>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProcess>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTest>
#include <QUndoStack>

#include <chrono>

using namespace atlascope;
using namespace atlascope::app;

namespace {

const DatasetDocument* findDataset(MainWindow& w, const QString& suffix) {
  for (DatasetId id : w.workspace().datasetIds())
    if (w.workspace().dataset(id)->path.endsWith(suffix)) return w.workspace().dataset(id);
  return nullptr;
}

// A widget of a dock by what it shows (the docks' own widgets have no names to find them by).
template <class W> W* inDock(MainWindow& w, const char* dock, const std::function<bool(W*)>& match) {
  for (W* x : w.findChild<QDockWidget*>(dock)->findChildren<W*>())
    if (match(x)) return x;
  return nullptr;
}

} // namespace

class TestTypingWindow : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString untyped_; // cells without types or CCF coordinates, as a lab's table has them

  static void showUntilCellsShown(MainWindow& w) {
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr, 120000);
  }

private slots:
  void initTestCase() {
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
    qputenv("ATLASCOPE_WORKER", ATLASCOPE_CLI);
    // A small synthetic brain (types known to the generator, dropped here), written as a table:
    // id, in-section position, section, then the genes; no type column, no CCF coordinates.
    const QString h5ad = dir_.filePath("brain.h5ad");
    SyntheticBrainOptions g;
    g.maxCells = 600;
    g.genes = 40;
    g.cellTypes = 8;
    g.cellsPerMm2 = 3000;
    generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, h5ad.toStdString());
    const CellTable cells = readCellTable(h5ad.toStdString());
    const ExpressionSource x(h5ad.toStdString());
    std::vector<float> values(static_cast<std::size_t>(x.cells() * x.genes()));
    x.readRows(0, x.cells(), values.data());
    untyped_ = dir_.filePath("untyped.csv");
    QFile f(untyped_);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QByteArray text = "cell_label,x,y,section";
    for (const auto& gene : cells.genes) text += "," + QByteArray::fromStdString(gene);
    text += '\n';
    for (std::int64_t i = 0; i < cells.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      text += QByteArray("c") + QByteArray::number(i) + "," + QByteArray::number(cells.x[k]) + "," +
              QByteArray::number(cells.y[k]) + "," +
              QByteArray::fromStdString(cells.sectionNames[static_cast<std::size_t>(cells.section[k])]);
      const auto row = static_cast<std::size_t>(cells.fileRow[k]) * static_cast<std::size_t>(x.genes());
      for (std::int64_t gene = 0; gene < x.genes(); ++gene)
        text += "," + QByteArray::number(values[row + static_cast<std::size_t>(gene)], 'g', 6);
      text += '\n';
    }
    f.write(text);
  }

  void untypedDatasetToRegions() {
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {untyped_};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    Workspace& ws = w.workspace();
    const DatasetId source = ws.currentDataset();
    QVERIFY(w.cells()->types.names.empty());

    // The offer: a bar in the Data dock (no dialog), and the Analysis menu.
    auto* bar = w.findChild<QFrame*>("typingBar");
    QVERIFY(bar && bar->isVisible());
    QVERIFY(w.findChild<QLabel*>("typingBarText")->text().contains("No cell types"));
    auto* chain = w.findChild<QPushButton*>("typeToRegionsButton");
    QVERIFY(chain && chain->isVisible() && w.findChild<QPushButton*>("typeCellsButton")->isVisible());
    QVERIFY(w.findChild<QAction*>("typeCells")->isEnabled() && w.findChild<QAction*>("typeToRegions")->isEnabled());

    // Cells without CCF coordinates: sections along AP at 200 um unless the model says otherwise.
    viewer::CellCloud* cloud = w.cellCloud();
    QVERIFY(cloud && !cloud->usesCcf());
    const CellTable& cells = *w.cells();
    const std::int64_t last = cells.size() - 1;
    QCOMPARE(cloud->position(last)[0], cells.section[static_cast<std::size_t>(last)] * 200.0);
    ws.setSectionSpacing(source, 120);
    QCOMPARE(cloud->position(last)[0], cells.section[static_cast<std::size_t>(last)] * 120.0);
    QCOMPARE(w.captureSession()
                 .value("datasets")
                 .toArray()[0]
                 .toObject()
                 .value("display")
                 .toObject()
                 .value("section_spacing_um")
                 .toDouble(),
             120.0);
    ws.undoStack()->undo();
    QCOMPARE(cloud->position(last)[0], cells.section[static_cast<std::size_t>(last)] * 200.0);

    // The chain, small: the Train dock's defaults (compact, 1 epoch), k = 4 in the regions dock.
    QLineEdit* ks =
        inDock<QLineEdit>(w, "pipelineDock", [](QLineEdit* e) { return e->objectName() == "resolutionsEdit"; });
    QVERIFY(ks);
    ks->setText("4");
    auto* pipeline = w.findChild<UntypedPipeline*>();
    QVERIFY(pipeline);
    const auto start = std::chrono::steady_clock::now();
    QTest::mouseClick(chain, Qt::LeftButton);
    QCOMPARE(pipeline->step(), UntypedPipeline::Step::Typing);
    QVERIFY(!w.findChild<QAction*>("typeToRegions")->isEnabled()); // one chain at a time
    QVERIFY(w.findChild<QPushButton*>("typingCancel")->isVisible());
    QList<UntypedPipeline::Step> steps;
    connect(pipeline, &UntypedPipeline::stepChanged, this, [&steps](UntypedPipeline::Step s) { steps << s; });
    const QString typed = UntypedPipeline::typedPathFor(untyped_);
    QCOMPARE(typed, dir_.filePath("untyped.typed.h5ad"));
    const QString regions = dir_.filePath("untyped.typed.regions.h5ad");
    // The regions open as the region step's results do: current, coloured by k = 4.
    QTRY_VERIFY_WITH_TIMEOUT(!pipeline->isBusy(), 300000);
    QVERIFY2(pipeline->lastError().isEmpty(), qPrintable(pipeline->lastError()));
    QVERIFY(steps == (QList<UntypedPipeline::Step>{UntypedPipeline::Step::Training, UntypedPipeline::Step::Regions,
                                                   UntypedPipeline::Step::Idle}));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && ws.dataset(ws.currentDataset())->path == regions &&
                                 w.findChild<QListWidget*>("cellLegend")->count() == 4,
                             120000);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    qInfo("type -> train -> regions on %lld untyped cells: %.1f s", static_cast<long long>(cells.size()), seconds);
    QVERIFY(QFileInfo::exists(typed) && QFileInfo::exists(dir_.filePath("untyped.typed.model.h5")));
    const DatasetDocument* result = ws.dataset(ws.currentDataset());
    QCOMPARE(result->display.colourBy, QString("regions_k4"));
    const CellColouring* c = w.engine().data().colouring(result->id);
    QVERIFY(c && c->categorical && c->names.size() == 4 && c->colours.size() == 4);
    QVERIFY(std::count(c->codes.begin(), c->codes.end(), -1) == 0);
    QTRY_VERIFY_WITH_TIMEOUT(w.cellCloud() && w.cellCloud()->size() == cells.size(), 30000);
    QVERIFY(w.findChild<QLabel*>("typingBarText")->text().contains("Done"));

    // The data: the untyped table still open (hidden), the typed copy in its place (hidden by
    // the regions), every step undoable.
    QCOMPARE(ws.datasetIds().size(), std::size_t(3));
    QVERIFY(ws.dataset(source) && !ws.dataset(source)->display.visible);
    const DatasetDocument* t = findDataset(w, ".typed.h5ad");
    QVERIFY(t && t->cells && !t->cells->types.names.empty());
    QCOMPARE(t->display.colourBy, QString("celltype_leiden"));

    // The typed copy's legend: each type's marker genes in its tooltip.
    ws.setCurrentDataset(t->id);
    QListWidget* legend = w.findChild<QListWidget*>("cellLegend");
    QTRY_VERIFY_WITH_TIMEOUT(legend->count() == static_cast<int>(t->cells->types.names.size()), 30000);
    const QString tip = legend->item(0)->toolTip();
    QVERIFY2(tip.contains("Marker genes:"), qPrintable(tip));
    bool namesAGene = false;
    for (const auto& gene : t->cells->genes) namesAGene = namesAGene || tip.contains(QString::fromStdString(gene));
    QVERIFY2(namesAGene, qPrintable(tip));
    // ... and when coloured by type (the reader's column: celltype_leiden here).
    ws.setColourBy(t->id, "type");
    QTRY_VERIFY_WITH_TIMEOUT(legend->count() > 0 && legend->item(0)->toolTip().contains("Marker genes:"), 30000);
    QVERIFY(!w.findChild<QFrame*>("typingBar")->findChild<QPushButton*>("typeToRegionsButton")->isVisible());
  }

  void cancelledChainLeavesDataIntact() {
    // A chain waiting behind another job is taken out of line by Cancel; typing cancelled while
    // it runs writes nothing. Either way the open data are as they were.
    // The table 40 times over (ids made unique): typing takes seconds, so that a cancel reaches
    // the worker before it is done even on an idle machine.
    const QString csv = dir_.filePath("cancel.csv");
    {
      QFile in(untyped_), out(csv);
      QVERIFY(in.open(QIODevice::ReadOnly) && out.open(QIODevice::WriteOnly));
      const QList<QByteArray> lines = in.readAll().split('\n');
      out.write(lines.first() + '\n');
      for (int copy = 0; copy < 40; ++copy)
        for (qsizetype i = 1; i < lines.size(); ++i)
          if (!lines[i].isEmpty()) {
            const qsizetype comma = lines[i].indexOf(',');
            out.write(lines[i].left(comma) + "_" + QByteArray::number(copy) + lines[i].mid(comma) + '\n');
          }
    }
    const QString typed = UntypedPipeline::typedPathFor(csv);
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {csv};
    MainWindow w({}, o);
    showUntilCellsShown(w);
    if (QTest::currentTestFailed()) return;
    Workspace& ws = w.workspace();
    const DatasetId source = ws.currentDataset();
    auto* pipeline = w.findChild<UntypedPipeline*>();
    auto* queue = w.findChild<JobQueue*>();
    QVERIFY(pipeline && queue);

    // Another job first: the Discover regions dock on the CSV (which it refuses at once, after
    // the chain has been queued behind it and cancelled).
    QPushButton* discover =
        inDock<QPushButton>(w, "pipelineDock", [](QPushButton* b) { return b->text() == "Discover regions"; });
    QVERIFY(discover);
    QMetaObject::invokeMethod(discover->parent(), "run");
    QVERIFY(queue->isBusy());
    pipeline->typeToRegions();
    QCOMPARE(pipeline->step(), UntypedPipeline::Step::Typing);
    QCOMPARE(queue->waiting(), 1);
    QVERIFY(w.findChild<QLabel*>("typingBarText")->text().startsWith("Queued"));
    QTest::mouseClick(w.findChild<QPushButton*>("typingCancel"), Qt::LeftButton);
    QCOMPARE(pipeline->step(), UntypedPipeline::Step::Idle);
    QCOMPARE(pipeline->lastError(), QString("cancelled"));
    QCOMPARE(queue->waiting(), 0);
    QTRY_VERIFY_WITH_TIMEOUT(!queue->isBusy(), 60000);
    QTest::qWait(200);
    QVERIFY(!QFileInfo::exists(typed));

    // Typing cancelled while the worker runs (started from the Analysis menu).
    w.findChild<QAction*>("typeCells")->trigger();
    QVERIFY(pipeline->step() == UntypedPipeline::Step::Typing && queue->isBusy());
    QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QLabel*>("typingBarText")->text().startsWith("Typing cells:"), 60000);
    pipeline->cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!pipeline->isBusy(), 60000);
    QCOMPARE(pipeline->lastError(), QString("cancelled"));
    QVERIFY(w.findChild<QLabel*>("typingBarText")->text().contains("cancelled"));
    QVERIFY(!QFileInfo::exists(typed));
    QVERIFY(ws.datasetIds() == std::vector<DatasetId>{source});
    QVERIFY(ws.dataset(source)->display.visible && ws.currentDataset() == source);
    QVERIFY(w.cells() && w.cells()->types.names.empty());
    QVERIFY(w.findChild<QAction*>("typeCells")->isEnabled());

    // A worker that fails (the table gone from disk since it was opened): its message in the
    // bar, the open data as they were.
    QVERIFY(QFile::rename(csv, csv + ".moved"));
    pipeline->typeToRegions();
    QTRY_VERIFY_WITH_TIMEOUT(!pipeline->isBusy(), 60000);
    QVERIFY2(pipeline->lastError().contains("cancel.csv"), qPrintable(pipeline->lastError()));
    const QString shown = w.findChild<QLabel*>("typingBarText")->text();
    QVERIFY2(shown.contains("failed") && shown.contains("cancel.csv"), qPrintable(shown));
    qInfo("a failed step, as the bar shows it: %s", qPrintable(shown));
    QVERIFY(!QFileInfo::exists(typed) && !queue->isBusy() && queue->waiting() == 0);
    QVERIFY(ws.datasetIds() == std::vector<DatasetId>{source});
    QVERIFY(ws.dataset(source)->display.visible && w.cells() != nullptr);
  }

  void sectionSpacingFromTheCommandLine() {
    // `atlascope --section-spacing`: the value lands in the model (and the session saved).
    const QString session = dir_.filePath("spacing.json");
    QProcess gui;
    gui.start(ATLASCOPE_GUI_BIN, {"--open", untyped_, "--section-spacing", "150", "--show", "", "--restore-session",
                                  "no", "--save-session", session});
    QVERIFY(gui.waitForFinished(120000));
    QVERIFY2(gui.exitCode() == 0, gui.readAllStandardError().constData());
    QFile f(session);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QJsonObject s = QJsonDocument::fromJson(f.readAll()).object();
    QCOMPARE(
        s.value("datasets").toArray()[0].toObject().value("display").toObject().value("section_spacing_um").toDouble(),
        150.0);
    QProcess bad;
    bad.start(ATLASCOPE_GUI_BIN, {"--section-spacing=none"});
    QVERIFY(bad.waitForFinished(60000));
    QCOMPARE(bad.exitCode(), 2);
  }
};

QTEST_MAIN(TestTypingWindow)
#include "test_typing_window.moc"
