#pragma once
// --bench-startup: what a start costs the user, in seconds since the process started (so that
// loading the libraries counts): the window's first frame, the atlas in memory, the first frame
// with its surfaces, the first frame with the datasets' cells, and everything settled. One JSON
// line per milestone on stdout ({"figure":"startup","milestone":...,"s":...}); peak memory comes
// from `/usr/bin/time` around the same command.
#include <QElapsedTimer>
#include <QObject>
#include <QString>

#include <map>

class vtkObject;

namespace atlascope::app {

class MainWindow;

class StartupBench : public QObject {
  Q_OBJECT
public:
  explicit StartupBench(MainWindow& window);
  // The last milestone ("settled"); prints it. Returns false when a milestone was never reached.
  bool finish();

private:
  static void onFrame(vtkObject*, unsigned long, void* self, void*);
  void mark(const QString& milestone);
  MainWindow& window_;
  QElapsedTimer clock_;
  double offsetS_ = 0; // process age when the clock started
  std::map<QString, double> seen_;
};

} // namespace atlascope::app
