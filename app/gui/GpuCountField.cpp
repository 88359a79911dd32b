#include "app/gui/GpuCountField.h"

#include "app/gui/JobLocation.h"

#include <QFormLayout>

namespace atlascope::app {

GpuCountField::GpuCountField(QFormLayout* form) : form_(form) {
  setObjectName("gpusBox");
  setToolTip(tr("Ranks of the job, one per GPU of the worker (data-parallel training, sharded embedding)"));
  form_->addRow(tr("GPUs"), this);
  refresh();
}

void GpuCountField::refresh() {
  const int gpus = JobLocation::current().gpus;
  setRange(1, std::max(1, gpus));
  if (gpus > 1 && !shown_) setValue(gpus); // every GPU there, unless the user chooses fewer
  if (value() > gpus) setValue(std::max(1, gpus));
  shown_ = gpus > 1;
  form_->setRowVisible(this, shown_);
}

QStringList GpuCountField::arguments(const QString& device) const {
  if (!shown_ || value() <= 1 || device == QLatin1String("cpu")) return {};
  return {"--gpus", QString::number(value())};
}

} // namespace atlascope::app
