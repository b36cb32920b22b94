// Tokenising prompts and captions for the evaluation commands (see eval_support.h).
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "synclap/tokenizer.h"

namespace synclap::cli {

std::vector<std::vector<int64_t>> tokenize_texts(const std::string& dir, const std::vector<std::string>& texts,
                                                 int max_length) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  Tokenizer* tok = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[dir];
    if (!slot) slot = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir));
    tok = slot.get();
  }
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(texts.size());
  for (const auto& t : texts) {
    const auto e = tok->encode(t, max_length, true);
    ids.emplace_back(e.begin(), e.end());
  }
  return ids;
}

}  // namespace synclap::cli
