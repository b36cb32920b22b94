// Audio augmentation: effects and a seeded, JSON-described chain of them.
#include "synclap/augment.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#ifdef SYNCLAP_HAVE_RUBBERBAND
#include <rubberband/RubberBandStretcher.h>
#endif

#include "synclap/error.h"
#include "synth/rng.h"

namespace synclap {
namespace {

constexpr double kPi = 3.14159265358979323846;

double power(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return x.empty() ? 0.0 : s / double(x.size());
}

struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
  void run(std::vector<float>& x) const {
    double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (float& v : x) {
      const double in = v;
      const double y = b0 * in + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
      x2 = x1;
      x1 = in;
      y2 = y1;
      y1 = y;
      v = float(y);
    }
  }
  static Biquad make(double b0, double b1, double b2, double a0, double a1, double a2) {
    return {b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
  }
};

// Robert Bristow-Johnson's audio EQ cookbook formulas.
Biquad shelf(bool high, double rate, double f0, double db) {
  const double A = std::pow(10.0, db / 40.0), w = 2 * kPi * f0 / rate, c = std::cos(w), s = std::sin(w);
  const double alpha = s / 2 * std::sqrt(2.0);  // shelf slope S = 1
  const double sa = 2 * std::sqrt(A) * alpha;
  if (!high)
    return Biquad::make(A * ((A + 1) - (A - 1) * c + sa), 2 * A * ((A - 1) - (A + 1) * c), A * ((A + 1) - (A - 1) * c - sa),
                        (A + 1) + (A - 1) * c + sa, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - sa);
  return Biquad::make(A * ((A + 1) + (A - 1) * c + sa), -2 * A * ((A - 1) + (A + 1) * c), A * ((A + 1) + (A - 1) * c - sa),
                      (A + 1) - (A - 1) * c + sa, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - sa);
}
Biquad peak(double rate, double f0, double db, double q) {
  const double A = std::pow(10.0, db / 40.0), w = 2 * kPi * f0 / rate, alpha = std::sin(w) / (2 * q), c = std::cos(w);
  return Biquad::make(1 + alpha * A, -2 * c, 1 - alpha * A, 1 + alpha / A, -2 * c, 1 - alpha / A);
}
Biquad pass(bool high, double rate, double f0) {
  const double w = 2 * kPi * f0 / rate, alpha = std::sin(w) / (2 * std::sqrt(0.5)), c = std::cos(w);
  if (!high) return Biquad::make((1 - c) / 2, 1 - c, (1 - c) / 2, 1 + alpha, -2 * c, 1 - alpha);
  return Biquad::make((1 + c) / 2, -(1 + c), (1 + c) / 2, 1 + alpha, -2 * c, 1 - alpha);
}

#ifdef SYNCLAP_HAVE_RUBBERBAND
std::vector<float> rubberband(const std::vector<float>& x, int rate, double time_ratio, double pitch_scale) {
  using RubberBand::RubberBandStretcher;
  RubberBandStretcher rb(size_t(rate), 1,
                         RubberBandStretcher::OptionProcessOffline | RubberBandStretcher::OptionPitchHighQuality |
                             RubberBandStretcher::OptionWindowStandard,
                         time_ratio, pitch_scale);
  rb.setExpectedInputDuration(x.size());
  const size_t block = 8192;
  for (size_t i = 0; i < x.size(); i += block) {
    const float* p = x.data() + i;
    rb.study(&p, std::min(block, x.size() - i), i + block >= x.size());
  }
  std::vector<float> out;
  out.reserve(size_t(double(x.size()) * time_ratio) + block);
  std::vector<float> buf(block);
  auto drain = [&]() {
    for (int avail; (avail = rb.available()) > 0;) {
      if (size_t(avail) > buf.size()) buf.resize(size_t(avail));
      float* q = buf.data();
      const size_t got = rb.retrieve(&q, size_t(avail));
      out.insert(out.end(), buf.begin(), buf.begin() + long(got));
    }
  };
  for (size_t i = 0; i < x.size(); i += block) {
    const float* p = x.data() + i;
    rb.process(&p, std::min(block, x.size() - i), i + block >= x.size());
    drain();
  }
  drain();
  return out;
}
#endif

}  // namespace

void apply_gain_db(std::vector<float>& x, double db) {
  const double g = std::pow(10.0, db / 20.0);
  for (float& v : x) v = float(v * g);
}

void add_noise_snr(std::vector<float>& x, double snr_db, uint64_t seed, const std::string& color) {
  const double ps = power(x);
  if (ps <= 0 || x.empty()) return;
  synth::Rng rng(seed);
  std::vector<double> n(x.size());
  if (color == "white") {
    for (double& v : n) v = rng.normal();
  } else if (color == "pink") {  // Paul Kellet's refined filter of white noise
    double b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
    for (double& v : n) {
      const double w = rng.normal();
      b0 = 0.99886 * b0 + w * 0.0555179;
      b1 = 0.99332 * b1 + w * 0.0750759;
      b2 = 0.96900 * b2 + w * 0.1538520;
      b3 = 0.86650 * b3 + w * 0.3104856;
      b4 = 0.55000 * b4 + w * 0.5329522;
      b5 = -0.7616 * b5 - w * 0.0168980;
      v = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
      b6 = w * 0.115926;
    }
  } else if (color == "brown") {
    double acc = 0;
    for (double& v : n) {
      acc = 0.995 * acc + 0.1 * rng.normal();
      v = acc;
    }
  } else {
    throw Error("noise color must be white, pink or brown, not \"" + color + "\"");
  }
  double pn = 0;
  for (double v : n) pn += v * v;
  pn /= double(n.size());
  if (pn <= 0) return;
  const double scale = std::sqrt(ps / (pn * std::pow(10.0, snr_db / 10.0)));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(x[i] + scale * n[i]);
}

std::vector<float> pitch_shift(const std::vector<float>& x, int rate, double semitones) {
#ifdef SYNCLAP_HAVE_RUBBERBAND
  if (x.empty() || semitones == 0) return x;
  auto y = rubberband(x, rate, 1.0, std::pow(2.0, semitones / 12.0));
  y.resize(x.size(), 0.0f);
  return y;
#else
  (void)x, (void)rate, (void)semitones;
  throw Error("pitch_shift needs librubberband (synclap was built without it)");
#endif
}

std::vector<float> time_stretch(const std::vector<float>& x, int rate, double ratio) {
  if (!(ratio > 0.05 && ratio < 20)) throw Error("time_stretch ratio must be in (0.05, 20)");
#ifdef SYNCLAP_HAVE_RUBBERBAND
  if (x.empty() || ratio == 1.0) return x;
  auto y = rubberband(x, rate, ratio, 1.0);
  y.resize(size_t(std::llround(double(x.size()) * ratio)), 0.0f);
  return y;
#else
  (void)x, (void)rate;
  throw Error("time_stretch needs librubberband (synclap was built without it)");
#endif
}

void apply_reverb(std::vector<float>& x, int rate, double room, double damping, double wet) {
  room = std::clamp(room, 0.0, 1.0);
  damping = std::clamp(damping, 0.0, 1.0);
  wet = std::clamp(wet, 0.0, 1.0);
  const double scale = rate / 44100.0;
  static const int comb_len[8] = {1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617};
  static const int ap_len[4] = {556, 441, 341, 225};
  const double feedback = 0.7 + 0.28 * room;
  const double damp = 0.4 * damping;
  struct Comb {
    std::vector<double> buf;
    size_t pos = 0;
    double store = 0;
  };
  std::vector<Comb> combs(8);
  for (int i = 0; i < 8; ++i) combs[size_t(i)].buf.assign(size_t(std::max(1.0, comb_len[i] * scale)), 0.0);
  std::vector<std::vector<double>> aps(4);
  std::vector<size_t> ap_pos(4, 0);
  for (int i = 0; i < 4; ++i) aps[size_t(i)].assign(size_t(std::max(1.0, ap_len[i] * scale)), 0.0);
  for (float& v : x) {
    const double in = v * 0.015;
    double out = 0;
    for (auto& c : combs) {
      const double y = c.buf[c.pos];
      c.store = y * (1 - damp) + c.store * damp;
      c.buf[c.pos] = in + c.store * feedback;
      if (++c.pos == c.buf.size()) c.pos = 0;
      out += y;
    }
    for (size_t a = 0; a < 4; ++a) {
      auto& b = aps[a];
      const double bo = b[ap_pos[a]];
      const double y = -out + bo;
      b[ap_pos[a]] = out + bo * 0.5;
      if (++ap_pos[a] == b.size()) ap_pos[a] = 0;
      out = y;
    }
    v = float((1 - wet) * v + wet * 3.0 * out);
  }
}

void apply_echo(std::vector<float>& x, int rate, double delay_s, double feedback, double mix) {
  const size_t d = size_t(std::llround(delay_s * rate));
  if (d == 0 || d >= x.size()) return;
  feedback = std::clamp(feedback, 0.0, 0.95);
  // w[n] = x[n-d] + feedback * w[n-d]
  std::vector<double> w(x.size(), 0.0);
  for (size_t n = d; n < x.size(); ++n) w[n] = x[n - d] + feedback * w[n - d];
  for (size_t n = 0; n < x.size(); ++n) x[n] = float(x[n] + mix * w[n]);
}

void apply_chorus(std::vector<float>& x, int rate, double delay_ms, double depth_ms, double rate_hz, double mix) {
  if (mix == 0 || x.empty()) return;
  const std::vector<float> dry = x;
  const double base = delay_ms * 1e-3 * rate, depth = depth_ms * 1e-3 * rate;
  const double w = 2 * kPi * rate_hz / rate;
  for (size_t n = 0; n < x.size(); ++n) {
    double acc = 0;
    for (int k = 0; k < 3; ++k) {
      const double d = base + depth * std::sin(w * double(n) + k * 2 * kPi / 3);
      const double pos = double(n) - d;
      if (pos < 0) continue;
      const size_t i = size_t(pos);
      const double f = pos - double(i);
      const double a = dry[i], b = i + 1 < dry.size() ? dry[i + 1] : 0.0;
      acc += a + f * (b - a);
    }
    x[n] = float(dry[n] + mix * acc / 3.0);
  }
}

void apply_distortion(std::vector<float>& x, double drive, double mix) {
  if (drive <= 0) return;
  const double norm = std::tanh(drive);
  for (float& v : x) v = float((1 - mix) * v + mix * std::tanh(drive * v) / norm);
}

void apply_eq(std::vector<float>& x, int rate, const EqSettings& eq) {
  const double nyq = rate / 2.0;
  auto ok = [&](double f) { return f > 0 && f < nyq * 0.98; };
  if (eq.low_shelf_db != 0 && ok(eq.low_shelf_hz)) shelf(false, rate, eq.low_shelf_hz, eq.low_shelf_db).run(x);
  if (eq.high_shelf_db != 0 && ok(eq.high_shelf_hz)) shelf(true, rate, eq.high_shelf_hz, eq.high_shelf_db).run(x);
  if (eq.peak_db != 0 && ok(eq.peak_hz)) peak(rate, eq.peak_hz, eq.peak_db, std::max(0.05, eq.peak_q)).run(x);
  if (ok(eq.lowpass_hz)) pass(false, rate, eq.lowpass_hz).run(x);
  if (ok(eq.highpass_hz)) pass(true, rate, eq.highpass_hz).run(x);
}

// ----------------------------------------------------------------------------------------------

namespace {
const std::map<std::string, std::set<std::string>>& known_params() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"gain", {"db"}},
      {"noise", {"snr_db", "color"}},
      {"pitch_shift", {"semitones"}},
      {"time_stretch", {"ratio"}},
      {"reverb", {"room", "damping", "wet"}},
      {"echo", {"delay_s", "feedback", "mix"}},
      {"chorus", {"delay_ms", "depth_ms", "rate_hz", "mix"}},
      {"distortion", {"drive", "mix"}},
      {"eq", {"low_shelf_db", "low_shelf_hz", "high_shelf_db", "high_shelf_hz", "peak_db", "peak_hz", "peak_q",
              "lowpass_hz", "highpass_hz"}}};
  return k;
}
}  // namespace

