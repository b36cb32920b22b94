// UTF-8 decoding, the Unicode classes of the GPT-2 pattern, the pattern itself, and GPT-2's byte alphabet.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "synclap/tokenizer.h"
#include "text/unicode_text.h"

namespace synclap {
namespace text {
namespace {

struct ClassRange {
  uint32_t first, last;
  CharClass cls;
};
constexpr CharClass kLetter = CharClass::kLetter;
constexpr CharClass kNumber = CharClass::kNumber;
constexpr CharClass kSpace = CharClass::kSpace;

const ClassRange kRanges[] = {
#include "text/unicode_tables.inc"
};

// Classes of the Basic Multilingual Plane as a flat table (64 KiB), built once.
const std::array<uint8_t, 0x10000>& bmp_table() {
  static const std::array<uint8_t, 0x10000> table = [] {
    std::array<uint8_t, 0x10000> t{};
    for (const ClassRange& r : kRanges) {
      if (r.first > 0xFFFF) break;
      for (uint32_t cp = r.first; cp <= std::min<uint32_t>(r.last, 0xFFFF); ++cp) t[cp] = uint8_t(r.cls);
    }
    return t;
  }();
  return table;
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 0x10000) return CharClass(bmp_table()[cp]);
  const ClassRange* end = kRanges + sizeof(kRanges) / sizeof(kRanges[0]);
  const ClassRange* it =
      std::upper_bound(kRanges, end, uint32_t(cp), [](uint32_t v, const ClassRange& r) { return v < r.first; });
  if (it == kRanges) return CharClass::kOther;
  --it;
  return (cp <= it->last) ? it->cls : CharClass::kOther;
}

bool is_python_space(char32_t cp) {
  // str.isspace(): White_Space plus the information separators U+001C..U+001F.
  return char_class(cp) == CharClass::kSpace || (cp >= 0x1C && cp <= 0x1F);
}

// Decodes one character at p[0..n). Sets *len to the bytes consumed: the character's length, or the length
// of the maximal invalid subpart (at least 1) in which case it returns kInvalid.
char32_t decode_utf8(const unsigned char* p, size_t n, size_t* len) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len = 1;
    return kInvalid;
  }
  size_t i = 1;
  for (int k = 0; k < need; ++k, ++i) {
    if (i >= n) {
      *len = i;
      return kInvalid;
    }
    const unsigned char b = p[i];
    const unsigned char l = (k == 0) ? lo : 0x80, h = (k == 0) ? hi : 0xBF;
    if (b < l || b > h) {
      *len = i;
      return kInvalid;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = i;
  return cp;
}

void append_utf8(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace text

using text::CharClass;

std::string sanitize_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0, n = bytes.size();
  while (i < n) {
    size_t len;
    const char32_t cp = text::decode_utf8(p + i, n - i, &len);
    if (cp == text::kInvalid) {
      text::append_utf8(&out, 0xFFFD);
    } else {
      out.append(bytes.data() + i, len);
    }
    i += len;
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0, n = bytes.size();
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (text::decode_utf8(p + i, n - i, &len) == text::kInvalid) return false;
    i += len;
  }
  return true;
}

// The GPT-2 pattern, alternative by alternative, as the `regex` module runs it (leftmost alternative that
// matches wins; each quantifier greedy with backtracking):
//   1 's|'t|'re|'ve|'m|'ll|'d   2 ` ?\p{L}+`   3 ` ?\p{N}+`   4 ` ?[^\s\p{L}\p{N}]+`   5 `\s+(?!\S)`   6 `\s+`
// Every character is a letter, number, space or other, so at any position one of 2/3/4 or 5/6 matches.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  const size_t n_bytes = text.size();
  if (n_bytes == 0) return pieces;
  // Characters: code point, class and byte offset (offsets has one extra entry: the end).
  std::vector<char32_t> cps;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> off;
  cps.reserve(n_bytes);
  cls.reserve(n_bytes);
  off.reserve(n_bytes + 1);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < n_bytes;) {
    size_t len = 1;
    char32_t cp = p[i];
    if (cp >= 0x80) cp = text::decode_utf8(p + i, n_bytes - i, &len);
    cps.push_back(cp);
    cls.push_back(uint8_t(cp == text::kInvalid ? CharClass::kOther : text::char_class(cp)));
    off.push_back(uint32_t(i));
    i += len;
  }
  off.push_back(uint32_t(n_bytes));
  const size_t n = cps.size();
  auto is = [&](size_t i, CharClass c) { return i < n && cls[i] == uint8_t(c); };
  auto run_end = [&](size_t i, CharClass c) {
    while (i < n && cls[i] == uint8_t(c)) ++i;
    return i;
  };
  auto emit = [&](size_t a, size_t b) { pieces.push_back(text.substr(off[a], off[b] - off[a])); };

  size_t i = 0;
  while (i < n) {
    const char32_t c = cps[i];
    // 1: contractions (case-sensitive, ASCII apostrophe only).
    if (c == U'\'' && i + 1 < n) {
      const char32_t c1 = cps[i + 1];
      if (c1 == U's' || c1 == U't' || c1 == U'm' || c1 == U'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t c2 = cps[i + 2];
        if ((c1 == U'r' && c2 == U'e') || (c1 == U'v' && c2 == U'e') || (c1 == U'l' && c2 == U'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // 2, 3, 4: an optional U+0020, then a run of one class (letters, numbers, or "other").
    const CharClass own = CharClass(cls[i]);
    if (own != CharClass::kSpace) {
      const size_t j = run_end(i, own);
      emit(i, j);
      i = j;
      continue;
    }
    if (c == U' ' && i + 1 < n && !is(i + 1, CharClass::kSpace)) {
      const size_t j = run_end(i + 1, CharClass(cls[i + 1]));
      emit(i, j);
      i = j;
      continue;
    }
    // 5, 6: white space. The whole run when it reaches the end of the text; otherwise all but its last
    // character (that one goes with the next word as its optional space) when that leaves at least one.
    const size_t j = run_end(i, CharClass::kSpace);
    if (j < n && j - i >= 2) {
      emit(i, j - 1);
      i = j - 1;
    } else {
      emit(i, j);
      i = j;
    }
  }
  return pieces;
}

namespace {

struct ByteAlphabet {
  char32_t to_cp[256];
  std::string to_text[256];
  ByteAlphabet() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? char32_t(b) : char32_t(256 + extra++);
      text::append_utf8(&to_text[b], to_cp[b]);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

char32_t byte_to_unicode(uint8_t byte) { return alphabet().to_cp[byte]; }

std::string bytes_to_token_text(std::string_view bytes) {
  const ByteAlphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += a.to_text[b];
  return out;
}

bool token_text_to_bytes(std::string_view token, std::string* bytes) {
  bytes->clear();
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  size_t i = 0, n = token.size();
  while (i < n) {
    size_t len;
    const char32_t cp = text::decode_utf8(p + i, n - i, &len);
    if (cp == text::kInvalid) return false;
    // Inverse of the alphabet: printable Latin-1 maps to itself, U+0100..U+0143 to the other 68 bytes.
    if (cp < 256) {
      const bool printable = (cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE);
      if (!printable) return false;
      bytes->push_back(char(cp));
    } else if (cp < 256 + 68) {
      int extra = int(cp) - 256;
      int b = 0;
      for (; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable && extra-- == 0) break;
      }
      bytes->push_back(char(b));
    } else {
      return false;
    }
    i += len;
  }
  return true;
}

const char* unicode_version() { return SYNCLAP_UNICODE_VERSION; }

}  // namespace synclap
