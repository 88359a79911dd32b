#include "app/gui/RegionTreePanel.h"

#include "app/scene/Engine.h"

#include <QColorDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QPixmap>
#include <QPushButton>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTreeView>
#include <QVBoxLayout>

namespace atlascope::app {

namespace {
constexpr int kIndexRole = Qt::UserRole + 1;
constexpr int kSearchRole = Qt::UserRole + 2;

QIcon swatch(const QColor& c) {
  QPixmap pm(12, 12);
  pm.fill(c);
  QPainter p(&pm);
  p.setPen(QColor(90, 90, 90));
  p.drawRect(0, 0, 11, 11);
  return QIcon(pm);
}

// Keeps rows whose acronym or name contains the text; parents of hits stay (recursive filtering).
class StructureFilter : public QSortFilterProxyModel {
public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void setText(const QString& t) {
    text_ = t.trimmed().toLower();
    invalidateFilter();
  }

protected:
  bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
    if (text_.isEmpty()) return true;
    const QModelIndex i = sourceModel()->index(row, 0, parent);
    return i.data(kSearchRole).toString().contains(text_);
  }

private:
  QString text_;
};
} // namespace

RegionTreePanel::RegionTreePanel(QWidget* parent) : QWidget(parent) {
  search_ = new QLineEdit(this);
  search_->setPlaceholderText(tr("Search acronym or name (e.g. CA1, thalamus)"));
  search_->setClearButtonEnabled(true);
  search_->setObjectName("regionSearch");

  model_ = new QStandardItemModel(this);
  model_->setHorizontalHeaderLabels({tr("Structure"), tr("Name")});
  auto* filter = new StructureFilter(this);
  filter->setRecursiveFilteringEnabled(true);
  filter->setSourceModel(model_);
  proxy_ = filter;

  view_ = new QTreeView(this);
  view_->setObjectName("regionTree");
  view_->setModel(proxy_);
  view_->setUniformRowHeights(true);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  view_->header()->setStretchLastSection(true);

  info_ = new QLabel(tr("No region selected"), this);
  info_->setWordWrap(true);
  info_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  info_->setObjectName("regionInfo");

  opacity_ = new QSlider(Qt::Horizontal, this);
  opacity_->setRange(0, 100);
  opacity_->setValue(100);
  opacity_->setEnabled(false);
  opacity_->setObjectName("regionOpacity");
  colour_ = new QPushButton(tr("Colour…"), this);
  colour_->setEnabled(false);
  resetColour_ = new QPushButton(tr("Atlas colour"), this);
  resetColour_->setEnabled(false);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Opacity"), this));
  controls->addWidget(opacity_, 1);
  controls->addWidget(colour_);
  controls->addWidget(resetColour_);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(search_);
  layout->addWidget(view_, 1);
  layout->addWidget(info_);
  layout->addLayout(controls);

  connect(search_, &QLineEdit::textChanged, this, &RegionTreePanel::applyFilter);
  connect(model_, &QStandardItemModel::itemChanged, this, [this](QStandardItem* item) {
    if (updating_ || item->column() != 0) return;
    emit visibilityChanged(item->data(kIndexRole).toInt(), item->checkState() == Qt::Checked);
  });
  connect(view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
    const int index = current.isValid() ? proxy_->mapToSource(current.siblingAtColumn(0)).data(kIndexRole).toInt() : -1;
    const bool any = index >= 0;
    opacity_->setEnabled(any);
    colour_->setEnabled(any);
    resetColour_->setEnabled(any);
    if (any && tree_) {
      const Structure& s = (*tree_)[index];
      info_->setText(
          QStringLiteral("<b>%1</b> %2<br>id %3<br>%4")
              .arg(QString::fromStdString(s.acronym).toHtmlEscaped(), QString::fromStdString(s.name).toHtmlEscaped())
              .arg(s.id)
              .arg(QString::fromStdString(tree_->pathString(index)).toHtmlEscaped()));
    } else {
      info_->setText(tr("No region selected"));
    }
    emit selectionChanged(index);
  });
  connect(opacity_, &QSlider::valueChanged, this, [this](int v) {
    if (updating_) return;
    if (auto s = selected()) emit opacityChanged(*s, v / 100.0);
  });
  connect(colour_, &QPushButton::clicked, this, [this] {
    const auto s = selected();
    if (!s) return;
    const QColor c = QColorDialog::getColor(colour_->property("current").value<QColor>(), this, tr("Region colour"));
    if (c.isValid()) emit colourChanged(*s, c);
  });
  connect(resetColour_, &QPushButton::clicked, this, [this] {
    if (auto s = selected()) emit colourReset(*s);
  });
}

