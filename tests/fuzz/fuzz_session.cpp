// Session files: Qt's JSON parser, then Workspace::restore (app/workspace/WorkspaceSession.cpp:
// versions 1 and 2), and what was restored must serialise and restore to the same state.
#include "app/workspace/Workspace.h"
#include "tests/fuzz/FuzzSupport.h"

#include <QByteArray>
#include <QJsonDocument>

namespace {
// Structures named by index, as the atlas's tree would ("S12"), for any index up to 2,000.
atlascope::app::Workspace::StructureNames names() {
  return {[](atlascope::app::AtlasId, int i) { return QStringLiteral("S%1").arg(i); },
          [](atlascope::app::AtlasId, const QString& a) -> std::optional<int> {
            bool ok = false;
            const int i = a.mid(1).toInt(&ok);
            return a.startsWith('S') && ok && i >= 0 && i < 2000 ? std::optional<int>(i) : std::nullopt;
          }};
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const QJsonDocument doc =
      QJsonDocument::fromJson(QByteArray(reinterpret_cast<const char*>(data), static_cast<int>(size)));
  if (!doc.isObject()) return 0;
  ATLASCOPE_FUZZ_BODY(atlascope::app::Workspace ws; ws.restore(doc.object(), names());
                      const QJsonObject saved = ws.toJson(names()); atlascope::app::Workspace again;
                      again.restore(saved, names()); if (again.toJson(names()) != saved) __builtin_trap());
  return 0;
}
