// synclap train --data DIR --config CFG --out RUN [--init CKPT] [--resume] [--nproc N]: contrastive training.
// CFG is a training config (configs/train/*.json, see synclap/train.h and docs/training.md) or a model config
// (configs/*.json), which then trains with the default settings. Command-line options override the config.
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "command.h"
#include "synclap/error.h"
#include "synclap/train.h"
#include "synclap/util.h"
#include "train/distributed.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct TrainArgs {
  std::string data, config, out, init, tokenizer, dist_init;
  bool resume = false;
  double lr = -1, lr_audio = -1, lr_text = -1, lr_heads = -1;
  int64_t epochs = -1, max_steps = -1, batch_size = -1, stop_after = -1;
  int64_t seed = -1;
  int nproc = 1, rank = 0, world_size = 1;
};

std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (std::getline(in, arg, '\0')) out.push_back(arg);
  return out;
}

TrainConfig load_config(const std::string& path) {
  const std::string text = read_file(path, size_t(1) << 24);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw FileError(path, std::string("not valid JSON: ") + e.what());
  }
  if (j.is_object() && (j.contains("audio_config") || j.contains("text_config"))) {
    TrainConfig c;  // a model config: train it with the defaults
    c.model = path;
    return c;
  }
  return TrainConfig::from_file(path);
}

static Command reg(
    "train", "Train a CLAP model contrastively (from scratch or fine-tuning; LoRA; resumable; data parallel)",
    [](CLI::App& sub, Context& ctx) {
      auto a = std::make_shared<TrainArgs>();
      sub.add_option("--data", a->data, "Dataset directory (manifest.jsonl) or webdataset shards")->required();
      sub.add_option("--config", a->config, "Training config JSON, or a model config (configs/*.json)")->required();
      sub.add_option("--out", a->out, "Run directory (checkpoints, metrics.jsonl, report.html)")->required();
      sub.add_option("--init", a->init, "Start from this checkpoint (HF ClapModel dir, synclap dir, .safetensors)");
      sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt");
      sub.add_flag("--resume", a->resume, "Continue the run in --out from its latest checkpoint");
      sub.add_option("--lr", a->lr, "Learning rate of every group (overrides the config)");
      sub.add_option("--lr-audio", a->lr_audio, "Learning rate of the audio tower");
      sub.add_option("--lr-text", a->lr_text, "Learning rate of the text tower");
      sub.add_option("--lr-heads", a->lr_heads, "Learning rate of the projection heads and temperatures");
      sub.add_option("--epochs", a->epochs, "Epochs");
      sub.add_option("--max-steps", a->max_steps, "Stop after this many steps");
      sub.add_option("--batch-size", a->batch_size, "Global batch size");
      sub.add_option("--seed", a->seed, "Seed");
      sub.add_option("--nproc", a->nproc, "Run N local processes, data parallel (c10d Gloo)")->check(CLI::PositiveNumber);
      sub.add_option("--rank", a->rank, "This process's rank (multi-machine runs; see docs/training.md)");
      sub.add_option("--world-size", a->world_size, "Number of processes in all");
      sub.add_option("--dist-init", a->dist_init, "Rendezvous: file:///shared/path or tcp://host:port");
      sub.add_option("--stop-after", a->stop_after, "Stop cleanly (with a checkpoint) after this many steps (testing)");
      return [a, &ctx]() -> int {
        if (a->nproc > 1) {
          if (!distributed_available())
            throw Error("--nproc needs a build with c10d Gloo (Debian's libgloo-dev); this one has none");
          // Re-run this command line as nproc workers (without --nproc), with a file rendezvous in the run dir.
          std::vector<std::string> argv = own_argv();
          std::vector<std::string> child;
          for (size_t i = 0; i < argv.size(); ++i) {
            if (argv[i] == "--nproc") {
              ++i;
              continue;
            }
            if (argv[i].rfind("--nproc=", 0) == 0) continue;
            child.push_back(argv[i]);
          }
          if (!child.empty()) child[0] = "/proc/self/exe";  // the launcher runs argv[0]: this very binary
          fs::create_directories(a->out);
          const std::string store = (fs::absolute(a->out) / ".dist-store").string();
          std::error_code ec;
          fs::remove(store, ec);
          const int rc = launch_local_workers(child, a->nproc, store);
          fs::remove(store, ec);
          return rc;
        }
        TrainConfig cfg = load_config(a->config);
        if (!a->init.empty()) cfg.init = a->init;
        if (!a->tokenizer.empty()) cfg.tokenizer = a->tokenizer;
        if (a->lr > 0) cfg.lr = a->lr;
        if (a->lr_audio >= 0) cfg.lr_audio = a->lr_audio;
        if (a->lr_text >= 0) cfg.lr_text = a->lr_text;
        if (a->lr_heads >= 0) cfg.lr_heads = a->lr_heads;
        if (a->epochs >= 0) cfg.epochs = a->epochs;
        if (a->max_steps >= 0) cfg.max_steps = a->max_steps;
        if (a->batch_size > 0) cfg.batch_size = int(a->batch_size);
        if (a->seed >= 0) cfg.seed = uint64_t(a->seed);
        if (ctx.threads > 0) cfg.threads = ctx.threads;
        // Paths in a config are relative to the directory the command runs in, except a model config next
        // to the training config.
        if (!cfg.model.empty() && !fs::exists(cfg.model)) {
          const fs::path beside = fs::path(a->config).parent_path() / cfg.model;
          if (fs::exists(beside)) cfg.model = beside.string();
        }
        TrainOptions opt;
        opt.data = a->data;
        opt.out = a->out;
        opt.resume = a->resume;
        opt.progress = !ctx.quiet;
        opt.rank = a->rank;
        opt.world_size = a->world_size;
        opt.dist_init = a->dist_init;
        opt.stop_after_steps = a->stop_after;
        TrainSummary s = run_training(cfg, opt);
        if (a->rank != 0) return 0;
        if (ctx.json) {
          nlohmann::json j{{"steps", s.steps},     {"epochs", s.epochs_done}, {"skipped_steps", s.skipped_steps},
                           {"samples", s.samples}, {"seconds", s.seconds},    {"samples_per_second", s.samples_per_second},
                           {"interrupted", s.interrupted}, {"checkpoint", s.final_checkpoint},
                           {"final_loss", std::isfinite(s.final_loss) ? nlohmann::json(s.final_loss) : nlohmann::json()},
                           {"bad_items", s.bad_items}, {"validation", s.last_val}};
          std::cout << j.dump(2) << std::endl;
        } else {
          std::cout << (s.interrupted ? "stopped" : "finished") << " after " << s.steps << " steps (" << s.epochs_done
                    << " epochs, " << s.skipped_steps << " skipped) in " << format_duration(s.seconds) << ", "
                    << s.samples_per_second << " samples/s; final loss " << s.final_loss << "\n";
          for (const auto& [k, v] : s.last_val) std::cout << "  val " << k << " = " << v << "\n";
          std::cout << "checkpoint: " << s.final_checkpoint << "\nreport: " << (fs::path(a->out) / "report.html").string()
                    << "\n";
          if (!s.bad_items.empty()) std::cout << s.bad_items.size() << " bad items skipped (see stderr)\n";
        }
        return 0;
      };
    });

}  // namespace
}  // namespace synclap::cli
