// Compiled with -mavx2 (see CMakeLists.txt); only called when the CPU has AVX2.
#if defined(__AVX2__)
#define LOGMEL_KERNEL_NAME logmel4_avx2
#include "audio/logmel_kernel.inc"
#endif
