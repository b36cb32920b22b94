// Audio decoding with libsndfile (WAV, FLAC, Ogg Vorbis/Opus, AIFF, ...; MPEG audio is identified by
// libsndfile and decoded with libmpg123 directly, see MpegSource), down-mixing to mono, streaming
// resampling, LAION-CLAP's int16 round trip, and writing audio files.
//
// Robustness policy (every input is untrusted):
//  - The header is checked before anything is allocated: 1..1024 channels, 1000..768000 Hz, and a declared
//    length within DecodeOptions::max_duration_s.
//  - Samples are read in bounded blocks and down-mixed / resampled block by block, so memory grows only with
//    what really decodes, and decoding stops with an error once max_duration_s is exceeded (no header is
//    trusted for the length).
//  - Truncation is an error: a decoder error part-way, fewer frames than the header declares (FLAC, MP3 with a
//    length header, ...), a RIFF/WAVE "data" chunk that declares more bytes than the file holds, or an Ogg
//    file that does not end with a complete end-of-stream page (libsndfile silently shortens such files).
//  - Non-finite samples (NaN / Inf, possible only in float files) are an error, not silently repaired:
//    they would poison every feature computed from the file.
//  - Every problem is a FileError whose message names the file.
#include <mpg123.h>
#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include "audio/resampler.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {
namespace {

constexpr int kMinRate = 1000;
constexpr int kMaxRate = 768000;
constexpr int kMaxChannels = 1024;
constexpr sf_count_t kBlockSamples = 1 << 16;  // interleaved samples per read

// ---------------------------------------------------------------------------------------------
// Names (the spelling python-soundfile uses, so reports read the same as in the Python world)
// ---------------------------------------------------------------------------------------------
std::string major_name(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: return "WAV";
    case SF_FORMAT_AIFF: return "AIFF";
    case SF_FORMAT_AU: return "AU";
    case SF_FORMAT_RAW: return "RAW";
    case SF_FORMAT_PAF: return "PAF";
    case SF_FORMAT_SVX: return "SVX";
    case SF_FORMAT_NIST: return "NIST";
    case SF_FORMAT_VOC: return "VOC";
    case SF_FORMAT_IRCAM: return "IRCAM";
    case SF_FORMAT_W64: return "W64";
    case SF_FORMAT_MAT4: return "MAT4";
    case SF_FORMAT_MAT5: return "MAT5";
    case SF_FORMAT_PVF: return "PVF";
    case SF_FORMAT_XI: return "XI";
    case SF_FORMAT_HTK: return "HTK";
    case SF_FORMAT_SDS: return "SDS";
    case SF_FORMAT_AVR: return "AVR";
    case SF_FORMAT_WAVEX: return "WAVEX";
    case SF_FORMAT_SD2: return "SD2";
    case SF_FORMAT_FLAC: return "FLAC";
    case SF_FORMAT_CAF: return "CAF";
    case SF_FORMAT_WVE: return "WVE";
    case SF_FORMAT_OGG: return "OGG";
    case SF_FORMAT_MPC2K: return "MPC2K";
    case SF_FORMAT_RF64: return "RF64";
    case SF_FORMAT_MPEG: return "MPEG";
    default: break;
  }
  std::ostringstream s;
  s << "0x" << std::hex << (format & SF_FORMAT_TYPEMASK);
  return s.str();
}

