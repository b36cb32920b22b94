// synclap: a CLAP model for inference: load a checkpoint (HuggingFace ClapModel directory, synclap
// checkpoint directory, or a .safetensors file with its config in the metadata), and turn log-mel
// features or token ids into L2-normalised embeddings in the joint audio-text space.
// No LibTorch types here; src/model/model_internal.h gives torch-level access.
//
//   Model m = Model::load("laion-clap-htsat-unfused/");
//   FeatureExtractor fe(m.contract());
//   Embeddings a = m.embed_audio({fe.extract(wave.samples)});
//   Embeddings t = m.embed_text({{0, 713, 16, 10, 2}});      // <s> ... </s> from the tokenizer
//   std::vector<float> logits = m.logits_per_audio(a, t);
//
// Inference is deterministic (eval mode, no dropout, no autograd); the same input gives the same
// embedding whatever the batch it is in, up to float rounding.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "synclap/frontend.h"

namespace synclap {

// Row-major [rows, dim] float32; every row has unit L2 norm.
struct Embeddings {
  int64_t rows = 0, dim = 0;
  std::vector<float> data;
  const float* row(int64_t i) const { return data.data() + size_t(i) * size_t(dim); }
};

struct ModelOptions {
  std::string device = "cpu";  // "cpu", or "cuda" / "cuda:N" in a CUDA build
  int threads = 0;             // LibTorch intra-op threads (process-wide; 0 = leave as is)
  int audio_batch = 8;         // clip windows per forward pass
  int text_batch = 64;         // texts per forward pass (sorted by length, padded per batch only)
};

struct ModelInfo {
  std::string path;
  std::string format;                  // "huggingface", "synclap" or "safetensors"
  std::string name;                    // from the config, may be empty
  std::string audio_tower, text_tower;  // config model_type values
  int64_t embedding_dim = 0;
  int64_t num_parameters = 0;
  bool fused = false;                  // expects 4-channel fusion features + is_longer
  int64_t max_text_tokens = 0;         // longest accepted token sequence (incl. <s> and </s>)
  int64_t vocab_size = 0, pad_token_id = 1, bos_token_id = 0, eos_token_id = 2;
  double logit_scale_audio = 0, logit_scale_text = 0;  // exp() of the learned temperatures
  // The weights file's safetensors header metadata (of the first shard). synclap checkpoints carry "config",
  // "preprocess", "synclap_step", "synclap_run" and, when the training had label_prompts, "synclap_label_prompts"
  // (JSON: label -> its prompt templates, e.g. {"genre": ["a {} track"]}).
  std::map<std::string, std::string> metadata;
};

class Model {
 public:
  // Throws FileError naming the file for anything unreadable, inconsistent or not matching the model.
  static Model load(const std::string& path, const ModelOptions& options = {});
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelInfo& info() const;
  // How audio must be prepared for this model (the checkpoint's contract).
  const PreprocessContract& contract() const;

  // One embedding per clip. Clips with several windows (Truncation::Windows) get the normalised mean of
  // their windows' embeddings. Every clip must have contract().channels() channels and n_mels bins.
  Embeddings embed_audio(const std::vector<LogMel>& clips) const;
  // Raw features [batch][channels][frames][bins] float32 and one is_longer flag per item (fusion models).
  Embeddings embed_audio_features(const float* features, int64_t batch, int64_t channels, int64_t frames,
                                  int64_t bins, const std::vector<uint8_t>& is_longer = {}) const;
  // Token id sequences as the tokenizer gives them (<s> ... </s>, no padding), 1..info().max_text_tokens long.
  Embeddings embed_text(const std::vector<std::vector<int64_t>>& token_ids) const;

  // [audio.rows x text.rows], row-major: audio @ text^T * exp(logit_scale_a).
  std::vector<float> logits_per_audio(const Embeddings& audio, const Embeddings& text) const;
  // [text.rows x audio.rows]: text @ audio^T * exp(logit_scale_t).
  std::vector<float> logits_per_text(const Embeddings& text, const Embeddings& audio) const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace synclap
