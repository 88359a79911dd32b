// One dataset from many files (CellFileSet) and Leiden (the clustering behind cell typing): files
// combined with sections from their names, ids kept unique, panels compared (the differences
// named), bad sets answered by errors naming the file; Leiden on graphs whose communities are
// known, deterministic for a seed.
#include "core/CellFileSet.h"
#include "core/CellTable.h"
#include "core/CellTypeResults.h"
#include "core/ConvertCells.h"
#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Leiden.h"

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

#include <fstream>
#include <set>

using namespace atlascope;

namespace {
void write(const QString& path, const std::string& text) { std::ofstream(path.toStdString()) << text; }

// Cliques of `size` vertices, each joined to the next by one edge.
WeightedEdges cliques(int count, int size) {
  WeightedEdges e;
  for (int c = 0; c < count; ++c) {
    for (int i = 0; i < size; ++i)
      for (int j = i + 1; j < size; ++j) {
        e.from.push_back(c * size + i);
        e.to.push_back(c * size + j);
        e.weight.push_back(1.0);
      }
    if (c + 1 < count) {
      e.from.push_back(c * size);
      e.to.push_back((c + 1) * size + 1);
      e.weight.push_back(1.0);
    }
  }
  return e;
}

// What the error says, or "" when there was none.
template <class Fn> std::string errorOf(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}
} // namespace

class TestCellFiles : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::string path(const char* n) { return dir_.filePath(n).toStdString(); }

