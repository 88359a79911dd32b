// Regions across datasets: the Hungarian pairing against brute force, a relabelled labeling found
// again one-to-one, a region split in two reported as a split (and the reverse as a merge),
// shared colours, names after the best CCF match, names kept in a result file, and two synthetic
// animals cut and deformed differently that still land in one CCF.
#include "core/AnnDataResults.h"
#include "core/Assignment.h"
#include "core/Atlas.h"
#include "core/CcfLabels.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/RegionCorrespondence.h"
#include "core/RegionNames.h"
#include "core/SyntheticBrain.h"
#include "tests/TestPaths.h"

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <set>

using namespace atlascope;

namespace {
double totalWeight(const std::vector<double>& w, std::int32_t columns, const std::vector<std::int32_t>& assignment) {
  double sum = 0;
  for (std::size_t i = 0; i < assignment.size(); ++i)
    if (assignment[i] >= 0) sum += w[i * static_cast<std::size_t>(columns) + static_cast<std::size_t>(assignment[i])];
  return sum;
}

// The best total over every one-to-one assignment of the smaller side.
double bruteForce(const std::vector<double>& w, std::int32_t rows, std::int32_t columns) {
  const std::int32_t n = std::max(rows, columns);
  std::vector<std::int32_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  double best = -1;
  do {
    double sum = 0;
    for (std::int32_t i = 0; i < rows; ++i)
      if (perm[static_cast<std::size_t>(i)] < columns)
        sum += w[static_cast<std::size_t>(i) * static_cast<std::size_t>(columns) +
                 static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])];
    best = std::max(best, sum);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

StructureTree smallTree() {
  std::vector<StructureRecord> r(4);
  r[0] = {997, std::nullopt, "root", "root", {255, 255, 255}, 0};
  r[1] = {672, StructureId(997), "CP", "Caudoputamen", {255, 255, 255}, 1};
  r[2] = {56, StructureId(997), "ACB", "Nucleus accumbens", {255, 255, 255}, 2};
  r[3] = {549, StructureId(997), "TH", "Thalamus", {255, 255, 255}, 3};
  return StructureTree::fromRecords(r, "test");
}
} // namespace

class TestRegionCorrespondence : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::unique_ptr<Atlas> atlas_;
  std::string path(const char* n) { return dir_.filePath(n).toStdString(); }

