// synclap search: the CLAP encoder of an index (see clap_encoder.h).
#include "search/clap_encoder.h"

#include <cmath>
#include <filesystem>

#include "search/vector_index.h"
#include "synclap/error.h"
#include "synclap/random.h"

namespace fs = std::filesystem;

namespace synclap::search {

ClapEncoder::ClapEncoder(const std::string& model_path, const EncoderOptions& options)
    : path_(model_path), options_(options) {
  ModelOptions mo;
  mo.threads = options.threads;
  mo.device = options.device;
  model_ = std::make_unique<Model>(Model::load(model_path, mo));
  PreprocessContract c = model_->contract();
  if (!c.fusion && options.windows > 1) {
    c.truncation = Truncation::Windows;
    c.max_windows = options.windows;
  }
  fe_ = std::make_unique<FeatureExtractor>(c);
  decode_.target_rate = c.sample_rate;
  decode_.int16_roundtrip = c.int16_roundtrip;
  decode_.max_duration_s = 3600;
}

ClapEncoder::~ClapEncoder() = default;

int ClapEncoder::dim() const { return int(model_->info().embedding_dim); }
int ClapEncoder::sample_rate() const { return fe_->contract().sample_rate; }

std::vector<float> ClapEncoder::text(const std::string& query) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!tokenizer_) {
    std::vector<std::string> dirs;
    if (!options_.tokenizer_dir.empty()) {
      dirs.push_back(options_.tokenizer_dir);
    } else {
      std::error_code ec;
      if (fs::is_directory(path_, ec)) dirs.push_back(path_);
      const fs::path parent = fs::path(path_).parent_path();
      dirs.push_back(parent.empty() ? "." : parent.string());
    }
    for (const auto& d : dirs)
      if (fs::exists(fs::path(d) / "vocab.json") && fs::exists(fs::path(d) / "merges.txt")) {
        tokenizer_ = std::make_unique<QueryTokenizer>(d);
        break;
      }
    if (!tokenizer_)
      throw FileError(options_.tokenizer_dir.empty() ? path_ : options_.tokenizer_dir,
                      "no tokenizer (vocab.json + merges.txt) beside the model; give --tokenizer DIR");
  }
  const int max_len = int(model_->info().max_text_tokens > 0 ? model_->info().max_text_tokens : 77);
  const Embeddings e = model_->embed_text({tokenizer_->encode(query, max_len)});
  return std::vector<float>(e.data.begin(), e.data.begin() + e.dim);
}

std::vector<std::vector<float>> ClapEncoder::audio(const std::vector<Waveform>& waves) const {
  std::vector<const std::vector<float>*> ptrs;
  for (const auto& w : waves) {
    if (w.sample_rate != sample_rate()) throw Error("encoder: waveform at the wrong sample rate");
    ptrs.push_back(&w.samples);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  NumpyRandom rng(fe_->contract().seed);
  const std::vector<LogMel> mels = fe_->extract_batch(ptrs, &rng, options_.threads);
  const Embeddings e = model_->embed_audio(mels);
  std::vector<std::vector<float>> out;
  for (int64_t i = 0; i < e.rows; ++i) out.emplace_back(e.row(i), e.row(i) + e.dim);
  return out;
}

std::vector<float> ClapEncoder::audio_file(const std::string& path) const {
  return audio({load_audio(path, decode_)}).at(0);
}

std::vector<float> ClapEncoder::audio_bytes(const void* data, size_t size, const std::string& name) const {
  return audio({decode_audio_memory(data, size, decode_, name)}).at(0);
}

AudioEmbedder ClapEncoder::embedder() const {
  AudioEmbedder e;
  e.model = fs::absolute(path_).lexically_normal().string();  // recorded in the index; search loads it
  e.sample_rate = sample_rate();
  e.dim = dim();
  e.max_duration_s = decode_.max_duration_s;
  e.embed = [this](const std::vector<Waveform>& ws) { return audio(ws); };
  return e;
}

std::vector<float> blend(const std::vector<float>& a, const std::vector<float>& b, double w) {
  if (a.size() != b.size()) throw Error("blend: vectors of different sizes");
  if (w < 0 || w > 1) throw Error("--blend must be in [0, 1]");
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = float(w * a[i] + (1 - w) * b[i]);
  if (!(normalize(out.data(), int(out.size())) > 0)) throw Error("blend: the two queries cancel out");
  return out;
}

}  // namespace synclap::search
