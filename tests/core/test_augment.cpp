// Audio augmentation, checked numerically: gain, noise at a requested SNR, pitch shift and time
// stretch (rubberband), echo, EQ, distortion, reverb, and the seeded JSON chain.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "synclap/augment.h"
#include "synclap/error.h"

using namespace synclap;

namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> sine(double hz, double seconds, int rate = 48000, double amp = 0.5) {
  std::vector<float> x(size_t(seconds * rate));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(amp * std::sin(2 * kPi * hz * double(i) / rate));
  return x;
}

double rms(const std::vector<float>& x, size_t from = 0, size_t to = 0) {
  if (to == 0) to = x.size();
  double s = 0;
  for (size_t i = from; i < to; ++i) s += double(x[i]) * x[i];
  return std::sqrt(s / double(to - from));
}

// Frequency of the strongest component between lo and hi Hz: Goertzel power of the Hann-windowed
// middle second, a 2 Hz scan refined at 0.05 Hz around the best bin.
double peak_frequency(const std::vector<float>& x, int rate, double lo, double hi) {
  const size_t n = size_t(rate), start = x.size() / 2 - n / 2;
  std::vector<double> win(n);
  for (size_t i = 0; i < n; ++i) win[i] = x[start + i] * (0.5 - 0.5 * std::cos(2 * kPi * double(i) / double(n)));
  auto power = [&](double f) {
    const double coeff = 2 * std::cos(2 * kPi * f / rate);
    double s1 = 0, s2 = 0;
    for (double v : win) {
      const double s0 = v + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    return s1 * s1 + s2 * s2 - coeff * s1 * s2;
  };
  auto scan = [&](double a, double b, double step) {
    double best = -1, best_f = a;
    for (double f = a; f <= b; f += step) {
      const double p = power(f);
      if (p > best) best = p, best_f = f;
    }
    return best_f;
  };
  const double coarse = scan(lo, hi, 2.0);
  return scan(coarse - 2.0, coarse + 2.0, 0.05);
}

double gain_db_at(double hz, const EqSettings& eq) {
  auto x = sine(hz, 1.0);
  const double before = rms(x, 24000, 48000);
  apply_eq(x, 48000, eq);
  return 20 * std::log10(rms(x, 24000, 48000) / before);
}

}  // namespace

TEST(Augment, GainIsExact) {
  auto x = sine(440, 0.1);
  const auto y0 = x;
  apply_gain_db(x, -6.0);
  const double g = std::pow(10.0, -6.0 / 20);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(x[i], float(y0[i] * g));
}

TEST(Augment, NoiseMeetsTheRequestedSnr) {
  for (const char* color : {"white", "pink", "brown"})
    for (double snr : {0.0, 10.0, 25.0}) {
      const auto clean = sine(300, 1.0);
      auto noisy = clean;
      add_noise_snr(noisy, snr, 17, color);
      std::vector<float> noise(clean.size());
      for (size_t i = 0; i < clean.size(); ++i) noise[i] = noisy[i] - clean[i];
      const double measured = 20 * std::log10(rms(clean) / rms(noise));
      EXPECT_NEAR(measured, snr, 0.1) << color;
      auto again = clean;
      add_noise_snr(again, snr, 17, color);
      EXPECT_EQ(again, noisy);  // seeded
      auto other = clean;
      add_noise_snr(other, snr, 18, color);
      EXPECT_NE(other, noisy);
    }
  EXPECT_THROW({ auto x = sine(300, 0.1); add_noise_snr(x, 10, 1, "purple"); }, Error);
}

#ifdef SYNCLAP_HAVE_RUBBERBAND
TEST(Augment, PitchShiftMovesTheSineByTheRightRatio) {
  const auto x = sine(440, 2.0);
  for (double semis : {3.0, -5.0}) {
    const auto y = pitch_shift(x, 48000, semis);
    EXPECT_EQ(y.size(), x.size());
    const double expected = 440 * std::pow(2.0, semis / 12);
    EXPECT_NEAR(peak_frequency(y, 48000, 200, 900), expected, expected * 0.005) << semis;
  }
}

TEST(Augment, TimeStretchChangesLengthNotPitch) {
  const auto x = sine(500, 2.0);
  const auto y = time_stretch(x, 48000, 1.25);
  EXPECT_EQ(y.size(), size_t(std::llround(x.size() * 1.25)));
  EXPECT_NEAR(peak_frequency(y, 48000, 300, 700), 500, 2.5);
  EXPECT_NEAR(rms(y, 10000, 100000), rms(x, 10000, 80000), 0.1 * rms(x));
}
#endif

TEST(Augment, EchoRepeatsAnImpulseAtTheDelay) {
  std::vector<float> x(48000, 0.0f);
  x[100] = 1.0f;
  apply_echo(x, 48000, 0.1, 0.5, 0.8);
  EXPECT_FLOAT_EQ(x[100], 1.0f);
  EXPECT_FLOAT_EQ(x[100 + 4800], 0.8f);
  EXPECT_FLOAT_EQ(x[100 + 9600], 0.4f);
  EXPECT_FLOAT_EQ(x[100 + 14400], 0.2f);
  EXPECT_FLOAT_EQ(x[101], 0.0f);
}

