// GoogleTest entry point shared by synclap's test binaries: picks the BLAS kernels first,
// exactly as the synclap tool does, so tests run the code paths users run.
#include <gtest/gtest.h>

#include "synclap/util.h"

int main(int argc, char** argv) {
  synclap::ensure_blas_kernels(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
