// synclap: byte-level BPE tokenizer, exactly as RoBERTa / GPT-2 (HF RobertaTokenizer).
//
// Reads a `vocab.json` (token -> id, tokens written in GPT-2's byte-to-unicode alphabet) and a `merges.txt`
// ("#version" line, then one "A B" merge per line, highest priority first). Encoding follows HF's slow
// RobertaTokenizer as called by the CLAP processor (padding="max_length", max_length=77, truncation=True):
//   1. special-token strings present in the text ("<s>", "</s>", "<pad>", "<unk>", "<mask>") become those
//      tokens (as HF does; "<mask>" also swallows the white space before it); switch off with
//      TokenizerOptions::split_special_tokens;
//   2. every other piece is cut by the GPT-2 pattern
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      with real Unicode classes (tables generated from Unicode 14.0, see unicode_version());
//   3. each piece's UTF-8 bytes are merged by BPE (lowest merge rank first, all occurrences left to right)
//      and looked up in the vocabulary (a piece missing from it becomes <unk>);
//   4. <s> ... </s> are added, the content is truncated to max_length - 2 tokens, and rows are padded on the
//      right with <pad> (attention mask 0).
//
// Invalid UTF-8 in the input never fails: each maximal invalid subsequence is replaced by U+FFFD before
// tokenising (what Python gives for bytes.decode("utf-8", errors="replace"), so HF on such a decoded string
// gives the same ids). decode() maps ids back to bytes and decodes them the same way (HF's errors="replace").
//
// Cost: pre-tokenisation is linear; BPE of one piece is O(n log n) in its length (a heap over adjacent pairs,
// not HF's quadratic loop), so a 10 000-character "word" takes milliseconds and nothing needs to be cut. When
// truncating, encoding stops as soon as max_length - 2 tokens are produced, so very long texts cost only
// their first words. Results of pieces up to 64 bytes are cached (bounded; cleared when it fills).
// All const methods are safe to call from several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace synclap {

struct TokenizerOptions {
  // Special tokens; bos/eos/pad/unk must be in the vocabulary, mask is used when present.
  std::string bos_token = "<s>";
  std::string eos_token = "</s>";
  std::string pad_token = "<pad>";
  std::string unk_token = "<unk>";
  std::string mask_token = "<mask>";
  // false (HF's default): special-token strings inside a text are read as those tokens.
  // true: they are ordinary text ("<s>" becomes "<", "s", ">" pieces).
  bool split_special_tokens = false;
};

enum class TokenPadding {
  kMaxLength,  // every row has max_length tokens (HF padding="max_length"; what CLAP uses)
  kLongest,    // rows are as long as the longest encoded text of the batch (HF padding="longest")
};

// Token ids of several texts, row-major [batch x length], ready for a model.
struct BatchEncoding {
  int64_t batch = 0;
  int64_t length = 0;                   // columns
  std::vector<int64_t> input_ids;       // batch * length
  std::vector<int64_t> attention_mask;  // batch * length: 1 for real tokens (incl. <s> and </s>), 0 for <pad>
  std::vector<int64_t> lengths;         // real tokens per row
  int64_t at(int64_t row, int64_t col) const { return input_ids[size_t(row * length + col)]; }
};

class Tokenizer {
 public:
  // Loads vocab.json + merges.txt. Errors (missing file, bad JSON, malformed merge line, missing special
  // token) are FileErrors naming the file.
  static Tokenizer from_files(const std::string& vocab_json_path, const std::string& merges_txt_path,
                              const TokenizerOptions& options = {});
  // DIR/vocab.json + DIR/merges.txt.
  static Tokenizer from_dir(const std::string& dir, const TokenizerOptions& options = {});
  // From the files' contents (`origin` names them in error messages).
  static Tokenizer from_strings(const std::string& vocab_json, const std::string& merges_txt,
                                const TokenizerOptions& options = {}, const std::string& origin = "<memory>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of the text with no special tokens added and no truncation (HF: tokenize + convert_tokens_to_ids).
  std::vector<int32_t> tokenize(std::string_view text) const;
  // The same as token strings in the vocabulary's alphabet ("Ġhello"); unknown pieces as their own string.
  std::vector<std::string> tokenize_to_strings(std::string_view text) const;

  // <s> + tokens + </s>; with truncation the tokens are cut to max_length - 2 (max_length >= 2). No padding.
  std::vector<int32_t> encode(std::string_view text, int max_length = 77, bool truncation = true) const;

  // Several texts: truncated to max_length (when `truncation`) and padded with <pad> as `padding` says.
  // Without truncation a row longer than max_length keeps its length and widens the batch.
  BatchEncoding encode_batch(const std::vector<std::string>& texts, int max_length = 77,
                             TokenPadding padding = TokenPadding::kMaxLength, bool truncation = true) const;

  // Ids back to text. Special tokens (<s>, </s>, <pad>, <unk>, <mask>) are skipped unless asked for
  // (HF's skip_special_tokens, but defaulting to true so that decode(encode(x)) == x for valid UTF-8).
  // No "clean up tokenization spaces" is applied (HF does that by default; it is not reversible).
  // Byte sequences that are not valid UTF-8 (a token cut in the middle of a character) become U+FFFD.
  // An id outside the vocabulary is an Error.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  // Number of ids (largest id + 1); HF's len(tokenizer) for RoBERTa files.
  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  int mask_id() const;  // -1 when the vocabulary has no mask token
  // -1 when absent. Tokens are written in the vocabulary's alphabet ("Ġthe").
  int token_to_id(const std::string& token) const;
  const std::string& id_to_token(int id) const;  // Error when out of range
  bool is_special(int id) const;
  const TokenizerOptions& options() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  static Tokenizer build(const std::string& vocab_json, const std::string& merges_txt,
                         const TokenizerOptions& options, const std::string& vocab_name,
                         const std::string& merges_name);
  std::unique_ptr<Impl> impl_;
};

// --- Building blocks, also used by the BPE trainer ---

// Replaces each maximal invalid UTF-8 subsequence (stray continuation bytes, truncated sequences, overlong
// forms, surrogates, code points above U+10FFFF) by U+FFFD, as Python's errors="replace" does.
std::string sanitize_utf8(std::string_view bytes);
// True when the bytes are valid UTF-8.
bool is_valid_utf8(std::string_view bytes);

// Cuts valid UTF-8 text into the pieces of the GPT-2 pattern (views into `text`). Invalid UTF-8 must be
// sanitised first (sanitize_utf8); an invalid byte here is treated as a one-byte "other" character.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// GPT-2's byte-to-unicode alphabet: byte b is written as the UTF-8 of this code point (printable bytes as
// themselves, the others moved to U+0100 and up; the space 0x20 becomes U+0120 'Ġ').
char32_t byte_to_unicode(uint8_t byte);
// Raw bytes -> the alphabet's UTF-8 string ("a b" -> "aĠb").
std::string bytes_to_token_text(std::string_view bytes);
// Inverse; returns false when a character is outside the alphabet (or the text is not valid UTF-8).
bool token_text_to_bytes(std::string_view token, std::string* bytes);

// The Unicode version of the letter/number/space tables ("14.0.0").
const char* unicode_version();

}  // namespace synclap
