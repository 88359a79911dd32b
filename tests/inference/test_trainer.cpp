// Training: the schedule, the packed forward against the padded one, gradients against finite differences on a tiny
// model, a few CPU steps lower the loss and beat the per-gene-mean baseline, a resumed run gives bit-identical weights
// to an uninterrupted one, and a NaN loss stops with a clear error.
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/SyntheticBrain.h"
#include "inference/Device.h"
#include "inference/Embedding.h"
#include "inference/Init.h"
#include "inference/Trainer.h"

#include <QTemporaryDir>
#include <QTest>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <numeric>

using namespace atlascope;
using namespace atlascope::inference;

class TestTrainer : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  torch::Tensor expr_, types_;
  std::vector<float> x_, y_;
  std::vector<std::int64_t> s_;
  ModelConfig cfg_;

  std::unique_ptr<Trainer> trainer(CellTransformer& m, TrainOptions o) {
    return std::make_unique<Trainer>(m, expr_, types_, x_, y_, s_, o);
  }
  // A model from initWeights(seed) after three steps of `o` (small() with the caller's paths).
  std::unique_ptr<CellTransformer> trainedThreeSteps(TrainOptions o, std::uint64_t seed) {
    auto m = std::make_unique<CellTransformer>(initWeights(cfg_, seed), cfg_, "m");
    o.maxSteps = 3;
    trainer(*m, o)->run();
    return m;
  }
  TrainOptions small() {
    TrainOptions o;
    o.cellsPerStep = 64;
    o.warmup = 2;
    o.plateau = 100;
    o.lr = 3e-3;
    o.cap = 40;
    o.epochs = 50;
    return o;
  }

  // The summed loss of a batch's cells and every parameter's gradient (fresh leaves each call).
  // The training loss of one batch and every parameter's gradient: by the separate heads' values and
  // ATen's composite, or (`logits`) by the heads' pre-activations and zinbHeadsRowMean (`fused`: its
  // one pass each way).
  std::pair<double, std::map<std::string, torch::Tensor>>
  lossAndGradients(CellTransformer& m, const Batch& b, bool logits = false, bool fused = true) const {
    for (auto& [k, t] : m.mutableParameters()) {
      t = t.detach().clone();
      t.set_requires_grad(true);
    }
    const Output o = m.forward(expr_, types_, b, logits ? Heads::logits : Heads::values);
    const torch::Tensor target = expr_.index_select(0, b.reference);
    const torch::Tensor loss = logits ? zinbHeadsRowMean(target, o.headLogits, fused).sum()
                                      : zinbNll(target, o.mu, o.theta, o.ziLogits).mean(1).sum();
    loss.backward();
    std::map<std::string, torch::Tensor> grads;
    for (const auto& [k, t] : m.parameters())
      if (t.grad().defined()) grads[k] = t.grad().clone(); // (the scale head is not in the loss)
    return {loss.item<double>(), grads};
  }

