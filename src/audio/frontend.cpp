// The CLAP log-mel front end. Follows HF transformers' ClapFeatureExtractor (v4.43.4) step by step:
// padding/truncation of the waveform, reflect-padded STFT (periodic Hann, float64 FFT whose output the
// reference stores as complex64), power spectrum, mel filter bank (sparse here: each filter touches only
// a few FFT bins), floor at 1e-10, 10*log10, float32.
#include "synclap/frontend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "audio/logmel_simd.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {

// ---------------------------------------------------------------------------------------------
// Names

std::string to_string(Padding p) {
  switch (p) {
    case Padding::RepeatPad: return "repeatpad";
    case Padding::Repeat: return "repeat";
    case Padding::Pad: return "pad";
  }
  return "?";
}
std::string to_string(Truncation t) {
  switch (t) {
    case Truncation::RandTrunc: return "rand_trunc";
    case Truncation::Fusion: return "fusion";
    case Truncation::First: return "first";
    case Truncation::Middle: return "middle";
    case Truncation::Windows: return "windows";
  }
  return "?";
}
std::string to_string(MelScale m) { return m == MelScale::Slaney ? "slaney" : "htk"; }
static std::string to_string(ChunkChoice c) { return c == ChunkChoice::Random ? "random" : "centered"; }
static std::string to_string(ShortFusion s) {
  return s == ShortFusion::Reference ? "reference" : s == ShortFusion::Always ? "always" : "never";
}

Padding padding_from_string(const std::string& s) {
  if (s == "repeatpad") return Padding::RepeatPad;
  if (s == "repeat") return Padding::Repeat;
  if (s == "pad") return Padding::Pad;
  throw Error("unknown padding '" + s + "' (repeatpad, repeat, pad)");
}
Truncation truncation_from_string(const std::string& s) {
  if (s == "rand_trunc") return Truncation::RandTrunc;
  if (s == "fusion") return Truncation::Fusion;
  if (s == "first") return Truncation::First;
  if (s == "middle") return Truncation::Middle;
  if (s == "windows") return Truncation::Windows;
  throw Error("unknown truncation '" + s + "' (rand_trunc, fusion, first, middle, windows)");
}
MelScale mel_scale_from_string(const std::string& s) {
  if (s == "slaney") return MelScale::Slaney;
  if (s == "htk") return MelScale::Htk;
  throw Error("unknown mel scale '" + s + "' (slaney, htk)");
}
static ChunkChoice chunk_choice_from_string(const std::string& s) {
  if (s == "random") return ChunkChoice::Random;
  if (s == "centered") return ChunkChoice::Centered;
  throw Error("unknown chunk choice '" + s + "' (random, centered)");
}
static ShortFusion short_fusion_from_string(const std::string& s) {
  if (s == "reference") return ShortFusion::Reference;
  if (s == "always") return ShortFusion::Always;
  if (s == "never") return ShortFusion::Never;
  throw Error("unknown short_fusion '" + s + "' (reference, always, never)");
}

// ---------------------------------------------------------------------------------------------
// The contract

PreprocessContract PreprocessContract::clap_unfused() {
  PreprocessContract c;
  c.mel_scale = MelScale::Slaney;
  c.slaney_norm = true;
  c.fusion = false;
  c.truncation = Truncation::Middle;
  return c;
}

PreprocessContract PreprocessContract::clap_fused() {
  PreprocessContract c;
  c.mel_scale = MelScale::Htk;
  c.slaney_norm = false;
  c.fusion = true;
  c.truncation = Truncation::Fusion;
  c.chunk_choice = ChunkChoice::Centered;
  c.short_fusion = ShortFusion::Always;
  return c;
}

PreprocessContract PreprocessContract::reference(bool fused) {
  PreprocessContract c = fused ? clap_fused() : clap_unfused();
  c.truncation = fused ? Truncation::Fusion : Truncation::RandTrunc;
  c.chunk_choice = ChunkChoice::Random;
  c.short_fusion = ShortFusion::Reference;
  return c;
}

