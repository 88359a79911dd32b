#pragma once
// One job at a time in a window: the training and region panels start their workers through the
// queue, and a job asked for while another runs waits in line and starts when that one ends (train,
// then discover regions with the model just trained: the region step's command is built when it
// starts, after the trained model was handed over). Cancelling a waiting job takes it out of line.
#include <QObject>
#include <QString>

#include <deque>
#include <functional>

namespace atlascope::app {

class JobQueue : public QObject {
  Q_OBJECT
public:
  explicit JobQueue(QObject* parent = nullptr) : QObject(parent) {}

  // Runs `start` now when nothing runs (true), or queues it for `owner` (false).
  bool submit(QObject* owner, const QString& label, std::function<void()> start);
  // `owner`'s running job ended (done, failed or cancelled): the next in line starts (from the
  // event loop, once the caller's handlers have run).
  void ended(QObject* owner);
  // Takes `owner`'s waiting job out of line; false when it has none waiting.
  bool remove(QObject* owner);
  bool isWaiting(const QObject* owner) const;
  bool isBusy() const { return running_ != nullptr; }
  QString runningLabel() const { return runningLabel_; }
  int waiting() const { return static_cast<int>(line_.size()); }

Q_SIGNALS:
  void changed();

private:
  struct Entry {
    QObject* owner;
    QString label;
    std::function<void()> start;
  };
  void startNext();
  QObject* running_ = nullptr;
  QString runningLabel_;
  std::deque<Entry> line_;
};

} // namespace atlascope::app