private Q_SLOTS:
  void initTestCase() {
    configureCpuThreads(2);
    const Atlas atlas = Atlas::load(bundledAtlasPaths());
    SyntheticBrainOptions g;
    g.maxCells = 800;
    g.genes = 6;
    g.cellTypes = 8;
    g.cellsPerMm2 = 3000;
    const std::string data = dir_.filePath("t.h5ad").toStdString();
    generateSyntheticBrain(atlas, g, data);
    const CellTable t = readCellTable(data);
    ExpressionSource src(data);
    expr_ = torch::empty({t.size(), 6});
    src.readRows(0, t.size(), expr_.data_ptr<float>());
    types_ = torch::empty({t.size()}, torch::kInt64);
    for (std::int64_t i = 0; i < t.size(); ++i) {
      types_[i] = t.cellType[static_cast<std::size_t>(i)];
      x_.push_back(t.x[static_cast<std::size_t>(i)] / 10);
      y_.push_back(t.y[static_cast<std::size_t>(i)] / 10);
      s_.push_back(t.section[static_cast<std::size_t>(i)]);
    }
    cfg_.embedDim = 16;
    cfg_.heads = 2;
    cfg_.encoderLayers = 1;
    cfg_.decoderLayers = 1;
    cfg_.feedForward = 32;
    cfg_.genes = 6;
    cfg_.cellTypes = 8;
  }

  void schedule() {
    TrainOptions o;
    QCOMPARE(learningRate(o, 0), 1e-3 / 500);
    QCOMPARE(learningRate(o, 499), 1e-3);
    QCOMPARE(learningRate(o, 520), 1e-3);
    QCOMPARE(learningRate(o, 550), 1e-3);
    QVERIFY(std::abs(learningRate(o, 5550) - 1e-3 / std::sqrt(2.0)) < 1e-12);
  }

  // The padded batch of the first `cells` cells' neighbourhoods (cap 40: lengths differ).
  Batch firstCellsBatch(std::int64_t cells = 48) const {
    NeighborhoodOptions no;
    no.cap = 40;
    NeighborhoodIndex index(x_.data(), y_.data(), s_.data(), static_cast<std::int64_t>(x_.size()), no);
    const NeighborhoodList hoods = index.compute(0, cells);
    std::vector<std::int64_t> order(static_cast<std::size_t>(cells));
    std::iota(order.begin(), order.end(), 0);
    return makeBatch(hoods, order, 0, cells, 0, torch::kCPU);
  }

  // Training's packed layout (real tokens only outside attention) computes the padded forward.
  void packedForwardMatchesPadded() {
    CellTransformer m(initWeights(cfg_, 5), cfg_, "init");
    const Batch padded = firstCellsBatch();
    QVERIFY(!padded.uniform); // lengths differ: padding and masks are exercised
    const Batch packed = packBatch(padded);
    QCOMPARE(packed.rows.size(0), padded.valid.sum().item<std::int64_t>());
    const Output a = m.forward(expr_, types_, padded), b = m.forward(expr_, types_, packed);
    QVERIFY(torch::allclose(a.embedding, b.embedding, 1e-5, 1e-5));
    QVERIFY(torch::allclose(a.mu, b.mu, 1e-5, 1e-5));
    QVERIFY(torch::allclose(a.ziLogits, b.ziLogits, 1e-5, 1e-5));
    // The pool over the packed rows (default) and over a slice of the padded layout (before).
    m.setPackedPool(false);
    const Output c = m.forward(expr_, types_, packed);
    QVERIFY(torch::allclose(b.embedding, c.embedding, 1e-6, 1e-6));
    QVERIFY(torch::allclose(b.mu, c.mu, 1e-6, 1e-6));
  }

  // The packed tokens' permutation into sequence order: index_select's values, and its gradient
  // by the inverse permutation equals index_select's (each row sent to one place).
  void permutedRowsGradientIsIndexSelects() {
    const Batch rounded = packBatch(firstCellsBatch(), PackShape{64, 8});
    const std::int64_t R = rounded.order.size(0);
    const torch::Tensor x0 = torch::randn({R, 5}, torch::kFloat64), dy = torch::randn({R, 5}, torch::kFloat64);
    torch::Tensor a = x0.clone().requires_grad_(true), b = x0.clone().requires_grad_(true);
    const torch::Tensor ya = permuteRows(a, rounded.order), yb = b.index_select(0, rounded.order);
    QVERIFY(torch::equal(ya, yb));
    (ya * dy).sum().backward();
    (yb * dy).sum().backward();
    QVERIFY(torch::equal(a.grad(), b.grad()));
    QVERIFY(!torch::equal(rounded.order, torch::arange(R))); // a permutation that moves rows
  }

  // A GPU rounds packed batches to repeating shapes (filler tokens in padding slots, a longer
  // padded length): the loss and every gradient must stay those of the exact batch.
  void roundedShapesKeepLossAndGradients() {
    CellTransformer m(initWeights(cfg_, 6), cfg_, "init");
    const Batch padded = firstCellsBatch();
    const Batch exact = packBatch(padded), rounded = packBatch(padded, PackShape{64, 8});
    QVERIFY(rounded.rows.size(0) % 64 == 0 && rounded.rows.size(0) > exact.rows.size(0));
    QVERIFY(rounded.observed.size(1) % 8 == 0 && rounded.observed.size(1) >= exact.observed.size(1));
    QCOMPARE(rounded.valid.sum().item<std::int64_t>(), exact.rows.size(0));
    // The sequence layout a GPU attends over: every position in one sequence, none too long, each
    // neighbourhood's sequence ending with its class token and zero slot.
    const std::int64_t B = rounded.reference.size(0), R = rounded.rows.size(0) + 2 * B;
    const torch::Tensor cu = rounded.cuSeqlens.to(torch::kInt64);
    QCOMPARE(cu[-1].item<std::int64_t>(), R);
    QVERIFY((cu.narrow(0, 1, cu.size(0) - 1) - cu.narrow(0, 0, cu.size(0) - 1)).max().item<std::int64_t>() <=
            rounded.maxLength);
    QVERIFY(torch::equal(rounded.zeroRows, cu.narrow(0, 1, B) - 1));
    QCOMPARE(std::get<0>(torch::_unique(rounded.unpackIndex)).size(0), R); // distinct padded slots
    const auto [l1, g1] = lossAndGradients(m, exact);
    const auto [l2, g2] = lossAndGradients(m, rounded);
    QVERIFY2(std::abs(l1 - l2) <= 1e-5 * std::abs(l1), qPrintable(QString("loss %1 vs %2").arg(l1).arg(l2)));
    QCOMPARE(g1.size(), g2.size());
    QVERIFY(g1.size() > 20);
    for (const auto& [k, g] : g1)
      QVERIFY2(torch::allclose(g, g2.at(k), 1e-4, 1e-6), qPrintable(QString::fromStdString(k)));
  }

  // Training's batches without add_zero_attn's slot rows (TrainOptions::virtualZeroSlots: the
  // attention appends each neighbourhood's zero key and value): the loss and every gradient of the
  // batch with its slots stored, exact and rounded as a GPU rounds them; one row less per
  // neighbourhood, none of them a slot.
  void virtualZeroSlotsKeepLossAndGradients() {
    CellTransformer m(initWeights(cfg_, 7), cfg_, "init");
    const Batch padded = firstCellsBatch();
    const std::int64_t B = padded.reference.size(0);
    const PackShape exactShape = m.trainingPackShape(0, true);
    QVERIFY(exactShape.virtualZeroSlot && exactShape.tokenMultiple == 0 &&
            !m.trainingPackShape(0, false).virtualZeroSlot);
    PackShape roundedShape{64, 8};
    roundedShape.virtualZeroSlot = true;
    for (const auto& [stored, virtualSlots] :
         {std::make_pair(packBatch(padded), packBatch(padded, exactShape)),
          std::make_pair(packBatch(padded, PackShape{64, 8}), packBatch(padded, roundedShape))}) {
      QVERIFY(virtualSlots.virtualZeroSlot && !stored.virtualZeroSlot);
      QCOMPARE(virtualSlots.zeroRows.numel(), std::int64_t(0));
      QCOMPARE(virtualSlots.order.size(0), stored.order.size(0) - B);
      QCOMPARE(virtualSlots.rows.size(0), stored.rows.size(0));
      // Each neighbourhood's sequence ends at its class token (row Tp + b), no slot row anywhere.
      const std::int64_t Tp = virtualSlots.rows.size(0);
      QVERIFY(virtualSlots.order.max().item<std::int64_t>() < Tp + B);
      const torch::Tensor cu = virtualSlots.cuSeqlens.to(torch::kInt64);
      for (std::int64_t b = 0; b < B; ++b)
        QCOMPARE(virtualSlots.order[cu[b + 1].item<std::int64_t>() - 1].item<std::int64_t>(), Tp + b);
      QCOMPARE(virtualSlots.maxLength, stored.maxLength);
      const auto [l1, g1] = lossAndGradients(m, stored);
      const auto [l2, g2] = lossAndGradients(m, virtualSlots);
      QVERIFY2(std::abs(l1 - l2) <= 1e-5 * std::abs(l1), qPrintable(QString("loss %1 vs %2").arg(l1).arg(l2)));
      QCOMPARE(g1.size(), g2.size());
      QVERIFY(g1.size() > 20);
      for (const auto& [k, g] : g1)
        QVERIFY2(torch::allclose(g, g2.at(k), 1e-4, 1e-6), qPrintable(QString::fromStdString(k)));
    }
    // Training's shapes bound their sequences by the padded length: the slots stay stored where that
    // bound passes the kernels' longest, though every real sequence would fit (so that one bound, one
    // CUDA graph, never holds both layouts).
    PackShape bounded{64, 32};
    bounded.virtualZeroSlot = true;
    const Batch wide = packBatch(padded, bounded);
    QVERIFY(wide.virtualZeroSlot && packBatch(padded).maxLength < wide.maxLength);
    bounded.virtualZeroSlotLongest = wide.maxLength - 1;
    const Batch held = packBatch(padded, bounded);
    QVERIFY(!held.virtualZeroSlot && held.maxLength == wide.maxLength);
    QCOMPARE(held.zeroRows.numel(), B);
  }

  // A few CPU steps with virtual zero slots train the weights that stored slots train (to float32
  // rounding: the products run over fewer rows).
  void virtualZeroSlotsTrainTheSameWeights() {
    TrainOptions o = small();
    auto trained = [&](bool virtualSlots) {
      o.virtualZeroSlots = virtualSlots;
      return trainedThreeSteps(o, 12);
    };
    const auto a = trained(true), b = trained(false);
    const torch::Tensor before = initWeights(cfg_, 12).at("encoder.layers.0.self_attn.in_proj_weight");
    QVERIFY(!torch::equal(a->parameters().at("encoder.layers.0.self_attn.in_proj_weight"), before)); // it trained
    for (const auto& [k, v] : a->parameters())
      QVERIFY2(torch::allclose(v, b->parameters().at(k), 1e-4, 1e-5), k.c_str());
  }

  // Embedding rounds its packed batches' row counts and adds empty neighbourhoods (PackShape's
  // rowMultiple and cellSteps): each real cell keeps its embedding, the added ones stay finite.
  void roundedRowsAndCellsKeepEmbeddings() {
    QCOMPARE(roundedCells(1000, 8), std::int64_t(1024)); // octave 512, steps of 64
    QCOMPARE(roundedCells(1024, 8), std::int64_t(1024));
    QCOMPARE(roundedCells(1025, 8), std::int64_t(1152)); // octave 1024, steps of 128
    QCOMPARE(roundedCells(5, 8), std::int64_t(5));
    QCOMPARE(roundedCells(77, 0), std::int64_t(77));
    CellTransformer m(initWeights(cfg_, 7), cfg_, "init");
    torch::NoGradGuard noGrad;
    const Batch padded = firstCellsBatch(45); // rounded to 48 (octave 32, steps of 4)
    const std::int64_t B = padded.reference.size(0);
    const Batch exact = packBatch(padded), rounded = packBatch(padded, PackShape{0, 8, 64, 8});
    const std::int64_t Bp = rounded.reference.size(0);
    QCOMPARE(Bp, roundedCells(B, 8));
    QVERIFY(Bp > B); // the fixture's B is not a step: empty neighbourhoods are exercised
    QCOMPARE((rounded.rows.size(0) + 2 * Bp) % 64, std::int64_t(0));
    // Fillers never make a sequence longer than the longest real one (it sizes kernels' memory).
    QVERIFY(rounded.maxLength <= std::max<std::int64_t>(16, exact.maxLength));
    QCOMPARE(packBatch(firstCellsBatch(0), PackShape{0, 8, 64, 8}).rows.size(0), std::int64_t(0)); // no hang
    QCOMPARE(rounded.valid.sum().item<std::int64_t>(), exact.rows.size(0));
    QCOMPARE(rounded.valid.narrow(0, B, Bp - B).sum().item<std::int64_t>(), std::int64_t(0));
    QVERIFY(torch::equal(rounded.zeroRows, rounded.cuSeqlens.narrow(0, 1, Bp).to(torch::kInt64) - 1));
    const Output a = m.forward(expr_, types_, exact, false), b = m.forward(expr_, types_, rounded, false);
    QCOMPARE(b.embedding.size(0), Bp);
    QVERIFY(torch::allclose(a.embedding, b.embedding.narrow(0, 0, B), 1e-5, 1e-5));
    QVERIFY(torch::isfinite(b.embedding).all().item<bool>());
  }

  void gradientsMatchFiniteDifferences() {
    CellTransformer m(initWeights(cfg_, 3), cfg_, "init");
    TrainOptions o = small();
    o.lr = 0; // keep the weights: only the gradient of the first step is looked at
    auto t = trainer(m, o);
    t->step(); // accumulates .grad on every parameter
    auto& params = m.mutableParameters();
    int checked = 0;
    for (const char* name :
         {"zinb_proj.mu.weight", "decoder.layers.0.linear2.weight", "expression_projection.0.weight"}) {
      torch::Tensor p = params.at(name);
      const torch::Tensor g = p.grad().clone();
      const auto flat = g.abs().view(-1).argmax().item<std::int64_t>();
      const double analytic = g.view(-1)[flat].item<double>();
      // Central difference of the same loss (the first step's cells), eps relative to the weight.
      const double eps = 1e-2;
      const float orig = p.view(-1)[flat].item<float>();
      auto lossAt = [&](float v) {
        StateDict w;
        {
          torch::NoGradGuard ng;
          for (const auto& [k, t2] : m.parameters()) w[k] = t2.detach().clone();
          w[name].view(-1)[flat] = v;
        }
        CellTransformer copy(w, cfg_, "copy");
        auto tc = trainer(copy, o);
        return tc->step();
      };
      const double up = lossAt(orig + static_cast<float>(eps)), down = lossAt(orig - static_cast<float>(eps));
      const double numeric = (up - down) / (2 * eps);
      QVERIFY2(std::abs(numeric - analytic) <= 0.05 * std::abs(analytic) + 1e-4,
               qPrintable(QString("%1: analytic %2, numeric %3").arg(name).arg(analytic).arg(numeric)));
      ++checked;
    }
    QCOMPARE(checked, 3);
  }

  void learnsAndBeatsTheBaseline() {
    CellTransformer m(initWeights(cfg_, 4), cfg_, "init");
    TrainOptions o = small();
    o.maxSteps = 60;
    auto t = trainer(m, o);
    const ValidationMetrics before = t->validate();
    t->run();
    const ValidationMetrics after = t->validate();
    qInfo("validation NLL %.4f -> %.4f (baseline %.4f); Pearson %.3f -> %.3f (baseline %.3f)", before.nll, after.nll,
          after.baselineNll, before.pearson, after.pearson, after.baselinePearson);
    QVERIFY(after.nll < before.nll);
    QVERIFY(after.pearson > before.pearson);
    QVERIFY(after.pearson > after.baselinePearson);
  }

  // Validation by chunks built ahead on threads, its sums read once, the baseline made once
  // (TrainOptions::validationAhead) scores what the path before scored, and again the same on a
  // second call (it starts from the first chunk each time); within a run that validates every two
  // steps too.
  void validationAheadScoresAsBefore() {
    auto m = trainedThreeSteps(small(), 6);
    TrainOptions o = small();
    o.cellsPerStep = 48; // chunks of 48 cells: several, the last one short
    auto ahead = trainer(*m, o);
    o.validationAhead = false;
    auto before = trainer(*m, o);
    const ValidationMetrics a = ahead->validate(), b = before->validate(), again = ahead->validate();
    auto close = [](double x, double y) { return std::abs(x - y) <= 1e-5 * std::max(1.0, std::abs(y)); };
    QVERIFY2(close(a.nll, b.nll), qPrintable(QString("NLL %1 against %2").arg(a.nll).arg(b.nll)));
    QVERIFY2(close(a.pearson, b.pearson), qPrintable(QString("Pearson %1 against %2").arg(a.pearson).arg(b.pearson)));
    QVERIFY2(close(a.baselineNll, b.baselineNll),
             qPrintable(QString("baseline NLL %1 against %2").arg(a.baselineNll).arg(b.baselineNll)));
    QVERIFY(close(a.baselinePearson, b.baselinePearson));
    QCOMPARE(again.nll, a.nll);
    QCOMPARE(again.pearson, a.pearson);
    QVERIFY(std::isfinite(a.nll) && a.nll > 0 && a.baselineNll > 0);
    QVERIFY(ahead->stepTimes().validationBuildSeconds > 0);

    // In a run: each validation from the chunks started while its steps ran.
    std::vector<ValidationMetrics> seen;
    TrainOptions r = small();
    r.maxSteps = 4;
    r.validateEvery = 2;
    r.onValidation = [&seen](const ValidationMetrics& v) { seen.push_back(v); };
    CellTransformer c(initWeights(cfg_, 6), cfg_, "c");
    auto t = trainer(c, r);
    t->run();
    QCOMPARE(seen.size(), std::size_t(2));
    const ValidationMetrics after = t->validate();
    QCOMPARE(after.nll, seen.back().nll); // the same weights, the same cells
    QVERIFY(seen.front().nll != seen.back().nll);
  }

  void resumeIsBitIdentical() {
    TrainOptions o = small();
    o.maxSteps = 4;
    CellTransformer a(initWeights(cfg_, 5), cfg_, "a");
    trainer(a, o)->run();

    CellTransformer b(initWeights(cfg_, 5), cfg_, "b");
    o.maxSteps = 2;
    const std::string state = dir_.filePath("b.train").toStdString();
    StateDict saved;
    {
      auto tb = trainer(b, o);
      tb->run();
      tb->saveState(state);
      for (const auto& [k, v] : b.parameters()) saved[k] = v.detach().clone();
    }
    CellTransformer c(saved, cfg_, "c");
    o.maxSteps = 4;
    auto tc = trainer(c, o);
    tc->loadState(state);
    QCOMPARE(tc->state().step, std::int64_t(2));
    tc->run();
    for (const auto& [k, v] : a.parameters()) QVERIFY2(torch::equal(v, c.parameters().at(k)), k.c_str());

    // A state whose moments torch::save wrote (before they were HDF5) resumes the same.
    {
      NdArray<float> m1, m2;
      std::int64_t steps = 0;
      { // closed before the file is cut below (HDF5 would read an open file's cached state)
        const Hdf5File f(state + ".adam");
        m1 = f.readFloat("/exp_avg");
        m2 = f.readFloat("/exp_avg_sq");
        steps = f.readInt64("/steps").data.at(0);
      }
      QCOMPARE(steps, std::int64_t(2));
      auto tensorOf = [](NdArray<float> a) {
        return torch::from_blob(a.data.data(), {static_cast<std::int64_t>(a.data.size())}, torch::kFloat32).clone();
      };
      const std::string old = dir_.filePath("old.train").toStdString();
      torch::save(std::vector<torch::Tensor>{tensorOf(m1), tensorOf(m2), torch::tensor({steps}, torch::kInt64)},
                  old + ".adam");
      std::ifstream in(state);
      std::ofstream(old) << in.rdbuf();
      CellTransformer d(saved, cfg_, "d");
      auto td = trainer(d, o);
      td->loadState(old);
      td->run();
      for (const auto& [k, v] : a.parameters()) QVERIFY2(torch::equal(v, d.parameters().at(k)), k.c_str());
      // Moments cut short: a clear error naming the file.
      std::filesystem::resize_file(state + ".adam", std::filesystem::file_size(state + ".adam") / 2);
      try {
        trainer(d, o)->loadState(state);
        QFAIL("a truncated optimiser state was read");
      } catch (const FileError& e) {
        QVERIFY2(QString(e.what()).contains("b.train.adam"), e.what());
      }
    }

    // A damaged state: a count that is no count (1e300 cast to an integer is undefined), or none.
    for (const char* bad : {R"({"step": 1e300, "epoch": 0, "position": 0})", R"({"step": 2, "epoch": 0})",
                            R"({"step": -1, "epoch": 0, "position": 0})"}) {
      const std::string damaged = dir_.filePath("damaged.train").toStdString();
      std::ofstream(damaged) << bad;
      auto td = trainer(c, o);
      try {
        td->loadState(damaged);
        QFAIL(bad);
      } catch (const FileError& e) {
        QVERIFY2(QString(e.what()).contains("damaged.train"), e.what());
      }
    }
  }

  // bf16 compute copies as views of one flat buffer (one cast per step, their gradients added
  // straight into the float32 gradient buffer) train to the weights of a cast per parameter, bit
  // for bit; afterwards the model computes with copies of its own again.
  void flatComputeCopiesMatchPerParameterCasts() {
    TrainOptions o = small();
    o.maxSteps = 3;
    auto trained = [&](bool flat) {
      auto m = std::make_unique<CellTransformer>(initWeights(cfg_, 9), cfg_, "m");
      m->to(torch::kCPU, torch::kBFloat16);
      o.flatComputeCopies = flat;
      trainer(*m, o)->run();
      return m;
    };
    const auto a = trained(true), b = trained(false);
    const torch::Tensor before = initWeights(cfg_, 9).at("zinb_proj.mu.weight");
    QVERIFY(!torch::equal(a->parameters().at("zinb_proj.mu.weight"), before)); // it trained
    for (const auto& [k, v] : a->parameters()) QVERIFY2(torch::equal(v, b->parameters().at(k)), k.c_str());
    StateDict w;
    for (const auto& [k, v] : a->parameters()) w[k] = v.detach().clone();
    CellTransformer fresh(w, cfg_, "fresh");
    fresh.to(torch::kCPU, torch::kBFloat16);
    torch::NoGradGuard noGrad;
    const Batch batch = packBatch(firstCellsBatch());
    QVERIFY(torch::equal(a->forward(expr_, types_, batch).mu, fresh.forward(expr_, types_, batch).mu));
  }

  // The compute copies' gradients added after each backward (TrainOptions::foldComputeGradients)
  // give the weights autograd's own additions gave, bit for bit, over steps of several
  // micro-batches: each gradient folded once, none missed, none left over for the next backward.
  // The same for the tokens' expression gathered from the bf16 copy (computeInputs).
  void foldedGradientsMatchAutogradAdds() {
    TrainOptions o = small();
    o.maxSteps = 3;
    o.microBatchTokens = 512; // several backwards per step
    auto trained = [&](bool fold, bool computeInputs) {
      auto m = std::make_unique<CellTransformer>(initWeights(cfg_, 10), cfg_, "m");
      m->to(torch::kCPU, torch::kBFloat16);
      o.foldComputeGradients = fold;
      o.computeInputs = computeInputs;
      auto t = trainer(*m, o);
      if (t->gathersComputeInputs() != computeInputs) return std::unique_ptr<CellTransformer>();
      t->run();
      return m;
    };
    const auto a = trained(true, true), b = trained(false, false), c = trained(true, false);
    QVERIFY(a && b && c);
    for (const auto& [k, v] : a->parameters()) {
      QVERIFY2(torch::equal(v, b->parameters().at(k)), k.c_str());
      QVERIFY2(torch::equal(v, c->parameters().at(k)), k.c_str());
    }
    const StateDict before = initWeights(cfg_, 10);
    for (const char* k : {"zinb_proj.mu.weight", "encoder.layers.0.self_attn.in_proj_weight",
                          "encoder.layers.0.norm1.bias", "expression_projection.0.weight", "cls_token"})
      QVERIFY2(!torch::equal(a->parameters().at(k), before.at(k)), k); // they trained
  }

  // run() queues a step before it reads the previous one's loss (TrainOptions::overlapSteps): the
  // same losses, each step reported once and in order, every step before a validation reported
  // before it, a cancel leaving the state at the last reported step, a NaN caught by run().
  void overlappedStepsReportEveryStepInOrder() {
    struct Log {
      std::vector<std::pair<std::int64_t, double>> steps;
      std::vector<std::int64_t> queuedAt;       // the trainer's step count when each step was reported
      std::vector<std::int64_t> validatedAfter; // steps reported when each validation ran
      std::int64_t sequences = 0;               // neighbourhoods in step_times' sequence_tiles
    };
    auto go = [&](bool overlap, std::int64_t maxSteps, Log& log, const CancellationToken* cancel = nullptr,
                  std::int64_t cancelAt = 0, CancellationToken* token = nullptr) {
      CellTransformer m(initWeights(cfg_, 12), cfg_, "overlap");
      TrainOptions o = small();
      o.overlapSteps = overlap;
      o.maxSteps = maxSteps;
      o.validateEvery = 2;
      o.cancel = cancel;
      Trainer* running = nullptr;
      o.onStep = [&log, &running, cancelAt, token](std::int64_t step, double loss, double, double) {
        log.steps.emplace_back(step, loss);
        log.queuedAt.push_back(running->state().step);
        if (token && step == cancelAt) token->cancel();
      };
      o.onValidation = [&log](const ValidationMetrics&) {
        log.validatedAfter.push_back(static_cast<std::int64_t>(log.steps.size()));
      };
      auto t = trainer(m, o);
      running = t.get();
      try {
        t->run();
      } catch (const Cancelled&) {
        return std::make_pair(t->state().step, true);
      }
      for (const std::int64_t n : t->stepTimes().sequenceTiles) log.sequences += n;
      return std::make_pair(t->state().step, false);
    };
    Log serial, overlapped;
    QCOMPARE(go(false, 5, serial).first, std::int64_t(5));
    QCOMPARE(go(true, 5, overlapped).first, std::int64_t(5));
    QCOMPARE(overlapped.steps.size(), std::size_t(5));
    // Every step's neighbourhoods counted once by their length in 16-row tiles (bench's JSON).
    QCOMPARE(serial.sequences, std::int64_t(5 * small().cellsPerStep));
    QCOMPARE(overlapped.sequences, serial.sequences);
    for (std::size_t i = 0; i < 5; ++i) {
      QCOMPARE(overlapped.steps[i].first, static_cast<std::int64_t>(i + 1));
      QCOMPARE(overlapped.steps[i].second, serial.steps[i].second); // the same computation
    }
    // Validations after steps 2 and 4 and at the end, each after the steps before it were reported.
    QVERIFY(overlapped.validatedAfter == (std::vector<std::int64_t>{2, 4, 5}));
    QVERIFY(overlapped.validatedAfter == serial.validatedAfter);
    // Deferred for real: steps 1 and 3 were reported once the next step was queued; 2 and 4 before
    // their validations, 5 at the end. Serial steps are reported as they end.
    QVERIFY(overlapped.queuedAt == (std::vector<std::int64_t>{2, 2, 4, 4, 5}));
    QVERIFY(serial.queuedAt == (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

    // Cancelled while step 3 is reported: the run stops with every step it counts reported.
    CancellationToken token;
    Log cancelled;
    const auto [step, wasCancelled] = go(true, 20, cancelled, &token, 3, &token);
    QVERIFY(wasCancelled);
    // Step 4 was queued when step 3 was reported, and reported before the validation due after it.
    QCOMPARE(step, std::int64_t(4));
    QCOMPARE(cancelled.steps.size(), std::size_t(4));

    // A NaN loss stops run() with the message of step(), naming the step whose loss it was.
    StateDict w = initWeights(cfg_, 6);
    w["zinb_proj.mu.bias"].fill_(NAN);
    CellTransformer bad(w, cfg_, "nan");
    TrainOptions o = small();
    o.maxSteps = 5;
    bool validated = false;
    o.onValidation = [&validated](const ValidationMetrics&) { validated = true; };
    try {
      trainer(bad, o)->run();
      QFAIL("no error for a NaN loss");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("NaN at step 0") && QString(e.what()).contains("last checkpoint is kept"),
               e.what());
    }
    QVERIFY(!validated); // nothing was checkpointed after it
  }

  // The fused loss (one pass each way, ZinbLoss.h's hand-derived gradient) against ATen's composite
  // zinbNll in float64 with autograd, values and the three gradients over zero and non-zero counts
  // and extreme rows (checkZinbRowMean, which `parity` runs on the GPU): no less accurate than the
  // float32 composite. A wrong term of the gradient (1e-3 added to dtheta's) fails here.
  void fusedLossMatchesComposite() {
    const ZinbCheck c = checkZinbRowMean(torch::kCPU, 61, 53);
    qInfo("p99 relative error %.3g (composite %.3g); largest %.3g (composite %.3g)", c.fusedP99, c.compositeP99,
          c.fusedMax, c.compositeMax);
    QVERIFY(c.fusedP99 >= 0 && c.compositeP99 >= 0);
    QVERIFY(c.fusedP99 <= c.compositeP99 + 1e-6);
    QVERIFY(c.fusedMax <= 2 * c.compositeMax + 1e-6);
    // Inputs it does not take (float64) fall back to the composite.
    torch::manual_seed(3);
    const torch::Tensor x = torch::rand({4, 5}, torch::kFloat64), m = torch::rand({4, 5}, torch::kFloat64) + 0.1;
    QVERIFY(torch::equal(zinbNllRowMean(x, m, m, x, true), zinbNll(x, m, m, x).mean(1)));
  }

  // Training's heads as one product whose pre-activations the loss reads (Heads::logits,
  // zinbHeadsRowMean, the trainer's default) give the loss and every gradient of the separate heads'
  // values and ATen's composite, fused or not; the function itself matches its composite on extreme
  // rows (checkZinbHeads, which `parity` runs on the GPU); a few steps train the same weights.
  void fusedHeadsGiveTheSeparateHeadsLoss() {
    CellTransformer m(initWeights(cfg_, 9), cfg_, "init");
    const Batch b = packBatch(firstCellsBatch());
    const Output o = m.forward(expr_, types_, b, Heads::logits);
    QVERIFY(o.headLogits.defined() && !o.mu.defined() && !o.scale.defined() && !o.embedding.defined());
    QCOMPARE(o.headLogits.size(1), std::int64_t(3 * cfg_.genes));
    const auto [l0, g0] = lossAndGradients(m, b);
    QVERIFY(g0.count("zinb_proj.gate_logit.weight") && g0.count("zinb_proj.theta.bias") &&
            !g0.count("zinb_proj.scale.weight"));
    for (const bool fused : {true, false}) {
      const auto [l1, g1] = lossAndGradients(m, b, true, fused);
      QVERIFY2(std::abs(l1 - l0) <= 1e-5 * std::abs(l0), qPrintable(QString("loss %1 vs %2").arg(l1).arg(l0)));
      QCOMPARE(g1.size(), g0.size());
      // (One product over the three heads sums in another order than three: float32 rounding, which
      // reaches the first decoder layer's LayerNorm weights at ~1e-6 absolute.)
      for (const auto& [k, g] : g0)
        QVERIFY2(g1.count(k) && torch::allclose(g1.at(k), g, 1e-4, 1e-5), qPrintable(QString::fromStdString(k)));
    }
    const ZinbHeadsCheck c = checkZinbHeads(torch::kCPU, 37, 29);
    qInfo("heads' loss %.3g, gradient %.3g (relative to the largest)", c.loss, c.gradient);
    QVERIFY(c.loss >= 0 && c.loss < 1e-5 && c.gradient >= 0 && c.gradient < 1e-5);
    // Pre-activations in rows wider than 3 genes (a view) are read by their row stride.
    torch::manual_seed(5);
    const torch::Tensor wide = torch::randn({7, 3 * 4 + 5}), x = torch::rand({7, 4});
    QVERIFY(torch::allclose(zinbHeadsRowMean(x, wide.narrow(1, 0, 12), true),
                            zinbHeadsRowMean(x, wide.narrow(1, 0, 12).contiguous(), false), 1e-5, 1e-6));
    // Pre-activations of another width are an error, not a read past the rows.
    try {
      zinbHeadsRowMean(torch::zeros({4, 5}), torch::zeros({4, 14}));
      QFAIL("no error for 14 columns of pre-activations over 5 genes");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("pre-activations"), e.what());
    }
    TrainOptions opt = small();
    auto trained = [&](bool fusedHeads) {
      opt.fusedHeads = fusedHeads;
      return trainedThreeSteps(opt, 12);
    };
    const auto a = trained(true), s = trained(false);
    QVERIFY(!torch::equal(a->parameters().at("zinb_proj.mu.weight"), initWeights(cfg_, 12).at("zinb_proj.mu.weight")));
    for (const auto& [k, v] : a->parameters())
      QVERIFY2(torch::allclose(v, s->parameters().at(k), 1e-4, 1e-5), k.c_str());
  }

  void nanStops() {
    StateDict w = initWeights(cfg_, 6);
    w["zinb_proj.mu.bias"].fill_(NAN);
    CellTransformer m(w, cfg_, "nan");
    auto t = trainer(m, small());
    try {
      t->step();
      QFAIL("no error for a NaN loss");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("NaN") && QString(e.what()).contains("last checkpoint is kept"), e.what());
    }
    QCOMPARE(t->state().step, std::int64_t(0)); // nothing was applied
  }
};

QTEST_APPLESS_MAIN(TestTrainer)
#include "test_trainer.moc"
