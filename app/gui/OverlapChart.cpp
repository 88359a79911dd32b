#include "app/gui/OverlapChart.h"

#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSet>
#include <QtCharts/QHorizontalBarSeries>
#include <QtCharts/QValueAxis>

namespace atlascope::app {

QChart* makeOverlapChart(const QString& title) {
  auto* chart = new QChart;
  chart->setTitle(title);
  chart->legend()->hide();
  return chart;
}

void clearOverlapBars(QChart* chart) {
  chart->removeAllSeries();
  for (QAbstractAxis* axis : chart->axes()) {
    chart->removeAxis(axis);
    delete axis; // removeAxis hands the axis back to the caller
  }
}

void setOverlapBars(QChart* chart, const QString& seriesName, const QStringList& labels,
                    const std::vector<double>& values, const QString& axisTitle, const QColor& colour) {
  clearOverlapBars(chart);
  auto* set = new QBarSet(seriesName);
  for (double v : values) *set << v;
  if (colour.isValid()) set->setColor(colour);
  auto* series = new QHorizontalBarSeries;
  series->append(set);
  chart->addSeries(series);
  auto* y = new QBarCategoryAxis;
  y->append(labels);
  auto* x = new QValueAxis;
  x->setRange(0, 1);
  if (!axisTitle.isEmpty()) x->setTitleText(axisTitle);
  chart->addAxis(y, Qt::AlignLeft);
  chart->addAxis(x, Qt::AlignBottom);
  series->attachAxis(y);
  series->attachAxis(x);
}

} // namespace atlascope::app
