#include "app/gui/VtkView.h"

#include "viewer/AtlasScene.h"

#include <QGuiApplication>
#include <QMouseEvent>
#include <QWheelEvent>

#include <vtkAxesActor.h>
#include <vtkCallbackCommand.h>
#include <vtkCaptionActor2D.h>
#include <vtkCommand.h>
#include <vtkGenericRenderWindowInteractor.h>
#include <vtkInteractorStyleTrackballCamera.h>
#include <vtkOrientationMarkerWidget.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>
#include <vtkTextProperty.h>

namespace atlascope::app {

VtkView::VtkView(QWidget* parent) : QWidget(parent) {
  setAttribute(Qt::WA_NativeWindow);
  setAttribute(Qt::WA_PaintOnScreen);
  setAttribute(Qt::WA_NoSystemBackground);
  setAttribute(Qt::WA_OpaquePaintEvent);
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setMinimumSize(200, 150);

  window_ = vtkSmartPointer<vtkRenderWindow>::New();
  viewer::configureRenderWindow(window_);
  interactor_ = vtkSmartPointer<vtkGenericRenderWindowInteractor>::New();
  interactor_->SetRenderWindow(window_);
  auto style = vtkSmartPointer<vtkInteractorStyleTrackballCamera>::New();
  interactor_->SetInteractorStyle(style);
  // Camera drags (rotate, pan, zoom) start and end: level of detail switches on and off.
  auto relay = [](vtkObject*, unsigned long event, void* self, void*) {
    auto* view = static_cast<VtkView*>(self);
    emit view->interacting(event == vtkCommand::StartInteractionEvent);
  };
  for (unsigned long e : {vtkCommand::StartInteractionEvent, vtkCommand::EndInteractionEvent}) {
    auto cb = vtkSmartPointer<vtkCallbackCommand>::New();
    cb->SetCallback(relay);
    cb->SetClientData(this);
    style->AddObserver(e, cb);
  }
}

VtkView::~VtkView() {
  if (marker_) marker_->SetEnabled(0);
  window_->Finalize();
}

vtkRenderWindow* VtkView::renderWindow() const { return window_; }

void VtkView::addRenderer(vtkRenderer* renderer) { window_->AddRenderer(renderer); }

void VtkView::showOrientationMarker(vtkRenderer* renderer) {
  markerRenderer_ = renderer;
  if (!initialised_) return; // the widget needs a live interactor; done in initialise()
  auto axes = vtkSmartPointer<vtkAxesActor>::New();
  // Scene axes are CCF (AP, DV, ML) growing towards posterior, ventral and the animal's right.
  axes->SetXAxisLabelText("P");
  axes->SetYAxisLabelText("V");
  axes->SetZAxisLabelText("R");
  for (auto* cap : {axes->GetXAxisCaptionActor2D(), axes->GetYAxisCaptionActor2D(), axes->GetZAxisCaptionActor2D()}) {
    cap->GetCaptionTextProperty()->SetColor(0.1, 0.1, 0.1);
    cap->GetCaptionTextProperty()->ShadowOff();
    cap->GetCaptionTextProperty()->ItalicOff();
  }
  marker_ = vtkSmartPointer<vtkOrientationMarkerWidget>::New();
  marker_->SetOrientationMarker(axes);
  marker_->SetInteractor(interactor_);
  marker_->SetCurrentRenderer(renderer);
  marker_->SetViewport(0.0, 0.0, 0.16, 0.16);
  marker_->SetEnabled(1);
  marker_->InteractiveOff();
}

void VtkView::initialise() {
  if (initialised_) return;
  auto* x11 = qGuiApp->nativeInterface<QNativeInterface::QX11Application>();
  if (x11) window_->SetDisplayId(x11->display());
  window_->SetWindowId(reinterpret_cast<void*>(winId()));
  const qreal dpr = devicePixelRatioF();
  window_->SetSize(static_cast<int>(width() * dpr), static_cast<int>(height() * dpr));
  interactor_->Initialize();
  interactor_->UpdateSize(static_cast<int>(width() * dpr), static_cast<int>(height() * dpr));
  initialised_ = true;
  if (markerRenderer_ && !marker_) showOrientationMarker(markerRenderer_);
}

void VtkView::render() {
  if (!initialised_ || !isVisible()) return;
  window_->Render();
  emit rendered();
}

void VtkView::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  initialise();
}

