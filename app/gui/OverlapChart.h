#pragma once
// The horizontal bar chart the comparison panels share (regions vs CCF, regions across datasets,
// atlas against atlas): one bar per structure or region, its overlap (a share or a Jaccard, 0..1)
// on a fixed 0..1 axis so that two charts read alike, categories listed bottom to top in the
// order given.
#include <QColor>
#include <QString>
#include <QStringList>
#include <QtCharts/QChart>

#include <vector>

namespace atlascope::app {

// A chart without a legend (one series: the axis title says what the bars measure).
QChart* makeOverlapChart(const QString& title);

// Replaces the chart's bars. `labels` name the categories (unique: the category axis merges equal
// names); `values` the bars, in the same order, the first drawn at the bottom. An invalid
// `colour` leaves the theme's.
void setOverlapBars(QChart* chart, const QString& seriesName, const QStringList& labels,
                    const std::vector<double>& values, const QString& axisTitle = {}, const QColor& colour = {});
// No bars, no axes.
void clearOverlapBars(QChart* chart);

} // namespace atlascope::app
