// Pictures for reports: a confusion matrix as SVG, or as an RGB heat map (written as PNG by
// synclap/image.h); a histogram (CLAP scores) and signed horizontal bars (FAD contributions) as SVG.
#include <algorithm>
#include <array>
#include <cmath>
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


// The opening every picture here shares: the <svg> element on a white background, and the title if any.
void svg_open(std::ostringstream& o, int width, int height, const std::string& title) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty()) o << "<text x=\"10\" y=\"18\" font-size=\"14\">" << xml_escape(title) << "</text>\n";
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
  svg_open(o, w, h, title);
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


HistogramCounts histogram_counts(const std::vector<double>& values, int bins) {
  if (bins <= 0) throw Error("histogram: bins must be positive");
  HistogramCounts h;
  h.counts.assign(size_t(bins), 0);
  double sum = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    h.lo = h.n ? std::min(h.lo, v) : v;
    h.hi = h.n ? std::max(h.hi, v) : v;
    sum += v;
    ++h.n;
  }
  if (h.n == 0) return h;
  h.mean = sum / double(h.n);
  if (h.hi - h.lo < 1e-12) h.lo -= 0.5, h.hi += 0.5;  // all equal: one unit-wide range around the value
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    const int b = std::min(bins - 1, int((v - h.lo) / (h.hi - h.lo) * bins));
    ++h.counts[size_t(std::max(0, b))];
  }
  return h;
}

std::string histogram_svg(const std::vector<double>& values, int bins, const std::string& title,
                          const std::string& xlabel) {
  const HistogramCounts h = histogram_counts(values, bins);
  const int W = 560, H = 300, left = 50, right = 20, top = 40, bottom = 50;
  const int pw = W - left - right, ph = H - top - bottom;
  const int64_t peak = std::max<int64_t>(1, *std::max_element(h.counts.begin(), h.counts.end()));
  std::ostringstream o;
  svg_open(o, W, H, title);
  o << "<text x=\"" << W - right << "\" y=\"18\" text-anchor=\"end\">n = " << h.n << "</text>\n";
  o << "<line x1=\"" << left << "\" y1=\"" << top + ph << "\" x2=\"" << left + pw << "\" y2=\"" << top + ph
    << "\" stroke=\"#444\"/>\n";
  const double bw = double(pw) / bins;
  for (int b = 0; b < bins; ++b) {
    const int64_t c = h.counts[size_t(b)];
    const double bh = double(ph) * double(c) / double(peak);
    const double lo = h.lo + (h.hi - h.lo) * b / bins, hi = h.lo + (h.hi - h.lo) * (b + 1) / bins;
    o << "<rect class=\"bin\" x=\"" << left + b * bw + 1 << "\" y=\"" << top + ph - bh << "\" width=\""
      << std::max(1.0, bw - 2) << "\" height=\"" << bh << "\" fill=\"#3b6ea8\"><title>[" << lo << ", " << hi
      << "): " << c << "</title></rect>\n";
  }
  o << "<text x=\"" << left << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">" << h.lo << "</text>\n";
  o << "<text x=\"" << left + pw << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">" << h.hi << "</text>\n";
  o << "<text x=\"" << left - 6 << "\" y=\"" << top + 4 << "\" text-anchor=\"end\">" << peak << "</text>\n";
  if (h.n > 0) {
    const double mean = h.mean;
    const double x = left + pw * (mean - h.lo) / (h.hi - h.lo);
    o << "<line x1=\"" << x << "\" y1=\"" << top - 6 << "\" x2=\"" << x << "\" y2=\"" << top + ph
      << "\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>\n<text x=\"" << x + 4 << "\" y=\"" << top
      << "\" fill=\"#c0392b\">mean " << mean << "</text>\n";
  }
  if (!xlabel.empty())
    o << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">" << xml_escape(xlabel)
      << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

std::string bars_svg(const std::vector<std::string>& labels, const std::vector<double>& values,
                     const std::string& title, const std::string& xlabel) {
  if (labels.size() != values.size()) throw Error("bars_svg: labels and values differ in length");
  const int row = 18, left = 260, right = 70, top = 40, bottom = 40, pw = 360;
  const int W = left + pw + right, H = top + int(labels.size()) * row + bottom;
  double lo = 0, hi = 0;
  for (double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (hi - lo < 1e-300) hi = lo + 1;
  const auto xpos = [&](double v) { return left + pw * (v - lo) / (hi - lo); };
  std::ostringstream o;
  svg_open(o, W, H, title);
  const double x0 = xpos(0);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double v = std::isfinite(values[i]) ? values[i] : 0.0;
    const double x = xpos(v);
    const int y = top + int(i) * row;
    std::string name = labels[i];
    if (name.size() > 40) name = "…" + name.substr(name.size() - 39);
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + 13 << "\" text-anchor=\"end\">" << xml_escape(name)
      << "</text>\n<rect class=\"bar\" x=\"" << std::min(x, x0) << "\" y=\"" << y + 3 << "\" width=\""
      << std::max(0.5, std::fabs(x - x0)) << "\" height=\"" << row - 6 << "\" fill=\""
      << (v > 0 ? "#c0392b" : "#3b6ea8") << "\"><title>" << xml_escape(labels[i]) << ": " << values[i]
      << "</title></rect>\n<text x=\"" << left + pw + 6 << "\" y=\"" << y + 13 << "\">" << values[i] << "</text>\n";
  }
  o << "<line x1=\"" << x0 << "\" y1=\"" << top << "\" x2=\"" << x0 << "\" y2=\"" << H - bottom
    << "\" stroke=\"#444\"/>\n";
  if (!xlabel.empty())
    o << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">" << xml_escape(xlabel)
      << "</text>\n";
  o << "</svg>\n";
  return o.str();
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
