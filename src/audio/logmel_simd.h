// Internal: the log-mel kernel that processes four STFT frames at once (see logmel_kernel.inc).
#pragma once

namespace synclap {

struct LogMelTables {
  int n_fft = 0, n_mels = 0;
  const int* bitrev = nullptr;           // n_fft/2 entries
  const double* twiddle = nullptr;       // cos, sin of -2 pi k / (n_fft/2), k < n_fft/4
  const double* post = nullptr;          // cos, sin of -2 pi k / n_fft, k <= n_fft/2
  const double* window = nullptr;        // n_fft
  const int* filter_begin = nullptr;     // first FFT bin of each mel filter
  const int* filter_len = nullptr;       // number of bins it touches
  const int* filter_offset = nullptr;    // where its weights start in filter_weights
  const double* filter_weights = nullptr;
};

// Scratch needs (n_fft + n_fft/2 + 1) * 4 doubles, 32-byte aligned. frames[l] points at n_fft samples.
void logmel4_generic(const LogMelTables& t, const float* const frames[4], float* const out[4], double* scratch);
void logmel4_avx2(const LogMelTables& t, const float* const frames[4], float* const out[4], double* scratch);

// The best kernel for this CPU.
using LogMel4Fn = void (*)(const LogMelTables&, const float* const[4], float* const[4], double*);
LogMel4Fn best_logmel4();

}  // namespace synclap
