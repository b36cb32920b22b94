// PNG output with stored deflate blocks (CRC-32 and Adler-32 computed here): small, dependency-free.
#include <algorithm>
#include <cmath>

#include "synclap/error.h"
#include "synclap/image.h"
#include "synclap/util.h"

namespace synclap {
namespace {

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  static uint32_t table[256];
  static bool init = false;
  if (!init) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    init = true;
  }
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void put32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += char((v >> (8 * i)) & 0xFF);
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put32(out, uint32_t(data.size()));
  std::string td = std::string(type, 4) + data;
  out += td;
  put32(out, crc32(reinterpret_cast<const uint8_t*>(td.data()), td.size()));
}

}  // namespace

namespace {
// PNG bytes for 8-bit rows of `channels` bytes per pixel: colour type 3 (palette) or 2 (RGB).
// Stored (uncompressed) deflate blocks of at most 65535 bytes, so no zlib is needed.
std::string encode_png(int width, int height, int color_type, int channels, const uint8_t* pixels,
                       const std::vector<uint8_t>* palette) {
  const size_t row = size_t(width) * size_t(channels);
  std::string raw;  // filter byte 0 + row
  raw.reserve(size_t(height) * (row + 1));
  for (int y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(pixels) + size_t(y) * row, row);
  }
  std::string z = "\x78\x01";  // zlib header, no compression
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    const bool last = pos + n == raw.size();
    z += char(last ? 1 : 0);
    z += char(n & 0xFF);
    z += char(n >> 8);
    z += char(~n & 0xFF);
    z += char((~n >> 8) & 0xFF);
    z.append(raw, pos, n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put32(ihdr, uint32_t(width));
  put32(ihdr, uint32_t(height));
  ihdr += char(8);  // bit depth
  ihdr += char(color_type);
  ihdr += std::string(3, '\0');
  chunk(png, "IHDR", ihdr);
  if (palette) chunk(png, "PLTE", std::string(palette->begin(), palette->end()));
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}
}  // namespace

void write_png_indexed(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels,
                       const std::vector<uint8_t>& palette) {
  if (width <= 0 || height <= 0 || pixels.size() != size_t(width) * size_t(height))
    throw Error("write_png_indexed: pixel count does not match the size");
  if (palette.empty() || palette.size() % 3 || palette.size() > 768) throw Error("write_png_indexed: bad palette");
  write_file_atomic(path, encode_png(width, height, 3, 1, pixels.data(), &palette));
}

std::string png_rgb_bytes(const std::vector<uint8_t>& rgb, int width, int height) {
  if (width <= 0 || height <= 0 || rgb.size() != size_t(width) * size_t(height) * 3) throw Error("png: bad image size");
  return encode_png(width, height, 2, 3, rgb.data(), nullptr);
}

void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height) {
  write_file_atomic(path, png_rgb_bytes(rgb, width, height));
}

void write_spectrogram_png(const std::string& path, const std::vector<float>& v, int frames, int bins, int width,
                           int height, double range_db) {
  if (frames <= 0 || bins <= 0 || v.size() != size_t(frames) * size_t(bins))
    throw Error("write_spectrogram_png: value count does not match frames x bins");
  if (width <= 0) width = frames;
  if (height <= 0) height = bins;
  // A dark-blue -> magenta -> orange -> light-yellow ramp (in the spirit of "magma").
  static const double stops[][3] = {{0, 0, 4}, {40, 15, 100}, {120, 30, 130}, {200, 55, 110}, {250, 130, 60}, {252, 253, 191}};
  std::vector<uint8_t> pal(256 * 3);
  for (int i = 0; i < 256; ++i) {
    const double t = i / 255.0 * 5;
    const int k = std::min(4, int(t));
    const double f = t - k;
    for (int c = 0; c < 3; ++c) pal[size_t(i) * 3 + size_t(c)] = uint8_t(std::lround(stops[k][c] + f * (stops[k + 1][c] - stops[k][c])));
  }
  const float top = *std::max_element(v.begin(), v.end());
  std::vector<uint8_t> px(size_t(width) * size_t(height));
  for (int y = 0; y < height; ++y) {
    const int bin = std::min(bins - 1, int((height - 1 - y) * double(bins) / height));
    for (int x = 0; x < width; ++x) {
      // the mean of the frames this column covers
      const int f0 = int(x * double(frames) / width), f1 = std::max(f0 + 1, int((x + 1) * double(frames) / width));
      double s = 0;
      for (int f = f0; f < f1 && f < frames; ++f) s += v[size_t(f) * size_t(bins) + size_t(bin)];
      const double db = s / (f1 - f0);
      const double t = std::clamp((db - (top - range_db)) / range_db, 0.0, 1.0);
      px[size_t(y) * size_t(width) + size_t(x)] = uint8_t(std::lround(t * 255));
    }
  }
  write_png_indexed(path, width, height, px, pal);
}

}  // namespace synclap
