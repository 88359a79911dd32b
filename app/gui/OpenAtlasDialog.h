#pragma once
// File > Open atlas: the BrainGlobe atlases on this machine (the BrainGlobe folder, both layouts),
// or an atlas folder / v3 manifest.json chosen on disk. The atlas opens in a window of its own
// (`atlascope --atlas NAME_OR_PATH`): a workspace holds one atlas today (README, Known limits), and
// a second window keeps the first one's datasets and views as they are.
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

  // Starts `atlascope --atlas NAME_OR_PATH` beside this executable; false when it cannot start.
  static bool openInNewWindow(const QString& nameOrPath);

private:
  QListWidget* list_;
  QLabel* folder_;
  QString chosen_;
};

} // namespace atlascope::app
