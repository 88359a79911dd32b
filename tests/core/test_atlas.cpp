// The bundled CCF: coordinate mapping (um <-> voxel), structure lookups at the known
// points, the label set, descendant masks, and the ABC parcellation-index route.
#include "core/AbcParcellation.h"
#include "core/Atlas.h"
#include "core/Error.h"
#include "core/SectionBoundaries.h"
#include "tests/TestPaths.h"

#include <QTemporaryDir>
#include <QTest>

#include <fstream>

using namespace atlascope;

class TestAtlas : public QObject {
  Q_OBJECT
  std::unique_ptr<Atlas> atlas_;

private slots:
  void initTestCase() {
    AtlasPaths p{atlascope::test::resourceFile("ccf/annotation_25.nrrd").toStdString(),
                 atlascope::test::resourceFile("ccf/structures.json").toStdString(),
                 {}};
    atlas_ = std::make_unique<Atlas>(Atlas::load(p));
  }

  void shapeAndLabels() {
    const auto& a = atlas_->annotation();
    QCOMPARE(a.size()[0], 528);
    QCOMPARE(a.size()[1], 320);
    QCOMPARE(a.size()[2], 456);
    QCOMPARE(a.spacingUm()[1], 25.0);
    QCOMPARE(a.distinctIds().size(), std::size_t(671));
    QVERIFY(atlas_->unknownIds().empty());
    QCOMPARE(a.extentUm()[0], 13200.0);
  }

  void knownVoxels_data() {
    QTest::addColumn<int>("ap");
    QTest::addColumn<int>("dv");
    QTest::addColumn<int>("ml");
    QTest::addColumn<uint>("id");
    QTest::addColumn<QString>("acronym");
    QTest::newRow("IMD") << 264 << 160 << 228 << 59u << "IMD";
    QTest::newRow("ACAv1") << 200 << 100 << 228 << 588u << "ACAv1";
    QTest::newRow("LGv") << 300 << 150 << 114 << 178u << "LGv";
    QTest::newRow("MOs1") << 150 << 60 << 300 << 656u << "MOs1";
  }
  void knownVoxels() {
    QFETCH(int, ap);
    QFETCH(int, dv);
    QFETCH(int, ml);
    QFETCH(uint, id);
    QFETCH(QString, acronym);
    const VoxelIndex v{ap, dv, ml};
    QCOMPARE(atlas_->annotation().idAt(v), StructureId(id));
    const auto s = atlas_->structureAt(v);
    QVERIFY(s);
    QCOMPARE(QString::fromStdString(atlas_->structures()[*s].acronym), acronym);
    // The same through micrometres: the voxel's centre and a point near its corner.
    const auto c = atlas_->annotation().centreUm(v);
    QCOMPARE(atlas_->structureAtUm(c[0], c[1], c[2]), s);
    QCOMPARE(atlas_->structureAtUm(ap * 25.0 + 0.01, dv * 25.0 + 0.01, ml * 25.0 + 0.01), s);
  }

  void coordinateRoundTrip() {
    const auto& a = atlas_->annotation();
    const VoxelIndex v{10, 20, 30};
    const auto c = a.centreUm(v);
    QCOMPARE(c[0], 262.5);
    QCOMPARE(c[1], 512.5);
    QCOMPARE(c[2], 762.5);
    QCOMPARE(*a.voxelAt(c[0], c[1], c[2]), v);
    // Corner convention: [i*25, (i+1)*25) belongs to voxel i.
    QCOMPARE(a.voxelAt(250.0, 500.0, 750.0)->ap, 10);
    QCOMPARE(a.voxelAt(249.999, 500.0, 750.0)->ap, 9);
  }

  void pointsOutside() {
    const auto& a = atlas_->annotation();
    QVERIFY(!a.voxelAt(-0.001, 100, 100));
    QVERIFY(!a.voxelAt(13200.0, 100, 100));
    QVERIFY(!a.voxelAt(100, 8000.5, 100));
    QVERIFY(!a.voxelAt(100, 100, 1e9));
    QVERIFY(!a.voxelAt(std::nan(""), 100, 100));
    QVERIFY(!a.voxelAt(100, std::numeric_limits<double>::infinity(), 100));
    QVERIFY(!atlas_->structureAtUm(-5, 0, 0));
    QVERIFY(!atlas_->structureAt({0, 0, 0})); // inside the volume, outside the brain
    QVERIFY(!atlas_->structureAt({528, 0, 0}));
  }

  void descendantMask() {
    const auto& t = atlas_->structures();
    const int th = *t.indexOfAcronym("TH");
    const auto mask = codeMaskFor(atlas_->annotation(), t, th);
    const auto& ids = atlas_->annotation().codeIds();
    int inside = 0;
    for (std::size_t c = 0; c < ids.size(); ++c) {
      if (!mask[c]) continue;
      ++inside;
      QVERIFY(t.isAncestorOrSelf(th, *t.indexOf(ids[c])));
    }
    QVERIFY(inside > 20); // TH is a parent: its voxels carry only its descendants' labels
    const auto imd = *t.indexOfAcronym("IMD");
    QVERIFY(mask[atlas_->annotation()
                     .codes()[static_cast<std::size_t>(atlas_->annotation().linearIndex({264, 160, 228}))]]);
    QVERIFY(t.isAncestorOrSelf(th, imd));
    // Root covers every non-zero label.
    const auto all = codeMaskFor(atlas_->annotation(), t, t.root());
    QCOMPARE(static_cast<std::size_t>(std::count(all.begin(), all.end(), 1)), ids.size() - 1);
  }

