// synclap search: QueryTokenizer (see query_tokenizer.h).
#include "search/query_tokenizer.h"

#include "synclap/tokenizer.h"

namespace synclap::search {

struct QueryTokenizer::Impl {
  explicit Impl(const std::string& dir) : tok(Tokenizer::from_dir(dir)) {}
  Tokenizer tok;
};

QueryTokenizer::QueryTokenizer(const std::string& dir) : impl_(std::make_unique<Impl>(dir)) {}
QueryTokenizer::~QueryTokenizer() = default;

std::vector<int64_t> QueryTokenizer::encode(const std::string& text, int max_length) const {
  const std::vector<int32_t> ids = impl_->tok.encode(text, max_length);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

}  // namespace synclap::search
