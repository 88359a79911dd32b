#pragma once
// Named weight tensors, from the reference's torch.save files or from an HDF5 group.
#include <torch/types.h>

#include <map>
#include <string>

namespace atlascope::inference {

using StateDict = std::map<std::string, torch::Tensor>;

// A torch.save state_dict (.pth), read by core's strict reader (no pickle is executed).
StateDict loadPth(const std::string& path);
// Every dataset under `group` of an HDF5 file (e.g. the parity fixture's /weights).
StateDict loadHdf5Group(const std::string& path, const std::string& group);

} // namespace atlascope::inference
