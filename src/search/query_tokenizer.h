// synclap search: the text tokenizer behind an opaque pointer. (synclap/tokenizer.h and
// synclap/frontend.h both define synclap::Padding, so no file may include both; this keeps the
// tokenizer in its own translation unit.)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace synclap::search {

class QueryTokenizer {
 public:
  // DIR/vocab.json + DIR/merges.txt; FileError naming the file if unreadable.
  explicit QueryTokenizer(const std::string& dir);
  ~QueryTokenizer();
  // <s> tokens </s>, truncated to max_length.
  std::vector<int64_t> encode(const std::string& text, int max_length) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synclap::search