AugmentChain AugmentChain::parse(const std::string& text) {
  AugmentChain chain;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return chain;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("augmentation chain: not valid JSON: ") + e.what());
  }
  if (j.is_object() && j.contains("steps")) j = j["steps"];
  if (!j.is_array()) throw Error("augmentation chain: expected an array of steps");
  for (const auto& s : j) {
    if (!s.is_object() || !s.contains("type") || !s["type"].is_string())
      throw Error("augmentation chain: every step needs a \"type\"");
    AugmentStep step;
    step.type = s["type"].get<std::string>();
    auto kp = known_params().find(step.type);
    if (kp == known_params().end()) throw Error("augmentation chain: unknown type \"" + step.type + "\"");
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& key = it.key();
      if (key == "type") continue;
      if (key == "p") {
        step.probability = it.value().get<double>();
        if (step.probability < 0 || step.probability > 1) throw Error("augmentation chain: \"p\" must be in [0, 1]");
        continue;
      }
      if (!kp->second.count(key))
        throw Error("augmentation chain: " + step.type + " has no parameter \"" + key + "\"");
      if (it.value().is_string()) {
        step.options[key] = it.value().get<std::string>();
      } else if (it.value().is_number()) {
        const double v = it.value().get<double>();
        step.ranges[key] = {v, v};
      } else if (it.value().is_array() && it.value().size() == 2 && it.value()[0].is_number() && it.value()[1].is_number()) {
        const double lo = it.value()[0].get<double>(), hi = it.value()[1].get<double>();
        if (!(lo <= hi)) throw Error("augmentation chain: " + step.type + "." + key + " range must be [low, high]");
        step.ranges[key] = {lo, hi};
      } else {
        throw Error("augmentation chain: " + step.type + "." + key + " must be a number or [low, high]");
      }
    }
    if (step.type == "noise" && !step.ranges.count("snr_db")) throw Error("augmentation chain: noise needs snr_db");
    if (step.type == "pitch_shift" && !step.ranges.count("semitones"))
      throw Error("augmentation chain: pitch_shift needs semitones");
    if (step.type == "gain" && !step.ranges.count("db")) throw Error("augmentation chain: gain needs db");
    chain.steps.push_back(std::move(step));
  }
  return chain;
}

