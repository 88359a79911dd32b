// The ontology in its three formats gives one and the same tree; lookups, paths, descendants,
// search; and broken ontologies (cycle, missing parent, duplicate id) are clear errors.
#include "core/Error.h"
#include "core/StructureTree.h"
#include "tests/TestPaths.h"

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <fstream>
#include <set>

using namespace atlascope;

namespace {
void writeFile(const QString& path, const std::string& text) {
  std::ofstream f(path.toStdString(), std::ios::binary);
  f << text;
}

QString errorOf(const QString& path) {
  try {
    readOntology(path.toStdString());
  } catch (const FileError& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}
} // namespace

class TestStructureTree : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

private slots:
  void threeFormatsAgree() {
    REQUIRE_SHARED("data/ccf/structure_graph.json");
    const StructureTree flat = readOntology(atlascope::test::sharedFile("data/ccf/structures.json").toStdString());
    const StructureTree csv =
        readOntology(atlascope::test::sharedFile("data/ccf/structure_tree_safe_2017.csv").toStdString());
    const StructureTree nested =
        readOntology(atlascope::test::sharedFile("data/ccf/structure_graph.json").toStdString());
    QCOMPARE(flat.size(), std::size_t(1327));
    QCOMPARE(csv.size(), flat.size());
    QCOMPARE(nested.size(), flat.size());
    for (const StructureTree* t : {&csv, &nested}) {
      QCOMPARE((*t)[t->root()].id, StructureId(997));
      for (std::size_t i = 0; i < flat.size(); ++i) {
        const Structure& a = flat[static_cast<int>(i)];
        const auto j = t->indexOf(a.id);
        QVERIFY2(j.has_value(), qPrintable(QString("missing id %1").arg(a.id)));
        const Structure& b = (*t)[*j];
        // The "safe" CSV sanitises 9 acronyms (drops commas, "MMme" -> "Mmme"): compare loosely.
        auto loose = [](std::string x) {
          x.erase(std::remove(x.begin(), x.end(), ','), x.end());
          std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) { return std::tolower(c); });
          return x;
        };
        QCOMPARE(loose(b.acronym), loose(a.acronym));
        QCOMPARE(b.rgb, a.rgb);
        QCOMPARE(b.depth, a.depth);
        const StructureId pa = a.parent >= 0 ? flat[a.parent].id : 0;
        const StructureId pb = b.parent >= 0 ? (*t)[b.parent].id : 0;
        QCOMPARE(pb, pa);
        QCOMPARE(b.children.size(), a.children.size());
      }
    }
  }

  void lookupsAndPaths() {
    const StructureTree t = readOntology(atlascope::test::resourceFile("ccf/structures.json").toStdString());
    const auto ca1 = t.indexOfAcronym("CA1");
    QVERIFY(ca1);
    QCOMPARE(t[*ca1].id, StructureId(382));
    QCOMPARE(t[*ca1].name, std::string("Field CA1"));
    QCOMPARE(t[*ca1].rgb, (std::array<std::uint8_t, 3>{126, 208, 75}));
    QCOMPARE(t.pathString(*ca1), std::string("root / grey / CH / CTX / CTXpl / HPF / HIP / CA / CA1"));
    QCOMPARE(t.find("382"), ca1);
    QCOMPARE(t.find("Field CA1"), ca1);
    QCOMPARE(t.find("field ca1"), ca1);
    QCOMPARE(t.indexOfAcronym("mos"), t.indexOfAcronym("MOs")); // case-insensitive fallback
    QVERIFY(!t.find("no such structure"));
    const auto path = t.pathFromRoot(*ca1);
    QCOMPARE(path.front(), t.root());
    QCOMPARE(path.back(), *ca1);
  }

  void descendants() {
    const StructureTree t = readOntology(atlascope::test::resourceFile("ccf/structures.json").toStdString());
    const int ca = *t.indexOfAcronym("CA");
    std::set<std::string> acr;
    for (int i : t.descendants(ca)) acr.insert(t[i].acronym);
    for (const char* a : {"CA", "CA1", "CA1sp", "CA2", "CA3", "CA3sp"}) QVERIFY2(acr.count(a), a);
    QVERIFY(!acr.count("DG"));
    QCOMPARE(t.descendants(t.root()).size(), t.size());
    QVERIFY(t.isAncestorOrSelf(t.root(), ca));
    QVERIFY(!t.isAncestorOrSelf(ca, t.root()));
    // Leaves have only themselves.
    QCOMPARE(t.descendants(*t.indexOfAcronym("CA1sp")).size(), std::size_t(1));
  }

  void search() {
    const StructureTree t = readOntology(atlascope::test::resourceFile("ccf/structures.json").toStdString());
    const auto hits = t.search("ca1");
    QVERIFY(hits.size() >= 5);
    QCOMPARE(t[hits.front()].acronym, std::string("CA1")); // exact acronym first
    const auto byName = t.search("thalamus");
    bool th = false;
    for (int i : byName) th |= t[i].acronym == "TH";
    QVERIFY(th);
    QVERIFY(t.search("").empty());
  }

  void cycle() {
    const QString p = dir_.filePath("cycle.csv");
    writeFile(p, "id,acronym,name,parent_structure_id\n997,root,root,\n1,A,a,2\n2,B,b,1\n");
    const QString msg = errorOf(p);
    QVERIFY2(msg.contains(p) && msg.contains("cycle"), qPrintable(msg));
    writeFile(dir_.filePath("self.csv"), "id,acronym,name,parent_structure_id\n997,root,root,\n5,A,a,5\n");
    QVERIFY(errorOf(dir_.filePath("self.csv")).contains("its own parent"));
  }

  void missingParent() {
    const QString p = dir_.filePath("orphan.json");
    writeFile(p, R"([{"id":997,"acronym":"root","name":"root","structure_id_path":[997],"rgb_triplet":[255,255,255]},
                     {"id":5,"acronym":"X","name":"x","structure_id_path":[997,42,5],"rgb_triplet":[1,2,3]}])");
    const QString msg = errorOf(p);
    QVERIFY2(msg.contains(p) && msg.contains("parent 42") && msg.contains("not in the ontology"), qPrintable(msg));
  }

  void duplicateId() {
    const QString p = dir_.filePath("dup.json");
    writeFile(p, R"([{"id":997,"acronym":"root","name":"root","color_hex_triplet":"FFFFFF","children":[
                       {"id":7,"acronym":"A","name":"a","color_hex_triplet":"FF0000","children":[]},
                       {"id":7,"acronym":"B","name":"b","color_hex_triplet":"00FF00","children":[]}]}])");
    const QString msg = errorOf(p);
    QVERIFY2(msg.contains(p) && msg.contains("duplicate structure id 7"), qPrintable(msg));
  }

  void otherBadInputs() {
    writeFile(dir_.filePath("tworoots.csv"), "id,acronym,name,parent_structure_id\n1,A,a,\n2,B,b,\n");
    QVERIFY(errorOf(dir_.filePath("tworoots.csv")).contains("exactly one root"));
    writeFile(dir_.filePath("nocol.csv"), "id,acronym,name\n1,A,a\n");
    QVERIFY(errorOf(dir_.filePath("nocol.csv")).contains("parent_structure_id"));
    writeFile(dir_.filePath("badjson.json"), "[{\"id\": 1, ");
    QVERIFY(errorOf(dir_.filePath("badjson.json")).contains("invalid JSON"));
    writeFile(dir_.filePath("colour.csv"), "id,acronym,name,parent_structure_id,color_hex_triplet\n1,A,a,,XYZ\n");
    QVERIFY(errorOf(dir_.filePath("colour.csv")).contains("invalid colour"));
    writeFile(dir_.filePath("ragged.csv"), "id,acronym,name,parent_structure_id\n1,A,a,\n2,B\n");
    QVERIFY(errorOf(dir_.filePath("ragged.csv")).contains("line 3"));
    QVERIFY(errorOf(dir_.filePath("missing.json")).contains("cannot open"));
    writeFile(dir_.filePath("empty.json"), "   ");
    QVERIFY(errorOf(dir_.filePath("empty.json")).contains("empty"));
    // Issue 14: a number too large for a double is the JSON library's out_of_range, not a parse
    // error; it reached the user as the library's raw text. Now: the file and what was being read.
    const QString overflow = dir_.filePath("overflow.json");
    writeFile(overflow, R"([{"id": 1e999, "acronym": "root", "structure_id_path": "/1/"}])");
    const QString msg = errorOf(overflow);
    QVERIFY2(msg.startsWith(overflow) && msg.contains("reading the ontology") && msg.contains("number overflow"),
             qPrintable(msg));
    // The fuzzer's find: a graph_order (or colour) as a huge float was cast to int unchecked
    // (undefined behaviour). Now each is an error naming the field and the structure.
    const QString order = dir_.filePath("order.json");
    writeFile(order, R"([{"id": 1, "graph_order": 1e300, "structure_id_path": "/1/"}])");
    QVERIFY2(errorOf(order).contains("invalid graph_order of structure 1"), qPrintable(errorOf(order)));
    const QString rgb = dir_.filePath("rgb.json");
    writeFile(rgb, R"([{"id": 1, "rgb_triplet": [0, 300, 0.5], "children": []}])");
    QVERIFY2(errorOf(rgb).contains("invalid colour of structure 1"), qPrintable(errorOf(rgb)));
    const QString bigId = dir_.filePath("bigid.json");
    writeFile(bigId, R"([{"id": 4294967297, "structure_id_path": "/4294967297/"}])");
    QVERIFY2(errorOf(bigId).contains("invalid structure id"), qPrintable(errorOf(bigId)));
    writeFile(dir_.filePath("order.csv"), "id,acronym,name,parent_structure_id,graph_order\n1,A,a,,99999999999\n");
    QVERIFY(errorOf(dir_.filePath("order.csv")).contains("invalid graph_order"));
    // A long bad value is quoted, cut to 100 characters.
    writeFile(dir_.filePath("longcolour.csv"),
              "id,acronym,name,parent_structure_id,color_hex_triplet\n1,A,a,," + std::string(5000, 'Q') + "\n");
    const QString colour = errorOf(dir_.filePath("longcolour.csv"));
    QVERIFY2(colour.contains("(5000 characters, cut)") && colour.size() < 300, qPrintable(colour.left(300)));
  }

  void apiEnvelopeAndQuotedCsv() {
    writeFile(dir_.filePath("api.json"),
              R"({"success":true,"msg":[{"id":997,"acronym":"root","name":"root","color_hex_triplet":"FFFFFF",
        "children":[{"id":8,"acronym":"grey","name":"Basic, cell groups","color_hex_triplet":"BFDAE3","children":[]}]}]})");
    const StructureTree a = readOntology(dir_.filePath("api.json").toStdString());
    QCOMPARE(a.size(), std::size_t(2));
    writeFile(
        dir_.filePath("q.csv"),
        "id,acronym,name,parent_structure_id\r\n997,root,root,\r\n8,grey,\"Basic, \"\"cell\"\"\ngroups\",997\r\n");
    const StructureTree c = readOntology(dir_.filePath("q.csv").toStdString());
    QCOMPARE(c[*c.indexOf(8)].name, std::string("Basic, \"cell\"\ngroups"));
  }
};

QTEST_APPLESS_MAIN(TestStructureTree)
#include "test_structure_tree.moc"
