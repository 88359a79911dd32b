#include "app/gui/CellDetails.h"

#include "app/scene/Engine.h"

namespace atlascope::app {

QString cellDetails(Engine& engine, DatasetId id, std::int64_t cell) {
  const DatasetDocument* d = engine.workspace().dataset(id);
  if (!d || !d->cells || cell < 0 || cell >= d->cells->size()) return {};
  const CellTable& cells = *d->cells;
  const auto k = static_cast<std::size_t>(cell);
  QString html = QObject::tr("<b>%1</b> cell, row %2").arg(d->name.toHtmlEscaped()).arg(cells.fileRow[k]);
  if (cells.cellType[k] >= 0)
    html += QObject::tr("<br><b>type</b> %1")
                .arg(QString::fromStdString(cells.types.names[static_cast<std::size_t>(cells.cellType[k])]));
  html += QObject::tr("<br><b>section</b> %1")
              .arg(QString::fromStdString(cells.sectionNames[static_cast<std::size_t>(cells.section[k])]));
  if (cells.hasCcf() && engine.atlas()) {
    const auto s = engine.atlas()->structureAtUm(cells.ccfAp[k], cells.ccfDv[k], cells.ccfMl[k]);
    html += QObject::tr("<br><b>CCF</b> %1")
                .arg(s ? QString::fromStdString(engine.atlas()->structures()[*s].acronym + " (" +
                                                engine.atlas()->structures()[*s].name + ")")
                       : QObject::tr("outside the brain"));
  }
  if (const CellColouring* c = engine.data().colouring(id); c && c->cells == d->cells.get()) {
    if (!c->categorical && k < c->values.size())
      html += QObject::tr("<br><b>%1</b> %2").arg(c->gene).arg(c->values[k]);
    else if (c->categorical && k < c->codes.size() && c->codes[k] >= 0 && c->colourBy != "type" &&
             c->colourBy != "section")
      html +=
          QObject::tr("<br><b>%1</b> %2")
              .arg(c->colourBy, QString::fromStdString(displayNames(*d, *c)[static_cast<std::size_t>(c->codes[k])]));
  }
  return html;
}

} // namespace atlascope::app
