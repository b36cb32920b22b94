// Makes Debian's OpenBLAS use the right kernels for this CPU.
//
// OpenBLAS (DYNAMIC_ARCH) picks its kernels in a constructor that runs when the library is loaded,
// before main(). On CPUs it does not recognise it falls back to generic SSE kernels (measured on this
// project's machines: 4.4x slower sgemm). The only control is the OPENBLAS_CORETYPE environment variable,
// read at load time; so when it is unset we detect the CPU family ourselves, set it, and re-execute once.
#include <cpuid.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "synclap/process_setup.h"
#include "synclap/util.h"

namespace synclap {

namespace {
struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, avx512f = false, avx512dq = false, avx512bw = false,
       avx512vl = false, amd = false, os_avx = false, os_avx512 = false;
};

CpuFeatures read_cpu() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  char vendor[13];
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  vendor[12] = 0;
  f.amd = std::strcmp(vendor, "AuthenticAMD") == 0 || std::strcmp(vendor, "HygonGenuine") == 0;
  __get_cpuid(1, &a, &b, &c, &d);
  f.avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  const bool osxsave = (c >> 27) & 1;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_avx = (lo & 0x6) == 0x6;
    f.os_avx512 = (lo & 0xe6) == 0xe6;
  }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
  }
#endif
  return f;
}
}  // namespace

std::string detect_blas_coretype() {
  const CpuFeatures f = read_cpu();
  if (f.os_avx512 && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl) return "SkylakeX";
  if (f.os_avx && f.avx2 && f.fma) return f.amd ? "Zen" : "Haswell";
  return "";
}

std::string ensure_blas_kernels(int /*argc*/, char** argv) {
  bool changed = false;
  // OpenMP (LibTorch's intra-op pool): idle workers sleep instead of spinning. Spinning threads take CPU
  // from the other threads of a busy machine and from our own non-OpenMP work (decoding, features); with
  // PASSIVE the CPU time per clip halved on a 2-core machine. libgomp reads the variable when it loads, so
  // it is part of the same one re-execution. A value the user set is kept.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  std::string core;
  if (const char* set = std::getenv("OPENBLAS_CORETYPE")) {
    core = set;
  } else {
    core = detect_blas_coretype();
    if (!core.empty()) {
      ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      changed = true;
    }
  }
  if (!changed) return core;
  const char* no = std::getenv("SYNCLAP_NO_REEXEC");
  if (no && *no && std::strcmp(no, "0") != 0) return core;
  // Re-execute so that OpenBLAS and libgomp read the variables when they load. If exec fails we simply go on
  // with whatever they chose.
  ::execv("/proc/self/exe", argv);
  return core;
}

void tune_memory_allocator() {
#if defined(__GLIBC__)
  // Inference allocates and frees the same large activation buffers (tens of MB) over and over. glibc
  // serves those with mmap/munmap by default and trims the heap top eagerly, so every forward pass pays for
  // fresh zeroed pages (page faults); measured 15-20% of HTS-AT time. Keep them in the heap instead: no mmap
  // for large blocks, and keep up to 256 MB of freed memory at the heap top rather than trimming it.
  ::mallopt(M_MMAP_MAX, 0);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  ::mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace synclap
