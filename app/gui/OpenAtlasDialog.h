#pragma once
// File > Open atlas: the BrainGlobe atlases on this machine (the BrainGlobe folder, both layouts),
// or an atlas folder / v3 manifest.json chosen on disk. The choice opens in this workspace, beside
// the atlases already there (a tab of its own in the atlases dock, a view of its own); a window on
// another atlas alone is `atlascope --atlas NAME_OR_PATH`.
#include <QDialog>
#include <QString>

class QLabel;
class QListWidget;

namespace atlascope::app {

class OpenAtlasDialog : public QDialog {
  Q_OBJECT
public:
  explicit OpenAtlasDialog(QWidget* parent = nullptr);
  QString chosen() const { return chosen_; } // a name or a path; empty until one is chosen
  int listed() const;                        // atlases found in the BrainGlobe folder

private:
  QListWidget* list_;
  QLabel* folder_;
  QString chosen_;
};

} // namespace atlascope::app
