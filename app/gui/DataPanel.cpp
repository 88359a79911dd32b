#include "app/gui/DataPanel.h"

#include "app/scene/Engine.h"

#include <QHBoxLayout>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace atlascope::app {

namespace {
constexpr int kIdRole = Qt::UserRole + 1;
}

DataPanel::DataPanel(Engine& engine, QWidget* parent) : QWidget(parent), engine_(engine) {
  list_ = new QListWidget(this);
  list_->setObjectName("datasetList");
  list_->setToolTip(
      tr("Open datasets: the check box shows or hides one, a double click renames it; the selected one is what the "
         "Cells, Discover regions and Train docks act on"));
  close_ = new QPushButton(tr("Close"), this);
  close_->setObjectName("closeDataset");
  auto* buttons = new QHBoxLayout;
  buttons->addStretch(1);
  buttons->addWidget(close_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(list_, 1);
  layout->addLayout(buttons);

  Workspace& ws = engine_.workspace();
  connect(close_, &QPushButton::clicked, this, [&ws] {
    if (ws.currentDataset() >= 0) ws.closeDataset(ws.currentDataset());
  });
  connect(list_, &QListWidget::currentItemChanged, this, [this, &ws](QListWidgetItem* item) {
    if (!updating_ && item) ws.setCurrentDataset(item->data(kIdRole).toInt());
  });
  connect(list_, &QListWidget::itemChanged, this, [this, &ws](QListWidgetItem* item) {
    if (updating_) return;
    const DatasetId id = item->data(kIdRole).toInt();
    const DatasetDocument* d = ws.dataset(id);
    if (!d) return;
    const bool visible = item->checkState() == Qt::Checked;
    if (visible != d->display.visible) ws.setDatasetVisible(id, visible);
    const QString name = item->text().section(QStringLiteral("  ("), 0, 0).trimmed();
    if (!name.isEmpty() && name != d->name) ws.setDatasetName(id, name);
  });
  connect(list_, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) {
    // Edit the name alone, not the count shown after it.
    const bool was = updating_;
    updating_ = true;
    item->setText(item->text().section(QStringLiteral("  ("), 0, 0));
    updating_ = was;
    list_->editItem(item);
  });
  for (auto signal : {&Workspace::datasetAdded, &Workspace::datasetLoaded, &Workspace::datasetRemoved,
                      &Workspace::datasetChanged, &Workspace::currentDatasetChanged})
    connect(&ws, signal, this, &DataPanel::refresh);
  refresh();
}

void DataPanel::refresh() {
  updating_ = true;
  const Workspace& ws = engine_.workspace();
  list_->clear();
  for (DatasetId id : ws.datasetIds()) {
    const DatasetDocument* d = ws.dataset(id);
    const QString count = d->cells ? tr("%L1 cells").arg(d->cells->size()) : tr("reading…");
    auto* item = new QListWidgetItem(QStringLiteral("%1  (%2)").arg(d->name, count), list_);
    item->setData(kIdRole, id);
    item->setToolTip(d->path);
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable | Qt::ItemIsEditable);
    item->setCheckState(d->display.visible ? Qt::Checked : Qt::Unchecked);
    if (id == ws.currentDataset()) list_->setCurrentItem(item);
  }
  close_->setEnabled(ws.currentDataset() >= 0);
  updating_ = false;
}

} // namespace atlascope::app
