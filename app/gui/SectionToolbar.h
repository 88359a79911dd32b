#pragma once
// The section toolbar: an axis (none, coronal, sagittal, horizontal) and a slider across the atlas
// in 25 um steps, for a 200 um slab through every view. It shows the workspace's section and sends
// changes back to it (a dragged slider is one undoable step).
#include <QToolBar>

class QComboBox;
class QLabel;
class QSlider;

namespace atlascope::app {

class Engine;

class SectionToolbar : public QToolBar {
  Q_OBJECT
public:
  SectionToolbar(Engine& engine, QWidget* parent = nullptr);

private:
  void showSection();
  Engine& engine_;
  QComboBox* axis_;
  QSlider* slider_;
  QLabel* label_;
};

} // namespace atlascope::app
