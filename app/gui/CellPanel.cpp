#include "app/gui/CellPanel.h"
#include "app/gui/PdfExport.h"

#include <QComboBox>
#include <QFileDialog>
#include <QPushButton>
#include <QCompleter>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QSignalBlocker>
#include <QPixmap>
#include <QSlider>
#include <QStringListModel>
#include <QVBoxLayout>

namespace atlascope::app {

CellPanel::CellPanel(QWidget* parent) : QWidget(parent) {
  summary_ = new QLabel(tr("No dataset open (File > Open dataset, or drop a file on the window)"), this);
  summary_->setWordWrap(true);
  colourBy_ = new QComboBox(this);
  colourBy_->setObjectName("cellColourBy");
  colourBy_->addItems({tr("Cell type"), tr("Section"), tr("Gene")});
  gene_ = new QLineEdit(this);
  gene_->setObjectName("cellGene");
  gene_->setPlaceholderText(tr("Gene name"));
  gene_->setEnabled(false);
  pointSize_ = new QSlider(Qt::Horizontal, this);
  pointSize_->setObjectName("cellPointSize");
  pointSize_->setRange(1, 12);
  pointSize_->setValue(3);
  legend_ = new QListWidget(this);
  legend_->setObjectName("cellLegend");
  legend_->setIconSize(QSize(12, 12));
  cellInfo_ = new QLabel(this);
  cellInfo_->setObjectName("cellInfo");
  cellInfo_->setWordWrap(true);
  cellInfo_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* form = new QFormLayout;
  form->addRow(tr("Colour by"), colourBy_);
  form->addRow(tr("Gene"), gene_);
  form->addRow(tr("Point size"), pointSize_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(summary_);
  layout->addLayout(form);
  layout->addWidget(legend_, 1);
  auto* exportLegend = new QPushButton(tr("Export legend (PDF)…"), this);
  exportLegend->setObjectName("exportLegend");
  connect(exportLegend, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export the legend"), {}, tr("PDF (*.pdf)"));
    if (!path.isEmpty()) writeWidgetPdf(legend_, path);
  });
  layout->addWidget(exportLegend);
  connect(legend_, &QListWidget::itemChanged, this, [this] {
    std::vector<bool> shown(legendCategories_, true);
    for (int i = 0; i < legend_->count() && static_cast<std::size_t>(i) < shown.size(); ++i)
      shown[static_cast<std::size_t>(i)] = legend_->item(i)->checkState() == Qt::Checked;
    emit categoriesShown(shown);
  });
  layout->addWidget(cellInfo_);
  setEnabled(false);

  connect(colourBy_, &QComboBox::currentIndexChanged, this, [this](int i) {
    gene_->setEnabled(i == 2);
    if (i == 0) emit colourByCategory("type");
    else if (i == 1) emit colourByCategory("section");
    else if (i == 2) { if (!gene_->text().isEmpty()) emit colourByGene(gene_->text()); }
    else if (i > 2) emit colourByCategory("obs:" + colourBy_->itemData(i).toString());
  });
  connect(gene_, &QLineEdit::returnPressed, this, [this] {
    if (colourBy_->currentIndex() == 2 && !gene_->text().isEmpty()) emit colourByGene(gene_->text().trimmed());
  });
  connect(pointSize_, &QSlider::valueChanged, this, [this](int v) { emit pointSizeChanged(v); });
}

void CellPanel::setDataset(const CellTable* cells, const std::vector<std::string>& obsColumns) {
  cells_ = cells;
  while (colourBy_->count() > 3) colourBy_->removeItem(3);
  for (const auto& c : obsColumns) colourBy_->addItem(QString::fromStdString(c), QString::fromStdString(c));
  setEnabled(cells != nullptr);
  if (!cells) {
    summary_->setText(tr("No dataset open"));
    return;
  }
  summary_->setText(tr("%1 cells, %2 genes, %3 sections, %4 cell types%5")
                        .arg(cells->size())
                        .arg(cells->genes.size())
                        .arg(cells->sectionNames.size())
                        .arg(cells->types.names.size())
                        .arg(cells->hasCcf() ? tr(", in CCF coordinates") : tr(", laid out by section (no CCF coordinates)")));
  QStringList genes;
  for (const auto& g : cells->genes) genes << QString::fromStdString(g);
  auto* completer = new QCompleter(genes, gene_);
  completer->setCaseSensitivity(Qt::CaseInsensitive);
  completer->setFilterMode(Qt::MatchContains);
  gene_->setCompleter(completer);
}

void CellPanel::setLegend(const std::vector<std::string>& names, const std::vector<std::array<std::uint8_t, 3>>& colours) {
  QSignalBlocker block(legend_);
  legend_->clear();
  legendCategories_ = names.size();
  // A legend past a few hundred entries helps nobody: the first 500, then a count.
  const std::size_t shown = std::min<std::size_t>(names.size(), 500);
  for (std::size_t i = 0; i < shown; ++i) {
    QPixmap pm(12, 12);
    pm.fill(QColor(colours[i][0], colours[i][1], colours[i][2]));
    auto* item = new QListWidgetItem(QIcon(pm), QString::fromStdString(names[i]));
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(Qt::Checked);
    item->setToolTip(tr("Uncheck to hide these cells"));
    legend_->addItem(item);
  }
  if (names.size() > shown) legend_->addItem(tr("… and %1 more").arg(names.size() - shown));
}

void CellPanel::setCellInfo(const QString& html) { cellInfo_->setText(html); }

} // namespace atlascope::app
