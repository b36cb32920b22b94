// Unit tests of the front end's policies and the preprocessing contract (the reference parity is in
// test_frontend_golden.cpp).
#include <gtest/gtest.h>

#include <cmath>

#include "synclap/error.h"
#include "synclap/frontend.h"
#include "synclap/random.h"

using namespace synclap;

// Values printed by numpy 1.24: np.random.seed(s); np.random.randint(lo, hi) (x5).
TEST(NumpyRandom, MatchesNumpyLegacyRandint) {
  struct Case {
    uint32_t seed;
    int64_t lo, hi;
    std::vector<int64_t> want;
  } cases[] = {{1005, 0, 96001, {18147, 2323, 50777, 86391, 70003}},
               {5001, 0, 96001, {77884, 46491, 70541, 44766, 21074}},
               {1015, 0, 4, {2, 3, 0, 1, 2}},
               {7, 0, 10, {4, 9, 6, 3, 3}},
               {123, 5, 1000000, {773635, 277874, 28035, 17735, 192481}}};
  for (const auto& c : cases) {
    NumpyRandom r(c.seed);
    std::vector<int64_t> got;
    for (int i = 0; i < 5; ++i) got.push_back(r.randint(c.lo, c.hi));
    EXPECT_EQ(got, c.want) << "seed " << c.seed;
  }
  NumpyRandom r(1);
  EXPECT_EQ(r.randint(3, 4), 3);  // a range of one value draws nothing
  EXPECT_THROW(r.randint(4, 4), Error);
}

TEST(PreprocessContract, JsonRoundTripAndValidation) {
  PreprocessContract c = PreprocessContract::clap_fused();
  c.seed = 77;
  c.padding = Padding::Pad;
  c.max_windows = 3;
  const PreprocessContract back = PreprocessContract::from_json(c.to_json());
  EXPECT_EQ(back, c);
  EXPECT_EQ(back.mel_scale, MelScale::Htk);
  EXPECT_FALSE(back.slaney_norm);
  EXPECT_TRUE(back.fusion);
  EXPECT_EQ(back.channels(), 4);
  EXPECT_EQ(back.frames(), 1001);

  EXPECT_THROW(PreprocessContract::from_json("{\"n_fft\": 1000}"), Error);           // not a power of two
  EXPECT_THROW(PreprocessContract::from_json("{\"truncation\": \"fusion\"}"), Error);  // unfused model
  EXPECT_THROW(PreprocessContract::from_json("{\"padding\": \"mirror\"}"), Error);
  EXPECT_THROW(PreprocessContract::from_json("not json"), Error);
  EXPECT_THROW(PreprocessContract::from_json("{\"f_max\": 30000}"), Error);  // above Nyquist
}

TEST(PreprocessContract, ReadsHfPreprocessorConfig) {
  const std::string hf = R"({"feature_extractor_type": "ClapFeatureExtractor", "feature_size": 64,
    "fft_window_size": 1024, "frequency_max": 14000, "frequency_min": 50, "hop_length": 480,
    "max_length_s": 10, "nb_max_samples": 480000, "padding": "repeatpad", "sampling_rate": 48000,
    "top_db": null, "truncation": "rand_trunc"})";
  const PreprocessContract c = PreprocessContract::from_hf_preprocessor(hf);
  EXPECT_EQ(c.truncation, Truncation::RandTrunc);
  EXPECT_EQ(c.mel_scale, MelScale::Slaney);
  EXPECT_DOUBLE_EQ(c.f_min, 50.0);
  EXPECT_FALSE(c.fusion);
}

namespace {
std::vector<float> ramp(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = 0.5f * std::sin(0.013f * float(i)) + 0.1f * std::sin(0.0007f * float(i));
  return x;
}
PreprocessContract small_contract() {
  PreprocessContract c = PreprocessContract::clap_unfused();
  c.max_samples = 48000;  // 1 s windows keep the tests fast
  return c;
}
}  // namespace

TEST(Frontend, PaddingModesAreDistinctAndExact) {
  const std::vector<float> x = ramp(20000);
  std::vector<LogMel> m;
  for (Padding p : {Padding::RepeatPad, Padding::Repeat, Padding::Pad}) {
    PreprocessContract c = small_contract();
    c.padding = p;
    m.push_back(FeatureExtractor(c).extract(x));
  }
  // 48000/20000 = 2 copies: repeatpad = x x 0..., repeat = x x x[:8000], pad = x 0...
  const int hop = 480;
  const int first_frame_after_two_copies = 40000 / hop + 3;
  const size_t bins = 64;
  const size_t i = size_t(first_frame_after_two_copies) * bins + 10;
  EXPECT_NEAR(m[0].data[i], -100.0f, 1e-4);  // silence after two copies
  EXPECT_GT(m[1].data[i], -80.0f);           // third partial copy
  const size_t j = size_t(25000 / hop) * bins + 10;
  EXPECT_NEAR(m[2].data[j], -100.0f, 1e-4);  // pad: silence after the clip
  EXPECT_GT(m[0].data[j], -80.0f);
  for (const auto& mm : m) {
    EXPECT_EQ(mm.frames, 101);
    EXPECT_FALSE(mm.is_longer);
  }
}