std::string subtype_name(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return "PCM_S8";
    case SF_FORMAT_PCM_16: return "PCM_16";
    case SF_FORMAT_PCM_24: return "PCM_24";
    case SF_FORMAT_PCM_32: return "PCM_32";
    case SF_FORMAT_PCM_U8: return "PCM_U8";
    case SF_FORMAT_FLOAT: return "FLOAT";
    case SF_FORMAT_DOUBLE: return "DOUBLE";
    case SF_FORMAT_ULAW: return "ULAW";
    case SF_FORMAT_ALAW: return "ALAW";
    case SF_FORMAT_IMA_ADPCM: return "IMA_ADPCM";
    case SF_FORMAT_MS_ADPCM: return "MS_ADPCM";
    case SF_FORMAT_GSM610: return "GSM610";
    case SF_FORMAT_VOX_ADPCM: return "VOX_ADPCM";
    case SF_FORMAT_NMS_ADPCM_16: return "NMS_ADPCM_16";
    case SF_FORMAT_NMS_ADPCM_24: return "NMS_ADPCM_24";
    case SF_FORMAT_NMS_ADPCM_32: return "NMS_ADPCM_32";
    case SF_FORMAT_G721_32: return "G721_32";
    case SF_FORMAT_G723_24: return "G723_24";
    case SF_FORMAT_G723_40: return "G723_40";
    case SF_FORMAT_DWVW_12: return "DWVW_12";
    case SF_FORMAT_DWVW_16: return "DWVW_16";
    case SF_FORMAT_DWVW_24: return "DWVW_24";
    case SF_FORMAT_DWVW_N: return "DWVW_N";
    case SF_FORMAT_DPCM_8: return "DPCM_8";
    case SF_FORMAT_DPCM_16: return "DPCM_16";
    case SF_FORMAT_VORBIS: return "VORBIS";
    case SF_FORMAT_OPUS: return "OPUS";
    case SF_FORMAT_ALAC_16: return "ALAC_16";
    case SF_FORMAT_ALAC_20: return "ALAC_20";
    case SF_FORMAT_ALAC_24: return "ALAC_24";
    case SF_FORMAT_ALAC_32: return "ALAC_32";
    case SF_FORMAT_MPEG_LAYER_I: return "MPEG_LAYER_I";
    case SF_FORMAT_MPEG_LAYER_II: return "MPEG_LAYER_II";
    case SF_FORMAT_MPEG_LAYER_III: return "MPEG_LAYER_III";
    default: break;
  }
  std::ostringstream s;
  s << "0x" << std::hex << (format & SF_FORMAT_SUBMASK);
  return s.str();
}

