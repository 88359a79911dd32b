// Agreement scores against scikit-learn 1.2 (adjusted_rand_score, adjusted_mutual_info_score,
// normalized_mutual_info_score, homogeneity/completeness/v_measure, mutual_info_score) on
// labelings both sides generate the same way; reference values computed once with Debian's
// python3-sklearn and written here.
#include "core/Agreement.h"

#include <QTest>

#include <cmath>
#include <functional>

using namespace atlascope;

namespace {
using Labels = std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>>;

Labels make(std::int64_t n, const std::function<std::pair<std::int64_t, std::int64_t>(std::int64_t)>& f) {
  Labels l;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto [a, b] = f(i);
    l.first.push_back(static_cast<std::int32_t>(a));
    l.second.push_back(static_cast<std::int32_t>(b));
  }
  return l;
}

// ARI, AMI, NMI, homogeneity, completeness, V-measure, MI.
void check(const Labels& l, const std::array<double, 7>& expected) {
  const AgreementScores s = agreement(l.first, l.second);
  const std::array<double, 7> got = {
      s.adjustedRand, s.adjustedMutualInformation, s.normalizedMutualInformation, s.homogeneity, s.completeness,
      s.vMeasure,     s.mutualInformation};
  const char* names[7] = {"ARI", "AMI", "NMI", "homogeneity", "completeness", "V-measure", "MI"};
  for (int k = 0; k < 7; ++k)
    QVERIFY2(std::abs(got[static_cast<std::size_t>(k)] - expected[static_cast<std::size_t>(k)]) < 1e-9,
             qPrintable(QString("%1: %2, scikit-learn %3")
                            .arg(names[k])
                            .arg(got[static_cast<std::size_t>(k)], 0, 'g', 15)
                            .arg(expected[static_cast<std::size_t>(k)], 0, 'g', 15)));
}
} // namespace

class TestAgreement : public QObject {
  Q_OBJECT
private slots:
  void smallUnrelated() {
    check(make(200, [](std::int64_t i) { return std::make_pair((i * 37 + i / 7) % 5, ((i * 11) % 17 + i % 3) % 4); }),
          {-0.00170789291620001, -0.00443504422410905, 0.0167291977527951, 0.015839424082172, 0.0177248865670021,
           0.0167291977527951, 0.0245630458459907});
  }
  void related40x30() {
    check(make(5000,
               [](std::int64_t i) {
                 const std::int64_t a = (i * 7919 % 104729) % 40;
                 return std::make_pair(a, (a * 3 + (i % 7 == 0 ? i % 30 : 0)) % 30);
               }),
          {0.33004137612379, 0.598165053731233, 0.613181537060407, 0.529519026184052, 0.728241663473705,
           0.613181537060407, 1.95327728222688});
  }
  void blocks50x120() {
    // 100k cells: exercises the truncated expected-mutual-information sums.
    check(make(100000,
               [](std::int64_t i) {
                 return std::make_pair((i / 1000) % 50, ((i + (i * 2654435761LL % 997)) / 2000) % 120);
               }),
          {0.363419057261023, 0.735206691904664, 0.736038619887367, 0.737094569194401, 0.7349856917228,
           0.736038619887367, 2.88353091186465});
  }
  void relabellingIsPerfect() {
    check(make(300,
               [](std::int64_t i) {
                 const std::int64_t a = (i * 5) % 7;
                 return std::make_pair(a, (a + 3) % 7);
               }),
          {1, 1, 1, 1, 1, 1, 1.94587662860007});
  }
  void oneClassAgainstThree() {
    check(make(50, [](std::int64_t i) { return std::make_pair(std::int64_t(0), i % 3); }), {0, 0, 0, 1, 0, 0, 0});
  }
  void missingLabelsAreLeftOut() {
    std::vector<std::int32_t> a{0, 0, 1, 1, -1, 2}, b{5, 5, 7, 7, 9, -1};
    const Contingency t = contingency(a, b);
    QCOMPARE(t.total, std::int64_t(4));
    QCOMPARE(t.referenceLabels, (std::vector<std::int32_t>{0, 1}));
    QCOMPARE(t.predictedLabels, (std::vector<std::int32_t>{5, 7}));
    QCOMPARE(agreement(t).adjustedRand, 1.0);
    QVERIFY_THROWS_EXCEPTION(std::exception, contingency({1, 2}, {1}));
  }
};

QTEST_APPLESS_MAIN(TestAgreement)
#include "test_agreement.moc"
