#pragma once
// Model files. Two kinds load:
//  - the reference's state_dict (.pth): weights only; the gene panel and the cell-type vocabulary
//    are the dataset's (genes in its order, types as the sorted unique names, as the reference
//    encodes them), and the head count is given (default 8, the released model's);
//  - Atlascope's checkpoint (.h5): weights + config + gene panel (names in order) + cell-type
//    vocabulary (names in order), so a model is never applied to genes or types it does not know.
#include "core/CellTable.h"
#include "inference/CellTransformer.h"

#include <memory>
#include <string>
#include <vector>

namespace atlascope::inference {

struct ModelFile {
  std::string path;
  std::unique_ptr<CellTransformer> model;
  std::vector<std::string> genes;     // empty for a bare .pth
  std::vector<std::string> cellTypes; // empty for a bare .pth
  std::string trainingLog;            // JSON, for checkpoints written by `train`
};

ModelFile loadModelFile(const std::string& path, int heads = 8);
// trainingLog: JSON text (per step: loss, lr, cells/s; per validation: the metrics), kept with
// the weights as /training_log so that a model says how it was made.
void saveCheckpoint(const CellTransformer& model, const std::vector<std::string>& genes,
                    const std::vector<std::string>& cellTypes, const std::string& path,
                    const std::string& trainingLog = {});

// How a dataset's columns and type codes map onto the model's.
struct PanelMapping {
  std::vector<std::int64_t> geneColumns; // model gene g <- data column geneColumns[g] (empty: identity)
  std::vector<std::int64_t> typeCodes;   // data type code -> model type index
  std::vector<std::string> warnings;
};

// Errors list what is missing ("12 of the model's 500 genes are not in the data: Gene0007, ...").
// With reorderGenes, genes present under other positions (or among extra genes) are matched by
// name; without it a different order is an error that names the option.
PanelMapping mapPanel(const ModelFile& model, const CellTable& cells, bool reorderGenes);

} // namespace atlascope::inference
