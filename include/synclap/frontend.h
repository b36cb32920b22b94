// synclap: the CLAP log-mel front end, number for number as the reference
// (HuggingFace ClapFeatureExtractor / LAION-CLAP), and the preprocessing contract a model carries.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "synclap/audio.h"
#include "synclap/random.h"

namespace synclap {

// How clips shorter than the window are filled.
enum class Padding {
  RepeatPad,  // tile int(max/len) times, then zero-pad (reference default)
  Repeat,     // tile int(max/len)+1 times, then cut
  Pad,        // zero-pad only
};

// How clips longer than the window are cut.
enum class Truncation {
  RandTrunc,  // random crop (seeded; numpy-compatible draws)
  Fusion,     // [whole-clip shrink, front, middle, back] chunks + is_longer (4 channels)
  First,      // the first window (deterministic)
  Middle,     // the window centred on the clip (deterministic)
  Windows,    // consecutive windows covering the clip; the model averages their embeddings
};

enum class MelScale { Slaney, Htk };

// How fusion picks its three chunks on long clips.
enum class ChunkChoice {
  Random,    // np.random.choice in each third of the start range (reference)
  Centered,  // the middle start of each third (deterministic)
};

// Which short clips a fusion model treats as "longer" (routes through the fusion branch).
enum class ShortFusion {
  Reference,  // as the reference: if no clip of the batch is longer, one random clip is
  Always,     // every short clip, i.e. what the reference does for a clip on its own (batch-independent)
  Never,
};

// Everything that determines the features a model sees. Checkpoints carry it, so that a model never
// meets audio prepared differently from how it was trained.
struct PreprocessContract {
  int sample_rate = 48000;
  int n_fft = 1024;
  int hop_length = 480;
  int n_mels = 64;
  double f_min = 50.0;
  double f_max = 14000.0;
  MelScale mel_scale = MelScale::Slaney;
  bool slaney_norm = true;       // area normalisation of the mel filters
  int64_t max_samples = 480000;  // the model's window: 10 s at 48 kHz
  bool fusion = false;           // a feature-fusion model: 4 channels per clip plus is_longer
  Padding padding = Padding::RepeatPad;
  Truncation truncation = Truncation::Middle;
  ChunkChoice chunk_choice = ChunkChoice::Random;
  ShortFusion short_fusion = ShortFusion::Always;
  int window_hop_samples = 0;    // Windows: distance between window starts (0 = max_samples)
  int max_windows = 0;           // Windows: at most this many (0 = no limit); evenly spread over the clip
  bool int16_roundtrip = false;  // LAION-CLAP quantises audio to int16 and back before the model
  uint32_t seed = 0;             // for RandTrunc / Fusion(Random) / ShortFusion::Reference

  // Model-facing shapes.
  int channels() const { return fusion ? 4 : 1; }
  int frames() const { return int(max_samples / hop_length) + 1; }
  // Throws Error if the settings are inconsistent or out of range.
  void validate() const;

  // The released laion/clap-htsat-unfused / -fused preprocessor settings, with synclap's deterministic
  // inference policy (Middle for unfused, Fusion with centred chunks for fused models).
  static PreprocessContract clap_unfused();
  static PreprocessContract clap_fused();
  // The exact settings of the reference extractor in training mode (rand_trunc / fusion with random choices).
  static PreprocessContract reference(bool fused);

  std::string to_json() const;  // stable, human-readable
  static PreprocessContract from_json(const std::string& json);
  // Reads an HF preprocessor_config.json (ClapFeatureExtractor.to_dict()).
  static PreprocessContract from_hf_preprocessor(const std::string& json);
  bool operator==(const PreprocessContract& o) const { return to_json() == o.to_json(); }
};

std::string to_string(Padding p);
std::string to_string(Truncation t);
std::string to_string(MelScale m);
Padding padding_from_string(const std::string& s);
Truncation truncation_from_string(const std::string& s);
MelScale mel_scale_from_string(const std::string& s);

// Log-mel features of one clip: [windows][channels][frames][n_mels], float32 dB.
// windows is 1 except for Truncation::Windows.
struct LogMel {
  int windows = 1;
  int channels = 1;
  int frames = 0;
  int bins = 0;
  std::vector<float> data;
  bool is_longer = false;
  // Provenance of random or positional choices (-1 where not applicable).
  int64_t crop_start_sample = -1;
  std::array<int64_t, 3> chunk_start_frames{{-1, -1, -1}};
  std::vector<int64_t> window_starts;  // Windows: start sample of each window

  size_t window_size() const { return size_t(channels) * frames * bins; }
  const float* window(int w) const { return data.data() + size_t(w) * window_size(); }
};

class FeatureExtractor {
 public:
  explicit FeatureExtractor(PreprocessContract contract = PreprocessContract::clap_unfused());
  ~FeatureExtractor();

  const PreprocessContract& contract() const { return contract_; }

  // One clip (already at contract().sample_rate, mono). Random choices come from `rng`
  // (a NumpyRandom seeded with contract().seed when null).
  LogMel extract(const float* samples, size_t n, NumpyRandom* rng = nullptr) const;
  LogMel extract(const std::vector<float>& samples, NumpyRandom* rng = nullptr) const {
    return extract(samples.data(), samples.size(), rng);
  }

  // A batch, computed on `threads` threads (0 = all cores). Random draws are made in item order
  // from one generator, as the reference does for a batched call, so the result does not depend on
  // the thread count. Applies ShortFusion across the batch.
  std::vector<LogMel> extract_batch(const std::vector<const std::vector<float>*>& clips,
                                    NumpyRandom* rng = nullptr, int threads = 0) const;

  // The log-mel spectrogram of a whole signal (reflect-padded STFT, no padding/truncation):
  // [1 + (n / hop)] x n_mels, row-major, dB. Frames are computed on `threads` threads (0 = all cores).
  std::vector<float> log_mel(const float* samples, size_t n, int threads = 1) const;

  // Building blocks, exposed for parity tests.
  const std::vector<double>& window_function() const { return window_; }
  // [n_fft/2+1][n_mels], row-major, float64 (as the reference's mel_filters).
  const std::vector<double>& mel_filters() const { return filters_; }

 private:
  struct Plan;  // cut/pad decision for one clip
  Plan plan(size_t n, NumpyRandom& rng) const;
  void run_plan(const float* samples, size_t n, const Plan& plan, LogMel& out, int threads) const;
  void frames_to_logmel(const float* x, int64_t n, int64_t f0, int64_t f1, float* out) const;

  PreprocessContract contract_;
  std::vector<double> window_;
  std::vector<double> filters_;
  struct Kernel;  // FFT tables, sparse filters and the SIMD kernel for this CPU
  std::shared_ptr<const Kernel> kernel_;
};

// Mel filter bank as HF audio_utils.mel_filter_bank: [num_frequency_bins][num_mel_filters].
std::vector<double> mel_filter_bank(int num_frequency_bins, int num_mel_filters, double f_min, double f_max,
                                    int sampling_rate, bool slaney_norm, MelScale scale);
// Periodic Hann window (np.hanning(n+1)[:-1]).
std::vector<double> hann_window_periodic(int n);

// Bilinear resize of a [rows][cols] float matrix to [out_rows][cols] exactly as
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on the time axis.
std::vector<float> resize_rows_bilinear(const float* in, int rows, int cols, int out_rows);

}  // namespace synclap
