#pragma once
// The File menu as reactions over the window and its workspace: open datasets (files, tables
// through the column mapping, ABC folders) and close them, screenshots and figures (every view as
// laid out, at the asked pixels), animations, the 2D section, sessions, and the region names
// saved into the dataset file.
#include <QObject>

namespace atlascope::app {

class Engine;
class MainWindow;
class SectionView;

class FileMenu : public QObject {
  Q_OBJECT
public:
  FileMenu(MainWindow& window, Engine& engine, SectionView& section);
};

} // namespace atlascope::app
