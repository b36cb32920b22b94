// Shared pieces of the evaluation commands (see eval_support.h).
#include "eval_support.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/random.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {

LoadedModel load_model(const std::string& path, const std::string& tokenizer_dir, const Context& ctx,
                       ModelOptions mo) {
  mo.threads = ctx.threads;
  LoadedModel m{path, Model::load(path, mo), ""};
  std::vector<std::string> candidates;
  if (!tokenizer_dir.empty()) {
    candidates.push_back(tokenizer_dir);
  } else {
    std::error_code ec;
    if (fs::is_directory(path, ec)) candidates.push_back(path);
    const fs::path parent = fs::path(path).parent_path();
    candidates.push_back(parent.empty() ? "." : parent.string());
  }
  for (const auto& c : candidates) {
    if (fs::exists(fs::path(c) / "vocab.json") && fs::exists(fs::path(c) / "merges.txt")) {
      m.tokenizer_dir = c;
      break;
    }
  }
  if (m.tokenizer_dir.empty() && !tokenizer_dir.empty())
    throw FileError(tokenizer_dir, "no vocab.json + merges.txt here");
  return m;
}

std::vector<std::string> trained_label_templates(const Model& model, const std::string& label) {
  const ModelInfo& info = model.info();
  const auto it = info.metadata.find("synclap_label_prompts");
  if (it == info.metadata.end()) return {};
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    throw FileError(info.path, "the synclap_label_prompts metadata is not JSON");
  }
  std::vector<std::string> out;
  if (!j.is_object() || !j.contains(label)) return out;
  if (!j[label].is_array()) throw FileError(info.path, "synclap_label_prompts[\"" + label + "\"] is not a list");
  for (const auto& t : j[label]) {
    if (!t.is_string()) throw FileError(info.path, "synclap_label_prompts[\"" + label + "\"] holds a non-string");
    out.push_back(t.get<std::string>());
  }
  return out;
}

std::vector<std::string> list_audio_files(const std::string& dir) {
  static const std::vector<std::string> exts = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif"};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw FileError(dir, "not a directory");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (std::find(exts.begin(), exts.end(), ext) != exts.end()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) throw FileError(dir, "no audio files (.wav .flac .mp3 .ogg .opus .aiff)");
  return out;
}

Embeddings embed_audio_files(const LoadedModel& m, const std::vector<std::string>& files, const Context& ctx,
                             std::vector<size_t>* kept, const std::string& label,
                             const PreprocessContract* contract_override, std::vector<int>* windows,
                             std::vector<double>* durations) {
  const PreprocessContract& contract = contract_override ? *contract_override : m.model.contract();
  FeatureExtractor fe(contract);
  DecodeOptions dopt;
  dopt.target_rate = contract.sample_rate;
  dopt.int16_roundtrip = contract.int16_roundtrip;
  kept->clear();
  if (windows) windows->clear();
  if (durations) durations->clear();
  Embeddings all;
  Progress progress(label, int64_t(files.size()), !ctx.quiet);
  // Chunks of clips: decode + features + embed, so memory stays bounded.
  const size_t chunk = 32;
  NumpyRandom rng(contract.seed);
  for (size_t start = 0; start < files.size(); start += chunk) {
    // Decode the chunk's files in parallel; failures are reported in file order and skipped.
    const size_t end = std::min(files.size(), start + chunk);
    std::vector<std::vector<float>> decoded(end - start);
    std::vector<std::string> errors(end - start);
    parallel_for(
        int64_t(end - start),
        [&](int64_t k) {
          try {
            decoded[size_t(k)] = load_audio(files[start + size_t(k)], dopt).samples;
          } catch (const std::exception& e) {
            errors[size_t(k)] = e.what();
            if (errors[size_t(k)].empty()) errors[size_t(k)] = files[start + size_t(k)] + ": cannot decode";
          }
        },
        ctx.threads);
    std::vector<std::vector<float>> waves;
    std::vector<size_t> idx;
    for (size_t k = 0; k < decoded.size(); ++k) {
      if (!errors[k].empty()) {
        std::cerr << "synclap: " << errors[k] << " (skipped)" << std::endl;
        continue;
      }
      waves.push_back(std::move(decoded[k]));
      idx.push_back(start + k);
    }
    if (!waves.empty()) {
      std::vector<const std::vector<float>*> ptrs;
      for (const auto& w : waves) ptrs.push_back(&w);
      const std::vector<LogMel> mels = fe.extract_batch(ptrs, &rng, ctx.threads);
      const Embeddings e = m.model.embed_audio(mels);
      for (size_t k = 0; k < mels.size(); ++k) {
        if (windows) windows->push_back(mels[k].windows);
        if (durations) durations->push_back(double(waves[k].size()) / contract.sample_rate);
      }
      if (all.dim == 0) all.dim = e.dim;
      all.rows += e.rows;
      all.data.insert(all.data.end(), e.data.begin(), e.data.end());
      kept->insert(kept->end(), idx.begin(), idx.end());
    }
    progress.add(int64_t(std::min(files.size(), start + chunk) - start));
  }
  progress.finish();
  if (all.rows == 0) throw Error("no audio file could be decoded");
  return all;
}