std::string fmt_seconds(double s) {
  std::ostringstream o;
  o.precision(6);
  o << s << " s";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// Byte access for our own header checks (the same for files and memory)
// ---------------------------------------------------------------------------------------------
class ByteReader {
 public:
  virtual ~ByteReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to n bytes at offset; returns how many were read.
  virtual size_t read_at(uint64_t offset, void* dst, size_t n) = 0;
};

class MemoryBytes : public ByteReader {
 public:
  MemoryBytes(const unsigned char* data, size_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  size_t read_at(uint64_t offset, void* dst, size_t n) override {
    if (offset >= size_) return 0;
    const size_t k = size_t(std::min<uint64_t>(n, size_ - offset));
    std::memcpy(dst, data_ + offset, k);
    return k;
  }

 private:
  const unsigned char* data_;
  size_t size_;
};

class FileBytes : public ByteReader {
 public:
  FileBytes(const std::string& path, uint64_t size) : in_(path, std::ios::binary), size_(size) {}
  bool ok() const { return bool(in_); }
  uint64_t size() const override { return size_; }
  size_t read_at(uint64_t offset, void* dst, size_t n) override {
    if (offset >= size_) return 0;
    in_.clear();
    in_.seekg(std::streamoff(offset));
    in_.read(static_cast<char*>(dst), std::streamsize(n));
    return size_t(in_.gcount());
  }

 private:
  std::ifstream in_;
  uint64_t size_;
};

uint32_t le32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// libsndfile reads a RIFF/WAVE file whose "data" chunk claims more bytes than the file holds by silently
// shortening it. That is a truncated file; say so. Sizes 0 and 0xFFFFFFFF are the "length unknown"
// markers streaming writers use, and are accepted. Returns "" when nothing is wrong (or not RIFF/WAVE).
std::string riff_truncation(ByteReader& bytes) {
  unsigned char head[12];
  if (bytes.read_at(0, head, 12) != 12) return "";
  if (std::memcmp(head, "RIFF", 4) != 0 || std::memcmp(head + 8, "WAVE", 4) != 0) return "";
  uint64_t pos = 12;
  for (int chunk = 0; chunk < 256; ++chunk) {
    unsigned char ch[8];
    if (bytes.read_at(pos, ch, 8) != 8) return "";
    const uint32_t size = le32(ch + 4);
    if (std::memcmp(ch, "data", 4) == 0) {
      const uint64_t have = bytes.size() - std::min<uint64_t>(bytes.size(), pos + 8);
      if (size != 0 && size != 0xFFFFFFFFu && uint64_t(size) > have)
        return "truncated: the WAV header declares " + std::to_string(size) + " bytes of audio data but the file holds only " +
               std::to_string(have);
      return "";
    }
    pos += 8 + uint64_t(size) + (size & 1u);
  }
  return "";
}

// libsndfile decodes a cut Ogg file up to its last complete page without complaint. A complete Ogg stream
// ends with a page that carries the end-of-stream flag and ends exactly at the end of the file; find the
// last page (searching back from the end: a page is at most 27 + 255 + 255*255 bytes) and check both.
std::string ogg_truncation(ByteReader& bytes) {
  unsigned char magic[4];
  if (bytes.read_at(0, magic, 4) != 4 || std::memcmp(magic, "OggS", 4) != 0) return "";
  constexpr uint64_t kMaxPage = 27 + 255 + 255 * 255;
  const uint64_t size = bytes.size();
  const uint64_t start = size > kMaxPage ? size - kMaxPage : 0;
  std::vector<unsigned char> tail(size_t(size - start));
  if (bytes.read_at(start, tail.data(), tail.size()) != tail.size()) return "";
  for (size_t i = tail.size() >= 27 ? tail.size() - 27 + 1 : 0; i-- > 0;) {
    if (std::memcmp(&tail[i], "OggS", 4) != 0 || tail[i + 4] != 0) continue;
    const size_t nseg = tail[i + 26];
    if (i + 27 + nseg > tail.size()) continue;
    size_t body = 0;
    for (size_t k = 0; k < nseg; ++k) body += tail[i + 27 + k];
    if (i + 27 + nseg + body != tail.size()) continue;  // not the page that ends the file
    if (!(tail[i + 5] & 0x04)) return "truncated: the Ogg stream has no end-of-stream page";
    return "";
  }
  return "truncated: the Ogg stream ends in the middle of a page";
}

// Our own checks for truncation that libsndfile lets pass.
std::string container_truncation(ByteReader& bytes) {
  std::string problem = riff_truncation(bytes);
  if (problem.empty()) problem = ogg_truncation(bytes);
  return problem;
}

// ---------------------------------------------------------------------------------------------
// libsndfile plumbing
// ---------------------------------------------------------------------------------------------
struct SfCloser {
  void operator()(SNDFILE* f) const {
    if (f) sf_close(f);
  }
};
using SfHandle = std::unique_ptr<SNDFILE, SfCloser>;

// Bytes in memory, read through libsndfile's and libmpg123's replaceable I/O.
struct MemoryFile {
  const unsigned char* data;
  int64_t size;
  int64_t pos;

  int64_t seek(int64_t offset, int whence) {
    int64_t base = 0;
    switch (whence) {
      case SEEK_SET: base = 0; break;
      case SEEK_CUR: base = pos; break;
      case SEEK_END: base = size; break;
      default: return -1;
    }
    // Guard the addition against overflow from absurd header offsets.
    if ((offset > 0 && base > std::numeric_limits<int64_t>::max() - offset) || base + offset < 0) return -1;
    pos = base + offset;
    return pos;
  }
  int64_t read(void* dst, int64_t count) {
    if (count <= 0 || pos >= size) return 0;
    const int64_t n = std::min(count, size - pos);
    std::memcpy(dst, data + pos, size_t(n));
    pos += n;
    return n;
  }
};

sf_count_t sfv_filelen(void* user) { return static_cast<MemoryFile*>(user)->size; }
sf_count_t sfv_seek(sf_count_t offset, int whence, void* user) {
  return static_cast<MemoryFile*>(user)->seek(offset, whence);
}
sf_count_t sfv_read(void* ptr, sf_count_t count, void* user) { return static_cast<MemoryFile*>(user)->read(ptr, count); }
sf_count_t sfv_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t sfv_tell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

mpg123_ssize_t mpv_read(void* user, void* dst, size_t n) {
  return mpg123_ssize_t(static_cast<MemoryFile*>(user)->read(dst, int64_t(std::min<size_t>(n, size_t(1) << 30))));
}
off_t mpv_lseek(void* user, off_t offset, int whence) { return off_t(static_cast<MemoryFile*>(user)->seek(offset, whence)); }

// Why sf_open failed, in words (libsndfile's own message included).
std::string open_problem() {
  const int code = sf_error(nullptr);
  const std::string msg = sf_error_number(code);
  switch (code) {
    case SF_ERR_UNRECOGNISED_FORMAT:
      return "not an audio file libsndfile can read (format not recognised)";
    case SF_ERR_UNSUPPORTED_ENCODING:
      return "unsupported audio encoding (libsndfile: " + msg + ")";
    case SF_ERR_MALFORMED_FILE:
      return "corrupt or malformed audio file (libsndfile: " + msg + ")";
    case SF_ERR_SYSTEM:
      return "cannot open (libsndfile: " + msg + ")";
    default:
      return "cannot decode (libsndfile: " + msg + ")";
  }
}

// Header sanity, before anything is allocated from it. `frames` < 0 means "not known".
void check_header(const std::string& name, int rate, int channels, int64_t frames) {
  if (channels < 1 || channels > kMaxChannels)
    throw FileError(name, "unsupported channel count " + std::to_string(channels) + " (must be 1.." +
                              std::to_string(kMaxChannels) + ")");
  if (rate < kMinRate || rate > kMaxRate)
    throw FileError(name, "implausible sample rate " + std::to_string(rate) + " Hz (must be " +
                              std::to_string(kMinRate) + ".." + std::to_string(kMaxRate) + " Hz)");
  if (frames == 0) throw FileError(name, "contains no audio (0 frames)");
}

void check_options(const DecodeOptions& o) {
  if (o.target_rate != 0 && (o.target_rate < kMinRate || o.target_rate > kMaxRate))
    throw Error("DecodeOptions::target_rate " + std::to_string(o.target_rate) + " is out of range (0 or " +
                std::to_string(kMinRate) + ".." + std::to_string(kMaxRate) + ")");
  if (!(o.max_duration_s > 0) || !std::isfinite(o.max_duration_s))
    throw Error("DecodeOptions::max_duration_s must be a positive number");
}

// ---------------------------------------------------------------------------------------------
// Frame sources: something that yields interleaved float frames
// ---------------------------------------------------------------------------------------------
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Up to `frames` interleaved frames into dst; 0 at the end. Throws FileError when decoding fails.
  virtual int64_t read(float* dst, int64_t frames) = 0;
  AudioInfo info;  // frames / duration_s are -1 when the length is not known before decoding
};

// Everything libsndfile decodes itself.
class SndSource : public FrameSource {
 public:
  SndSource(SfHandle sf, const SF_INFO& sfinfo, const std::string& name) : sf_(std::move(sf)), name_(name) {
    info.path = name;
    info.format = major_name(sfinfo.format);
    info.subtype = subtype_name(sfinfo.format);
    info.sample_rate = sfinfo.samplerate;
    info.channels = sfinfo.channels;
    const bool known = sfinfo.frames >= 0 && sfinfo.frames < std::numeric_limits<sf_count_t>::max();
    info.frames = known ? int64_t(sfinfo.frames) : -1;
    info.duration_s = known && sfinfo.samplerate > 0 ? double(sfinfo.frames) / sfinfo.samplerate : -1.0;
  }
  int64_t read(float* dst, int64_t frames) override {
    const sf_count_t n = sf_readf_float(sf_.get(), dst, frames);
    if (sf_error(sf_.get()) != SF_ERR_NO_ERROR)
      throw FileError(name_, std::string("corrupt or truncated: decoding failed (libsndfile: ") +
                                 sf_strerror(sf_.get()) + ")");
    return n > 0 ? int64_t(n) : 0;
  }

 private:
  SfHandle sf_;
  std::string name_;
};

// MPEG audio (MP1/2/3) through libmpg123 directly, with the settings libsndfile uses (float output, gapless,
// no automatic resampling, no "Frankenstein" stream concatenation), plus two things libsndfile 1.2.0 does
// not do: an exact length from a scan of all frames (libsndfile trusts mpg123's estimate from the file size
// when there is no Xing/Info header, and stops reading there: VBR files without one come out cut short),
// and no chatter on stderr.
class MpegSource : public FrameSource {
 public:
  // Reads `path`, or the bytes of `mem` when path is null.
  MpegSource(const std::string& name, const std::string* path, MemoryFile mem) : name_(name), mem_(mem) {
    static std::once_flag once;
    std::call_once(once, [] { mpg123_init(); });
    int err = MPG123_OK;
    handle_.reset(mpg123_new(nullptr, &err));
    mh_ = handle_.get();
    if (!mh_) throw FileError(name_, std::string("cannot start the MPEG decoder: ") + mpg123_plain_strerror(err));
    mpg123_param(mh_, MPG123_REMOVE_FLAGS, MPG123_AUTO_RESAMPLE, 0.0);
    mpg123_param(mh_, MPG123_ADD_FLAGS, MPG123_FORCE_FLOAT | MPG123_GAPLESS | MPG123_QUIET, 0.0);
#if MPG123_API_VERSION >= 45
    mpg123_param(mh_, MPG123_ADD_FLAGS, MPG123_NO_FRANKENSTEIN, 0.0);
#endif
    if (path) {
      err = mpg123_open(mh_, path->c_str());
    } else {
      mem_.pos = 0;
      mpg123_replace_reader_handle(mh_, mpv_read, mpv_lseek, nullptr);
      err = mpg123_open_handle(mh_, &mem_);
    }
    if (err != MPG123_OK) fail("cannot open the MPEG stream");
    long rate = 0;
    int channels = 0, encoding = 0;
    if (mpg123_getformat(mh_, &rate, &channels, &encoding) != MPG123_OK) fail("corrupt MPEG audio");
    if (encoding != MPG123_ENC_FLOAT_32) throw FileError(name_, "the MPEG decoder did not give float samples");
    check_header(name_, int(rate), channels, -1);
    rate_ = rate;
    channels_ = channels;
    // The length an Info/Xing header declares (if any; mpg123 reports the encoder delay only from one),
    // then the length the frames really make.
    long enc_delay = -1;
    double unused = 0;
    const bool has_info_tag = mpg123_getstate(mh_, MPG123_ENC_DELAY, &enc_delay, &unused) == MPG123_OK && enc_delay >= 0;
    const off_t declared = mpg123_length(mh_);
    if (mpg123_scan(mh_) != MPG123_OK) fail("corrupt MPEG audio (scan failed)");
    const off_t scanned = mpg123_length(mh_);
    if (scanned <= 0) throw FileError(name_, "contains no audio (0 frames)");
    if (has_info_tag && declared > 0 && scanned < declared)
      throw FileError(name_, "truncated: the MP3 header declares " + std::to_string(int64_t(declared)) +
                                 " frames but the stream holds only " + std::to_string(int64_t(scanned)));
    mpg123_frameinfo fi{};
    mpg123_info(mh_, &fi);
    info.path = name_;
    info.format = "MPEG";
    info.subtype = fi.layer == 1 ? "MPEG_LAYER_I" : fi.layer == 2 ? "MPEG_LAYER_II" : "MPEG_LAYER_III";
    info.sample_rate = int(rate);
    info.channels = channels;
    info.frames = int64_t(scanned);
    info.duration_s = double(scanned) / double(rate);
  }
  int64_t read(float* dst, int64_t frames) override {
    const size_t frame_bytes = sizeof(float) * size_t(channels_);
    size_t done = 0;
    for (int attempt = 0; attempt < 4; ++attempt) {
      const int err = mpg123_read(mh_, dst, size_t(frames) * frame_bytes, &done);
      if (err == MPG123_OK || err == MPG123_DONE) break;
      if (err == MPG123_NEW_FORMAT) {
        long rate = 0;
        int channels = 0, encoding = 0;
        mpg123_getformat(mh_, &rate, &channels, &encoding);
        if (rate != rate_ || channels != channels_ || encoding != MPG123_ENC_FLOAT_32)
          throw FileError(name_, "corrupt MPEG audio: the format changes mid-stream");
        if (done > 0) break;
        continue;
      }
      fail("corrupt MPEG audio");
    }
    return int64_t(done / frame_bytes);
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw FileError(name_, what + " (libmpg123: " + mpg123_strerror(mh_) + ")");
  }
  struct Closer {
    void operator()(mpg123_handle* h) const {
      mpg123_close(h);
      mpg123_delete(h);
    }
  };
  std::string name_;
  MemoryFile mem_;
  std::unique_ptr<mpg123_handle, Closer> handle_;  // freed also when the constructor throws
  mpg123_handle* mh_ = nullptr;
  long rate_ = 0;
  int channels_ = 0;
};

// The decoding loop shared by all sources: blocks -> mono -> (streaming) resample.
Waveform decode_source(FrameSource& src, const std::string& name, const DecodeOptions& opt) {
  const int rate = src.info.sample_rate;
  const int channels = src.info.channels;
  const double max_frames_d = std::floor(opt.max_duration_s * rate);
  const int64_t max_frames =
      max_frames_d >= 9.0e18 ? std::numeric_limits<int64_t>::max() : std::max<int64_t>(1, int64_t(max_frames_d));
  const int64_t declared = src.info.frames;  // -1: unknown
  if (declared > max_frames)
    throw FileError(name, "too long: " + fmt_seconds(double(declared) / rate) + " exceeds the limit of " +
                              fmt_seconds(opt.max_duration_s));

  const int out_rate = opt.target_rate == 0 ? rate : opt.target_rate;
  std::unique_ptr<detail::StreamResampler> resampler;
  if (out_rate != rate) resampler = std::make_unique<detail::StreamResampler>(rate, out_rate);

  Waveform w;
  w.sample_rate = out_rate;
  if (declared > 0) {
    // Reserve what the header promises, but never more than a few MiB on its word alone.
    const int64_t expect = detail::StreamResampler::expected_length(declared, rate, out_rate);
    w.samples.reserve(size_t(std::min<int64_t>(expect, int64_t(1) << 22)));
  }

  const int64_t block_frames = std::max<int64_t>(1, kBlockSamples / channels);
  std::vector<float> block(size_t(block_frames) * size_t(channels));
  std::vector<float> mono;
  int64_t total = 0;
  for (;;) {
    const int64_t n = src.read(block.data(), block_frames);
    if (n <= 0) break;
    if (total + n > max_frames)
      throw FileError(name, "too long: more than " + fmt_seconds(opt.max_duration_s) +
                                " of audio (DecodeOptions::max_duration_s)");
    for (int64_t i = 0; i < n * channels; ++i) {
      if (!std::isfinite(block[size_t(i)]))
        throw FileError(name, "contains non-finite samples (NaN or Inf) near frame " +
                                  std::to_string(total + i / channels));
    }
    const float* m = block.data();
    if (channels > 1) {
      mono = downmix_to_mono(block.data(), n, channels);
      m = mono.data();
    }
    if (resampler)
      resampler->push(m, size_t(n), w.samples);
    else
      w.samples.insert(w.samples.end(), m, m + n);
    total += n;
  }
  if (total == 0) throw FileError(name, "contains no audio (no frames could be decoded)");
  if (declared > 0 && total < declared)
    throw FileError(name, "truncated or corrupt: the header declares " + std::to_string(declared) +
                              " frames but only " + std::to_string(total) + " could be decoded");
  if (resampler) {
    resampler->finish(w.samples);
    w.samples.resize(size_t(detail::StreamResampler::expected_length(total, rate, out_rate)), 0.0f);
  }
  if (opt.int16_roundtrip) int16_roundtrip(w.samples);
  return w;
}

// stat() checks that give better messages than libsndfile's, and keep us off FIFOs and devices
// (reading one could block forever).
uint64_t check_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw FileError(path, "is a directory, not an audio file");
  if (!S_ISREG(st.st_mode)) throw FileError(path, "not a regular file");
  if (st.st_size == 0) throw FileError(path, "empty file (0 bytes)");
  return uint64_t(st.st_size);
}

