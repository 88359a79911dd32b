// Several ranks of one job on the CPU (two processes through Gloo on 127.0.0.1, as CI has no
// GPU): data-parallel training equals one process with the same global batch, a dead rank fails
// the other with a clear error within the c10d timeout, a cancel stops every rank at the same
// step, a 2-rank checkpoint resumes with 1 rank, and a sharded embedding equals one process's.
#include "core/Hdf5File.h"
#include "tests/app/CliRun.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <arpa/inet.h>
#include <cmath>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {
using Run = atlascope::app::test::CliRun;

Run cli(const QStringList& args, int timeoutMs = 180000) { return atlascope::app::test::runCli(args, timeoutMs); }

QJsonObject lastJson(const QString& out) {
  const QStringList lines = out.trimmed().split('\n');
  return lines.isEmpty() ? QJsonObject() : QJsonDocument::fromJson(lines.last().toUtf8()).object();
}

int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Every weight of two checkpoints: the largest and the mean absolute difference.
struct Diff {
  double max = 0, mean = 0;
};
Diff weightDiff(const QString& a, const QString& b) {
  atlascope::Hdf5File fa(a.toStdString()), fb(b.toStdString());
  Diff d;
  double sum = 0;
  std::size_t count = 0;
  for (const std::string& name : fa.children("/weights")) {
    const auto x = fa.readFloat("/weights/" + name), y = fb.readFloat("/weights/" + name);
    if (x.data.size() != y.data.size()) return {INFINITY, INFINITY};
    for (std::size_t i = 0; i < x.data.size(); ++i) {
      const double e = std::abs(static_cast<double>(x.data[i]) - y.data[i]);
      d.max = std::max(d.max, e);
      sum += e;
    }
    count += x.data.size();
  }
  d.mean = count ? sum / static_cast<double>(count) : 0;
  return d;
}
} // namespace

class TestCliRanks : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString data_;
  QStringList base_, train_; // the common training arguments (CPU, a small global batch); + lr 0.05, quiet

  QString path(const QString& name) const { return dir_.filePath(name); }