TEST(Augment, EqShelvesPeakAndFiltersHaveTheirGains) {
  EqSettings peak;
  peak.peak_db = 6;
  peak.peak_hz = 1000;
  EXPECT_NEAR(gain_db_at(1000, peak), 6.0, 0.1);
  EXPECT_NEAR(gain_db_at(8000, peak), 0.0, 0.3);
  EqSettings low;
  low.low_shelf_db = -9;
  low.low_shelf_hz = 300;
  EXPECT_NEAR(gain_db_at(40, low), -9.0, 0.3);
  EXPECT_NEAR(gain_db_at(10000, low), 0.0, 0.1);
  EqSettings lp;
  lp.lowpass_hz = 2000;
  EXPECT_NEAR(gain_db_at(2000, lp), -3.01, 0.1);  // Butterworth: -3 dB at the corner
  EXPECT_LT(gain_db_at(8000, lp), -20.0);
  EqSettings hp;
  hp.highpass_hz = 500;
  EXPECT_NEAR(gain_db_at(500, hp), -3.01, 0.1);
  EXPECT_LT(gain_db_at(100, hp), -20.0);
}

TEST(Augment, DistortionAddsHarmonicsAndKeepsFullScale) {
  auto x = sine(1000, 1.0, 48000, 1.0);
  apply_distortion(x, 5.0, 1.0);
  EXPECT_NEAR(*std::max_element(x.begin(), x.end()), 1.0, 1e-4);
  // Odd harmonic at 3 kHz appears.
  EXPECT_NEAR(peak_frequency(x, 48000, 2500, 3500), 3000, 1.0);
  auto clean = sine(1000, 1.0, 48000, 1.0);
  auto h3 = [](const std::vector<float>& s) {
    double re = 0, im = 0;
    for (size_t i = 0; i < 48000; ++i) {
      re += s[i] * std::cos(2 * kPi * 3000 * double(i) / 48000);
      im += s[i] * std::sin(2 * kPi * 3000 * double(i) / 48000);
    }
    return std::sqrt(re * re + im * im) / 24000;
  };
  EXPECT_GT(h3(x), 0.1);
  EXPECT_LT(h3(clean), 1e-3);
}

TEST(Augment, ReverbAddsADecayingTail) {
  std::vector<float> x(48000, 0.0f);
  x[0] = 1.0f;
  apply_reverb(x, 48000, 0.8, 0.3, 1.0);
  const double early = rms(x, 2000, 8000), late = rms(x, 30000, 48000);
  EXPECT_GT(early, 1e-4);
  EXPECT_GT(late, 0.0);
  EXPECT_LT(late, early);
  std::vector<float> y(48000, 0.0f);
  y[0] = 1.0f;
  apply_reverb(y, 48000, 0.2, 0.3, 1.0);
  EXPECT_LT(rms(y, 30000, 48000), late);  // a smaller room decays faster
}

TEST(Augment, ChainIsSeededComposableAndValidated) {
  const std::string spec = R"([{"type":"gain","db":[-6,6]},{"type":"noise","snr_db":[20,30],"color":"pink","p":0.5},
                               {"type":"echo","delay_s":0.05,"feedback":0.3,"mix":0.3},{"type":"eq","peak_db":3}])";
  const AugmentChain chain = AugmentChain::parse(spec);
  ASSERT_EQ(chain.steps.size(), 4u);
  Waveform a{sine(440, 0.5), 48000}, b = a, c = a;
  const std::string ra = chain.apply(a, 5), rb = chain.apply(b, 5), rc = chain.apply(c, 6);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(a.samples, c.samples);
  EXPECT_NE(ra.find("\"gain\""), std::string::npos);
  // The gain step alone: the applied value is in range and exact.
  const AugmentChain g = AugmentChain::parse(R"({"steps":[{"type":"gain","db":[-6,6]}]})");
  Waveform s{sine(440, 0.1), 48000};
  const auto before = s.samples;
  const auto rec = nlohmann::json::parse(g.apply(s, 9));
  const double db = rec[0]["db"].get<double>();
  EXPECT_GE(db, -6.0);
  EXPECT_LE(db, 6.0);
  EXPECT_NEAR(rms(s.samples) / rms(before), std::pow(10.0, db / 20), 1e-5);
  for (const char* bad : {"{", R"([{"type":"warp"}])", R"([{"type":"gain","db":[3,1]}])", R"([{"type":"gain","volume":1}])",
                          R"([{"type":"noise"}])", R"([{"type":"gain","db":1,"p":2}])"})
    EXPECT_THROW(AugmentChain::parse(bad), Error) << bad;
  EXPECT_TRUE(AugmentChain::parse("").empty());
}