Embeddings embed_texts(LoadedModel& m, const std::vector<std::string>& texts, const Context& ctx,
                       const std::string& label) {
  if (m.tokenizer_dir.empty())
    throw FileError(m.path, "no tokenizer (vocab.json + merges.txt) beside the checkpoint; give --tokenizer DIR");
  const int max_len = int(m.model.info().max_text_tokens > 0 ? m.model.info().max_text_tokens : 77);
  const auto ids = tokenize_texts(m.tokenizer_dir, texts, max_len);
  // Chunks of a few model batches: the model sorts each chunk by length, so little is lost to padding.
  const size_t chunk = 512;
  if (ids.size() <= chunk) return m.model.embed_text(ids);
  Embeddings all;
  Progress progress(label, int64_t(ids.size()), !ctx.quiet);
  for (size_t start = 0; start < ids.size(); start += chunk) {
    const std::vector<std::vector<int64_t>> part(ids.begin() + start, ids.begin() + std::min(ids.size(), start + chunk));
    const Embeddings e = m.model.embed_text(part);
    all.dim = e.dim;
    all.rows += e.rows;
    all.data.insert(all.data.end(), e.data.begin(), e.data.end());
    progress.add(int64_t(part.size()));
  }
  progress.finish();
  return all;
}

std::vector<std::string> expand_audio_args(const std::vector<std::string>& args, bool recursive) {
  static const std::vector<std::string> exts = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif"};
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (!fs::is_directory(a, ec)) {
      out.push_back(a);  // a missing or unreadable file is reported (and skipped) when it is decoded
      continue;
    }
    if (!recursive) {
      const auto files = list_audio_files(a);
      out.insert(out.end(), files.begin(), files.end());
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(a, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string ext = it->path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
      if (std::find(exts.begin(), exts.end(), ext) != exts.end()) found.push_back(it->path().string());
    }
    if (found.empty()) throw FileError(a, "no audio files (.wav .flac .mp3 .ogg .opus .aiff)");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::vector<ManifestItem> read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / "manifest.jsonl").string();
  std::vector<ManifestItem> items = read_manifest_records(dir);
  if (items.empty()) throw FileError(path, "no records");
  return items;
}

std::string& command_line() {
  static std::string line = [] {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto& c : all)
      if (c == '\0') c = ' ';
    while (!all.empty() && all.back() == ' ') all.pop_back();
    return all;
  }();
  return line;
}

Provenance model_provenance(const LoadedModel& m, const std::string& task) {
  Provenance p;
  p.task = task;
  p.checkpoint = m.path;
  p.checkpoint_sha256 = checkpoint_sha256(m.path);
  p.preprocess_json = m.model.contract().to_json();
  p.long_audio_policy = long_audio_policy(m.model.contract());
  p.seed = m.model.contract().seed;
  p.command_line = command_line();
  return p;
}

std::string fmt(double v, int digits) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  std::ostringstream o;
  for (size_t k = 0; k < rows.size(); ++k) {
    for (size_t i = 0; i < rows[k].size(); ++i) {
      o << rows[k][i];
      if (i + 1 < rows[k].size()) o << std::string(w[i] - rows[k][i].size() + 2, ' ');
    }
    o << '\n';
    if (k == 0) {
      size_t total = 0;
      for (size_t i = 0; i < w.size(); ++i) total += w[i] + (i + 1 < w.size() ? 2 : 0);
      o << std::string(total, '-') << '\n';
    }
  }
  return o.str();
}

}  // namespace synclap::cli

namespace synclap::cli {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string picture_path(const std::string& out) {
  const std::string p = std::filesystem::path(out).replace_extension(".svg").string();
  return p == out ? out + ".svg" : p;
}

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace synclap::cli
