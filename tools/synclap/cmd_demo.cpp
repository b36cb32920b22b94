// synclap demo: the main job on its built-in defaults, start to finish with no input:
//   1. synthesise a small text-music dataset (built-in composer + FluidSynth; as the quality bar's set, 80 % of
//      the clips played by their genre's typical instruments, 80 % in one of its ensemble sizes),
//   2. train a CPU CLAP model on it from scratch (cnn-cpu-temporal: CNN audio tower with temporal layers + small
//      text transformer) with the quality-bar recipe (caption curriculum, label prompts), resized,
//   3. evaluate it on the held-out test split (retrieval, zero-shot genre and lead instrument),
//   4. index the test clips and answer a few text queries,
//   5. print a results table and write OUT/report.html (with the training curves and confusion matrices).
// Each step runs this same binary's subcommand (synth, train, eval, index, search) as a child process, so the
// demo exercises exactly what a user runs, with its progress output. Re-running continues where it stopped:
// the dataset is resumable, training resumes from its last checkpoint, finished steps are kept.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command.h"
#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/train.h"
#include "synclap/util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace synclap::cli {
namespace {

struct DemoArgs {
  std::string out = "out/demo";
  int64_t clips = 1200;
  double seconds = 5.0;
  int64_t epochs = 14;
  int64_t batch = 32;
  uint64_t seed = 1;
  bool fresh = false;
};

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("demo: cannot find its own executable (/proc/self/exe)");
  return p.string();
}

// Runs `synclap ARGS...`; stdout goes to `capture` when given (else to the terminal), stderr is shared.
// Throws Error naming the step when the child fails.
void run_step(const std::string& step, const std::vector<std::string>& args, std::string* capture = nullptr) {
  std::vector<std::string> argv{self_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  int fds[2] = {-1, -1};
  if (capture && pipe(fds) != 0) throw Error("demo: pipe failed");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) throw Error("demo: fork failed");
  if (pid == 0) {
    if (capture) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
    }
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  if (capture) {
    close(fds[1]);
    char buf[65536];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) capture->append(buf, size_t(n));
    close(fds[0]);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd = "synclap";
    for (const auto& s : args) cmd += " " + s;
    throw Error("demo: step '" + step + "' failed (" + cmd + ")");
  }
}

std::string read_or_empty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {
    throw FileError(path, std::string("not valid JSON: ") + e.what());
  }
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * v);
  return b;
}

// A file of the source tree's configs/ (relative to the working directory, else to the source directory).
std::string source_config(const std::string& rel) {
  for (const std::string& c : {rel, std::string(SYNCLAP_SOURCE_DIR) + "/" + rel})
    if (fs::is_regular_file(c)) return fs::absolute(c).string();
  throw Error("demo: " + rel + " not found (run from the synclap source tree)");
}

void banner(const Context& ctx, int n, const std::string& what) {
  if (!ctx.quiet) std::cerr << "\n== synclap demo " << n << "/5: " << what << " ==\n";
}