TEST(Frontend, DeterministicTruncationPolicies) {
  const std::vector<float> x = ramp(48000 * 3 + 123);
  PreprocessContract c = small_contract();
  c.truncation = Truncation::First;
  const LogMel first = FeatureExtractor(c).extract(x);
  EXPECT_EQ(first.crop_start_sample, 0);
  EXPECT_TRUE(first.is_longer);
  c.truncation = Truncation::Middle;
  const LogMel mid = FeatureExtractor(c).extract(x);
  EXPECT_EQ(mid.crop_start_sample, (int64_t(x.size()) - 48000) / 2);
  // the middle window's features equal those of the cropped samples
  std::vector<float> crop(x.begin() + mid.crop_start_sample, x.begin() + mid.crop_start_sample + 48000);
  EXPECT_EQ(FeatureExtractor(c).extract(crop).data, mid.data);
  // same input, same features, every time
  EXPECT_EQ(FeatureExtractor(c).extract(x).data, mid.data);

  c.truncation = Truncation::Windows;
  const LogMel win = FeatureExtractor(c).extract(x);
  ASSERT_EQ(win.windows, 4);  // 0, 1 s, 2 s and the tail window ending at the last sample
  EXPECT_EQ(win.window_starts, (std::vector<int64_t>{0, 48000, 96000, int64_t(x.size()) - 48000}));
  EXPECT_EQ(win.data.size(), 4 * win.window_size());
  c.max_windows = 2;
  const LogMel two = FeatureExtractor(c).extract(x);
  EXPECT_EQ(two.window_starts, (std::vector<int64_t>{0, int64_t(x.size()) - 48000}));
}

TEST(Frontend, RandomTruncationIsSeeded) {
  const std::vector<float> x = ramp(48000 * 2);
  PreprocessContract c = small_contract();
  c.truncation = Truncation::RandTrunc;
  c.seed = 11;
  const LogMel a = FeatureExtractor(c).extract(x);
  const LogMel b = FeatureExtractor(c).extract(x);
  EXPECT_EQ(a.crop_start_sample, b.crop_start_sample);
  EXPECT_EQ(a.data, b.data);
  NumpyRandom np(11);
  EXPECT_EQ(a.crop_start_sample, np.randint(0, 48001));
  c.seed = 12;
  EXPECT_NE(FeatureExtractor(c).extract(x).crop_start_sample, a.crop_start_sample);
}

TEST(Frontend, FusionShortClipPolicies) {
  const std::vector<float> a = ramp(10000), b = ramp(20000);
  std::vector<const std::vector<float>*> batch{&a, &b};
  PreprocessContract c = PreprocessContract::clap_fused();
  c.max_samples = 48000;
  for (ShortFusion s : {ShortFusion::Always, ShortFusion::Never, ShortFusion::Reference}) {
    c.short_fusion = s;
    const auto m = FeatureExtractor(c).extract_batch(batch);
    ASSERT_EQ(m[0].channels, 4);
    const int flagged = int(m[0].is_longer) + int(m[1].is_longer);
    EXPECT_EQ(flagged, s == ShortFusion::Always ? 2 : s == ShortFusion::Never ? 0 : 1);
    // all four channels of a short clip are the same mel
    EXPECT_TRUE(std::equal(m[0].data.begin(), m[0].data.begin() + m[0].frames * 64,
                           m[0].data.begin() + 3 * m[0].frames * 64));
  }
}

TEST(Frontend, FusionCenteredChunksAreDeterministic) {
  const std::vector<float> x = ramp(48000 * 2 + 4800);
  PreprocessContract c = PreprocessContract::clap_fused();
  c.max_samples = 48000;
  const LogMel m = FeatureExtractor(c).extract(x);
  // total frames 211, chunk 101 -> starts 0..110 split in thirds of 37: centres 18, 55, 92
  EXPECT_EQ(m.chunk_start_frames, (std::array<int64_t, 3>{{18, 55, 92}}));
  EXPECT_TRUE(m.is_longer);
  EXPECT_EQ(FeatureExtractor(c).extract(x).data, m.data);
}

TEST(Frontend, EmptyClipIsAnError) {
  FeatureExtractor fe;
  std::vector<float> none;
  EXPECT_THROW(fe.extract(none), Error);
}

TEST(Frontend, BilinearResizeMatchesHandComputedRows) {
  // 3 rows -> 2 rows: scale 1.5, src(0) = 0.25, src(1) = 1.75
  const float in[6] = {0, 10, 4, 20, 8, 40};  // 3 x 2
  const auto out = resize_rows_bilinear(in, 3, 2, 2);
  EXPECT_FLOAT_EQ(out[0], 0.75f * 0 + 0.25f * 4);
  EXPECT_FLOAT_EQ(out[1], 0.75f * 10 + 0.25f * 20);
  EXPECT_FLOAT_EQ(out[2], 0.25f * 4 + 0.75f * 8);
  EXPECT_FLOAT_EQ(out[3], 0.25f * 20 + 0.75f * 40);
}
