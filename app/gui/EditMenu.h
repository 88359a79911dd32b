#pragma once
// Edit: undo and redo of every change to the workspace, and Preferences (where jobs run).
#include <functional>

class QMainWindow;
class QUndoStack;

namespace atlascope::app {

// `preferencesSaved`: called after the preferences dialog saved (the job panels read them again).
void addEditMenu(QMainWindow& window, QUndoStack& undo, std::function<void()> preferencesSaved);

} // namespace atlascope::app
