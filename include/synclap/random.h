// synclap: seeded random numbers.
#pragma once
#include <array>
#include <cstdint>

namespace synclap {

// numpy's legacy RandomState (MT19937) for the draws the CLAP reference makes: with the same seed,
// randint/choice give exactly what np.random.seed(seed); np.random.randint(...) gives, so random crops
// and fusion chunks can be reproduced number for number.
class NumpyRandom {
 public:
  explicit NumpyRandom(uint32_t seed = 0) { seed_state(seed); }
  void seed_state(uint32_t seed);
  uint32_t next_uint32();
  // np.random.randint(low, high): uniform integer in [low, high). high > low.
  int64_t randint(int64_t low, int64_t high);
  // np.random.choice(range of size n) index: same as randint(0, n).
  int64_t choice_index(int64_t n) { return randint(0, n); }

 private:
  std::array<uint32_t, 624> mt_{};
  int pos_ = 624;
};

}  // namespace synclap
