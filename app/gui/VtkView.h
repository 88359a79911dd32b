#pragma once
// A Qt 6 widget that shows a vtkRenderWindow. VTK's own Qt widgets are built for Qt 5 on Debian
// (TOOLCHAIN.md), so the bridge is ours: a native child window whose X11 id is handed to a plain
// vtkRenderWindow, with Qt's mouse/key events forwarded to a vtkGenericRenderWindowInteractor.
#include <QWidget>

#include <vtkSmartPointer.h>

class vtkGenericRenderWindowInteractor;
class vtkOrientationMarkerWidget;
class vtkRenderWindow;
class vtkRenderer;

namespace atlascope::app {

class VtkView : public QWidget {
  Q_OBJECT
public:
  explicit VtkView(QWidget* parent = nullptr);
  ~VtkView() override;

  vtkRenderWindow* renderWindow() const;
  void addRenderer(vtkRenderer* renderer);
  // Shows the CCF axes (P, V, R) in a corner, following the camera of `renderer`.
  void showOrientationMarker(vtkRenderer* renderer);
  // Draws now (when the native window exists); safe to call often.
  void render();
  bool isReady() const { return initialised_; }

  QPaintEngine* paintEngine() const override { return nullptr; }

signals:
  // A click (press and release without a drag) at VTK display coordinates (origin bottom left).
  void clicked(int x, int y);
  // A right click without a drag (a right drag zooms): where, in VTK and in screen coordinates.
  void contextClicked(int x, int y, QPoint global);
  void rendered();
  // A camera drag started (true) or ended (false).
  void interacting(bool on);

protected:
  void showEvent(QShowEvent* e) override;
  void paintEvent(QPaintEvent* e) override;
  void resizeEvent(QResizeEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void keyReleaseEvent(QKeyEvent* e) override;
  void enterEvent(QEnterEvent* e) override;
  void leaveEvent(QEvent* e) override;
  bool event(QEvent* e) override;

private:
  void initialise();
  void setEventInfo(const QPointF& pos, Qt::KeyboardModifiers mods, int repeat = 0);

  vtkSmartPointer<vtkRenderWindow> window_;
  vtkSmartPointer<vtkGenericRenderWindowInteractor> interactor_;
  vtkSmartPointer<vtkOrientationMarkerWidget> marker_;
  vtkRenderer* markerRenderer_ = nullptr;
  bool initialised_ = false;
  QPoint pressPos_;
};

} // namespace atlascope::app
