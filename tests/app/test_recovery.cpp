// Nothing lost in the window (issue 14): the open state is autosaved and comes back after a
// SIGKILL of the real binary, a clean exit leaves nothing to restore, a running instance's
// session is never taken by another; and a dataset that fails to open, for each class of bad
// file, is a clear error that leaves the open dataset, its cells and colouring as they were.
#include "app/gui/CellPanel.h"
#include "app/gui/MainWindow.h"
#include "app/gui/SessionAutosave.h"
#include "app/gui/SessionRecovery.h"
#include "app/workspace/Workspace.h"
#include "core/Error.h"
#include "core/SyntheticBrain.h"
#include "tests/app/Widgets.h"
#include "viewer/CellCloud.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QListWidget>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <hdf5.h>
#include <limits>
#include <optional>

using namespace atlascope;
using namespace atlascope::app;
using namespace atlascope::app::test;

namespace {

void generateBrain(const QString& path, std::int64_t cells) {
  SyntheticBrainOptions g;
  g.maxCells = cells;
  g.genes = 8;
  g.cellTypes = 8;
  generateSyntheticBrain(Atlas::load(bundledAtlasPaths()), g, path.toStdString());
}

QStringList sessionFiles(const QString& dir) { return QDir(dir).entryList({"session-*"}, QDir::Files); }

// What the tests look at in a session file (the workspace JSON, version 2): the first dataset and
// its colouring, side by side, the visible structures, the first camera's position.
struct Saved {
  QString dataset, colourBy;
  bool sideBySide = false;
  QStringList visibleStructures;
  std::optional<std::array<double, 3>> camera;
};

Saved loadSession(const QString& path) {
  const QJsonObject o = readSessionFile(path);
  if (o.value("format").toString() != "atlascope-session") throw Error("not a session");
  Saved s;
  const QJsonArray datasets = o.value("datasets").toArray();
  if (!datasets.isEmpty()) {
    s.dataset = datasets[0].toObject().value("path").toString();
    s.colourBy = datasets[0].toObject().value("display").toObject().value("colour_by").toString();
  }
  const QJsonObject layout = o.value("layout").toObject();
  s.sideBySide = layout.value("rows").toInt() == 1 && layout.value("columns").toInt() == 2;
  for (const QJsonValue& v : o.value("structures").toArray())
    if (v.toObject().value("visible").toBool()) s.visibleStructures << v.toObject().value("acronym").toString();
  const QJsonObject cameras = o.value("cameras").toObject();
  if (!cameras.isEmpty()) {
    const QJsonArray p = cameras.begin().value().toObject().value("position").toArray();
    if (p.size() == 3) s.camera = std::array<double, 3>{p[0].toDouble(), p[1].toDouble(), p[2].toDouble()};
  }
  return s;
}

// The current dataset's colouring in a window.
QString colouring(MainWindow& w) {
  const DatasetDocument* d = w.workspace().dataset(w.workspace().currentDataset());
  return d ? d->display.colourBy : QString();
}

// Small HDF5 edits that make a good .h5ad bad in one way each (what a stranger's file may hold).
struct H5File {
  hid_t id;
  explicit H5File(const QString& path) : id(H5Fopen(path.toUtf8().constData(), H5F_ACC_RDWR, H5P_DEFAULT)) {}
  ~H5File() {
    if (id >= 0) H5Fclose(id);
  }
};

hsize_t elements(hid_t dataset) {
  const hid_t space = H5Dget_space(dataset);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  return static_cast<hsize_t>(n);
}

bool fillNaN(const QString& path, const char* dataset) {
  H5File f(path);
  const hid_t d = H5Dopen2(f.id, dataset, H5P_DEFAULT);
  if (d < 0) return false;
  std::vector<float> nan(elements(d), std::numeric_limits<float>::quiet_NaN());
  const bool ok = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, nan.data()) >= 0;
  H5Dclose(d);
  return ok;
}

// The first cell's code = the number of categories (one past the last).
bool codePastCategories(const QString& path, const char* column) {
  H5File f(path);
  const QByteArray group(column);
  const hid_t categories = H5Dopen2(f.id, group + "/categories", H5P_DEFAULT);
  const hid_t codes = H5Dopen2(f.id, group + "/codes", H5P_DEFAULT);
  if (categories < 0 || codes < 0) return false;
  std::vector<std::int32_t> all(elements(codes));
  bool ok = H5Dread(codes, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, all.data()) >= 0;
  all[0] = static_cast<std::int32_t>(elements(categories));
  ok = ok && H5Dwrite(codes, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, all.data()) >= 0;
  H5Dclose(codes);
  H5Dclose(categories);
  return ok;
}

