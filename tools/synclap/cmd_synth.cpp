// synclap synth --out DIR --count N [--vocab FILE] [--seed S] [--generator builtin|cmd:"..."] [--seconds T]:
// synthetic text–music pairs with every attribute known (see synclap/synth.h for the directory layout).
// Deterministic for a seed; a re-run continues an interrupted one.
#ifdef SYNCLAP_HAVE_FLUIDSYNTH
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "synclap/synth.h"

namespace synclap::cli {
namespace {

Command reg("synth", "Make synthetic text-music pairs (built-in composer or an external generator)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto o = std::make_shared<SynthRunOptions>();
              sub.add_option("--out", o->out_dir, "Dataset directory (created; an existing one is continued)")->required();
              sub.add_option("--count", o->count, "Number of clips")->required();
              sub.add_option("--vocab", o->vocab_path, "Vocabulary JSON (default: configs/vocab/default.json)");
              sub.add_option("--seed", o->seed, "Seed: the same seed gives the same dataset");
              sub.add_option("--generator", o->generator,
                             "builtin, or cmd:\"PROGRAM --prompt {caption} --seconds {seconds} --out {wav}\" "
                             "({caption} {seconds} {wav} {seed} are substituted shell-quoted)");
              sub.add_option("--seconds", o->seconds, "Clip length in seconds (default 10)");
              sub.add_option("--captions", o->captions_per_clip, "Captions per clip (default 5)");
              sub.add_option("--val-fraction", o->val_fraction, "Share of clips in the val split (default 0.05)");
              sub.add_option("--test-fraction", o->test_fraction, "Share of clips in the test split (default 0.05)");
              sub.add_option("--genre-instruments", o->genre_instruments,
                             "Share of clips whose instruments are drawn from their genre's typical ones "
                             "(the vocabulary's typical_instruments; default 0: balanced against the genre)")
                  ->check(CLI::Range(0.0, 1.0));
              sub.add_option("--genre-meters", o->genre_meters,
                             "Share of clips whose time signature is one of their genre's typical ones "
                             "(the vocabulary's genre time_signatures; default 0: balanced against the genre)")
                  ->check(CLI::Range(0.0, 1.0));
              sub.add_option("--genre-ensembles", o->genre_ensembles,
                             "Share of clips whose ensemble size is one of their genre's (the vocabulary's genre "
                             "ensembles: techno, house, drum and bass... from a duo up; default 0: balanced against the genre)")
                  ->check(CLI::Range(0.0, 1.0));
              sub.add_option("--timeout", o->timeout_s, "Seconds an external command may run (default 600)");
              sub.add_option("--retries", o->retries, "Retries of a failing external command (default 2)");
              sub.add_option("--paraphrase", o->paraphrase_command,
                             "Command run per clip with {caption}; each stdout line is an extra caption");
              return [o, &ctx]() {
                o->threads = ctx.threads;
                o->progress = !ctx.quiet && !ctx.json;
                const SynthRunResult r = run_synth(*o);
                const double rt = r.seconds > 0 ? r.audio_seconds / r.seconds : 0;
                if (ctx.json) {
                  nlohmann::json j = {{"out", o->out_dir}, {"made", r.made},        {"kept", r.kept},
                                      {"failed", r.failed}, {"seconds", r.seconds}, {"audio_seconds", r.audio_seconds},
                                      {"realtime_factor", rt}};
                  std::cout << j.dump(2) << std::endl;
                } else if (!ctx.quiet) {
                  std::fprintf(stderr, "synth: %lld made, %lld kept, %lld failed in %.1f s (%.1fx real time) -> %s\n",
                               static_cast<long long>(r.made), static_cast<long long>(r.kept),
                               static_cast<long long>(r.failed), r.seconds, rt, o->out_dir.c_str());
                }
                return r.failed > 0 ? 2 : 0;
              };
            });

}  // namespace
}  // namespace synclap::cli
#endif  // SYNCLAP_HAVE_FLUIDSYNTH