void RegionTreePanel::setTree(const StructureTree* tree) {
  tree_ = tree;
  updating_ = true;
  model_->removeRows(0, model_->rowCount());
  items_.assign(tree->size(), nullptr);
  // Build top-down from the root without recursion.
  std::vector<std::pair<int, QStandardItem*>> stack{{tree->root(), model_->invisibleRootItem()}};
  while (!stack.empty()) {
    auto [index, parentItem] = stack.back();
    stack.pop_back();
    const Structure& s = (*tree)[index];
    // The root is white in the ontology but drawn as a grey shell: show what is drawn.
    const QColor c = index == tree->root() ? QColor(180, 180, 180) : QColor(s.rgb[0], s.rgb[1], s.rgb[2]);
    auto* item = new QStandardItem(swatch(c), QString::fromStdString(s.acronym));
    item->setCheckable(true);
    item->setEditable(false);
    item->setData(index, kIndexRole);
    item->setData(QString::fromStdString(s.acronym + " " + s.name).toLower(), kSearchRole);
    item->setToolTip(QString::fromStdString(s.name));
    auto* name = new QStandardItem(QString::fromStdString(s.name));
    name->setEditable(false);
    name->setData(index, kIndexRole);
    parentItem->appendRow({item, name});
    items_[static_cast<std::size_t>(index)] = item;
    for (auto it = s.children.rbegin(); it != s.children.rend(); ++it) stack.emplace_back(*it, item);
  }
  updating_ = false;
  expandDefault();
}

void RegionTreePanel::expandDefault() {
  view_->collapseAll();
  // Root, its children and the major divisions below them (CH, BS, CB...).
  if (!tree_) return;
  view_->expandToDepth(1);
}

void RegionTreePanel::applyFilter(const QString& text) {
  static_cast<StructureFilter*>(proxy_)->setText(text);
  if (text.trimmed().isEmpty()) {
    expandDefault();
    if (auto s = selected()) view_->scrollTo(viewIndexOf(*s));
  } else {
    view_->expandAll();
    // Put the best hit (exact acronym first) under the cursor.
    if (tree_) {
      const auto hits = tree_->search(text.trimmed().toStdString());
      if (!hits.empty()) {
        const QModelIndex vi = viewIndexOf(hits.front());
        if (vi.isValid()) view_->scrollTo(vi, QAbstractItemView::PositionAtCenter);
      }
    }
  }
}

QModelIndex RegionTreePanel::viewIndexOf(int index) const {
  if (index < 0 || static_cast<std::size_t>(index) >= items_.size() || !items_[static_cast<std::size_t>(index)])
    return {};
  return proxy_->mapFromSource(items_[static_cast<std::size_t>(index)]->index());
}

void RegionTreePanel::setChecked(int index, bool checked) {
  if (index < 0 || static_cast<std::size_t>(index) >= items_.size()) return;
  updating_ = true;
  items_[static_cast<std::size_t>(index)]->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
  updating_ = false;
}

bool RegionTreePanel::isChecked(int index) const {
  return index >= 0 && static_cast<std::size_t>(index) < items_.size() &&
         items_[static_cast<std::size_t>(index)]->checkState() == Qt::Checked;
}

void RegionTreePanel::select(int index) {
  QModelIndex vi = viewIndexOf(index);
  if (!vi.isValid()) { // hidden by the search: clear it
    search_->clear();
    vi = viewIndexOf(index);
  }
  if (!vi.isValid()) return;
  for (QModelIndex p = vi.parent(); p.isValid(); p = p.parent()) view_->expand(p);
  view_->setCurrentIndex(vi);
  view_->scrollTo(vi);
}

