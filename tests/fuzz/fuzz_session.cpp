// Session files: Qt's JSON parser, then Session::fromJson (app/gui/Session.cpp, Qt Core only).
#include "app/gui/Session.h"
#include "tests/fuzz/FuzzSupport.h"

#include <QByteArray>
#include <QJsonDocument>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const QJsonDocument doc = QJsonDocument::fromJson(QByteArray(reinterpret_cast<const char*>(data), static_cast<int>(size)));
  if (!doc.isObject()) return 0;
  ATLASCOPE_FUZZ_BODY(const auto s = atlascope::app::Session::fromJson(doc.object());
                      // What is read must write back and read again (the session's own round trip).
                      const auto again = atlascope::app::Session::fromJson(s.toJson()); (void)again);
  return 0;
}