int run_demo(const DemoArgs& a, const Context& ctx) {
  const double t0 = now_seconds();
  if (a.fresh) fs::remove_all(a.out);
  fs::create_directories(a.out);
  const std::string out = fs::absolute(a.out).string();
  const std::string data = out + "/data", run = out + "/run", lib = out + "/library", index = out + "/index";
  std::vector<std::string> common;
  if (ctx.quiet) common.push_back("--quiet");
  if (ctx.threads > 0) common.insert(common.end(), {"--threads", std::to_string(ctx.threads)});
  auto with_common = [&](std::vector<std::string> args) {
    args.insert(args.begin(), common.begin(), common.end());
    return args;
  };
  std::map<std::string, double> timings;

  // 1. Data
  banner(ctx, 1, "synthesise " + std::to_string(a.clips) + " clips of " + std::to_string(int(a.seconds)) +
                     " s (built-in composer, FluidSynth General MIDI)");
  double t = now_seconds();
  run_step("synth", with_common({"synth", "--out", data, "--count", std::to_string(a.clips), "--seconds",
                                 std::to_string(a.seconds), "--seed", std::to_string(a.seed), "--val-fraction", "0.1",
                                 "--test-fraction", "0.1", "--genre-instruments", "0.8",
                                 "--genre-ensembles", "0.8"}));
  timings["synthesise"] = now_seconds() - t;

  // 2. Training
  const std::string recipe = source_config("configs/train/cnn-cpu-synth-curriculum.json");
  const TrainConfig recipe_cfg = TrainConfig::from_file(recipe);
  // The recipe's model config, named relative to the recipe as `synclap train` resolves it.
  const fs::path model_config = (fs::path(recipe).parent_path() / recipe_cfg.model).lexically_normal();
  banner(ctx, 2, "train a CPU CLAP model from scratch (" + model_config.stem().string() + ")");
  t = now_seconds();
  if (!fs::exists(run + "/final/model.safetensors")) {
    // The quality-bar recipe (configs/train/cnn-cpu-synth-curriculum.json: optimiser, loss terms, caption
    // curriculum), resized for the demo: its batch, warm-up, validation and logging, and its stages' epochs scaled
    // to --epochs (at least one each).
    json cfg = json::parse(recipe_cfg.to_json());
    cfg["comment"] = "written by synclap demo from configs/train/cnn-cpu-synth-curriculum.json";
    cfg["model"] = model_config.string();
    cfg["batch_size"] = a.batch;
    cfg["warmup_steps"] = 20;
    cfg["max_val_items"] = 200;
    cfg["log_every"] = 5;
    cfg["checkpoint_every"] = 100;
    cfg["seed"] = a.seed;
    cfg["epochs"] = a.epochs;
    const json recipe_stages = cfg.value("stages", json::array());
    cfg.erase("stages");
    double recipe_epochs = 0;
    for (const auto& st : recipe_stages) recipe_epochs += st.value("epochs", 0.0);
    const int64_t n_stages = int64_t(recipe_stages.size());
    if (n_stages > 0 && recipe_epochs > 0 && a.epochs >= n_stages) {
      int64_t used = 0;
      for (int64_t i = 0; i < n_stages; ++i) {
        json st = recipe_stages[size_t(i)];
        int64_t e = i + 1 == n_stages ? a.epochs - used
                                      : std::max<int64_t>(1, std::llround(a.epochs * st.value("epochs", 0.0) / recipe_epochs));
        e = std::min<int64_t>(e, a.epochs - used - (n_stages - 1 - i));  // leave one for each later stage
        st.erase("steps");
        st["epochs"] = e;
        cfg["stages"].push_back(st);
        used += e;
      }
    }
    const std::string cfg_path = out + "/train-config.json";
    write_file_atomic(cfg_path, cfg.dump(2) + "\n");
    std::vector<std::string> args = {"train", "--data", data, "--config", cfg_path, "--out", run};
    if (fs::exists(run + "/checkpoints/latest.json")) args.push_back("--resume");
    run_step("train", with_common(args));
  } else if (!ctx.quiet) {
    std::cerr << "(already trained: " << run << "/final)\n";
  }
  timings["train"] = now_seconds() - t;

  // 3. Evaluation on the test split
  banner(ctx, 3, "evaluate on the held-out test split");
  t = now_seconds();
  const std::string model = run + "/final";
  run_step("eval retrieval", with_common({"eval", "--model", model, "--data", data, "--task", "retrieval", "--split",
                                          "test", "-o", out + "/eval-retrieval"}));
  // Zero-shot asks with the prompts the recipe's label_prompts trained (eval's default for such a model).
  run_step("eval genre", with_common({"eval", "--model", model, "--data", data, "--task", "zeroshot", "--label", "genre",
                                      "--split", "test", "-o", out + "/eval-genre"}));
  run_step("eval lead", with_common({"eval", "--model", model, "--data", data, "--task", "zeroshot", "--label", "lead",
                                     "--split", "test", "-o", out + "/eval-lead"}));
  timings["evaluate"] = now_seconds() - t;

  // 4. Search: index the test clips, ask in words.
  banner(ctx, 4, "index the test clips and search them by text");
  t = now_seconds();
  std::map<std::string, json> labels_of;  // file name -> labels
  {
    fs::create_directories(lib);
    std::ifstream man(data + "/manifest.jsonl");
    std::string line;
    while (std::getline(man, line)) {
      if (line.empty()) continue;
      const json j = json::parse(line);
      if (j.value("split", "") != "test") continue;
      const fs::path src = fs::path(data) / j.at("audio").get<std::string>();
      const fs::path dst = fs::path(lib) / src.filename();
      if (!fs::exists(dst)) {
        std::error_code ec;
        fs::create_hard_link(src, dst, ec);
        if (ec) fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
      }
      labels_of[src.filename().string()] = j.value("labels", json::object());
    }
  }
  run_step("index", with_common({"index", "--model", model, "--library", lib, "--out", index}));
  const std::vector<std::string> queries = {"relaxed jazz with a saxophone", "heavy metal with distorted guitar",
                                            "calm classical music with strings", "upbeat house music for dancing"};
  json search_results = json::array();
  for (const auto& q : queries) {
    std::string captured;
    run_step("search", {"--json", "search", "--index", index, "--text", q, "-k", "3"}, &captured);
    json r;
    try {
      r = json::parse(captured);
    } catch (const std::exception& e) {
      throw Error(std::string("demo: search printed no JSON: ") + e.what());
    }
    search_results.push_back({{"query", q}, {"results", r}});
  }
  timings["index + search"] = now_seconds() - t;

  // 5. Results
  const json retr = read_json(out + "/eval-retrieval/result.json");
  const json genre = read_json(out + "/eval-genre/result.json");
  const json lead = read_json(out + "/eval-lead/result.json");
  const json summary = read_json(run + "/summary.json");
  auto metric = [](const json& j, const char* dir, const char* k) -> double {
    if (j.contains(dir) && j[dir].contains(k)) return j[dir][k].get<double>();
    if (j.contains(k)) return j[k].get<double>();
    return std::nan("");
  };
  std::ostringstream table;
  table << "\nsynclap demo results (test split, model trained here from scratch)\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-38s %s\n", "text -> audio R@1 / R@10",
                (pct(metric(retr, "text_to_audio", "R@1")) + " / " + pct(metric(retr, "text_to_audio", "R@10"))).c_str());
  table << line;
  std::snprintf(line, sizeof line, "  %-38s %s\n", "audio -> text R@1 / R@10",
                (pct(metric(retr, "audio_to_text", "R@1")) + " / " + pct(metric(retr, "audio_to_text", "R@10"))).c_str());
  table << line;
  std::snprintf(line, sizeof line, "  %-38s %s (%zu classes, chance %s)\n", "zero-shot genre top-1",
                pct(genre.value("top1", 0.0)).c_str(), genre.value("classes", json::array()).size(),
                pct(1.0 / std::max<size_t>(1, genre.value("classes", json::array()).size())).c_str());
  table << line;
  std::snprintf(line, sizeof line, "  %-38s %s (%zu classes, chance %s)\n", "zero-shot lead instrument top-1",
                pct(lead.value("top1", 0.0)).c_str(), lead.value("classes", json::array()).size(),
                pct(1.0 / std::max<size_t>(1, lead.value("classes", json::array()).size())).c_str());
  table << line;
  std::snprintf(line, sizeof line, "  %-38s %lld steps, %.1f samples/s, final loss %.3f\n", "training",
                static_cast<long long>(summary.value("steps", int64_t(0))), summary.value("samples_per_second", 0.0),
                summary["final_loss"].is_number() ? summary["final_loss"].get<double>() : std::nan(""));
  table << line;
  table << "\nText queries over the " << labels_of.size() << " indexed test clips (top 3: genre, lead):\n";
  for (const auto& sr : search_results) {
    table << "  \"" << sr["query"].get<std::string>() << "\"\n";
    const json& res = sr["results"];
    const json& items = res.is_object() && res.contains("results") ? res["results"] : res;
    if (!items.is_array()) continue;
    for (const auto& it : items) {
      const std::string path = it.value("path", "");
      const std::string name = fs::path(path).filename().string();
      std::string desc;
      auto f = labels_of.find(name);
      if (f != labels_of.end())
        desc = f->second.value("genre", "?") + ", " + f->second.value("lead", std::string("no lead"));
      std::snprintf(line, sizeof line, "     %.3f  %-14s %s\n", it.value("score", 0.0), name.c_str(), desc.c_str());
      table << line;
    }
  }
  table << "\nTime: ";
  for (const auto& [k, v] : timings) table << k << " " << format_duration(v) << ", ";
  table << "total " << format_duration(now_seconds() - t0) << "\n";

  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>synclap demo</title><style>"
       "body{font-family:sans-serif;margin:24px;max-width:1300px}pre{background:#f6f6f6;padding:10px}"
       "svg{border:1px solid #ddd;margin:6px;max-width:100%;height:auto}</style></head><body>"
    << "<h1>synclap demo</h1><p>A dataset synthesised here, a CPU CLAP model trained on it from scratch, evaluated on "
       "its held-out test split and used to search the test clips by text.</p><pre>"
    << xml_escape(table.str()) << "</pre><h2>Training</h2>" << read_or_empty(run + "/loss.svg")
    << read_or_empty(run + "/recall.svg") << "<p>Full training report: <a href=\"run/report.html\">run/report.html</a></p>"
    << "<h2>Zero-shot confusion matrices</h2>" << read_or_empty(out + "/eval-genre/confusion.svg")
    << read_or_empty(out + "/eval-lead/confusion.svg") << "</body></html>\n";
  write_file_atomic(out + "/report.html", h.str());

  json result{{"retrieval", {{"t2a_r1", metric(retr, "text_to_audio", "R@1")},
                             {"t2a_r10", metric(retr, "text_to_audio", "R@10")},
                             {"a2t_r1", metric(retr, "audio_to_text", "R@1")},
                             {"a2t_r10", metric(retr, "audio_to_text", "R@10")}}},
              {"zeroshot_genre_top1", genre.value("top1", 0.0)},
              {"zeroshot_lead_top1", lead.value("top1", 0.0)},
              {"training", summary},
              {"search", search_results},
              {"seconds", now_seconds() - t0},
              {"report", out + "/report.html"}};
  write_file_atomic(out + "/demo.json", result.dump(2) + "\n");
  if (ctx.json) std::cout << result.dump(2) << std::endl;
  else std::cout << table.str() << "Report: " << out << "/report.html\n";
  return 0;
}

static Command reg("demo",
                   "The main job on built-in defaults: synthesise data, train a CPU CLAP model, evaluate it, search",
                   [](CLI::App& sub, Context& ctx) {
                     auto a = std::make_shared<DemoArgs>();
                     sub.add_option("--out", a->out, "Output folder (default out/demo; a re-run continues it)");
                     sub.add_option("--clips", a->clips, "Clips to synthesise (default 1200)");
                     sub.add_option("--seconds", a->seconds, "Seconds per clip (default 5)");
                     sub.add_option("--epochs", a->epochs, "Training epochs (default 14)");
                     sub.add_option("--batch", a->batch, "Training batch size (default 32)");
                     sub.add_option("--seed", a->seed, "Seed (default 1)");
                     sub.add_flag("--fresh", a->fresh, "Delete the output folder first");
                     return [a, &ctx]() { return run_demo(*a, ctx); };
                   });

}  // namespace
}  // namespace synclap::cli