std::string PreprocessContract::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = "synclap.preprocess/1";
  j["sample_rate"] = sample_rate;
  j["n_fft"] = n_fft;
  j["hop_length"] = hop_length;
  j["window"] = "hann_periodic";
  j["center"] = true;
  j["pad_mode"] = "reflect";
  j["power"] = 2.0;
  j["n_mels"] = n_mels;
  j["f_min"] = f_min;
  j["f_max"] = f_max;
  j["mel_scale"] = to_string(mel_scale);
  j["mel_norm"] = slaney_norm ? "slaney" : "none";
  j["log"] = "10*log10(max(mel, 1e-10)), no top_db";
  j["max_samples"] = max_samples;
  j["fusion"] = fusion;
  j["padding"] = to_string(padding);
  j["truncation"] = to_string(truncation);
  j["chunk_choice"] = to_string(chunk_choice);
  j["short_fusion"] = to_string(short_fusion);
  j["window_hop_samples"] = window_hop_samples;
  j["max_windows"] = max_windows;
  j["int16_roundtrip"] = int16_roundtrip;
  j["seed"] = seed;
  return j.dump(2);
}

PreprocessContract PreprocessContract::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(std::string("preprocessing contract: invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error("preprocessing contract: not a JSON object");
  PreprocessContract c;
  try {
    auto get = [&](const char* k, auto& v) {
      if (j.contains(k)) v = j.at(k).get<std::decay_t<decltype(v)>>();
    };
    get("sample_rate", c.sample_rate);
    get("n_fft", c.n_fft);
    get("hop_length", c.hop_length);
    get("n_mels", c.n_mels);
    get("f_min", c.f_min);
    get("f_max", c.f_max);
    get("max_samples", c.max_samples);
    get("fusion", c.fusion);
    get("window_hop_samples", c.window_hop_samples);
    get("max_windows", c.max_windows);
    get("int16_roundtrip", c.int16_roundtrip);
    get("seed", c.seed);
    if (j.contains("mel_scale")) c.mel_scale = mel_scale_from_string(j["mel_scale"].get<std::string>());
    if (j.contains("mel_norm")) c.slaney_norm = j["mel_norm"].get<std::string>() == "slaney";
    if (j.contains("padding")) c.padding = padding_from_string(j["padding"].get<std::string>());
    if (j.contains("truncation")) c.truncation = truncation_from_string(j["truncation"].get<std::string>());
    if (j.contains("chunk_choice")) c.chunk_choice = chunk_choice_from_string(j["chunk_choice"].get<std::string>());
    if (j.contains("short_fusion")) c.short_fusion = short_fusion_from_string(j["short_fusion"].get<std::string>());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("preprocessing contract: ") + e.what());
  }
  c.validate();
  return c;
}

PreprocessContract PreprocessContract::from_hf_preprocessor(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(std::string("preprocessor_config.json: invalid JSON: ") + e.what());
  }
  const std::string trunc = j.value("truncation", std::string("fusion"));
  PreprocessContract c = reference(trunc == "fusion");
  c.sample_rate = j.value("sampling_rate", 48000);
  c.n_fft = j.value("fft_window_size", 1024);
  c.hop_length = j.value("hop_length", 480);
  c.n_mels = j.value("feature_size", 64);
  c.f_min = j.value("frequency_min", 0.0);
  c.f_max = j.value("frequency_max", 14000.0);
  c.max_samples = j.value("nb_max_samples", int64_t(480000));
  c.padding = padding_from_string(j.value("padding", std::string("repeatpad")));
  if (j.contains("top_db") && !j["top_db"].is_null()) throw Error("preprocessor_config.json: top_db is not supported");
  c.validate();
  return c;
}

void PreprocessContract::validate() const {
  auto fail = [](const std::string& m) { throw Error("preprocessing contract: " + m); };
  if (sample_rate < 1000 || sample_rate > 768000) fail("sample_rate out of range");
  if (n_fft < 16 || n_fft > 65536 || (n_fft & (n_fft - 1))) fail("n_fft must be a power of two in [16, 65536]");
  if (hop_length < 1 || hop_length > n_fft) fail("hop_length must be in [1, n_fft]");
  if (n_mels < 1 || n_mels > 1024) fail("n_mels out of range");
  if (!(f_min >= 0 && f_max > f_min && f_max <= sample_rate / 2.0)) fail("need 0 <= f_min < f_max <= sample_rate/2");
  if (max_samples < n_fft || max_samples > int64_t(sample_rate) * 3600) fail("max_samples out of range");
  if (truncation == Truncation::Fusion && !fusion) fail("truncation 'fusion' needs a fusion model (fusion: true)");
  if (window_hop_samples < 0 || max_windows < 0) fail("window_hop_samples and max_windows must be >= 0");
}

// ---------------------------------------------------------------------------------------------
// Window and filters (float64, formulas as the reference's audio_utils)

