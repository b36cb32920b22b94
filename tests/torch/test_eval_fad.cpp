// FAD, CLAP score, spectrogram MSE, linear probe and provenance against closed forms and hand-computed values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {

std::vector<float> gaussian_rows(int64_t n, int64_t dim, uint32_t seed, double scale = 1.0, double shift = 0.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<float> x(size_t(n * dim));
  for (auto& v : x) v = float(shift + scale * nd(gen));
  return x;
}

Gaussian make_gaussian(std::vector<double> mean, std::vector<double> cov) {
  Gaussian g;
  g.dim = int64_t(mean.size());
  g.n = 100;
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

}  // namespace

TEST(EvalFad, IdenticalSetsGiveZero) {
  const auto x = gaussian_rows(300, 16, 1);
  const FadResult r = fad(x, 300, x, 300, 16);
  EXPECT_NEAR(r.fad, 0.0, 1e-6);
  EXPECT_GE(r.fad, 0.0);
}

TEST(EvalFad, DiagonalGaussiansClosedForm) {
  // FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 for diagonal covariances.
  const Gaussian a = make_gaussian({0, 1, 2}, {4, 0, 0, 0, 1, 0, 0, 0, 9});
  const Gaussian b = make_gaussian({1, 1, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 16});
  const double expected = (1 + 0 + 4) + (1.0 + 0.0 + 1.0);
  const FrechetTerms t = frechet_distance(a, b);
  EXPECT_NEAR(t.distance, expected, 1e-10);
  EXPECT_NEAR(t.mean_term, 5.0, 1e-12);
  EXPECT_NEAR(t.trace_term, 2.0, 1e-10);
}

TEST(EvalFad, NonCommutingCovariancesClosedForm) {
  // 2x2: tr sqrt(S1^1/2 S2 S1^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
  const std::vector<double> s1 = {2.0, 0.6, 0.6, 1.0}, s2 = {1.5, -0.4, -0.4, 0.5};
  const Gaussian a = make_gaussian({0.5, -1}, s1), b = make_gaussian({-0.5, 2}, s2);
  const double tr12 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
  const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
  const double cross = std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
  const double expected = (1.0 + 9.0) + (s1[0] + s1[3] + s2[0] + s2[3] - 2 * cross);
  EXPECT_NEAR(frechet_distance(a, b).distance, expected, 1e-10);
  EXPECT_NEAR(frechet_distance(b, a).distance, expected, 1e-10);  // symmetric
}

TEST(EvalFad, ShiftedSetIsSquaredShift) {
  // Same covariance, means differ by c: FAD = |c|^2.
  const int64_t n = 200, d = 8;
  const auto x = gaussian_rows(n, d, 3, 0.5);
  std::vector<float> y = x;
  double c2 = 0;
  for (int64_t j = 0; j < d; ++j) c2 += (0.1 * j) * (0.1 * j);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) y[i * d + j] += float(0.1 * j);
  const FadResult r = fad(x, n, y, n, d);
  EXPECT_NEAR(r.fad, c2, 1e-5);
  EXPECT_NEAR(r.terms.trace_term, 0.0, 1e-5);
}

TEST(EvalFad, NeverNegativeOnNearSingularCovariances) {
  // 12 items in 64 dimensions: rank-deficient covariances (the case where sqrtm-based tools go complex).
  for (uint32_t seed = 0; seed < 4; ++seed) {
    const auto x = gaussian_rows(12, 64, 10 + seed, 1e-3);
    const auto y = gaussian_rows(12, 64, 20 + seed, 1e-3);
    const FadResult r = fad(x, 12, y, 12, 64);
    EXPECT_TRUE(std::isfinite(r.fad));
    EXPECT_GE(r.fad, 0.0);
    EXPECT_GE(r.terms.trace_term, 0.0);
    const FadResult same = fad(x, 12, x, 12, 64);
    EXPECT_GE(same.fad, 0.0);
    EXPECT_NEAR(same.fad, 0.0, 1e-6);
  }
  // Exactly singular: all items identical except one direction.
  std::vector<float> flat(20 * 32, 0.5f);
  for (int i = 0; i < 20; ++i) flat[i * 32] = float(i) * 1e-4f;
  const FadResult r = fad(flat, 20, flat, 20, 32);
  EXPECT_GE(r.fad, 0.0);
  EXPECT_NEAR(r.fad, 0.0, 1e-6);
}

