#include "app/gui/CellPanel.h"

#include "app/gui/PdfExport.h"
#include "app/scene/Engine.h"
#include "core/CellTypeResults.h"
#include "core/Hdf5File.h"

#include <QComboBox>
#include <QCompleter>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPixmap>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSlider>
#include <QStringListModel>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <map>

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
    if (i == 0)
      emit colourByCategory("type");
    else if (i == 1)
      emit colourByCategory("section");
    else if (i == 2) {
      if (!gene_->text().isEmpty()) emit colourByGene(gene_->text());
    } else if (i > 2)
      emit colourByCategory("obs:" + colourBy_->itemData(i).toString());
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
  summary_->setText(
      tr("%1 cells, %2 genes, %3 sections, %4 cell types%5")
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

void CellPanel::setLegend(const std::vector<std::string>& names,
                          const std::vector<std::array<std::uint8_t, 3>>& colours) {
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

namespace atlascope::app {

void CellPanel::attach(Engine& engine) {
  Workspace& ws = engine.workspace();
  auto current = [&ws] { return ws.currentDataset(); };
  connect(this, &CellPanel::colourByCategory, this, [&ws, current](const QString& what) {
    ws.setColourBy(current(), what.startsWith("obs:") ? what.mid(4) : what);
  });
  connect(this, &CellPanel::colourByGene, this,
          [&ws, current](const QString& gene) { ws.setColourBy(current(), "gene:" + gene); });
  connect(this, &CellPanel::pointSizeChanged, this, [&ws, current](double px) { ws.setPointSize(current(), px); });
  connect(this, &CellPanel::categoriesShown, this, [&ws, current](const std::vector<bool>& shown) {
    std::vector<int> hidden;
    for (std::size_t i = 0; i < shown.size(); ++i)
      if (!shown[i]) hidden.push_back(static_cast<int>(i));
    ws.setHiddenCategories(current(), hidden);
  });
  connect(&ws, &Workspace::currentDatasetChanged, this, [this, &engine] { showDataset(engine); });
  connect(&ws, &Workspace::datasetLoaded, this, [this, &engine, current](DatasetId id) {
    if (id == current()) showDataset(engine);
  });
  connect(&ws, &Workspace::datasetChanged, this, [this, &engine, current](DatasetId id) {
    if (id == current()) showDataset(engine);
  });
  connect(&engine.data(), &DatasetData::colouringReady, this, [this, &engine, current](DatasetId id) {
    if (id == current()) showColouring(engine);
  });
}

void CellPanel::showDataset(Engine& engine) {
  const DatasetDocument* d = engine.workspace().dataset(engine.workspace().currentDataset());
  const CellTable* cells = d ? d->cells.get() : nullptr;
  if (cells != cells_) {
    setDataset(cells, d ? d->obsColumns : std::vector<std::string>{});
    legendFor_.clear();
  }
  if (!d || !cells) {
    setLegend({}, {});
    return;
  }
  // The model's display in the widgets, without sending it back.
  const QSignalBlocker a(colourBy_), b(pointSize_), c(legend_);
  const QString by = d->display.colourBy;
  if (by.startsWith("gene:")) {
    colourBy_->setCurrentIndex(2);
    gene_->setText(by.mid(5));
  } else if (by == "section") {
    colourBy_->setCurrentIndex(1);
  } else if (by == "type" || by.isEmpty()) {
    colourBy_->setCurrentIndex(0);
  } else if (const int i = colourBy_->findData(by); i >= 0) {
    colourBy_->setCurrentIndex(i);
  }
  gene_->setEnabled(colourBy_->currentIndex() == 2);
  pointSize_->setValue(static_cast<int>(std::lround(d->display.pointSize)));
  showColouring(engine);
}

namespace {
// The marker genes a file keeps for the categories of a colouring (uns["<column>_markers"], as
// `atlascope-cli celltypes` writes them): by type name; empty when it has none. Colouring by
// "type" means the column the reader took: the one the dataset was opened with, else the first of
// the reader's names that the file has.
std::map<std::string, std::vector<std::string>> legendMarkers(const DatasetDocument& d, const QString& colourBy) {
  const QFileInfo f(d.path);
  if (!f.isFile() || f.suffix().compare("h5ad", Qt::CaseInsensitive) != 0) return {};
  try {
    std::string column = colourBy.toStdString();
    if (colourBy == "type") {
      column = d.columns.type;
      const Hdf5File file(d.path.toStdString());
      for (const char* name : {"subclass", "cell_type", "celltype", "celltype_leiden"})
        if (column.empty() && file.exists(std::string("/obs/") + name)) column = name;
    }
    return column.empty() ? std::map<std::string, std::vector<std::string>>{}
                          : readTypeMarkers(d.path.toStdString(), column);
  } catch (const std::exception&) {
    return {}; // no tooltips: the legend is there all the same
  }
}
} // namespace

void CellPanel::showColouring(Engine& engine) {
  const DatasetDocument* d = engine.workspace().dataset(engine.workspace().currentDataset());
  const CellColouring* c = d ? engine.data().colouring(d->id) : nullptr;
  if (!d || !c || c->cells != d->cells.get() || !c->categorical) {
    if (!legendFor_.isEmpty() || legendCategories_ > 0) setLegend({}, {});
    legendFor_.clear();
    return;
  }
  const auto names = displayNames(*d, *c);
  const auto colours = displayColours(*d, *c);
  const QString key = c->colourBy;
  if (legendFor_ != key || legendNames_ != names || legendColours_ != colours) {
    setLegend(names, colours);
    legendFor_ = key;
    legendNames_ = names;
    legendColours_ = colours;
    // Each type's marker genes in its tooltip, when the file has them (typed from expression).
    const auto markers = legendMarkers(*d, key);
    for (int i = 0; !markers.empty() && i < legend_->count() && static_cast<std::size_t>(i) < c->names.size(); ++i)
      if (const auto m = markers.find(c->names[static_cast<std::size_t>(i)]);
          m != markers.end() && !m->second.empty()) {
        QStringList genes;
        for (const auto& g : m->second) genes << QString::fromStdString(g);
        legend_->item(i)->setToolTip(
            tr("<b>%1</b><br>Marker genes: %2<br>Uncheck to hide these cells")
                .arg(legend_->item(i)->text().toHtmlEscaped(), genes.join(", ").toHtmlEscaped()));
      }
  }
  const QSignalBlocker block(legend_);
  for (int i = 0; i < legend_->count() && static_cast<std::size_t>(i) < legendCategories_; ++i) {
    const bool hidden = std::binary_search(d->display.hiddenCategories.begin(), d->display.hiddenCategories.end(), i);
    legend_->item(i)->setCheckState(hidden ? Qt::Unchecked : Qt::Checked);
  }
}

} // namespace atlascope::app