std::vector<double> hann_window_periodic(int n) {
  // np.hanning(n + 1)[:-1]: 0.5 - 0.5 cos(2 pi k / n)
  std::vector<double> w(n);
  for (int k = 0; k < n; ++k) w[k] = 0.5 - 0.5 * std::cos(2.0 * M_PI * k / n);
  return w;
}

static double hz_to_mel(double f, MelScale s) {
  if (s == MelScale::Htk) return 2595.0 * std::log10(1.0 + f / 700.0);
  const double min_log_hz = 1000.0, min_log_mel = 15.0, logstep = 27.0 / std::log(6.4);
  double m = 3.0 * f / 200.0;
  if (f >= min_log_hz) m = min_log_mel + std::log(f / min_log_hz) * logstep;
  return m;
}

static double mel_to_hz(double m, MelScale s) {
  if (s == MelScale::Htk) return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
  const double min_log_hz = 1000.0, min_log_mel = 15.0, logstep = std::log(6.4) / 27.0;
  double f = 200.0 * m / 3.0;
  if (m >= min_log_mel) f = min_log_hz * std::exp(logstep * (m - min_log_mel));
  return f;
}

std::vector<double> mel_filter_bank(int num_bins, int num_mels, double f_min, double f_max, int sr, bool slaney_norm,
                                    MelScale scale) {
  const double mel_min = hz_to_mel(f_min, scale), mel_max = hz_to_mel(f_max, scale);
  // np.linspace(mel_min, mel_max, num_mels + 2)
  const int np2 = num_mels + 2;
  std::vector<double> filter_hz(np2);
  const double step = (mel_max - mel_min) / (np2 - 1);
  for (int i = 0; i < np2; ++i) {
    double m = mel_min + i * step;
    if (i == np2 - 1) m = mel_max;
    filter_hz[i] = mel_to_hz(m, scale);
  }
  // np.linspace(0, sr // 2, num_bins)
  std::vector<double> fft_hz(num_bins);
  const double fstep = double(sr / 2) / (num_bins - 1);
  for (int i = 0; i < num_bins; ++i) fft_hz[i] = (i == num_bins - 1) ? double(sr / 2) : i * fstep;
  std::vector<double> fb(size_t(num_bins) * num_mels, 0.0);
  for (int m = 0; m < num_mels; ++m) {
    const double d_lo = filter_hz[m + 1] - filter_hz[m], d_hi = filter_hz[m + 2] - filter_hz[m + 1];
    const double enorm = slaney_norm ? 2.0 / (filter_hz[m + 2] - filter_hz[m]) : 1.0;
    for (int b = 0; b < num_bins; ++b) {
      const double down = -(filter_hz[m] - fft_hz[b]) / d_lo;   // rising edge
      const double up = (filter_hz[m + 2] - fft_hz[b]) / d_hi;  // falling edge
      double v = std::max(0.0, std::min(down, up));
      if (slaney_norm) v *= enorm;
      fb[size_t(b) * num_mels + m] = v;
    }
  }
  return fb;
}

