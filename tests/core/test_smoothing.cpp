// Spatial smoothing: a Gaussian-weighted mean over the k nearest cells of the same section
// (k = 1 is the identity, a uniform field stays uniform, noise shrinks, sections do not mix), and
// majority label smoothing removes an isolated label.
#include "core/SpatialSmoothing.h"

#include <QTest>

#include <cmath>
#include <random>

using namespace atlascope;

class TestSmoothing : public QObject {
  Q_OBJECT
  std::vector<float> x_, y_;
  std::vector<std::int32_t> s_;

private slots:
  void initTestCase() {
    // Two sections, each a 40 x 40 grid of cells 10 um apart, at the same coordinates.
    for (int sec = 0; sec < 2; ++sec)
      for (int i = 0; i < 40; ++i)
        for (int j = 0; j < 40; ++j) {
          x_.push_back(static_cast<float>(i * 10));
          y_.push_back(static_cast<float>(j * 10));
          s_.push_back(sec);
        }
  }

  void identityAndUniform() {
    std::vector<float> f(x_.size());
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i % 17);
    SmoothingOptions one;
    one.k = 1;
    QCOMPARE(smoothFeatures(x_, y_, s_, f, 1, one), f);
    std::vector<float> flat(x_.size() * 2, 3.5f);
    SmoothingOptions o;
    o.k = 30;
    for (float v : smoothFeatures(x_, y_, s_, flat, 2, o)) QVERIFY(std::abs(v - 3.5f) < 1e-5f);
  }

  void noiseShrinksAndSectionsStayApart() {
    std::mt19937 rng(1);
    std::normal_distribution<float> noise(0, 1);
    std::vector<float> f(x_.size());
    // Section 0 around 0, section 1 around 10: same positions, different values.
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = (s_[i] == 0 ? 0.0f : 10.0f) + noise(rng);
    SmoothingOptions o;
    o.k = 25;
    o.sigma = 50;
    const auto sm = smoothFeatures(x_, y_, s_, f, 1, o);
    double var = 0;
    for (std::size_t i = 0; i < sm.size(); ++i) {
      const double expected = s_[i] == 0 ? 0.0 : 10.0;
      QVERIFY2(std::abs(sm[i] - expected) < 1.5, "a section mixed with the other");
      var += (sm[i] - expected) * (sm[i] - expected);
    }
    var /= static_cast<double>(sm.size());
    QVERIFY2(var < 0.15, qPrintable(QString("variance %1 after smoothing 25 cells").arg(var)));
  }

  void majorityLabels() {
    std::vector<std::int32_t> l(x_.size(), 0);
    for (std::size_t i = 0; i < l.size(); ++i) l[i] = s_[i] == 0 ? 4 : 7;
    l[200] = 9;  // an isolated speck
    l[201] = -1; // no label: does not vote, gets one
    SmoothingOptions o;
    o.k = 9;
    const auto sm = smoothLabels(x_, y_, s_, l, o);
    QCOMPARE(sm[200], 4);
    QCOMPARE(sm[201], 4);
    QCOMPARE(sm[2000], 7);
    QVERIFY_THROWS_EXCEPTION(std::exception, smoothLabels(x_, y_, s_, std::vector<std::int32_t>(3, 0), o));
  }
};

QTEST_APPLESS_MAIN(TestSmoothing)
#include "test_smoothing.moc"
