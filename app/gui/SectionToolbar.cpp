#include "app/gui/SectionToolbar.h"

#include "app/scene/Engine.h"

#include <QComboBox>
#include <QLabel>
#include <QSignalBlocker>
#include <QSlider>

#include <cmath>

namespace atlascope::app {

namespace {
const QStringList kAxes{"none", "coronal", "sagittal", "horizontal"};
constexpr double kStepUm = 25.0;
} // namespace

SectionToolbar::SectionToolbar(Engine& engine, QWidget* parent) : QToolBar(tr("Section"), parent), engine_(engine) {
  setObjectName("sectionToolbar");
  axis_ = new QComboBox(this);
  axis_->setObjectName("sectionAxis");
  axis_->addItems({tr("No section"), tr("Coronal"), tr("Sagittal"), tr("Horizontal")});
  slider_ = new QSlider(Qt::Horizontal, this);
  slider_->setObjectName("sectionSlider");
  slider_->setMinimumWidth(220);
  slider_->setEnabled(false);
  label_ = new QLabel(this);
  addWidget(axis_);
  addWidget(slider_);
  addWidget(label_);
  auto send = [this] {
    SectionState s = engine_.workspace().section();
    s.axis = kAxes.value(axis_->currentIndex(), "none");
    s.position = slider_->value() * kStepUm;
    engine_.workspace().setSection(s);
  };
  connect(axis_, &QComboBox::currentIndexChanged, this, send);
  connect(slider_, &QSlider::valueChanged, this, send);
  connect(&engine_.workspace(), &Workspace::sectionChanged, this, &SectionToolbar::showSection);
  connect(&engine_, &Engine::atlasLoaded, this, &SectionToolbar::showSection);
}

void SectionToolbar::showSection() {
  const SectionState& s = engine_.workspace().section();
  const int axis = std::max(0, static_cast<int>(kAxes.indexOf(s.axis)));
  const QSignalBlocker a(axis_), b(slider_);
  axis_->setCurrentIndex(axis);
  slider_->setEnabled(axis > 0 && engine_.atlas());
  if (axis > 0 && engine_.atlas()) {
    // The slider spans the atlas along the axis the section cuts across (AP, ML or DV).
    const int dim = axis == 1 ? 0 : axis == 2 ? 2 : 1;
    const auto& v = engine_.atlas()->annotation();
    slider_->setRange(0, static_cast<int>(v.size()[static_cast<std::size_t>(dim)] *
                                          v.spacingUm()[static_cast<std::size_t>(dim)] / kStepUm));
    slider_->setValue(static_cast<int>(std::lround(s.position / kStepUm)));
  }
  label_->setText(axis > 0 ? tr("%1 %2 um").arg(s.axis, QString::number(s.position, 'f', 0)) : QString());
}

} // namespace atlascope::app