  void fingerprintIsStableAndSensitive() {
    QCOMPARE(atlas_->annotation().fingerprint(), atlas_->annotation().fingerprint());
    AnnotationVolume copy = atlas_->annotation();
    std::unordered_map<StructureId, StructureId> map;
    for (StructureId id : copy.codeIds()) map[id] = id;
    map[59] = 60; // relabel IMD
    copy.remap(map, "test");
    QVERIFY(copy.fingerprint() != atlas_->annotation().fingerprint());
  }

  void abcParcellationIndices() {
    // A tiny ABC-style volume: parcellation indices mapped to structure ids by parcellation.csv.
    QTemporaryDir dir;
    {
      std::ofstream csv(dir.filePath("parcellation.csv").toStdString());
      csv << "parcellation_index,label,voxel_count,volume_mm3\n0,unassigned,1,0\n1,AllenCCF-Annotation-2020-382,1,0\n"
             "2,AllenCCF-Annotation-2020-59,2,0\n";
      std::ofstream nrrd(dir.filePath("p.nrrd").toStdString(), std::ios::binary);
      nrrd << "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nspacings: 0.025 0.025 0.025\nencoding: raw\n\n";
      nrrd << '\0' << '\1' << '\2' << '\2';
    }
    AtlasPaths p{dir.filePath("p.nrrd").toStdString(),
                 atlascope::test::resourceFile("ccf/structures.json").toStdString(),
                 dir.filePath("parcellation.csv").toStdString()};
    const Atlas a = Atlas::load(p);
    QCOMPARE(a.annotation().spacingUm()[0], 25.0); // mm spacing recognised
    QCOMPARE(a.annotation().idAt({1, 0, 0}), StructureId(382));
    QCOMPARE(a.annotation().idAt({0, 1, 0}), StructureId(59));
    // An index the table does not list.
    {
      std::ofstream csv(dir.filePath("short.csv").toStdString());
      csv << "parcellation_index,label\n1,AllenCCF-Annotation-2020-382\n";
    }
    p.parcellationTable = dir.filePath("short.csv").toStdString();
    try {
      Atlas::load(p);
      QFAIL("no error for an index missing from the table");
    } catch (const FileError& e) {
      QVERIFY(QString(e.what()).contains("label 2"));
    }
  }

  // The 2D section view's outlines: every segment lies between voxels of different labels, and
  // planes outside the volume have none.
  void sectionBoundariesSeparateLabels() {
    const AnnotationVolume& a = atlas_->annotation();
    for (int normal : {0, 1, 2}) {
      const double mid = a.extentUm()[static_cast<std::size_t>(normal)] / 2 + 3;
      const auto segments = annotationBoundaries(a, normal, mid);
      QVERIFY2(segments.size() > 200, qPrintable(QString::number(segments.size())));
      const PlaneAxes ax = planeAxes(normal);
      const double su = a.spacingUm()[static_cast<std::size_t>(ax.u)],
                   sv = a.spacingUm()[static_cast<std::size_t>(ax.v)];
      auto idAt = [&](double u, double v) {
        std::array<double, 3> um{};
        um[static_cast<std::size_t>(normal)] = mid;
        um[static_cast<std::size_t>(ax.u)] = u;
        um[static_cast<std::size_t>(ax.v)] = v;
        const auto voxel = a.voxelAt(um[0], um[1], um[2]);
        return voxel ? a.idAt(*voxel) : StructureId(0);
      };
      for (std::size_t i = 0; i < segments.size(); i += 37) {
        const PlaneSegment& s = segments[i];
        const double mu = (s.u0 + s.u1) / 2, mv = (s.v0 + s.v1) / 2;
        if (s.u0 == s.u1) { // vertical: the voxels left and right of it differ at its first voxel
          QVERIFY(idAt(s.u0 - su / 2, s.v0 + sv / 2) != idAt(s.u0 + su / 2, s.v0 + sv / 2));
        } else {
          QCOMPARE(s.v0, s.v1);
          QVERIFY(idAt(s.u0 + su / 2, s.v0 - sv / 2) != idAt(s.u0 + su / 2, s.v0 + sv / 2));
        }
        QVERIFY(mu >= 0 && mv >= 0);
      }
    }
    QVERIFY(annotationBoundaries(a, 0, -100).empty());
    QVERIFY(annotationBoundaries(a, 0, a.extentUm()[0] + 100).empty());
  }

  void floatVolumeIsNotAnAnnotation() {
    QTemporaryDir dir;
    {
      std::ofstream nrrd(dir.filePath("f.nrrd").toStdString(), std::ios::binary);
      nrrd << "NRRD0004\ntype: float\ndimension: 3\nsizes: 1 1 1\nencoding: ascii\n\n1.5\n";
    }
    try {
      Atlas::load({dir.filePath("f.nrrd").toStdString(),
                   atlascope::test::resourceFile("ccf/structures.json").toStdString(),
                   {}});
      QFAIL("a float volume was accepted as annotation");
    } catch (const FileError& e) {
      QVERIFY(QString(e.what()).contains("integer labels"));
    }
  }
};

QTEST_APPLESS_MAIN(TestAtlas)
#include "test_atlas.moc"
