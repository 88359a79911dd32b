#pragma once
// How responsive the window is: the GUI thread's event loop is asked to turn every kTickMs (a
// precise timer); each tick that arrives late measures a stall, the time the loop could not
// react to the user (a click, a repaint). Everything is kept per phase (what the run was doing:
// "open", "gene", "region job"...), and the event being delivered when the longest stall began
// (receiver class, object name, event type) says where it happened, at the cost of one clock read
// per event.
//
// Frames are told apart from other work: watchRenderWindow() times every VTK render, and each
// stall is also kept without the frames drawn in it ("work"). A frame must be drawn on this
// thread (its OpenGL context); the work around it can move off it.
//
// Always on in debug builds of atlascope (each stall over kReportMs on stderr as it happens) and
// with --bench-stalls; the summary is one JSON line (json()).
#include <QByteArray>
#include <QElapsedTimer>
#include <QJsonObject>
#include <QObject>
#include <QString>
#include <QTimer>

#include <array>
#include <map>
#include <vector>

class vtkObject;
class vtkRenderWindow;

namespace atlascope::app {

class StallDetector : public QObject {
  Q_OBJECT
public:
  static constexpr int kTickMs = 5;
  static constexpr double kReportMs = 100; // the aim: no stall over this

  explicit StallDetector(QObject* parent = nullptr);
  ~StallDetector() override;

  void setPhase(const QString& phase); // what the run does from now on
  void setReportLive(bool on) { reportLive_ = on; }
  void watchRenderWindow(vtkRenderWindow* window); // its renders count as frames, not work

  struct Stats {
    std::int64_t ticks = 0;
    double longestMs = 0, p99Ms = 0, stalledMs = 0; // stalledMs: the time in stalls over kReportMs
    int over = 0;                                   // stalls over kReportMs
    double longestAtS = 0;                          // seconds since the detector started
    QString longestDuring;                          // the event being delivered then
    // The same without the frames drawn during the stalls: the work that could move.
    double longestWorkMs = 0, p99WorkMs = 0;
    int overWork = 0;
    QString longestWorkDuring;
    int frames = 0;
    double frameMs = 0; // the longest frame
  };
  Stats total() const;
  Stats phase(const QString& name) const;
  // {"figure":"stalls","tick_ms":5,"seconds":..,"ticks":..,"longest_ms":..,"p99_ms":..,"over_100ms":..,
  //  "longest_at_s":..,"longest_phase":..,"longest_during":..,"phases":{"open":{...},...}}
  QByteArray json() const;
  // A figure of the run to go with the stalls in json() (e.g. the time of one frame).
  void addFigure(const QString& key, double value) { extra_[key] = value; }

protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

private:
  void tick();
  struct Phase {
    std::vector<float> latencies, work; // ms, one per tick; work: without the frames
    Stats stats;
  };
  static Stats summarise(const Phase& p);

  QTimer timer_;
  QElapsedTimer clock_;
  qint64 lastTickNs_ = 0;
  QString phase_ = "start";
  std::vector<QString> order_; // phases in the order they began
  std::map<QString, Phase> phases_;
  bool reportLive_ = false;
  QJsonObject extra_;
  // The last events delivered (when each began, what it was), to name a stall's cause.
  struct Delivery {
    qint64 ns = 0;
    const char* className = nullptr; // static (moc data): safe after the receiver is gone
    QString objectName;
    int type = 0;
  };
  std::array<Delivery, 512> recent_{};
  std::size_t next_ = 0;
  QString describeStall(qint64 fromNs, qint64 toNs) const;
  static void onRender(vtkObject* caller, unsigned long event, void* self, void*);
  qint64 renderStartNs_ = 0, renderNs_ = 0; // renderNs_: frames since the last tick
};

} // namespace atlascope::app