TEST(EvalFad, PerItemIsLeaveOneOut) {
  const int64_t d = 6, n = 30;
  const auto ref = gaussian_rows(80, d, 5);
  auto gen = gaussian_rows(n, d, 6);
  for (int64_t j = 0; j < d; ++j) gen[7 * d + j] += 6.0f;  // an outlier
  FadOptions opt;
  opt.per_item = true;
  const FadResult r = fad(ref, 80, gen, n, d, opt);
  ASSERT_EQ(r.per_item.size(), size_t(n));
  for (int64_t i : {0, 7, 29}) {
    std::vector<float> without;
    for (int64_t k = 0; k < n; ++k)
      if (k != i) without.insert(without.end(), gen.begin() + k * d, gen.begin() + (k + 1) * d);
    const double expected = r.fad - fad(ref, 80, without, n - 1, d).fad;
    EXPECT_NEAR(r.per_item[i], expected, 1e-8);
  }
  // The outlier contributes most.
  EXPECT_EQ(std::max_element(r.per_item.begin(), r.per_item.end()) - r.per_item.begin(), 7);
  EXPECT_GT(r.per_item[7], 0.0);
}

TEST(EvalFad, InfinityIsTheLeastSquaresIntercept) {
  const int64_t d = 4;
  const auto ref = gaussian_rows(400, d, 8);
  const auto gen = gaussian_rows(200, d, 9, 1.0, 0.2);
  FadOptions opt;
  opt.infinity = true;
  opt.seed = 3;
  const FadResult r = fad(ref, 400, gen, 200, d, opt);
  ASSERT_EQ(r.infinity_sizes.size(), 5u);
  EXPECT_EQ(r.infinity_sizes.back(), 200);
  EXPECT_NEAR(r.infinity_values.back(), r.fad, 1e-12);  // full set: the plain FAD
  // Residuals of the fit are orthogonal to 1 and to 1/N.
  double s0 = 0, s1 = 0;
  for (size_t k = 0; k < r.infinity_sizes.size(); ++k) {
    const double x = 1.0 / double(r.infinity_sizes[k]);
    const double e = r.infinity_values[k] - (r.fad_infinity + r.fad_infinity_slope * x);
    s0 += e;
    s1 += e * x;
  }
  EXPECT_NEAR(s0, 0.0, 1e-9);
  EXPECT_NEAR(s1, 0.0, 1e-9);
  EXPECT_GT(r.fad_infinity_slope, 0.0);  // small sets are biased upwards
  const FadResult again = fad(ref, 400, gen, 200, d, opt);
  EXPECT_EQ(again.infinity_values, r.infinity_values);  // seeded
}

TEST(EvalFad, SpectrogramMseByHand) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};  // 3 frames x 2 bins
  const std::vector<float> b = {1, 0, 3, 8};        // 2 frames x 2 bins
  EXPECT_DOUBLE_EQ(spectrogram_mse(a.data(), 3, b.data(), 2, 2), (0 + 4 + 0 + 16) / 4.0);
}

TEST(EvalClapScore, CosineByHand) {
  Embeddings a, t;
  a.rows = t.rows = 2;
  a.dim = t.dim = 2;
  a.data = {3, 4, 1, 0};
  t.data = {4, 3, 0, 2};
  const auto s = clap_scores(a, t);
  EXPECT_NEAR(s[0], 24.0 / 25.0, 1e-12);
  EXPECT_NEAR(s[1], 0.0, 1e-12);
  t.rows = 1;
  EXPECT_THROW(clap_scores(a, t), Error);
}

