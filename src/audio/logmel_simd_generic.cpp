#define LOGMEL_KERNEL_NAME logmel4_generic
#include "audio/logmel_kernel.inc"

namespace synclap {
LogMel4Fn best_logmel4() {
#if defined(__x86_64__) && defined(SYNCLAP_HAVE_AVX2_KERNEL)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return logmel4_avx2;
#endif
  return logmel4_generic;
}
}  // namespace synclap
