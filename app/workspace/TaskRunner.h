#pragma once
// One runner for the window's background work (reading datasets and columns, building surfaces,
// matching regions): each task runs on Qt's thread pool with a cancellation token, counts as busy
// while it runs, and hands its result to the GUI thread only while it is still current. A task
// belongs to a channel ("colour:3", "load:3"): starting another on the same channel, or
// invalidating the channel (its dataset closed), cancels it and makes its result stale, so a slow
// read can never be applied to data that replaced what it was read for. Errors reach failed() with
// what was being done; none is swallowed.
#include "core/Progress.h"

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QtConcurrent/QtConcurrent>

#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace atlascope::app {

class TaskRunner : public QObject {
  Q_OBJECT
public:
  explicit TaskRunner(QObject* parent = nullptr) : QObject(parent) {}
  ~TaskRunner() override { waitForAll(); }

  // Runs `work` off the GUI thread; `done` gets its result on the GUI thread unless the task was
  // superseded or cancelled meanwhile. An exception from `work` becomes failed(what, message)
  // (Cancelled ones are silent).
  template <class R>
  void run(const QString& channel, const QString& what, std::function<R(const CancellationToken&)> work,
           std::function<void(R)> done) {
    auto token = std::make_shared<CancellationToken>();
    const quint64 stamp = begin(channel, token);
    struct Outcome {
      std::optional<R> value;
      QString error;
    };
    auto* watcher = new QFutureWatcher<Outcome>(this);
    connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher, channel, stamp, what, done] {
      watcher->deleteLater();
      Outcome o = watcher->result();
      const bool current = finish(channel, stamp);
      if (!current) return;
      if (!o.error.isEmpty())
        emit failed(what, o.error);
      else if (o.value)
        done(std::move(*o.value));
    });
    auto future = QtConcurrent::run([work, token]() -> Outcome {
      try {
        return {work(*token), {}};
      } catch (const Cancelled&) {
        return {std::nullopt, {}};
      } catch (const std::exception& e) {
        return {std::nullopt, QString::fromUtf8(e.what())};
      }
    });
    futures_.push_back(QFuture<void>(future));
    watcher->setFuture(future);
  }

  // Cancels the channel's task and drops its result.
  void invalidate(const QString& channel);
  // The same for every channel that starts with `prefix` (e.g. all of a closed dataset's).
  void invalidatePrefix(const QString& prefix);
  bool isRunning(const QString& channel) const;
  int busy() const { return busy_; }
  // Cancels everything and waits (before the data the tasks read goes away).
  void waitForAll();

signals:
  void busyChanged(int running);
  void failed(QString what, QString message);

private:
  quint64 begin(const QString& channel, std::shared_ptr<CancellationToken> token);
  bool finish(const QString& channel, quint64 stamp); // true: the result is still wanted

  struct Slot {
    quint64 wanted = 0;   // the stamp whose result is still wanted
    quint64 inFlight = 0; // the stamp of the task running now (0: none)
    std::shared_ptr<CancellationToken> token;
  };
  std::map<QString, Slot> channels_;
  quint64 nextStamp_ = 1;
  int busy_ = 0;
  QList<QFuture<void>> futures_;
};

} // namespace atlascope::app
