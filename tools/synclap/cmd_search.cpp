// synclap search --index INDEX (--text "..." | --like FILE | both with --blend w) [-k 10] [filters]:
// the items of an index closest to a description, to an example recording, or to a blend of both
// (w * text + (1 - w) * example). Filters (duration range, path pattern, folder tags) are applied inside
// the vector search, so k results come back whenever k items pass them.
#if defined(SYNCLAP_HAVE_FAISS)
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "command.h"
#include "search/clap_encoder.h"
#include "search/library_indexer.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct SearchArgs {
  std::string index, text, like, model, tokenizer, path_glob;
  std::vector<std::string> tags;
  double blend = 0.5, min_duration = -1, max_duration = -1;
  int k = 10, ef = 256, nprobe = 0;
};

// An example that is itself an indexed library file needs no model: its stored embedding is used.
std::vector<float> indexed_embedding(const search::LibraryIndex& li, const std::string& file) {
  std::error_code ec;
  const fs::path root = fs::canonical(li.root(), ec);
  const fs::path p = fs::canonical(file, ec);
  if (ec) return {};
  const std::string rel = p.lexically_relative(root).generic_string();
  if (rel.empty() || rel.rfind("..", 0) == 0) return {};
  auto item = li.store().find(rel);
  if (!item || item->sha256 != sha256_file(p.string())) return {};
  return li.embedding(item->id);
}

int run_search(const SearchArgs& a, const Context& ctx) {
  if (a.text.empty() && a.like.empty()) throw Error("give --text, --like or both");
  search::LibraryIndex li = search::LibraryIndex::open(a.index);
  std::unique_ptr<search::ClapEncoder> enc;
  auto encoder = [&]() -> search::ClapEncoder& {
    if (!enc) {
      search::EncoderOptions eo;
      eo.tokenizer_dir = a.tokenizer;
      eo.threads = ctx.threads;
      enc = std::make_unique<search::ClapEncoder>(a.model.empty() ? li.model() : a.model, eo);
      if (enc->dim() != li.dim()) throw Error("the model's embeddings do not have the index's dimension");
    }
    return *enc;
  };
  std::vector<float> text_q, like_q;
  if (!a.like.empty()) {
    like_q = indexed_embedding(li, a.like);
    if (like_q.empty()) like_q = encoder().audio_file(a.like);
  }
  if (!a.text.empty()) text_q = encoder().text(a.text);
  const std::vector<float> q = text_q.empty()   ? like_q
                               : like_q.empty() ? text_q
                                                : search::blend(text_q, like_q, a.blend);
  search::SearchFilter f;
  f.min_duration_s = a.min_duration;
  f.max_duration_s = a.max_duration;
  f.path_glob = a.path_glob;
  f.tags = a.tags;
  search::VectorSearchOptions vo;
  vo.ef_search = a.ef;
  vo.nprobe = a.nprobe;
  const auto results = li.search(q, a.k, f, vo);
  const std::string root = li.root();
  if (ctx.json) {
    nlohmann::json out = nlohmann::json::array();
    int rank = 0;
    for (const auto& r : results)
      out.push_back({{"rank", ++rank},
                     {"id", r.item.id},
                     {"score", r.score},
                     {"path", r.item.path},
                     {"file", (fs::path(root) / r.item.path).string()},
                     {"duration_s", r.item.duration_s},
                     {"tags", r.item.tags}});
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("%4s  %7s  %8s  %s\n", "rank", "score", "duration", "path");
    int rank = 0;
    for (const auto& r : results)
      std::printf("%4d  %7.4f  %8s  %s\n", ++rank, r.score, format_duration(r.item.duration_s).c_str(),
                  r.item.path.c_str());
    if (results.empty()) std::printf("(no items match)\n");
  }
  return 0;
}

Command reg("search", "Search an index by text, by an example recording, or both", [](CLI::App& sub, Context& ctx) -> Runner {
  auto a = std::make_shared<SearchArgs>();
  sub.add_option("--index", a->index, "Index folder (from synclap index)")->required();
  sub.add_option("--text", a->text, "Describe the music");
  sub.add_option("--like", a->like, "An example recording");
  sub.add_option("--blend", a->blend, "With both: weight of the text (0..1)")->check(CLI::Range(0.0, 1.0));
  sub.add_option("-k,--top", a->k, "Number of results")->check(CLI::Range(1, 10000));
  sub.add_option("--min-duration", a->min_duration, "Only items at least this long (seconds)");
  sub.add_option("--max-duration", a->max_duration, "Only items at most this long (seconds)");
  sub.add_option("--path", a->path_glob, "Only items whose library path matches this pattern (e.g. 'jazz/*')");
  sub.add_option("--tag", a->tags, "Only items with this tag (folder name); repeatable, all must match");
  sub.add_option("--model", a->model, "Model for the queries (default: the one the index was built with)");
  sub.add_option("--tokenizer", a->tokenizer, "Folder with vocab.json + merges.txt");
  sub.add_option("--ef", a->ef, "HNSW search breadth (approximate indexes)")->check(CLI::PositiveNumber);
  sub.add_option("--nprobe", a->nprobe, "IVF lists visited per query (0: automatic, max(64, nlist/64))")
      ->check(CLI::NonNegativeNumber);
  return [a, &ctx]() { return run_search(*a, ctx); };
});

}  // namespace
}  // namespace synclap::cli
#endif  // SYNCLAP_HAVE_FAISS
