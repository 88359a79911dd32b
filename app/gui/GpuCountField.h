#pragma once
// "GPUs: N" in a job panel: shown when the worker where jobs run reported more than one GPU
// (Preferences > Test), so that a job can run as N ranks there (`--gpus N`, one per GPU).
#include <QSpinBox>
#include <QStringList>

class QFormLayout;

namespace atlascope::app {

class GpuCountField : public QSpinBox {
  Q_OBJECT
public:
  // Adds itself to `form` as the "GPUs" row.
  explicit GpuCountField(QFormLayout* form);
  // Reads the preferences again: the row shows for a worker with several GPUs, up to their count.
  void refresh();
  // {"--gpus", "N"} for N > 1 on a GPU device ("cpu": one process, the field does not apply).
  QStringList arguments(const QString& device) const;

private:
  QFormLayout* form_;
  bool shown_ = false;
};

} // namespace atlascope::app
