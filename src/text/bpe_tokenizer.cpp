// Byte-level BPE tokenizer (RoBERTa / GPT-2): vocab.json + merges.txt, GPT-2 pre-tokenisation, BPE by rank.
#include <algorithm>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "synclap/error.h"
#include "synclap/tokenizer.h"
#include "synclap/util.h"
#include "text/unicode_text.h"

namespace synclap {
namespace {

constexpr size_t kMaxCachedPieceBytes = 64;
constexpr size_t kMaxCacheEntries = size_t(1) << 16;

struct Merge {
  int rank;
  int32_t result;  // symbol made by the merge
};

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

bool is_merge_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

struct Tokenizer::Impl {
  TokenizerOptions opt;
  // Vocabulary.
  std::vector<std::string> id_token;  // id -> token as written in vocab.json ("" for unused ids)
  std::vector<std::string> id_bytes;  // id -> the bytes it decodes to
  std::vector<uint8_t> id_present, id_special;
  std::unordered_map<std::string, int> token_id;  // vocab.json key -> id
  int bos = -1, eos = -1, pad = -1, unk = -1, mask = -1;
  // Special tokens recognised inside text: (text, id, swallows white space on its left).
  struct Special {
    std::string text;
    int id;
    bool lstrip;
  };
  std::vector<Special> specials;
  bool special_first_byte[256] = {};
  // BPE symbols: byte strings; symbols 0..255 are the single bytes.
  std::vector<std::string> sym;
  std::unordered_map<std::string, int32_t> sym_index;
  std::vector<int32_t> sym_token;  // symbol -> vocab id, or -1 when the vocabulary lacks it
  std::unordered_map<uint64_t, Merge> merges;
  // Piece -> symbols.
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  int32_t intern(const std::string& bytes) {
    auto it = sym_index.find(bytes);
    if (it != sym_index.end()) return it->second;
    const int32_t id = int32_t(sym.size());
    sym.push_back(bytes);
    sym_index.emplace(bytes, id);
    return id;
  }

  // BPE of one piece's bytes into symbols: repeatedly merge the adjacent pair of lowest rank, all of its
  // occurrences left to right, as HF's bpe() does; done with a heap so long pieces cost O(n log n).
  void bpe(std::string_view piece, std::vector<int32_t>* out) const;
  void bpe_cached(std::string_view piece, std::vector<int32_t>* out) const;
  // Appends the symbols or special ids of `text`; stops once `limit` (>= 0) items are out.
  // Each item: symbol (>= 0) or -(id + 1) for a special token.
  void tokenize_items(std::string_view text, int64_t limit, std::vector<int32_t>* items) const;
  int item_id(int32_t item) const {
    if (item < 0) return -(item + 1);
    const int32_t t = sym_token[size_t(item)];
    return t >= 0 ? t : unk;
  }
  std::vector<int32_t> encode(std::string_view text, int max_length, bool truncation) const;
};

void Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>* out) const {
  const int n = int(piece.size());
  if (n == 0) return;
  if (n == 1) {
    out->push_back(int32_t(uint8_t(piece[0])));
    return;
  }
  std::vector<int32_t> s(static_cast<size_t>(n)), next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    s[size_t(i)] = int32_t(uint8_t(piece[size_t(i)]));
    next[size_t(i)] = (i + 1 < n) ? i + 1 : -1;
    prev[size_t(i)] = i - 1;
  }
  struct Entry {
    int rank;
    int left, right;
    int32_t ls, rs;  // the symbols the pair was made of (to detect stale entries)
    int32_t result;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> heap;
  std::vector<Entry> pending;  // pairs created while merging one rank; they join after that rank is done
  auto consider = [&](int l, int r, std::vector<Entry>* into) {
    auto it = merges.find(pair_key(s[size_t(l)], s[size_t(r)]));
    if (it == merges.end()) return;
    into->push_back(Entry{it->second.rank, l, r, s[size_t(l)], s[size_t(r)], it->second.result});
  };
  {
    std::vector<Entry> init;
    for (int i = 0; i + 1 < n; ++i) consider(i, i + 1, &init);
    heap = decltype(heap)(Later(), std::move(init));
  }
  int cur_rank = -1;
  while (true) {
    // HF merges every occurrence of the best pair before it looks at pairs those merges created.
    if (heap.empty() || heap.top().rank != cur_rank) {
      for (const Entry& e : pending) heap.push(e);
      pending.clear();
    }
    if (heap.empty()) break;
    const Entry e = heap.top();
    heap.pop();
    if (s[size_t(e.left)] != e.ls || s[size_t(e.right)] != e.rs || next[size_t(e.left)] != e.right) continue;
    cur_rank = e.rank;
    s[size_t(e.left)] = e.result;
    s[size_t(e.right)] = -1;
    const int nr = next[size_t(e.right)];
    next[size_t(e.left)] = nr;
    if (nr >= 0) prev[size_t(nr)] = e.left;
    if (prev[size_t(e.left)] >= 0) consider(prev[size_t(e.left)], e.left, &pending);
    if (nr >= 0) consider(e.left, nr, &pending);
  }
  for (int i = 0; i >= 0; i = next[size_t(i)]) out->push_back(s[size_t(i)]);
}

void Tokenizer::Impl::bpe_cached(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() > kMaxCachedPieceBytes) {
    bpe(piece, out);
    return;
  }
  const std::string key(piece);
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> syms;
  bpe(piece, &syms);
  out->insert(out->end(), syms.begin(), syms.end());
  std::lock_guard<std::mutex> lock(cache_mu);
  if (cache.size() >= kMaxCacheEntries) cache.clear();
  cache.emplace(key, std::move(syms));
}