private slots:
  // The combined copies go into the test's own cache.
  void initTestCase() { qputenv("ATLASCOPE_CACHE_DIR", dir_.filePath("cache").toUtf8()); }

  void leidenFindsCliques() {
    const WeightedEdges e = cliques(6, 8);
    LeidenOptions o;
    o.seed = 3;
    const LeidenResult r = leiden(48, e, o);
    QCOMPARE(r.communities, 6);
    for (int c = 0; c < 6; ++c)
      for (int i = 1; i < 8; ++i)
        QCOMPARE(r.membership[static_cast<std::size_t>(c * 8 + i)], r.membership[static_cast<std::size_t>(c * 8)]);
    QVERIFY(r.quality > 0.5);
    // The same seed, the same labels; a higher resolution never gives fewer communities here.
    QCOMPARE(leiden(48, e, o).membership, r.membership);
    o.resolution = 0.05;
    QVERIFY(leiden(48, e, o).communities < 6);
    const WeightedEdges outOfRange{{0}, {5}, {1.0}};
    QVERIFY_EXCEPTION_THROWN(leiden(3, outOfRange, o), Error);
  }

  void leidenCancels() {
    CancellationToken cancel;
    cancel.cancel();
    Progress p;
    p.cancel = &cancel;
    QVERIFY_EXCEPTION_THROWN(leiden(48, cliques(6, 8), LeidenOptions{}, p), Cancelled);
  }

  void combineSlices() {
    QDir(dir_.path()).mkdir("release");
    // Three slices as labs write them: no section column, ids restarting in every file, the
    // second file's genes in another order.
    write(dir_.filePath("release/mop_slice2.csv"),
          "index,cell_volume,pos_x,pos_y,Gad1,Slc17a7,Sst\n0,10,1,2,1,0,3\n1,11,3,4,0,5,0\n");
    write(dir_.filePath("release/mop_slice10.csv"), "index,cell_volume,pos_x,pos_y,Slc17a7,Gad1,Sst\n0,10,5,6,7,8,9\n");
    write(dir_.filePath("release/mop_slice1.csv"), "index,cell_volume,pos_x,pos_y,Gad1,Slc17a7,Sst\n0,12,7,8,2,2,2\n");
    const std::vector<std::string> files = cellFileSet({path("release")});
    QCOMPARE(files.size(), std::size_t(3));
    QVERIFY(files[0].find("slice1.csv") != std::string::npos &&
            files[2].find("slice10.csv") != std::string::npos); // natural order
    QVERIFY(cellFileSet({path("release/mop_slice1.csv")}).empty());

    FileSetOptions o;
    o.sectionFromFilename = "slice(\\d+)";
    const FileSetSummary s = combineCellFiles(files, {}, o, path("combined.h5ad"));
    QCOMPARE(s.cells, std::int64_t(4));
    QCOMPARE(s.sections, std::size_t(3));
    QVERIFY(s.prefixedIds);
    const CellTable t = readCellTable(path("combined.h5ad"));
    QCOMPARE(t.sectionNames, (std::vector<std::string>{"1", "2", "10"}));
    QCOMPARE(t.genes, (std::vector<std::string>{"Gad1", "Slc17a7", "Sst"}));
    QCOMPARE(readCellIds(path("combined.h5ad")),
             (std::vector<std::string>{"mop_slice1:0", "mop_slice2:0", "mop_slice2:1", "mop_slice10:0"}));
    // Expression follows the panel's order in every file (slice10 had Slc17a7 first).
    const ExpressionSource x(path("combined.h5ad"));
    std::vector<float> v(12);
    x.readRows(0, 4, v.data());
    QCOMPARE(v, (std::vector<float>{2, 2, 2, 1, 0, 3, 0, 5, 0, 8, 7, 9}));
    QCOMPARE(t.section, (std::vector<std::int32_t>{0, 1, 1, 2}));

    // Without the pattern: each file's name is its section; the cache makes the copy once.
    FileSetSummary first, again;
    const std::string cached = combinedCellFiles(files, {}, {}, &first);
    QCOMPARE(combinedCellFiles(files, {}, {}, &again), cached);
    QVERIFY(!first.cached && again.cached);
    QCOMPARE(readCellTable(cached).sectionNames, (std::vector<std::string>{"mop_slice1", "mop_slice2", "mop_slice10"}));
    QCOMPARE(readSectionSpacing(cached), 0.0);
    FileSetOptions spaced;
    spaced.sectionSpacingUm = 150;
    QCOMPARE(readSectionSpacing(combinedCellFiles(files, {}, spaced)), 150.0);
    convertCells(combinedCellFiles(files, {}, spaced), {}, path("converted.h5ad"));
    QCOMPARE(readSectionSpacing(path("converted.h5ad")), 150.0); // convert keeps it
    o.sectionFromFilename = "section(\\d+)";
    QVERIFY(errorOf([&] {
              combineCellFiles(files, {}, o, path("x.h5ad"));
            }).find("does not match --section-from-filename") != std::string::npos);
  }

  void badSets() {
    write(dir_.filePath("a.csv"), "cell,x,y,Gad1,Slc17a7,Sst\nc1,1,2,1,0,3\n");
    write(dir_.filePath("b.csv"), "cell,x,y,Gad1,Pvalb,Vip\nc2,1,2,1,0,3\n");
    write(dir_.filePath("c.csv"), "cell,x,y,fov_name,Gad1,Slc17a7,Sst\nc3,1,2,f1,1,0,3\n");
    write(dir_.filePath("d.csv"), "cell,x,y,Gad1,Slc17a7,Sst\nc1,3,4,1,0,3\nc1,5,6,1,1,1\n");
    write(dir_.filePath("e.csv"), "cell,x,y,Gad1,Slc17a7,Sst\n");
    write(dir_.filePath("f.csv"), "cell,x,y,Gad1,Slc17a7,Sst\nc9,3,4,1,0,3\n");
    auto combine = [&](std::vector<std::string> files, bool common = false) {
      FileSetOptions o;
      o.commonGenes = common;
      return errorOf([&] { combineCellFiles(files, {}, o, path("bad.h5ad")); });
    };
    std::string e = combine({path("a.csv"), path("b.csv")});
    QVERIFY2(e.find("b.csv") != std::string::npos && e.find("gene panel differs") != std::string::npos &&
                 e.find("lacks Slc17a7, Sst") != std::string::npos && e.find("Pvalb, Vip") != std::string::npos,
             e.c_str());
    e = combine({path("a.csv"), path("c.csv")});
    QVERIFY2(e.find("c.csv") != std::string::npos && e.find("fov_name") != std::string::npos, e.c_str());
    e = combine({path("a.csv"), path("d.csv")});
    QVERIFY2(e.find("d.csv") != std::string::npos && e.find("duplicate cell id 'c1'") != std::string::npos, e.c_str());
    e = combine({path("a.csv"), path("e.csv")});
    QVERIFY2(e.find("e.csv") != std::string::npos && e.find("no cells") != std::string::npos, e.c_str());
    write(dir_.filePath("empty.csv"), "");
    e = combine({path("a.csv"), path("empty.csv")});
    QVERIFY2(e.find("empty.csv") != std::string::npos && e.find("empty file") != std::string::npos, e.c_str());
    // --genes common: the genes both have; unique ids are kept as they are.
    QCOMPARE(combine({path("a.csv"), path("b.csv")}, true), std::string());
    QCOMPARE(readCellTable(path("bad.h5ad")).genes, std::vector<std::string>{"Gad1"});
    QCOMPARE(combine({path("a.csv"), path("f.csv")}), std::string());
    QCOMPARE(readCellIds(path("bad.h5ad")), (std::vector<std::string>{"c1", "c9"}));
  }

  void typesIntoACopy() {
    write(dir_.filePath("t.csv"), "cell,x,y,Gad1,Slc17a7\nc1,1,2,1,0\nc2,3,4,0,1\nc3,5,6,2,2\n");
    const std::string h5 = combinedCellFiles({path("t.csv")}, {}, {});
    CellTypeColumn c{"celltype_leiden",
                     {0, 1, -1},
                     {"C1", "C2"},
                     {{255, 0, 0}, {0, 0, 255}},
                     {{"Gad1", "Slc17a7"}, {"Slc17a7", "Gad1"}}};
    writeCellTypesToCopy(h5, path("typed.h5ad"), c, ObsmArray{"X_pca", 2, {1, 2, 3, 4, 5, 6}});
    const CellTable t = readCellTable(path("typed.h5ad")); // celltype_leiden is found by name
    QCOMPARE(t.types.names, (std::vector<std::string>{"C1", "C2"}));
    QCOMPARE(t.cellType, (std::vector<std::int32_t>{0, 1, -1}));
    QCOMPARE(t.types.colours.size(), std::size_t(2));
    const auto markers = readTypeMarkers(path("typed.h5ad"), "celltype_leiden");
    QCOMPARE(markers.at("C2"), (std::vector<std::string>{"Slc17a7", "Gad1"}));
    QCOMPARE(Hdf5File(path("typed.h5ad")).shape("/obsm/X_pca"), (std::vector<std::int64_t>{3, 2}));
    c.codes.pop_back();
    QVERIFY_EXCEPTION_THROWN(writeCellTypesToCopy(h5, path("typed2.h5ad"), c, ObsmArray{}), Error);
  }
};

QTEST_APPLESS_MAIN(TestCellFiles)
#include "test_cell_files.moc"
