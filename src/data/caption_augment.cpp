// synclap: caption augmentation for training — seeded phrase shuffle, word drop and lower-casing.
#include <algorithm>
#include <cctype>
#include <sstream>

#include "data/data_internal.h"
#include "data/train_data.h"

namespace synclap {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A tiny deterministic generator (splitmix64 stream).
struct Draws {
  uint64_t state;
  uint64_t next() { return state = data::mix64(state); }
  double unit() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  size_t below(size_t n) { return size_t(next() % n); }
};

}  // namespace

std::string augment_caption(const std::string& caption, uint64_t seed, const CaptionAugment& options) {
  Draws r{data::mix64(seed ^ 0xca971011ULL)};
  if (!(r.unit() < options.prob)) return caption;
  // Phrases: split on commas.
  std::vector<std::string> phrases;
  {
    std::string cur;
    for (char c : caption) {
      if (c == ',') {
        phrases.push_back(trim(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    phrases.push_back(trim(cur));
  }
  phrases.erase(std::remove(phrases.begin(), phrases.end(), std::string()), phrases.end());
  if (options.shuffle_phrases && phrases.size() > 1)
    for (size_t i = phrases.size() - 1; i > 0; --i) std::swap(phrases[i], phrases[r.below(i + 1)]);
  std::string out;
  for (const auto& p : phrases) {
    std::istringstream words(p);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    std::string kept;
    for (size_t i = 0; i < w.size(); ++i) {
      const bool last = i + 1 == w.size();
      if (!last && options.word_drop > 0 && r.unit() < options.word_drop) continue;
      if (!kept.empty()) kept += ' ';
      kept += w[i];
    }
    if (kept.empty()) continue;
    if (!out.empty()) out += ", ";
    out += kept;
  }
  if (options.lowercase)
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  out = trim(out);
  return out.empty() ? caption : out;
}

}  // namespace synclap
