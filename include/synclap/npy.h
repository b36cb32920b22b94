// synclap: NumPy .npy arrays (version 1.0/2.0, little-endian, C order).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace synclap {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // converted to float32 from f4/f8/i8/i4/i2
  int64_t numel() const;
};

// Writes float32 data of the given shape atomically.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);
inline void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& v) {
  write_npy(path, shape, v.data());
}
// Reads a float/int .npy (throws FileError for anything else or a malformed file).
NpyArray read_npy(const std::string& path);

}  // namespace synclap