// X replaced by a CSR matrix that claims 2^40 genes (the hanging `convert`).
bool absurdX(const QString& path, hsize_t cells) {
  H5File f(path);
  if (H5Ldelete(f.id, "/X", H5P_DEFAULT) < 0) return false;
  const hid_t x = H5Gcreate2(f.id, "/X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  auto stringAttribute = [](hid_t on, const char* name, const char* value) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, std::strlen(value));
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(on, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, value);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
  };
  stringAttribute(x, "encoding-type", "csr_matrix");
  stringAttribute(x, "encoding-version", "0.1.0");
  const std::int64_t shape[2] = {static_cast<std::int64_t>(cells), std::int64_t(1) << 40};
  const hsize_t two = 2;
  hid_t space = H5Screate_simple(1, &two, nullptr);
  const hid_t a = H5Acreate2(x, "shape", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, shape);
  H5Aclose(a);
  H5Sclose(space);
  auto write = [&](const char* name, hid_t type, const void* data, hsize_t n) {
    const hid_t s = H5Screate_simple(1, &n, nullptr);
    const hid_t d = H5Dcreate2(x, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(s);
  };
  const std::vector<std::int64_t> indptr(cells + 1, 0);
  const float value = 0;
  const std::int64_t index = 0;
  write("indptr", H5T_NATIVE_INT64, indptr.data(), indptr.size());
  write("data", H5T_NATIVE_FLOAT, &value, 1);
  write("indices", H5T_NATIVE_INT64, &index, 1);
  H5Gclose(x);
  return true;
}

} // namespace

class TestRecovery : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString data_;

  QString stateDir() const { return dir_.filePath("state"); }

  // The real binary, with this test's state folder and no dialogs.
  QProcessEnvironment environment() const {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("ATLASCOPE_STATE_DIR", stateDir());
    env.insert("ATLASCOPE_NO_DIALOGS", "1");
    return env;
  }
  // A run of the binary to its end (a one-shot run: --save-session); its exit status.
  int runToEnd(const QStringList& args) {
    QProcess p;
    p.setProcessEnvironment(environment());
    p.start(ATLASCOPE_GUI_BIN, args);
    if (!p.waitForFinished(180000)) {
      p.kill();
      p.waitForFinished();
      qWarning("atlascope %s did not end", qPrintable(args.join(' ')));
      return -1;
    }
    if (p.exitCode() != 0) qWarning("%s", p.readAllStandardError().constData());
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  }
  // The autosaved session in the recovery folder, once it holds `colourBy` (empty when none came).
  QString waitForAutosave(const QString& colourBy, int timeoutMs) {
    const QString recovery = QDir(stateDir()).filePath("recovery");
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < timeoutMs) {
      for (const QString& name : QDir(recovery).entryList({"session-*.json"}, QDir::Files)) {
        try {
          const Saved s = loadSession(QDir(recovery).filePath(name));
          if (s.dataset == data_ && s.colourBy == colourBy) return QDir(recovery).filePath(name);
        } catch (const std::exception&) {}
      }
      QTest::qWait(250);
    }
    return {};
  }
  // Starts the binary on the dataset with a few changes, waits for their autosave, then kills it
  // with SIGKILL (no clean exit): the session it had.
  Saved killAfterAutosave() {
    QProcess a;
    a.setProcessEnvironment(environment());
    a.start(ATLASCOPE_GUI_BIN, {"--open", data_, "--colour-by", "section", "--side-by-side", "--show", "CA1", "--view",
                                "dorsal", "--size", "1000x700"});
    const QString saved = waitForAutosave("section", 180000);
    Saved s;
    if (saved.isEmpty()) {
      a.kill();
      a.waitForFinished();
      return s;
    }
    s = loadSession(saved);
    // While it runs, its session is not another start's to take.
    if (!orphanedSessions(QDir(stateDir()).filePath("recovery")).empty()) s.dataset = "(offered while running)";
    a.kill(); // SIGKILL
    a.waitForFinished();
    return s;
  }

