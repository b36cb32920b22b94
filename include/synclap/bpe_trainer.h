// synclap: learns a byte-level BPE vocabulary (RoBERTa / GPT-2 format) from a caption corpus.
//
// Texts are cut with the same GPT-2 pattern as the tokenizer (synclap/tokenizer.h) and counted; each distinct
// piece starts as its UTF-8 bytes. Training repeatedly merges the most frequent adjacent pair of symbols
// (counted over all pieces, weighted by how often each piece occurs), all its occurrences left to right, until
// the vocabulary has `vocab_size` tokens or no pair occurs `min_frequency` times.
// Ties are broken deterministically: the pair whose (first, second) byte strings are lexicographically
// smallest wins. The result depends only on the multiset of texts, not on the order they were added in.
// A merge that would spell a special token ("<s>", ...) is never made, so vocab.json stays unambiguous.
//
// The vocabulary is laid out like RoBERTa's: special tokens first (<s>=0, <pad>=1, </s>=2, <unk>=3), then the
// 256 byte tokens (in code-point order of GPT-2's byte alphabet), then one token per new merge result, and
// <mask> last. The written vocab.json + merges.txt load in synclap::Tokenizer and in HF's RobertaTokenizer.
//
// Cost: pair counts are updated incrementally (only the pieces containing the merged pair are revisited), so
// 100k captions -> 8k tokens takes seconds.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "synclap/tokenizer.h"

namespace synclap {

struct BpeTrainerOptions {
  int vocab_size = 8192;      // all ids: specials + 256 bytes + merges + mask
  int64_t min_frequency = 2;  // a pair must occur at least this many times to be merged
  std::vector<std::string> special_tokens = {"<s>", "<pad>", "</s>", "<unk>"};  // ids 0, 1, 2, ...
  std::string mask_token = "<mask>";  // given the last id; empty for none
};

// A trained vocabulary: tokens and merges written in GPT-2's byte alphabet ("Ġdog").
struct BpeVocabulary {
  std::vector<std::string> tokens;                          // id -> token
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  // The file contents: vocab.json ({"token": id} in id order) and merges.txt ("#version: 0.2" header).
  std::string vocab_json() const;
  std::string merges_txt() const;
  // Writes DIR/vocab.json and DIR/merges.txt (atomically; DIR is created if missing).
  void save(const std::string& dir) const;
  // A tokenizer for this vocabulary (its special tokens must include <s>, </s>, <pad>, <unk>).
  Tokenizer tokenizer(const TokenizerOptions& options = {}) const;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options = {});
  // Counts the pieces of one text (invalid UTF-8 is replaced by U+FFFD first, as the tokenizer does).
  void add_text(std::string_view text);
  void add_texts(const std::vector<std::string>& texts);
  // Distinct pieces counted so far.
  size_t distinct_pieces() const { return counts_.size(); }
  // Learns the vocabulary. Error when vocab_size leaves no room for the specials and the 256 bytes.
  BpeVocabulary train() const;

 private:
  BpeTrainerOptions options_;
  std::unordered_map<std::string, int64_t> counts_;
};

}  // namespace synclap
