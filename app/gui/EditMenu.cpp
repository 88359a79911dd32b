#include "app/gui/EditMenu.h"

#include "app/gui/PreferencesDialog.h"

#include <QAction>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QUndoStack>

namespace atlascope::app {

void addEditMenu(QMainWindow& window, QUndoStack& stack, std::function<void()> preferencesSaved) {
  QMenu* edit = window.menuBar()->addMenu(QObject::tr("&Edit"));
  QAction* undo = stack.createUndoAction(&window, QObject::tr("&Undo"));
  undo->setObjectName("undo");
  undo->setShortcut(QKeySequence::Undo);
  QAction* redo = stack.createRedoAction(&window, QObject::tr("&Redo"));
  redo->setObjectName("redo");
  redo->setShortcut(QKeySequence::Redo);
  edit->addActions({undo, redo});
  edit->addSeparator();
  QAction* preferences = edit->addAction(QObject::tr("&Preferences…"));
  preferences->setObjectName("preferences");
  preferences->setMenuRole(QAction::PreferencesRole);
  preferences->setShortcut(QKeySequence::Preferences);
  QObject::connect(preferences, &QAction::triggered, &window, [&window, preferencesSaved] {
    auto* dialog = new PreferencesDialog(&window);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    QObject::connect(dialog, &QDialog::accepted, &window, preferencesSaved);
    dialog->open();
  });
}

} // namespace atlascope::app
