#pragma once
// Opening a CSV/TSV table: which columns hold the position, the section, the cell type and the
// cell id, the unit of the positions and the gene columns, with the first rows shown. Pre-filled
// with what the reader recognises by name (guessCsvColumns), so a standard table needs one click.
#include "core/CellTable.h"

#include <QDialog>

class QComboBox;
class QLabel;
class QLineEdit;
class QTableWidget;

namespace atlascope::app {

class ColumnMappingDialog : public QDialog {
  Q_OBJECT
public:
  // Reads the header and the first rows of `path`; error() says why when it cannot.
  explicit ColumnMappingDialog(const QString& path, QWidget* parent = nullptr);
  QString error() const { return error_; }
  // The mapping as the CLI's column options take it.
  ColumnOptions columns() const;

private:
  void validate();
  QString error_;
  QComboBox *x_, *y_, *section_, *type_, *id_, *units_;
  QLineEdit* genes_;
  QTableWidget* preview_;
  QLabel* problem_;
  class QPushButton* ok_ = nullptr;
};

} // namespace atlascope::app