private Q_SLOTS:
  void initTestCase() {
    qputenv("ATLASCOPE_DIST_TIMEOUT", "30");
    data_ = path("ranks.h5ad");
    QCOMPARE(
        cli({"generate", "--out", data_, "--cells", "600", "--genes", "8", "--types", "8", "--density", "3000"}).code,
        0);
    base_ = QStringList{"--device", "cpu", "--cells-per-step", "64", "--seed", "7"};
    train_ = base_ + QStringList{"--lr", "0.05", "--progress", "none"};
  }

  void twoRanksEqualOne() {
    // lr 0: the initial weights, for the size of the updates.
    Run init = cli(
        QStringList{"train", data_, "--out", path("init.h5"), "--max-steps", "1", "--lr", "0", "--progress", "none"} +
        base_);
    QVERIFY2(init.code == 0, qPrintable(init.err));
    Run one = cli(QStringList{"train", data_, "--out", path("one.h5"), "--max-steps", "4"} + train_);
    QVERIFY2(one.code == 0, qPrintable(one.err));
    // Small gradient buckets (the default 25 MiB would hold this model whole): many all-reduces,
    // each started from the backward's hooks as its bucket fills.
    Run two = cli(QStringList{"train", data_, "--out", path("two.h5"), "--max-steps", "4", "--ranks", "2",
                              "--check-weights-every", "1", "--bucket-mb", "0.02"} +
                  train_);
    QVERIFY2(two.code == 0, qPrintable(two.out + two.err));
    const QJsonObject r1 = lastJson(one.out), r2 = lastJson(two.out);
    QCOMPARE(r2["world_size"].toInt(), 2);
    QCOMPARE(r2["ranks"].toInt(), 2);
    QCOMPARE(r2["gpus"].toInt(), 0); // CPU ranks
    QCOMPARE(r2["allreduce"].toString(), QString("buckets"));
    QCOMPARE(r1["ranks"].toInt(), 1);
    // One all-reduce after the backward (the path before buckets): the same weights.
    Run after = cli(QStringList{"train", data_, "--out", path("after.h5"), "--max-steps", "4", "--ranks", "2",
                                "--allreduce", "after"} +
                    train_);
    QVERIFY2(after.code == 0, qPrintable(after.out + after.err));
    QCOMPARE(lastJson(after.out)["allreduce"].toString(), QString("after"));
    const Diff modes = weightDiff(path("two.h5"), path("after.h5"));
    QVERIFY2(modes.max < 1e-6, "buckets and one all-reduce after the backward give other weights");
    QCOMPARE(r2["backend"].toString(), QString("gloo"));
    QCOMPARE(r2["steps"].toInt(), 4);
    // Validation split over the ranks and reduced: the same figure.
    QVERIFY2(std::abs(r1["validation_nll"].toDouble() - r2["validation_nll"].toDouble()) <
                 1e-4 * std::abs(r1["validation_nll"].toDouble()),
             qPrintable(one.out + two.out));
    const Diff moved = weightDiff(path("init.h5"), path("one.h5")), apart = weightDiff(path("one.h5"), path("two.h5"));
    qInfo("updates: max %.3g mean %.3g; one vs two ranks: max %.3g mean %.3g", moved.max, moved.mean, apart.max,
          apart.mean);
    QVERIFY(moved.mean > 1e-4);
    QVERIFY2(apart.mean < 1e-3 * moved.mean && apart.max < 0.05 * moved.max,
             "the 2-rank weights differ from the 1-process run");
    // The training log says how many ranks trained.
    atlascope::Hdf5File f(path("two.h5").toStdString());
    const QJsonObject log =
        QJsonDocument::fromJson(QByteArray::fromStdString(f.readStrings("/training_log").at(0))).object();
    QCOMPARE(log["world_size"].toInt(), 2);
  }

  void resumeWithOneRank() {
    // 4 steps on two ranks (above), then 2 more on one: the same as 6 steps in one process.
    QVERIFY(QFileInfo::exists(path("two.h5.train")));
    Run six = cli(QStringList{"train", data_, "--out", path("six.h5"), "--max-steps", "6"} + train_);
    QVERIFY2(six.code == 0, qPrintable(six.err));
    Run resumed = cli(QStringList{"train", data_, "--out", path("two.h5"), "--max-steps", "6", "--resume"} + train_);
    QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
    QCOMPARE(lastJson(resumed.out)["steps"].toInt(), 6);
    QCOMPARE(lastJson(resumed.out)["world_size"].toInt(), 1);
    const Diff moved = weightDiff(path("init.h5"), path("six.h5")), apart = weightDiff(path("six.h5"), path("two.h5"));
    QVERIFY2(apart.mean < 1e-3 * moved.mean && apart.max < 0.05 * moved.max,
             "resumed with 1 rank differs from 6 steps in one process");
  }

  void deadRankFailsTheOther() {
    // Two ranks started as a scheduler starts them (torchrun's variables), no launcher: the
    // second is killed after the first step; the first must stop with a clear error, not hang.
    const int port = freePort();
    QProcess ranks[2];
    for (int r = 0; r < 2; ++r) {
      QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
      env.insert("RANK", QString::number(r));
      env.insert("LOCAL_RANK", QString::number(r));
      env.insert("WORLD_SIZE", "2");
      env.insert("MASTER_ADDR", "127.0.0.1");
      env.insert("MASTER_PORT", QString::number(port));
      env.insert("ATLASCOPE_DIST_TIMEOUT", "20");
      ranks[r].setProcessEnvironment(env);
      ranks[r].start(QStringLiteral(ATLASCOPE_CLI),
                     QStringList{"train", data_, "--out", path("dead.h5"), "--epochs", "1000"} + base_ +
                         QStringList{"--progress", "json", "--log-every", "1"});
    }
    QVERIFY(ranks[0].waitForStarted() && ranks[1].waitForStarted());
    QString seen;
    for (int i = 0; i < 600 && !seen.contains("\"stage\":\"training\""); ++i) {
      ranks[0].waitForReadyRead(200);
      seen += QString::fromUtf8(ranks[0].readAllStandardOutput());
    }
    QVERIFY2(seen.contains("\"stage\":\"training\""), qPrintable(seen + ranks[0].readAllStandardError()));
    ::kill(static_cast<pid_t>(ranks[1].processId()), SIGKILL);
    ranks[1].waitForFinished();
    QElapsedTimer t;
    t.start();
    QVERIFY2(ranks[0].waitForFinished(60000), "rank 0 hangs after rank 1 died");
    const QString err = QString::fromUtf8(ranks[0].readAllStandardError());
    qInfo("rank 0 stopped %.1f s after rank 1 was killed: %s", t.elapsed() / 1000.0, qPrintable(err.trimmed()));
    QVERIFY(ranks[0].exitCode() != 0);
    QVERIFY2(err.contains("rank 0 of 2") && err.contains("another rank stopped"), qPrintable(err));
  }

  void cancelStopsEveryRank() {
    // SIGTERM to the launcher (the GUI's Cancel): both ranks stop at the same step, rank 0 keeps
    // the checkpoint, the job ends as cancelled.
    QProcess p;
    p.start(QStringLiteral(ATLASCOPE_CLI),
            QStringList{"train", data_, "--out", path("cancel.h5"), "--epochs", "1000", "--ranks", "2"} + base_ +
                QStringList{"--progress", "json", "--log-every", "1"});
    QString seen;
    for (int i = 0; i < 600 && !seen.contains("\"stage\":\"training\""); ++i) {
      p.waitForReadyRead(200);
      seen += QString::fromUtf8(p.readAllStandardOutput());
    }
    QVERIFY2(seen.contains("\"stage\":\"training\""), qPrintable(seen + p.readAllStandardError()));
    // The first line says how many ranks (and GPUs) the job runs on, for the job panel.
    const QJsonObject first = QJsonDocument::fromJson(seen.trimmed().split('\n').first().toUtf8()).object();
    QCOMPARE(first["stage"].toString(), QString("starting"));
    QCOMPARE(first["ranks"].toInt(), 2);
    QCOMPARE(first["gpus"].toInt(), 0);
    p.terminate();
    QVERIFY2(p.waitForFinished(60000), "the ranks did not stop");
    seen += QString::fromUtf8(p.readAllStandardOutput());
    QCOMPARE(p.exitCode(), 130);
    QVERIFY2(lastJson(seen)["result"].toString() == "cancelled", qPrintable(seen));
    QVERIFY(QFileInfo::exists(path("cancel.h5")) && QFileInfo::exists(path("cancel.h5.train")));
  }

  void shardedEmbeddingEqualsOne() {
    QVERIFY(QFileInfo::exists(path("one.h5")));
    const QStringList common{"--weights", path("one.h5"), "--device", "cpu", "--chunk-cells", "100"};
    Run one = cli(QStringList{"embed", data_, "--out", path("emb1.h5"), "--progress", "none"} + common);
    QVERIFY2(one.code == 0, qPrintable(one.err));
    Run two = cli(QStringList{"embed", data_, "--out", path("emb2.h5"), "--gpus", "2", "--progress", "json"} + common);
    QVERIFY2(two.code == 0, qPrintable(two.out + two.err));
    QCOMPARE(lastJson(two.out)["world_size"].toInt(), 2);
    QVERIFY(!QFileInfo::exists(path("emb2.h5.parts")));
    atlascope::Hdf5File a(path("emb1.h5").toStdString()), b(path("emb2.h5").toStdString());
    const auto x = a.readFloat("/embedding"), y = b.readFloat("/embedding");
    QCOMPARE(x.shape, y.shape);
    double worst = 0;
    for (std::size_t i = 0; i < x.data.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(x.data[i] - y.data[i])));
    QVERIFY2(worst < 1e-5, qPrintable(QString("largest difference %1").arg(worst)));
    QCOMPARE(a.readInt64("/file_row").data, b.readInt64("/file_row").data);
  }
};

QTEST_GUILESS_MAIN(TestCliRanks)
#include "test_cli_ranks.moc"
