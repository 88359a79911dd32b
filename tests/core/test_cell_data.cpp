// Cells on disk: the synthetic brain written as AnnData and read back (positions, sections, types,
// colours, genes, CCF), its determinism and densities, regional expression of neurons, the
// gene-major store, layers, anndata < 0.7 compound dataframes, convert round trips, hidden
// sub-regions as ground truth, bad inputs (NaN positions skipped and counted, missing columns
// named, truncated files), and the neighbourhood cap.
#include "core/AnnDataResults.h"
#include "core/Atlas.h"
#include "core/CellTable.h"
#include "core/ConvertCells.h"
#include "core/Error.h"
#include "core/GeneStore.h"
#include "core/Gzip.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/Neighborhood.h"
#include "core/SyntheticBrain.h"
#include "tests/AnnDataFixtures.h"
#include "tests/TestPaths.h"

#include <QDir>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <fstream>
#include <functional>
#include <hdf5.h>
#include <limits>
#include <random>
#include <set>
#include <tuple>

using namespace atlascope;

class TestCellData : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::unique_ptr<Atlas> atlas_;
  QString path(const char* n) { return dir_.filePath(n); }

private slots:
  void initTestCase() { atlas_ = std::make_unique<Atlas>(Atlas::load(bundledAtlasPaths())); }

  void generateAndReadBack() {
    SyntheticBrainOptions o;
    o.maxCells = 20000;
    o.genes = 30;
    o.cellTypes = 20;
    o.hiddenSubregions = 2;
    o.seed = 7;
    const auto s = generateSyntheticBrain(*atlas_, o, path("a.h5ad").toStdString());
    QCOMPARE(s.cells, std::int64_t(20000));
    QCOMPARE(s.hiddenRegions.size(), std::size_t(2));
    const CellTable t = readCellTable(path("a.h5ad").toStdString());
    QCOMPARE(t.size(), std::int64_t(20000));
    QCOMPARE(t.genes.size(), std::size_t(30));
    QCOMPARE(t.types.names.size(), std::size_t(20));
    QCOMPARE(t.types.colours.size(), std::size_t(20));
    QVERIFY(t.hasCcf());
    QCOMPARE(t.skippedCells, std::int64_t(0));
    // Every cell lies inside the brain, in its region, and in-section x/y are CCF ML/DV.
    for (std::int64_t i = 0; i < t.size(); i += 97) {
      const auto si = atlas_->structureAtUm(t.ccfAp[static_cast<std::size_t>(i)], t.ccfDv[static_cast<std::size_t>(i)],
                                            t.ccfMl[static_cast<std::size_t>(i)]);
      QVERIFY(si.has_value());
      QCOMPARE(t.x[static_cast<std::size_t>(i)], t.ccfMl[static_cast<std::size_t>(i)]);
      QCOMPARE(t.y[static_cast<std::size_t>(i)], t.ccfDv[static_cast<std::size_t>(i)]);
    }
    Hdf5File f(path("a.h5ad").toStdString());
    QCOMPARE(f.readStringAttribute("/", "encoding-type"), std::string("anndata"));
    QCOMPARE(f.readStringAttribute("/obs/subclass", "encoding-type"), std::string("categorical"));
    QCOMPARE(f.shape("/X"), (std::vector<std::int64_t>{20000, 30}));
    // Expression is log2(count + 1): non-negative, integers' logs.
    ExpressionSource x(path("a.h5ad").toStdString());
    std::vector<float> rows(10 * 30);
    x.readRows(100, 10, rows.data());
    for (float v : rows) {
      QVERIFY(v >= 0);
      const double count = std::exp2(v) - 1;
      QVERIFY(std::abs(count - std::round(count)) < 1e-3);
    }
    // Hidden sub-regions: both parts of each split region are present, only in that region.
    const auto hidden = f.readInt64("/obs/hidden_subregion");
    const auto region = f.readInt64("/obs/ccf_structure_id");
    std::set<std::int64_t> parts;
    for (std::size_t i = 0; i < hidden.data.size(); ++i)
      if (hidden.data[i] != 0) {
        parts.insert(hidden.data[i]);
        const std::string acr =
            atlas_->structures()[*atlas_->structures().indexOf(static_cast<StructureId>(region.data[i]))].acronym;
        QCOMPARE(acr, s.hiddenRegions[static_cast<std::size_t>((hidden.data[i] - 1) / 2)]);
      }
    QVERIFY(parts.size() >= 2);
  }

  void deterministicAndDense() {
    SyntheticBrainOptions o;
    o.sections = 1;
    o.genes = 5;
    o.cellTypes = 10;
    o.seed = 3;
    const auto a = generateSyntheticBrain(*atlas_, o, path("d1.h5ad").toStdString());
    const auto b = generateSyntheticBrain(*atlas_, o, path("d2.h5ad").toStdString());
    QCOMPARE(a.cells, b.cells);
    Hdf5File f1(path("d1.h5ad").toStdString()), f2(path("d2.h5ad").toStdString());
    QCOMPARE(f1.readFloat("/X").data, f2.readFloat("/X").data);
    QCOMPARE(f1.readFloat("/obsm/spatial").data, f2.readFloat("/obsm/spatial").data);
    o.seed = 4;
    generateSyntheticBrain(*atlas_, o, path("d3.h5ad").toStdString());
    Hdf5File f3(path("d3.h5ad").toStdString());
    QVERIFY(f1.readFloat("/obsm/spatial").data != f3.readFloat("/obsm/spatial").data);
    // Density: cells per mm^2 of the section's brain area within 5% of the 1250 asked for.
    const CellTable t = readCellTable(path("d1.h5ad").toStdString());
    std::set<std::pair<int, int>> voxels;
    for (std::int64_t i = 0; i < t.size(); ++i)
      voxels.insert({static_cast<int>(t.y[static_cast<std::size_t>(i)] / 25),
                     static_cast<int>(t.x[static_cast<std::size_t>(i)] / 25)});
    const auto slice = static_cast<std::int64_t>(t.ccfAp[0] / 25);
    std::int64_t brain = 0;
    for (std::int64_t ml = 0; ml < 456; ++ml)
      for (std::int64_t dv = 0; dv < 320; ++dv) brain += atlas_->annotation().idAt({slice, dv, ml}) != 0;
    const double density = static_cast<double>(t.size()) / (static_cast<double>(brain) * 0.025 * 0.025);
    qInfo("section of %lld cells, %.0f cells/mm^2", static_cast<long long>(t.size()), density);
    QVERIFY(std::abs(density - 1250) / 1250 < 0.05);
  }

  // Neurons of one type differ in expression between regions (the regional programme a model can
  // read and a cell-type census cannot); glia do not.
  void neuronExpressionDependsOnRegion() {
    SyntheticBrainOptions o;
    o.sections = 2;
    o.genes = 40;
    o.cellTypes = 10;
    generateSyntheticBrain(*atlas_, o, path("e.h5ad").toStdString());
    Hdf5File f(path("e.h5ad").toStdString());
    const auto types = f.readInt64("/obs/subclass/codes");
    const auto region = f.readInt64("/obs/ccf_structure_id");
    const auto x = f.readFloat("/X");
    // Mean log expression per (type, region) over groups of >= 300 cells.
    std::map<std::pair<std::int64_t, std::int64_t>, std::pair<int, std::vector<double>>> sums;
    for (std::size_t i = 0; i < types.data.size(); ++i) {
      auto& [n, s] = sums[{types.data[i], region.data[i]}];
      s.resize(40);
      ++n;
      for (int g = 0; g < 40; ++g) s[static_cast<std::size_t>(g)] += x.data[i * 40 + static_cast<std::size_t>(g)];
    }
    // For each type: the mean over genes of |mean log expression difference| between its two
    // largest regions (-1 when it has fewer than two groups of 300 cells).
    auto regionalShift = [&](std::int64_t type) {
      std::vector<std::pair<int, std::vector<double>>> groups;
      for (const auto& [key, v] : sums)
        if (key.first == type && v.first >= 300) groups.push_back(v);
      if (groups.size() < 2) return -1.0;
      std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      double shift = 0;
      for (std::size_t g = 0; g < 40; ++g)
        shift += std::abs(groups[0].second[g] / groups[0].first - groups[1].second[g] / groups[1].first);
      return shift / 40;
    };
    const double astro = regionalShift(0);
    QVERIFY(astro >= 0);
    double neurons = 0;
    int neuronTypes = 0;
    for (std::int64_t t = 6; t < 10; ++t) {
      const double s = regionalShift(t);
      if (s < 0) continue;
      qInfo("type %lld: mean |shift| %.3f between its two largest regions (astrocytes %.3f)", static_cast<long long>(t),
            s, astro);
      neurons += s;
      ++neuronTypes;
    }
    QVERIFY(neuronTypes >= 2);
    QVERIFY2(neurons / neuronTypes > 2 * astro,
             "neurons should differ between regions more than glia (sampling noise)");
  }

  // The gene-major store: each gene equals the row-wise read, a second open reuses the copy, a
  // changed dataset gets a new one.
  void geneStoreMatchesRows() {
    SyntheticBrainOptions o;
    o.maxCells = 70000; // more than one 65,536-cell chunk
    o.genes = 9;
    o.cellTypes = 10;
    const std::string data = path("store.h5ad").toStdString(), cache = path("cache").toStdString();
    generateSyntheticBrain(*atlas_, o, data);
    const GeneStore s = GeneStore::openOrBuild(data, {}, cache);
    QVERIFY(s.built());
    QCOMPARE(s.cells(), std::int64_t(70000));
    QCOMPARE(s.genes(), std::int64_t(9));
    const ExpressionSource x(data);
    for (std::int64_t g : {0, 4, 8}) QCOMPARE(s.readGene(g), x.readGene(g));
    QVERIFY(!GeneStore::openOrBuild(data, {}, cache).built());
    QVERIFY_THROWS_EXCEPTION(Error, s.readGene(9));
    o.seed = 2; // other values, same shape, same path
    generateSyntheticBrain(*atlas_, o, data);
    const GeneStore again = GeneStore::openOrBuild(data, {}, cache);
    QVERIFY(again.built());
    QCOMPARE(again.readGene(3), ExpressionSource(data).readGene(3));
  }

  // anndata < 0.7: obs, var and obsm as compound datasets (strings variable and fixed length,
  // codes with uns["<column>_categories"], obsm's embedding as an array member), as scanpy 1.3
  // wrote them; written here with the HDF5 C API.
  void legacyCompoundDataframes() {
    const std::string p = path("legacy.h5ad").toStdString();
    {
      const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
      const hid_t vstr = H5Tcopy(H5T_C_S1);
      H5Tset_size(vstr, H5T_VARIABLE);
      const hid_t fstr = H5Tcopy(H5T_C_S1);
      H5Tset_size(fstr, 8);
      const hsize_t n = 4, g = 3;
      struct Obs {
        const char* index;
        char type[8];
        std::int8_t section;
        double depth;
      };
      const hid_t obsType = H5Tcreate(H5T_COMPOUND, sizeof(Obs));
      H5Tinsert(obsType, "index", HOFFSET(Obs, index), vstr);
      H5Tinsert(obsType, "cell_type", HOFFSET(Obs, type), fstr);
      H5Tinsert(obsType, "section", HOFFSET(Obs, section), H5T_NATIVE_INT8);
      H5Tinsert(obsType, "depth", HOFFSET(Obs, depth), H5T_NATIVE_DOUBLE);
      const Obs obs[4] = {
          {"c1", "Astro", 1, 1.5}, {"c2", "L5 IT", 0, 2.5}, {"c3", "Astro", 1, 3.5}, {"c4", "Oligo", 0, 4.5}};
      hid_t space = H5Screate_simple(1, &n, nullptr);
      hid_t ds = H5Dcreate2(f, "/obs", obsType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, obsType, H5S_ALL, H5S_ALL, H5P_DEFAULT, obs);
      H5Dclose(ds);
      struct Obsm {
        double spatial[2];
      };
      const hsize_t two = 2;
      const hid_t pair = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &two);
      const hid_t obsmType = H5Tcreate(H5T_COMPOUND, sizeof(Obsm));
      H5Tinsert(obsmType, "spatial", 0, pair);
      const Obsm obsm[4] = {{{10, 20}}, {{30, 40}}, {{50, 60}}, {{70, 80}}};
      ds = H5Dcreate2(f, "/obsm", obsmType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, obsmType, H5S_ALL, H5S_ALL, H5P_DEFAULT, obsm);
      H5Dclose(ds);
      H5Sclose(space);
      struct Var {
        const char* index;
      };
      const hid_t varType = H5Tcreate(H5T_COMPOUND, sizeof(Var));
      H5Tinsert(varType, "index", 0, vstr);
      const Var var[3] = {{"Gad1"}, {"Slc17a7"}, {"Mbp"}};
      space = H5Screate_simple(1, &g, nullptr);
      ds = H5Dcreate2(f, "/var", varType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, varType, H5S_ALL, H5S_ALL, H5P_DEFAULT, var);
      H5Dclose(ds);
      H5Sclose(space);
      const hid_t uns = H5Gcreate2(f, "/uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      const char* sections[2] = {"S01", "S02"};
      const hsize_t two2 = 2;
      space = H5Screate_simple(1, &two2, nullptr);
      ds = H5Dcreate2(uns, "section_categories", vstr, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, vstr, H5S_ALL, H5S_ALL, H5P_DEFAULT, sections);
      H5Dclose(ds);
      H5Sclose(space);
      H5Gclose(uns);
      const float x[12] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0};
      const hsize_t xs[2] = {n, g};
      space = H5Screate_simple(2, xs, nullptr);
      ds = H5Dcreate2(f, "/X", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
      H5Dclose(ds);
      H5Sclose(space);
      for (hid_t t : {vstr, fstr, obsType, pair, obsmType, varType}) H5Tclose(t);
      H5Fclose(f);
    }
    ColumnOptions c;
    c.type = "cell_type";
    c.section = "section";
    const CellTable t = readCellTable(p, c);
    QCOMPARE(t.size(), std::int64_t(4));
    QCOMPARE(t.x[2], 50.0f);
    QCOMPARE(t.y[3], 80.0f);
    QCOMPARE(t.sectionNames[static_cast<std::size_t>(t.section[0])], std::string("S02"));
    QCOMPARE(t.sectionNames[static_cast<std::size_t>(t.section[1])], std::string("S01"));
    QCOMPARE(t.types.names[static_cast<std::size_t>(t.cellType[1])], std::string("L5 IT"));
    QCOMPARE(t.cellType[0], t.cellType[2]);
    QCOMPARE(t.genes, (std::vector<std::string>{"Gad1", "Slc17a7", "Mbp"}));
    const auto cols = listObsColumns(p);
    QCOMPARE(cols, (std::vector<std::string>{"cell_type", "section", "depth"}));
    const ObsLabels depth = readObsLabels(p, "depth");
    QCOMPARE(depth.names.size(), std::size_t(4));
    QCOMPARE(ExpressionSource(p).readGene(0), (std::vector<float>{1, 0, 4, 0}));
    // Results cannot go into a legacy copy; the error says how to get a current file.
    try {
      writeResultsToCopy(p, path("legacy-results.h5ad").toStdString(), {{"regions", {0, 1, 0, 1}, {"a", "b"}, {}}}, {},
                         {});
      QFAIL("no error for results into an anndata < 0.7 file");
    } catch (const FileError& e) {
      QVERIFY2(QString(e.what()).contains("convert"), e.what());
    }
    QVERIFY(!QFileInfo::exists(path("legacy-results.h5ad")));
  }

  // convert: the legacy file as a current h5ad and as CSV, each read back to the same cells.
  void convertRoundTrips() {
    const std::string legacy = path("legacy.h5ad").toStdString(); // written by legacyCompoundDataframes
    ColumnOptions c;
    c.type = "cell_type";
    c.section = "section";
    const std::string modern = path("converted.h5ad").toStdString(), csv = path("converted.csv").toStdString();
    const ConvertSummary s = convertCells(legacy, c, modern);
    QCOMPARE(s.cells, std::int64_t(4));
    QCOMPARE(s.genes, std::int64_t(3));
    convertCells(legacy, c, csv);
    // The outputs use the standard names: brain_section_label (h5ad) / section (CSV), cell_type.
    ColumnOptions cc;
    cc.type = "cell_type";
    const CellTable a = readCellTable(legacy, c), b = readCellTable(modern, cc), d = readCellTable(csv, cc);
    for (const CellTable* t : {&b, &d}) {
      QCOMPARE(t->x, a.x);
      QCOMPARE(t->y, a.y);
      QCOMPARE(t->genes, a.genes);
      for (std::int64_t i = 0; i < 4; ++i) {
        const auto k = static_cast<std::size_t>(i);
        QCOMPARE(t->sectionNames[static_cast<std::size_t>(t->section[k])],
                 a.sectionNames[static_cast<std::size_t>(a.section[k])]);
        QCOMPARE(t->types.names[static_cast<std::size_t>(t->cellType[k])],
                 a.types.names[static_cast<std::size_t>(a.cellType[k])]);
      }
    }
    QCOMPARE(readCellIds(modern), (std::vector<std::string>{"c1", "c2", "c3", "c4"}));
    QCOMPARE(readCellIds(csv), (std::vector<std::string>{"c1", "c2", "c3", "c4"}));
    for (std::int64_t g = 0; g < 3; ++g) {
      QCOMPARE(ExpressionSource(modern).readGene(g), ExpressionSource(legacy).readGene(g));
      QCOMPARE(ExpressionSource(csv, cc).readGene(g), ExpressionSource(legacy).readGene(g));
    }
    QVERIFY_THROWS_EXCEPTION(Error, convertCells(legacy, c, path("x.parquet").toStdString()));
  }

  // Expression from a layer instead of X (--layer): the layer's values; an unknown layer is an
  // error that lists the file's layers.
  void expressionFromALayer() {
    SyntheticBrainOptions o;
    o.maxCells = 300;
    o.genes = 4;
    o.cellTypes = 8;
    const std::string data = path("layers.h5ad").toStdString(), copy = path("layers2.h5ad").toStdString();
    generateSyntheticBrain(*atlas_, o, data);
    const auto x = Hdf5File(data).readFloat("/X");
    std::vector<float> doubled = x.data;
    for (auto& v : doubled) v *= 2;
    {
      Hdf5Writer w(copy, Hdf5Writer::CopyOf{data});
      w.writeArray("/layers/counts", H5Type::Float32, x.shape, doubled.data());
      w.commit();
    }
    ColumnOptions c;
    c.layer = "counts";
    const auto fromX = ExpressionSource(copy).readGene(1), fromLayer = ExpressionSource(copy, c).readGene(1);
    for (std::size_t i = 0; i < fromX.size(); ++i) QCOMPARE(fromLayer[i], 2 * fromX[i]);
    c.layer = "spliced";
    try {
      ExpressionSource bad(copy, c);
      QFAIL("no error for a missing layer");
    } catch (const FileError& e) {
      QVERIFY2(QString(e.what()).contains("counts"), e.what());
    }
  }

  void compositionDependsOnRegion() {
    SyntheticBrainOptions o;
    o.sections = 2;
    o.genes = 3;
    o.cellTypes = 60;
    generateSyntheticBrain(*atlas_, o, path("c.h5ad").toStdString());
    Hdf5File f(path("c.h5ad").toStdString());
    const auto types = f.readInt64("/obs/subclass/codes");
    const auto region = f.readInt64("/obs/ccf_structure_id");
    // Two different big regions have different type mixes; glia (codes 0..5) are in both.
    std::map<std::int64_t, std::map<std::int64_t, int>> mix;
    for (std::size_t i = 0; i < types.data.size(); ++i) ++mix[region.data[i]][types.data[i]];
    std::vector<std::pair<int, std::int64_t>> bySize;
    for (const auto& [r, m] : mix) {
      int n = 0;
      for (const auto& [t, c] : m) n += c;
      bySize.push_back({n, r});
    }
    std::sort(bySize.rbegin(), bySize.rend());
    const auto& m1 = mix[bySize[0].second];
    const auto& m2 = mix[bySize[1].second];
    QVERIFY(m1.count(0) && m2.count(0));
    std::set<std::int64_t> n1, n2;
    for (const auto& [t, c] : m1)
      if (t >= 6 && c > 20) n1.insert(t);
    for (const auto& [t, c] : m2)
      if (t >= 6 && c > 20) n2.insert(t);
    QVERIFY(n1 != n2);
  }

  void badInputs() {
    // NaN positions are skipped and counted; a missing section column is named.
    {
      Hdf5Writer w(path("nan.h5ad").toStdString());
      w.createGroup("/obs");
      w.createGroup("/obsm");
      const float xy[6] = {1, 2, NAN, 4, 5, INFINITY};
      w.writeArray("/obsm/spatial", H5Type::Float32, {3, 2}, xy);
      const std::int64_t sec[3] = {0, 0, 1};
      w.writeArray("/obs/section", H5Type::Int64, {3}, sec);
      w.commit();
    }
    const CellTable t = readCellTable(path("nan.h5ad").toStdString());
    QCOMPARE(t.size(), std::int64_t(1));
    QCOMPARE(t.skippedCells, std::int64_t(2));
    QCOMPARE(t.fileRow, (std::vector<std::int64_t>{0}));
    {
      Hdf5Writer w(path("nosec.h5ad").toStdString());
      w.createGroup("/obs");
      w.createGroup("/obsm");
      const float xy[2] = {1, 2};
      w.writeArray("/obsm/spatial", H5Type::Float32, {1, 2}, xy);
      w.commit();
    }
    try {
      readCellTable(path("nosec.h5ad").toStdString());
      QFAIL("no error for a missing section column");
    } catch (const FileError& e) {
      QVERIFY2(QString(e.what()).contains("missing required column 'brain_section_label'"), e.what());
    }
    ColumnOptions cols;
    cols.x = "px";
    cols.y = "py";
    QVERIFY_THROWS_EXCEPTION(FileError, readCellTable(path("nan.h5ad").toStdString(), cols));
    // A truncated file.
    const auto bytes = readFileBytes(path("a.h5ad").toStdString());
    {
      std::ofstream f(path("trunc.h5ad").toStdString(), std::ios::binary);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() / 3));
    }
    QVERIFY_THROWS_EXCEPTION(FileError, readCellTable(path("trunc.h5ad").toStdString()));
    QVERIFY_THROWS_EXCEPTION(FileError, readCellTable(path("absent.h5ad").toStdString()));
  }

  void merfishSliceCsv() {
    REQUIRE_SHARED("data/merfish/zhuang_mop_slice1.csv");
    const std::string csv = atlascope::test::sharedFile("data/merfish/zhuang_mop_slice1.csv").toStdString();
    const CellTable t = readCellTable(csv);
    QCOMPARE(t.size(), std::int64_t(2109));
    QCOMPARE(t.genes.size(), std::size_t(254));
    QCOMPARE(t.genes.front(), std::string("1700022I11Rik"));
    QCOMPARE(t.sectionNames.size(), std::size_t(1));
    QVERIFY(t.types.names.empty());
    QCOMPARE(t.cellType.front(), -1);
    QVERIFY(std::abs(t.x[0] - 3891.1488871796f) < 1e-2);
    QVERIFY(std::abs(t.y[0] - 1409.5325244069104f) < 1e-2);
    // The panel file agrees with the columns taken as genes.
    std::ifstream panel(atlascope::test::sharedFile("data/merfish/merfish_254_genes.csv").toStdString());
    std::string line;
    std::getline(panel, line);
    for (std::size_t g = 0; std::getline(panel, line); ++g) QCOMPARE(line.substr(line.find(',') + 1), t.genes[g]);
    ExpressionSource x(csv);
    QCOMPARE(x.genes(), std::int64_t(254));
    std::vector<float> r(254);
    x.readRows(0, 1, r.data());
    QVERIFY(std::abs(r[4] - 2.4463203f) < 1e-6); // Acta2 of the first cell
    // mm units and an explicit mapping.
    ColumnOptions c;
    c.x = "pos_y";
    c.y = "pos_x";
    c.units = "mm";
    c.genes = "Acta2..Alk";
    const CellTable m = readCellTable(csv, c);
    QVERIFY(std::abs(m.x[0] - 1409532.5f) < 1.0f);
    QCOMPARE(m.genes.size(), std::size_t(6));
  }

  // Issue 14: one validation of AnnData before any reader uses it. Each broken file is refused by
  // every reader with one line naming the file, the HDF5 path and the first bad index; the good
  // layouts read the same cells.
  void annDataValidated_data() {
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("fragment");
    using C = test::AnnDataCase;
    QTest::newRow("dense") << int(C::Dense) << QString();
    QTest::newRow("csr") << int(C::Csr) << QString();
    QTest::newRow("csc") << int(C::Csc) << QString();
    QTest::newRow("anndata 0.7") << int(C::Legacy07) << QString();
    QTest::newRow("code past categories")
        << int(C::CodePastCategories) << "'/obs/subclass/codes'[4] = 3, but there are 3 categories";
    QTest::newRow("X 6 x 2^40") << int(C::HugeDenseX) << "'/X' claims 6 x 1099511627776 values, more than the file";
    QTest::newRow("sparse X 6 x 2^40") << int(C::HugeSparseX) << "claims a shape of 6 x 1099511627776";
    QTest::newRow("indptr decreasing") << int(C::IndptrDecreasing)
                                       << "'/X/indptr'[2] = 2 is less than the entry before (4)";
    QTest::newRow("index past columns") << int(C::IndexPastColumns) << "'/X/indices'[3] = 4 is outside the 4 columns";
    QTest::newRow("short obsm") << int(C::ShortObsm) << "'/obsm/spatial' has 5 rows for 6";
  }
  void annDataValidated() {
    QFETCH(int, which);
    QFETCH(QString, fragment);
    const std::string p = path(QTest::currentDataTag()).toStdString() + ".h5ad";
    test::writeAnnData(p, static_cast<test::AnnDataCase>(which));
    const std::vector<std::function<void()>> readers{[&] { readCellTable(p); }, [&] { ExpressionSource x(p); },
                                                     [&] { readObsLabels(p, "subclass"); }, [&] { listObsColumns(p); },
                                                     [&] { convertCells(p, {}, path("converted.csv").toStdString()); }};
    for (const auto& read : readers) {
      QString error;
      try {
        read();
      } catch (const FileError& e) {
        error = QString::fromStdString(e.what());
      }
      if (fragment.isEmpty()) {
        QVERIFY2(error.isEmpty(), qPrintable(error));
        continue;
      }
      QVERIFY2(error.contains(fragment) && error.startsWith(QString::fromStdString(p)) && !error.contains('\n'),
               qPrintable(error));
    }
    if (!fragment.isEmpty()) return;
    // The good layouts: the same six cells (one without a type), the same expression.
    const CellTable t = readCellTable(p);
    QCOMPARE(t.size(), std::int64_t(6));
    QCOMPARE(t.cellType, (std::vector<std::int32_t>{0, 1, 2, 0, -1, 2}));
    QCOMPARE(t.sectionNames, (std::vector<std::string>{"s1", "s2"}));
    ExpressionSource x(p);
    std::vector<float> rows(24);
    x.readRows(0, 6, rows.data());
    QCOMPARE(rows[4 * 5 + 1], 6.0f);
    QCOMPARE(rows[4 * 5 + 2], 0.5f);
  }

  // A categorical column whose codes claim more values than the file can hold (a damaged file, an
  // obs without an index, so that the validation has no length to hold it to): the reader, which
  // reads codes in blocks, refuses the claim before reserving anything (it was a bad_alloc, or
  // minutes of reading fill values).
  void codesClaimingMoreThanTheFile() {
    const std::string p = path("claiming.h5ad").toStdString();
    {
      Hdf5Writer w(p);
      w.setStringAttribute("/", "encoding-type", "anndata");
      w.setStringAttribute("/", "encoding-version", "0.1.0");
      w.createGroup("/obsm");
      w.createGroup("/obs");
      setAnnDataEncoding(w, "/obs", "dataframe");
      w.setStringAttribute("/obs", "_index", "cell_label");
      writeAnnDataCategorical(w, "/obs/brain_section_label", {}, {"s1"});
      w.remove("/obs/brain_section_label/codes");
      const std::vector<float> xy(200, 1.f);
      w.writeArray("/obsm/spatial", H5Type::Float32, {100, 2}, xy.data());
      w.commit();
    }
    for (const hsize_t claimed : {hsize_t(1) << 38, hsize_t(4000000000)}) {
      const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
      if (H5Lexists(f, "/obs/brain_section_label/codes", H5P_DEFAULT) > 0)
        H5Ldelete(f, "/obs/brain_section_label/codes", H5P_DEFAULT);
      const hsize_t chunk = 1 << 16;
      const hid_t space = H5Screate_simple(1, &claimed, nullptr), plist = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(plist, 1, &chunk);
      const hid_t ds =
          H5Dcreate2(f, "/obs/brain_section_label/codes", H5T_NATIVE_INT8, space, H5P_DEFAULT, plist, H5P_DEFAULT);
      QVERIFY(ds >= 0);
      H5Dclose(ds);
      H5Pclose(plist);
      H5Sclose(space);
      H5Fclose(f);
      QString error;
      try {
        readCellTable(p);
      } catch (const FileError& e) {
        error = QString::fromStdString(e.what());
      }
      QVERIFY2(error.contains("'/obs/brain_section_label/codes' claims") && error.contains("more than the file"),
               qPrintable(error));
    }
  }

  void csvBadInputs() {
    auto write = [&](const char* name, const std::string& text) {
      std::ofstream f(path(name).toStdString());
      f << text;
      return path(name).toStdString();
    };
    auto error = [](const std::string& p) {
      try {
        readCellTable(p);
      } catch (const FileError& e) {
        return QString::fromStdString(e.what());
      }
      return QString();
    };
    QVERIFY(error(write("text.csv", "cell_id,x,y,g1\na,1,2,3\nb,abc,2,3\n"))
                .contains("line 3: column 'x' (x) holds 'abc', not a number"));
    QVERIFY(error(write("dup.csv", "cell_id,x,y,g1\na,1,2,3\na,1,2,3\n")).contains("duplicate cell id 'a'"));
    // A 1 MB field is quoted, not echoed: one line, its first 100 characters and its length.
    const std::string huge(1 << 20, 'z');
    const QString hugeError = error(write("huge.csv", "cell_id,x,y,g1\na,1,2,3\nb," + huge + ",2,3\n"));
    QVERIFY2(hugeError.contains("(1048576 characters, cut)") && hugeError.size() < 400,
             qPrintable(hugeError.left(400)));
    QVERIFY(error(write("nox.csv", "cell_id,u,v,g1\na,1,2,3\n")).contains("missing required column 'x'"));
    const CellTable t = readCellTable(
        write("nan.tsv", "cell_id\tx\ty\tsection\tg1\na\t1\t2\ts1\t3\nb\tnan\t2\ts1\t3\nc\t1\tinf\ts2\t4\n"));
    QCOMPARE(t.size(), std::int64_t(1));
    QCOMPARE(t.skippedCells, std::int64_t(2));
    QCOMPARE(t.genes, (std::vector<std::string>{"g1"}));
  }

  void abcLayoutJoinedByCellLabel() {
    // A miniature ABC download: the metadata view (mm, taxonomy with colours, a quoted comma), the
    // CCF coordinates (fewer rows), the expression .h5ad (rows in another order, one cell fewer).
    QDir root(path("abc"));
    QVERIFY(root.mkpath("metadata/MERFISH/20241115/views") && root.mkpath("metadata/MERFISH-CCF/20231215") &&
            root.mkpath("expression_matrices/MERFISH/20230830"));
    const std::string dir = root.absolutePath().toStdString();
    {
      std::ofstream m(dir + "/metadata/MERFISH/20241115/views/cell_metadata_with_cluster_annotation.csv");
      m << "cell_label,brain_section_label,x,y,z,subclass,subclass_color,donor_label\n"
           "c1,S.1,1.0,2.0,5.0,001 IT Glut,#FF0000,\"a,b\"\n"
           "c2,S.1,1.5,2.5,5.0,002 Astro,#00ff00,d\n"
           "c3,S.2,NaN,2.0,4.8,001 IT Glut,#FF0000,d\n"
           "c9,S.2,1.0,1.0,4.8,NA,#0000FF,d\n"
           "c4,S.2,2.0,3.0,4.8,NA,#0000FF,d\n";
      std::ofstream c(dir + "/metadata/MERFISH-CCF/20231215/ccf_coordinates.csv");
      c << "cell_label,x,y,z,parcellation_index\nc1,6.5,3.25,5.0,12\nc4,7.0,4.0,2.0,7\n";
    }
    {
      Hdf5Writer w(dir + "/expression_matrices/MERFISH/20230830/C57BL6J-638850-log2.h5ad");
      w.createGroup("/obs");
      w.createGroup("/var");
      w.setStringAttribute("/obs", "_index", "cell_label");
      w.writeStrings("/obs/cell_label", {"c4", "c3", "c2", "c1"});
      w.setStringAttribute("/var", "_index", "gene_identifier");
      w.writeStrings("/var/gene_identifier", {"ENSMUSG1", "ENSMUSG2"});
      w.writeStrings("/var/gene_symbol", {"Slc17a7", "Gfap"});
      const float x[8] = {40, 41, 30, 31, 20, 21, 10, 11};
      w.writeArray("/X", H5Type::Float32, {4, 2}, x);
      w.commit();
    }
    const CellTable t = readCellTable(dir);
    QCOMPARE(t.size(), std::int64_t(3)); // c1, c2, c4: c9 is not in the matrix, c3 has no x
    QCOMPARE(t.skippedCells, std::int64_t(2));
    QVERIFY(QString::fromStdString(t.skippedReason).contains("1 not in the expression matrix"));
    QCOMPARE(t.fileRow, (std::vector<std::int64_t>{3, 2, 0}));
    QCOMPARE(t.x[0], 1000.0f);
    QCOMPARE(t.y[2], 3000.0f);
    QCOMPARE(t.sectionNames, (std::vector<std::string>{"S.1", "S.2"}));
    QCOMPARE(t.types.names, (std::vector<std::string>{"001 IT Glut", "002 Astro", "NA"}));
    QCOMPARE(t.types.colours[1], (std::array<std::uint8_t, 3>{0, 255, 0}));
    QCOMPARE(t.cellType, (std::vector<std::int32_t>{0, 1, 2}));
    QCOMPARE(t.genes, (std::vector<std::string>{"Slc17a7", "Gfap"}));
    QVERIFY(t.hasCcf());
    QCOMPARE(t.ccfAp[0], 6500.0f);
    QVERIFY(std::isnan(t.ccfAp[1])); // c2 has no CCF row
    QCOMPARE(t.ccfMl[2], 2000.0f);
    // Expression rows through the same folder, and metadata columns by expression row.
    ExpressionSource x(dir);
    std::vector<float> row(2);
    x.readRows(t.fileRow[0], 1, row.data());
    QCOMPARE(row, (std::vector<float>{10, 11}));
    const ObsLabels donors = readObsLabels(dir, "donor_label");
    QCOMPARE(donors.names[static_cast<std::size_t>(donors.codes[3])], std::string("a,b"));
    const std::vector<std::string> columns = listObsColumns(dir);
    QVERIFY(std::find(columns.begin(), columns.end(), "subclass") != columns.end());
    // A folder without metadata is a clear error.
    QVERIFY(QDir(path("empty")).mkpath("."));
    try {
      readCellTable(path("empty").toStdString());
      QFAIL("no error for a folder without ABC metadata");
    } catch (const FileError& e) {
      QVERIFY2(QString(e.what()).contains("cell_metadata"), e.what());
    }
  }

  void legacyAnnData07Categoricals() {
    // anndata 0.7: categorical columns as integer codes, their names under obs/__categories.
    const std::string p = path("legacy07.h5ad").toStdString();
    {
      Hdf5Writer w(p);
      w.createGroup("/obs");
      w.createGroup("/obs/__categories");
      w.createGroup("/obsm");
      w.setStringAttribute("/obs", "_index", "cell_label");
      w.writeStrings("/obs/cell_label", {"a", "b", "c", "d"});
      const std::int8_t sec[4] = {0, 0, 1, 1}, type[4] = {1, 0, 1, -1};
      w.writeArray("/obs/brain_section_label", H5Type::Int8, {4}, sec);
      w.writeStrings("/obs/__categories/brain_section_label", {"S1", "S2"});
      w.writeArray("/obs/subclass", H5Type::Int8, {4}, type);
      w.writeStrings("/obs/__categories/subclass", {"Astro", "L2/3 IT"});
      const float xy[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      w.writeArray("/obsm/spatial", H5Type::Float32, {4, 2}, xy);
      w.commit();
    }
    const CellTable t = readCellTable(p);
    QCOMPARE(t.size(), std::int64_t(4));
    QCOMPARE(t.sectionNames, (std::vector<std::string>{"S1", "S2"}));
    QCOMPARE(t.types.names, (std::vector<std::string>{"Astro", "L2/3 IT"}));
    QCOMPARE(t.cellType, (std::vector<std::int32_t>{1, 0, 1, -1}));
    const ObsLabels l = readObsLabels(p, "subclass");
    QCOMPARE(l.names[static_cast<std::size_t>(l.codes[0])], std::string("L2/3 IT"));
  }

  void sparseX() {
    // The same 4 x 5 matrix as dense, CSR and CSC.
    const float dense[20] = {0, 1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0, 5, 6};
    std::vector<float> data, cdata;
    std::vector<std::int64_t> indices, indptr{0}, cindices, cindptr{0};
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 5; ++c)
        if (dense[r * 5 + c] != 0) {
          data.push_back(dense[r * 5 + c]);
          indices.push_back(c);
        }
      indptr.push_back(static_cast<std::int64_t>(data.size()));
    }
    for (int c = 0; c < 5; ++c) {
      for (int r = 0; r < 4; ++r)
        if (dense[r * 5 + c] != 0) {
          cdata.push_back(dense[r * 5 + c]);
          cindices.push_back(r);
        }
      cindptr.push_back(static_cast<std::int64_t>(cdata.size()));
    }
    for (const char* fmt : {"csr", "csc"}) {
      const std::string p = path(fmt).toStdString() + ".h5ad";
      {
        Hdf5Writer w(p);
        w.createGroup("/X");
        const bool csr = std::string(fmt) == "csr";
        w.writeArray("/X/data", H5Type::Float32, {static_cast<std::int64_t>(data.size())}, (csr ? data : cdata).data());
        w.writeArray("/X/indices", H5Type::Int64, {static_cast<std::int64_t>(indices.size())},
                     (csr ? indices : cindices).data());
        w.writeArray("/X/indptr", H5Type::Int64, {static_cast<std::int64_t>((csr ? indptr : cindptr).size())},
                     (csr ? indptr : cindptr).data());
        w.setStringAttribute("/X", "encoding-type", std::string(fmt) + "_matrix");
        w.setInt64ArrayAttribute("/X", "shape", {4, 5});
        w.commit();
      }
      ExpressionSource x(p);
      QCOMPARE(x.layout(), std::string(fmt));
      QCOMPARE(x.cells(), std::int64_t(4));
      QCOMPARE(x.genes(), std::int64_t(5));
      std::vector<float> rows(10);
      x.readRows(1, 2, rows.data());
      for (int k = 0; k < 10; ++k) QCOMPARE(rows[static_cast<std::size_t>(k)], dense[5 + k]);
    }
    // A shape that disagrees with indptr.
    {
      Hdf5Writer w(path("badshape.h5ad").toStdString());
      w.createGroup("/X");
      w.writeArray("/X/data", H5Type::Float32, {static_cast<std::int64_t>(data.size())}, data.data());
      w.writeArray("/X/indices", H5Type::Int64, {static_cast<std::int64_t>(indices.size())}, indices.data());
      w.writeArray("/X/indptr", H5Type::Int64, {static_cast<std::int64_t>(indptr.size())}, indptr.data());
      w.setStringAttribute("/X", "encoding-type", "csr_matrix");
      w.setInt64ArrayAttribute("/X", "shape", {7, 5});
      w.commit();
    }
    try {
      ExpressionSource bad(path("badshape.h5ad").toStdString());
      QFAIL("no error for a shape that disagrees with indptr");
    } catch (const FileError& e) {
      QVERIFY(QString(e.what()).contains("disagrees"));
    }
  }

  void resultsIntoACopy() {
    // Labels and an embedding written into a copy of a generated file; the original is untouched.
    SyntheticBrainOptions o;
    o.maxCells = 300;
    o.genes = 4;
    o.cellTypes = 8;
    const std::string src = path("orig.h5ad").toStdString(), dst = path("with-results.h5ad").toStdString();
    generateSyntheticBrain(*atlas_, o, src);
    const auto before = readFileBytes(src);
    CategoricalColumn regions{"regions_k3", {}, {"R0", "R1", "R2"}, {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}}};
    for (int i = 0; i < 300; ++i) regions.codes.push_back(i == 7 ? -1 : i % 3);
    ObsmArray emb{"X_test", 2, {}};
    for (int i = 0; i < 600; ++i) emb.values.push_back(static_cast<float>(i));
    writeResultsToCopy(src, dst, {regions}, {emb});
    QCOMPARE(readFileBytes(src), before);
    Hdf5File f(dst);
    QCOMPARE(f.readStringAttribute("/obs/regions_k3", "encoding-type"), std::string("categorical"));
    QCOMPARE(f.readStrings("/obs/regions_k3/categories"), regions.categories);
    const auto codes = f.readInt64("/obs/regions_k3/codes");
    QCOMPARE(codes.data[7], std::int64_t(-1));
    QCOMPARE(codes.data[8], std::int64_t(2));
    QCOMPARE(f.readStrings("/uns/regions_k3_colors"), (std::vector<std::string>{"#ff0000", "#00ff00", "#0000ff"}));
    QCOMPARE(f.shape("/obsm/X_test"), (std::vector<std::int64_t>{300, 2}));
    // The copy still reads as cells, with the new column among obs.
    QCOMPARE(readCellTable(dst).size(), std::int64_t(300));
    // Wrong lengths and writing over the source are refused.
    regions.codes.pop_back();
    QVERIFY_THROWS_EXCEPTION(Error, writeResultsToCopy(src, path("x.h5ad").toStdString(), {regions}, {}));
    QVERIFY_THROWS_EXCEPTION(FileError, writeResultsToCopy(src, src, {}, {emb}));
    // anndata (what scanpy uses) reads the result as it is, when it is installed.
    if (QFileInfo::exists("/usr/bin/python3")) {
      QProcess py;
      py.start("/usr/bin/python3",
               {"-c",
                QString("import anndata, sys\n"
                        "a = anndata.read_h5ad(sys.argv[1])\n"
                        "c = a.obs['regions_k3']\n"
                        "assert str(c.dtype) == 'category', c.dtype\n"
                        "assert list(c.cat.categories) == ['R0', 'R1', 'R2']\n"
                        "assert c.isna().sum() == 1 and c.iloc[8] == 'R2'\n"
                        "assert list(a.uns['regions_k3_colors']) == ['#ff0000', '#00ff00', '#0000ff']\n"
                        "assert a.obsm['X_test'].shape == (300, 2) and a.obsm['X_test'][1, 1] == 3\n"
                        "assert a.X.shape == (300, 4) and str(a.obs['subclass'].dtype) == 'category'\n"
                        "print('anndata ok')"),
                QString::fromStdString(dst)});
      QVERIFY(py.waitForFinished(120000));
      const QString out = QString::fromUtf8(py.readAllStandardOutput()),
                    err = QString::fromUtf8(py.readAllStandardError());
      if (err.contains("No module named 'anndata'"))
        QSKIP("python3-anndata not installed: the anndata round trip is skipped");
      QVERIFY2(py.exitCode() == 0 && out.contains("anndata ok"), qPrintable(out + err));
    }
    // Labels as CSV.
    CategoricalColumn full{"regions_k3", {0, 1, -1}, {"R0", "R,1", "R2"}, {}};
    writeLabelsCsv(path("labels.csv").toStdString(), {"c0", "c1", "c2"}, {full});
    std::ifstream csv(path("labels.csv").toStdString());
    std::string all((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
    QCOMPARE(all, std::string("cell,regions_k3\nc0,R0\nc1,\"R,1\"\nc2,\n"));
  }

  void interruptedWriteLeavesNothing() {
    {
      Hdf5Writer w(path("never.h5").toStdString());
      w.createGroup("/g");
      // destroyed without commit()
    }
    QVERIFY(!QFileInfo::exists(path("never.h5")));
    for (const QString& f : QDir(dir_.path()).entryList(QDir::Files | QDir::Hidden))
      QVERIFY2(!f.contains("never"), qPrintable(f));
  }

  void neighborhoodCap() {
    // 400 cells on a 20x20 grid of 1 unit: every inner cell sees far more than 50 neighbours.
    std::vector<float> x, y;
    std::vector<std::int64_t> s;
    for (int i = 0; i < 20; ++i)
      for (int j = 0; j < 20; ++j) {
        x.push_back(static_cast<float>(i) + 0.3f);
        y.push_back(static_cast<float>(j) + 0.3f);
        s.push_back(0);
      }
    NeighborhoodOptions o;
    o.cap = 50;
    NeighborhoodIndex capped(x.data(), y.data(), s.data(), 400, o), full(x.data(), y.data(), s.data(), 400);
    const auto a = capped.compute(0, 400), b = full.compute(0, 400);
    for (std::int64_t i = 0; i < 400; ++i) {
      QCOMPARE(a.size(i), std::min<std::int64_t>(50, b.size(i)));
      // A subset of the full list, sorted, without the cell itself.
      const auto* fb = &b.indices[static_cast<std::size_t>(b.indptr[static_cast<std::size_t>(i)])];
      const auto* fe = fb + b.size(i);
      for (std::int64_t k = a.indptr[static_cast<std::size_t>(i)]; k < a.indptr[static_cast<std::size_t>(i) + 1]; ++k) {
        QVERIFY(std::binary_search(fb, fe, a.indices[static_cast<std::size_t>(k)]));
        QVERIFY(a.indices[static_cast<std::size_t>(k)] != i);
      }
    }
    // Seeded: the same seed gives the same subset.
    NeighborhoodIndex again(x.data(), y.data(), s.data(), 400, o);
    QCOMPARE(again.compute(0, 400).indices, a.indices);
  }

  void neighborhoodIndexIsTheSameOnAnyThreads() {
    // The index is built on several threads, each over a range of cells: the neighbourhoods must be
    // those of a one-thread build, with sections in runs that straddle the ranges, a stretch of
    // cells whose sections come interleaved (every range then touches every bin), a sparse section
    // (hashed bins) and a section that comes back after others; and a non-finite position is
    // reported as the first such cell, as one pass finds it.
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(0.0f, 400.0f), far(0.0f, 1.0e5f);
    std::vector<float> x, y;
    std::vector<std::int64_t> s;
    const std::int64_t n = 300000;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t section = i < 100000 ? 4 : i < 120000 ? (i % 3) : i < 125000 ? 9 : i < 260000 ? 5 : 4;
      const bool sparse = section == 9;
      x.push_back(sparse ? far(rng) : u(rng) + (section == 5 ? -1000.0f : 0.0f));
      y.push_back(sparse ? far(rng) : u(rng));
      s.push_back(section);
    }
    auto lists = [&](int threads) {
      NeighborhoodOptions o;
      o.buildThreads = threads;
      return NeighborhoodIndex(x.data(), y.data(), s.data(), n, o).compute(0, n, 2);
    };
    const NeighborhoodList one = lists(1);
    QVERIFY(one.indices.size() > static_cast<std::size_t>(n)); // neighbours to compare
    for (const int threads : {2, 3, 4}) {
      const NeighborhoodList many = lists(threads);
      QCOMPARE(many.indptr, one.indptr);
      QCOMPARE(many.indices, one.indices);
    }
    x[200000] = std::nanf("");
    y[150000] = std::numeric_limits<float>::infinity();
    for (const int threads : {1, 4}) {
      NeighborhoodOptions o;
      o.buildThreads = threads;
      try {
        NeighborhoodIndex index(x.data(), y.data(), s.data(), n, o);
        QFAIL("a non-finite position was accepted");
      } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("cell 150000 ") != std::string::npos, e.what());
      }
    }
  }

  void neighborhoodsEqualTheDefinition() {
    // Every cell's neighbours as the definition states them (same section, inside the window
    // [rint(c - P/2), rint(c - P/2) + P] on both axes, ends included), checked against every pair:
    // three sections whose cells come interleaved and in runs, negative coordinates, cells on
    // window edges (integer and half-integer positions); in section 7 cells ~1e7 units away (in
    // the edge bins of its grid), and section 3 so sparse that its bins are hashed.
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-60.0f, 60.0f), wide(0.0f, 200.0f);
    std::vector<float> x, y;
    std::vector<std::int64_t> s;
    const std::int64_t sections[3] = {7, -2, 1000000000000LL};
    for (int i = 0; i < 1500; ++i) {
      const bool edge = i % 5 == 0;
      x.push_back(edge ? std::round(u(rng)) + (i % 10 == 0 ? 0.5f : 0.0f) : u(rng));
      y.push_back(edge ? std::round(u(rng)) : u(rng));
      s.push_back(sections[i < 600 ? i % 3 : (i / 300) % 3]);
    }
    for (int k = 0; k < 4; ++k) {
      x.push_back(k % 2 ? 1.0e7f : -1.0e7f);
      y.push_back(k < 2 ? 3.0f : 1.0e7f);
      s.push_back(7);
    }
    x.push_back(1.0e7f + 8.0f); // a neighbour of the outlier at (1e7, 1e7)
    y.push_back(1.0e7f);
    s.push_back(7);
    x.push_back(3.0f); // and one below
    y.push_back(-1.0e7f);
    s.push_back(7);
    for (int k = 0; k < 60; ++k) { // in pairs 5 units apart, 250 units from the next pair
      const float px = 250.0f * static_cast<float>(k % 8) + wide(rng),
                  py = 250.0f * static_cast<float>(k / 8) + wide(rng);
      for (const float d : {0.0f, 5.0f}) {
        x.push_back(px + d);
        y.push_back(py);
        s.push_back(3);
      }
    }
    const auto n = static_cast<std::int64_t>(x.size());
    auto check = [&](float patch) {
      NeighborhoodOptions o;
      o.patchSize = patch;
      NeighborhoodIndex index(x.data(), y.data(), s.data(), n, o);
      const NeighborhoodList got = index.compute(0, n, 1);
      std::int64_t pairs = 0, wrong = -1;
      for (std::int64_t i = 0; i < n; ++i) {
        float x0, x1, y0, y1;
        windowBounds(x[static_cast<std::size_t>(i)], patch, x0, x1);
        windowBounds(y[static_cast<std::size_t>(i)], patch, y0, y1);
        std::vector<std::int32_t> want;
        for (std::int64_t j = 0; j < n; ++j) {
          const auto J = static_cast<std::size_t>(j);
          if (j != i && s[J] == s[static_cast<std::size_t>(i)] && x[J] >= x0 && x[J] <= x1 && y[J] >= y0 && y[J] <= y1)
            want.push_back(static_cast<std::int32_t>(j));
        }
        const auto* b = got.indices.data() + got.indptr[static_cast<std::size_t>(i)];
        if (wrong < 0 && std::vector<std::int32_t>(b, b + got.size(i)) != want) wrong = i;
        pairs += static_cast<std::int64_t>(want.size());
      }
      return std::make_tuple(got, pairs, wrong);
    };
    const auto [got, pairs, wrong] = check(17.0f);
    QCOMPARE(wrong, std::int64_t{-1});
    QVERIFY(pairs > 10000);                    // dense enough to mean something
    QCOMPARE(got.size(1504), std::int64_t{1}); // the outlier's neighbour found in the edge bins
    for (std::int64_t i = 1506; i < n; ++i)    // the sparse section's pairs found each other
      QCOMPARE(got.size(i), std::int64_t{1});
    QCOMPARE(std::get<2>(check(0.5f)), std::int64_t{-1}); // a cell can lie outside its own window
    QCOMPARE(std::get<2>(check(1.0e6f)), std::int64_t{-1});
  }
};

QTEST_APPLESS_MAIN(TestCellData)
#include "test_cell_data.moc"
