#pragma once
// Figure mode: every view of the layout (composed as on screen), the 2D section when a section is
// set and the current dataset has cells, the legend of its colouring (with the regions' names)
// and a title, as one image of exactly `size` pixels; PNG, SVG or PDF by the extension (the section
// and the legend stay vector in SVG/PDF). Atomic; false when it cannot be written.
#include <QSize>
#include <QString>

namespace atlascope::app {

class Engine;
class SectionView;

bool writeFigure(const QString& path, QSize size, Engine& engine, const SectionView& section);

} // namespace atlascope::app
