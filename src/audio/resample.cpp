// Sample-rate conversion with libsoxr (high quality), one-shot and streaming.
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "audio/resampler.h"
#include "synclap/audio.h"
#include "synclap/error.h"

namespace synclap {
namespace detail {

StreamResampler::StreamResampler(int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    throw Error("resample: sample rates must be positive (got " + std::to_string(from_rate) + " -> " +
                std::to_string(to_rate) + ")");
  ratio_ = double(to_rate) / double(from_rate);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t err = nullptr;
  soxr_ = soxr_create(double(from_rate), double(to_rate), 1, &err, &io, &quality, &runtime);
  if (err || !soxr_) {
    if (soxr_) soxr_delete(soxr_);
    soxr_ = nullptr;
    throw Error(std::string("resample: soxr_create failed: ") + (err ? err : "unknown error"));
  }
}

StreamResampler::~StreamResampler() {
  if (soxr_) soxr_delete(soxr_);
}

// Feeds `in` (nullptr = end of input) and drains soxr's output into `out` until it has nothing more.
void StreamResampler::run(const float* in, size_t n, std::vector<float>& out) {
  size_t consumed = 0;
  for (;;) {
    const size_t room = std::max<size_t>(4096, size_t(double(n - consumed) * ratio_) + 256);
    const size_t old = out.size();
    out.resize(old + room);
    size_t idone = 0, odone = 0;
    soxr_error_t err = in ? soxr_process(soxr_, in + consumed, n - consumed, &idone, out.data() + old, room, &odone)
                          : soxr_process(soxr_, nullptr, 0, nullptr, out.data() + old, room, &odone);
    out.resize(old + odone);
    if (err) throw Error(std::string("resample: soxr_process failed: ") + err);
    consumed += idone;
    // While feeding: done when all input is taken and soxr did not fill the room (nothing queued).
    // While flushing: done when soxr has nothing more to give.
    if (in ? (consumed >= n && odone < room) : odone == 0) break;
  }
}

void StreamResampler::push(const float* in, size_t n, std::vector<float>& out) {
  if (n == 0) return;
  run(in, n, out);
}

void StreamResampler::finish(std::vector<float>& out) { run(nullptr, 0, out); }

int64_t StreamResampler::expected_length(int64_t n, int from_rate, int to_rate) {
  const double ratio = double(to_rate) / double(from_rate);
  return int64_t(std::ceil(double(n) * ratio));
}

}  // namespace detail

std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    throw Error("resample: sample rates must be positive (got " + std::to_string(from_rate) + " -> " +
                std::to_string(to_rate) + ")");
  if (from_rate == to_rate) return samples;
  const int64_t want = detail::StreamResampler::expected_length(int64_t(samples.size()), from_rate, to_rate);
  std::vector<float> out;
  out.reserve(size_t(want) + 64);
  detail::StreamResampler r(from_rate, to_rate);
  r.push(samples.data(), samples.size(), out);
  r.finish(out);
  out.resize(size_t(want), 0.0f);  // librosa's fix_length: trim or zero-pad to ceil(n * ratio)
  return out;
}

}  // namespace synclap