private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    data_ = dir_.filePath("cells.h5ad");
    generateBrain(data_, 3000);
    qputenv("ATLASCOPE_STATE_DIR", stateDir().toUtf8());
    qputenv("ATLASCOPE_NO_DIALOGS", "1");
  }

  // In the window: the dataset and a change are on disk within seconds; the file follows the
  // next change; no other start may take it while the window lives; a clean exit removes it.
  void autosaveFollowsChangesAndCleanExitRemovesIt() {
    const QString recovery = recoveryDir();
    QCOMPARE(recovery, QDir(stateDir()).filePath("recovery"));
    QString path;
    {
      StartupPatch o;
      o.show = QStringList{};
      o.datasets = {data_};
      MainWindow w({}, o);
      w.resize(1000, 700);
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr, 120000);
      auto* autosave = w.findChild<SessionAutosave*>();
      QVERIFY(autosave);
      path = autosave->path();
      QVERIFY(QFileInfo(path).absolutePath() == recovery);
      QTRY_VERIFY_WITH_TIMEOUT(QFileInfo::exists(path), 15000);
      QCOMPARE(loadSession(path).dataset, data_);
      w.workspace().setColourBy(w.workspace().currentDataset(), "section");
      w.workspace().setSideBySide(true);
      QTRY_VERIFY_WITH_TIMEOUT(loadSession(path).colourBy == "section", 15000);
      autosave->waitForWrites();
      const Saved s = loadSession(path);
      QVERIFY(s.sideBySide);
      QVERIFY(orphanedSessions(recovery).empty()); // this window's, locked
      QVERIFY(!recoverSession("yes", recovery));
      QVERIFY(QFileInfo::exists(path));
    }
    QVERIFY(!QFileInfo::exists(path));
    QVERIFY2(sessionFiles(recovery).isEmpty(), qPrintable(sessionFiles(recovery).join(", ")));
    // A window where nothing happens leaves nothing either.
    {
      StartupPatch o;
      o.show = QStringList{};
      MainWindow w({}, o);
      w.show();
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 120000);
      QTest::qWait(SessionAutosave::kPollMs + SessionAutosave::kQuietMs + 500);
      QVERIFY2(sessionFiles(recovery).isEmpty(), qPrintable(sessionFiles(recovery).join(", ")));
    }
  }

  // The real binary killed with SIGKILL after its autosave: a one-shot start without an answer
  // leaves the session for later; --restore-session yes brings back the dataset, its colouring,
  // the layout, the structures and the camera, and its clean exit leaves nothing; "no" discards.
  void crashRestoreOfTheRealBinary() {
    const QString recovery = QDir(stateDir()).filePath("recovery");
    QDir(recovery).removeRecursively();
    const Saved killed = killAfterAutosave();
    QCOMPARE(killed.dataset, data_);
    QCOMPARE(int(orphanedSessions(recovery).size()), 1);

    // Without an answer and without dialogs: nothing restored, nothing lost.
    const QString plain = dir_.filePath("plain.json");
    QCOMPARE(runToEnd({"--save-session", plain, "--size", "1000x700"}), 0);
    QVERIFY(loadSession(plain).dataset.isEmpty());
    QCOMPARE(int(orphanedSessions(recovery).size()), 1);

    const QString restoredPath = dir_.filePath("restored.json");
    QCOMPARE(runToEnd({"--restore-session", "yes", "--save-session", restoredPath, "--size", "1000x700"}), 0);
    const Saved r = loadSession(restoredPath);
    QCOMPARE(r.dataset, data_);
    QCOMPARE(r.colourBy, QString("section"));
    QVERIFY(r.sideBySide);
    QVERIFY2(r.visibleStructures.contains("CA1"), qPrintable(r.visibleStructures.join(",")));
    QVERIFY(r.camera && killed.camera);
    for (std::size_t i = 0; i < 3; ++i) QVERIFY(std::abs((*r.camera)[i] - (*killed.camera)[i]) < 1e-3);
    QVERIFY2(sessionFiles(recovery).isEmpty(),
             qPrintable(sessionFiles(recovery).join(", "))); // restored, then a clean exit

    // Killed again, then "no": the next start is the plain one, and nothing is left.
    QCOMPARE(killAfterAutosave().dataset, data_);
    const QString declined = dir_.filePath("declined.json");
    QCOMPARE(runToEnd({"--restore-session", "no", "--save-session", declined, "--size", "1000x700"}), 0);
    QVERIFY(loadSession(declined).dataset.isEmpty());
    QVERIFY2(sessionFiles(recovery).isEmpty(), qPrintable(sessionFiles(recovery).join(", ")));
    QCOMPARE(runToEnd({"--restore-session", "maybe", "--save-session", declined}), 2);
  }

  // Each class of bad file, opened over a good dataset: a clear error naming the file; the open
  // dataset, its cell count, colouring and legend stay; the window keeps working.
  void failedOpenLeavesTheOpenDataset() {
    StartupPatch o;
    o.show = QStringList{};
    o.datasets = {data_};
    o.colourBy = "type";
    MainWindow w({}, o);
    w.resize(1000, 700);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle() && w.cells() != nullptr && colouring(w) == "type", 120000);
    const CellTable* cells = w.cells();
    const std::int64_t count = cells->size();
    const std::size_t datasets = w.workspace().datasetIds().size();
    const int legend = child<QListWidget>(panel<CellPanel>(w), "cellLegend")->count();
    QVERIFY(legend > 1);

    struct Bad {
      QString name, path, expect; // expect: a word the error must hold besides the file name
    };
    std::vector<Bad> bad;
    // A CSV without coordinates.
    {
      const QString p = dir_.filePath("no-coordinates.csv");
      QFile f(p);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("cell_id,section,type,Gene1,Gene2\nc1,s1,A,1,2\nc2,s1,B,3,4\n");
      bad.push_back({"missing column", p, ""});
    }
    // A truncated .h5ad (a download cut short).
    {
      const QString p = dir_.filePath("truncated.h5ad");
      QVERIFY(QFile::copy(data_, p));
      QFile f(p);
      QVERIFY(f.resize(QFileInfo(data_).size() / 2));
      bad.push_back({"truncated h5ad", p, ""});
    }
    // Every coordinate NaN: no cell has a position.
    {
      const QString p = dir_.filePath("nan-coordinates.h5ad");
      QVERIFY(QFile::copy(data_, p));
      QFile::setPermissions(p, QFile::ReadOwner | QFile::WriteOwner);
      QVERIFY(fillNaN(p, "/obsm/ccf") && fillNaN(p, "/obsm/spatial"));
      bad.push_back({"NaN coordinates", p, ""});
    }
    // A categorical code one past its categories.
    {
      const QString p = dir_.filePath("code-past-categories.h5ad");
      QVERIFY(QFile::copy(data_, p));
      QFile::setPermissions(p, QFile::ReadOwner | QFile::WriteOwner);
      QVERIFY(codePastCategories(p, "/obs/subclass"));
      bad.push_back({"code past categories", p, ""});
    }
    // X claiming 2^40 genes.
    {
      const QString p = dir_.filePath("absurd-x.h5ad");
      QVERIFY(QFile::copy(data_, p));
      QFile::setPermissions(p, QFile::ReadOwner | QFile::WriteOwner);
      QVERIFY(absurdX(p, static_cast<hsize_t>(count)));
      bad.push_back({"absurd X shape", p, ""});
    }
    // Not a file: a folder named like a dataset.
    {
      const QString p = dir_.filePath("folder.h5ad");
      QVERIFY(QDir().mkpath(p));
      bad.push_back({"a folder", p, ""});
    }

    for (const Bad& b : bad) {
      w.openDataset(b.path);
      QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 120000);
      const QString error = w.datasetError();
      QVERIFY2(!error.isEmpty(), qPrintable(b.name + ": opened without an error"));
      QVERIFY2(error.contains(QFileInfo(b.path).fileName()), qPrintable(b.name + ": " + error));
      QVERIFY2(!error.contains('\n') && error.size() < 400, qPrintable(b.name + ": " + error));
      QVERIFY2(w.cells() == cells && w.cells()->size() == count,
               qPrintable(b.name + ": the open dataset was replaced"));
      QCOMPARE(w.workspace().datasetIds().size(), datasets); // the refused one's entry is gone
      QCOMPARE(colouring(w), QString("type"));
      QCOMPARE(child<QListWidget>(panel<CellPanel>(w), "cellLegend")->count(), legend);
      QVERIFY(w.cellCloud() && w.cellCloud()->size() == count);
      QVERIFY(w.isVisible());
      qInfo("%s: %s", qPrintable(b.name), qPrintable(error));
    }
    // Still working: another colouring, then the good dataset again.
    w.workspace().setColourBy(w.workspace().currentDataset(), "section");
    QCOMPARE(colouring(w), QString("section"));
    w.openDataset(data_);
    QTRY_VERIFY_WITH_TIMEOUT(w.isIdle(), 60000);
    QVERIFY(w.datasetError().isEmpty());
    QCOMPARE(w.cells()->size(), count);
  }
};

QTEST_MAIN(TestRecovery)
#include "test_recovery.moc"
