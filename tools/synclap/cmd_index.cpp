// synclap index --model M --library DIR --out INDEX [--shard i/N]: embeds every audio file of a folder
// into a search index (SQLite metadata + faiss vectors, see src/search/library_indexer.h). Re-runs only
// embed new or changed files; a killed run resumes; undecodable files are reported and skipped.
// synclap merge-index --out INDEX SHARD...: merges the indexes of `--shard i/N` runs into one.
#if defined(SYNCLAP_HAVE_FAISS)
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "search/clap_encoder.h"
#include "search/library_indexer.h"
#include "synclap/error.h"

namespace synclap::cli {
namespace {

struct IndexArgs {
  std::string model, library, out, shard = "0/1", kind = "auto", tokenizer;
  int batch = 8, windows = 4;
};

void parse_shard(const std::string& s, int* i, int* n) {
  const size_t slash = s.find('/');
  try {
    if (slash == std::string::npos) throw 0;
    *i = std::stoi(s.substr(0, slash));
    *n = std::stoi(s.substr(slash + 1));
  } catch (...) {
    throw Error("--shard must look like i/N (e.g. 0/4), not '" + s + "'");
  }
  if (*n < 1 || *i < 0 || *i >= *n) throw Error("--shard i/N needs 0 <= i < N, got '" + s + "'");
}

int run_index(const IndexArgs& a, const Context& ctx) {
  search::IndexOptions o;
  o.library = a.library;
  o.out = a.out;
  parse_shard(a.shard, &o.shard_index, &o.shard_count);
  o.batch = a.batch;
  o.index_kind = a.kind;
  o.progress = !ctx.quiet;
  search::EncoderOptions eo;
  eo.tokenizer_dir = a.tokenizer;
  eo.windows = a.windows;
  eo.threads = ctx.threads;
  search::ClapEncoder enc(a.model, eo);
  const search::IndexReport r = search::index_library(o, enc.embedder());
  for (const auto& e : r.errors) std::cerr << "synclap: " << e << " (skipped)\n";
  if (ctx.json) {
    std::cout << nlohmann::json{{"index", a.out},          {"files", r.files},         {"embedded", r.embedded},
                                {"reused", r.reused},      {"unchanged", r.unchanged}, {"failed", r.failed},
                                {"skipped_bad", r.skipped_bad}, {"removed", r.removed}, {"items", r.items},
                                {"structure", r.structure}, {"seconds", r.seconds},   {"errors", r.errors}}
                     .dump(2)
              << std::endl;
  } else {
    std::printf("%s: %lld items (%s); this run: %lld embedded, %lld reused, %lld unchanged, %lld failed, "
                "%lld bad skipped, %lld removed, %.1f s\n",
                a.out.c_str(), (long long)r.items, r.structure.c_str(), (long long)r.embedded, (long long)r.reused,
                (long long)r.unchanged, (long long)r.failed, (long long)r.skipped_bad, (long long)r.removed, r.seconds);
  }
  return 0;
}

Command reg("index", "Index a music folder for search (text or example queries)", [](CLI::App& sub, Context& ctx) -> Runner {
  auto a = std::make_shared<IndexArgs>();
  sub.add_option("--model", a->model, "CLAP checkpoint (HF folder, synclap checkpoint or .safetensors)")->required();
  sub.add_option("--library", a->library, "Folder of audio files (searched recursively)")->required();
  sub.add_option("--out", a->out, "Index folder (created; re-runs update it)")->required();
  sub.add_option("--shard", a->shard, "Index only shard i of N (e.g. 0/4); merge with merge-index");
  sub.add_option("--batch", a->batch, "Files per embedding call and per committed transaction")->check(CLI::PositiveNumber);
  sub.add_option("--index-kind", a->kind, "auto (exact below 50k items, HNSW above), Flat, or a faiss factory string");
  sub.add_option("--windows", a->windows, "10-s windows averaged per long track (non-fused models)")->check(CLI::PositiveNumber);
  sub.add_option("--tokenizer", a->tokenizer, "Folder with vocab.json + merges.txt (default: beside the model)");
  return [a, &ctx]() { return run_index(*a, ctx); };
});

struct MergeArgs {
  std::string out;
  std::vector<std::string> shards;
};

Command reg_merge("merge-index", "Merge shard indexes (from index --shard i/N) into one",
                  [](CLI::App& sub, Context& ctx) -> Runner {
                    auto a = std::make_shared<MergeArgs>();
                    sub.add_option("--out", a->out, "New index folder")->required();
                    sub.add_option("shards", a->shards, "Shard index folders")->required();
                    return [a, &ctx]() {
                      const int64_t n = search::merge_indexes(a->shards, a->out, !ctx.quiet);
                      if (ctx.json)
                        std::cout << nlohmann::json{{"index", a->out}, {"items", n}}.dump(2) << std::endl;
                      else
                        std::printf("%s: %lld items from %zu shards\n", a->out.c_str(), (long long)n, a->shards.size());
                      return 0;
                    };
                  });

}  // namespace
}  // namespace synclap::cli
#endif  // SYNCLAP_HAVE_FAISS
