// Byte-level BPE training with incremental pair counts.
#include <algorithm>
#include <filesystem>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "synclap/bpe_trainer.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {
namespace {

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
inline int32_t key_first(uint64_t k) { return int32_t(k >> 32); }
inline int32_t key_second(uint64_t k) { return int32_t(k & 0xFFFFFFFFu); }

struct Piece {
  std::vector<int32_t> syms;
  int64_t count;
};

struct Candidate {
  int64_t count;
  uint64_t key;
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {}

void BpeTrainer::add_text(std::string_view text) {
  std::string fixed;
  if (!is_valid_utf8(text)) {
    fixed = sanitize_utf8(text);
    text = fixed;
  }
  for (std::string_view piece : gpt2_pretokenize(text)) ++counts_[std::string(piece)];
}

void BpeTrainer::add_texts(const std::vector<std::string>& texts) {
  for (const std::string& t : texts) add_text(t);
}

BpeVocabulary BpeTrainer::train() const {
  const BpeTrainerOptions& o = options_;
  const int n_fixed = int(o.special_tokens.size()) + 256 + (o.mask_token.empty() ? 0 : 1);
  if (o.vocab_size < n_fixed)
    throw Error("bpe trainer: vocab_size " + std::to_string(o.vocab_size) + " is smaller than the " +
                std::to_string(n_fixed) + " special and byte tokens");
  std::unordered_set<std::string> specials(o.special_tokens.begin(), o.special_tokens.end());
  if (!o.mask_token.empty()) specials.insert(o.mask_token);
  if (specials.size() != o.special_tokens.size() + (o.mask_token.empty() ? 0 : 1))
    throw Error("bpe trainer: special tokens repeat");

  BpeVocabulary v;
  for (const std::string& s : o.special_tokens) v.tokens.push_back(s);
  // Byte tokens in code-point order of the alphabet (as GPT-2's vocabulary lists them).
  std::vector<int> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = b;
  std::sort(bytes.begin(), bytes.end(),
            [](int a, int b) { return byte_to_unicode(uint8_t(a)) < byte_to_unicode(uint8_t(b)); });
  for (int b : bytes) v.tokens.push_back(bytes_to_token_text(std::string(1, char(b))));

  // Symbols: byte strings; 0..255 are the bytes.
  std::vector<std::string> sym;
  std::unordered_map<std::string, int32_t> sym_index;
  for (int b = 0; b < 256; ++b) {
    sym.emplace_back(1, char(b));
    sym_index.emplace(sym.back(), b);
  }
  std::unordered_set<std::string> taken;  // token texts already in the vocabulary
  for (const std::string& t : v.tokens) taken.insert(t);

  // Pieces in a fixed order (sorted bytes), so nothing depends on hash order.
  std::vector<const std::pair<const std::string, int64_t>*> sorted;
  sorted.reserve(counts_.size());
  for (const auto& kv : counts_) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  std::vector<Piece> pieces;
  pieces.reserve(sorted.size());
  for (const auto* kv : sorted) {
    if (kv->first.size() < 2) continue;  // a single byte has no pair
    Piece p;
    p.count = kv->second;
    p.syms.reserve(kv->first.size());
    for (unsigned char c : kv->first) p.syms.push_back(int32_t(c));
    pieces.push_back(std::move(p));
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_pieces;  // may hold stale / repeated entries
  pair_count.reserve(1 << 16);
  pair_pieces.reserve(1 << 16);
  for (size_t w = 0; w < pieces.size(); ++w) {
    const auto& s = pieces[w].syms;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      pair_count[k] += pieces[w].count;
      auto& list = pair_pieces[k];
      if (list.empty() || list.back() != int32_t(w)) list.push_back(int32_t(w));
    }
  }

  // Max-heap by count; ties: smallest (first, second) byte strings first.
  auto worse = [&sym](const Candidate& a, const Candidate& b) {
    if (a.count != b.count) return a.count < b.count;
    const std::string& a1 = sym[size_t(key_first(a.key))];
    const std::string& b1 = sym[size_t(key_first(b.key))];
    if (a1 != b1) return a1 > b1;
    return sym[size_t(key_second(a.key))] > sym[size_t(key_second(b.key))];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  for (const auto& kv : pair_count) heap.push(Candidate{kv.second, kv.first});

  std::unordered_set<uint64_t> forbidden;
  std::vector<int32_t> stamp(pieces.size(), -1);
  std::vector<int32_t> rebuilt;
  std::unordered_set<uint64_t> grown;
  const size_t target = size_t(o.vocab_size) - (o.mask_token.empty() ? 0 : 1);
  int32_t merge_no = 0;
  while (v.tokens.size() < target && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    auto cit = pair_count.find(top.key);
    const int64_t actual = (cit == pair_count.end()) ? 0 : cit->second;
    if (actual != top.count) {  // stale: counts only fall, except for pairs re-pushed below
      if (actual > 0) heap.push(Candidate{actual, top.key});
      continue;
    }
    if (actual < o.min_frequency || actual <= 0) break;
    if (forbidden.count(top.key)) continue;
    const int32_t a = key_first(top.key), b = key_second(top.key);
    const std::string merged = sym[size_t(a)] + sym[size_t(b)];
    const std::string merged_text = bytes_to_token_text(merged);
    if (specials.count(merged_text)) {  // would spell a special token
      forbidden.insert(top.key);
      continue;
    }
    int32_t c;
    if (auto it = sym_index.find(merged); it != sym_index.end()) {
      c = it->second;
    } else {
      c = int32_t(sym.size());
      sym.push_back(merged);
      sym_index.emplace(merged, c);
    }
    v.merges.emplace_back(bytes_to_token_text(sym[size_t(a)]), bytes_to_token_text(sym[size_t(b)]));
    if (taken.insert(merged_text).second) v.tokens.push_back(merged_text);

    // Revisit the pieces holding the pair: take out their pair counts, merge, put the new counts back.
    std::vector<int32_t> where = std::move(pair_pieces[top.key]);
    pair_pieces.erase(top.key);
    grown.clear();
    for (int32_t w : where) {
      if (stamp[size_t(w)] == merge_no) continue;
      stamp[size_t(w)] = merge_no;
      Piece& p = pieces[size_t(w)];
      auto& s = p.syms;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = (s[i] == a && s[i + 1] == b);
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        auto it = pair_count.find(pair_key(s[i], s[i + 1]));
        it->second -= p.count;
      }
      rebuilt.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          rebuilt.push_back(c);
          i += 2;
        } else {
          rebuilt.push_back(s[i]);
          ++i;
        }
      }
      s.assign(rebuilt.begin(), rebuilt.end());
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        pair_count[k] += p.count;
        if (s[i] == c || s[i + 1] == c) {
          grown.insert(k);
          auto& list = pair_pieces[k];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    pair_count.erase(top.key);
    for (uint64_t k : grown) {
      const int64_t n = pair_count[k];
      if (n > 0) heap.push(Candidate{n, k});
    }
    ++merge_no;
  }
  if (!o.mask_token.empty()) v.tokens.push_back(o.mask_token);
  return v;
}

std::string BpeVocabulary::vocab_json() const {
  std::string out = "{";
  for (size_t i = 0; i < tokens.size(); ++i) {
    out += (i == 0) ? "\n  " : ",\n  ";
    out += nlohmann::json(tokens[i]).dump();
    out += ": " + std::to_string(i);
  }
  out += "\n}\n";
  return out;
}

std::string BpeVocabulary::merges_txt() const {
  std::string out = "#version: 0.2\n";
  for (const auto& m : merges) out += m.first + " " + m.second + "\n";
  return out;
}

void BpeVocabulary::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw FileError(dir, "cannot create directory: " + ec.message());
  write_file_atomic(dir + "/vocab.json", vocab_json());
  write_file_atomic(dir + "/merges.txt", merges_txt());
}

Tokenizer BpeVocabulary::tokenizer(const TokenizerOptions& options) const {
  return Tokenizer::from_strings(vocab_json(), merges_txt(), options, "<trained vocabulary>");
}

}  // namespace synclap
