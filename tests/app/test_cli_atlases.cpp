// atlascope-cli with BrainGlobe atlases (issue 17): `atlas list`, `info`, `lookup`, `find`, `mesh`
// with --atlas NAME_OR_PATH, `atlas compare A B`, and bad atlases answered by a one-line error.
// Fixtures (v1 and v3, written from the bundled CCF at 100 um) by tests/BrainGlobeFixtures.h.
#include "core/AtlasCatalog.h"
#include "tests/BrainGlobeFixtures.h"
#include "tests/TestPaths.h"
#include "tests/app/CliRun.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>

using namespace atlascope;
namespace fs = std::filesystem;

namespace {
using Run = atlascope::app::test::CliRun;
using atlascope::app::test::expectOneLineError;

QString gConfigDir;

Run cli(const QStringList& args, int timeoutMs = 180000) {
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("BRAINGLOBE_CONFIG_DIR", gConfigDir);
  return atlascope::app::test::runCli(args, timeoutMs, env);
}

QJsonObject json(const Run& r) { return QJsonDocument::fromJson(r.out.trimmed().split('\n').last().toUtf8()).object(); }

} // namespace

class TestCliAtlases : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString v1_, v3_, coarse_, cut_;

private slots:
  void initTestCase() {
    if (!brainGlobeSupported()) QSKIP("this build reads no BrainGlobe atlases");
    const Atlas ccf = Atlas::load(bundledAtlasPaths());
    const fixtures::LabelGrid g = fixtures::downsample(ccf, 4);
    const std::string bg = dir_.filePath("bg").toStdString();
    v1_ = QString::fromStdString(fixtures::writeV1(bg, g, ccf.structures()));
    v3_ = QString::fromStdString(fixtures::writeV3(bg, g, ccf.structures()));
    fixtures::WriteOptions o;
    o.name = "ccf_depth5";
    coarse_ = QString::fromStdString(fixtures::writeV1(
        dir_.filePath("other").toStdString(), fixtures::coarsened(g, ccf.structures(), 5), ccf.structures(), o));
    // An atlas of another space: the first 60 AP planes only.
    fixtures::LabelGrid cut = g;
    cut.shape[0] = 60;
    cut.ids.clear();
    for (std::int64_t k = 0; k < g.shape[2]; ++k)
      for (std::int64_t j = 0; j < g.shape[1]; ++j)
        for (std::int64_t i = 0; i < 60; ++i) cut.ids.push_back(g.at(i, j, k));
    o.name = "front";
    cut_ = QString::fromStdString(fixtures::writeV1(dir_.filePath("other").toStdString(), cut, ccf.structures(), o));
    gConfigDir = dir_.filePath("config");
    fixtures::writeText(fs::path(gConfigDir.toStdString()) / "bg_config.conf",
                        "[default_dirs]\nbrainglobe_dir = " + bg + "\n");
  }

  void list() {
    const Run r = cli({"atlas", "list", "--json"});
    QCOMPARE(r.code, 0);
    const QJsonArray atlases = json(r)["atlases"].toArray();
    QCOMPARE(atlases.size(), 3); // ccf + v1 + v3
    QCOMPARE(atlases[0].toObject()["name"].toString(), QString("ccf"));
    QCOMPARE(atlases[1].toObject()["name"].toString(), QString("allen_mouse_100um"));
    const Run text = cli({"atlas", "list"});
    QVERIFY(text.out.contains("brainglobe-v3"));
  }

  void info() {
    for (const QString& atlas : {v1_, v3_, QString("allen_mouse_100um")}) {
      const Run r = cli({"atlas", "info", "--atlas", atlas, "--json"});
      QVERIFY2(r.code == 0, qPrintable(r.err));
      const QJsonObject j = json(r);
      QCOMPARE(j["name"].toString(), QString("allen_mouse_100um"));
      QCOMPARE(j["shape"].toArray()[0].toInt(), 132);
      QCOMPARE(j["spacing_um"].toArray()[2].toDouble(), 100.0);
      QCOMPARE(j["orientation"].toString(), QString("asr"));
      qInfo("atlas info --atlas %s: opened in %.3f s", qPrintable(j["format"].toString()),
            j["open_seconds"].toDouble());
    }
    const Run text = cli({"atlas", "info", "--atlas", v1_});
    QVERIFY2(text.out.contains("allen_mouse_100um (brainglobe-v1, version 1.2"), qPrintable(text.out));
    // The bundled CCF as before.
    const Run ccf = cli({"atlas", "info", "--json"});
    QCOMPARE(json(ccf)["name"].toString(), QString("ccf"));
    QCOMPARE(json(ccf)["shape"].toArray()[0].toInt(), 528);
  }

  void lookupEqualsCcf() {
    const QStringList point{"--um", "4500", "4000", "2500", "--json"};
    const Run ccf = cli(QStringList{"atlas", "lookup"} + point);
    QCOMPARE(ccf.code, 0);
    for (const QString& atlas : {v1_, v3_}) {
      const Run r = cli(QStringList{"atlas", "lookup", "--atlas", atlas} + point);
      QVERIFY2(r.code == 0, qPrintable(r.err));
      QCOMPARE(json(r)["acronym"].toString(), json(ccf)["acronym"].toString());
      QCOMPARE(json(r)["hemisphere"].toString(), QString("left"));
    }
    const Run outside = cli({"atlas", "lookup", "--atlas", v3_, "--voxel", "0", "0", "0"});
    QCOMPARE(outside.code, 2);
  }

  void find() {
    const Run r = cli({"atlas", "find", "Caudoputamen", "--atlas", v3_});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(r.out.startsWith("672\tCP\tCaudoputamen"));
  }

  void ownMesh() {
    const QString out = dir_.filePath("root.obj");
    const Run r = cli({"atlas", "mesh", "root", "--atlas", v1_, "--source", "atlas", "--out", out});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(r.out.contains("4 points, 4 triangles"));
    expectOneLineError(cli({"atlas", "mesh", "CP", "--atlas", v1_, "--source", "atlas", "--out", out}), "no mesh");
  }

  void compare() {
    const QString out = dir_.filePath("cmp");
    const Run r = cli({"atlas", "compare", v1_, coarse_, "--out-dir", out});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const QJsonObject j = json(r);
    QCOMPARE(j["a"].toString(), QString("allen_mouse_100um"));
    QCOMPARE(j["b"].toString(), QString("ccf_depth5_100um"));
    QCOMPARE(j["best_depth_of_a"].toObject()["depth"].toInt(), 5);
    QVERIFY(j["scores"].toObject()["ami"].toDouble() > 0.3);
    qInfo("atlas compare (100 um CCF vs its depth-5 self): %s", qPrintable(r.out.trimmed()));
    for (const char* f : {"summary.json", "overlap.csv", "best_matches.csv", "splits.csv", "matches.csv"})
      QVERIFY2(QFileInfo::exists(out + "/" + f), f);
  }

  void cellsAgainstAnAtlas() {
    // Cells with CCF coordinates scored against a BrainGlobe atlas of the CCF's space (here the CCF
    // itself at 100 um): the generator's own CCF labels agree with it nearly as with the CCF.
    const QString data = dir_.filePath("cells.h5ad");
    QCOMPARE(cli({"generate", "--out", data, "--cells", "3000", "--genes", "5", "--types", "10"}).code, 0);
    const QString out = dir_.filePath("cells-report");
    const Run ccf = cli({"compare", data, "--labels", "ccf_structure_id", "--level", "leaf", "--out-dir", out});
    const Run bg =
        cli({"compare", data, "--labels", "ccf_structure_id", "--level", "leaf", "--atlas", v3_, "--out-dir", out});
    QVERIFY2(ccf.code == 0 && bg.code == 0, qPrintable(ccf.err + bg.err));
    const double amiCcf = json(ccf)["adjusted_mutual_information"].toDouble();
    const double amiBg = json(bg)["adjusted_mutual_information"].toDouble();
    qInfo("cells' CCF labels vs the atlas' structures: bundled CCF AMI %.4f, BrainGlobe 100 um AMI %.4f", amiCcf,
          amiBg);
    QVERIFY(std::abs(amiCcf - 1.0) < 1e-9);
    QVERIFY(amiBg > 0.6 && amiBg < amiCcf); // a coarser grid of the same labels
    QCOMPARE(json(bg)["reference"].toString(), QString("allen_mouse_100um_leaf"));
    // Segment scores its regions against the same atlas.
    const QString seg = dir_.filePath("seg.h5ad");
    const Run s =
        cli({"segment", data, "--k", "5", "--out", seg, "--restarts", "1", "--device", "cpu", "--atlas", v1_});
    QVERIFY2(s.code == 0, qPrintable(s.err));
    QVERIFY2(s.out.contains("allen_mouse_100um_major"), qPrintable(s.out));
    // An atlas of another space: refused, saying why.
    expectOneLineError(cli({"compare", data, "--labels", "ccf_structure_id", "--atlas", cut_}),
                       "does not cover the CCF's space");
  }

  void badAtlases() {
    expectOneLineError(cli({"atlas", "info", "--atlas", dir_.filePath("nowhere/at/all")}), "no such file");
    expectOneLineError(cli({"atlas", "info", "--atlas", "kim_mouse_10um"}), "no atlas named");
    expectOneLineError(cli({"atlas", "info", "--atlas", v1_, "--ontology", v1_ + "/structures.json"}),
                       "do not go together");
    fs::remove(fs::path(coarse_.toStdString()) / "annotation.tiff");
    expectOneLineError(cli({"atlas", "compare", v1_, coarse_}), "annotation.tiff");
  }
};

QTEST_GUILESS_MAIN(TestCliAtlases)
#include "test_cli_atlases.moc"
