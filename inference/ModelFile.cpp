#include "inference/ModelFile.h"

#include "core/Error.h"
#include "core/Hdf5File.h"
#include "core/Hdf5Writer.h"
#include "core/JsonNumber.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace atlascope::inference {

namespace {
constexpr const char* kFormat = "atlascope-celltransformer";

std::string listSome(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 10) s += ", ... (" + std::to_string(names.size() - 10) + " more)";
  return s;
}

bool endsWith(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
} // namespace

ModelFile loadModelFile(const std::string& path, int heads) {
  ModelFile m;
  m.path = path;
  if (endsWith(path, ".pth") || endsWith(path, ".pt")) {
    StateDict w = loadPth(path);
    const ModelConfig cfg = inferConfig(w, heads, path);
    m.model = std::make_unique<CellTransformer>(std::move(w), cfg, path);
    return m;
  }
  Hdf5File f(path);
  if (!f.hasAttribute("/", "format") || f.readStringAttribute("/", "format") != kFormat)
    throw FileError(path, "not a CellTransformer model (expected a reference .pth or an Atlascope checkpoint .h5)");
  ModelConfig cfg;
  try { // the JSON library's text reaches the user wrapped with what was being read
    const auto cfgJson = nlohmann::json::parse(f.readStringAttribute("/", "config"));
    // Sizes, range-checked (a float such as 1e300 cast to int is undefined; 0 heads divides by 0).
    auto size = [&](const char* key, long long lo, long long hi) {
      return static_cast<int>(jsonIntegerOrThrow(cfgJson.at(key), lo, hi, path, std::string("config ") + key));
    };
    cfg.embedDim = size("embed_dim", 1, 1 << 16);
    cfg.heads = size("heads", 1, 1024);
    cfg.encoderLayers = size("encoder_layers", 1, 1024);
    cfg.decoderLayers = size("decoder_layers", 0, 1024);
    cfg.genes = size("genes", 1, 1 << 20);
    cfg.cellTypes = size("cell_types", 1, 1 << 24);
    cfg.feedForward = size("feed_forward", 1, 1 << 20);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("reading the checkpoint's 'config' attribute (JSON): ") + e.what());
  }
  m.genes = f.readStrings("/genes");
  m.cellTypes = f.readStrings("/cell_types");
  if (f.exists("/training_log")) {
    const auto log = f.readStrings("/training_log");
    if (!log.empty()) m.trainingLog = log[0];
  }
  if (static_cast<int>(m.genes.size()) != cfg.genes)
    throw FileError(path, "the gene panel does not match the model's G");
  if (static_cast<int>(m.cellTypes.size()) > cfg.cellTypes) throw FileError(path, "more cell types than the model's C");
  m.model = std::make_unique<CellTransformer>(loadHdf5Group(path, "/weights"), cfg, path);
  return m;
}

void saveCheckpoint(const CellTransformer& model, const std::vector<std::string>& genes,
                    const std::vector<std::string>& types, const std::string& path, const std::string& trainingLog) {
  const ModelConfig& c = model.config();
  if (static_cast<int>(genes.size()) != c.genes)
    throw Error("saveCheckpoint: " + std::to_string(genes.size()) + " gene names for G = " + std::to_string(c.genes));
  Hdf5Writer out(path);
  out.setStringAttribute("/", "format", kFormat);
  out.setStringAttribute("/", "format-version", "1");
  out.setStringAttribute("/", "config",
                         nlohmann::json{{"embed_dim", c.embedDim},
                                        {"heads", c.heads},
                                        {"encoder_layers", c.encoderLayers},
                                        {"decoder_layers", c.decoderLayers},
                                        {"genes", c.genes},
                                        {"cell_types", c.cellTypes},
                                        {"feed_forward", c.feedForward}}
                             .dump());
  out.writeStrings("/genes", genes);
  out.writeStrings("/cell_types", types);
  if (!trainingLog.empty()) out.writeStrings("/training_log", {trainingLog});
  out.createGroup("/weights");
  for (const auto& [name, t] : model.parameters()) {
    const torch::Tensor c32 = t.to(torch::kCPU, torch::kFloat32).contiguous();
    out.writeArray("/weights/" + name, H5Type::Float32, c32.sizes().vec(), c32.data_ptr<float>());
  }
  out.commit();
}

PanelMapping mapPanel(const ModelFile& m, const CellTable& cells, bool reorderGenes) {
  PanelMapping map;
  const ModelConfig& cfg = m.model->config();
  // Genes.
  if (m.genes.empty()) {
    if (static_cast<int>(cells.genes.size()) != cfg.genes && !(cells.genes.empty()))
      throw Error("the model expects " + std::to_string(cfg.genes) + " genes, the data has " +
                  std::to_string(cells.genes.size()) +
                  " (a reference .pth carries no gene names: import it with the training panel, see 'model import')");
  } else {
    std::unordered_map<std::string, std::int64_t> column;
    for (std::size_t i = 0; i < cells.genes.size(); ++i) column.emplace(cells.genes[i], static_cast<std::int64_t>(i));
    std::vector<std::string> missing;
    bool identity = cells.genes.size() == m.genes.size();
    for (std::size_t g = 0; g < m.genes.size(); ++g) {
      const auto it = column.find(m.genes[g]);
      if (it == column.end()) {
        missing.push_back(m.genes[g]);
        continue;
      }
      map.geneColumns.push_back(it->second);
      identity = identity && it->second == static_cast<std::int64_t>(g);
    }
    if (!missing.empty())
      throw Error(std::to_string(missing.size()) + " of the model's " + std::to_string(m.genes.size()) +
                  " genes are not in the data: " + listSome(missing));
    if (identity)
      map.geneColumns.clear();
    else if (!reorderGenes)
      throw Error("the data has the model's genes in another order or among other genes; pass --reorder-genes to match "
                  "them by name");
  }
  // Cell types.
  if (cells.types.names.empty()) throw Error("the data has no cell-type column (give --type COL)");
  if (m.cellTypes.empty()) {
    // The reference's encoding: the index into the sorted unique names.
    std::vector<std::string> sorted = cells.types.names;
    std::sort(sorted.begin(), sorted.end());
    if (static_cast<int>(sorted.size()) > cfg.cellTypes)
      throw Error("the data has " + std::to_string(sorted.size()) + " cell types, the model knows " +
                  std::to_string(cfg.cellTypes));
    for (const auto& name : cells.types.names)
      map.typeCodes.push_back(std::lower_bound(sorted.begin(), sorted.end(), name) - sorted.begin());
    map.warnings.push_back("a bare .pth carries no type names: types are encoded as the index of their sorted name, as "
                           "the reference does");
  } else {
    std::unordered_map<std::string, std::int64_t> code;
    for (std::size_t i = 0; i < m.cellTypes.size(); ++i) code.emplace(m.cellTypes[i], static_cast<std::int64_t>(i));
    std::vector<std::string> missing;
    for (const auto& name : cells.types.names) {
      const auto it = code.find(name);
      if (it == code.end()) {
        missing.push_back(name);
        map.typeCodes.push_back(-1);
      } else
        map.typeCodes.push_back(it->second);
    }
    if (!missing.empty())
      throw Error(std::to_string(missing.size()) +
                  " cell types of the data are unknown to the model: " + listSome(missing));
  }
  return map;
}

} // namespace atlascope::inference
