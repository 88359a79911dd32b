// The strict torch.save reader: the reference's .pth gives exactly the tensors of the fixture's
// /weights group; a pickle that asks for anything beyond a state_dict is refused, never run.
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/Hdf5File.h"
#include "core/TorchStateDict.h"
#include "tests/TestPaths.h"
#include "tests/ZipTestUtil.h"

#include <QTemporaryDir>
#include <QTest>

#include <cstring>
#include <fstream>

using namespace atlascope;

namespace {
const char* kPth = "fixtures/celltransformer_parity_small.pth";
const char* kH5 = "fixtures/celltransformer_parity_small.h5";

void writeFile(const QString& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(p.toStdString(), std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

QString errorOf(const QString& p) {
  try {
    readTorchStateDict(p.toStdString());
  } catch (const FileError& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

// Replaces every occurrence of `from` by `to` (same length) in the archive's bytes; the zip
// stores data.pkl uncompressed, so this edits the pickle in place. The CRC-32s are recomputed so
// that the edit reaches the pickle checks (a stale CRC is its own test below).
std::vector<std::uint8_t> patched(std::vector<std::uint8_t> bytes, const std::string& from, const std::string& to) {
  for (std::size_t i = 0; i + from.size() <= bytes.size(); ++i)
    if (std::memcmp(&bytes[i], from.data(), from.size()) == 0) std::memcpy(&bytes[i], to.data(), to.size());
  return atlascope::test::zipWithFixedCrcs(bytes);
}
} // namespace

class TestTorchStateDict : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

private slots:
  void matchesHdf5Weights() {
    REQUIRE_SHARED(kPth);
    const auto tensors = readTorchStateDict(atlascope::test::sharedFile(kPth).toStdString());
    Hdf5File h5(atlascope::test::sharedFile(kH5).toStdString());
    const auto names = h5.children("/weights");
    QCOMPARE(tensors.size(), names.size());
    for (const RawTensor& t : tensors) {
      QCOMPARE(t.dtype, TensorDType::Float32);
      const auto ref = h5.readFloat("/weights/" + t.name);
      QCOMPARE(t.shape, ref.shape);
      QCOMPARE(t.bytes.size(), ref.data.size() * sizeof(float));
      QVERIFY2(std::memcmp(t.bytes.data(), ref.data.data(), t.bytes.size()) == 0, t.name.c_str());
    }
    QCOMPARE(tensors.front().name, std::string("cls_token"));
  }

  void refusesOtherGlobals() {
    REQUIRE_SHARED(kPth);
    const auto bytes = readFileBytes(atlascope::test::sharedFile(kPth).toStdString());
    // 'collections\nOrderedDict' -> 'posix\0\0\0\0\0\0\nsystem...': any global outside the allow list.
    const QString p = dir_.filePath("evil.pth");
    writeFile(p, patched(bytes, "collections\nOrderedDict", "builtins\nexec\n\n\n\n\n\n\n\n\n\n"));
    const QString msg = errorOf(p);
    QVERIFY2(msg.contains("unsupported pickle global 'builtins.exec'") && msg.contains(p), qPrintable(msg));
    const QString p2 = dir_.filePath("storage.pth");
    writeFile(p2, patched(bytes, "torch\nFloatStorage", "torch\nEvilXStorage"));
    QVERIFY(errorOf(p2).contains("unsupported pickle global 'torch.EvilXStorage'"));
  }

  void truncatedAndDamaged() {
    REQUIRE_SHARED(kPth);
    const auto bytes = readFileBytes(atlascope::test::sharedFile(kPth).toStdString());
    const QString half = dir_.filePath("half.pth");
    writeFile(half, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2)));
    QVERIFY(errorOf(half).contains("truncated"));
    const QString notzip = dir_.filePath("not.pth");
    writeFile(notzip, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', ' ',
                       'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'});
    QVERIFY(errorOf(notzip).contains("not a torch.save archive"));
    // A missing storage entry.
    const QString nodata = dir_.filePath("nodata.pth");
    writeFile(nodata, patched(bytes, "celltransformer_parity_small/data/0", "celltransformer_parity_small/data/X"));
    QVERIFY2(errorOf(nodata).contains("missing from the archive"), qPrintable(errorOf(nodata)));
    QVERIFY(errorOf(dir_.filePath("absent.pth")).contains("cannot open"));
  }

  // Issue 14: flipped tensor bytes and a lying local header loaded without complaint (the CRC was
  // never checked; shifted bytes were read) and parity failed far from the cause.
  void crcAndLocalHeadersChecked() {
    REQUIRE_SHARED(kPth);
    const auto bytes = readFileBytes(atlascope::test::sharedFile(kPth).toStdString());
    const auto member = atlascope::test::zipMember(bytes, "/data/3");
    auto flipped = bytes;
    flipped[member.data + member.size / 2] ^= 0xff;
    const QString p = dir_.filePath("flipped.pth");
    writeFile(p, flipped);
    QString msg = errorOf(p);
    QVERIFY2(msg.startsWith(p) && msg.contains("zip member '" + QString::fromStdString(member.name) + "'") &&
                 msg.contains("CRC-32"),
             qPrintable(msg));
    // The local header's name length says one byte more than the directory's: the data would be
    // read one byte late.
    auto lying = bytes;
    lying[member.local + 26] = static_cast<std::uint8_t>(lying[member.local + 26] + 1);
    const QString l = dir_.filePath("lying.pth");
    writeFile(l, lying);
    msg = errorOf(l);
    QVERIFY2(msg.contains("zip member '" + QString::fromStdString(member.name) + "'") && msg.contains("local header"),
             qPrintable(msg));
    // The extra field's length (legal to differ from the directory's) moves the data: the CRC
    // catches the shifted bytes.
    auto extra = bytes;
    extra[member.local + 28] = static_cast<std::uint8_t>(extra[member.local + 28] + 4);
    const QString e = dir_.filePath("extra.pth");
    writeFile(e, extra);
    QVERIFY2(errorOf(e).contains("CRC-32"), qPrintable(errorOf(e)));
    // The unmodified archive still loads (the checks accept what torch.save writes).
    QVERIFY(readTorchStateDict(atlascope::test::sharedFile(kPth).toStdString()).size() > 0);
  }
};

QTEST_APPLESS_MAIN(TestTorchStateDict)
#include "test_torch_state_dict.moc"