private slots:
  void initTestCase() { atlas_ = std::make_unique<Atlas>(Atlas::load(bundledAtlasPaths())); }

  void hungarianMatchesBruteForce() {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 300; ++trial) {
      const std::int32_t rows = 1 + static_cast<std::int32_t>(rng() % 7),
                         columns = 1 + static_cast<std::int32_t>(rng() % 7);
      std::vector<double> w(static_cast<std::size_t>(rows * columns));
      // Sparse like Jaccard tables (most pairs 0), with ties now and then.
      for (double& x : w)
        x = rng() % 3 == 0 ? static_cast<double>(rng() % 5) / 4.0
                           : (rng() % 2 ? std::uniform_real_distribution<double>(0, 1)(rng) : 0.0);
      const auto a = maximumWeightAssignment(w, rows, columns);
      QCOMPARE(a.size(), static_cast<std::size_t>(rows));
      std::set<std::int32_t> used;
      std::int32_t assigned = 0;
      for (std::int32_t c : a) {
        if (c < 0) continue;
        QVERIFY(c < columns);
        QVERIFY2(used.insert(c).second, "a column assigned twice");
        ++assigned;
      }
      QCOMPARE(assigned, std::min(rows, columns));
      const double got = totalWeight(w, columns, a), best = bruteForce(w, rows, columns);
      QVERIFY2(std::abs(got - best) < 1e-12,
               qPrintable(QString("%1 x %2: %3, brute force %4").arg(rows).arg(columns).arg(got).arg(best)));
    }
    QCOMPARE(maximumWeightAssignment({}, 0, 3).size(), std::size_t(0));
    QVERIFY_THROWS_EXCEPTION(Error, maximumWeightAssignment({1, 2, 3}, 2, 2));
    QVERIFY_THROWS_EXCEPTION(Error, maximumWeightAssignment({1, NAN, 3, 4}, 2, 2));
  }

  void permutedLabelingMatchesOneToOne() {
    std::mt19937 rng(3);
    std::vector<std::int32_t> a(2000), b(a.size());
    const std::int32_t perm[6] = {4, 0, 5, 2, 1, 3};
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<std::int32_t>(rng() % 6);
      b[i] = perm[a[i]];
    }
    a[7] = -1; // unlabelled on one side: left out
    const RegionCorrespondence r = correspondLabels(a, b);
    QCOMPARE(r.jointVoxels, std::int64_t(1999));
    QCOMPARE(r.oneToOne.size(), std::size_t(6));
    for (const RegionOverlap& o : r.oneToOne) {
      QCOMPARE(o.b, perm[o.a]);
      QCOMPARE(o.jaccard, 1.0);
      QCOMPARE(r.matchOfA(o.a), o.b);
      QCOMPARE(r.matchOfB(o.b), o.a);
    }
    QCOMPARE(r.overlaps.size(), std::size_t(6));
    QVERIFY(std::abs(r.agreement.adjustedMutualInformation - 1) < 1e-12);
    QVERIFY(std::abs(r.agreement.adjustedRand - 1) < 1e-12);
    QCOMPARE(r.matchedShare, 1.0);
    QVERIFY(r.splits.empty() && r.merges.empty());
  }

  void splitAndMerge() {
    // A: four regions; B: the same, but region 2 cut in two (2 and 9) and 1 and 3 a little mixed.
    std::vector<std::int32_t> a, b;
    for (int i = 0; i < 4000; ++i) {
      const std::int32_t region = i / 1000;
      a.push_back(region);
      std::int32_t other = region;
      if (region == 2 && i % 1000 >= 400) other = 9;
      if (region == 1 && i % 100 == 0) other = 3;
      b.push_back(other);
    }
    const RegionCorrespondence r = correspondLabels(a, b);
    QCOMPARE(r.splits.size(), std::size_t(1));
    QCOMPARE(r.splits[0].region, 2);
    QCOMPARE(r.splits[0].parts.size(), std::size_t(2));
    QCOMPARE(r.splits[0].parts[0].b, 9); // the larger part first
    QCOMPARE(r.splits[0].parts[1].b, 2);
    QCOMPARE(r.splits[0].covered, 1.0);
    QVERIFY(r.merges.empty());
    // The one-to-one pairing keeps 2 with its larger part (9: Jaccard 0.6 > 0.4).
    QCOMPARE(r.matchOfA(2), 9);
    QCOMPARE(r.matchOfA(0), 0);
    QCOMPARE(r.matchOfB(2), -1);
    QCOMPARE(r.oneToOne.size(), std::size_t(4));
    // matched share: (1000 + 990 + 600 + 1000) / 4000.
    QVERIFY(std::abs(r.matchedShare - 3590.0 / 4000.0) < 1e-12);
    // The other way round it is a merge.
    const RegionCorrespondence back = correspondLabels(b, a);
    QCOMPARE(back.splits.size(), std::size_t(0));
    QCOMPARE(back.merges.size(), std::size_t(1));
    QCOMPARE(back.merges[0].region, 2);
    // A stricter threshold: the parts must cover 100% and lie wholly inside; they do.
    QCOMPARE(correspondLabels(a, b, {1.0, 4, true}).splits.size(), std::size_t(1));
    QVERIFY_THROWS_EXCEPTION(Error, correspondLabels(a, std::vector<std::int32_t>(3, 0)));
    // A pairing the Hungarian method forces (A2 and B2 share 1 of 100 items) is no match.
    std::vector<std::int32_t> fa, fb;
    auto add = [&](std::int32_t x, std::int32_t y, int n) {
      for (int i = 0; i < n; ++i) {
        fa.push_back(x);
        fb.push_back(y);
      }
    };
    add(0, 0, 100);
    add(1, 1, 100);
    add(2, 0, 99);
    add(2, 2, 1);
    QCOMPARE(correspondLabels(fa, fb).matchOfA(2), -1);
    QCOMPARE(correspondLabels(fa, fb).matchOfA(0), 0);
    CorrespondenceOptions all;
    all.minimumJaccard = 0;
    QCOMPARE(correspondLabels(fa, fb, all).matchOfA(2), 2);
    QVERIFY_THROWS_EXCEPTION(Error, correspondLabels({-1, -1}, {0, 1}));
  }

  void sharedColoursFollowMatches() {
    std::vector<std::int32_t> a{0, 0, 1, 1, 2, 2}, b{1, 1, 0, 0, 3, 3};
    b.push_back(2); // B's region 2 exists but overlaps nothing labelled in A
    a.push_back(-1);
    const RegionCorrespondence r = correspondLabels(a, b);
    const std::vector<std::array<std::uint8_t, 3>> ca{{10, 0, 0}, {20, 0, 0}, {30, 0, 0}};
    const std::vector<std::array<std::uint8_t, 3>> cb{{10, 0, 0}, {20, 0, 0}, {30, 0, 0}, {40, 0, 0}};
    const auto shared = sharedColours(r, ca, cb);
    QCOMPARE(shared.size(), cb.size());
    QCOMPARE(shared[1], ca[0]);
    QCOMPARE(shared[0], ca[1]);
    QCOMPARE(shared[3], ca[2]);
    // Unmatched, and its own colour is now A's region 2's (worn by B's 3): it gets another.
    QVERIFY(shared[2] != ca[2]);
    for (std::size_t j = 0; j < shared.size(); ++j)
      for (std::size_t k = j + 1; k < shared.size(); ++k) QVERIFY(shared[j] != shared[k]);
  }

  void namesFollowTheBestCcfMatch() {
    const StructureTree tree = smallTree();
    const std::int32_t cp = *tree.indexOfAcronym("CP"), acb = *tree.indexOfAcronym("ACB"),
                       th = *tree.indexOfAcronym("TH");
    std::vector<std::int32_t> ccf, regions;
    // Region 3: 82 cells in CP, 18 in ACB; region 0: 30 cells in TH (and CP is much larger than
    // region 3, but ACB is small: Jaccard still favours CP here); region 1: no cell in the CCF.
    for (int i = 0; i < 82; ++i) {
      ccf.push_back(cp);
      regions.push_back(3);
    }
    for (int i = 0; i < 18; ++i) {
      ccf.push_back(acb);
      regions.push_back(3);
    }
    for (int i = 0; i < 300; ++i) {
      ccf.push_back(cp);
      regions.push_back(2);
    }
    for (int i = 0; i < 30; ++i) {
      ccf.push_back(th);
      regions.push_back(0);
    }
    for (int i = 0; i < 5; ++i) {
      ccf.push_back(-1);
      regions.push_back(1);
    }
    const std::vector<std::string> categories{"k25-0", "k25-1", "k25-2", "k25-3"};
    const auto names = ccfRegionNames(ccf, regions, categories, tree);
    QCOMPARE(names.size(), std::size_t(4));
    // Region 3 by Jaccard: CP 82 / (382 + 100 - 82) = 0.205, ACB 18 / 100 = 0.18.
    QCOMPARE(QString::fromStdString(names[3]), QString::fromUtf8("k25-3 \xc2\xb7 CP 82%"));
    QCOMPARE(QString::fromStdString(names[0]), QString::fromUtf8("k25-0 \xc2\xb7 TH 100%"));
    QCOMPARE(QString::fromStdString(names[1]), QString("k25-1"));
    QCOMPARE(QString::fromStdString(names[2]), QString::fromUtf8("k25-2 \xc2\xb7 CP 100%"));
    QCOMPARE(QString::fromStdString(regionNameWithCcf("k100-7", "CA1", 0.616)),
             QString::fromUtf8("k100-7 \xc2\xb7 CA1 62%"));
  }

  void namesLiveInTheResultFile() {
    SyntheticBrainOptions o;
    o.maxCells = 300;
    o.genes = 3;
    o.cellTypes = 8;
    generateSyntheticBrain(*atlas_, o, path("n.h5ad"));
    CategoricalColumn c{"regions_k3", std::vector<std::int32_t>(300, 0), {"k3-0", "k3-1", "k3-2"}, {}};
    for (std::size_t i = 0; i < c.codes.size(); ++i) c.codes[i] = static_cast<std::int32_t>(i % 3);
    const std::vector<std::string> defaults{"k3-0 \u00b7 CP 50%", "k3-1 \u00b7 TH 40%", "k3-2"};
    writeResultsToCopy(path("n.h5ad"), path("r.h5ad"), {c}, {}, {}, {{regionNamesKey("regions_k3"), defaults}});
    QVERIFY(readRegionNames(path("n.h5ad"), "regions_k3").empty());
    QCOMPARE(readRegionNames(path("r.h5ad"), "regions_k3"), defaults);
    // A user renames one region; the file keeps it, and everything else.
    std::vector<std::string> edited = defaults;
    edited[1] = "dorsal thalamus, my name";
    writeRegionNames(path("r.h5ad"), "regions_k3", edited);
    QCOMPARE(readRegionNames(path("r.h5ad"), "regions_k3"), edited);
    {
      Hdf5File f(path("r.h5ad"));
      QCOMPARE(f.readStrings("/obs/regions_k3/categories").size(), std::size_t(3));
      QCOMPARE(f.readStringAttribute("/uns/region_names", "encoding-type"), std::string("dict"));
      QCOMPARE(f.readStringAttribute("/uns/region_names/regions_k3", "encoding-type"), std::string("string-array"));
      QCOMPARE(f.shape("/X"), (std::vector<std::int64_t>{300, 3}));
    }
    QVERIFY_THROWS_EXCEPTION(FileError, writeRegionNames(path("r.h5ad"), "regions_k3", {"just one"}));
    QVERIFY_THROWS_EXCEPTION(FileError, writeRegionNames(path("r.h5ad"), "regions_k9", {"a"}));
    QCOMPARE(readRegionNames(path("r.h5ad"), "regions_k3"), edited); // a refused edit changes nothing
  }

  void twoAnimalsShareTheCcf() {
    SyntheticBrainOptions o;
    o.sections = 4;
    o.sectionSpacingUm = 400;
    o.genes = 4;
    o.cellTypes = 8;
    o.cellsPerMm2 = 300;
    generateSyntheticBrain(*atlas_, o, path("animal-a.h5ad"));
    o.animalSeed = 2; // the same biology, other cells
    o.sectionOffsetUm = 200;
    o.deformationUm = 100;
    generateSyntheticBrain(*atlas_, o, path("animal-b.h5ad"));
    const CellTable a = readCellTable(path("animal-a.h5ad")), b = readCellTable(path("animal-b.h5ad"));
    QVERIFY(a.size() > 1000 && b.size() > 1000);
    // Cut elsewhere: each of B's sections (its cells' mean AP) lies between two of A's.
    auto sectionPositions = [](const CellTable& t) {
      std::vector<double> sum(t.sectionNames.size(), 0), n(t.sectionNames.size(), 0);
      for (std::size_t k = 0; k < t.ccfAp.size(); ++k) {
        sum[static_cast<std::size_t>(t.section[k])] += t.ccfAp[k];
        n[static_cast<std::size_t>(t.section[k])] += 1;
      }
      std::vector<double> out;
      for (std::size_t s = 0; s < sum.size(); ++s)
        if (n[s] > 0) out.push_back(sum[s] / n[s]);
      return out;
    };
    const auto apA = sectionPositions(a), apB = sectionPositions(b);
    QCOMPARE(apA.size(), std::size_t(4));
    QCOMPARE(apB.size(), std::size_t(4));
    for (double p : apB) {
      double nearest = 1e9;
      for (double q : apA) nearest = std::min(nearest, std::abs(p - q));
      QVERIFY2(nearest > 100 && nearest < 300,
               qPrintable(QString("a section of B at %1 um is %2 um from A's").arg(p).arg(nearest)));
    }
    double maxShift = 0, meanShift = 0;
    const std::vector<std::int32_t> leafB = ccfLabels(*atlas_, b, {"leaf"});
    const auto idsB = Hdf5File(path("animal-b.h5ad")).readInt64("/obs/ccf_structure_id").data;
    for (std::int64_t i = 0; i < b.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      // Deformed: the CCF position differs from the measured one, smoothly and by at most 100 um
      // per axis; and it is in the brain, in the structure the cell was made for.
      const double dx = std::abs(b.ccfMl[k] - b.x[k]), dy = std::abs(b.ccfDv[k] - b.y[k]);
      QVERIFY2(dx <= 100.01 && dy <= 100.01, qPrintable(QString("cell %1 moved %2, %3 um").arg(i).arg(dx).arg(dy)));
      maxShift = std::max({maxShift, dx, dy});
      meanShift += (dx + dy) / 2 / static_cast<double>(b.size());
      QVERIFY(leafB[k] >= 0);
      QCOMPARE(static_cast<std::int64_t>(atlas_->structures()[leafB[k]].id),
               idsB[static_cast<std::size_t>(b.fileRow[k])]);
    }
    // Naming the first animal's own seed as the animal changes nothing.
    {
      SyntheticBrainOptions same;
      same.maxCells = 500;
      same.genes = 4;
      same.cellTypes = 8;
      generateSyntheticBrain(*atlas_, same, path("same-0.h5ad"));
      same.animalSeed = same.seed;
      generateSyntheticBrain(*atlas_, same, path("same-1.h5ad"));
      Hdf5File f0(path("same-0.h5ad")), f1(path("same-1.h5ad"));
      QCOMPARE(f0.readFloat("/X").data, f1.readFloat("/X").data);
      QCOMPARE(f0.readFloat("/obsm/ccf").data, f1.readFloat("/obsm/ccf").data);
    }
    QVERIFY2(maxShift > 30 && meanShift > 5, qPrintable(QString("max %1, mean %2 um").arg(maxShift).arg(meanShift)));
    for (std::int64_t i = 0; i < a.size(); ++i) { // the first animal is the CCF's own shape
      const auto k = static_cast<std::size_t>(i);
      QCOMPARE(a.ccfMl[k], a.x[k]);
      QCOMPARE(a.ccfDv[k], a.y[k]);
    }
    // Labelled by their CCF structure, the two animals' regions correspond on the shared grid.
    const std::vector<std::int32_t> majorA = ccfLabels(*atlas_, a, {"major"}),
                                    majorB = ccfLabels(*atlas_, b, {"major"});
    const RegionCorrespondence r = correspondRegions(atlas_->annotation(), a, majorA, b, majorB);
    QCOMPARE(r.voxelUm, 100.0);
    QVERIFY2(r.agreement.adjustedMutualInformation > 0.7 && r.matchedShare > 0.8,
             qPrintable(QString("AMI %1, matched %2").arg(r.agreement.adjustedMutualInformation).arg(r.matchedShare)));
    for (const RegionOverlap& p : r.oneToOne)
      if (p.voxels > 200) QCOMPARE(p.a, p.b); // the same division in both
    // On the shared grid each agrees with the CCF itself, voxel for voxel, about as well.
    const std::vector<std::int32_t> ccfGrid = ccfVoxelLabels(*atlas_, 4, {"major"});
    QCOMPARE(r.gridA.size(), ccfGrid.size());
    const double amiA = agreement(ccfGrid, r.gridA).adjustedMutualInformation,
                 amiB = agreement(ccfGrid, r.gridB).adjustedMutualInformation;
    QVERIFY2(amiA > 0.7 && amiB > 0.7, qPrintable(QString("AMI with the CCF: %1, %2").arg(amiA).arg(amiB)));
    // Every jointly labelled voxel is a brain voxel with a CCF leaf (the major divisions leave
    // out a few structures, so that level counts fewer).
    QCOMPARE(agreement(ccfVoxelLabels(*atlas_, 4, {"leaf"}), r.gridA).cells, r.jointVoxels);
    // Without CCF coordinates: a clear error naming the dataset.
    CellTable flat = a;
    flat.ccfAp.clear();
    flat.ccfDv.clear();
    flat.ccfMl.clear();
    try {
      correspondRegions(atlas_->annotation(), a, majorA, flat, majorA);
      QFAIL("no error");
    } catch (const FileError& e) {
      QVERIFY(QString(e.what()).contains("no CCF coordinates"));
    }
  }
};

QTEST_APPLESS_MAIN(TestRegionCorrespondence)
#include "test_region_correspondence.moc"
