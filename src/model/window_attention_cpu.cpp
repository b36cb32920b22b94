// Fused window-attention kernel; see window_attention_cpu.h.
#include "model/window_attention_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SYNCLAP_WA_X86 1
#include <immintrin.h>
#endif

namespace synclap::kernels {

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Portable version (any N, d).
void item_scalar(const float* qkv, const float* bias, const float* mask, int64_t n, int64_t heads, int64_t d,
                 int64_t w, int64_t h, float* scores_buf, float* ctx) {
  const int64_t c = heads * d, row = 3 * c;
  const float* base = qkv + w * n * row;
  for (int64_t i = 0; i < n; ++i) {
    float* s = scores_buf + i * n;
    const float* qi = base + i * row + h * d;
    const float* b = bias + i * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = base + j * row + c + h * d;
      float acc = 0.f;
      for (int64_t t = 0; t < d; ++t) acc += qi[t] * kj[t];
      s[j] = acc + b[j] + (mask ? mask[i * n + j] : 0.f);
      mx = std::max(mx, s[j]);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.f / sum;
    float* o = ctx + (w * n + i) * c + h * d;
    for (int64_t t = 0; t < d; ++t) o[t] = 0.f;
    for (int64_t j = 0; j < n; ++j) {
      const float pj = s[j] * inv;
      const float* vj = base + j * row + 2 * c + h * d;
      for (int64_t t = 0; t < d; ++t) o[t] += pj * vj[t];
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// AVX2 + FMA version for N = 64.
#ifdef SYNCLAP_WA_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {

// exp(x) for x <= 0 (the inputs are score - row max): Cephes-style range reduction and degree-5 polynomial,
// about 1 ulp; arguments below -87 give ~0 (their weights are negligible against the row maximum's 1).
inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  x = _mm256_max_ps(x, lo);
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 xx = _mm256_mul_ps(x, x);
  y = _mm256_fmadd_ps(y, xx, _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// probs[i, :] for the 64 rows of one (window, head), into p [64, 64].
inline void scores_softmax64(const float* base, int64_t row, int64_t koff, int64_t qoff, int64_t d,
                             const float* bias, const float* mask, float* kt, float* qb, float* p) {
  // One pass over the window's rows: k^T and q of this head into small contiguous buffers.
  for (int64_t j = 0; j < 64; ++j) {
    const float* kj = base + j * row + koff;
    const float* qj = base + j * row + qoff;
    for (int64_t t = 0; t < d; ++t) kt[t * 64 + j] = kj[t];
    for (int64_t t = 0; t < d; t += 8) _mm256_storeu_ps(qb + j * d + t, _mm256_loadu_ps(qj + t));
  }
  for (int64_t i = 0; i < 64; ++i) {
    const float* b = bias + i * 64;
    __m256 a[8];
    if (mask) {
      const float* m = mask + i * 64;
      for (int k = 0; k < 8; ++k) a[k] = _mm256_add_ps(_mm256_loadu_ps(b + 8 * k), _mm256_loadu_ps(m + 8 * k));
    } else {
      for (int k = 0; k < 8; ++k) a[k] = _mm256_loadu_ps(b + 8 * k);
    }
    const float* qi = qb + i * d;
    for (int64_t t = 0; t < d; ++t) {
      const __m256 q = _mm256_set1_ps(qi[t]);
      const float* k = kt + t * 64;
      for (int k8 = 0; k8 < 8; ++k8) a[k8] = _mm256_fmadd_ps(q, _mm256_loadu_ps(k + 8 * k8), a[k8]);
    }
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3])),
                             _mm256_max_ps(_mm256_max_ps(a[4], a[5]), _mm256_max_ps(a[6], a[7])));
    const __m256 mx = _mm256_set1_ps(hmax(m));
    __m256 s = _mm256_setzero_ps();
    for (int k = 0; k < 8; ++k) {
      a[k] = exp_ps(_mm256_sub_ps(a[k], mx));
      s = _mm256_add_ps(s, a[k]);
    }
    const __m256 inv = _mm256_set1_ps(1.f / hsum(s));
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(p + i * 64 + 8 * k, _mm256_mul_ps(a[k], inv));
  }
}

// out rows i, i+1 (stride c) = p rows x v (v rows at stride `row`), D8 = d / 8.
template <int D8>
inline void context64(const float* p, const float* v, int64_t row, float* out, int64_t c) {
  for (int64_t i = 0; i < 64; i += 2) {
    __m256 o0[D8], o1[D8];
    for (int k = 0; k < D8; ++k) o0[k] = o1[k] = _mm256_setzero_ps();
    const float* p0 = p + i * 64;
    const float* p1 = p0 + 64;
    for (int64_t j = 0; j < 64; ++j) {
      const float* vj = v + j * row;
      const __m256 b0 = _mm256_set1_ps(p0[j]), b1 = _mm256_set1_ps(p1[j]);
      for (int k = 0; k < D8; ++k) {
        const __m256 x = _mm256_loadu_ps(vj + 8 * k);
        o0[k] = _mm256_fmadd_ps(b0, x, o0[k]);
        o1[k] = _mm256_fmadd_ps(b1, x, o1[k]);
      }
    }
    for (int k = 0; k < D8; ++k) {
      _mm256_storeu_ps(out + i * c + 8 * k, o0[k]);
      _mm256_storeu_ps(out + (i + 1) * c + 8 * k, o1[k]);
    }
  }
}

void item64(const float* qkv, const float* bias, const float* mask, int64_t heads, int64_t d, int64_t w, int64_t h,
            float* kt, float* qb, float* p, float* ctx) {
  const int64_t c = heads * d, row = 3 * c;
  const float* base = qkv + w * 64 * row;
  scores_softmax64(base, row, c + h * d, h * d, d, bias, mask, kt, qb, p);
  const float* v = base + 2 * c + h * d;
  float* out = ctx + w * 64 * c + h * d;
  switch (d / 8) {
    case 1: context64<1>(p, v, row, out, c); break;
    case 2: context64<2>(p, v, row, out, c); break;
    case 3: context64<3>(p, v, row, out, c); break;
    case 4: context64<4>(p, v, row, out, c); break;
    case 5: context64<5>(p, v, row, out, c); break;
    case 6: context64<6>(p, v, row, out, c); break;
    case 7: context64<7>(p, v, row, out, c); break;
    default: context64<8>(p, v, row, out, c); break;
  }
}

}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // SYNCLAP_WA_X86

