// Fréchet distance between embedding sets (FAD) with a numerically stable symmetric square root,
// leave-one-out per-item contributions, FAD-infinity extrapolation, spectrogram MSE and CLAP score.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/random.h"

namespace synclap {
namespace {

torch::Tensor as_matrix(const std::vector<double>& v, int64_t d) {
  return torch::from_blob(const_cast<double*>(v.data()), {d, d}, torch::kFloat64).clone();
}

// Symmetric PSD square root via eigendecomposition, eigenvalues clamped at 0.
torch::Tensor psd_sqrt(const torch::Tensor& A, double* clamped) {
  const torch::Tensor S = 0.5 * (A + A.t());
  auto [evals, evecs] = torch::linalg::eigh(S, "L");
  if (clamped) *clamped += evals.lt(0).sum().item<double>();
  const torch::Tensor r = evals.clamp_min(0).sqrt();
  return torch::matmul(evecs * r.unsqueeze(0), evecs.t());
}

// Sum of square roots of the (clamped) eigenvalues of a symmetric matrix = trace of its PSD square root.
double trace_sqrt(const torch::Tensor& A, double* clamped) {
  const torch::Tensor S = 0.5 * (A + A.t());
  const torch::Tensor evals = torch::linalg::eigvalsh(S, "L");
  if (clamped) *clamped += evals.lt(0).sum().item<double>();
  return evals.clamp_min(0).sqrt().sum().item<double>();
}

// Reference side prepared once: mean, S_ref^1/2, tr(S_ref).
struct RefSide {
  torch::Tensor mean, root;
  double trace = 0, clamped = 0;
};

RefSide prepare_ref(const Gaussian& g) {
  RefSide r;
  r.mean = torch::from_blob(const_cast<double*>(g.mean.data()), {g.dim}, torch::kFloat64).clone();
  const torch::Tensor S = as_matrix(g.cov, g.dim);
  r.root = psd_sqrt(S, &r.clamped);
  r.trace = S.diagonal().sum().item<double>();
  return r;
}

FrechetTerms distance_to(const RefSide& ref, const torch::Tensor& mean, const torch::Tensor& cov) {
  FrechetTerms t;
  t.clamped_eigenvalues = ref.clamped;
  const torch::Tensor diff = ref.mean - mean;
  t.mean_term = diff.dot(diff).item<double>();
  const torch::Tensor M = torch::matmul(torch::matmul(ref.root, cov), ref.root);
  const double cross = trace_sqrt(M, &t.clamped_eigenvalues);
  t.trace_term = std::max(0.0, ref.trace + cov.diagonal().sum().item<double>() - 2.0 * cross);
  t.distance = std::max(0.0, t.mean_term) + t.trace_term;
  return t;
}

torch::Tensor rows_tensor(const std::vector<float>& x, int64_t n, int64_t dim) {
  return torch::from_blob(const_cast<float*>(x.data()), {n, dim}, torch::kFloat32).to(torch::kFloat64);
}

}  // namespace

Gaussian fit_gaussian(const float* x, int64_t n, int64_t dim) {
  if (n < 2 || dim <= 0) throw Error("FAD: need at least 2 embeddings (got " + std::to_string(n) + ")");
  for (int64_t i = 0; i < n * dim; ++i)
    if (!std::isfinite(x[i])) throw Error("FAD: non-finite value in the embeddings");
  torch::NoGradGuard ng;
  const torch::Tensor X = torch::from_blob(const_cast<float*>(x), {n, dim}, torch::kFloat32).to(torch::kFloat64);
  const torch::Tensor mu = X.mean(0);
  const torch::Tensor D = X - mu;
  const torch::Tensor C = torch::matmul(D.t(), D) / double(n - 1);
  Gaussian g;
  g.n = n;
  g.dim = dim;
  g.mean.assign(mu.data_ptr<double>(), mu.data_ptr<double>() + dim);
  const torch::Tensor Cc = C.contiguous();
  g.cov.assign(Cc.data_ptr<double>(), Cc.data_ptr<double>() + dim * dim);
  return g;
}

FrechetTerms frechet_distance(const Gaussian& a, const Gaussian& b) {
  if (a.dim != b.dim || a.dim <= 0) throw Error("FAD: embedding sizes differ");
  torch::NoGradGuard ng;
  const RefSide ref = prepare_ref(a);
  const torch::Tensor mb = torch::from_blob(const_cast<double*>(b.mean.data()), {b.dim}, torch::kFloat64).clone();
  return distance_to(ref, mb, as_matrix(b.cov, b.dim));
}

FadResult fad(const std::vector<float>& ref, int64_t n_ref, const std::vector<float>& gen, int64_t n_gen, int64_t dim,
              const FadOptions& opt) {
  if (int64_t(ref.size()) != n_ref * dim || int64_t(gen.size()) != n_gen * dim)
    throw Error("FAD: embedding array sizes do not match the counts");
  torch::NoGradGuard ng;
  const Gaussian gr = fit_gaussian(ref.data(), n_ref, dim);
  const Gaussian gg = fit_gaussian(gen.data(), n_gen, dim);
  const RefSide rs = prepare_ref(gr);
  FadResult r;
  r.n_ref = n_ref;
  r.n_gen = n_gen;
  r.dim = dim;
  const torch::Tensor G = rows_tensor(gen, n_gen, dim);
  const torch::Tensor mu = G.mean(0);
  const torch::Tensor D = G - mu;
  const torch::Tensor scatter = torch::matmul(D.t(), D);
  r.terms = distance_to(rs, mu, scatter / double(n_gen - 1));
  r.fad = r.terms.distance;

  if (opt.per_item) {
    if (n_gen < 4) throw Error("FAD: per-item contributions need at least 4 generated items");
    // Removing item i: mean' = (n mu - x_i)/(n-1); scatter' = scatter - n/(n-1) d_i d_i^T.
    r.per_item.resize(size_t(n_gen));
    const double n = double(n_gen);
    for (int64_t i = 0; i < n_gen; ++i) {
      const torch::Tensor d = D[i];
      const torch::Tensor mu_i = (mu * n - G[i]) / (n - 1);
      const torch::Tensor sc_i = scatter - (n / (n - 1)) * torch::outer(d, d);
      const FrechetTerms t = distance_to(rs, mu_i, sc_i / (n - 2));
      r.per_item[size_t(i)] = r.fad - t.distance;
    }
  }

  if (opt.infinity) {
    std::vector<int64_t> sizes = opt.infinity_sizes;
    if (sizes.empty()) {
      for (int k = 0; k < 5; ++k) sizes.push_back(std::max<int64_t>(2, n_gen / 4 + (n_gen - n_gen / 4) * k / 4));
    }
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    for (int64_t s : sizes)
      if (s < 2 || s > n_gen) throw Error("FAD-infinity: subset size " + std::to_string(s) + " not in [2, n_gen]");
    if (sizes.size() < 2) throw Error("FAD-infinity: need at least two different subset sizes");
    NumpyRandom rng(uint32_t(opt.seed));
    std::vector<int64_t> idx(static_cast<size_t>(n_gen));
    for (int64_t s : sizes) {
      const int reps = s == n_gen ? 1 : std::max(1, opt.infinity_repeats);
      double sum = 0;
      for (int k = 0; k < reps; ++k) {
        std::iota(idx.begin(), idx.end(), 0);
        // Partial Fisher-Yates with the seeded generator.
        for (int64_t j = 0; j < s; ++j) {
          const int64_t pick = rng.randint(j, n_gen);
          std::swap(idx[size_t(j)], idx[size_t(pick)]);
        }
        const torch::Tensor sel = torch::from_blob(idx.data(), {s}, torch::kInt64).clone();
        const torch::Tensor Gs = G.index_select(0, sel);
        const torch::Tensor ms = Gs.mean(0);
        const torch::Tensor Ds = Gs - ms;
        sum += distance_to(rs, ms, torch::matmul(Ds.t(), Ds) / double(s - 1)).distance;
      }
      r.infinity_sizes.push_back(s);
      r.infinity_values.push_back(sum / reps);
    }
    // Least squares FAD = a + b x, x = 1/N.
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const double m = double(r.infinity_sizes.size());
    for (size_t k = 0; k < r.infinity_sizes.size(); ++k) {
      const double x = 1.0 / double(r.infinity_sizes[k]), y = r.infinity_values[k];
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double den = m * sxx - sx * sx;
    r.fad_infinity_slope = den != 0 ? (m * sxy - sx * sy) / den : 0.0;
    r.fad_infinity = (sy - r.fad_infinity_slope * sx) / m;
  }
  return r;
}

double spectrogram_mse(const float* a, int64_t frames_a, const float* b, int64_t frames_b, int64_t bins) {
  const int64_t f = std::min(frames_a, frames_b);
  if (f <= 0 || bins <= 0) throw Error("spectrogram MSE: empty spectrogram");
  double s = 0;
  for (int64_t i = 0; i < f * bins; ++i) {
    const double d = double(a[i]) - double(b[i]);
    s += d * d;
  }
  return s / double(f * bins);
}

std::vector<double> clap_scores(const Embeddings& audio, const Embeddings& text) {
  if (audio.rows != text.rows || audio.dim != text.dim)
    throw Error("CLAP score: " + std::to_string(audio.rows) + " clips and " + std::to_string(text.rows) +
                " prompts (or embedding sizes differ)");
  std::vector<double> out(size_t(audio.rows));
  for (int64_t i = 0; i < audio.rows; ++i) {
    const float *x = audio.row(i), *y = text.row(i);
    double xy = 0, xx = 0, yy = 0;
    for (int64_t d = 0; d < audio.dim; ++d) {
      xy += double(x[d]) * y[d];
      xx += double(x[d]) * x[d];
      yy += double(y[d]) * y[d];
    }
    out[size_t(i)] = (xx > 0 && yy > 0) ? xy / std::sqrt(xx * yy) : 0.0;
  }
  return out;
}

}  // namespace synclap
