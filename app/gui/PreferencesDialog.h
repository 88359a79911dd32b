#pragma once
// Edit > Preferences: where jobs run (JobLocation.h). "Test" asks the worker there what it runs on
// (`atlascope-cli device --json`: host, LibTorch, CUDA, GPUs) without closing the dialog; the GPU
// count it reports is kept, so the job panels offer "GPUs: N" for a worker with several.
#include "app/gui/JobLocation.h"

#include <QDialog>
#include <QProcess>

class QButtonGroup;
class QCheckBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace atlascope::app {

class PreferencesDialog : public QDialog {
  Q_OBJECT
public:
  explicit PreferencesDialog(QWidget* parent = nullptr);

  JobLocation location() const; // as the form says now
  void setLocation(const JobLocation& location);
  void test(); // runs the test command; the result shows in the dialog
  QString testResult() const;
  bool isTesting() const { return probe_.state() != QProcess::NotRunning; }
  void accept() override; // saves to QSettings

signals:
  void tested(bool ok);

private:
  void updateEnabled();
  QButtonGroup* kind_;
  QLineEdit *cudaProgram_, *host_, *remoteProgram_, *sshConfig_, *jobFolder_;
  QCheckBox* alwaysCopy_;
  QPushButton* test_;
  QLabel *result_, *overrides_;
  QProcess probe_;
  int gpus_ = 0;
};

} // namespace atlascope::app
