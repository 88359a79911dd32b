// BrainGlobe atlases (issue 17): v1 folders and v3 layouts written here from the bundled CCF
// (every 4th voxel: 100 um), opened by path and by name from a BrainGlobe folder; lookups equal
// the CCF's; orientation strings; the left/right convention; meshes; atlas-vs-atlas scores equal
// the ones computed from the label arrays directly; and damaged input refused with the file named.
#include "core/AtlasCatalog.h"
#include "core/AtlasComparison.h"
#include "core/Error.h"
#include "core/TiffStack.h"
#include "core/ZarrArray.h"
#include "tests/BrainGlobeFixtures.h"
#include "tests/TestPaths.h"

#include <QTemporaryDir>
#include <QTest>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace atlascope;
namespace fs = std::filesystem;

namespace {
QString errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}
double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
} // namespace

class TestBrainGlobe : public QObject {
  Q_OBJECT
  std::unique_ptr<Atlas> ccf_;
  fixtures::LabelGrid grid_;
  QTemporaryDir dir_;
  std::string v1_, v3_;

  std::string path(const std::string& rel) const { return (fs::path(dir_.path().toStdString()) / rel).string(); }

  void compareWithGrid(const Atlas& a, const fixtures::LabelGrid& g) {
    const auto& ann = a.annotation();
    QCOMPARE(ann.size(), g.shape);
    for (std::int64_t k = 0; k < g.shape[2]; ++k)
      for (std::int64_t j = 0; j < g.shape[1]; ++j)
        for (std::int64_t i = 0; i < g.shape[0]; ++i)
          if (ann.idAt({i, j, k}) != g.at(i, j, k))
            QFAIL(qPrintable(QString("voxel %1 %2 %3: %4, expected %5")
                                 .arg(i)
                                 .arg(j)
                                 .arg(k)
                                 .arg(ann.idAt({i, j, k}))
                                 .arg(g.at(i, j, k))));
  }

private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    if (!brainGlobeSupported()) QSKIP("this build reads no BrainGlobe atlases");
    AtlasPaths p{atlascope::test::resourceFile("ccf/annotation_25.nrrd").toStdString(),
                 atlascope::test::resourceFile("ccf/structures.json").toStdString(),
                 {}};
    ccf_ = std::make_unique<Atlas>(Atlas::load(p));
    grid_ = fixtures::downsample(*ccf_, 4);
    QCOMPARE(grid_.spacingUm, 100.0);
    v1_ = fixtures::writeV1(path("bg"), grid_, ccf_->structures());
    v3_ = fixtures::writeV3(path("bg"), grid_, ccf_->structures());
  }

  void orientationStrings() {
    const AxisMapping asr = axisMappingFromOrientation("asr", "m");
    QVERIFY(asr.isIdentity());
    QVERIFY(axisMappingFromOrientation("ASR", "m").isIdentity());
    const AxisMapping lsa = axisMappingFromOrientation("lsa", "m");
    // Atlascope AP <- file axis 2 (a: not reversed); DV <- axis 1; ML <- axis 0, reversed (l).
    QCOMPARE(lsa.fileAxis, (std::array<int, 3>{2, 1, 0}));
    QCOMPARE(lsa.reversed, (std::array<bool, 3>{false, false, true}));
    const AxisMapping pil = axisMappingFromOrientation("pil", "m");
    QCOMPARE(pil.reversed, (std::array<bool, 3>{true, true, true}));
    for (const char* bad : {"xyz", "aas", "as", "asrr", "asx", ""}) {
      const QString msg = errorOf([&] { axisMappingFromOrientation(bad, "/x/metadata.json"); });
      QVERIFY2(msg.contains("/x/metadata.json") && msg.contains("orientation"), qPrintable(msg));
    }
    QCOMPARE(orientationLetterFromOme("anterior-to-posterior"), 'a');
    QCOMPARE(orientationLetterFromOme("right-to-left"), 'r');
    QCOMPARE(orientationLetterFromOme("dorsal-to-ventral"), 's');
    QCOMPARE(orientationLetterFromOme("sideways"), char(0));
  }

  void tiffStripsAndBigTiff() {
    const std::array<std::int64_t, 3> shape{3, 7, 5};
    std::vector<std::uint32_t> v(105);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint32_t>(i * 2654435761u);
    for (bool big : {false, true})
      for (std::uint32_t rows : {0u, 1u, 3u}) {
        const std::string p = path("stack.tiff");
        writeTiffStack(p, shape, ScalarType::UInt32, v.data(), big, rows);
        const TiffStackInfo info = inspectTiffStack(p);
        QCOMPARE(info.bigTiff, big);
        QCOMPARE(info.shape, shape);
        const Volume vol = readTiffVolume(p);
        QCOMPARE(vol.type, ScalarType::UInt32);
        QCOMPARE(vol.size, (std::array<std::int64_t, 3>{5, 7, 3}));
        QVERIFY(std::memcmp(vol.bytes.data(), v.data(), v.size() * 4) == 0);
      }
  }

  void v1LookupsEqualCcf() {
    const auto t0 = std::chrono::steady_clock::now();
    const Atlas a = openAtlas(v1_);
    qInfo("opened the v1 fixture (%lld x %lld x %lld) in %.3f s", static_cast<long long>(grid_.shape[0]),
          static_cast<long long>(grid_.shape[1]), static_cast<long long>(grid_.shape[2]), secondsSince(t0));
    QCOMPARE(a.description().format, std::string("brainglobe-v1"));
    QCOMPARE(a.name(), std::string("allen_mouse_100um"));
    QCOMPARE(a.annotation().spacingUm()[2], 100.0);
    QCOMPARE(a.structures().size(), ccf_->structures().size());
    compareWithGrid(a, grid_);
    // Lookups by CCF micrometres land on the same structure as in the bundled CCF.
    for (std::int64_t i = 3; i < grid_.shape[0]; i += 17)
      for (std::int64_t j = 5; j < grid_.shape[1]; j += 11)
        for (std::int64_t k = 7; k < grid_.shape[2]; k += 13) {
          const auto c = a.annotation().centreUm({i, j, k});
          const auto mine = a.structureAtUm(c[0], c[1], c[2]);
          const auto theirs = ccf_->structureAtUm(c[0], c[1], c[2]);
          QCOMPARE(bool(mine), bool(theirs));
          if (mine) QCOMPARE(a.structures()[*mine].id, ccf_->structures()[*theirs].id);
        }
    // A known point: CP (caudoputamen) at 4,500 um AP, 4,000 DV, 2,500 ML (left hemisphere).
    const auto cp = a.structureAtUm(4500, 4000, 2500);
    const auto cpCcf = ccf_->structureAtUm(4500, 4000, 2500);
    QVERIFY(cp && cpCcf);
    QCOMPARE(a.structures()[*cp].acronym, ccf_->structures()[*cpCcf].acronym);
    QVERIFY(!a.hasReference());
  }

  void v3EqualsV1() {
    const auto t0 = std::chrono::steady_clock::now();
    const Atlas a = openAtlas(v3_);
    qInfo("opened the v3 fixture in %.3f s (%lld of %lld chunks on disk)", secondsSince(t0),
          static_cast<long long>(a.description().annotationChunksPresent),
          static_cast<long long>(a.description().annotationChunksTotal));
    QCOMPARE(a.description().format, std::string("brainglobe-v3"));
    QCOMPARE(a.name(), std::string("allen_mouse_100um"));
    QCOMPARE(a.description().coordinateSpace, std::string("allen_mouse-space"));
    QVERIFY(a.description().annotationChunksPresent < a.description().annotationChunksTotal); // empty corners omitted
    QCOMPARE(a.structures().size(), ccf_->structures().size());
    for (std::size_t i = 0; i < a.structures().size(); ++i) {
      const auto j = ccf_->structures().indexOf(a.structures()[static_cast<int>(i)].id);
      QVERIFY(j);
      QCOMPARE(a.structures()[static_cast<int>(i)].acronym, ccf_->structures()[*j].acronym);
      QCOMPARE(a.structures()[static_cast<int>(i)].rgb, ccf_->structures()[*j].rgb);
    }
    compareWithGrid(a, grid_);
  }

  void zarrVariants_data() {
    QTest::addColumn<int>("format");
    QTest::addColumn<QString>("compressor");
    QTest::addColumn<int>("shardInner");
    QTest::newRow("v3 blosc") << 3 << "blosc" << 0;
    QTest::newRow("v3 sharded zstd") << 3 << "zstd" << 12;
    QTest::newRow("v3 sharded raw") << 3 << "none" << 8;
    QTest::newRow("v3 raw") << 3 << "none" << 0;
    QTest::newRow("v2 blosc") << 2 << "blosc" << 0;
    QTest::newRow("v2 zstd") << 2 << "zstd" << 0;
  }
  void zarrVariants() {
    QFETCH(int, format);
    QFETCH(QString, compressor);
    QFETCH(int, shardInner);
    fixtures::WriteOptions o;
    o.zarrFormat = format;
    o.compressor = compressor.toStdString();
    o.chunk = 24; // edge chunks clipped on every axis
    o.shardInner = shardInner;
    const std::string root =
        path("zarr-" + std::to_string(format) + compressor.toStdString() + std::to_string(shardInner));
    const std::string manifest = fixtures::writeV3(root, grid_, ccf_->structures(), o);
    const Atlas a = openAtlas(manifest);
    compareWithGrid(a, grid_);
    if (shardInner > 0) {
      // A damaged shard index: its checksum fails, the shard named.
      const fs::path shard = fs::path(root) / "brainglobe-atlasapi/annotation-sets/allen_mouse-annotation/1_2/"
                                              "annotations_compressed.ome.zarr/0/c/2/1/2";
      QVERIFY(fs::exists(shard));
      std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(-10, std::ios::end);
      f.put('\x7f');
      f.close();
      const QString msg = errorOf([&] { openAtlas(manifest); });
      QVERIFY2(msg.contains("c/2/1/2") && msg.contains("crc32c"), qPrintable(msg));
    }
  }

  void referenceAndReorientation_data() {
    QTest::addColumn<QString>("orientation");
    QTest::addColumn<bool>("v3");
    for (const char* o : {"asr", "lsa", "pil", "ial"}) {
      QTest::newRow((std::string("v1 ") + o).c_str()) << o << false;
      QTest::newRow((std::string("v3 ") + o).c_str()) << o << true;
    }
  }
  void referenceAndReorientation() {
    QFETCH(QString, orientation);
    QFETCH(bool, v3);
    fixtures::WriteOptions o;
    o.orientation = orientation.toStdString();
    o.symmetric = false;
    o.name = "oriented_" + o.orientation;
    const std::string root = path("orient");
    const std::string where = v3 ? fixtures::writeV3(root, grid_, ccf_->structures(), o)
                                 : fixtures::writeV1(root, grid_, ccf_->structures(), o);
    AtlasOpenOptions opts;
    opts.reference = true;
    opts.hemispheres = true;
    const Atlas a = openAtlas(where, opts);
    QCOMPARE(a.description().orientation, o.orientation);
    // Whatever the file's orientation, Atlascope's axes hold the same atlas.
    compareWithGrid(a, grid_);
    QVERIFY(a.hasReference());
    QCOMPARE(a.reference().type, ScalarType::UInt16);
    QCOMPARE(a.reference().size, grid_.shape);
    const auto* ref = a.reference().data<std::uint16_t>();
    for (std::int64_t k = 0; k < grid_.shape[2]; k += 5)
      for (std::int64_t j = 0; j < grid_.shape[1]; j += 3)
        for (std::int64_t i = 0; i < grid_.shape[0]; i += 7)
          QCOMPARE(ref[a.annotation().linearIndex({i, j, k})], fixtures::templateValue(i, j, k));
    // BrainGlobe's "right" (value 2, low ML indices) is Atlascope's (Allen's) left.
    QVERIFY(a.hasHemisphereStack());
    QCOMPARE(a.hemisphereAt({10, 10, 0}), Hemisphere::Left);
    QCOMPARE(a.hemisphereAt({10, 10, grid_.shape[2] - 1}), Hemisphere::Right);
  }

  void hemispheresOfSymmetricAtlases() {
    const Atlas a = openAtlas(v1_);
    QVERIFY(!a.hasHemisphereStack());
    const std::int64_t n = grid_.shape[2]; // 114: BrainGlobe splits at round(57) = 57
    QCOMPARE(a.hemisphereAt({10, 10, 56}), Hemisphere::Left);
    QCOMPARE(a.hemisphereAt({10, 10, 57}), Hemisphere::Right);
    QCOMPARE(a.hemisphereAt({10, 10, n}), Hemisphere::Unknown);
    // The bundled CCF: ML index 0 is Allen's left, the midline between voxels 227 and 228.
    QCOMPARE(ccf_->hemisphereAt({264, 160, 227}), Hemisphere::Left);
    QCOMPARE(ccf_->hemisphereAt({264, 160, 228}), Hemisphere::Right);
  }

  void objMeshes() {
    const Atlas a = openAtlas(v1_);
    QCOMPARE(a.meshCount(), std::size_t(1));
    const int root = a.structures().root();
    QVERIFY(a.meshSource(root));
    const TriangleMesh m = a.readMesh(root);
    QCOMPARE(m.vertexCount(), std::size_t(4));
    QCOMPARE(m.triangleCount(), std::size_t(4));
    // BrainGlobe's (0, 0, 0) is voxel 0's centre: Atlascope's (50, 50, 50) at 100 um.
    QCOMPARE(m.points[0], 50.0f);
    QCOMPARE(m.points[1], 50.0f);
    QCOMPARE(m.points[2], 50.0f);
    QCOMPARE(m.points[3], 150.0f);
    QVERIFY(!a.meshSource(a.structures().indexOfAcronym("CP").value()));
    QVERIFY(errorOf([&] { a.readMesh(a.structures().indexOfAcronym("CP").value()); }).contains("no mesh"));
  }

  void dracoMeshes() {
    const Atlas a = openAtlas(v3_);
    QCOMPARE(a.meshCount(), std::size_t(1));
    const int root = a.structures().root();
    QCOMPARE(int(a.meshSource(root)->kind), int(AtlasMeshSource::Kind::NeuroglancerPrecomputed));
    const TriangleMesh m = a.readMesh(root);
    QCOMPARE(m.triangleCount(), std::size_t(4));
    // The same tetrahedron as the v1 OBJ: corners at Atlascope (50, 50, 50), (150, 50, 50), ...
    // within the 16-bit quantization of a 100 um cube (1.5 nm).
    std::array<float, 3> lo{1e9f, 1e9f, 1e9f}, hi{-1e9f, -1e9f, -1e9f};
    for (std::size_t i = 0; i < m.points.size(); ++i) {
      lo[i % 3] = std::min(lo[i % 3], m.points[i]);
      hi[i % 3] = std::max(hi[i % 3], m.points[i]);
    }
    for (std::size_t k = 0; k < 3; ++k) {
      QVERIFY2(std::abs(lo[k] - 50.0f) < 0.01f, qPrintable(QString::number(lo[k])));
      QVERIFY2(std::abs(hi[k] - 150.0f) < 0.01f, qPrintable(QString::number(hi[k])));
    }
    // The winding survives the x y z <-> axis 0 1 2 swap: every face faces outwards, as the OBJ's.
    const auto outwards = [](const TriangleMesh& t) {
      float c[3] = {0, 0, 0};
      for (std::size_t i = 0; i < t.points.size(); ++i) c[i % 3] += t.points[i] / static_cast<float>(t.vertexCount());
      for (std::size_t f = 0; f < t.triangleCount(); ++f) {
        const float* p0 = &t.points[t.triangles[3 * f] * 3];
        const float* p1 = &t.points[t.triangles[3 * f + 1] * 3];
        const float* p2 = &t.points[t.triangles[3 * f + 2] * 3];
        const float u[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
        const float v[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
        const float n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
        const float d[3] = {p0[0] - c[0], p0[1] - c[1], p0[2] - c[2]};
        if (n[0] * d[0] + n[1] * d[1] + n[2] * d[2] <= 0) return false;
      }
      return true;
    };
    QVERIFY(outwards(openAtlas(v1_).readMesh(root)));
    QVERIFY(outwards(m));
    // A damaged fragment: named.
    const std::string folder = a.meshSource(root)->path;
    const std::string data = folder + "/" + std::to_string(a.structures()[root].id);
    fs::resize_file(data, fs::file_size(data) / 2);
    const QString msg = errorOf([&] { a.readMesh(root); });
    QVERIFY2(msg.contains(QString::fromStdString(data)), qPrintable(msg));
    fixtures::writeV3(path("bg"), grid_, ccf_->structures()); // restored for the tests below
  }

  void cacheListingAndNames() {
    const std::string config = path("config");
    fixtures::writeText(fs::path(config) / "bg_config.conf", "[default_dirs]\nbrainglobe_dir = " + path("bg") +
                                                                 "\ninterm_download_dir = " + path("bg") + "\n");
    qputenv("BRAINGLOBE_CONFIG_DIR", QByteArray::fromStdString(config));
    const BrainGlobeFolder folder = brainGlobeFolder();
    QCOMPARE(folder.path, path("bg"));
    QVERIFY(folder.foundBy.find("bg_config.conf") != std::string::npos);
    const auto cached = listCachedAtlases();
    QCOMPARE(cached.size(), std::size_t(2));
    QCOMPARE(cached[0].name, std::string("allen_mouse_100um"));
    QCOMPARE(cached[0].format, std::string("brainglobe-v1"));
    QCOMPARE(cached[0].version, std::string("1.2"));
    QCOMPARE(cached[1].format, std::string("brainglobe-v3"));
    QCOMPARE(cached[1].path, v3_);
    // By name: v3 first; v1 by its folder name.
    QCOMPARE(openAtlas("allen_mouse_100um").description().format, std::string("brainglobe-v3"));
    QCOMPARE(openAtlas("allen_mouse_100um_v1.2").description().format, std::string("brainglobe-v1"));
    QCOMPARE(openAtlas("ccf").name(), std::string("ccf"));
    const QString msg = errorOf([] { openAtlas("kim_mouse_10um"); });
    QVERIFY2(msg.contains("kim_mouse_10um") && msg.contains("allen_mouse_100um"), qPrintable(msg));
    qunsetenv("BRAINGLOBE_CONFIG_DIR");
  }

  void atlasAgainstCoarsenedSelf() {
    // B: the same grid with every label replaced by its ancestor at depth 5.
    const fixtures::LabelGrid coarse = fixtures::coarsened(grid_, ccf_->structures(), 5);
    fixtures::WriteOptions o;
    o.name = "ccf_depth5";
    const Atlas a = openAtlas(v1_);
    const Atlas b = openAtlas(fixtures::writeV1(path("coarse"), coarse, ccf_->structures(), o));
    const auto t0 = std::chrono::steady_clock::now();
    const AtlasComparison c = compareAtlases(a, b);
    qInfo("compared 100 um CCF with its depth-5 self in %.3f s: AMI %.4f, ARI %.4f, V %.4f; at depth 5 AMI %.4f",
          secondsSince(t0), c.scores.adjustedMutualInformation, c.scores.adjustedRand, c.scores.vMeasure,
          c.byDepth.size() >= 5 ? c.byDepth[4].scores.adjustedMutualInformation : -1.0);
    QCOMPARE(c.grid.resampled, std::string());
    // The same scores from the label arrays directly (tree indices, voxels outside either left out).
    std::vector<std::int32_t> ra, rb;
    for (std::size_t v = 0; v < grid_.ids.size(); ++v) {
      const auto ia = grid_.ids[v] ? ccf_->structures().indexOf(grid_.ids[v]) : std::nullopt;
      const auto ib = coarse.ids[v] ? ccf_->structures().indexOf(coarse.ids[v]) : std::nullopt;
      ra.push_back(ia ? *ia : -1);
      rb.push_back(ib ? *ib : -1);
    }
    const AgreementScores direct = agreement(ra, rb);
    QCOMPARE(c.scores.cells, direct.cells);
    QVERIFY(qFuzzyCompare(c.scores.adjustedMutualInformation, direct.adjustedMutualInformation));
    QVERIFY(qFuzzyCompare(c.scores.adjustedRand, direct.adjustedRand));
    QVERIFY(qFuzzyCompare(c.scores.vMeasure, direct.vMeasure));
    QVERIFY(qFuzzyCompare(c.scores.homogeneity, direct.homogeneity));
    QCOMPARE(c.scores.completeness, 1.0); // each leaf lies inside one coarse structure
    // A cut at depth 5 is B, exactly.
    QVERIFY(c.byDepth.size() >= 5);
    QCOMPARE(c.byDepth[4].depth, 5);
    QVERIFY(qFuzzyCompare(c.byDepth[4].scores.adjustedMutualInformation, 1.0));
    QVERIFY(qFuzzyCompare(c.byDepth[4].scores.adjustedRand, 1.0));
    // Every coarse structure of B with several leaves is a merge of A's structures.
    QVERIFY(!c.correspondence.merges.empty());
    QVERIFY(c.correspondence.splits.empty());
    // The report.
    const std::string out = path("compare-out");
    AtlasComparisonOptions options;
    const auto summary = writeAtlasComparisonReport(c, a, b, options, out);
    for (const char* f : {"summary.json", "overlap.csv", "best_matches.csv", "splits.csv", "matches.csv"})
      QVERIFY2(fs::exists(fs::path(out) / f), f);
    QCOMPARE(summary["a"]["name"].get<std::string>(), std::string("allen_mouse_100um"));
    QCOMPARE(summary["voxels_compared"].get<std::int64_t>(), direct.cells);
    QVERIFY(std::abs(summary["scores"]["adjusted_mutual_information"].get<double>() -
                     direct.adjustedMutualInformation) < 1e-12);
  }

  void atlasAgainstCoarserGrid() {
    // B on a grid twice as coarse (200 um): A is sampled at B's voxel centres (nearest label).
    const fixtures::LabelGrid half = fixtures::downsample(*ccf_, 8);
    fixtures::WriteOptions o;
    o.name = "ccf_half";
    const Atlas a = openAtlas(v1_);
    const Atlas b = openAtlas(fixtures::writeV1(path("half"), half, ccf_->structures(), o));
    const AtlasComparison c = compareAtlases(a, b, {});
    QCOMPARE(c.grid.resampled, std::string("a"));
    QCOMPARE(c.grid.size, half.shape);
    // B's voxel (i, j, k) has its centre at (i + 0.5) x 200 um, which A's voxel 2i + 1 holds:
    // the scores from the arrays sampled so, directly.
    std::vector<std::int32_t> ra, rb;
    for (std::int64_t k = 0; k < half.shape[2]; ++k)
      for (std::int64_t j = 0; j < half.shape[1]; ++j)
        for (std::int64_t i = 0; i < half.shape[0]; ++i) {
          const auto ida = grid_.at(2 * i + 1, 2 * j + 1, 2 * k + 1), idb = half.at(i, j, k);
          const auto ia = ida ? ccf_->structures().indexOf(ida) : std::nullopt;
          const auto ib = idb ? ccf_->structures().indexOf(idb) : std::nullopt;
          ra.push_back(ia ? *ia : -1);
          rb.push_back(ib ? *ib : -1);
        }
    const AgreementScores direct = agreement(ra, rb);
    QCOMPARE(c.scores.cells, direct.cells);
    QVERIFY(qFuzzyCompare(c.scores.adjustedMutualInformation, direct.adjustedMutualInformation));
    QVERIFY(c.scores.adjustedMutualInformation > 0.7);
    // Not the same space: refused.
    fixtures::LabelGrid cut = grid_;
    cut.shape[0] = 60;
    cut.ids.resize(static_cast<std::size_t>(cut.shape[0] * cut.shape[1] * cut.shape[2]));
    for (std::int64_t k = 0; k < cut.shape[2]; ++k)
      for (std::int64_t j = 0; j < cut.shape[1]; ++j)
        for (std::int64_t i = 0; i < cut.shape[0]; ++i)
          cut.ids[static_cast<std::size_t>(i + cut.shape[0] * (j + cut.shape[1] * k))] = grid_.at(i, j, k);
    o.name = "cut";
    const Atlas small = openAtlas(fixtures::writeV1(path("cut"), cut, ccf_->structures(), o));
    QVERIFY(errorOf([&] { compareAtlases(a, small); }).contains("same space"));
  }

  // --- bad input: clear errors naming the file, never a crash
  void missingFiles() {
    const std::string v1 = fixtures::writeV1(path("bad-missing"), grid_, ccf_->structures());
    fs::remove(fs::path(v1) / "annotation.tiff");
    QString msg = errorOf([&] { openAtlas(v1); });
    QVERIFY2(msg.contains("annotation.tiff") && msg.contains("not found"), qPrintable(msg));
    fs::remove(fs::path(v1) / "structures.json");
    msg = errorOf([&] { openAtlas(v1); });
    QVERIFY2(msg.contains("structures.json"), qPrintable(msg));
    // v3: the terminology the manifest names is missing.
    const std::string root = path("bad-v3");
    const std::string manifest = fixtures::writeV3(root, grid_, ccf_->structures());
    fs::remove_all(fs::path(root) / "brainglobe-atlasapi" / "terminologies");
    msg = errorOf([&] { openAtlas(manifest); });
    QVERIFY2(msg.contains("terminology.csv") && msg.contains("not found"), qPrintable(msg));
  }

  void shapeDisagrees() {
    const std::string v1 = fixtures::writeV1(path("bad-shape"), grid_, ccf_->structures());
    std::ifstream in(fs::path(v1) / "metadata.json");
    nlohmann::json meta = nlohmann::json::parse(in);
    meta["shape"][2] = 115;
    fixtures::writeText(fs::path(v1) / "metadata.json", meta.dump());
    const QString msg = errorOf([&] { openAtlas(v1); });
    QVERIFY2(msg.contains("annotation.tiff") && msg.contains("metadata.json says shape [132, 80, 115]"),
             qPrintable(msg));
    const std::string root = path("bad-shape-v3");
    const std::string manifest = fixtures::writeV3(root, grid_, ccf_->structures());
    std::ifstream in3(manifest);
    nlohmann::json m3 = nlohmann::json::parse(in3);
    m3["shape"][0] = 131;
    fixtures::writeText(manifest, m3.dump());
    const QString msg3 = errorOf([&] { openAtlas(manifest); });
    QVERIFY2(msg3.contains("annotations_compressed.ome.zarr") && msg3.contains("shape"), qPrintable(msg3));
  }

  void unknownOrientation() {
    const std::string v1 = fixtures::writeV1(path("bad-orient"), grid_, ccf_->structures());
    std::ifstream in(fs::path(v1) / "metadata.json");
    nlohmann::json meta = nlohmann::json::parse(in);
    meta["orientation"] = "xyz";
    fixtures::writeText(fs::path(v1) / "metadata.json", meta.dump());
    const QString msg = errorOf([&] { openAtlas(v1); });
    QVERIFY2(msg.contains("metadata.json") && msg.contains("'xyz'"), qPrintable(msg));
  }

  void labelMissingFromTree() {
    fixtures::LabelGrid g = grid_;
    const std::size_t at = static_cast<std::size_t>(60 + g.shape[0] * (40 + g.shape[1] * 30));
    QVERIFY(g.ids[at] != 0);
    g.ids[at] = 987654321u;
    fixtures::WriteOptions o;
    o.name = "stray";
    const Atlas a = openAtlas(fixtures::writeV1(path("stray"), g, ccf_->structures(), o));
    QCOMPARE(a.unknownIds(), std::vector<StructureId>{987654321u});
    QCOMPARE(a.annotation().idAt({60, 40, 30}), StructureId(987654321u));
    QVERIFY(!a.structureAt({60, 40, 30})); // outside the atlas
    // Counted, not crashed on, in an atlas comparison.
    const AtlasComparison c = compareAtlases(openAtlas(v1_), a, {});
    QCOMPARE(c.grid.unknownVoxelsB, std::int64_t(1));
    QCOMPARE(c.grid.unknownIdsB, std::vector<StructureId>{987654321u});
  }

  void truncatedTiff() {
    const std::string v1 = fixtures::writeV1(path("bad-trunc"), grid_, ccf_->structures());
    const fs::path ann = fs::path(v1) / "annotation.tiff";
    // Cut into the pixel data of the last pages; the directories (at each page's end for
    // libtiff's writer) go with them: either way an error naming the file.
    for (const double keep : {0.6, 0.999, 0.01}) {
      const auto size = fs::file_size(ann);
      std::vector<char> bytes(size);
      std::ifstream(ann, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(size));
      const fs::path cut = fs::path(v1) / "cut.tiff";
      std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size * keep));
      const QString msg = errorOf([&] { readTiffVolume(cut.string()); });
      QVERIFY2(msg.contains("cut.tiff"), qPrintable(msg));
    }
    std::vector<char> bytes(fs::file_size(ann));
    std::ifstream(ann, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::ofstream(ann, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    const QString msg = errorOf([&] { openAtlas(v1); });
    QVERIFY2(msg.contains("annotation.tiff"), qPrintable(msg));
  }

  void missingAndDamagedChunks() {
    const std::string root = path("bad-chunks");
    const std::string manifest = fixtures::writeV3(root, grid_, ccf_->structures());
    const fs::path level = fs::path(manifest).parent_path().parent_path().parent_path().parent_path() /
                           "annotation-sets/allen_mouse-annotation/1_2/annotations_compressed.ome.zarr/0";
    // A damaged chunk: truncated.
    const fs::path chunk = level / "c" / "2" / "1" / "1";
    QVERIFY(fs::exists(chunk));
    fs::resize_file(chunk, fs::file_size(chunk) / 2);
    QString msg = errorOf([&] { openAtlas(manifest); });
    QVERIFY2(msg.contains("c/2/1/1") && msg.contains("zstd"), qPrintable(msg));
    // A missing chunk is the fill value (Zarr); all of them missing: never downloaded.
    fs::remove(chunk);
    const Atlas a = openAtlas(manifest);
    QCOMPARE(a.annotation().idAt({64, 32, 32}), StructureId(0));
    fs::remove_all(level / "c");
    msg = errorOf([&] { openAtlas(manifest); });
    QVERIFY2(msg.contains("annotations_compressed.ome.zarr/0") && msg.contains("none of its"), qPrintable(msg));
  }

  void damagedZarrMetadata() {
    const std::string folder = path("zmeta");
    std::vector<std::uint8_t> data(8 * 8 * 8, 3);
    writeZarrArray(folder, {8, 8, 8}, {4, 4, 4}, ScalarType::UInt8, data.data());
    QVERIFY(ZarrArray::open(folder).read3d([](const StackBlock&) {}).chunksPresent == 8);
    const std::string meta = (fs::path(folder) / "zarr.json").string();
    for (
        const char* bad :
        {"{", "[]", R"({"zarr_format":3,"node_type":"array","shape":[8,8,8],"data_type":"complex128"})",
         R"({"zarr_format":3,"node_type":"array","shape":[8,8,8],"data_type":"uint8","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[0,4,4]}},"chunk_key_encoding":{"name":"default"},"fill_value":0,"codecs":[{"name":"bytes"}]})",
         R"({"zarr_format":3,"node_type":"array","shape":[8,8,8],"data_type":"uint8","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4,4,4]}},"chunk_key_encoding":{"name":"default"},"fill_value":0,"codecs":[{"name":"sharding_indexed"}]})",
         R"({"zarr_format":3,"node_type":"array","shape":[8,8,8],"data_type":"uint8","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4,4]}},"chunk_key_encoding":{"name":"default"},"fill_value":0,"codecs":[{"name":"bytes"}]})"}) {
      fixtures::writeText(meta, bad);
      const QString msg = errorOf([&] { ZarrArray::open(folder).read3d([](const StackBlock&) {}); });
      QVERIFY2(msg.contains("zarr.json"), qPrintable(msg));
    }
    // A fill value the type cannot hold (an integer cast of NaN or 1e300 is undefined; the review
    // of the fuzzer's JSON finding), or a transpose order naming no axis: errors naming the file.
    auto withFill = [](const std::string& dataType, const std::string& fill, const std::string& codecs) {
      nlohmann::json m = nlohmann::json::parse(
          R"({"zarr_format":3,"node_type":"array","shape":[8,8,8],"chunk_key_encoding":{"name":"default"}})");
      m["data_type"] = dataType;
      m["chunk_grid"] = {{"name", "regular"}, {"configuration", {{"chunk_shape", {4, 4, 4}}}}};
      m["fill_value"] = nlohmann::json::parse(fill);
      m["codecs"] = nlohmann::json::parse(codecs);
      return m.dump();
    };
    const std::string bytes = R"([{"name":"bytes"}])";
    for (const auto& [type, fill] : std::vector<std::pair<std::string, std::string>>{{"uint8", "256"},
                                                                                     {"uint16", "-1"},
                                                                                     {"int32", "1e300"},
                                                                                     {"uint32", "\"NaN\""},
                                                                                     {"int8", "2.5"},
                                                                                     {"uint64", "1.9e19"},
                                                                                     {"float32", "1e300"}}) {
      fixtures::writeText(meta, withFill(type, fill, bytes));
      const QString msg = errorOf([&] { ZarrArray::open(folder); });
      QVERIFY2(msg.contains("zarr.json") && msg.contains("fill_value"),
               qPrintable(QString::fromStdString(type + " " + fill + ": ") + msg));
    }
    fixtures::writeText(meta, withFill("int16", "-1", bytes));
    const ZarrArray negative = ZarrArray::open(folder);
    QCOMPARE(negative.fillLabel(), std::uint64_t(0)); // labels are unsigned: -1 labels nothing
    QCOMPARE(negative.fillBytes(), (std::vector<std::uint8_t>{0xff, 0xff}));
    fixtures::writeText(meta, withFill("float32", "\"NaN\"", bytes));
    QVERIFY(std::isnan(ZarrArray::open(folder).fillValue()));
    fixtures::writeText(
        meta, withFill("uint8", "0", R"([{"name":"transpose","configuration":{"order":[0,1,7]}},{"name":"bytes"}])"));
    const QString transpose = errorOf([&] { ZarrArray::open(folder); });
    QVERIFY2(transpose.contains("zarr.json") && transpose.contains("transpose"), qPrintable(transpose));
  }
};

QTEST_GUILESS_MAIN(TestBrainGlobe)
#include "test_brainglobe.moc"
