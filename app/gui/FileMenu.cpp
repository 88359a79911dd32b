#include "app/gui/FileMenu.h"

#include "app/gui/AnimationExport.h"
#include "app/gui/ColumnMappingDialog.h"
#include "app/gui/FigureExport.h"
#include "app/gui/MainWindow.h"
#include "app/gui/OpenAtlasDialog.h"
#include "app/gui/ScreenshotReaction.h"
#include "app/gui/SectionView.h"
#include "app/gui/VtkView.h"
#include "core/FileSystem.h"
#include "core/RegionNames.h"

#include <QAction>
#include <QApplication>
#include <QFileDialog>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>

namespace atlascope::app {

FileMenu::FileMenu(MainWindow& window, Engine& engine, SectionView& section) : QObject(&window) {
  MainWindow* w = &window;
  Engine* engine_ = &engine;
  SectionView* sectionView_ = &section;
  QMenu* file = window.menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open dataset…"));
  open->setObjectName("openDataset");
  open->setShortcut(QKeySequence::Open);
  connect(open, &QAction::triggered, this, [w] {
    const QString path = QFileDialog::getOpenFileName(w, tr("Open cells"), {},
                                                      tr("Cell data (*.h5ad *.csv *.tsv *.txt);;All files (*)"));
    if (path.isEmpty()) return;
    // A table: which column is what (pre-filled with what is recognised by name).
    if (isTablePath(path.toStdString())) {
      ColumnMappingDialog dialog(path, w);
      if (dialog.exec() == QDialog::Accepted) w->openDataset(path, dialog.columns());
      return;
    }
    w->openDataset(path);
  });
  QAction* openFolder = file->addAction(tr("Open &ABC atlas folder…"));
  openFolder->setObjectName("openAbcFolder");
  connect(openFolder, &QAction::triggered, this, [w] {
    // The ABC download as it is: metadata CSVs + CCF coordinates + expression .h5ad, joined.
    const QString dir =
        QFileDialog::getExistingDirectory(w, tr("ABC atlas folder (cell metadata, CCF coordinates, expression)"));
    if (!dir.isEmpty()) w->openDataset(dir);
  });
  QAction* openAtlas = file->addAction(tr("Open a&tlas (BrainGlobe)…"));
  openAtlas->setObjectName("openAtlas");
  connect(openAtlas, &QAction::triggered, this, [w] {
    OpenAtlasDialog d(w);
    if (d.exec() == QDialog::Accepted && !d.chosen().isEmpty()) w->workspace().addAtlas(d.chosen());
  });
  QAction* close = file->addAction(tr("&Close dataset"));
  close->setObjectName("closeCurrentDataset");
  close->setShortcut(QKeySequence::Close);
  connect(close, &QAction::triggered, this,
          [engine_] { engine_->workspace().closeDataset(engine_->workspace().currentDataset()); });
  file->addSeparator();
  QAction* shot = file->addAction(tr("Save &screenshot…"));
  shot->setShortcut(QKeySequence(tr("Ctrl+Shift+S")));
  new ScreenshotReaction(shot, w, [w](const QString& path, int scale) { w->saveViewImage(path, scale); });
  // Animations: frames of every view into a folder (and an MP4 with ffmpeg).
  auto animation = [this, w, engine_, file](const QString& text, const char* name, const QString& ask, bool spin) {
    QAction* a = file->addAction(text);
    a->setObjectName(name);
    connect(a, &QAction::triggered, this, [w, engine_, ask, spin] {
      const QString dir = QFileDialog::getExistingDirectory(w, ask);
      auto scene = engine_->offscreenScene();
      if (dir.isEmpty() || !scene) return;
      const QSize size = w->viewPixels();
      const auto axis = viewer::sectionAxisFromName(engine_->workspace().section().axis.toStdString());
      const AnimationResult r =
          spin ? exportTurntable(*scene, size, dir, 36)
               : exportSectionSweep(*scene, size, dir,
                                    axis == viewer::SectionAxis::None ? viewer::SectionAxis::Coronal : axis, 60);
      w->statusBar()->showMessage(
          r.error.isEmpty()
              ? tr("%1 frames in %2%3").arg(r.frames.size()).arg(dir, r.video.isEmpty() ? QString() : " + " + r.video)
              : r.error,
          10000);
    });
  };
  animation(tr("Export &turntable frames…"), "exportTurntable",
            tr("Folder for the turntable frames (36 frames, 10 degrees apart)"), true);
  animation(tr("Export section s&weep frames…"), "exportSweep",
            tr("Folder for the section sweep frames (60 frames along the section axis)"), false);
  file->addSeparator();
  QAction* figure = file->addAction(tr("Export &figure (views, section, legend)…"));
  figure->setObjectName("exportFigure");
  connect(figure, &QAction::triggered, this, [w, engine_, sectionView_] {
    const QString path =
        QFileDialog::getSaveFileName(w, tr("Export figure"), "figure.svg", tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return;
    const QSize size = path.endsWith(".png", Qt::CaseInsensitive) ? QSize(3600, 2100) : QSize(1800, 1050);
    if (!writeFigure(path, size, *engine_, *sectionView_))
      QMessageBox::warning(w, tr("Export figure"), tr("Could not write %1").arg(path));
  });
  QAction* sectionFigure = file->addAction(tr("Export 2D section (SVG, PDF or PNG)…"));
  sectionFigure->setObjectName("exportSection");
  connect(sectionFigure, &QAction::triggered, this, [w, sectionView_] {
    const QString path = QFileDialog::getSaveFileName(w, tr("Export 2D section"), "section.svg",
                                                      tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return;
    const QSize size(1600, 1200);
    const bool ok = path.endsWith(".svg", Qt::CaseInsensitive)   ? sectionView_->writeSvg(path, size)
                    : path.endsWith(".pdf", Qt::CaseInsensitive) ? sectionView_->writePdf(path, size)
                                                                 : sectionView_->writePng(path, size * 2);
    if (!ok) QMessageBox::warning(w, tr("Export 2D section"), tr("Could not write %1").arg(path));
  });
  QAction* saveSession = file->addAction(tr("Save sess&ion…"));
  saveSession->setObjectName("saveSession");
  connect(saveSession, &QAction::triggered, this, [w] {
    const QString path =
        QFileDialog::getSaveFileName(w, tr("Save session"), {}, tr("Atlascope sessions (*.atlascope.json *.json)"));
    if (path.isEmpty()) return;
    try {
      writeSessionFile(path, w->captureSession());
      w->statusBar()->showMessage(tr("Session saved to %1").arg(path), 8000);
    } catch (const std::exception& e) {
      QMessageBox::warning(w, tr("Save session"), QString::fromUtf8(e.what()));
    }
  });
  QAction* openSession = file->addAction(tr("Open sessio&n…"));
  openSession->setObjectName("openSession");
  connect(openSession, &QAction::triggered, this, [w] {
    const QString path =
        QFileDialog::getOpenFileName(w, tr("Open session"), {}, tr("Atlascope sessions (*.atlascope.json *.json)"));
    if (path.isEmpty()) return;
    try {
      w->applySession(readSessionFile(path));
    } catch (const std::exception& e) {
      QMessageBox::warning(w, tr("Open session"), QString::fromUtf8(e.what()));
    }
  });
  // Names given to regions in the window, into the result file itself (uns/region_names/<column>),
  // so that every later view and comparison shows them; the file is rewritten atomically.
  QAction* names = file->addAction(tr("Save region &names into the dataset"));
  names->setObjectName("saveRegionNames");
  connect(names, &QAction::triggered, this, [w, engine_] {
    Workspace& ws = engine_->workspace();
    const DatasetDocument* d = ws.dataset(ws.currentDataset());
    const CellColouring* c = d ? engine_->data().colouring(d->id) : nullptr;
    if (!d || !c || !c->colourBy.startsWith("regions_k") || isTablePath(d->path.toStdString())) {
      w->statusBar()->showMessage(QObject::tr("Colour an .h5ad dataset by its discovered regions (regions_k…) first"),
                                  8000);
      return;
    }
    const std::string path = d->path.toStdString(), column = c->colourBy.toStdString();
    const std::vector<std::string> named = displayNames(*d, *c);
    engine_->tasks().run<bool>(
        QStringLiteral("dataset:%1/names").arg(d->id), QObject::tr("Saving region names into %1").arg(d->path),
        [path, column, named](const CancellationToken&) {
          writeRegionNames(path, column, named);
          return true;
        },
        [w, column](bool) {
          w->statusBar()->showMessage(QObject::tr("Region names of %1 saved").arg(QString::fromStdString(column)),
                                      8000);
        });
  });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);
}

} // namespace atlascope::app
