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
  // Where the cell lies in each atlas of the workspace (those of the CCF's space place it).
  if (cells.hasCcf())
    for (AtlasId a : engine.workspace().atlasIds()) {
      const Atlas* atlas = engine.atlas(a);
      if (!atlas) continue;
      const AtlasDocument* doc = engine.workspace().atlas(a);
      const QString label =
          a == kMainAtlas && doc->name == QObject::tr("Allen CCF") ? QStringLiteral("CCF") : doc->name;
      const auto v = atlas->annotation().voxelAt(cells.ccfAp[k], cells.ccfDv[k], cells.ccfMl[k]);
      const StructureId id = v ? atlas->annotation().idAt(*v) : 0;
      const auto s = id != 0 ? atlas->structures().indexOf(id) : std::nullopt;
      const QString where =
          s    ? QString::fromStdString(atlas->structures()[*s].acronym + " (" + atlas->structures()[*s].name + ")")
          : id ? QObject::tr("outside atlas (label %1 is not in its tree)").arg(id)
               : QObject::tr("outside the brain");
      html += QObject::tr("<br><b>%1</b> %2").arg(label.toHtmlEscaped(), where.toHtmlEscaped());
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
