#pragma once
// The window's widgets as a test reaches them: by class and object name, as Qt Test and an
// accessibility tool do, never through accessors on the panels (which hand out no widget
// pointers). A missing widget ends the test run with its name: the window's layout changed.
#include <QObject>
#include <QString>
#include <QtGlobal>

namespace atlascope::app::test {

template <class T> T* child(const QObject* root, const char* name) {
  T* w = root ? root->findChild<T*>(QString::fromLatin1(name)) : nullptr;
  if (!w)
    qFatal("no %s named '%s' under %s", T::staticMetaObject.className(), name,
           root ? root->metaObject()->className() : "(null)");
  return w;
}
template <class T> T* child(const QObject& root, const char* name) { return child<T>(&root, name); }

// The one widget of a class in the window (a panel, the 3D view).
template <class T> T* panel(const QObject& window) {
  const auto all = window.findChildren<T*>();
  if (all.size() != 1)
    qFatal("%d widgets of class %s in the window (expected one)", static_cast<int>(all.size()),
           T::staticMetaObject.className());
  return all.first();
}

} // namespace atlascope::app::test
