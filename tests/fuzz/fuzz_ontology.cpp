// The three ontology formats through readOntology (which tells them apart by content): AllenSDK
// flat JSON, the Allen API's nested JSON and the CSV with parent_structure_id.
#include "core/StructureTree.h"
#include "tests/fuzz/FuzzSupport.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlascope::fuzz::setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = atlascope::fuzz::writeInput("structures.json", data, size);
  ATLASCOPE_FUZZ_BODY(const atlascope::StructureTree t = atlascope::readOntology(path); (void)t.size());
  return 0;
}
