// libFuzzer target for the decoding path: arbitrary bytes -> decode_audio_memory (libsndfile's format
// detection and decoders, our header and truncation checks, down-mixing, soxr resampling to 48 kHz and the
// int16 round trip). Refusing an input with synclap::Error is the expected outcome for junk; anything else
// (a crash, a sanitizer report, a leak, a hang, an allocation over -rss_limit_mb) is a bug.
#include <cstddef>
#include <cstdint>

#include "synclap/audio.h"
#include "synclap/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  synclap::DecodeOptions options;
  options.target_rate = 48000;
  options.int16_roundtrip = (size & 1) != 0;  // exercise both paths, deterministically per input
  // A small cap keeps each input fast and bounded: a few KiB of FLAC or MP3 can legitimately describe
  // hours of silence, and the decoder must stop at the cap rather than decode it all.
  options.max_duration_s = 30.0;
  try {
    synclap::Waveform w = synclap::decode_audio_memory(data, size, options, "fuzz-input");
    if (w.samples.empty() || w.sample_rate != 48000) __builtin_trap();  // success must mean audio
  } catch (const synclap::Error&) {
  }
  return 0;
}
