#include "app/gui/StartupBench.h"

#include "app/gui/MainWindow.h"
#include "app/scene/SceneController.h"
#include "viewer/CellCloud.h"

#include <vtkCallbackCommand.h>
#include <vtkRenderWindow.h>
#include <vtkSmartPointer.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace atlascope::app {

namespace {

// The process's age in seconds, from /proc (its start in clock ticks since boot, and the uptime).
double processAgeS() {
  std::ifstream stat("/proc/self/stat"), up("/proc/uptime");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')'); // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 2));
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; ++i) {}
  double uptime = 0;
  up >> uptime;
  const double started = std::stod(f.empty() ? "0" : f) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return uptime > started ? uptime - started : 0;
}

} // namespace

StartupBench::StartupBench(MainWindow& window) : QObject(&window), window_(window) {
  offsetS_ = processAgeS();
  clock_.start();
  auto cb = vtkSmartPointer<vtkCallbackCommand>::New();
  cb->SetCallback(&StartupBench::onFrame);
  cb->SetClientData(this);
  window.renderWindow()->AddObserver(vtkCommand::EndEvent, cb);
  connect(&window.engine(), &Engine::atlasLoaded, this, [this] { mark("atlas_loaded"); });
}

void StartupBench::mark(const QString& milestone) {
  if (seen_.count(milestone)) return;
  const double s = offsetS_ + static_cast<double>(clock_.nsecsElapsed()) / 1e9;
  seen_[milestone] = s;
  std::printf("{\"figure\":\"startup\",\"milestone\":\"%s\",\"s\":%.3f}\n", qPrintable(milestone), s);
  std::fflush(stdout);
}

void StartupBench::onFrame(vtkObject*, unsigned long, void* self, void*) {
  auto* b = static_cast<StartupBench*>(self);
  b->mark("first_frame");
  SceneController* scene = b->window_.scene();
  if (scene && b->window_.atlas() && scene->atlasScene().hasSurface(b->window_.atlas()->structures().root()))
    b->mark("surfaces_frame");
  if (const viewer::CellCloud* cloud = b->window_.cellCloud(); cloud && cloud->visibleCount() > 0)
    b->mark("cells_frame");
}

bool StartupBench::finish() {
  mark("settled");
  return seen_.count("first_frame") > 0;
}

} // namespace atlascope::app
