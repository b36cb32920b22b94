// Parity of the log-mel front end with the reference (HF ClapFeatureExtractor v4.43.4), on every
// reference file found in SYNCLAP_GOLDEN_DIR: fe_*.safetensors (one signal, several extractor calls),
// batch files (fe_batch_*), and the inputs of the model cases (case_*.safetensors). Cases are found by
// pattern and described by each file's own metadata, so a new reference file is tested without a code
// change.
//
// Residuals (measured): features within ~8e-6 dB of the reference (about one float32 ulp at 100 dB: the
// FFT's summation order differs from pocketfft's); filters and window within 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "synclap/frontend.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {

constexpr double kFeatureTolDb = 1e-4;  // the bound

PreprocessContract base_contract() {
  const std::string cfg = test::golden_dir() + "/feature_extractor_config.json";
  return PreprocessContract::from_hf_preprocessor(read_file(cfg));
}

// A contract for one recorded extractor call {"truncation", "padding", "np_seed"}.
PreprocessContract contract_for_call(const nlohmann::json& call) {
  PreprocessContract c = base_contract();
  const bool fused = call.at("truncation").get<std::string>() == "fusion";
  PreprocessContract ref = PreprocessContract::reference(fused);
  c.fusion = ref.fusion;
  c.truncation = ref.truncation;
  c.mel_scale = ref.mel_scale;
  c.slaney_norm = ref.slaney_norm;
  c.chunk_choice = ChunkChoice::Random;
  c.short_fusion = ShortFusion::Reference;
  c.padding = padding_from_string(call.at("padding").get<std::string>());
  c.seed = call.at("np_seed").get<uint32_t>();
  return c;
}

struct Diff {
  double max_abs = 0;
  size_t worst = 0;
};

Diff compare(const std::vector<float>& got, const std::vector<float>& want) {
  Diff d;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(double(got[i]) - double(want[i]));
    if (!(e <= d.max_abs)) {
      d.max_abs = e;
      d.worst = i;
    }
  }
  return d;
}

std::vector<float> flatten(const std::vector<LogMel>& mels) {
  std::vector<float> all;
  for (const auto& m : mels) all.insert(all.end(), m.data.begin(), m.data.end());
  return all;
}

std::vector<float> signal_waveform(const std::string& name) {
  SafetensorsReader r(test::golden_dir() + "/fe_" + name + ".safetensors");
  return r.floats("waveform");
}

// Checks the random choices we made against the reference's recorded rng_calls.
void expect_same_choices(const nlohmann::json& call, const std::vector<LogMel>& mels, const std::string& where) {
  std::vector<int64_t> recorded;
  for (const auto& c : call.at("rng_calls")) recorded.push_back(c.at("result").get<int64_t>());
  std::vector<int64_t> ours;
  for (const auto& m : mels) {
    if (m.crop_start_sample >= 0 && !(m.window_starts.size() > 0)) ours.push_back(m.crop_start_sample);
    if (m.chunk_start_frames[0] >= 0)
      for (int64_t s : m.chunk_start_frames) ours.push_back(s);
  }
  // The forced is_longer draw of an all-short fusion batch is recorded last; its result is the index.
  if (ours.size() + 1 == recorded.size()) {
    for (size_t i = 0; i < mels.size(); ++i)
      if (mels[i].is_longer) ours.push_back(int64_t(i));
  }
  EXPECT_EQ(ours, recorded) << where << ": random choices differ from the recorded ones";
}

}  // namespace