std::optional<int> RegionTreePanel::selected() const {
  const QModelIndex cur = view_->currentIndex();
  if (!cur.isValid()) return std::nullopt;
  return proxy_->mapToSource(cur.siblingAtColumn(0)).data(kIndexRole).toInt();
}

void RegionTreePanel::setDisplayControls(double opacity, const QColor& colour) {
  updating_ = true;
  opacity_->setValue(static_cast<int>(std::lround(opacity * 100)));
  colour_->setProperty("current", colour);
  colour_->setIcon(swatch(colour));
  updating_ = false;
}

std::vector<int> RegionTreePanel::visibleRows() const {
  std::vector<int> out;
  std::vector<QModelIndex> stack{QModelIndex()};
  while (!stack.empty()) {
    const QModelIndex p = stack.back();
    stack.pop_back();
    for (int r = proxy_->rowCount(p) - 1; r >= 0; --r) {
      const QModelIndex c = proxy_->index(r, 0, p);
      stack.push_back(c);
    }
    if (p.isValid()) out.push_back(proxy_->mapToSource(p).data(kIndexRole).toInt());
  }
  return out;
}

} // namespace atlascope::app

namespace atlascope::app {

void RegionTreePanel::attach(Engine& engine, AtlasId atlas) {
  Workspace& ws = engine.workspace();
  // The tree once the atlas is read, its check boxes as the model says then.
  auto showTree = [this, &engine, &ws, atlas] {
    setTree(&engine.atlas(atlas)->structures());
    for (const auto& [i, d] : ws.structureDisplays(atlas)) setChecked(i, d.visible);
  };
  if (engine.atlas(atlas))
    showTree();
  else
    connect(&ws, &Workspace::atlasLoaded, this, [this, &engine, atlas, showTree](AtlasId id) {
      if (id == atlas && !tree_ && engine.atlas(atlas)) showTree();
    });
  connect(this, &RegionTreePanel::visibilityChanged, this,
          [&ws, atlas](int i, bool visible) { ws.setStructureVisible(atlas, i, visible); });
  connect(this, &RegionTreePanel::opacityChanged, this,
          [&ws, atlas](int i, double o) { ws.setStructureOpacity(atlas, i, o); });
  connect(this, &RegionTreePanel::colourChanged, this, [&ws, atlas](int i, const QColor& c) {
    ws.setStructureColour(atlas, i, std::array<double, 3>{c.redF(), c.greenF(), c.blueF()});
  });
  connect(this, &RegionTreePanel::colourReset, this,
          [&ws, atlas](int i) { ws.setStructureColour(atlas, i, std::nullopt); });
  // The controls show the structure as drawn (the atlas's look where the model sets none).
  auto showControls = [this, &engine, atlas](int i) {
    viewer::AtlasScene* scene = engine.scene() ? engine.scene()->atlasScene(atlas) : nullptr;
    if (!scene || i < 0) return;
    viewer::RegionDisplay d = scene->defaultDisplay(i);
    const StructureDisplay m = engine.workspace().structureDisplay(atlas, i);
    if (m.opacity) d.opacity = *m.opacity;
    if (m.colour) d.colour = *m.colour;
    setDisplayControls(d.opacity, QColor::fromRgbF(static_cast<float>(d.colour[0]), static_cast<float>(d.colour[1]),
                                                   static_cast<float>(d.colour[2])));
  };
  connect(this, &RegionTreePanel::selectionChanged, this, showControls);
  connect(&ws, &Workspace::structuresChanged, this,
          [this, &ws, showControls, atlas](AtlasId which, const QList<int>& changed) {
            if (!tree_ || which != atlas) return;
            if (changed.isEmpty()) {
              for (int i = 0; i < static_cast<int>(tree_->size()); ++i)
                setChecked(i, ws.structureDisplay(atlas, i).visible);
            } else {
              for (int i : changed) setChecked(i, ws.structureDisplay(atlas, i).visible);
            }
            if (const auto s = selected(); s && (changed.isEmpty() || changed.contains(*s))) showControls(*s);
          });
}

} // namespace atlascope::app
