#pragma once
// Where tests find the shared read-only data (../shared beside the checkout) and the bundle.
#include <QDir>
#include <QFileInfo>
#include <QString>
#include <QTest>

namespace atlascope::test {

inline QString sharedDir() { return QStringLiteral(ATLASCOPE_SHARED_DIR); }
inline QString sharedFile(const QString& rel) { return QDir(sharedDir()).filePath(rel); }
inline QString resourceFile(const QString& rel) { return QDir(QStringLiteral(ATLASCOPE_RESOURCE_DIR)).filePath(rel); }

} // namespace atlascope::test

// Skips the current test, with a message, when ../shared is not there.
#define REQUIRE_SHARED(rel)                                                                                            \
  do {                                                                                                                 \
    if (!QFileInfo::exists(atlascope::test::sharedFile(rel)))                                                          \
      QSKIP(qPrintable(QStringLiteral("../shared not found (%1): skipped").arg(atlascope::test::sharedFile(rel))));    \
  } while (0)