void VtkView::paintEvent(QPaintEvent*) { render(); }

void VtkView::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  if (!initialised_) return;
  const qreal dpr = devicePixelRatioF();
  window_->SetSize(static_cast<int>(width() * dpr), static_cast<int>(height() * dpr));
  interactor_->UpdateSize(static_cast<int>(width() * dpr), static_cast<int>(height() * dpr));
  render();
}

bool VtkView::event(QEvent* e) {
  // The native window must not be painted by Qt's backing store.
  if (e->type() == QEvent::UpdateRequest) {
    render();
    return true;
  }
  return QWidget::event(e);
}

void VtkView::setEventInfo(const QPointF& pos, Qt::KeyboardModifiers mods, int repeat) {
  const qreal dpr = devicePixelRatioF();
  interactor_->SetEventInformationFlipY(static_cast<int>(pos.x() * dpr), static_cast<int>(pos.y() * dpr),
                                        (mods & Qt::ControlModifier) ? 1 : 0, (mods & Qt::ShiftModifier) ? 1 : 0, 0,
                                        repeat);
  interactor_->SetAltKey((mods & Qt::AltModifier) ? 1 : 0);
}

void VtkView::mousePressEvent(QMouseEvent* e) {
  if (!initialised_) return;
  pressPos_ = e->position().toPoint();
  setEventInfo(e->position(), e->modifiers(), e->type() == QEvent::MouseButtonDblClick ? 1 : 0);
  switch (e->button()) {
  case Qt::LeftButton: interactor_->InvokeEvent(vtkCommand::LeftButtonPressEvent, e); break;
  case Qt::MiddleButton: interactor_->InvokeEvent(vtkCommand::MiddleButtonPressEvent, e); break;
  case Qt::RightButton: interactor_->InvokeEvent(vtkCommand::RightButtonPressEvent, e); break;
  default: break;
  }
}

void VtkView::mouseReleaseEvent(QMouseEvent* e) {
  if (!initialised_) return;
  setEventInfo(e->position(), e->modifiers());
  switch (e->button()) {
  case Qt::LeftButton: interactor_->InvokeEvent(vtkCommand::LeftButtonReleaseEvent, e); break;
  case Qt::MiddleButton: interactor_->InvokeEvent(vtkCommand::MiddleButtonReleaseEvent, e); break;
  case Qt::RightButton: interactor_->InvokeEvent(vtkCommand::RightButtonReleaseEvent, e); break;
  default: break;
  }
  if ((e->position().toPoint() - pressPos_).manhattanLength() <= 3) {
    const qreal dpr = devicePixelRatioF();
    const int x = static_cast<int>(e->position().x() * dpr),
              y = static_cast<int>((height() - 1 - e->position().y()) * dpr);
    if (e->button() == Qt::LeftButton)
      emit clicked(x, y);
    else if (e->button() == Qt::RightButton)
      emit contextClicked(x, y, e->globalPosition().toPoint());
  }
}

void VtkView::mouseMoveEvent(QMouseEvent* e) {
  if (!initialised_) return;
  setEventInfo(e->position(), e->modifiers());
  interactor_->InvokeEvent(vtkCommand::MouseMoveEvent, e);
}

void VtkView::wheelEvent(QWheelEvent* e) {
  if (!initialised_) return;
  setEventInfo(e->position(), e->modifiers());
  if (e->angleDelta().y() > 0)
    interactor_->InvokeEvent(vtkCommand::MouseWheelForwardEvent, e);
  else if (e->angleDelta().y() < 0)
    interactor_->InvokeEvent(vtkCommand::MouseWheelBackwardEvent, e);
}

void VtkView::keyPressEvent(QKeyEvent* e) {
  // Keys go to Qt's shortcuts, not to VTK's style (whose 'e'/'q' would close the window).
  QWidget::keyPressEvent(e);
}

void VtkView::keyReleaseEvent(QKeyEvent* e) { QWidget::keyReleaseEvent(e); }

void VtkView::enterEvent(QEnterEvent* e) {
  QWidget::enterEvent(e);
  if (initialised_) interactor_->InvokeEvent(vtkCommand::EnterEvent, e);
}

void VtkView::leaveEvent(QEvent* e) {
  QWidget::leaveEvent(e);
  if (initialised_) interactor_->InvokeEvent(vtkCommand::LeaveEvent, e);
}

} // namespace atlascope::app
