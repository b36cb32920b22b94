// Makes Debian's OpenBLAS use the right kernels for this CPU.
//
// OpenBLAS (DYNAMIC_ARCH) picks its kernels in a constructor that runs when the library is loaded,
// before main(). On CPUs it does not recognise it falls back to generic SSE kernels (measured on this
// project's machines: 4.4x slower sgemm). The only control is the OPENBLAS_CORETYPE environment variable,
// read at load time; so when it is unset we detect the CPU family ourselves, set it, and re-execute once.
#include <cpuid.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

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
  if (const char* set = std::getenv("OPENBLAS_CORETYPE")) return set;
  const std::string core = detect_blas_coretype();
  if (core.empty()) return "";
  ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  const char* no = std::getenv("SYNCLAP_NO_REEXEC");
  if (no && *no && std::strcmp(no, "0") != 0) return core;
  // Re-execute so that OpenBLAS reads the variable when it loads. If exec fails we simply go on
  // with whatever OpenBLAS chose.
  ::execv("/proc/self/exe", argv);
  return core;
}

}  // namespace synclap
