// synclap: small image output for reports and docs — PNG files without an image library.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace synclap {

// Writes an 8-bit palette PNG (atomically). `pixels` holds width*height palette indices, row-major, top
// row first; `palette` holds up to 256 RGB triples. Stored (uncompressed) deflate blocks: no zlib needed.
void write_png_indexed(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels,
                       const std::vector<uint8_t>& palette_rgb);

// An 8-bit RGB PNG of width*height*3 bytes (row-major, top row first), as bytes or written atomically.
std::string png_rgb_bytes(const std::vector<uint8_t>& rgb, int width, int height);
void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height);

// A spectrogram picture of row-major [frames][bins] values (e.g. log-mel dB): time left to right,
// low bins at the bottom, the top `range_db` below the maximum mapped through a perceptual colour map.
// The image is resized to width x height (0 = frames and bins as they are).
void write_spectrogram_png(const std::string& path, const std::vector<float>& values, int frames, int bins,
                           int width = 0, int height = 0, double range_db = 80.0);

}  // namespace synclap
