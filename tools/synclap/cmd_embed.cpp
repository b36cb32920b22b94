// synclap embed --model CKPT [--audio FILE|DIR...] [--text "..."...] [--text-file F] --out F.npy|F.safetensors:
// L2-normalised embeddings in the model's joint audio-text space, one row per item: the audio files first (in
// the order given, directories expanded and sorted), then the texts (--text in order, then --text-file lines).
// Beside the output, F.items.jsonl lists the rows: {"row", "kind": "audio"|"text", "path"|"text", ...}; audio
// rows also carry the long-audio policy and the number of windows averaged.
//
// Audio is prepared as the checkpoint's contract says (deterministic: the middle 10 s for unfused models,
// centred fusion chunks for fused ones), so the same file always gives the same embedding. --policy windows
// instead averages the embeddings of consecutive windows covering the whole clip (unfused models).
// Files that cannot be decoded are reported on stderr and skipped (exit status 1, output still written).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "eval_support.h"
#include "synclap/error.h"
#include "synclap/npy.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct EmbedArgs {
  std::string model, tokenizer, out, policy = "model", text_file;
  std::vector<std::string> audio, texts;
  int batch = 8;
  double window_hop = 0;  // seconds; 0 = the window length
  int max_windows = 0;
  bool recursive = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  std::string tail = s.substr(s.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return tail == suffix;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot open");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are not items
    out.push_back(line);
  }
  return out;
}

int run_embed(const EmbedArgs& a, const Context& ctx) {
  const bool npy = ends_with(a.out, ".npy");
  if (!npy && !ends_with(a.out, ".safetensors")) throw Error("--out must end in .npy or .safetensors: " + a.out);
  std::vector<std::string> texts = a.texts;
  if (!a.text_file.empty()) {
    const auto lines = read_lines(a.text_file);
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  const std::vector<std::string> files = expand_audio_args(a.audio, a.recursive);
  if (files.empty() && texts.empty()) throw Error("nothing to embed: give --audio FILES/DIRS and/or --text / --text-file");
  if (a.batch < 1) throw Error("--batch must be >= 1");

  ModelOptions mo;
  mo.audio_batch = a.batch;
  mo.text_batch = std::max(a.batch, 16);
  LoadedModel lm = load_model(a.model, a.tokenizer, ctx, mo);

  PreprocessContract contract = lm.model.contract();
  if (a.policy == "windows") {
    if (contract.fusion) throw Error("--policy windows needs an unfused model (this one uses feature fusion)");
    contract.truncation = Truncation::Windows;
    contract.window_hop_samples = a.window_hop > 0 ? int(std::lround(a.window_hop * contract.sample_rate)) : 0;
    contract.max_windows = a.max_windows;
    contract.validate();
  } else if (a.policy != "model") {
    throw Error("--policy must be 'model' or 'windows', not '" + a.policy + "'");
  }
  const std::string policy = long_audio_policy(contract);

  Embeddings audio, text;
  std::vector<size_t> kept;
  std::vector<int> windows;
  std::vector<double> durations;
  if (!files.empty()) {
    try {
      audio = embed_audio_files(lm, files, ctx, &kept, "embedding audio", &contract, &windows, &durations);
    } catch (const Error& e) {
      if (texts.empty()) throw;
      std::cerr << "synclap: " << e.what() << std::endl;  // no audio at all, but there are texts
    }
  }
  if (!texts.empty()) text = embed_texts(lm, texts, ctx);
  const int64_t dim = std::max(audio.dim, text.dim);
  const int64_t rows = audio.rows + text.rows;

  std::vector<float> all;
  all.reserve(size_t(rows * dim));
  all.insert(all.end(), audio.data.begin(), audio.data.end());
  all.insert(all.end(), text.data.begin(), text.data.end());

  // The items list, row order.
  std::string jsonl;
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  };
  for (size_t k = 0; k < kept.size(); ++k) {
    nlohmann::json j = {{"row", k},          {"kind", "audio"},           {"path", files[kept[k]]},
                        {"policy", policy},  {"windows", windows[k]},     {"seconds", durations[k]}};
    jsonl += dump(j);
  }
  for (size_t k = 0; k < texts.size(); ++k) {
    nlohmann::json j = {{"row", kept.size() + k}, {"kind", "text"}, {"text", texts[k]}};
    jsonl += dump(j);
  }

  const Provenance prov = model_provenance(lm, "embed");
  if (npy) {
    write_npy(a.out, {rows, dim}, all);
  } else {
    SafetensorsWriter w;
    w.add_f32("embeddings", {rows, dim}, all);
    if (audio.rows) w.add_f32("audio", {audio.rows, dim}, audio.data);
    if (text.rows) w.add_f32("text", {text.rows, dim}, text.data);
    w.set_metadata("format", "synclap embeddings: rows = audio items then text items (see .items.jsonl)");
    w.set_metadata("provenance", prov.to_json());
    w.write(a.out);
  }
  write_file_atomic(a.out + ".items.jsonl", jsonl);

  const size_t failed = files.size() - kept.size();
  if (ctx.json) {
    nlohmann::json o;
    o["out"] = a.out;
    o["items_file"] = a.out + ".items.jsonl";
    o["rows"] = rows;
    o["dim"] = dim;
    o["audio"] = kept.size();
    o["texts"] = texts.size();
    o["failed"] = failed;
    o["policy"] = policy;
    o["provenance"] = nlohmann::json::parse(prov.to_json());
    std::cout << o.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::cout << "wrote " << a.out << ": " << rows << " x " << dim << " (" << kept.size() << " audio, " << texts.size()
              << " texts";
    if (failed) std::cout << ", " << failed << " files skipped";
    std::cout << ")\nitems: " << a.out << ".items.jsonl\n";
  }
  return failed ? 1 : 0;
}

Command reg("embed", "Embed audio files and/or texts into the model's joint space (.npy / .safetensors + items list)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<EmbedArgs>();
              sub.add_option("--model", a->model, "Checkpoint: HF ClapModel dir, synclap dir or .safetensors")
                  ->required();
              sub.add_option("--audio", a->audio, "Audio files or directories (expanded, sorted)");
              sub.add_option("--text", a->texts, "A text to embed (repeatable)");
              sub.add_option("--text-file", a->text_file, "Texts to embed, one per line (blank lines skipped)");
              sub.add_option("-o,--out", a->out, "Output F.npy or F.safetensors (+ F.items.jsonl)")->required();
              sub.add_option("--batch", a->batch, "Clips (windows) per forward pass")->capture_default_str();
              sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt");
              sub.add_option("--policy", a->policy,
                             "Long audio: 'model' (the checkpoint's contract: middle window / centred fusion) or "
                             "'windows' (mean of consecutive windows over the whole clip)")
                  ->capture_default_str();
              sub.add_option("--window-hop", a->window_hop, "--policy windows: seconds between window starts "
                                                            "(default: the window length)");
              sub.add_option("--max-windows", a->max_windows, "--policy windows: at most N windows, evenly spread "
                                                              "(0 = all)");
              sub.add_flag("-r,--recursive", a->recursive, "Look for audio files in subdirectories too");
              return [a, &ctx]() { return run_embed(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
