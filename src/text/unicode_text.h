// Internal: UTF-8 and Unicode class helpers shared by the tokenizer and the BPE trainer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace synclap::text {

// Classes of the GPT-2 pre-tokenisation pattern (disjoint).
enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

CharClass char_class(char32_t cp);
// Python's str.isspace() (White_Space plus U+001C..U+001F): what str.strip() removes.
bool is_python_space(char32_t cp);

constexpr char32_t kInvalid = 0xFFFFFFFF;
// Decodes one character from p[0..n) (n >= 1). *len receives the bytes consumed: the character's length,
// or, for invalid input (then the result is kInvalid), the length of the maximal invalid subpart (>= 1).
char32_t decode_utf8(const unsigned char* p, size_t n, size_t* len);
void append_utf8(std::string* out, char32_t cp);

}  // namespace synclap::text
