// synclap: audio in. Decoding (libsndfile: WAV, FLAC, Ogg Vorbis, MP3, ...), down-mixing to mono,
// resampling (soxr, high quality) and LAION-CLAP's optional int16 round trip.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace synclap {

// What a file holds, read from its header without decoding the samples.
struct AudioInfo {
  std::string path;
  std::string format;    // container, e.g. "WAV", "FLAC", "OGG", "MPEG"
  std::string subtype;   // encoding, e.g. "PCM_16", "VORBIS", "MPEG_LAYER_III"
  int sample_rate = 0;
  int channels = 0;
  int64_t frames = 0;    // samples per channel; -1 if the header does not tell (e.g. a cut Ogg stream)
  double duration_s = 0.0;  // -1 if unknown
};

// Mono float samples at a known rate.
struct Waveform {
  std::vector<float> samples;
  int sample_rate = 0;
  double duration_s() const { return sample_rate > 0 ? double(samples.size()) / sample_rate : 0.0; }
};

struct DecodeOptions {
  int target_rate = 48000;        // 0 keeps the file's own rate
  bool int16_roundtrip = false;   // quantise as LAION-CLAP does before its models
  double max_duration_s = 4 * 3600.0;  // longer files are refused (no unbounded allocation)
};

// Reads the header; throws FileError naming the file for anything that is not readable audio.
AudioInfo probe_audio(const std::string& path);

// Decodes, down-mixes to mono (mean of channels), resamples to target_rate (librosa's length:
// ceil(n * target / rate) computed in float64), then applies the int16 round trip if asked.
// Throws FileError for corrupt, truncated, empty, non-audio or absurd files, for files longer than
// max_duration_s, and for float files holding NaN or Inf (refused, not repaired).
Waveform load_audio(const std::string& path, const DecodeOptions& options = {});

// The same from bytes in memory (uploads, fuzzing). `name` is used in error messages.
Waveform decode_audio_memory(const void* data, size_t size, const DecodeOptions& options = {},
                             const std::string& name = "<memory>");

// Mean over channels of interleaved samples.
std::vector<float> downmix_to_mono(const float* interleaved, int64_t frames, int channels);

// soxr high-quality resampling of mono samples.
std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate);

// LAION-CLAP's quantisation: clip to [-1, 1], x*32767 truncated to int16, then /32767 back to float.
void int16_roundtrip(std::vector<float>& samples);

// Writes mono float samples (16-bit PCM WAV or FLAC by extension, float WAV for ".f32.wav"; also ".ogg"
// Vorbis and ".mp3"), atomically. Integer formats clip samples beyond [-1, 1].
void write_audio(const std::string& path, const Waveform& wave);

}  // namespace synclap