std::string AugmentChain::apply(Waveform& wave, uint64_t seed) const {
  nlohmann::json applied = nlohmann::json::array();
  for (size_t i = 0; i < steps.size(); ++i) {
    const AugmentStep& s = steps[i];
    synth::Rng rng(synth::derive_seed(seed, i, "augment"));
    if (s.probability < 1 && !rng.chance(s.probability)) continue;
    nlohmann::json rec = {{"type", s.type}};
    auto get = [&](const std::string& k, double fallback) {
      auto it = s.ranges.find(k);
      const double v = it == s.ranges.end() ? fallback : rng.uniform(it->second.first, it->second.second);
      if (it != s.ranges.end()) rec[k] = v;
      return v;
    };
    auto opt = [&](const std::string& k, const std::string& fallback) {
      auto it = s.options.find(k);
      return it == s.options.end() ? fallback : it->second;
    };
    auto& x = wave.samples;
    const int sr = wave.sample_rate;
    if (s.type == "gain") {
      apply_gain_db(x, get("db", 0));
    } else if (s.type == "noise") {
      const double snr = get("snr_db", 30);
      const std::string color = opt("color", "white");
      rec["color"] = color;
      add_noise_snr(x, snr, rng.next(), color);
    } else if (s.type == "pitch_shift") {
      x = pitch_shift(x, sr, get("semitones", 0));
    } else if (s.type == "time_stretch") {
      x = time_stretch(x, sr, get("ratio", 1));
    } else if (s.type == "reverb") {
      const double room = get("room", 0.5), damping = get("damping", 0.5), wet = get("wet", 0.3);
      apply_reverb(x, sr, room, damping, wet);
    } else if (s.type == "echo") {
      const double d = get("delay_s", 0.25), fb = get("feedback", 0.4), mix = get("mix", 0.5);
      apply_echo(x, sr, d, fb, mix);
    } else if (s.type == "chorus") {
      const double d = get("delay_ms", 15), depth = get("depth_ms", 3), rate = get("rate_hz", 0.3), mix = get("mix", 0.5);
      apply_chorus(x, sr, d, depth, rate, mix);
    } else if (s.type == "distortion") {
      const double drive = get("drive", 4), mix = get("mix", 1);
      apply_distortion(x, drive, mix);
    } else if (s.type == "eq") {
      EqSettings e;
      e.low_shelf_db = get("low_shelf_db", 0);
      e.low_shelf_hz = get("low_shelf_hz", 200);
      e.high_shelf_db = get("high_shelf_db", 0);
      e.high_shelf_hz = get("high_shelf_hz", 4000);
      e.peak_db = get("peak_db", 0);
      e.peak_hz = get("peak_hz", 1000);
      e.peak_q = get("peak_q", 1);
      e.lowpass_hz = get("lowpass_hz", 0);
      e.highpass_hz = get("highpass_hz", 0);
      apply_eq(x, sr, e);
    }
    applied.push_back(rec);
  }
  return applied.dump();
}

}  // namespace synclap
