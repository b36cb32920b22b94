// numpy's legacy RandomState: MT19937 seeded with init_genrand, and bounded integers drawn by
// masked rejection sampling on 32-bit outputs (numpy's path for ranges below 2^32).
#include "synclap/random.h"

#include "synclap/error.h"

namespace synclap {

void NumpyRandom::seed_state(uint32_t seed) {
  mt_[0] = seed;
  for (int i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  pos_ = 624;
}

uint32_t NumpyRandom::next_uint32() {
  if (pos_ >= 624) {
    constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix = 0x9908b0dfu;
    for (int i = 0; i < 624; ++i) {
      const uint32_t y = (mt_[i] & upper) | (mt_[(i + 1) % 624] & lower);
      mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? matrix : 0u);
    }
    pos_ = 0;
  }
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

int64_t NumpyRandom::randint(int64_t low, int64_t high) {
  if (high <= low) throw Error("randint: empty range [" + std::to_string(low) + ", " + std::to_string(high) + ")");
  const uint64_t rng = uint64_t(high - low - 1);
  if (rng == 0) return low;
  if (rng > 0xffffffffull) throw Error("randint: range too large");
  uint32_t mask = uint32_t(rng);
  mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
  uint32_t v;
  do {
    v = next_uint32() & mask;
  } while (v > rng);
  return low + int64_t(v);
}

}  // namespace synclap
