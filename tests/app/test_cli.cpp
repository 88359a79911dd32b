// atlascope-cli as users and scripts call it: the atlas commands on the bundled CCF, --help on
// every command, and bad input answered by a one-line error and a non-zero exit.
#include "core/Gzip.h"
#include "core/Hdf5File.h"
#include "core/RegionNames.h"
#include "tests/AnnDataFixtures.h"
#include "tests/TestPaths.h"
#include "tests/ZipTestUtil.h"
#include "tests/app/CliRun.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

namespace {
using Run = atlascope::app::test::CliRun;
using atlascope::app::test::expectOneLineError;

Run cli(const QStringList& args, int timeoutMs = 120000) { return atlascope::app::test::runCli(args, timeoutMs); }
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
    for (const QStringList& cmd : {QStringList{},
                                   QStringList{"atlas"},
                                   QStringList{"atlas", "info"},
                                   QStringList{"atlas", "lookup"},
                                   QStringList{"atlas", "find"},
                                   QStringList{"atlas", "mesh"},
                                   QStringList{"atlas", "render"},
                                   QStringList{"device"},
                                   QStringList{"generate"},
                                   QStringList{"info"},
                                   QStringList{"embed"},
                                   QStringList{"parity"},
                                   QStringList{"bench", "embed"},
                                   QStringList{"model", "import"},
                                   QStringList{"compare"},
                                   QStringList{"bench", "compare"},
                                   QStringList{"bench", "gemm-gelu"},
                                   QStringList{"bench", "attention"},
                                   QStringList{"segment"},
                                   QStringList{"train"},
                                   QStringList{"celltypes"}}) {
      const Run r = cli(cmd + QStringList{"--help"});
      QVERIFY2(r.code == 0 && r.out.contains("Usage"), qPrintable(cmd.join(' ') + ": " + r.out + r.err));
    }
    // Checked before any GPU is looked for.
    expectOneLineError(cli({"bench", "gemm-gelu", "--rows", "0"}), "--rows");
    expectOneLineError(cli({"bench", "embed", "--trace-batches", "0"}), "--trace-batches");
    expectOneLineError(cli({"bench", "attention", "--mean-length", "1"}), "--mean-length");
    expectOneLineError(cli({"bench", "embed", "--attention-kernel", "7"}), "--attention-kernel");
    expectOneLineError(cli({"bench", "embed", "--fp8-erf-gelu"}), "--fp8-feed-forward");
    expectOneLineError(cli({"segment", QString(__FILE__), "--out", "r.h5", "--fp8-feed-forward"}), "--weights");
  }

  void generateInfoEmbed() {
    REQUIRE_SHARED("fixtures/celltransformer_parity_small.pth");
    const QString data = dir_.filePath("brain.h5ad");
    // The fixture model's panel: 40 genes, 16 cell types.
    Run g = cli({"generate", "--out", data, "--cells", "1500", "--genes", "40", "--types", "16", "--density", "3000",
                 "--json"});
    QCOMPARE(g.code, 0);
    QVERIFY(g.out.contains("\"cells\":1500"));
    Run info = cli({"info", data, "--json"});
    QCOMPARE(info.code, 0);
    QVERIFY(info.out.contains("\"cells\":1500") && info.out.contains("\"genes\":40") &&
            info.out.contains("\"cell_types\":16"));
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
    // --fp8-feed-forward (here its CPU path): said in the result and in the file, each cell's
    // embedding close to the default's but not the same numbers.
    const QString out8 = dir_.filePath("emb8.h5");
    Run e8 = cli({"embed", data, "--weights", pth, "--heads", "4", "--out", out8, "--device", "cpu", "--progress",
                  "json", "--fp8-feed-forward"});
    QVERIFY2(e8.code == 0, qPrintable(e8.err));
    QVERIFY2(e8.out.contains("\"fp8_feed_forward\":true"), qPrintable(e8.out));
    {
      atlascope::Hdf5File a(out.toStdString()), b(out8.toStdString());
      QVERIFY(QString::fromStdString(b.readStringAttribute("/", "precision")).contains("e4m3"));
      QCOMPARE(QString::fromStdString(a.readStringAttribute("/", "precision")), QString("float32"));
      const auto x = a.readFloat("/embedding").data, y = b.readFloat("/embedding").data;
      QCOMPARE(x.size(), y.size());
      double worst = 1, differ = 0;
      for (std::size_t r = 0; r < 1500; ++r) {
        double xy = 0, xx = 0, yy = 0;
        for (std::size_t c = r * 64; c < (r + 1) * 64; ++c) {
          xy += double(x[c]) * y[c];
          xx += double(x[c]) * x[c];
          yy += double(y[c]) * y[c];
          differ = std::max(differ, std::abs(double(x[c]) - y[c]));
        }
        worst = std::min(worst, xy / std::sqrt(xx * yy));
      }
      qInfo("--fp8-feed-forward: smallest cosine to the float32 embedding %.6f", worst);
      QVERIFY(worst > 0.999);
      QVERIFY(differ > 1e-4);
    }
    // A dataset whose panel does not match the model, and a wrong weights file: one-line errors.
    const QString other = dir_.filePath("other.h5ad");
    QCOMPARE(cli({"generate", "--out", other, "--cells", "500", "--genes", "20", "--types", "16"}).code, 0);
    expectOneLineError(cli({"embed", other, "--weights", pth, "--heads", "4", "--out", out, "--device", "cpu"}),
                       "expects 40 genes");
    expectOneLineError(cli({"embed", data, "--weights", data, "--out", out, "--device", "cpu"}),
                       "not a CellTransformer model");
    expectOneLineError(cli({"embed", data, "--weights", pth, "--heads", "5", "--out", out, "--device", "cpu"}),
                       "not divisible");
    expectOneLineError(cli({"embed", data, "--weights", pth, "--heads", "4", "--out", out, "--device", "cuda"}), "");
  }

  void compareWithCcf() {
    const QString data = dir_.filePath("cmp.h5ad");
    QCOMPARE(
        cli({"generate", "--out", data, "--cells", "3000", "--genes", "5", "--types", "10", "--hidden-subregions", "2"})
            .code,
        0);
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
    QCOMPARE(
        cli({"compare", data, "--labels", "hidden_subregion", "--against", "ccf_structure_id", "--out-dir", out}).code,
        0);
    QCOMPARE(cli({"compare", data, "--labels", "subclass", "--level", "major", "--out-dir", out}).code, 0);
    // No CCF coordinates: the comparison says so instead of failing.
    if (QFileInfo::exists(atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"))) {
      Run none = cli(
          {"compare", atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"), "--labels", "cell_volume"});
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
    Run sm = cli({"segment", data, "--k", "5", "--out", seg, "--restarts", "1", "--device", "cpu", "--smooth",
                  "--smooth-k", "30", "--smooth-labels", "9"});
    QVERIFY2(sm.code == 0 && sm.out.contains("\"smoothing\""), qPrintable(sm.out + sm.err));
    expectOneLineError(cli({"segment", data, "--k", "5000", "--out", seg, "--device", "cpu"}),
                       "is not between 1 and the number of cells");
    expectOneLineError(cli({"compare", data, "--labels", "nope"}), "missing required column 'nope'");
    expectOneLineError(cli({"compare", data, "--labels", "subclass", "--level", "sideways"}), "unknown CCF level");
  }

  void compareTwoAnimals() {
    // Two small animals, cut 200 um apart and deformed by up to 100 um, segmented without a model.
    const QString a = dir_.filePath("animal-a.h5ad"), b = dir_.filePath("animal-b.h5ad");
    const QStringList small{"--sections", "3", "--spacing", "400", "--density", "400", "--genes", "5", "--types", "10"};
    QCOMPARE(cli(QStringList{"generate", "--out", a} + small).code, 0);
    QCOMPARE(
        cli(QStringList{"generate", "--out", b, "--animal", "2", "--section-offset", "200", "--deformation", "100"} +
            small)
            .code,
        0);
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
        QVERIFY2(QRegularExpression(QString::fromUtf8("^k4-\\d \xc2\xb7 \\S+ \\d+%$"))
                     .match(QString::fromStdString(n))
                     .hasMatch(),
                 n.c_str());
    }
    // A user's name for one of B's regions is what the comparison shows.
    std::vector<std::string> edited = atlascope::readRegionNames(sb.toStdString(), "regions_k4");
    edited[2] = "my region";
    atlascope::writeRegionNames(sb.toStdString(), "regions_k4", edited);
    const QString out = dir_.filePath("two-animals");
    const Run r = cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--against-labels",
                       "regions_k4", "--out-dir", out});
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
    QCOMPARE(QJsonDocument::fromJson(summary.readAll()).object()["a_vs_b"].toObject()["ami"].toDouble(),
             ab["ami"].toDouble());
    const QString table = QString::fromUtf8(matches.readAll());
    QVERIFY(table.startsWith("a_region,b_region,jaccard,kind,a_name,b_name,"));
    QVERIFY(table.contains(",one-to-one,"));
    QVERIFY(table.contains(QString::fromUtf8(" \xc2\xb7 ")));
    // Bad input: one line, non-zero.
    expectOneLineError(cli({"compare", sa, "--labels", "nope", "--against-dataset", sb, "--out-dir", out}),
                       "missing required column 'nope'");
    expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--against-labels",
                            "regions_k9", "--out-dir", out}),
                       "missing required column 'regions_k9'");
    expectOneLineError(
        cli({"compare", sa, "--labels", "regions_k4", "--against-dataset", sb, "--voxel-um", "30", "--out-dir", out}),
        "multiple");
    expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-labels", "regions_k4"}),
                       "needs --against-dataset");
    if (QFileInfo::exists(atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv")))
      expectOneLineError(cli({"compare", sa, "--labels", "regions_k4", "--against-dataset",
                              atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"), "--against-labels",
                              "cell_volume", "--out-dir", out}),
                         "no CCF coordinates");
  }

  void trainThenEmbed() {
    const QString data = dir_.filePath("train.h5ad"), model = dir_.filePath("model.h5");
    QCOMPARE(
        cli({"generate", "--out", data, "--cells", "600", "--genes", "8", "--types", "8", "--density", "3000"}).code,
        0);
    Run t = cli({"train", data, "--out", model, "--max-steps", "3", "--cells-per-step", "64", "--progress", "none"});
    QVERIFY2(t.code == 0 && t.out.contains("\"result\":\"ok\"") && t.out.contains("validation_pearson"),
             qPrintable(t.out + t.err));
    QVERIFY(QFileInfo::exists(model) && QFileInfo::exists(model + ".train") &&
            QFileInfo::exists(model + ".train.adam"));
    // One validation: the best checkpoint is the checkpoint (a second name for it, the same bytes).
    auto bytes = [](const QString& path) {
      QFile f(path);
      return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
    };
    const QByteArray first = bytes(model);
    QVERIFY(!first.isEmpty());
    QVERIFY(std::filesystem::equivalent(model.toStdString(), dir_.filePath("model.best.h5").toStdString()));
    auto resultOf = [](const QString& out) { // the run's last line
      return QJsonDocument::fromJson(out.trimmed().split('\n').last().toUtf8()).object();
    };
    const double firstNll = resultOf(t.out)["validation_nll"].toDouble();
    // Resuming continues the step count and keeps the log of the first run; the new checkpoint
    // replaces the file's name, so the best is either the first run's bytes or the new ones.
    t = cli({"train", data, "--out", model, "--max-steps", "5", "--cells-per-step", "64", "--progress", "none",
             "--resume"});
    QVERIFY2(t.code == 0 && t.out.contains("\"steps\":5"), qPrintable(t.out + t.err));
    // The new checkpoint replaced the name, not the file: the best is the first run's bytes unless
    // this run's validation was better.
    const QByteArray best = bytes(dir_.filePath("model.best.h5"));
    QVERIFY(bytes(model) != first);
    if (resultOf(t.out)["validation_nll"].toDouble() < firstNll)
      QVERIFY(std::filesystem::equivalent(model.toStdString(), dir_.filePath("model.best.h5").toStdString()));
    else
      QCOMPARE(best, first);
    QCOMPARE(cli({"embed", data, "--weights", model, "--out", dir_.filePath("e.h5"), "--device", "cpu", "--progress",
                  "none"})
                 .code,
             0);
    expectOneLineError(cli({"train", data, "--out", model, "--precision", "bf16", "--device", "cpu"}), "GPU");
    if (!qEnvironmentVariableIsSet("ATLASCOPE_HAS_CUDA"))
      expectOneLineError(cli({"train", data, "--out", model, "--device", "cuda"}), "no CUDA device");
  }

  // The real MOp slice, untyped: types from expression, then a compact model for one epoch and
  // regions from its embeddings, all on the CPU; the regions are spatial patches.
  void untypedSliceToRegions() {
    REQUIRE_SHARED("data/merfish/zhuang_mop_slice1.csv");
    const QString slice = atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv");
    const QString typed = dir_.filePath("slice1.typed.h5ad"), model = dir_.filePath("slice1.model.h5");
    const QString regions = dir_.filePath("slice1.regions.h5ad");
    expectOneLineError(cli({"train", slice, "--out", model, "--device", "cpu"}), "atlascope-cli celltypes");
    Run t = cli({"celltypes", slice, "--out", typed, "--device", "cpu", "--progress", "json"});
    QVERIFY2(t.code == 0, qPrintable(t.err));
    const QStringList lines = t.out.trimmed().split('\n');
    for (const QString& l : lines) QVERIFY2(l.startsWith('{') && l.endsWith('}'), qPrintable(l));
    QVERIFY(lines.first().contains("\"stage\""));
    const QJsonObject j = QJsonDocument::fromJson(lines.last().toUtf8()).object();
    QCOMPARE(j["result"].toString(), QString("ok"));
    QCOMPARE(j["column"].toString(), QString("celltype_leiden"));
    const int types = j["types"].toInt();
    qInfo("real slice: %d types, %s", types,
          qPrintable(QJsonDocument(j["seconds_by_step"].toObject()).toJson(QJsonDocument::Compact)));
    QVERIFY2(types >= 10 && types <= 40, qPrintable(lines.last()));
    QCOMPARE(j["cells"].toInt(), 2109);
    {
      atlascope::Hdf5File f(typed.toStdString());
      QCOMPARE(f.readStrings("/uns/celltype_leiden_colors").size(), static_cast<std::size_t>(types));
      QCOMPARE(f.children("/uns/celltype_leiden_markers").size(), static_cast<std::size_t>(types));
      QVERIFY(f.exists("/layers/counts") && f.exists("/obsm/X_pca")); // X: log1p of the intensities
    }
    // The same seed, the same types.
    Run again = cli({"celltypes", slice, "--out", dir_.filePath("again.h5ad"), "--device", "cpu"});
    QVERIFY2(again.code == 0, qPrintable(again.err));
    QCOMPARE(QJsonDocument::fromJson(again.out.toUtf8()).object()["markers"], j["markers"]);

    Run tr = cli({"train", typed, "--type", "celltype_leiden", "--size", "compact", "--epochs", "1", "--device", "cpu",
                  "--out", model, "--progress", "none"});
    QVERIFY2(tr.code == 0 && tr.out.contains("\"result\":\"ok\""), qPrintable(tr.out + tr.err));
    Run sg = cli({"segment", typed, "--type", "celltype_leiden", "--weights", model, "--k", "8", "--device", "cpu",
                  "--out", regions});
    QVERIFY2(sg.code == 0, qPrintable(sg.err));
    const QJsonObject r = QJsonDocument::fromJson(sg.out.toUtf8()).object();
    QCOMPARE(r["features"].toString(), QString("CellTransformer embedding"));
    const double coherence = r["resolutions"].toArray()[0].toObject()["spatial_coherence"].toDouble();
    // Against labels scattered at random with the same sizes: a neighbour shares a cell's label
    // with probability sum(p^2).
    atlascope::Hdf5File f(regions.toStdString());
    const auto codes = f.readInt64("/obs/regions_k8/codes").data;
    std::vector<double> share(8, 0);
    for (auto c : codes) share[static_cast<std::size_t>(c)] += 1.0 / static_cast<double>(codes.size());
    double chance = 0;
    for (double p : share) chance += p * p;
    qInfo("real slice, k 8: spatial coherence %.3f (scattered at random: %.3f)", coherence, chance);
    QVERIFY2(coherence > 2 * chance, qPrintable(sg.out));
  }

  // A release as one file per slice (the real slice cut in three by x): one dataset, sections
  // from the file names; bad sets answered by one-line errors naming the file.
  void severalFilesAsOneDataset() {
    REQUIRE_SHARED("data/merfish/zhuang_mop_slice1.csv");
    QFile in(atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv"));
    QVERIFY(in.open(QIODevice::ReadOnly));
    const QByteArray header = in.readLine();
    QList<QByteArray> rows;
    while (!in.atEnd()) rows.push_back(in.readLine());
    const QString release = dir_.filePath("release");
    QDir().mkpath(release);
    QList<QFile*> parts;
    for (int p = 1; p <= 3; ++p) {
      parts.push_back(new QFile(release + QString("/mop_slice%1.csv").arg(p), this));
      QVERIFY(parts.back()->open(QIODevice::WriteOnly));
      parts.back()->write(header);
    }
    for (const QByteArray& row : rows) {
      const double x = row.split(',')[2].toDouble(); // pos_x
      parts[x < 2500 ? 0 : x < 3500 ? 1 : 2]->write(row);
    }
    for (QFile* f : parts) f->close();

    Run info = cli({"info", release, "--section-from-filename", "slice(\\d+)", "--json"});
    QVERIFY2(info.code == 0, qPrintable(info.err));
    const QJsonObject i = QJsonDocument::fromJson(info.out.toUtf8()).object();
    QCOMPARE(i["cells"].toInt(), 2109);
    QCOMPARE(i["genes"].toInt(), 254);
    QCOMPARE(i["section_names"].toArray(), (QJsonArray{"1", "2", "3"}));
    Run typed = cli({"celltypes", release + "/mop_slice1.csv", release + "/mop_slice2.csv", release + "/mop_slice3.csv",
                     "--out", dir_.filePath("release.typed.h5ad"), "--device", "cpu"});
    QVERIFY2(typed.code == 0 && typed.out.contains("\"cells\":2109"), qPrintable(typed.out + typed.err));

    // A slice without one gene, with another column, with a repeated id, and an empty one.
    auto variant = [&](const QString& name, const std::function<QByteArray(const QByteArray&)>& edit) {
      QFile src(release + "/mop_slice2.csv"), dst(dir_.filePath(name));
      src.open(QIODevice::ReadOnly);
      dst.open(QIODevice::WriteOnly);
      dst.write(edit(src.readAll()));
      return dst.fileName();
    };
    const QString one = release + "/mop_slice1.csv";
    const QString noGene = variant("no_gene.csv", [](QByteArray t) {
      QList<QByteArray> lines = t.split('\n');
      for (auto& l : lines) {
        QList<QByteArray> f = l.split(',');
        if (f.size() > 5) f.removeAt(5);
        l = f.join(',');
      }
      return lines.join('\n');
    });
    expectOneLineError(cli({"info", one, noGene}), "no_gene.csv: its gene panel differs");
    QVERIFY(cli({"info", one, noGene}).err.contains("lacks 1810046K07Rik"));
    QCOMPARE(cli({"info", one, noGene, "--genes", "common", "--json"}).out.contains("\"genes\":253"), true);
    const QString extra = variant("extra_column.csv", [](QByteArray t) {
      QList<QByteArray> lines = t.split('\n');
      for (int k = 0; k < lines.size(); ++k)
        if (!lines[k].isEmpty()) lines[k] += k == 0 ? ",fov" : ",a";
      return lines.join('\n');
    });
    expectOneLineError(cli({"info", one, extra}), "extra_column.csv: has other columns");
    const QString dup = variant("dup.csv", [](QByteArray t) {
      const QList<QByteArray> lines = t.split('\n');
      return t + lines[1] + "\n";
    });
    expectOneLineError(cli({"info", one, dup}), "dup.csv: line");
    QVERIFY(cli({"info", one, dup}).err.contains("duplicate cell id"));
    const QString empty = variant("empty.csv", [](const QByteArray&) { return QByteArray(); });
    expectOneLineError(cli({"info", one, empty}), "empty.csv: empty file");
  }

  // Typing as a worker job: JSON progress, and SIGTERM stops it without an output.
  void cellTypesCancel() {
    const QString data = dir_.filePath("cancel.h5ad"), out = dir_.filePath("cancel.typed.h5ad");
    QCOMPARE(cli({"generate", "--out", data, "--cells", "20000", "--genes", "100", "--types", "20"}).code, 0);
    QProcess p;
    p.start(QStringLiteral(ATLASCOPE_CLI), {"celltypes", data, "--out", out, "--device", "cpu", "--progress", "json"});
    QVERIFY(p.waitForStarted());
    QVERIFY(p.waitForReadyRead(60000));
    ::kill(static_cast<pid_t>(p.processId()), SIGTERM);
    QVERIFY(p.waitForFinished(60000));
    const QString o = QString::fromUtf8(p.readAllStandardOutput());
    QCOMPARE(p.exitCode(), 130);
    QVERIFY2(o.trimmed().split('\n').last().contains("\"result\":\"cancelled\""), qPrintable(o));
    QVERIFY(!QFileInfo::exists(out));
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

  // Issue 14's three defects, as a user met them through the CLI.
  void codesPastCategories() {
    // convert died with SIGSEGV (csvField indexed the names with the code); info said nothing.
    const std::string p = dir_.filePath("codes.h5ad").toStdString();
    atlascope::test::writeAnnData(p, atlascope::test::AnnDataCase::CodePastCategories);
    const QString fragment = "'/obs/subclass/codes'[4] = 3, but there are 3 categories";
    expectOneLineError(cli({"convert", QString::fromStdString(p), "--out", dir_.filePath("codes.csv")}), fragment);
    expectOneLineError(cli({"convert", QString::fromStdString(p), "--out", dir_.filePath("codes-out.h5ad")}), fragment);
    expectOneLineError(cli({"info", QString::fromStdString(p)}), fragment);
    QVERIFY(!QFileInfo::exists(dir_.filePath("codes.csv")));
  }

  void hugeXShape() {
    // X claiming 6 x 2^40 (dense and sparse): convert hung (a name for each of 2^40 genes).
    for (const auto c : {atlascope::test::AnnDataCase::HugeDenseX, atlascope::test::AnnDataCase::HugeSparseX}) {
      const std::string p = dir_.filePath("huge.h5ad").toStdString();
      atlascope::test::writeAnnData(p, c);
      QElapsedTimer clock;
      clock.start();
      const Run r = cli({"convert", QString::fromStdString(p), "--out", dir_.filePath("huge.csv")}, 20000);
      QVERIFY2(r.code != -1, "convert still running after 20 s");
      expectOneLineError(r, "1099511627776");
      QVERIFY(clock.elapsed() < 20000);
    }
  }

  void damagedWeights() {
    // A .pth with flipped tensor bytes or a lying local header loaded silently, and parity then
    // failed with every error null and nothing on stderr.
    REQUIRE_SHARED("fixtures/celltransformer_parity_small.pth");
    const QString fixture = atlascope::test::sharedFile("fixtures/celltransformer_parity_small.h5");
    const auto bytes = atlascope::readFileBytes(
        atlascope::test::sharedFile("fixtures/celltransformer_parity_small.pth").toStdString());
    const auto member = atlascope::test::zipMember(bytes, "/data/3");
    auto write = [&](const char* name, const std::vector<std::uint8_t>& b) {
      std::ofstream(dir_.filePath(name).toStdString(), std::ios::binary)
          .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
      return dir_.filePath(name);
    };
    auto flipped = bytes;
    for (std::size_t i = 0; i < 16; ++i) flipped[member.data + i] ^= 0xff;
    const QString memberName = "zip member '" + QString::fromStdString(member.name) + "'";
    expectOneLineError(cli({"parity", fixture, "--weights", write("flipped.pth", flipped)}), memberName);
    auto lying = bytes;
    lying[member.local + 26] = static_cast<std::uint8_t>(lying[member.local + 26] + 2);
    expectOneLineError(cli({"parity", fixture, "--weights", write("lying.pth", lying)}), memberName);
    // Damage the CRC cannot see (NaN weights written with a fresh CRC): parity fails and says
    // why on stderr, besides its JSON line.
    auto nan = bytes;
    for (const auto& m : atlascope::test::zipMembers(bytes)) {
      if (m.name.find("/data/") == std::string::npos) continue;
      for (std::size_t i = 0; i + 4 <= m.size; i += 4) {
        const std::uint8_t quietNaN[4] = {0x00, 0x00, 0xc0, 0x7f}; // float32, little-endian
        std::copy(quietNaN, quietNaN + 4, nan.begin() + static_cast<long>(m.data + i));
      }
    }
    const Run r = cli({"parity", fixture, "--weights", write("nan.pth", atlascope::test::zipWithFixedCrcs(nan))});
    QCOMPARE(r.code, 3);
    QVERIFY2(r.err.contains("parity failed: the fp32 repr error is NaN"), qPrintable(r.err));
  }
};

QTEST_APPLESS_MAIN(TestCli)
#include "test_cli.moc"