void Tokenizer::Impl::tokenize_items(std::string_view raw, int64_t limit, std::vector<int32_t>* items) const {
  std::string fixed;
  std::string_view text = raw;
  if (!is_valid_utf8(raw)) {
    fixed = sanitize_utf8(raw);
    text = fixed;
  }
  auto full = [&] { return limit >= 0 && int64_t(items->size()) >= limit; };
  auto plain = [&](std::string_view chunk) {
    for (std::string_view piece : gpt2_pretokenize(chunk)) {
      if (full()) return;
      bpe_cached(piece, items);
    }
  };
  if (opt.split_special_tokens || specials.empty()) {
    plain(text);
    return;
  }
  // Cut the text at special-token strings (HF's added-tokens trie; none of ours is a prefix of another).
  size_t start = 0, i = 0;
  while (i < text.size() && !full()) {
    const Special* hit = nullptr;
    if (special_first_byte[uint8_t(text[i])]) {
      for (const Special& sp : specials) {
        if (text.compare(i, sp.text.size(), sp.text) == 0) {
          hit = &sp;
          break;
        }
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    std::string_view before = text.substr(start, i - start);
    if (hit->lstrip) {
      // Python's str.rstrip(): drop trailing white space (str.isspace) of the text before the token.
      size_t end = before.size();
      while (end > 0) {
        size_t b = end - 1;
        while (b > 0 && (uint8_t(before[b]) & 0xC0) == 0x80) --b;
        size_t len;
        const char32_t cp = text::decode_utf8(reinterpret_cast<const unsigned char*>(before.data()) + b,
                                              end - b, &len);
        if (cp == text::kInvalid || !text::is_python_space(cp)) break;
        end = b;
      }
      before = before.substr(0, end);
    }
    plain(before);
    if (full()) return;
    items->push_back(-(hit->id + 1));
    i += hit->text.size();
    start = i;
  }
  if (!full()) plain(text.substr(start));
}

std::vector<int32_t> Tokenizer::Impl::encode(std::string_view text, int max_length, bool truncation) const {
  if (truncation && max_length < 2)
    throw Error("tokenizer: max_length must be at least 2 (room for <s> and </s>), got " +
                std::to_string(max_length));
  const int64_t limit = truncation ? int64_t(max_length) - 2 : -1;
  std::vector<int32_t> items;
  tokenize_items(text, limit, &items);
  if (limit >= 0 && int64_t(items.size()) > limit) items.resize(size_t(limit));
  std::vector<int32_t> ids;
  ids.reserve(items.size() + 2);
  ids.push_back(bos);
  for (int32_t it : items) ids.push_back(item_id(it));
  ids.push_back(eos);
  return ids;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_files(const std::string& vocab_json_path, const std::string& merges_txt_path,
                                const TokenizerOptions& options) {
  const std::string vocab = read_file(vocab_json_path);
  const std::string merges = read_file(merges_txt_path);
  return build(vocab, merges, options, vocab_json_path, merges_txt_path);
}

Tokenizer Tokenizer::from_dir(const std::string& dir, const TokenizerOptions& options) {
  return from_files(dir + "/vocab.json", dir + "/merges.txt", options);
}

Tokenizer Tokenizer::from_strings(const std::string& vocab_json, const std::string& merges_txt,
                                  const TokenizerOptions& options, const std::string& origin) {
  return build(vocab_json, merges_txt, options, origin, origin);
}

Tokenizer Tokenizer::build(const std::string& vocab_json, const std::string& merges_txt,
                           const TokenizerOptions& options, const std::string& vocab_name,
                           const std::string& merges_name) {
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.opt = options;

  // vocab.json: {"token": id, ...}
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(vocab_json);
  } catch (const std::exception& e) {
    throw FileError(vocab_name, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FileError(vocab_name, "expected a JSON object {token: id}");
  int64_t max_id = -1;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer())
      throw FileError(vocab_name, "id of token " + nlohmann::json(it.key()).dump() + " is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > (int64_t(1) << 30))
      throw FileError(vocab_name, "id " + std::to_string(id) + " out of range");
    max_id = std::max(max_id, id);
  }
  if (max_id < 0) throw FileError(vocab_name, "empty vocabulary");
  m.id_token.assign(size_t(max_id + 1), std::string());
  m.id_bytes.assign(size_t(max_id + 1), std::string());
  m.id_present.assign(size_t(max_id + 1), 0);
  m.id_special.assign(size_t(max_id + 1), 0);
  std::unordered_map<std::string, int> bytes_id;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const int id = int(it.value().get<int64_t>());
    const std::string& tok = it.key();
    m.token_id[tok] = id;
    m.id_token[size_t(id)] = tok;  // several keys with one id: the last wins, as HF's decoder dict
    m.id_present[size_t(id)] = 1;
    std::string bytes;
    if (token_text_to_bytes(tok, &bytes)) {
      bytes_id[bytes] = id;
      m.id_bytes[size_t(id)] = bytes;
    } else {
      m.id_bytes[size_t(id)] = tok;  // not in the byte alphabet: only reachable as a special token
    }
  }
  auto need = [&](const std::string& tok, const char* what) {
    auto it = m.token_id.find(tok);
    if (it == m.token_id.end())
      throw FileError(vocab_name, std::string("has no ") + what + " token " + nlohmann::json(tok).dump());
    return it->second;
  };
  m.bos = need(options.bos_token, "bos");
  m.eos = need(options.eos_token, "eos");
  m.pad = need(options.pad_token, "pad");
  m.unk = need(options.unk_token, "unk");
  if (auto it = m.token_id.find(options.mask_token); !options.mask_token.empty() && it != m.token_id.end())
    m.mask = it->second;
  for (int id : {m.bos, m.eos, m.pad, m.unk, m.mask})
    if (id >= 0) {
      m.id_special[size_t(id)] = 1;
      m.id_bytes[size_t(id)] = m.id_token[size_t(id)];
    }
  // Recognised in text: HF's special AddedTokens (only <mask> strips white space on its left).
  auto add_special = [&](const std::string& tok, int id, bool lstrip) {
    if (id < 0 || tok.empty()) return;
    for (const auto& sp : m.specials)
      if (sp.text == tok) return;
    m.specials.push_back(Impl::Special{tok, id, lstrip});
  };
  add_special(options.bos_token, m.bos, false);
  add_special(options.eos_token, m.eos, false);
  add_special(options.unk_token, m.unk, false);
  add_special(options.pad_token, m.pad, false);
  add_special(options.mask_token, m.mask, true);
  // Longest first, so that a token that is a prefix of another never hides it.
  std::stable_sort(m.specials.begin(), m.specials.end(),
                   [](const Impl::Special& a, const Impl::Special& b) { return a.text.size() > b.text.size(); });

  for (const auto& sp : m.specials) m.special_first_byte[uint8_t(sp.text[0])] = true;

  // Symbols: the 256 bytes first.
  m.sym.reserve(256 + 2 * 50000);
  for (int b = 0; b < 256; ++b) m.intern(std::string(1, char(b)));

  // merges.txt: an optional "#version" line, then "A B" per line (rank = line order; for a repeated pair
  // the later rank wins, as in HF's dict). Blank lines are skipped. Unlike HF's slow tokenizer, a last line
  // without a final newline is kept (HF's fast tokenizer keeps it too).
  size_t pos = 0;
  int line_no = 0, rank = 0;
  while (pos < merges_txt.size()) {
    size_t end = merges_txt.find('\n', pos);
    if (end == std::string::npos) end = merges_txt.size();
    std::string_view line(merges_txt.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && !line.empty() && line[0] == '#') continue;
    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_merge_space(line[i])) ++i;
      size_t k = i;
      while (k < line.size() && !is_merge_space(line[k])) ++k;
      if (k > i) fields.push_back(line.substr(i, k - i));
      i = k;
    }
    if (fields.empty()) continue;
    if (fields.size() != 2)
      throw FileError(merges_name, "line " + std::to_string(line_no) + ": expected two tokens, got " +
                                       std::to_string(fields.size()));
    std::string a, b;
    const int r = rank++;
    if (!token_text_to_bytes(fields[0], &a) || !token_text_to_bytes(fields[1], &b)) continue;  // can never apply
    const int32_t sa = m.intern(a), sb = m.intern(b), sab = m.intern(a + b);
    m.merges[pair_key(sa, sb)] = Merge{r, sab};
  }
  m.sym_token.assign(m.sym.size(), -1);
  for (size_t s = 0; s < m.sym.size(); ++s) {
    auto it = bytes_id.find(m.sym[s]);
    if (it != bytes_id.end()) m.sym_token[s] = it->second;
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> items;
  impl_->tokenize_items(text, -1, &items);
  for (int32_t& it : items) it = impl_->item_id(it);
  return items;
}

std::vector<std::string> Tokenizer::tokenize_to_strings(std::string_view text) const {
  std::vector<int32_t> items;
  impl_->tokenize_items(text, -1, &items);
  std::vector<std::string> out;
  out.reserve(items.size());
  for (int32_t it : items) {
    if (it < 0)
      out.push_back(impl_->id_token[size_t(-(it + 1))]);
    else
      out.push_back(bytes_to_token_text(impl_->sym[size_t(it)]));
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, int max_length, bool truncation) const {
  return impl_->encode(text, max_length, truncation);
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, int max_length, TokenPadding padding,
                                      bool truncation) const {
  if (max_length < 2) throw Error("tokenizer: max_length must be at least 2, got " + std::to_string(max_length));
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const std::string& t : texts) {
    rows.push_back(impl_->encode(t, max_length, truncation));
    longest = std::max(longest, rows.back().size());
  }
  BatchEncoding b;
  b.batch = int64_t(texts.size());
  b.length = int64_t(padding == TokenPadding::kMaxLength ? std::max(longest, size_t(max_length)) : longest);
  b.input_ids.assign(size_t(b.batch * b.length), impl_->pad);
  b.attention_mask.assign(size_t(b.batch * b.length), 0);
  b.lengths.resize(size_t(b.batch));
  for (size_t r = 0; r < rows.size(); ++r) {
    b.lengths[r] = int64_t(rows[r].size());
    for (size_t c = 0; c < rows[r].size(); ++c) {
      b.input_ids[r * size_t(b.length) + c] = rows[r][c];
      b.attention_mask[r * size_t(b.length) + c] = 1;
    }
  }
  return b;
}

namespace {
template <typename Int>
std::string decode_ids(const std::vector<Int>& ids, bool skip_special, const std::vector<std::string>& id_bytes,
                       const std::vector<uint8_t>& present, const std::vector<uint8_t>& special) {
  std::string bytes;
  for (Int id : ids) {
    if (id < 0 || uint64_t(id) >= id_bytes.size() || !present[size_t(id)])
      throw Error("tokenizer: id " + std::to_string(int64_t(id)) + " is not in the vocabulary");
    if (skip_special && special[size_t(id)]) continue;
    bytes += id_bytes[size_t(id)];
  }
  return sanitize_utf8(bytes);
}
}  // namespace

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return decode_ids(ids, skip_special_tokens, impl_->id_bytes, impl_->id_present, impl_->id_special);
}
std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  return decode_ids(ids, skip_special_tokens, impl_->id_bytes, impl_->id_present, impl_->id_special);
}

int Tokenizer::vocab_size() const { return int(impl_->id_token.size()); }
int Tokenizer::bos_id() const { return impl_->bos; }
int Tokenizer::eos_id() const { return impl_->eos; }
int Tokenizer::pad_id() const { return impl_->pad; }
int Tokenizer::unk_id() const { return impl_->unk; }
int Tokenizer::mask_id() const { return impl_->mask; }
int Tokenizer::token_to_id(const std::string& token) const {
  auto it = impl_->token_id.find(token);
  return it == impl_->token_id.end() ? -1 : it->second;
}
const std::string& Tokenizer::id_to_token(int id) const {
  if (id < 0 || size_t(id) >= impl_->id_token.size() || !impl_->id_present[size_t(id)])
    throw Error("tokenizer: id " + std::to_string(id) + " is not in the vocabulary");
  return impl_->id_token[size_t(id)];
}
bool Tokenizer::is_special(int id) const {
  return id >= 0 && size_t(id) < impl_->id_special.size() && impl_->id_special[size_t(id)];
}
const TokenizerOptions& Tokenizer::options() const { return impl_->opt; }

}  // namespace synclap
