// k-means recovers planted clusters, is deterministic on the CPU for a seed, repairs empty
// clusters, refuses k > cells; resolutions link into a tree; the composition baseline is the
// neighbourhood's type fractions.
#include "core/Agreement.h"
#include "core/Composition.h"
#include "core/Error.h"
#include "inference/Device.h"
#include "inference/KMeans.h"

#include <QTest>

#include <torch/torch.h>

using namespace atlascope;
using namespace atlascope::inference;

class TestKMeans : public QObject {
  Q_OBJECT
  torch::Tensor blobs(std::vector<std::int32_t>& truth, int k = 6, int per = 500) {
    torch::manual_seed(3);
    std::vector<torch::Tensor> parts;
    for (int c = 0; c < k; ++c) {
      parts.push_back(torch::randn({per, 8}) * 0.3 +
                      torch::full({1, 8}, static_cast<float>(c * 4)) * torch::randn({1, 8}).sign());
      for (int i = 0; i < per; ++i) truth.push_back(c);
    }
    return torch::cat(parts);
  }

private Q_SLOTS:
  void initTestCase() { configureCpuThreads(2); }

  void recoversPlantedClusters() {
    std::vector<std::int32_t> truth;
    const torch::Tensor x = blobs(truth);
    KMeansOptions o;
    o.k = 6;
    const KMeansResult r = kmeans(x, o);
    QCOMPARE(agreement(truth, r.labels).adjustedRand, 1.0);
    QCOMPARE(r.centroids.size(0), 6);
    QVERIFY(r.inertia > 0);
  }

  void deterministicOnCpu() {
    std::vector<std::int32_t> truth;
    const torch::Tensor x = blobs(truth, 12, 200) + torch::randn({2400, 8});
    KMeansOptions o;
    o.k = 9;
    o.seedingSample = 700; // the subsample path too
    const KMeansResult a = kmeans(x, o), b = kmeans(x, o);
    QCOMPARE(a.labels, b.labels);
    QCOMPARE(a.inertia, b.inertia);
    o.seed = 43;
    o.restarts = 1;
    KMeansOptions best = o;
    best.restarts = 5;
    QVERIFY(kmeans(x, best).inertia <= kmeans(x, o).inertia + 1e-6);
  }

  void emptyClustersAreRepaired() {
    // 10 distinct points, 4 copies each, k = 10: seeding may pick duplicates; every cluster
    // ends with cells.
    torch::Tensor x = torch::arange(10, torch::kFloat32).view({10, 1}).repeat({4, 1});
    KMeansOptions o;
    o.k = 10;
    const KMeansResult r = kmeans(x, o);
    std::vector<int> count(10, 0);
    for (auto l : r.labels) ++count[static_cast<std::size_t>(l)];
    for (int c : count) QVERIFY(c > 0);
    QVERIFY(r.inertia < 1e-6);
  }

  void kLargerThanCells() {
    try {
      KMeansOptions o;
      o.k = 50;
      kmeans(torch::zeros({10, 2}), o);
      QFAIL("no error for k > cells");
    } catch (const Error& e) {
      QVERIFY(QString(e.what()).contains("larger than the number of cells"));
    }
  }

  void linksResolutions() {
    const std::vector<std::int32_t> coarse{0, 0, 0, 1, 1, 1, 1, 0};
    const std::vector<std::int32_t> fine{0, 0, 1, 2, 2, 3, 3, 1};
    QCOMPARE(linkResolutions(coarse, fine, 4), (std::vector<std::int32_t>{0, 0, 1, 1}));
    // Majority when a fine region straddles: 2 cells in 1, 1 in 0.
    QCOMPARE(linkResolutions({0, 1, 1}, {0, 0, 0}, 1), (std::vector<std::int32_t>{1}));
  }

  void compositionBaseline() {
    NeighborhoodList h;
    h.indptr = {0, 2, 2, 5};
    h.indices = {1, 2, 0, 1, 1};
    const std::vector<std::int32_t> types{0, 1, 2};
    const auto c = neighborhoodComposition(h, types, 3);
    QCOMPARE(c, (std::vector<float>{0, 0.5f, 0.5f, 0, 0, 0, 1.0f / 3, 2.0f / 3, 0}));
  }
};

QTEST_APPLESS_MAIN(TestKMeans)
#include "test_kmeans.moc"