TEST(GoldenFrontend, WindowAndFilterBanks) {
  const std::string path = test::golden_dir() + "/fe_filters.safetensors";
  ASSERT_TRUE(test::file_exists(path)) << path;
  SafetensorsReader r(path);
  PreprocessContract c = base_contract();
  const auto w = hann_window_periodic(c.n_fft);
  const auto ref_w = r.doubles("window_hann_periodic_1024_f64");
  ASSERT_EQ(w.size(), ref_w.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], ref_w[i], 1e-15) << i;

  struct Bank {
    const char* name;
    double fmin;
    bool norm;
    MelScale scale;
  };
  const Bank banks[] = {{"mel_filters_htk_f64", c.f_min, false, MelScale::Htk},
                        {"mel_filters_slaney_f64", c.f_min, true, MelScale::Slaney},
                        {"fmin0.mel_filters_htk_f64", 0.0, false, MelScale::Htk},
                        {"fmin0.mel_filters_slaney_f64", 0.0, true, MelScale::Slaney}};
  int checked = 0;
  for (const auto& b : banks) {
    if (!r.contains(b.name)) continue;
    const auto want = r.doubles(b.name);
    const auto got = mel_filter_bank(c.n_fft / 2 + 1, c.n_mels, b.fmin, c.f_max, c.sample_rate, b.norm, b.scale);
    ASSERT_EQ(got.size(), want.size()) << b.name;
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LT(worst, 1e-12) << b.name;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(GoldenFrontend, SingleSignalCalls) {
  const auto files = test::glob_files(test::golden_dir(), "fe_*.safetensors");
  int cases = 0;
  for (const auto& path : files) {
    SafetensorsReader r(path);
    if (!r.contains("waveform")) continue;
    const std::vector<float> wave = r.floats("waveform");
    for (const auto& name : r.names()) {
      const std::string suffix = ".input_features";
      if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string mode = name.substr(0, name.size() - suffix.size());
      SCOPED_TRACE(path + " : " + mode);
      ASSERT_TRUE(r.metadata().count(mode + ".call")) << "no metadata for " << mode;
      const auto call = nlohmann::json::parse(r.metadata().at(mode + ".call"));
      FeatureExtractor fe(contract_for_call(call));
      NumpyRandom rng(fe.contract().seed);
      std::vector<const std::vector<float>*> batch{&wave};
      const std::vector<LogMel> mels = fe.extract_batch(batch, &rng, 2);
      const auto& info = r.info(name);
      ASSERT_EQ(info.shape[1], mels[0].channels);
      ASSERT_EQ(info.shape[2], mels[0].frames);
      ASSERT_EQ(info.shape[3], mels[0].bins);
      const auto want = r.floats(name);
      const Diff d = compare(flatten(mels), want);
      EXPECT_LE(d.max_abs, kFeatureTolDb) << "worst element " << d.worst;
      const auto is_longer = r.int64s(mode + ".is_longer");
      EXPECT_EQ(mels[0].is_longer, is_longer[0] != 0);
      expect_same_choices(call, mels, path + ":" + mode);
      if (r.contains(mode + ".crop_start_sample"))
        EXPECT_EQ(mels[0].crop_start_sample, r.int64s(mode + ".crop_start_sample")[0]);
      if (r.contains(mode + ".chunk_start_frames")) {
        const auto ch = r.int64s(mode + ".chunk_start_frames");
        EXPECT_EQ(std::vector<int64_t>(mels[0].chunk_start_frames.begin(), mels[0].chunk_start_frames.end()), ch);
      }
      ++cases;
    }
  }
  EXPECT_GE(cases, 14) << "expected the 14 reference calls of the fe_* files";
}

TEST(GoldenFrontend, DebugIntermediates) {
  for (const auto& path : test::glob_files(test::golden_dir(), "fe_*.safetensors")) {
    SafetensorsReader r(path);
    for (const auto& name : r.names()) {
      if (name.rfind("debug.", 0) != 0) continue;
      SCOPED_TRACE(path + " : " + name);
      // debug.<mode>.power_spectrogram_frames0_7 / debug.<mode>.mel_power
      const std::string rest = name.substr(6);
      const std::string mode = rest.substr(0, rest.find('.'));
      const auto call = nlohmann::json::parse(r.metadata().at(mode + ".call"));
      PreprocessContract c = contract_for_call(call);
      FeatureExtractor fe(c);
      const auto wave = r.floats("waveform");
      ASSERT_LE(int64_t(wave.size()), c.max_samples);
      const auto want = r.doubles(name);
      if (name.find("mel_power") != std::string::npos) {
        // dB values of our features back in power: compare relative
        NumpyRandom rng(c.seed);
        const LogMel m = fe.extract(wave, &rng);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          const double ours_db = m.data[i];
          const double ref_db = 10.0 * std::log10(std::max(want[i], 1e-10));
          worst = std::max(worst, std::fabs(ours_db - ref_db));
        }
        EXPECT_LT(worst, kFeatureTolDb);
      }
    }
  }
}

TEST(GoldenFrontend, BatchedCallsAndModelInputs) {
  int cases = 0;
  std::vector<std::string> files = test::glob_files(test::golden_dir(), "fe_batch_*.safetensors");
  for (const auto& f : test::glob_files(test::golden_dir(), "case_*.safetensors")) files.push_back(f);
  for (const auto& path : files) {
    SafetensorsReader r(path);
    const auto& meta = r.metadata();
    const std::string list_key = meta.count("batch") ? "batch" : "audio_signals";
    const std::string call_key = meta.count("call") ? "call" : "feature_extractor_call";
    if (!meta.count(list_key) || !meta.count(call_key)) continue;
    SCOPED_TRACE(path);
    const auto signals = nlohmann::json::parse(meta.at(list_key)).get<std::vector<std::string>>();
    const auto call = nlohmann::json::parse(meta.at(call_key));
    std::vector<std::vector<float>> waves;
    for (const auto& s : signals) waves.push_back(signal_waveform(s));
    std::vector<const std::vector<float>*> batch;
    for (const auto& w : waves) batch.push_back(&w);
    FeatureExtractor fe(contract_for_call(call));
    NumpyRandom rng(fe.contract().seed);
    const auto mels = fe.extract_batch(batch, &rng, 2);
    const auto is_longer = r.int64s("is_longer");
    ASSERT_EQ(is_longer.size(), mels.size());
    for (size_t i = 0; i < mels.size(); ++i) EXPECT_EQ(mels[i].is_longer, is_longer[i] != 0) << "item " << i;
    if (r.contains("input_features")) {
      const Diff d = compare(flatten(mels), r.floats("input_features"));
      EXPECT_LE(d.max_abs, kFeatureTolDb) << "worst element " << d.worst;
    }
    expect_same_choices(call, mels, path);
    ++cases;
  }
  EXPECT_GE(cases, 5) << "expected fe_batch_fusion_allshort and the 4 model cases";
}

// The extractor's result must not depend on the number of threads.
TEST(Frontend, ThreadCountDoesNotChangeFeatures) {
  std::vector<std::vector<float>> clips;
  for (int k = 0; k < 3; ++k) {
    std::vector<float> x(100000 + 250000 * k);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.3f * std::sin(0.01f * (k + 1) * float(i));
    clips.push_back(x);
  }
  std::vector<const std::vector<float>*> batch;
  for (auto& c : clips) batch.push_back(&c);
  FeatureExtractor fe(PreprocessContract::reference(true));
  NumpyRandom r1(5), r2(5);
  const auto a = fe.extract_batch(batch, &r1, 1);
  const auto b = fe.extract_batch(batch, &r2, 2);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].data, b[i].data);
    EXPECT_EQ(a[i].is_longer, b[i].is_longer);
  }
}
