// Provenance of results: checkpoint hash, preprocessing contract, long-audio policy, templates, dataset, seed.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap {

std::string checkpoint_sha256(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return sha256_file(path);
  if (!fs::is_directory(path, ec)) throw FileError(path, "no such checkpoint file or directory");
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), path).generic_string());
  }
  if (ec) throw FileError(path, "cannot list the checkpoint directory: " + ec.message());
  std::sort(files.begin(), files.end());
  std::string lines;
  for (const auto& f : files) lines += f + " " + sha256_file((fs::path(path) / f).string()) + "\n";
  return sha256_hex(lines);
}

std::string long_audio_policy(const PreprocessContract& c) {
  std::ostringstream o;
  o << "window_seconds=" << double(c.max_samples) / c.sample_rate << " truncation=" << to_string(c.truncation)
    << " padding=" << to_string(c.padding) << " fusion=" << (c.fusion ? "yes" : "no");
  if (c.truncation == Truncation::Windows)
    o << " window_hop_seconds=" << double(c.window_hop_samples ? c.window_hop_samples : c.max_samples) / c.sample_rate
      << " max_windows=" << c.max_windows << " (clip embedding = normalised mean of window embeddings)";
  return o.str();
}

std::string Provenance::to_json() const {
  std::string created = created_utc;
  if (created.empty()) {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    created = buf;
  }
  nlohmann::json j;
  j["task"] = task;
  j["checkpoint"] = checkpoint;
  j["checkpoint_sha256"] = checkpoint_sha256;
  j["preprocess"] = preprocess_json.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(preprocess_json);
  j["long_audio_policy"] = long_audio_policy;
  j["templates"] = templates;
  j["dataset"] = dataset;
  j["dataset_sha256"] = dataset_sha256;
  j["seed"] = seed;
  j["synclap_version"] = synclap_version;
  j["created_utc"] = created;
  j["command_line"] = command_line;
  return j.dump();
}

}  // namespace synclap