// libsndfile identifies the format and checks the header; MPEG streams then go to libmpg123.
// `path` is null for memory, in which case `mem` holds the bytes.
std::unique_ptr<FrameSource> open_source(const std::string& name, const std::string* path, MemoryFile* mem,
                                         ByteReader& bytes) {
  SF_INFO sfinfo{};
  SfHandle sf;
  if (path) {
    sf.reset(sf_open(path->c_str(), SFM_READ, &sfinfo));
  } else {
    SF_VIRTUAL_IO io{sfv_filelen, sfv_seek, sfv_read, sfv_write, sfv_tell};
    sf.reset(sf_open_virtual(&io, SFM_READ, &sfinfo, mem));
  }
  if (!sf) throw FileError(name, open_problem());
  if ((sfinfo.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG) {
    sf.reset();
    return std::make_unique<MpegSource>(name, path, path ? MemoryFile{nullptr, 0, 0} : *mem);
  }
  if (sfinfo.frames < 0) throw FileError(name, "corrupt header: negative length");
  check_header(name, sfinfo.samplerate, sfinfo.channels, int64_t(sfinfo.frames));
  const std::string problem = container_truncation(bytes);
  if (!problem.empty()) throw FileError(name, problem);
  return std::make_unique<SndSource>(std::move(sf), sfinfo, name);
}

std::unique_ptr<FrameSource> open_path(const std::string& path) {
  const uint64_t size = check_path(path);
  FileBytes bytes(path, size);
  if (!bytes.ok()) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  return open_source(path, &path, nullptr, bytes);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------
AudioInfo probe_audio(const std::string& path) { return open_path(path)->info; }

Waveform load_audio(const std::string& path, const DecodeOptions& options) {
  check_options(options);
  auto src = open_path(path);
  return decode_source(*src, path, options);
}

Waveform decode_audio_memory(const void* data, size_t size, const DecodeOptions& options, const std::string& name) {
  check_options(options);
  if (size == 0) throw FileError(name, "empty (0 bytes)");
  if (!data) throw Error("decode_audio_memory: null data pointer");
  MemoryFile mem{static_cast<const unsigned char*>(data), int64_t(size), 0};
  MemoryBytes bytes(static_cast<const unsigned char*>(data), size);
  auto src = open_source(name, nullptr, &mem, bytes);
  return decode_source(*src, name, options);
}

std::vector<float> downmix_to_mono(const float* interleaved, int64_t frames, int channels) {
  if (channels < 1) throw Error("downmix_to_mono: channels must be >= 1");
  if (frames < 0) throw Error("downmix_to_mono: negative frame count");
  std::vector<float> out(static_cast<size_t>(frames));
  if (channels == 1) {
    std::copy(interleaved, interleaved + frames, out.begin());
    return out;
  }
  // numpy's mean over the channel axis (librosa.to_mono): a float32 sum over channels in order, then a
  // float32 division by the count (not a multiplication by its reciprocal: the results can differ by 1 ulp).
  const float count = float(channels);
  for (int64_t i = 0; i < frames; ++i) {
    const float* f = interleaved + i * channels;
    float acc = f[0];
    for (int c = 1; c < channels; ++c) acc += f[c];
    out[size_t(i)] = acc / count;
  }
  return out;
}

// LAION-CLAP (github.com/LAION-AI/CLAP, src/laion_clap/training/data.py; used by hook.py's
// CLAP_Module.get_audio_embedding_from_filelist / _from_data as int16_to_float32(float32_to_int16(x))):
//   float32_to_int16(x): x = np.clip(x, -1., 1.); return (x * 32767.).astype(np.int16)
//   int16_to_float32(x): return (x / 32767.0).astype(np.float32)
// With a float32 array, `x * 32767.` is a float32 product; astype(int16) truncates toward zero; the division
// of an int16 array by a Python float is done in float64 and then rounded to float32. Reproduced exactly.
// NaN (which numpy would turn into an unspecified integer) becomes 0 here.
void int16_roundtrip(std::vector<float>& samples) {
  for (float& x : samples) {
    float c = std::isnan(x) ? 0.0f : std::min(1.0f, std::max(-1.0f, x));
    const float scaled = c * 32767.0f;                    // float32 arithmetic, |scaled| <= 32767
    const int16_t q = static_cast<int16_t>(scaled);       // truncation toward zero
    x = static_cast<float>(static_cast<double>(q) / 32767.0);
  }
}

void write_audio(const std::string& path, const Waveform& wave) {
  if (wave.sample_rate <= 0) throw FileError(path, "cannot write audio with sample rate " + std::to_string(wave.sample_rate));
  auto ends_with = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    if (path.size() < n) return false;
    for (size_t i = 0; i < n; ++i)
      if (std::tolower(static_cast<unsigned char>(path[path.size() - n + i])) != suffix[i]) return false;
    return true;
  };
  int format = 0;
  if (ends_with(".f32.wav"))
    format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  else if (ends_with(".wav"))
    format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  else if (ends_with(".flac"))
    format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  else if (ends_with(".ogg"))
    format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  else if (ends_with(".mp3"))
    format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  else
    throw FileError(path, "unsupported output extension (use .wav, .f32.wav, .flac, .ogg or .mp3)");
  if ((format & SF_FORMAT_TYPEMASK) != SF_FORMAT_WAV && wave.sample_rate > 655350)
    throw FileError(path, "sample rate too high for this format");

  write_file_atomic(path, [&](const std::string& tmp) {
    SF_INFO info{};
    info.samplerate = wave.sample_rate;
    info.channels = 1;
    info.format = format;
    SfHandle sf(sf_open(tmp.c_str(), SFM_WRITE, &info));
    if (!sf) throw FileError(path, std::string("cannot write audio: ") + sf_strerror(nullptr));
    // Clip rather than wrap around when float samples beyond [-1, 1] go into an integer format.
    sf_command(sf.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const sf_count_t n = sf_count_t(wave.samples.size());
    if (n > 0 && sf_writef_float(sf.get(), wave.samples.data(), n) != n)
      throw FileError(path, std::string("write failed: ") + sf_strerror(sf.get()));
    sf_write_sync(sf.get());
    SNDFILE* raw = sf.release();
    if (sf_close(raw) != 0) throw FileError(path, "write failed while closing the file");
  });
}

}  // namespace synclap
