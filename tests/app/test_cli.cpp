// atlascope-cli as users and scripts call it: the atlas commands on the bundled CCF, --help on
// every command, and bad input answered by a one-line error and a non-zero exit.
#include "core/Hdf5File.h"
#include "core/RegionNames.h"
#include "tests/TestPaths.h"

#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

namespace {
struct Run {
  int code = -1;
  QString out, err;
};

Run cli(const QStringList& args, int timeoutMs = 120000) {
  QProcess p;
  p.start(QStringLiteral(ATLASCOPE_CLI), args);
  Run r;
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    return r;
  }
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2; // -2: crashed
  r.out = QString::fromUtf8(p.readAllStandardOutput());
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}

void expectOneLineError(const Run& r, const QString& fragment) {
  QVERIFY2(r.code > 0, qPrintable(QString("exit %1, stderr: %2").arg(r.code).arg(r.err)));
  const QStringList lines = r.err.trimmed().split('\n');
  QVERIFY2(lines.size() == 1, qPrintable("expected one line, got: " + r.err));
  QVERIFY2(r.err.contains(fragment, Qt::CaseInsensitive), qPrintable("expected '" + fragment + "' in: " + r.err));
}
} // namespace

class TestCli : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

private slots:
  void info() {
    const Run r = cli({"atlas", "info"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.contains("1327 structures"));
    QVERIFY(r.out.contains("528 x 320 x 456"));
    QVERIFY(r.out.contains("25 x 25 x 25 um"));
    QVERIFY(r.out.contains("671 distinct structure ids"));
    const Run j = cli({"atlas", "info", "--json"});
    QCOMPARE(j.code, 0);
    QVERIFY(j.out.contains("\"labels\":671"));
  }

  void lookup_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("expected");
    QTest::newRow("IMD voxel") << QStringList{"--voxel", "264", "160", "228"} << "59\tIMD";
    QTest::newRow("ACAv1 voxel") << QStringList{"--voxel", "200", "100", "228"} << "588\tACAv1";
    QTest::newRow("LGv um") << QStringList{"--um", "7512.5", "3762.5", "2862.5"} << "178\tLGv";
    QTest::newRow("MOs1 um") << QStringList{"--um", "3760", "1510", "7510"} << "656\tMOs1";
  }
  void lookup() {
    QFETCH(QStringList, args);
    QFETCH(QString, expected);
    const Run r = cli(QStringList{"atlas", "lookup"} + args);
    QCOMPARE(r.code, 0);
    QVERIFY2(r.out.startsWith(expected), qPrintable(r.out));
  }

  void lookupOutside() {
    const Run brainless = cli({"atlas", "lookup", "--um", "10", "10", "10"});
    QCOMPARE(brainless.code, 2);
    QVERIFY(brainless.out.contains("outside the brain"));
    expectOneLineError(cli({"atlas", "lookup", "--um", "20000", "10", "10"}), "outside the volume");
    expectOneLineError(cli({"atlas", "lookup", "--um", "1", "2"}), "--um");
    expectOneLineError(cli({"atlas", "lookup"}), "give --um");
  }

  void find() {
    const Run r = cli({"atlas", "find", "CA1"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.startsWith("382\tCA1\tField CA1"));
    QVERIFY(r.out.contains("CA1sp"));
    const Run none = cli({"atlas", "find", "zzzz"});
    QCOMPARE(none.code, 2);
  }

  void meshExport() {
    const QString out = dir_.filePath("cp.obj");
    const Run r = cli({"atlas", "mesh", "CP", "--out", out});
    QCOMPARE(r.code, 0);
    QVERIFY(QFileInfo(out).size() > 100000);
    QVERIFY(r.out.contains("volume"));
    expectOneLineError(cli({"atlas", "mesh", "NOPE", "--out", out}), "no structure");
    expectOneLineError(cli({"atlas", "mesh", "CP", "--out", dir_.filePath("cp.dwg")}), "unknown mesh format");
  }

  void helpEverywhere() {
    for (const QStringList& cmd : {QStringList{}, QStringList{"atlas"}, QStringList{"atlas", "info"}, QStringList{"atlas", "lookup"},
                                   QStringList{"atlas", "find"}, QStringList{"atlas", "mesh"}, QStringList{"atlas", "render"},
                                   QStringList{"device"}, QStringList{"generate"}, QStringList{"info"}, QStringList{"embed"},
                                   QStringList{"parity"}, QStringList{"bench", "embed"}, QStringList{"model", "import"},
                                   QStringList{"compare"}, QStringList{"bench", "compare"}, QStringList{"segment"},
                                   QStringList{"train"}}) {
      const Run r = cli(cmd + QStringList{"--help"});
      QVERIFY2(r.code == 0 && r.out.contains("Usage") , qPrintable(cmd.join(' ') + ": " + r.out + r.err));
    }
  }

  void generateInfoEmbed() {
    REQUIRE_SHARED("fixtures/celltransformer_parity_small.pth");
    const QString data = dir_.filePath("brain.h5ad");
    // The fixture model's panel: 40 genes, 16 cell types.
    Run g = cli({"generate", "--out", data, "--cells", "1500", "--genes", "40", "--types", "16", "--density", "3000", "--json"});
    QCOMPARE(g.code, 0);
    QVERIFY(g.out.contains("\"cells\":1500"));
    Run info = cli({"info", data, "--json"});
    QCOMPARE(info.code, 0);
    QVERIFY(info.out.contains("\"cells\":1500") && info.out.contains("\"genes\":40") && info.out.contains("\"cell_types\":16"));
    // The worker protocol: one JSON object per line, the last one the result.
    const QString pth = atlascope::test::sharedFile("fixtures/celltransformer_parity_small.pth");
    const QString out = dir_.filePath("emb.h5");
    const QString copy = dir_.filePath("brain-with-embedding.h5ad");
    Run e = cli({"embed", data, "--weights", pth, "--heads", "4", "--out", out, "--device", "cpu", "--progress", "json",
                 "--h5ad-out", copy});
    QVERIFY2(e.code == 0, qPrintable(e.err));
    const QStringList lines = e.out.trimmed().split('\n');
    QVERIFY(lines.size() >= 2);
    for (const QString& l : lines) QVERIFY2(l.startsWith('{') && l.endsWith('}'), qPrintable(l));
    QVERIFY(lines.first().contains("\"stage\""));
    QVERIFY(lines.last().contains("\"result\":\"ok\"") && lines.last().contains("\"cells\":1500"));
    QVERIFY(QFileInfo(out).size() > 1500 * 64 * 4);
    {
      atlascope::Hdf5File f(copy.toStdString());
      QCOMPARE(f.shape("/obsm/X_celltransformer"), (std::vector<std::int64_t>{1500, 64}));
      atlascope::Hdf5File e5(out.toStdString());
      QCOMPARE(f.readFloat("/obsm/X_celltransformer").data, e5.readFloat("/embedding").data);
    }
    // A dataset whose panel does not match the model, and a wrong weights file: one-line errors.
    const QString other = dir_.filePath("other.h5ad");
    QCOMPARE(cli({"generate", "--out", other, "--cells", "500", "--genes", "20", "--types", "16"}).code, 0);
    expectOneLineError(cli({"embed", other, "--weights", pth, "--heads", "4", "--out", out, "--device", "cpu"}), "expects 40 genes");
    expectOneLineError(cli({"embed", data, "--weights", data, "--out", out, "--device", "cpu"}), "not a CellTransformer model");
    expectOneLineError(cli({"embed", data, "--weights", pth, "--heads", "5", "--out", out, "--device", "cpu"}), "not divisible");
    expectOneLineError(cli({"embed", data, "--weights", pth, "--heads", "4", "--out", out, "--device", "cuda"}), "");
  }

  void compareWithCcf() {
    const QString data = dir_.filePath("cmp.h5ad");
    QCOMPARE(cli({"generate", "--out", data, "--cells", "3000", "--genes", "5", "--types", "10", "--hidden-subregions", "2"}).code, 0);
    const QString out = dir_.filePath("report");
    Run r = cli({"compare", data, "--labels", "ccf_structure_id", "--level", "leaf", "--out-dir", out});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    // The generator's own CCF column against the CCF looked up from the same coordinates: perfect.
    const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
    QCOMPARE(j["cells"].toInt(), 3000);
    for (const char* k : {"adjusted_rand", "adjusted_mutual_information", "v_measure"})
      QVERIFY2(std::abs(j[k].toDouble() - 1.0) < 1e-9, qPrintable(r.out));
    for (const char* f : {"summary.json", "overlap.csv", "best_matches.csv", "splits.csv"})
      QVERIFY2(QFileInfo(out + "/" + f).size() > 20, f);
    // Against another column and at the major-division level.
    QCOMPARE(cli({"compare", data, "--labels", "hidden_subregion", "--against", "ccf_structure_id", "--out-dir", out}).code, 0);
    QCOMPARE(cli({"compare", data, "--labels", "subclass", "--level", "major", "--out-dir", out}).code, 0);
    // No CCF coordinates: the comparison says so instead of failing.
    if (QFileInfo::exists(atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"))) {
      Run none = cli({"compare", atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"), "--labels", "cell_volume"});
      QCOMPARE(none.code, 0);
      QVERIFY(none.out.contains("no_ccf"));
    }
    // Region discovery without a model (the composition baseline), then scored against the CCF.
    const QString seg = dir_.filePath("segmented.h5ad");
    Run sg = cli({"segment", data, "--k", "5,20", "--out", seg, "--restarts", "1", "--device", "cpu", "--tree-csv",
                  dir_.filePath("tree.csv")});
    QVERIFY2(sg.code == 0, qPrintable(sg.err));
    QVERIFY(sg.out.contains("composition baseline"));
    {
      atlascope::Hdf5File f(seg.toStdString());
      QCOMPARE(f.readStrings("/obs/regions_k20/categories").size(), std::size_t(20));
      QCOMPARE(f.readStrings("/uns/regions_k5_colors").size(), std::size_t(5));
    }
    QFile tree(dir_.filePath("tree.csv"));
    QVERIFY(tree.open(QIODevice::ReadOnly));
    QCOMPARE(QString(tree.readAll()).count('\n'), 21); // header + one parent per fine region
    QCOMPARE(cli({"compare", seg, "--labels", "regions_k20", "--level", "major", "--out-dir", out}).code, 0);
    Run sm = cli({"segment", data, "--k", "5", "--out", seg, "--restarts", "1", "--device", "cpu", "--smooth", "--smooth-k", "30",
                  "--smooth-labels", "9"});
    QVERIFY2(sm.code == 0 && sm.out.contains("\"smoothing\""), qPrintable(sm.out + sm.err));
    expectOneLineError(cli({"segment", data, "--k", "5000", "--out", seg, "--device", "cpu"}), "is not between 1 and the number of cells");
    expectOneLineError(cli({"compare", data, "--labels", "nope"}), "missing required column 'nope'");
    expectOneLineError(cli({"compare", data, "--labels", "subclass", "--level", "sideways"}), "unknown CCF level");
  }

  void compareTwoAnimals() {
    // Two small animals, cut 200 um apart and deformed by up to 100 um, segmented without a model.
    const QString a = dir_.filePath("animal-a.h5ad"), b = dir_.filePath("animal-b.h5ad");
    const QStringList small{"--sections", "3", "--spacing", "400", "--density", "400", "--genes", "5", "--types", "10"};
    QCOMPARE(cli(QStringList{"generate", "--out", a} + small).code, 0);
    QCOMPARE(cli(QStringList{"generate", "--out", b, "--animal", "2", "--section-offset", "200", "--deformation", "100"} + small).code, 0);
    const QString sa = dir_.filePath("animal-a.regions.h5ad"), sb = dir_.filePath("animal-b.regions.h5ad");
    for (const auto& [in, out] : {std::make_pair(a, sa), std::make_pair(b, sb)}) {
      const Run s = cli({"segment", in, "--k", "4", "--out", out, "--restarts", "1", "--device", "cpu"});
      QVERIFY2(s.code == 0, qPrintable(s.err));
    }
    {
      // segment names each region after its best CCF match.
      atlascope::Hdf5File f(sa.toStdString());
      const auto names = f.readStrings("/uns/region_names/regions_k4");
      QCOMPARE(names.size(), std::size_t(4));
      for (const std::string& n : names)
        QVERIFY2(QRegularExpression(QString::fromUtf8("^k4-\\d \xc2\xb7 \\S+ \\d+%$")).match(QString::fromStdString(n)).hasMatch(), n.c_str());
    }
    // A user's name for one of B's regions is what the comparison shows.
    std::vector<std::string> edited = atlascope::readRegionNames(sb.toStdString(), "regions_k4");
    edited[2] = "my region";
    atlascope::writeRegionNames(sb.toStdString(), "regions_k4", edited);
    const QString out = dir_.filePath("two-animals");
    const Run r = cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--against-labels", "regions_k4", "--out-dir", out});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
    const QJsonObject ab = j["a_vs_b"].toObject();
    for (const char* k : {"ami", "ari", "nmi", "matched_share", "one_to_one", "splits", "merges", "joint_voxels"})
      QVERIFY2(ab.contains(k), k);
    QVERIFY(ab["matched_share"].toDouble() > 0 && ab["matched_share"].toDouble() <= 1);
    QVERIFY(ab["one_to_one"].toInt() >= 1 && ab["one_to_one"].toInt() <= 4);
    for (const char* side : {"a", "b"})
      for (const char* level : {"major", "leaf"})
        QVERIFY2(j[side].toObject()["ccf"].toObject()[level].toObject().contains("ami"), qPrintable(r.out));
    QFile summary(out + "/summary.json"), matches(out + "/matches.csv");
    QVERIFY(summary.open(QIODevice::ReadOnly) && matches.open(QIODevice::ReadOnly));
    QCOMPARE(QJsonDocument::fromJson(summary.readAll()).object()["a_vs_b"].toObject()["ami"].toDouble(), ab["ami"].toDouble());
    const QString table = QString::fromUtf8(matches.readAll());
    QVERIFY(table.startsWith("a_region,b_region,jaccard,kind,a_name,b_name,"));
    QVERIFY(table.contains(",one-to-one,"));
    QVERIFY(table.contains(QString::fromUtf8(" \xc2\xb7 ")));
    // Bad input: one line, non-zero.
    expectOneLineError(cli({"compare", sa, "--labels", "nope", "--against-dataset", sb, "--out-dir", out}), "missing required column 'nope'");
    expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--against-labels", "regions_k9", "--out-dir", out}),
                       "missing required column 'regions_k9'");
    expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--voxel-um", "30", "--out-dir", out}),
                       "multiple");
    expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-labels", "regions_k4"}), "needs --against-dataset");
    if (QFileInfo::exists(atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv")))
      expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-dataset",
                              atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"), "--against-labels", "cell_volume",
                              "--out-dir", out}),
                         "no CCF coordinates");
  }

  void trainThenEmbed() {
    const QString data = dir_.filePath("train.h5ad"), model = dir_.filePath("model.h5");
    QCOMPARE(cli({"generate", "--out", data, "--cells", "600", "--genes", "8", "--types", "8", "--density", "3000"}).code, 0);
    Run t = cli({"train", data, "--out", model, "--max-steps", "3", "--cells-per-step", "64", "--progress", "none"});
    QVERIFY2(t.code == 0 && t.out.contains("\"result\":\"ok\"") && t.out.contains("validation_pearson"), qPrintable(t.out + t.err));
    QVERIFY(QFileInfo::exists(model) && QFileInfo::exists(model + ".train") && QFileInfo::exists(model + ".train.adam"));
    QVERIFY(QFileInfo::exists(dir_.filePath("model.best.h5")));
    // Resuming continues the step count and keeps the log of the first run.
    t = cli({"train", data, "--out", model, "--max-steps", "5", "--cells-per-step", "64", "--progress", "none", "--resume"});
    QVERIFY2(t.code == 0 && t.out.contains("\"steps\":5"), qPrintable(t.out + t.err));
    QCOMPARE(cli({"embed", data, "--weights", model, "--out", dir_.filePath("e.h5"), "--device", "cpu", "--progress", "none"}).code, 0);
    expectOneLineError(cli({"train", data, "--out", model, "--precision", "bf16", "--device", "cpu"}), "GPU");
    if (!qEnvironmentVariableIsSet("ATLASCOPE_HAS_CUDA"))
      expectOneLineError(cli({"train", data, "--out", model, "--device", "cuda"}), "no CUDA device");
  }

  void badAtlasFiles() {
    QFile f(dir_.filePath("bad.nrrd"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("NRRD0004\ntype: uint32\ndimension: 3\nencoding: raw\n\n1234");
    f.close();
    expectOneLineError(cli({"atlas", "info", "--annotation", f.fileName()}), "no 'sizes'");
    expectOneLineError(cli({"atlas", "info", "--annotation", dir_.filePath("missing.nrrd")}), "missing.nrrd");
    expectOneLineError(cli({"atlas", "frobnicate"}), "frobnicate");
  }
};

QTEST_APPLESS_MAIN(TestCli)
#include "test_cli.moc"
