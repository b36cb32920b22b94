// synclap (internal): a streaming soxr resampler, so that long files are resampled block by block while
// they are decoded and the native-rate signal never has to be held in memory whole.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

typedef struct soxr* soxr_t;

namespace synclap::detail {

// Mono float32, SOXR_HQ (20-bit quality), flags 0, one thread: the settings librosa's default
// res_type "soxr_hq" asks python-soxr for (soxr_quality_spec(SOXR_HQ, 0), float32 in and out).
class StreamResampler {
 public:
  StreamResampler(int from_rate, int to_rate);  // throws synclap::Error for rates <= 0
  ~StreamResampler();
  StreamResampler(const StreamResampler&) = delete;
  StreamResampler& operator=(const StreamResampler&) = delete;

  // Resamples n more input samples and appends what soxr emits to `out`.
  void push(const float* in, size_t n, std::vector<float>& out);
  // Ends the input and appends the rest (the filter's tail) to `out`.
  void finish(std::vector<float>& out);

  // Length librosa gives a resampled signal: ceil(n * (to / from)), computed in double as numpy does.
  static int64_t expected_length(int64_t n, int from_rate, int to_rate);

 private:
  void run(const float* in, size_t n, std::vector<float>& out);
  soxr_t soxr_ = nullptr;
  double ratio_ = 1.0;
};

}  // namespace synclap::detail
