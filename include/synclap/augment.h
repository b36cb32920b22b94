// synclap: audio augmentation — pitch shift and time stretch (librubberband), noise at a given SNR,
// reverb, echo/delay, distortion, EQ and gain. Each effect is a plain function; AugmentChain composes
// them from JSON with seeded parameter draws, for synthetic data and for training.
//
// Chain JSON: an array (or {"steps": [...]}) of steps, each {"type": ..., params..., "p": probability}.
// A numeric parameter is a number or a range [low, high] drawn uniformly per application:
//   [{"type": "pitch_shift", "semitones": [-2, 2], "p": 0.5},
//    {"type": "noise", "snr_db": [20, 40], "color": "pink"},
//    {"type": "gain", "db": [-6, 6]}]
// Types and parameters (defaults in brackets):
//   gain: db                       noise: snr_db, color (white|pink|brown) [white]
//   pitch_shift: semitones         time_stretch: ratio (output length / input length) [1]
//   reverb: room [0.5], damping [0.5], wet [0.3]
//   echo: delay_s [0.25], feedback [0.4], mix [0.5]
//   chorus: delay_ms [15], depth_ms [3], rate_hz [0.3], mix [0.5]
//   distortion: drive [4], mix [1]
//   eq: low_shelf_db, low_shelf_hz [200], high_shelf_db, high_shelf_hz [4000], peak_db, peak_hz [1000],
//       peak_q [1], lowpass_hz [0 = off], highpass_hz [0 = off]
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "synclap/audio.h"

namespace synclap {

// Multiplies by 10^(db/20).
void apply_gain_db(std::vector<float>& x, double db);
// Adds noise scaled so that 10*log10(P_signal / P_noise) equals snr_db exactly (over the whole clip).
// A silent signal is left as it is. color: white, pink or brown.
void add_noise_snr(std::vector<float>& x, double snr_db, uint64_t seed, const std::string& color = "white");
// Pitch shift by `semitones` keeping the length (rubberband, offline). Throws Error if synclap was
// built without librubberband.
std::vector<float> pitch_shift(const std::vector<float>& x, int sample_rate, double semitones);
// Time stretch keeping the pitch: the output has round(n * ratio) samples.
std::vector<float> time_stretch(const std::vector<float>& x, int sample_rate, double ratio);
// A Schroeder–Moorer reverb (8 damped combs, 4 all-passes); wet in [0, 1] is the wet/dry balance.
void apply_reverb(std::vector<float>& x, int sample_rate, double room, double damping, double wet);
// A feedback delay: out = x + mix * (x delayed by d + feedback * x delayed by 2d + ...). Same length.
void apply_echo(std::vector<float>& x, int sample_rate, double delay_s, double feedback, double mix);
// Three modulated delay lines (sine LFOs 120 degrees apart) added to the dry signal: out = x + mix * mean.
void apply_chorus(std::vector<float>& x, int sample_rate, double delay_ms, double depth_ms, double rate_hz, double mix);
// tanh waveshaper normalised to keep full scale: y = tanh(drive x) / tanh(drive); out = (1-mix) x + mix y.
void apply_distortion(std::vector<float>& x, double drive, double mix);

struct EqSettings {
  double low_shelf_db = 0, low_shelf_hz = 200;
  double high_shelf_db = 0, high_shelf_hz = 4000;
  double peak_db = 0, peak_hz = 1000, peak_q = 1.0;
  double lowpass_hz = 0, highpass_hz = 0;  // 0 = off (Butterworth, 12 dB/octave)
};
// RBJ biquads in series (shelves, peak, low-pass, high-pass).
void apply_eq(std::vector<float>& x, int sample_rate, const EqSettings& eq);

struct AugmentStep {
  std::string type;
  std::map<std::string, std::pair<double, double>> ranges;  // numeric parameters: [low, high]
  std::map<std::string, std::string> options;               // text parameters (e.g. color)
  double probability = 1.0;
};

class AugmentChain {
 public:
  AugmentChain() = default;
  // Throws Error for malformed JSON, unknown types or parameters, or empty / inverted ranges.
  static AugmentChain parse(const std::string& json_text);
  bool empty() const { return steps.empty(); }
  // Applies the steps in order with parameters drawn from `seed`; returns a JSON array of what was
  // applied (type and drawn values), for provenance. The same wave and seed give the same output.
  std::string apply(Waveform& wave, uint64_t seed) const;

  std::vector<AugmentStep> steps;
};

}  // namespace synclap
