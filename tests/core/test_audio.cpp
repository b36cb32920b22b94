// Audio in: decoding (every real recording, generated WAV/FLAC/Ogg/MP3 fixtures, memory vs file),
// down-mixing, resampling accuracy, LAION-CLAP's int16 round trip, writing, and the corrupt / truncated /
// empty / non-audio / absurd-header files that must give a FileError naming the file.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "synclap/audio.h"
#include "synclap/error.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// Writes interleaved float samples with libsndfile in the given format (fixtures of every kind).
void write_fixture(const std::string& path, int format, int rate, int channels, const std::vector<float>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
  const sf_count_t frames = sf_count_t(interleaved.size() / size_t(channels));
  ASSERT_EQ(sf_writef_float(f, interleaved.data(), frames), frames);
  sf_close(f);
}

// A stereo test signal: 440 Hz left, 660 Hz right, different amplitudes.
std::vector<float> stereo_signal(int rate, double seconds) {
  const size_t n = size_t(rate * seconds);
  std::vector<float> s(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = float(0.5 * std::sin(2 * kPi * 440.0 * double(i) / rate));
    s[2 * i + 1] = float(0.25 * std::sin(2 * kPi * 660.0 * double(i) / rate));
  }
  return s;
}

std::vector<float> mono_mean(const std::vector<float>& stereo) {
  std::vector<float> m(stereo.size() / 2);
  for (size_t i = 0; i < m.size(); ++i) m[i] = (stereo[2 * i] + stereo[2 * i + 1]) / 2.0f;
  return m;
}

void put_u16(std::string& s, uint32_t v) {
  s.push_back(char(v & 0xff));
  s.push_back(char((v >> 8) & 0xff));
}
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

// A hand-made RIFF/WAVE file, so headers can lie.
struct WavSpec {
  uint16_t format_tag = 1;  // 1 PCM, 3 IEEE float
  uint32_t channels = 1;
  uint32_t rate = 16000;
  uint16_t bits = 16;
  std::string data;                 // raw sample bytes
  int64_t declared_data = -1;       // data chunk size to claim (-1: the real size)
};
std::string make_wav(const WavSpec& w) {
  std::string s = "RIFF";
  const uint32_t data_size = w.declared_data < 0 ? uint32_t(w.data.size()) : uint32_t(w.declared_data);
  put_u32(s, uint32_t(4 + 8 + 16 + 8 + w.data.size()));
  s += "WAVEfmt ";
  put_u32(s, 16);
  put_u16(s, w.format_tag);
  put_u16(s, w.channels & 0xffff);
  put_u32(s, w.rate);
  const uint32_t block_align = (w.channels & 0xffff) * (w.bits / 8u);
  put_u32(s, w.rate * block_align);
  put_u16(s, block_align);
  put_u16(s, w.bits);
  s += "data";
  put_u32(s, data_size);
  s += w.data;
  return s;
}
std::string pcm16(const std::vector<int16_t>& v) {
  std::string s;
  for (int16_t x : v) put_u16(s, uint16_t(x));
  return s;
}
std::string f32le(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.data(), s.size());
  return s;
}

