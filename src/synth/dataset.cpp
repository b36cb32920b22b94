// run_synth: a synthetic dataset directory, deterministic, parallel and resumable.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "rng.h"
#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"

namespace synclap {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string clip_id(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(i));
  return buf;
}

// Appends one whole line with a single write(2) on an O_APPEND descriptor.
void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(path, std::string("cannot open for appending: ") + std::strerror(errno));
  const std::string data = line + "\n";
  const ssize_t n = ::write(fd, data.data(), data.size());
  ::close(fd);
  if (n != ssize_t(data.size())) throw FileError(path, "write failed (disk full?)");
}

// Records of a manifest, by index; a torn last line (a killed run) is ignored.
std::map<int64_t, std::string> read_manifest(const std::string& path) {
  std::map<int64_t, std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      out[j.at("index").get<int64_t>()] = line;
    } catch (const nlohmann::json::exception&) {
      // torn or foreign line: the clip will be made again
    }
  }
  return out;
}

}  // namespace

SynthRunResult run_synth(const SynthRunOptions& o) {
  const double t0 = now_seconds();
  if (o.out_dir.empty()) throw Error("synth: an output directory is needed");
  if (o.count < 0) throw Error("synth: --count must be >= 0");
  if (!(o.seconds > 0 && o.seconds <= 600)) throw Error("synth: --seconds must be in (0, 600]");
  const bool external = o.generator.rfind("cmd:", 0) == 0;
  if (!external && o.generator != "builtin")
    throw Error("synth: --generator must be builtin or cmd:\"PROGRAM ... {caption} ... {wav}\"");
  const Vocabulary vocab = o.vocab_path.empty() ? Vocabulary::builtin() : Vocabulary::load(o.vocab_path);

  const fs::path dir(o.out_dir);
  fs::create_directories(dir / "audio");
  // Leftovers of an interrupted run: temporary files are never part of the dataset.
  for (const auto& sub : {dir, dir / "audio"})
    for (const auto& e : fs::directory_iterator(sub))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(e.path());
  std::error_code ec;
  fs::remove_all(dir / ".scratch", ec);

  SamplerOptions so;
  so.seed = o.seed;
  so.seconds = o.seconds;
  so.val_fraction = o.val_fraction;
  so.test_fraction = o.test_fraction;
  so.genre_instruments = o.genre_instruments;
  so.genre_meters = o.genre_meters;
  so.genre_ensembles = o.genre_ensembles;
  Sampler sampler(vocab, so);
  const auto specs = sampler.take(o.count);

  // What the directory was made with; a re-run must match it.
  ordered_json meta;
  meta["format"] = "synclap-synth/1";
  meta["seed"] = o.seed;
  meta["seconds"] = o.seconds;
  meta["sample_rate"] = 48000;
  meta["generator"] = o.generator;
  meta["captions_per_clip"] = o.captions_per_clip;
  meta["paraphrase_command"] = o.paraphrase_command;
  meta["val_fraction"] = o.val_fraction;
  meta["test_fraction"] = o.test_fraction;
  meta["genre_instruments"] = o.genre_instruments;
  meta["genre_meters"] = o.genre_meters;
  meta["genre_ensembles"] = o.genre_ensembles;
  meta["vocabulary"] = vocab.source;
  meta["vocabulary_sha256"] = sha256_hex(vocab.json);
  ordered_json held = ordered_json::array();
  for (const auto& [a, b] : sampler.heldout_pairs()) held.push_back({a, b});
  meta["heldout_pairs"] = held;
  const std::string meta_path = (dir / "dataset.json").string();
  if (fs::exists(meta_path)) {
    const auto old = nlohmann::json::parse(read_file(meta_path));
    // Settings that older directories lack had these values then.
    const std::map<std::string, nlohmann::json> before = {
        {"val_fraction", 0.05}, {"test_fraction", 0.05}, {"genre_instruments", 0.0}, {"genre_meters", 0.0},
        {"genre_ensembles", 0.0}};
    for (const char* k : {"seed", "seconds", "generator", "captions_per_clip", "vocabulary_sha256", "paraphrase_command",
                          "val_fraction", "test_fraction", "genre_instruments", "genre_meters", "genre_ensembles"})
      if (old.contains(k) ? old[k] != nlohmann::json(meta[k])
                          : !before.count(k) || before.at(k) != nlohmann::json(meta[k]))
        throw Error(o.out_dir + ": holds a dataset made with a different " + k +
                    " (use another --out, or the same settings to continue it)");
  } else {
    write_file_atomic(meta_path, meta.dump(2) + "\n");
  }

  const std::string manifest = (dir / "manifest.jsonl").string();
  const std::string failures = (dir / "failures.jsonl").string();
  auto done = read_manifest(manifest);
  for (auto it = done.begin(); it != done.end();) {  // a record whose audio is gone is made again
    const auto j = nlohmann::json::parse(it->second);
    if (it->first >= o.count || !fs::exists(dir / j.at("audio").get<std::string>())) {
      if (it->first >= o.count) { ++it; continue; }  // kept: a larger earlier run
      it = done.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<int64_t> todo;
  for (int64_t i = 0; i < o.count; ++i)
    if (!done.count(i)) todo.push_back(i);
  fs::remove(failures, ec);

  SynthRunResult res;
  res.kept = int64_t(done.size());
  std::mutex mu;
  std::atomic<int64_t> made{0}, failed{0};
  std::atomic<bool> stop{false};
  Progress progress("synth", int64_t(todo.size()), o.progress);
  ExternalGenerator gen;
  if (external) {
    gen.command_template = o.generator.substr(4);
    gen.timeout_s = o.timeout_s;
    gen.retries = o.retries;
  }
  CaptionOptions co;
  co.per_clip = o.captions_per_clip;

  parallel_for(int64_t(todo.size()), [&](int64_t k) {
    if (stop.load()) return;
    const ClipSpec& s = specs[size_t(todo[size_t(k)])];
    const std::string id = clip_id(s.index);
    const std::string rel = "audio/" + id + ".flac";
    auto captions = make_captions(s, vocab, co);
    if (!o.paraphrase_command.empty() && !captions.empty()) {
      const auto extra = paraphrase_captions({captions[0]}, o.paraphrase_command, std::min(o.timeout_s, 120.0), 1);
      for (const auto& p : extra[0])
        if (std::find(captions.begin(), captions.end(), p) == captions.end()) captions.push_back(p);
    }
    Waveform w;
    try {
      if (external) w = gen.generate(captions.at(0), s.seconds, s.seed, (dir / ".scratch").string());
      else w = render_clip(s, vocab);
    } catch (const std::exception& e) {
      ordered_json f = {{"id", id}, {"index", s.index}, {"caption", captions.empty() ? "" : captions[0]}, {"error", e.what()}};
      std::lock_guard<std::mutex> lock(mu);
      append_line(failures, f.dump());
      ++failed;
      progress.add();
      return;
    }
    write_audio((dir / rel).string(), w);
    ordered_json rec;
    rec["id"] = id;
    rec["index"] = s.index;
    rec["audio"] = rel;
    rec["captions"] = captions;
    rec["labels"] = ordered_json::parse(s.labels_json(vocab));
    rec["split"] = s.split;
    rec["seed"] = s.seed;
    rec["duration"] = w.duration_s();
    rec["sample_rate"] = w.sample_rate;
    rec["generator"] = external ? "cmd" : "builtin";
    const std::string line = rec.dump();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop.load()) return;
      append_line(manifest, line);
      done[s.index] = line;
      res.audio_seconds += w.duration_s();
      const int64_t m = ++made;
      if (o.stop_after >= 0 && m >= o.stop_after) stop = true;
    }
    progress.add();
  }, o.threads);
  progress.finish();

  res.made = made.load();
  res.failed = failed.load();
  if (!stop.load()) {
    // Sorted, complete manifest (atomic rename): identical however the clips were interleaved.
    std::string all;
    for (const auto& [i, line] : done) all += line + "\n";
    write_file_atomic(manifest, all);
  }
  fs::remove_all(dir / ".scratch", ec);
  res.seconds = now_seconds() - t0;
  return res;
}

}  // namespace synclap