TEST(EvalProbe, SeparatesSeparableData) {
  // Three well-separated clusters in 8 dimensions.
  const int64_t d = 8, per = 40, C = 3;
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0, 0.3f);
  auto make = [&](int64_t n, std::vector<float>& x, std::vector<int64_t>& y) {
    for (int64_t i = 0; i < n * C; ++i) {
      const int64_t c = i % C;
      for (int64_t j = 0; j < d; ++j) x.push_back(nd(gen) + (j == c ? 2.0f : 0.0f));
      y.push_back(c);
    }
  };
  std::vector<float> xtr, xte;
  std::vector<int64_t> ytr, yte;
  make(per, xtr, ytr);
  make(per / 2, xte, yte);
  for (const char* optimizer : {"lbfgs", "adam"}) {
    ProbeOptions opt;
    opt.optimizer = optimizer;
    opt.seed = 1;
    const ProbeResult r = linear_probe(xtr, ytr, xte, yte, d, C, opt);
    EXPECT_DOUBLE_EQ(r.train_accuracy, 1.0) << optimizer;
    EXPECT_DOUBLE_EQ(r.test_accuracy, 1.0) << optimizer;
    EXPECT_LT(r.final_loss, 0.2) << optimizer;
    int64_t diag = 0;
    for (int64_t c = 0; c < C; ++c) diag += r.confusion[c * C + c];
    EXPECT_EQ(diag, int64_t(yte.size()));
    const ProbeResult again = linear_probe(xtr, ytr, xte, yte, d, C, opt);
    EXPECT_DOUBLE_EQ(again.final_loss, r.final_loss) << optimizer;
  }
}

TEST(EvalProbe, ChanceOnRandomLabels) {
  // Labels independent of the features: test accuracy stays near chance.
  const int64_t d = 4, n = 300;
  std::mt19937 gen(2);
  std::normal_distribution<float> nd;
  std::vector<float> xtr, xte;
  std::vector<int64_t> ytr, yte;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) xtr.push_back(nd(gen));
    ytr.push_back(gen() % 2);
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) xte.push_back(nd(gen));
    yte.push_back(gen() % 2);
  }
  const ProbeResult r = linear_probe(xtr, ytr, xte, yte, d, 2);
  EXPECT_GT(r.test_accuracy, 0.35);
  EXPECT_LT(r.test_accuracy, 0.65);
  EXPECT_THROW(linear_probe(xtr, ytr, xte, {5}, d, 2), Error);
}

TEST(EvalProvenance, CheckpointHashAndJson) {
  const std::string dir = synclap::test::temp_dir("eval_provenance");
  std::ofstream(dir + "/config.json") << "{\"a\": 1}";
  std::ofstream(dir + "/model.safetensors") << "weights";
  const std::string h1 = checkpoint_sha256(dir);
  EXPECT_EQ(h1.size(), 64u);
  EXPECT_EQ(checkpoint_sha256(dir), h1);
  // A single file hashes to the sha256 of its bytes ("weights").
  EXPECT_EQ(checkpoint_sha256(dir + "/model.safetensors"), sha256_hex("weights"));
  std::ofstream(dir + "/model.safetensors") << "weights2";
  EXPECT_NE(checkpoint_sha256(dir), h1);
  EXPECT_THROW(checkpoint_sha256(dir + "/missing"), FileError);

  Provenance p;
  p.task = "zeroshot";
  p.checkpoint = dir;
  p.checkpoint_sha256 = h1;
  p.preprocess_json = PreprocessContract::clap_unfused().to_json();
  p.long_audio_policy = long_audio_policy(PreprocessContract::clap_unfused());
  p.templates = {"a {} song"};
  p.dataset = "data/";
  p.seed = 42;
  const auto j = nlohmann::json::parse(p.to_json());
  EXPECT_EQ(j["checkpoint_sha256"], h1);
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["templates"][0], "a {} song");
  EXPECT_EQ(j["preprocess"]["sample_rate"], 48000);
  EXPECT_EQ(j["synclap_version"], SYNCLAP_VERSION);
  EXPECT_NE(j["long_audio_policy"].get<std::string>().find("truncation="), std::string::npos);
  EXPECT_FALSE(j["created_utc"].get<std::string>().empty());
}
