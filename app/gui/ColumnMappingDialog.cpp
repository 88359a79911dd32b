#include "app/gui/ColumnMappingDialog.h"

#include "core/Csv.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace atlascope::app {

namespace {
const QString kNone = QObject::tr("(none)");

QComboBox* columnBox(const std::vector<std::string>& header, bool optional, const std::string& chosen,
                     QWidget* parent) {
  auto* b = new QComboBox(parent);
  if (optional) b->addItem(kNone, QStringLiteral("-")); // "-": no such column (ColumnOptions)
  for (const auto& h : header) b->addItem(QString::fromStdString(h), QString::fromStdString(h));
  const int at = b->findData(QString::fromStdString(chosen));
  b->setCurrentIndex(at >= 0 ? at : 0);
  return b;
}
} // namespace

ColumnMappingDialog::ColumnMappingDialog(const QString& path, QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Columns of %1").arg(QFileInfo(path).fileName()));
  setObjectName("columnMappingDialog");
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  try {
    CsvReader csv(path.toStdString());
    header = csv.header();
    std::vector<std::string> row;
    while (rows.size() < 5 && csv.next(row)) rows.push_back(row);
  } catch (const std::exception& e) {
    error_ = QString::fromStdString(e.what());
  }
  const ColumnOptions guess = guessCsvColumns(header);
  auto* form = new QFormLayout;
  x_ = columnBox(header, false, guess.x, this);
  x_->setObjectName(QStringLiteral("xBox"));
  y_ = columnBox(header, false, guess.y, this);
  y_->setObjectName(QStringLiteral("yBox"));
  section_ = columnBox(header, true, guess.section, this);
  section_->setObjectName(QStringLiteral("sectionBox"));
  type_ = columnBox(header, true, guess.type, this);
  type_->setObjectName(QStringLiteral("typeBox"));
  id_ = columnBox(header, true, guess.id, this);
  units_ = new QComboBox(this);
  units_->setObjectName(QStringLiteral("unitsBox"));
  units_->addItems({"um", "mm"});
  genes_ = new QLineEdit(this);
  genes_->setObjectName(QStringLiteral("genesEdit"));
  genes_->setPlaceholderText(tr("every other numeric column; or A..B, or A,B,C"));
  form->addRow(tr("x (in-section)"), x_);
  form->addRow(tr("y (in-section)"), y_);
  form->addRow(tr("Section"), section_);
  form->addRow(tr("Cell type"), type_);
  form->addRow(tr("Cell id"), id_);
  form->addRow(tr("Position unit"), units_);
  form->addRow(tr("Genes"), genes_);
  preview_ = new QTableWidget(static_cast<int>(rows.size()), static_cast<int>(header.size()), this);
  for (std::size_t c = 0; c < header.size(); ++c)
    preview_->setHorizontalHeaderItem(static_cast<int>(c), new QTableWidgetItem(QString::fromStdString(header[c])));
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t c = 0; c < rows[r].size() && c < header.size(); ++c)
      preview_->setItem(static_cast<int>(r), static_cast<int>(c),
                        new QTableWidgetItem(QString::fromStdString(rows[r][c])));
  preview_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  preview_->setMaximumHeight(170);
  problem_ = new QLabel(this);
  problem_->setStyleSheet("color: #b00020");
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  ok_ = buttons->button(QDialogButtonBox::Ok);
  ok_->setText(tr("Open"));
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("The first rows of the table:"), this));
  layout->addWidget(preview_);
  layout->addLayout(form);
  layout->addWidget(problem_);
  layout->addWidget(buttons);
  for (QComboBox* b : {x_, y_}) connect(b, &QComboBox::currentIndexChanged, this, &ColumnMappingDialog::validate);
  validate();
}

void ColumnMappingDialog::validate() {
  QString problem = error_;
  if (problem.isEmpty() && x_->count() == 0)
    problem = tr("The table has no columns");
  else if (problem.isEmpty() && x_->currentData() == y_->currentData())
    problem = tr("x and y must be different columns");
  problem_->setText(problem);
  ok_->setEnabled(problem.isEmpty());
}

ColumnOptions ColumnMappingDialog::columns() const {
  ColumnOptions c;
  c.x = x_->currentData().toString().toStdString();
  c.y = y_->currentData().toString().toStdString();
  c.section = section_->currentData().toString().toStdString();
  c.type = type_->currentData().toString().toStdString();
  c.id = id_->currentData().toString().toStdString();
  c.units = units_->currentText().toStdString();
  c.genes = genes_->text().trimmed().toStdString();
  return c;
}

} // namespace atlascope::app
