// Internal: a double-precision real FFT for power-of-two sizes, used by the log-mel front end.
#pragma once
#include <complex>
#include <vector>

namespace synclap {

class RealFft {
 public:
  explicit RealFft(int n);  // n: power of two >= 4
  int size() const { return n_; }
  // in: n real samples; out: n/2+1 complex bins (re, im interleaved: 2*(n/2+1) doubles).
  // `work` must hold n doubles (per-thread scratch).
  void forward(const double* in, double* out, double* work) const;

 private:
  int n_, h_;                      // h_ = n/2 complex points
  std::vector<int> bitrev_;        // bit reversal permutation for h_
  std::vector<double> tw_;         // twiddles for the h_-point complex FFT: cos, sin interleaved
  std::vector<double> post_;       // twiddles for the real post-processing
};

}  // namespace synclap
