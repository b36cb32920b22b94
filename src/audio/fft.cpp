// Real FFT of size n through a complex FFT of size n/2 (even/odd packing) plus a post-processing pass.
// The complex FFT is iterative radix-2 (decimation in time) with precomputed twiddles. All arithmetic
// is float64: the reference (numpy's pocketfft) also works in float64, and the CLAP features are
// compared with it to 1e-4 dB.
#include "fft.h"

#include <cmath>
#include <stdexcept>

namespace synclap {

RealFft::RealFft(int n) : n_(n), h_(n / 2) {
  if (n < 4 || (n & (n - 1)) != 0) throw std::invalid_argument("RealFft: size must be a power of two >= 4");
  int bits = 0;
  while ((1 << bits) < h_) ++bits;
  bitrev_.resize(h_);
  for (int i = 0; i < h_; ++i) {
    int r = 0;
    for (int b = 0; b < bits; ++b)
      if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    bitrev_[i] = r;
  }
  // twiddles w^k = exp(-2 pi i k / h) for k < h/2
  tw_.resize(h_);
  for (int k = 0; k < h_ / 2; ++k) {
    const double a = -2.0 * M_PI * k / h_;
    tw_[2 * k] = std::cos(a);
    tw_[2 * k + 1] = std::sin(a);
  }
  post_.resize(2 * (h_ + 1));
  for (int k = 0; k <= h_; ++k) {
    const double a = -2.0 * M_PI * k / n_;
    post_[2 * k] = std::cos(a);
    post_[2 * k + 1] = std::sin(a);
  }
}

void RealFft::forward(const double* in, double* out, double* z) const {
  const int h = h_;
  // pack: z[j] = x[2j] + i x[2j+1], in bit-reversed order
  for (int j = 0; j < h; ++j) {
    const int r = bitrev_[j];
    z[2 * r] = in[2 * j];
    z[2 * r + 1] = in[2 * j + 1];
  }
  // first stage (len 2) without twiddles
  for (int j = 0; j < h; j += 2) {
    const double ar = z[2 * j], ai = z[2 * j + 1], br = z[2 * j + 2], bi = z[2 * j + 3];
    z[2 * j] = ar + br;
    z[2 * j + 1] = ai + bi;
    z[2 * j + 2] = ar - br;
    z[2 * j + 3] = ai - bi;
  }
  for (int len = 4; len <= h; len <<= 1) {
    const int half = len >> 1, step = h / len;
    for (int start = 0; start < h; start += len) {
      double* a = z + 2 * start;
      double* b = a + 2 * half;
      for (int k = 0; k < half; ++k) {
        const double wr = tw_[2 * k * step], wi = tw_[2 * k * step + 1];
        const double br = b[2 * k] * wr - b[2 * k + 1] * wi;
        const double bi = b[2 * k] * wi + b[2 * k + 1] * wr;
        const double ar = a[2 * k], ai = a[2 * k + 1];
        a[2 * k] = ar + br;
        a[2 * k + 1] = ai + bi;
        b[2 * k] = ar - br;
        b[2 * k + 1] = ai - bi;
      }
    }
  }
  // post-processing: X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[h-k]) / 2, O = (Z[k] - conj Z[h-k]) / 2i
  for (int k = 0; k <= h; ++k) {
    const int k1 = k == h ? 0 : k;
    const int k2 = (h - k) % h;
    const double zr = z[2 * k1], zi = z[2 * k1 + 1], cr = z[2 * k2], ci = -z[2 * k2 + 1];
    const double er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
    // (Z - conjZ') / (2i) = (dr + i di) / (2i) = di/2 - i dr/2
    const double dr = zr - cr, di = zi - ci;
    const double orr = 0.5 * di, oi = -0.5 * dr;
    const double wr = post_[2 * k], wi = post_[2 * k + 1];
    out[2 * k] = er + (orr * wr - oi * wi);
    out[2 * k + 1] = ei + (orr * wi + oi * wr);
  }
}

}  // namespace synclap
