#include "app/gui/OpenAtlasDialog.h"

#include "core/AtlasCatalog.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace atlascope::app {

OpenAtlasDialog::OpenAtlasDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Open atlas"));
  setObjectName("openAtlasDialog");
  auto* layout = new QVBoxLayout(this);
  folder_ = new QLabel;
  folder_->setObjectName("brainGlobeFolder");
  folder_->setWordWrap(true);
  layout->addWidget(folder_);
  list_ = new QListWidget;
  list_->setObjectName("cachedAtlases");
  layout->addWidget(list_);
  const BrainGlobeFolder bg = brainGlobeFolder();
  folder_->setText(tr("BrainGlobe atlases in %1 (found by %2):")
                       .arg(QString::fromStdString(bg.path), QString::fromStdString(bg.foundBy)));
  if (!brainGlobeSupported())
    folder_->setText(tr("This build reads no BrainGlobe atlases (libtiff, c-blosc or zstd were missing)."));
  for (const CachedAtlas& a : brainGlobeSupported() ? listCachedAtlases() : std::vector<CachedAtlas>{}) {
    auto* item = new QListWidgetItem(
        QString("%1  (v%2, %3)")
            .arg(QString::fromStdString(a.name), QString::fromStdString(a.version), QString::fromStdString(a.format)));
    item->setData(Qt::UserRole, QString::fromStdString(a.path));
    item->setToolTip(QString::fromStdString(a.problem.empty() ? a.path : a.problem));
    if (!a.problem.empty()) {
      item->setFlags(item->flags() & ~Qt::ItemIsEnabled); // listed with its problem, not opened
      item->setText(item->text() + " — " + QString::fromStdString(a.problem));
    }
    list_->addItem(item);
  }
  if (list_->count() == 0)
    list_->addItem(tr("(none: `brainglobe install -a NAME` downloads one, or choose a folder below)"));
  auto* browse = new QHBoxLayout;
  auto* folder = new QPushButton(tr("Atlas folder (v1)…"));
  auto* manifest = new QPushButton(tr("Manifest (v3)…"));
  browse->addWidget(folder);
  browse->addWidget(manifest);
  layout->addLayout(browse);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Open | QDialogButtonBox::Cancel);
  layout->addWidget(buttons);
  connect(folder, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("BrainGlobe atlas folder"));
    if (dir.isEmpty()) return;
    chosen_ = dir;
    QDialog::accept();
  });
  connect(manifest, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("BrainGlobe 3.x manifest"), {}, "manifest.json");
    if (f.isEmpty()) return;
    chosen_ = f;
    QDialog::accept();
  });
  auto choose = [this] {
    QListWidgetItem* item = list_->currentItem();
    if (!item || !(item->flags() & Qt::ItemIsEnabled) || item->data(Qt::UserRole).toString().isEmpty()) return;
    chosen_ = item->data(Qt::UserRole).toString();
    QDialog::accept();
  };
  connect(buttons, &QDialogButtonBox::accepted, this, choose);
  connect(list_, &QListWidget::itemDoubleClicked, this, choose);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
}

int OpenAtlasDialog::listed() const {
  int n = 0;
  for (int i = 0; i < list_->count(); ++i) n += !list_->item(i)->data(Qt::UserRole).toString().isEmpty();
  return n;
}

} // namespace atlascope::app