namespace {

bool cpu_has_avx2_fma() {
#ifdef SYNCLAP_WA_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const bool kAvx2 = cpu_has_avx2_fma();

}  // namespace

bool window_attention_vectorized(int64_t n, int64_t d) {
  return kAvx2 && n == 64 && d > 0 && d % 8 == 0 && d <= 64;
}

void window_attention(const float* qkv, const float* bias, const float* mask, int64_t nw, int64_t bw, int64_t n,
                      int64_t heads, int64_t d, float* ctx) {
  const bool vec = window_attention_vectorized(n, d);
  // Items are (window, head) pairs; heads of one window are adjacent so they share the window's rows in cache.
  at::parallel_for(0, bw * heads, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> kt(static_cast<size_t>(n * d)), qb(static_cast<size_t>(n * d)), p(static_cast<size_t>(n * n));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t w = item / heads, h = item % heads;
      const float* b = bias + h * n * n;
      const float* m = mask ? mask + (w % nw) * n * n : nullptr;
#ifdef SYNCLAP_WA_X86
      if (vec) {
        avx2::item64(qkv, b, m, heads, d, w, h, kt.data(), qb.data(), p.data(), ctx);
        continue;
      }
#endif
      item_scalar(qkv, b, m, n, heads, d, w, h, p.data(), ctx);
    }
  });
}

}  // namespace synclap::kernels