std::vector<float> resize_rows_bilinear(const float* in, int rows, int cols, int out_rows) {
  std::vector<float> out(size_t(out_rows) * cols);
  if (rows == out_rows) {
    std::copy(in, in + size_t(rows) * cols, out.begin());
    return out;
  }
  // As torch 1.13's CPU kernel (checked against it on the reference files): the scale is float32
  // (in/out), the source position scale*(dst+0.5)-0.5 is evaluated in float64 and clamped at 0,
  // index0 = trunc(src), index1 = index0+1 (or index0 at the end), lambda1 = float(src - index0).
  const float scale = float(rows) / float(out_rows);
  for (int i = 0; i < out_rows; ++i) {
    double src = double(scale) * (double(i) + 0.5) - 0.5;
    if (src < 0.0) src = 0.0;
    const int i0 = int(src);
    const int i1 = i0 + (i0 < rows - 1 ? 1 : 0);
    const float l1 = float(std::min(std::max(src - double(i0), 0.0), 1.0));
    const float l0 = 1.f - l1;
    const float* a = in + size_t(i0) * cols;
    const float* b = in + size_t(i1) * cols;
    float* o = out.data() + size_t(i) * cols;
    for (int c = 0; c < cols; ++c) o[c] = a[c] * l0 + b[c] * l1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The extractor

struct FeatureExtractor::Plan {
  enum Kind { Padded, Crop, FusionLong, FusionExact, Windows } kind = Padded;
  int64_t crop_start = -1;
  std::array<int64_t, 3> chunks{{-1, -1, -1}};
  std::vector<int64_t> window_starts;
};

struct FeatureExtractor::Kernel {
  std::vector<int> bitrev;
  std::vector<double> twiddle, post, window;
  std::vector<int> fbegin, flen, foff;
  std::vector<double> fweights;
  LogMelTables tables;
  LogMel4Fn fn = nullptr;
};

FeatureExtractor::FeatureExtractor(PreprocessContract c) : contract_(std::move(c)) {
  contract_.validate();
  const int nfft = contract_.n_fft, h = nfft / 2, bins = h + 1, nm = contract_.n_mels;
  window_ = hann_window_periodic(nfft);
  filters_ = mel_filter_bank(bins, nm, contract_.f_min, contract_.f_max, contract_.sample_rate,
                             contract_.slaney_norm, contract_.mel_scale);
  auto k = std::make_shared<Kernel>();
  // Real FFT of n through a complex FFT of n/2 (even/odd packing), radix-2, decimation in time.
  int bits = 0;
  while ((1 << bits) < h) ++bits;
  k->bitrev.resize(h);
  for (int i = 0; i < h; ++i) {
    int r = 0;
    for (int b = 0; b < bits; ++b)
      if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    k->bitrev[i] = r;
  }
  k->twiddle.resize(std::max(2, h));
  for (int i = 0; i < h / 2; ++i) {
    k->twiddle[2 * i] = std::cos(-2.0 * M_PI * i / h);
    k->twiddle[2 * i + 1] = std::sin(-2.0 * M_PI * i / h);
  }
  k->post.resize(2 * (h + 1));
  for (int i = 0; i <= h; ++i) {
    k->post[2 * i] = std::cos(-2.0 * M_PI * i / nfft);
    k->post[2 * i + 1] = std::sin(-2.0 * M_PI * i / nfft);
  }
  k->window = window_;
  // Sparse filters: each mel filter touches a short run of FFT bins.
  for (int m = 0; m < nm; ++m) {
    int lo = bins, hi = -1;
    for (int b = 0; b < bins; ++b)
      if (filters_[size_t(b) * nm + m] != 0.0) {
        lo = std::min(lo, b);
        hi = std::max(hi, b);
      }
    k->fbegin.push_back(hi < lo ? 0 : lo);
    k->flen.push_back(hi < lo ? 0 : hi - lo + 1);  // an empty filter's output is the floor
    k->foff.push_back(int(k->fweights.size()));
    for (int b = lo; b <= hi; ++b) k->fweights.push_back(filters_[size_t(b) * nm + m]);
  }
  LogMelTables& t = k->tables;
  t.n_fft = nfft;
  t.n_mels = nm;
  t.bitrev = k->bitrev.data();
  t.twiddle = k->twiddle.data();
  t.post = k->post.data();
  t.window = k->window.data();
  t.filter_begin = k->fbegin.data();
  t.filter_len = k->flen.data();
  t.filter_offset = k->foff.data();
  t.filter_weights = k->fweights.data();
  k->fn = best_logmel4();
  kernel_ = std::move(k);
}

FeatureExtractor::~FeatureExtractor() = default;

// Log-mel of frames [f0, f1) of a signal that is reflect-padded by n_fft/2 on both sides, four frames
// at a time through the SIMD kernel.
void FeatureExtractor::frames_to_logmel(const float* x, int64_t n, int64_t f0, int64_t f1, float* out) const {
  const int nfft = contract_.n_fft, hop = contract_.hop_length, nm = contract_.n_mels;
  const int64_t pad = nfft / 2;
  const Kernel& k = *kernel_;
  std::vector<double> scratch_mem(size_t(nfft + nfft / 2 + 1) * 4 + 8);
  double* scratch = reinterpret_cast<double*>((reinterpret_cast<uintptr_t>(scratch_mem.data()) + 31) & ~uintptr_t(31));
  std::vector<float> edge(size_t(4) * nfft), spare(size_t(4) * nm);
  auto reflect = [n](int64_t i) -> int64_t {
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);
    i = i < 0 ? -i : i;
    i %= period;
    return i >= n ? period - i : i;
  };
  for (int64_t f = f0; f < f1; f += 4) {
    const float* frames[4];
    float* outs[4];
    for (int l = 0; l < 4; ++l) {
      const int64_t fl = f + l;
      if (fl >= f1) {  // fewer than four frames left: compute a copy, discard its output
        frames[l] = frames[0];
        outs[l] = spare.data() + size_t(l) * nm;
        continue;
      }
      const int64_t s = fl * hop - pad;
      if (s >= 0 && s + nfft <= n) {
        frames[l] = x + s;
      } else {
        float* e = edge.data() + size_t(l) * nfft;
        for (int i = 0; i < nfft; ++i) e[i] = x[reflect(s + i)];
        frames[l] = e;
      }
      outs[l] = out + (fl - f0) * nm;
    }
    k.fn(k.tables, frames, outs, scratch);
  }
}

std::vector<float> FeatureExtractor::log_mel(const float* samples, size_t n, int threads) const {
  if (n == 0) throw Error("log-mel of empty audio");
  const int64_t frames = 1 + int64_t(n) / contract_.hop_length;
  std::vector<float> out(size_t(frames) * contract_.n_mels);
  const int64_t block = 256;
  const int64_t blocks = (frames + block - 1) / block;
  parallel_for(
      blocks,
      [&](int64_t b) {
        const int64_t f0 = b * block, f1 = std::min(frames, f0 + block);
        frames_to_logmel(samples, int64_t(n), f0, f1, out.data() + f0 * contract_.n_mels);
      },
      threads);
  return out;
}

FeatureExtractor::Plan FeatureExtractor::plan(size_t n, NumpyRandom& rng) const {
  const PreprocessContract& c = contract_;
  const int64_t max = c.max_samples;
  Plan p;
  if (int64_t(n) <= max) return p;  // Padded
  const int64_t overflow = int64_t(n) - max;
  switch (c.truncation) {
    case Truncation::RandTrunc:
      p.kind = Plan::Crop;
      p.crop_start = rng.randint(0, overflow + 1);
      break;
    case Truncation::First:
      p.kind = Plan::Crop;
      p.crop_start = 0;
      break;
    case Truncation::Middle:
      p.kind = Plan::Crop;
      p.crop_start = overflow / 2;
      break;
    case Truncation::Fusion: {
      const int64_t chunk = max / c.hop_length + 1;
      const int64_t total = int64_t(n) / c.hop_length + 1;
      if (total == chunk) {
        p.kind = Plan::FusionExact;
        break;
      }
      p.kind = Plan::FusionLong;
      // np.array_split(range(0, total - chunk + 1), 3); empty sections become [0]
      const int64_t L = total - chunk + 1;
      int64_t begin = 0;
      for (int s = 0; s < 3; ++s) {
        const int64_t len = L / 3 + (s < L % 3 ? 1 : 0);
        if (len == 0) {
          p.chunks[s] = 0;
        } else if (c.chunk_choice == ChunkChoice::Random) {
          p.chunks[s] = begin + rng.randint(0, len);
        } else {
          p.chunks[s] = begin + len / 2;
        }
        begin += len;
      }
      break;
    }
    case Truncation::Windows: {
      p.kind = Plan::Windows;
      const int64_t hop = c.window_hop_samples > 0 ? c.window_hop_samples : max;
      std::vector<int64_t> starts;
      for (int64_t s = 0; s + max <= int64_t(n); s += hop) starts.push_back(s);
      if (starts.back() + max < int64_t(n)) starts.push_back(int64_t(n) - max);  // cover the tail
      if (c.max_windows > 0 && int64_t(starts.size()) > c.max_windows) {
        std::vector<int64_t> picked;
        const int64_t last = int64_t(n) - max;
        for (int k = 0; k < c.max_windows; ++k)
          picked.push_back(c.max_windows == 1 ? last / 2 : (last * k) / (c.max_windows - 1));
        starts = picked;
      }
      p.window_starts = starts;
      break;
    }
  }
  return p;
}

// The model's window of a clip that is not longer than it: padded as the contract says.
static std::vector<float> pad_clip(const float* x, size_t n, int64_t max, Padding padding) {
  std::vector<float> out(size_t(max), 0.0f);
  if (int64_t(n) == max || padding == Padding::Pad) {
    std::copy(x, x + n, out.begin());
    return out;
  }
  const int64_t reps = max / int64_t(n);  // int(max_length / len)
  const int64_t copies = padding == Padding::Repeat ? reps + 1 : reps;
  size_t pos = 0;
  for (int64_t r = 0; r < copies && pos < size_t(max); ++r) {
    const size_t take = std::min(n, size_t(max) - pos);
    std::copy(x, x + take, out.begin() + pos);
    pos += take;
  }
  return out;
}

void FeatureExtractor::run_plan(const float* x, size_t n, const Plan& p, LogMel& out, int threads) const {
  const PreprocessContract& c = contract_;
  const int nm = c.n_mels;
  const int64_t max = c.max_samples;
  const int frames = c.frames();
  const int channels = c.fusion ? 4 : 1;
  out.channels = channels;
  out.frames = frames;
  out.bins = nm;
  out.windows = 1;
  out.is_longer = false;
  const size_t plane = size_t(frames) * nm;
  auto stack = [&](const std::vector<float>& mel, size_t window_index) {
    for (int ch = 0; ch < channels; ++ch)
      std::copy(mel.begin(), mel.begin() + plane, out.data.begin() + (window_index * channels + ch) * plane);
  };
  switch (p.kind) {
    case Plan::Padded: {
      out.data.resize(plane * channels);
      if (int64_t(n) == max) {  // exactly one window: no copy
        stack(log_mel(x, n, threads), 0);
      } else {
        const std::vector<float> padded = pad_clip(x, n, max, c.padding);
        stack(log_mel(padded.data(), padded.size(), threads), 0);
      }
      break;
    }
    case Plan::Crop: {
      out.data.resize(plane * channels);
      out.is_longer = true;
      out.crop_start_sample = p.crop_start;
      stack(log_mel(x + p.crop_start, size_t(max), threads), 0);
      break;
    }
    case Plan::FusionExact: {
      out.data.resize(plane * channels);
      stack(log_mel(x, n, threads), 0);
      break;
    }
    case Plan::FusionLong: {
      out.data.resize(plane * channels);
      out.is_longer = true;
      out.chunk_start_frames = p.chunks;
      const std::vector<float> mel = log_mel(x, n, threads);
      const int total = int(mel.size() / nm);
      const std::vector<float> shrink = resize_rows_bilinear(mel.data(), total, nm, frames);
      std::copy(shrink.begin(), shrink.end(), out.data.begin());
      for (int s = 0; s < 3; ++s) {
        const float* src = mel.data() + size_t(p.chunks[s]) * nm;
        std::copy(src, src + plane, out.data.begin() + (s + 1) * plane);
      }
      break;
    }
    case Plan::Windows: {
      out.windows = int(p.window_starts.size());
      out.is_longer = true;
      out.window_starts = p.window_starts;
      out.data.resize(plane * channels * out.windows);
      for (size_t w = 0; w < p.window_starts.size(); ++w)
        stack(log_mel(x + p.window_starts[w], size_t(max), threads), w);
      break;
    }
  }
}

LogMel FeatureExtractor::extract(const float* samples, size_t n, NumpyRandom* rng) const {
  std::vector<float> clip(samples, samples + n);
  std::vector<const std::vector<float>*> batch{&clip};
  return std::move(extract_batch(batch, rng, 0).front());
}

std::vector<LogMel> FeatureExtractor::extract_batch(const std::vector<const std::vector<float>*>& clips,
                                                    NumpyRandom* rng, int threads) const {
  NumpyRandom own(contract_.seed);
  NumpyRandom& r = rng ? *rng : own;
  for (size_t i = 0; i < clips.size(); ++i)
    if (!clips[i] || clips[i]->empty())
      throw Error("clip " + std::to_string(i) + " of the batch is empty (no samples)");
  // Random draws in item order, as the reference makes them, before any parallel work.
  std::vector<Plan> plans;
  plans.reserve(clips.size());
  for (const auto* c : clips) plans.push_back(plan(c->size(), r));
  std::vector<LogMel> out(clips.size());
  if (threads <= 0) threads = default_threads();
  if (clips.size() == 1) {
    run_plan(clips[0]->data(), clips[0]->size(), plans[0], out[0], threads);
  } else {
    parallel_for(
        int64_t(clips.size()),
        [&](int64_t i) { run_plan(clips[i]->data(), clips[i]->size(), plans[i], out[i], 1); }, threads);
  }
  if (contract_.fusion) {
    bool any = false;
    for (const auto& m : out) any = any || m.is_longer;
    switch (contract_.short_fusion) {
      case ShortFusion::Reference:
        if (!any && !out.empty()) out[size_t(r.randint(0, int64_t(out.size())))].is_longer = true;
        break;
      case ShortFusion::Always:
        for (auto& m : out) m.is_longer = true;
        break;
      case ShortFusion::Never:
        break;
    }
  }
  return out;
}

}  // namespace synclap
