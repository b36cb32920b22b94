// synclap: process-wide settings for fast inference, applied at the start of main() by the synclap tool and
// the benchmarks (after ensure_blas_kernels in synclap/util.h, which picks OpenBLAS's kernels and also sets
// OMP_WAIT_POLICY=PASSIVE unless the user set it, re-executing the program once so both take effect).
#pragma once

namespace synclap {

// glibc malloc settings for inference: large blocks from the heap (no mmap) and no eager trimming, so that
// the activations freed and reallocated by every forward pass do not page-fault in again. Harmless (a no-op)
// with other C libraries.
void tune_memory_allocator();

}  // namespace synclap
