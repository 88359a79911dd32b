// Writes the AnnData fuzz target's seeds into the folder given: the good layouts (dense, CSR,
// CSC, anndata 0.7) and the broken ones of issue 14 (each must be refused cleanly).
#include "tests/AnnDataFixtures.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_h5ad_seeds FOLDER\n");
    return 2;
  }
  using atlascope::test::AnnDataCase;
  const std::pair<const char*, AnnDataCase> cases[] = {{"dense", AnnDataCase::Dense},
                                                       {"csr", AnnDataCase::Csr},
                                                       {"csc", AnnDataCase::Csc},
                                                       {"legacy07", AnnDataCase::Legacy07},
                                                       {"code-past-categories", AnnDataCase::CodePastCategories},
                                                       {"huge-dense-x", AnnDataCase::HugeDenseX},
                                                       {"huge-sparse-x", AnnDataCase::HugeSparseX},
                                                       {"indptr-decreasing", AnnDataCase::IndptrDecreasing},
                                                       {"index-past-columns", AnnDataCase::IndexPastColumns},
                                                       {"short-obsm", AnnDataCase::ShortObsm}};
  for (const auto& [name, c] : cases) atlascope::test::writeAnnData(std::string(argv[1]) + "/" + name + ".h5ad", c);
  return 0;
}