// Expects a FileError whose message names `name` (and the path() too); returns the message.
template <class F>
std::string expect_file_error(F&& fn, const std::string& name) {
  try {
    fn();
  } catch (const FileError& e) {
    EXPECT_EQ(e.path(), name);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_FALSE(e.problem().empty());
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected FileError for " << name << ", got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected FileError for " << name << ", but it decoded";
  return "";
}

// Both entry points (path and memory) must reject the bytes, naming the file; returns the path message.
std::string expect_rejected(const std::string& path, const std::string& bytes) {
  write_bytes(path, bytes);
  const std::string msg = expect_file_error([&] { load_audio(path); }, path);
  if (!bytes.empty()) expect_file_error([&] { decode_audio_memory(bytes.data(), bytes.size(), {}, "mem:" + path); },
                                        "mem:" + path);
  return msg;
}

struct LabelRow {
  std::string file;
  double duration_s;
  int sample_rate, channels;
};

std::vector<LabelRow> read_labels() {
  std::vector<LabelRow> rows;
  for (const auto& r : test::read_csv(test::realaudio_dir() + "/labels.csv"))
    rows.push_back({r.at("file"), std::stod(r.at("duration_s")), std::stoi(r.at("sample_rate")), std::stoi(r.at("channels"))});
  return rows;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Real recordings
// ------------------------------------------------------------------------------------------------

TEST(AudioDecode, RealFilesMatchLabels) {
  const auto rows = read_labels();
  ASSERT_GE(rows.size(), 30u);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    const std::string path = test::realaudio_dir() + "/" + row.file;
    const AudioInfo info = probe_audio(path);
    EXPECT_EQ(info.sample_rate, row.sample_rate);
    EXPECT_EQ(info.channels, row.channels);
    EXPECT_NEAR(info.duration_s, row.duration_s, 0.006);  // labels are rounded to 2-3 decimals
    const Waveform w = load_audio(path);
    EXPECT_EQ(w.sample_rate, 48000);
    EXPECT_EQ(int64_t(w.samples.size()), int64_t(std::ceil(double(info.frames) * (48000.0 / info.sample_rate))));
    EXPECT_NEAR(w.duration_s(), row.duration_s, 0.006);
    float peak = 0;
    double energy = 0;
    for (float x : w.samples) {
      ASSERT_TRUE(std::isfinite(x));
      peak = std::max(peak, std::fabs(x));
      energy += double(x) * x;
    }
    EXPECT_GT(peak, 0.01f);
    EXPECT_LT(peak, 1.2f);  // resampling may overshoot full scale a little
    EXPECT_GT(energy, 0.0);
  }
}

TEST(AudioDecode, EveryRealFileDecodes) {
  int count = 0;
  for (const char* sub : {"sms-tools", "librosa-data"}) {
    for (const char* pattern : {"*.wav", "*.ogg", "*.flac", "*.mp3"}) {
      for (const auto& path : test::glob_files(test::realaudio_dir() + "/" + sub, pattern)) {
        SCOPED_TRACE(path);
        DecodeOptions native;
        native.target_rate = 0;
        const Waveform w = load_audio(path, native);
        const AudioInfo info = probe_audio(path);
        EXPECT_EQ(w.sample_rate, info.sample_rate);
        EXPECT_EQ(int64_t(w.samples.size()), info.frames);
        ++count;
      }
    }
  }
  EXPECT_GE(count, 33);
}

// Native-rate decoding of 16-bit PCM is exact: sample / 32768 (what soundfile/librosa give).
TEST(AudioDecode, Pcm16IsExact) {
  const std::string path = test::realaudio_dir() + "/sms-tools/soprano-E4.wav";
  const std::string bytes = read_bytes(path);
  const size_t data = bytes.find("data");
  ASSERT_NE(data, std::string::npos);
  uint32_t size;
  std::memcpy(&size, bytes.data() + data + 4, 4);
  const size_t n = size / 2;
  DecodeOptions native;
  native.target_rate = 0;
  const Waveform w = load_audio(path, native);
  ASSERT_EQ(w.samples.size(), n);
  for (size_t i = 0; i < n; ++i) {
    int16_t v;
    std::memcpy(&v, bytes.data() + data + 8 + 2 * i, 2);
    ASSERT_EQ(w.samples[i], float(v) / 32768.0f) << i;
  }
}

// ------------------------------------------------------------------------------------------------
// Generated fixtures in every format
// ------------------------------------------------------------------------------------------------

TEST(AudioDecode, FormatsStereoFixtures) {
  const std::string dir = test::temp_dir("audio_formats");
  const int rate = 44100;
  const auto stereo = stereo_signal(rate, 1.0);
  const auto mono = mono_mean(stereo);
  struct Case {
    const char* name;
    int format;
    const char* major;
    const char* subtype;
    double tol;        // max abs error vs the mono mean
    bool exact_length;
  };
  const Case cases[] = {
      {"a.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, "WAV", "PCM_16", 1.0 / 32768 + 1e-7, true},
      {"a.f32.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, "WAV", "FLOAT", 0.0, true},
      {"a24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, "WAV", "PCM_24", 1.0 / 8388608 + 1e-7, true},
      {"a.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, "FLAC", "PCM_16", 1.0 / 32768 + 1e-7, true},
      {"a.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, "AIFF", "PCM_16", 1.0 / 32768 + 1e-7, true},
      {"a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, "OGG", "VORBIS", 0.05, true},
      {"a.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, "MPEG", "MPEG_LAYER_III", 0.08, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name;
    write_fixture(path, c.format, rate, 2, stereo);
    const AudioInfo info = probe_audio(path);
    EXPECT_EQ(info.format, c.major);
    EXPECT_EQ(info.subtype, c.subtype);
    EXPECT_EQ(info.sample_rate, rate);
    EXPECT_EQ(info.channels, 2);
    if (c.exact_length) {
      EXPECT_EQ(info.frames, int64_t(mono.size()));
    }
    DecodeOptions native;
    native.target_rate = 0;
    const Waveform w = load_audio(path, native);
    ASSERT_EQ(w.samples.size(), mono.size());
    double max_err = 0, err2 = 0, sig2 = 0;
    for (size_t i = 0; i < mono.size(); ++i) {
      const double e = double(w.samples[i]) - mono[i];
      max_err = std::max(max_err, std::fabs(e));
      err2 += e * e;
      sig2 += double(mono[i]) * mono[i];
    }
    EXPECT_LE(max_err, c.tol);
    // Lossy codecs: still close to the signal (SNR well above 20 dB).
    EXPECT_GT(10 * std::log10(sig2 / std::max(err2, 1e-30)), 20.0);
    // The same bytes from memory give the same samples.
    const std::string bytes = read_bytes(path);
    const Waveform m = decode_audio_memory(bytes.data(), bytes.size(), native, c.name);
    EXPECT_EQ(m.samples, w.samples);
    // And at 48 kHz, the length librosa would give.
    const Waveform r = load_audio(path);
    EXPECT_EQ(r.samples.size(), size_t(std::ceil(mono.size() * (48000.0 / rate))));
  }
}

// MP3 is identified by libsndfile and decoded by libmpg123 with libsndfile's settings: the samples must be
// exactly those libsndfile gives (for files with an Info header, which libsndfile handles correctly).
TEST(AudioDecode, Mp3SamplesEqualLibsndfile) {
  const std::string dir = test::temp_dir("audio_mp3_same");
  const std::string path = dir + "/s.mp3";
  write_fixture(path, SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2, stereo_signal(44100, 1.5));
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  ASSERT_NE(f, nullptr);
  std::vector<float> inter(size_t(info.frames) * 2);
  ASSERT_EQ(sf_readf_float(f, inter.data(), info.frames), info.frames);
  sf_close(f);
  DecodeOptions native;
  native.target_rate = 0;
  const Waveform w = load_audio(path, native);
  EXPECT_EQ(w.samples, downmix_to_mono(inter.data(), info.frames, 2));
  EXPECT_EQ(probe_audio(path).frames, int64_t(info.frames));
}

namespace {
// Drops the first MPEG-1 layer III frame (the Xing/Info frame libsndfile's encoder writes).
std::string strip_info_frame(const std::string& mp3) {
  static const int kbps[] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0};
  const auto* b = reinterpret_cast<const unsigned char*>(mp3.data());
  EXPECT_TRUE(b[0] == 0xFF && (b[1] & 0xFE) == 0xFA) << "not an MPEG-1 layer III frame";
  EXPECT_EQ((b[2] >> 2) & 3, 0) << "expected 44.1 kHz";
  EXPECT_TRUE(mp3.find("Xing") < 64 || mp3.find("Info") < 64) << "no Info frame to strip";
  const size_t len = size_t(144000 * kbps[b[2] >> 4] / 44100 + ((b[2] >> 1) & 1));
  return mp3.substr(len);
}
}  // namespace

// Without an Info header, libsndfile 1.2.0 takes mpg123's length estimate from the file size and stops
// reading there (a VBR file comes out cut short) or, for CBR, over-estimates. The frame scan gives the
// exact length: every frame decodes (no gapless trimming without the header: whole 1152-sample frames).
TEST(AudioDecode, Mp3WithoutInfoHeaderDecodesFully) {
  const std::string dir = test::temp_dir("audio_mp3_noinfo");
  const auto stereo = stereo_signal(44100, 2.0);
  const int64_t n = int64_t(stereo.size() / 2);
  for (int mode : {SF_BITRATE_MODE_VARIABLE, SF_BITRATE_MODE_CONSTANT}) {
    SCOPED_TRACE(mode);
    const std::string full = dir + "/full" + std::to_string(mode) + ".mp3";
    {
      SF_INFO info{};
      info.samplerate = 44100;
      info.channels = 2;
      info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
      SNDFILE* f = sf_open(full.c_str(), SFM_WRITE, &info);
      ASSERT_NE(f, nullptr);
      sf_command(f, SFC_SET_BITRATE_MODE, &mode, sizeof mode);
      ASSERT_EQ(sf_writef_float(f, stereo.data(), n), n);
      sf_close(f);
    }
    const std::string bare = dir + "/bare" + std::to_string(mode) + ".mp3";
    write_bytes(bare, strip_info_frame(read_bytes(full)));
    DecodeOptions native;
    native.target_rate = 0;
    const Waveform w = load_audio(bare, native);
    EXPECT_EQ(int64_t(w.samples.size()) % 1152, 0);
    EXPECT_GE(int64_t(w.samples.size()), n);
    EXPECT_LE(int64_t(w.samples.size()), n + 3 * 1152);
    EXPECT_EQ(probe_audio(bare).frames, int64_t(w.samples.size()));
    // The music is all there: the samples are those of the complete file (decoded with its Info header, so
    // gapless-trimmed), shifted by the codec delay that the missing header would have removed.
    const Waveform ref = load_audio(full, native);
    ASSERT_EQ(int64_t(ref.samples.size()), n);
    int64_t shift = -1;
    double best = 1e9;
    for (int64_t d = 0; d + n <= int64_t(w.samples.size()); ++d) {
      double m = 0;
      for (int64_t i = 0; i < n && m < best; ++i) m = std::max(m, double(std::fabs(w.samples[size_t(d + i)] - ref.samples[size_t(i)])));
      if (m < best) {
        best = m;
        shift = d;
      }
    }
    EXPECT_LT(best, 1e-6) << "best shift " << shift;
    EXPECT_GT(shift, 0);
  }
}

TEST(AudioDecode, FloatWavKeepsValuesBeyondFullScale) {
  const std::string dir = test::temp_dir("audio_float");
  const std::string path = dir + "/loud.f32.wav";
  write_bytes(path, make_wav({3, 1, 16000, 32, f32le({0.0f, 1.5f, -2.0f, 0.25f}), -1}));
  DecodeOptions native;
  native.target_rate = 0;
  EXPECT_EQ(load_audio(path, native).samples, (std::vector<float>{0.0f, 1.5f, -2.0f, 0.25f}));
  native.int16_roundtrip = true;  // the round trip clips, as LAION-CLAP does
  EXPECT_EQ(load_audio(path, native).samples, (std::vector<float>{0.0f, 1.0f, -1.0f, float(8191 / 32767.0)}));
}

// ------------------------------------------------------------------------------------------------
// Files that must be refused, with the file named
// ------------------------------------------------------------------------------------------------

TEST(AudioDecode, MissingAndDirectory) {
  const std::string dir = test::temp_dir("audio_missing");
  const std::string msg = expect_file_error([&] { load_audio(dir + "/nope.wav"); }, dir + "/nope.wav");
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
  expect_file_error([&] { probe_audio(dir + "/nope.wav"); }, dir + "/nope.wav");
  expect_file_error([&] { load_audio(dir); }, dir);
}

TEST(AudioDecode, EmptyFile) {
  const std::string dir = test::temp_dir("audio_empty");
  const std::string msg = expect_rejected(dir + "/empty.wav", "");
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  expect_file_error([&] { probe_audio(dir + "/empty.wav"); }, dir + "/empty.wav");
  expect_file_error([&] { decode_audio_memory("", 0, {}, "nothing"); }, "nothing");
}

TEST(AudioDecode, ZeroFrames) {
  const std::string dir = test::temp_dir("audio_zero");
  const std::string msg = expect_rejected(dir + "/zero.wav", make_wav({1, 1, 16000, 16, "", -1}));
  EXPECT_NE(msg.find("no audio"), std::string::npos) << msg;
  // An AIFF file with no samples, written by libsndfile itself.
  const std::string flac = dir + "/zero.aiff";
  write_fixture(flac, SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 44100, 1, {});
  expect_file_error([&] { load_audio(flac); }, flac);
  expect_file_error([&] { probe_audio(flac); }, flac);
}

TEST(AudioDecode, NonAudio) {
  const std::string dir = test::temp_dir("audio_nonaudio");
  std::string msg = expect_rejected(dir + "/notes.wav", "This is a text file, not a sound.\nSecond line.\n");
  EXPECT_NE(msg.find("not an audio file"), std::string::npos) << msg;
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\x90\x91h6", 33);
  png += std::string(200, '\0');
  expect_rejected(dir + "/image.png", png);
  expect_rejected(dir + "/labels.csv", read_bytes(test::realaudio_dir() + "/labels.csv"));
  std::string zeros(4096, '\0');
  expect_rejected(dir + "/zeros.bin", zeros);
  expect_rejected(dir + "/one_byte.wav", "R");
}

TEST(AudioDecode, Truncated) {
  const std::string dir = test::temp_dir("audio_truncated");
  const auto stereo = stereo_signal(44100, 1.0);
  struct Case {
    const char* name;
    int format;
  };
  for (const Case& c : {Case{"t.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16}, Case{"t.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
                        Case{"t.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
                        Case{"t.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III}}) {
    SCOPED_TRACE(c.name);
    const std::string full = dir + "/full_" + c.name;
    write_fixture(full, c.format, 44100, 2, stereo);
    const std::string bytes = read_bytes(full);
    // Cut in the middle of the audio, and inside the header.
    const std::string msg = expect_rejected(dir + "/half_" + c.name, bytes.substr(0, bytes.size() / 2));
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("no audio") != std::string::npos) << msg;
    expect_rejected(dir + "/head_" + c.name, bytes.substr(0, 20));
  }
  // The real recordings, cut.
  const std::string wav = read_bytes(test::realaudio_dir() + "/sms-tools/soprano-E4.wav");
  const std::string msg = expect_rejected(dir + "/soprano_cut.wav", wav.substr(0, wav.size() - 1001));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  const std::string ogg = read_bytes(test::realaudio_dir() + "/librosa-data/sorohanro_-_solo-trumpet-06.ogg");
  expect_rejected(dir + "/trumpet_cut.ogg", ogg.substr(0, ogg.size() / 3));
}

TEST(AudioDecode, Corrupt) {
  const std::string dir = test::temp_dir("audio_corrupt");
  const auto stereo = stereo_signal(44100, 1.0);
  const std::string full = dir + "/full.flac";
  write_fixture(full, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, stereo);
  std::string bytes = read_bytes(full);
  // Overwrite a stretch of the compressed frames with garbage: frames are lost (CRC / sync errors).
  for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 4000; ++i) bytes[i] = char((i * 7919u) & 0xff);
  expect_rejected(dir + "/garbled.flac", bytes);
  // A FLAC STREAMINFO that claims a sample rate of 0.
  std::string flac = read_bytes(full);
  ASSERT_EQ(flac.substr(0, 4), "fLaC");
  flac[18] = 0;  // sample rate: 20 bits at byte offset 18 of the file
  flac[19] = 0;
  flac[20] = char(flac[20] & 0x0f);
  expect_rejected(dir + "/rate0.flac", flac);
}

TEST(AudioDecode, AbsurdHeaders) {
  const std::string dir = test::temp_dir("audio_absurd");
  const std::string some = pcm16({0, 1000, -1000, 2000, -2000, 0, 5, -5});
  // 2^31 frames claimed (of 16-bit mono) for 16 bytes of data.
  std::string msg = expect_rejected(dir + "/huge_frames.wav", make_wav({1, 1, 16000, 16, some, 0xFFFFFFFEll}));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  msg = expect_rejected(dir + "/rate_1e9.wav", make_wav({1, 1, 1000000000u, 16, some, -1}));
  EXPECT_NE(msg.find("sample rate"), std::string::npos) << msg;
  expect_rejected(dir + "/rate_0.wav", make_wav({1, 1, 0, 16, some, -1}));
  expect_rejected(dir + "/rate_1.wav", make_wav({1, 1, 1, 16, some, -1}));
  expect_rejected(dir + "/rate_max.wav", make_wav({1, 1, 0xFFFFFFFFu, 16, some, -1}));
  msg = expect_rejected(dir + "/channels_10000.wav", make_wav({1, 10000, 16000, 16, std::string(40000, '\0'), -1}));
  expect_rejected(dir + "/channels_0.wav", make_wav({1, 0, 16000, 16, some, -1}));
  expect_rejected(dir + "/bits_0.wav", make_wav({1, 1, 16000, 0, some, -1}));
  expect_rejected(dir + "/bits_99.wav", make_wav({1, 1, 16000, 99, some, -1}));
  expect_rejected(dir + "/format_tag.wav", make_wav({0x7777, 1, 16000, 16, some, -1}));
}

TEST(AudioDecode, NonFiniteSamplesAreRefused) {
  const std::string dir = test::temp_dir("audio_nonfinite");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::string msg = expect_rejected(dir + "/nan.f32.wav", make_wav({3, 1, 16000, 32, f32le({0.1f, nan, 0.2f}), -1}));
  EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
  expect_rejected(dir + "/inf.f32.wav", make_wav({3, 2, 16000, 32, f32le({0.1f, 0.1f, -inf, 0.0f}), -1}));
}

TEST(AudioDecode, LongerThanTheLimit) {
  const std::string dir = test::temp_dir("audio_long");
  const std::string path = dir + "/two_seconds.wav";
  write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, std::vector<float>(16000, 0.1f));
  DecodeOptions o;
  o.max_duration_s = 1.5;
  const std::string msg = expect_file_error([&] { load_audio(path, o); }, path);
  EXPECT_NE(msg.find("too long"), std::string::npos) << msg;
  o.max_duration_s = 2.0;
  EXPECT_EQ(load_audio(path, o).samples.size(), 96000u);
  // Bad options are the caller's error, not the file's.
  o.max_duration_s = -1;
  EXPECT_THROW(load_audio(path, o), Error);
  o = {};
  o.target_rate = 5;
  EXPECT_THROW(load_audio(path, o), Error);
}

// A FLAC stream whose STREAMINFO does not give the length (total samples 0, as streaming encoders write):
// decoded in full, and the duration cap still holds while decoding, without a header to check it against.
TEST(AudioDecode, UnknownLengthIsDecodedAndCapped) {
  const std::string dir = test::temp_dir("audio_unknown_len");
  const std::string full = dir + "/full.flac";
  write_fixture(full, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 8000, 1, std::vector<float>(16000, 0.25f));
  std::string bytes = read_bytes(full);
  ASSERT_EQ(bytes.substr(0, 4), "fLaC");
  bytes[21] = char(bytes[21] & 0xF0);  // the 36-bit total-samples field: low nibble of byte 21, bytes 22..25
  for (int i = 22; i < 26; ++i) bytes[size_t(i)] = 0;
  const std::string path = dir + "/unknown.flac";
  write_bytes(path, bytes);
  EXPECT_EQ(probe_audio(path).frames, -1);
  DecodeOptions native;
  native.target_rate = 0;
  EXPECT_EQ(load_audio(path, native).samples, std::vector<float>(16000, 0.25f));
  native.max_duration_s = 1.0;
  const std::string msg = expect_file_error([&] { load_audio(path, native); }, path);
  EXPECT_NE(msg.find("too long"), std::string::npos) << msg;
}

// ------------------------------------------------------------------------------------------------
// Down-mixing, int16 round trip
// ------------------------------------------------------------------------------------------------

TEST(AudioDownmix, MeanOfChannels) {
  const std::vector<float> inter = {1.0f, 0.0f, -1.0f, 0.5f, 0.25f, 0.75f, 0.1f, 0.2f, 0.3f};
  EXPECT_EQ(downmix_to_mono(inter.data(), 3, 3), (std::vector<float>{0.0f, 0.5f, (0.1f + 0.2f + 0.3f) / 3.0f}));
  EXPECT_EQ(downmix_to_mono(inter.data(), 4, 2), (std::vector<float>{0.5f, -0.25f, 0.5f, 0.15f}));
  EXPECT_EQ(downmix_to_mono(inter.data(), 9, 1), inter);
  EXPECT_TRUE(downmix_to_mono(inter.data(), 0, 2).empty());
  EXPECT_THROW(downmix_to_mono(inter.data(), 1, 0), Error);
}

TEST(AudioDownmix, StereoFileIsMeanOfChannels) {
  const std::string dir = test::temp_dir("audio_downmix");
  const std::string path = dir + "/lr.f32.wav";
  write_bytes(path, make_wav({3, 2, 16000, 32, f32le({1.0f, 0.0f, 0.5f, -0.5f, -1.0f, -0.5f}), -1}));
  DecodeOptions native;
  native.target_rate = 0;
  EXPECT_EQ(load_audio(path, native).samples, (std::vector<float>{0.5f, 0.0f, -0.75f}));
}

// Expected values computed with numpy 1.24 from LAION-CLAP's own functions:
//   int16_to_float32(float32_to_int16(np.array([x], np.float32)))
// The first six inputs are ones where a float64 product x*32767 would truncate to a different integer than the
// float32 product numpy computes, so they pin the arithmetic down.
TEST(AudioInt16, RoundTripMatchesLaionClap) {
  struct V {
    float in;
    int level;
    float out;
  };
  const V cases[] = {
      {-0x1.6a62d4p-2f, -11596, -0x1.6a62d4p-2f},
      {0x1.a97752p-1f, 27229, 0x1.a97752p-1f},
      {0x1.e07bc0p-1f, 30750, 0x1.e07bc0p-1f},
      {0x1.5046a0p-1f, 21521, 0x1.5046a0p-1f},
      {-0x1.96632cp-2f, -13004, -0x1.96632cp-2f},
      {-0x1.706ee0p-1f, -23579, -0x1.706ee0p-1f},
      {0.5f, 16383, 0x1.fffcp-2f},
      {-0.5f, -16383, -0x1.fffcp-2f},
      {1.0f, 32767, 1.0f},
      {-1.0f, -32767, -1.0f},
      {1.5f, 32767, 1.0f},
      {-2.0f, -32767, -1.0f},
      {1e-5f, 0, 0.0f},
      {-3e-5f, 0, 0.0f},
      {0.25f, 8191, 0x1.fff4p-3f},
      {0x1.ffffdep-1f, 32766, 0x1.fffcp-1f},
      {0x1.f9a6b6p-4f, 4045, 0x1.f9a3f4p-4f},
  };
  std::vector<float> v;
  for (const auto& c : cases) v.push_back(c.in);
  int16_roundtrip(v);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i], cases[i].out) << "input " << cases[i].in;
    EXPECT_EQ(v[i], float(double(cases[i].level) / 32767.0));
  }
  std::vector<float> special = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()};
  int16_roundtrip(special);
  EXPECT_EQ(special, (std::vector<float>{0.0f, 1.0f, -1.0f}));
}

TEST(AudioInt16, AppliedByLoadAfterResampling) {
  const std::string path = test::realaudio_dir() + "/sms-tools/flute-A4.wav";
  DecodeOptions plain, quant;
  quant.int16_roundtrip = true;
  const Waveform a = load_audio(path, plain);
  const Waveform b = load_audio(path, quant);
  ASSERT_EQ(a.samples.size(), b.samples.size());
  std::vector<float> expect = a.samples;
  int16_roundtrip(expect);
  EXPECT_EQ(b.samples, expect);
  size_t changed = 0;
  for (size_t i = 0; i < a.samples.size(); ++i) changed += a.samples[i] != b.samples[i];
  EXPECT_GT(changed, a.samples.size() / 2);  // resampled values are not on the int16 grid
}

// ------------------------------------------------------------------------------------------------
// Resampling
// ------------------------------------------------------------------------------------------------

namespace {
double max_sine_error(const std::vector<float>& y, double freq, int rate, double amp, double skip_s) {
  const size_t skip = size_t(skip_s * rate);
  double m = 0;
  for (size_t i = skip; i + skip < y.size(); ++i)
    m = std::max(m, std::fabs(double(y[i]) - amp * std::sin(2 * kPi * freq * double(i) / rate)));
  return m;
}
std::vector<float> sine(double freq, int rate, double seconds, double amp = 0.5) {
  std::vector<float> s(size_t(rate * seconds));
  for (size_t i = 0; i < s.size(); ++i) s[i] = float(amp * std::sin(2 * kPi * freq * double(i) / rate));
  return s;
}
}  // namespace

// Output length is librosa's: ceil(n * (to / from)) in float64, which for 88200 samples at 44.1k -> 48k is
// ceil(96000.00000000001) = 96001 (the last sample is soxr's end zero-padded, as librosa's fix_length does).
TEST(AudioResample, SineUpsample44kTo48k) {
  const auto x = sine(1000, 44100, 2.0);
  const auto y = resample(x, 44100, 48000);
  EXPECT_EQ(y.size(), 96001u);
  const double err = max_sine_error(y, 1000, 48000, 0.5, 0.05);
  EXPECT_LT(err, 1e-3);
  RecordProperty("max_abs_error", std::to_string(err));
  std::cout << "[          ] 1 kHz sine 44.1k->48k: max abs error " << err << "\n";
}

TEST(AudioResample, SineFromOtherRates) {
  for (int rate : {8000, 16000, 22050, 32000, 96000}) {
    SCOPED_TRACE(rate);
    const auto x = sine(1000, rate, 1.0);
    const auto y = resample(x, rate, 48000);
    EXPECT_EQ(y.size(), size_t(std::ceil(double(x.size()) * (48000.0 / rate))));
    EXPECT_LT(max_sine_error(y, 1000, 48000, 0.5, 0.05), 1e-3);
  }
  const auto down = resample(sine(1000, 48000, 1.0), 48000, 16000);
  EXPECT_EQ(down.size(), 16000u);
  EXPECT_LT(max_sine_error(down, 1000, 16000, 0.5, 0.05), 1e-3);
}

TEST(AudioResample, RemovesAliases) {
  // 20 kHz at 48 kHz cannot exist at 16 kHz (Nyquist 8 kHz): a high-quality filter removes it.
  const auto y = resample(sine(20000, 48000, 1.0), 48000, 16000);
  double peak = 0;
  for (size_t i = 800; i + 800 < y.size(); ++i) peak = std::max(peak, std::fabs(double(y[i])));
  EXPECT_LT(peak, 1e-3);
}

TEST(AudioResample, IdentityAndEdgeCases) {
  const auto x = sine(440, 48000, 0.1);
  EXPECT_EQ(resample(x, 48000, 48000), x);
  EXPECT_TRUE(resample({}, 44100, 48000).empty());
  EXPECT_EQ(resample({0.5f}, 44100, 48000).size(), 2u);  // ceil(1 * 48000/44100)
  EXPECT_THROW(resample(x, 0, 48000), Error);
  EXPECT_THROW(resample(x, 48000, -1), Error);
}

// load_audio resamples block by block while decoding; the result must equal decoding at the native rate
// and resampling in one go, exactly (soxr's output does not depend on how the input is chunked).
TEST(AudioResample, StreamingEqualsOneShot) {
  for (const char* rel : {"librosa-data/sorohanro_-_solo-trumpet-06.ogg", "sms-tools/cello-phrase.wav",
                          "librosa-data/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg"}) {
    SCOPED_TRACE(rel);
    const std::string path = test::realaudio_dir() + "/" + rel;
    DecodeOptions native;
    native.target_rate = 0;
    const Waveform n = load_audio(path, native);
    const Waveform s = load_audio(path);
    const auto one = resample(n.samples, n.sample_rate, 48000);
    ASSERT_EQ(s.samples.size(), one.size());
    EXPECT_TRUE(s.samples == one) << "streaming and one-shot resampling differ";  // bit for bit (measured)
  }
}

// ------------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------------

TEST(AudioWrite, RoundTripsAndIsAtomic) {
  const std::string dir = test::temp_dir("audio_write");
  Waveform w;
  w.sample_rate = 22050;
  w.samples = sine(440, 22050, 0.5, 0.9);
  w.samples[10] = 1.7f;  // clipped, not wrapped, in integer formats
  DecodeOptions native;
  native.target_rate = 0;
  for (const char* name : {"w.wav", "w.flac", "w.f32.wav"}) {
    SCOPED_TRACE(name);
    const std::string path = dir + "/" + name;
    write_audio(path, w);
    const Waveform r = load_audio(path, native);
    EXPECT_EQ(r.sample_rate, 22050);
    ASSERT_EQ(r.samples.size(), w.samples.size());
    const bool is_float = std::string(name) == "w.f32.wav";
    for (size_t i = 0; i < w.samples.size(); ++i) {
      const float want = is_float ? w.samples[i] : std::min(w.samples[i], 32767.0f / 32768.0f);
      ASSERT_NEAR(r.samples[i], want, is_float ? 0.0 : 1.0 / 32768 + 1e-7) << i;
    }
  }
  for (const char* name : {"w.ogg", "w.mp3"}) {
    write_audio(dir + "/" + name, w);
    EXPECT_EQ(probe_audio(dir + "/" + name).sample_rate, 22050);
  }
  EXPECT_EQ(probe_audio(dir + "/w.flac").format, "FLAC");
  // Nothing but the outputs is left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 5);
  expect_file_error([&] { write_audio(dir + "/w.xyz", w); }, dir + "/w.xyz");
  expect_file_error([&] { write_audio(dir + "/missing_dir/w.wav", w); }, dir + "/missing_dir/w.wav");
  EXPECT_FALSE(fs::exists(dir + "/w.xyz"));
}
