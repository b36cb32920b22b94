// Pictures for reports: a confusion matrix as SVG, or as an RGB heat map (written as PNG by
// synclap/image.h).
#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>

#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/util.h"

namespace synclap {
namespace {

// White -> dark blue.
std::array<uint8_t, 3> heat(double v) {
  v = std::clamp(v, 0.0, 1.0);
  return {uint8_t(255 - v * (255 - 8)), uint8_t(255 - v * (255 - 48)), uint8_t(255 - v * (255 - 107))};
}


std::vector<double> row_fractions(const std::vector<int64_t>& m, int64_t C) {
  std::vector<double> f(size_t(C * C), 0.0);
  for (int64_t r = 0; r < C; ++r) {
    int64_t sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += m[size_t(r * C + c)];
    for (int64_t c = 0; c < C; ++c) f[size_t(r * C + c)] = sum ? double(m[size_t(r * C + c)]) / double(sum) : 0.0;
  }
  return f;
}

}  // namespace

std::string confusion_svg(const std::vector<int64_t>& m, const std::vector<std::string>& classes,
                          const std::string& title) {
  const int64_t C = int64_t(classes.size());
  if (int64_t(m.size()) != C * C) throw Error("confusion_svg: matrix size does not match the classes");
  const auto f = row_fractions(m, C);
  size_t longest = 4;
  for (const auto& c : classes) longest = std::max(longest, c.size());
  const int cell = C <= 12 ? 40 : C <= 30 ? 24 : 14;
  const int label_w = int(std::min<size_t>(longest, 28) * 7 + 12);
  const int top = 30 + label_w, left = label_w + 30;
  const int w = left + int(C) * cell + 20, h = top + int(C) * cell + 40;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty()) o << "<text x=\"10\" y=\"18\" font-size=\"14\">" << xml_escape(title) << "</text>\n";
  o << "<text x=\"" << left + C * cell / 2 << "\" y=\"" << h - 10 << "\" text-anchor=\"middle\">predicted</text>\n";
  o << "<text x=\"12\" y=\"" << top + C * cell / 2 << "\" transform=\"rotate(-90 12 " << top + C * cell / 2
    << ")\" text-anchor=\"middle\">true</text>\n";
  for (int64_t i = 0; i < C; ++i) {
    const std::string name = xml_escape(classes[size_t(i)].substr(0, 28));
    o << "<text x=\"" << left - 4 << "\" y=\"" << top + i * cell + cell / 2 + 4 << "\" text-anchor=\"end\">" << name
      << "</text>\n";
    const int64_t x = left + i * cell + cell / 2 + 4, y = top - 4;
    o << "<text x=\"" << x << "\" y=\"" << y << "\" transform=\"rotate(-90 " << x << ' ' << y << ")\">" << name
      << "</text>\n";
  }
  for (int64_t r = 0; r < C; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double v = f[size_t(r * C + c)];
      const auto col = heat(v);
      char fill[8];
      std::snprintf(fill, sizeof fill, "#%02x%02x%02x", col[0], col[1], col[2]);
      o << "<rect x=\"" << left + c * cell << "\" y=\"" << top + r * cell << "\" width=\"" << cell << "\" height=\""
        << cell << "\" fill=\"" << fill << "\" stroke=\"#ccc\"><title>" << xml_escape(classes[size_t(r)]) << " -> "
        << xml_escape(classes[size_t(c)]) << ": " << m[size_t(r * C + c)] << "</title></rect>\n";
      if (cell >= 24 && m[size_t(r * C + c)] > 0)
        o << "<text x=\"" << left + c * cell + cell / 2 << "\" y=\"" << top + r * cell + cell / 2 + 4
          << "\" text-anchor=\"middle\" fill=\"" << (v > 0.5 ? "white" : "black") << "\">" << m[size_t(r * C + c)]
          << "</text>\n";
    }
  o << "</svg>\n";
  return o.str();
}

std::vector<uint8_t> confusion_rgb(const std::vector<int64_t>& m, int64_t C, int cell_px, int* width, int* height) {
  if (C <= 0 || int64_t(m.size()) != C * C || cell_px <= 0) throw Error("confusion_rgb: bad matrix");
  const auto f = row_fractions(m, C);
  const int W = int(C) * cell_px, H = W;
  std::vector<uint8_t> img(size_t(W) * H * 3);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const bool grid = (x % cell_px == 0) || (y % cell_px == 0);
      const auto col = grid ? std::array<uint8_t, 3>{200, 200, 200} : heat(f[size_t((y / cell_px) * C + x / cell_px)]);
      std::copy(col.begin(), col.end(), img.begin() + (size_t(y) * W + x) * 3);
    }
  *width = W;
  *height = H;
  return img;
}


std::string xml_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

}  // namespace synclap
