// synclap dataset import|stats|shard: real data into synclap's dataset layout (a folder of audio with a
// CSV/JSONL of captions, or webdataset tars in the LAION-Audio-630K layout), the coverage of every
// attribute of a dataset, and webdataset tar shards of a dataset.
#ifdef SYNCLAP_HAVE_FLUIDSYNTH
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "synclap/synth.h"

namespace synclap::cli {
namespace {

struct DatasetArgs {
  ImportOptions imp;
  std::string stats_dir, vocab, shard_dir, shard_out;
  int per_shard = 1000;
  bool keep_gendered = false;
};

void print_stats_table(const nlohmann::json& s) {
  std::printf("%lld clips, %.2f hours, %lld captions\n", static_cast<long long>(s["clips"].get<int64_t>()),
              s["hours"].get<double>(), static_cast<long long>(s["captions"].get<int64_t>()));
  std::printf("splits:");
  for (auto it = s["splits"].begin(); it != s["splits"].end(); ++it)
    std::printf(" %s=%lld", it.key().c_str(), static_cast<long long>(it.value().get<int64_t>()));
  std::printf("\n%-16s %7s %8s %8s %8s  %s\n", "attribute", "values", "min", "max", "missing", "least used");
  for (auto it = s["labels"].begin(); it != s["labels"].end(); ++it) {
    int64_t mn = -1, mx = 0;
    std::string least;
    for (auto v = it.value().begin(); v != it.value().end(); ++v) {
      const int64_t n = v.value().get<int64_t>();
      if (mn < 0 || n < mn) mn = n, least = v.key();
      mx = std::max(mx, n);
    }
    const size_t missing = s.contains("missing") && s["missing"].contains(it.key()) ? s["missing"][it.key()].size() : 0;
    std::printf("%-16s %7zu %8lld %8lld %8zu  %s\n", it.key().c_str(), it.value().size(), static_cast<long long>(mn),
                static_cast<long long>(mx), missing, least.c_str());
  }
  if (s.contains("missing"))
    for (auto it = s["missing"].begin(); it != s["missing"].end(); ++it)
      if (!it.value().empty()) std::printf("never seen %s: %s\n", it.key().c_str(), it.value().dump().c_str());
}

Command reg("dataset", "Import real data (folders + CSV/JSONL, webdataset tars), coverage stats, tar shards",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<DatasetArgs>();
              sub.require_subcommand(1);
              auto* imp = sub.add_subcommand("import", "Build a dataset directory from real audio and captions");
              imp->add_option("--out", a->imp.out_dir, "Dataset directory (created; an existing one is continued)")->required();
              imp->add_option("--audio-dir", a->imp.audio_dir, "Folder the captions file's paths are relative to");
              imp->add_option("--captions", a->imp.captions_file,
                              "CSV (file,caption[,caption2,...][,split][,label columns]) or JSONL ({\"file\", \"caption\"|\"captions\", ...})");
              imp->add_option("--tar", a->imp.tars, "Webdataset tars (NNNNNN.flac + NNNNNN.json with \"text\")");
              imp->add_option("--seed", a->imp.seed, "Seed of the train/val/test split where records name none");
              imp->add_flag("--keep-gendered", a->keep_gendered, "Do not de-gender captions");
              auto* st = sub.add_subcommand("stats", "Coverage of every attribute of a dataset directory");
              st->add_option("dir", a->stats_dir, "Dataset directory")->required();
              st->add_option("--vocab", a->vocab, "Vocabulary JSON: also list values never seen");
              auto* sh = sub.add_subcommand("shard", "Write a dataset as webdataset tar shards");
              sh->add_option("dir", a->shard_dir, "Dataset directory")->required();
              sh->add_option("--out", a->shard_out, "Folder for shard-NNNNNN.tar")->required();
              sh->add_option("--per-shard", a->per_shard, "Clips per shard (default 1000)");
              return [a, imp, st, sh, &ctx]() -> int {
                if (imp->parsed()) {
                  a->imp.threads = ctx.threads;
                  a->imp.progress = !ctx.quiet && !ctx.json;
                  a->imp.debias = !a->keep_gendered;
                  const ImportResult r = import_dataset(a->imp);
                  for (const auto& e : r.errors) std::fprintf(stderr, "synclap: %s\n", e.c_str());
                  if (ctx.json)
                    std::cout << nlohmann::json({{"imported", r.imported}, {"kept", r.kept}, {"failed", r.failed}, {"errors", r.errors}}).dump(2)
                              << std::endl;
                  else if (!ctx.quiet)
                    std::fprintf(stderr, "import: %lld imported, %lld kept, %lld failed -> %s\n",
                                 static_cast<long long>(r.imported), static_cast<long long>(r.kept),
                                 static_cast<long long>(r.failed), a->imp.out_dir.c_str());
                  return r.failed ? 1 : 0;
                }
                if (st->parsed()) {
                  std::unique_ptr<Vocabulary> v;
                  if (!a->vocab.empty()) v = std::make_unique<Vocabulary>(Vocabulary::load(a->vocab));
                  const std::string s = dataset_stats_json(a->stats_dir, v.get());
                  if (ctx.json) std::cout << s << std::endl;
                  else print_stats_table(nlohmann::json::parse(s));
                  return 0;
                }
                if (sh->parsed()) {
                  const auto shards = write_webdataset(a->shard_dir, a->shard_out, a->per_shard);
                  if (ctx.json) std::cout << nlohmann::json(shards).dump(2) << std::endl;
                  else for (const auto& s : shards) std::printf("%s\n", s.c_str());
                  return 0;
                }
                return 1;
              };
            });

}  // namespace
}  // namespace synclap::cli
#endif  // SYNCLAP_HAVE_FLUIDSYNTH
